"""Live recognition before and after the stream gates and the tuned settings (issue 11).

In one run, on the same test streams (``signrt eval-stream``'s harness,
:func:`signrt.evaluate.stream_eval.evaluate_streams`), for every rest kind (hands out of
view, resting low in view, idle movements):

* ``before``: the Stream as it was at 4d9ed78, its settings given explicitly (window:
  threshold 0.6, stride 4, confirm 2, any selected landmark counts as a signer; segment:
  threshold 0.6, 0.004 image units of motion, rest 8 frames), on the untuned model;
* ``defaults``: today's Stream defaults (a visible hand required; 0.020 shoulder widths,
  rest 12 frames), on the untuned model;
* ``tuned``: the model tuned by ``signrt tune-stream`` on the validation streams, opened
  with no options (its ``signrt.stream`` settings are the defaults).

Also measures the per-frame cost of ``Stream.push`` without an engine call (window mode
between classifications; segment mode with still hands), before and after the gates.

Writes ``OUT/NAME.json``, ``.md`` and ``OUT/NAME_timeline.png`` (tuned, out of view).

Usage:
    python benches/stream_live.py --model M.onnx --tuned M_tuned.onnx --data DIR \
        --unknown DIR [--manifest CSV] [--out benches/results] [--name stream_live]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

import signrt
from signrt.evaluate.stream_eval import EvalConfig, evaluate_streams, load_clip_set
from signrt.evaluate.streams import REST_KINDS, StreamConfig
from signrt.features import _native_module

log = logging.getLogger("stream_live")

BEFORE: dict[str, dict[str, Any]] = {
    "window": {"threshold": 0.6, "stride": 4, "confirm": 2, "cooldown": 1.0,
               "require_hand": False},
    "segment": {"threshold": 0.6, "rest_frames": 8, "motion_unit": "image",
                "motion_threshold": 0.004},
}  # fmt: skip
KEYS = ("precision", "recall", "f1", "delay_p50_s", "delay_p95_s", "false_events_per_minute",
        "oov_events_per_sign", "engine_calls", "signs", "matched", "events", "rest_events",
        "oov_events", "non_signing_s")  # fmt: skip


def push_cost(rec: Any, frames: list[np.ndarray]) -> dict[str, float]:
    """µs per ``Stream.push`` without an engine call, before and after the gates.

    The cases are timed in turn, 40 rounds of 2000 pushes each, and the best round of each
    is kept, so that a load change on a shared machine hits all cases alike.
    """
    cases = {
        "window_before": ("window", {"require_hand": False, "stride": 10**9}),
        "window_after": ("window", {"stride": 10**9}),
        "segment_before": ("segment", {"motion_unit": "image", "motion_threshold": 1e9}),
        "segment_after": ("segment", {"motion_threshold": 1e9}),
    }
    streams = {k: signrt.Stream(rec, mode, **opts) for k, (mode, opts) in cases.items()}
    best = dict.fromkeys(cases, float("inf"))
    n, i = 2000, 0
    for _ in range(40):
        for name, st in streams.items():
            t0 = time.perf_counter()
            for j in range(i, i + n):
                st.push(frames[j % len(frames)], j / 25.0)
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
        i += n
    assert all(st.engine_calls == 0 for st in streams.values())
    return {k: round(v * 1e6, 2) for k, v in best.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the untuned model")
    ap.add_argument("--tuned", required=True, help="the same model after signrt tune-stream")
    ap.add_argument("--data", required=True)
    ap.add_argument("--unknown")
    ap.add_argument("--manifest")
    ap.add_argument("--idle-seconds", type=float, default=120.0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--name", default="stream_live")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t_start = time.perf_counter()
    base = signrt.load(args.model, device="cpu")
    tuned = signrt.load(args.tuned, device="cpu")
    data = load_clip_set(args.data, manifest=args.manifest)
    unknown = load_clip_set(args.unknown, manifest=args.manifest) if args.unknown else None
    runs = {"before": (base, BEFORE), "defaults": (base, {}), "tuned": (tuned, {})}
    results: dict[str, Any] = {}
    isolated: dict[str, Any] = {}
    out = Path(args.out)
    for kind in REST_KINDS:
        results[kind] = {}
        for name, (rec, opts) in runs.items():
            cfg = EvalConfig(streams=StreamConfig(rest=0.6, rest_kind=kind),  # type: ignore[arg-type]
                             idle_seconds=args.idle_seconds, options=opts)  # fmt: skip
            rep = evaluate_streams(rec, data, unknown=unknown, config=cfg, model_path=args.model)
            isolated = rep.isolated
            results[kind][name] = {m: {k: v[k] for k in KEYS} for m, v in rep.modes.items()}
            if kind == "out_of_view" and name in ("before", "tuned"):
                rep.save_timeline_png(out / f"{args.name}_timeline_{name}.png")
            log.info("%s %s: window F1 %.3f, segment F1 %.3f", kind, name,
                     rep.modes["window"]["f1"], rep.modes["segment"]["f1"])  # fmt: skip
    frames = [np.ascontiguousarray(f) for c in data.clips[:4] for f in c]
    report = {
        "kind": "signrt.bench.stream_live",
        "note": args.note,
        "model": args.model,
        "tuned_settings": {k: v for k, v in tuned.model.stream.items() if k != "tuning"},
        "tuning": tuned.model.stream.get("tuning", {}),
        "before_settings": BEFORE,
        "data": {"data": args.data, "unknown": args.unknown, "idle_seconds": args.idle_seconds},
        "isolated": {k: isolated[k] for k in ("clips", "top1", "mean_top1_score_known",
                                               "mean_top1_score_unknown")},
        "results": results,
        "push_us": push_cost(base, frames),
        "environment": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "simd": str(_native_module().simd),
            "wall_s": round(time.perf_counter() - t_start, 1),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def _f(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Live recognition: before and after the stream gates and tuned settings",
        "",
        f"Model `{Path(r['model']).name}`. {r['note']}",
        "",
        f"Isolated top-1 of the same test clips: **{r['isolated']['top1']:.3f}** "
        f"({r['isolated']['clips']} clips).",
        "",
        f"- before: `{json.dumps(r['before_settings'])}`",
        "- defaults: today's Stream defaults, no options",
        f"- tuned (`signrt tune-stream` on the validation streams): "
        f"`{json.dumps(r['tuned_settings'])}`",
        "",
        "| rest kind | mode | run | precision | recall | F1 | delay p50 / p95 (s) "
        "| false events / min rest | OOV events / sign | engine calls |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, runs in r["results"].items():
        for mode in ("window", "segment"):
            for name, m in runs.items():
                x = m[mode]
                lines.append(
                    f"| {kind} | {mode} | {name} | {x['precision']:.3f} | {x['recall']:.3f} | "
                    f"**{x['f1']:.3f}** | {_f(x['delay_p50_s'], 2)} / {_f(x['delay_p95_s'], 2)}"
                    f" | {_f(x['false_events_per_minute'], 2)} | "
                    f"{_f(x['oov_events_per_sign'], 2)} | {x['engine_calls']} |"
                )
    p = r["push_us"]
    env = r["environment"]
    lines += [
        "",
        "`Stream.push` without an engine call, µs per frame (best of 40 interleaved rounds of "
        "2000 real frames, on a shared, loaded 2-core machine): "
        f"window {p['window_before']} before → {p['window_after']} after; segment "
        f"{p['segment_before']} → {p['segment_after']}.",
        "",
        f"Instruction set of the preprocessing: {env['simd']} ({env['machine']}); "
        f"wall time {env['wall_s']} s.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
