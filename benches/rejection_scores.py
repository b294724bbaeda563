"""How well each rejection score separates known signs from never-seen words (isolated clips).

For each model: the logits of the in-vocabulary clips of a split and of the clips of words
the model never saw; per score, the AUROC of known-vs-unknown and of correctly-classified
known-vs-unknown, and the share of the known clips kept (correct and above the threshold)
when the threshold lets 10 % of the unknown clips through. Scores: softmax top-1 at T = 1,
calibrated top-1 (the model's temperature), top-1 minus top-2 probability (calibrated),
energy ``logsumexp(z)``, max logit, and for a model with a background class the
probability that it is not background (``not_background``).

Also the calibration of the model on the split (NLL and ECE at T = 1 and at its T).

Writes ``OUT/NAME.json`` and ``.md``.

Usage:
    python benches/rejection_scores.py --model A.onnx [--model B.onnx ...] --data DIR \
        --unknown DIR [--label NAME ...] [--out benches/results] [--name rejection_scores]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import signrt
from signrt import _native
from signrt.evaluate.offline import classify_clips
from signrt.evaluate.stream_eval import load_clip_set
from signrt.results import BACKGROUND_LABEL
from signrt.runtime.calibration import calibration_report

log = logging.getLogger("rejection_scores")


def auroc(pos: npt.NDArray[np.float64], neg: npt.NDArray[np.float64]) -> float:
    """P(score of a positive > score of a negative), ties half."""
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean())


def _softmax(z: npt.NDArray[np.float64], t: float) -> npt.NDArray[np.float64]:
    e = np.exp((z - z.max(axis=1, keepdims=True)) / t)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def score_table(z: npt.NDArray[np.float64], t: float, bg: int | None
                ) -> tuple[npt.NDArray[np.intp], dict[str, npt.NDArray[np.float64]]]:  # fmt: skip
    """Top-1 sign (background excluded) and every score, per row."""
    p1, pt = _softmax(z, 1.0), _softmax(z, t)
    q1, qt = p1.copy(), pt.copy()
    if bg is not None:
        q1[:, bg] = -1.0
        qt[:, bg] = -1.0
    top = q1.argmax(axis=1)
    srt = np.sort(pt, axis=1)
    out = {
        "softmax": q1.max(axis=1),
        "calibrated": qt.max(axis=1),
        "margin_calibrated": srt[:, -1] - srt[:, -2],
        "energy": z.max(axis=1) + np.log(np.exp(z - z.max(axis=1, keepdims=True)).sum(axis=1)),
        "max_logit": z.max(axis=1),
    }
    if bg is not None:
        out["not_background"] = 1.0 - p1[:, bg]
    return top, out


def evaluate(path: str, data: Any, unknown: Any) -> dict[str, Any]:
    rec = signrt.load(path, device="cpu")
    labels = list(rec.labels)
    bg = labels.index(BACKGROUND_LABEL) if BACKGROUND_LABEL in labels else None
    zk = classify_clips(rec, data.clips)
    zu = classify_clips(rec, unknown.clips)
    y = np.array([labels.index(s) for s in data.labels])
    t = rec.temperature
    top_k, sk = score_table(zk, t, bg)
    _, su = score_table(zu, t, bg)
    correct = top_k == y
    rows = {}
    for name in sk:
        thr = float(np.quantile(su[name], 0.9))
        rows[name] = {
            "auroc_known_vs_unknown": auroc(sk[name], su[name]),
            "auroc_correct_vs_unknown": auroc(sk[name][correct], su[name]),
            "known_kept_at_10pct_unknown": float((correct & (sk[name] > thr)).mean()),
        }
    return {
        "model": path,
        "temperature": t,
        "calibration_here": calibration_report(zk, y, t),
        "top1": float(correct.mean()),
        "unknown_top1_background": None if bg is None else float((zu.argmax(1) == bg).mean()),
        "scores": rows,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--data", required=True)
    ap.add_argument("--unknown", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--name", default="rejection_scores")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data, unknown = load_clip_set(args.data), load_clip_set(args.unknown)
    labels = args.label + [Path(m).stem for m in args.model[len(args.label):]]
    res = {lab: evaluate(m, data, unknown) for lab, m in zip(labels, args.model, strict=True)}
    report = {"kind": "signrt.bench.rejection_scores", "data": args.data,
              "unknown": args.unknown, "clips": len(data), "unknown_clips": len(unknown),
              "note": args.note, "models": res,
              "environment": {"python": platform.python_version(),
                              "machine": platform.machine(), "simd": _native.simd}}  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# Rejection scores on isolated clips: known signs against never-seen words", "",
             f"Known: `{args.data}` ({len(data)} clips); unknown: `{args.unknown}` "
             f"({len(unknown)} clips). {args.note}", "",
             "| model | score | AUROC known vs unknown | AUROC correct vs unknown | known "
             "kept (correct) at 10 % unknown passing |", "|---|---|---|---|---|"]  # fmt: skip
    for lab, r in res.items():
        for name, s in r["scores"].items():
            lines.append(f"| {lab} | {name} | {s['auroc_known_vs_unknown']:.3f} | "
                         f"{s['auroc_correct_vs_unknown']:.3f} | "
                         f"{s['known_kept_at_10pct_unknown']:.3f} |")  # fmt: skip
    lines += ["", "| model | isolated top-1 | T (export) | NLL T=1 → T | ECE T=1 → T | unknown "
              "words whose top-1 is the background |", "|---|---|---|---|---|---|"]  # fmt: skip
    for lab, r in res.items():
        c = r["calibration_here"]
        ub = r["unknown_top1_background"]
        lines.append(f"| {lab} | {r['top1']:.3f} | {r['temperature']:.3f} | "
                     f"{c['nll_before']:.3f} → {c['nll_after']:.3f} | {c['ece_before']:.3f} → "
                     f"{c['ece_after']:.3f} | {'—' if ub is None else f'{ub:.3f}'} |")  # fmt: skip
    lines += ["", f"Instruction set of the preprocessing: {_native.simd} "
              f"({platform.machine()}).", ""]  # fmt: skip
    (out / f"{args.name}.md").write_text("\n".join(lines))
    log.info("wrote %s", out / f"{args.name}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
