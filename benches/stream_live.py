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

Writes ``OUT/NAME.json``, ``.md`` and ``OUT/NAME_timeline_{before,tuned}.png`` (out of
view). With ``--previous`` an earlier run's JSON (another model on the same streams) is
shown beside this one, labelled with its model, and both are set against the targets of
issue 11 (F1 within 3 points of the isolated top-1 in the better mode and 5 in the other,
at most 0.1 unknown-sign events per sign, one false event per 5 minutes of rest, delay p95
at most 0.5 s).

Usage:
    python benches/stream_live.py --model M.onnx --tuned M_tuned.onnx --data DIR \
        --unknown DIR [--manifest CSV] [--out benches/results] [--name stream_live] \
        [--label NAME] [--previous OLD.json]
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
import numpy.typing as npt

import signrt
from signrt import _native
from signrt.evaluate.stream_eval import EvalConfig, evaluate_streams, load_clip_set
from signrt.evaluate.streams import REST_KINDS, StreamConfig
from signrt.stream import StreamMode

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


def push_cost(rec: Any, frames: list[npt.NDArray[np.float32]]) -> dict[str, float]:
    """µs per ``Stream.push`` without an engine call, before and after the gates.

    The cases are timed in turn, 40 rounds of 2000 pushes each, and the best round of each
    is kept, so that a load change on a shared machine hits all cases alike.
    """
    cases: dict[str, tuple[StreamMode, dict[str, Any]]] = {
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
    ap.add_argument("--label", default="", help="a short name of the model for the tables")
    ap.add_argument("--previous", help="an earlier run's JSON (another model) to compare with")
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
        "label": args.label or Path(args.model).stem,
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
            "simd": str(_native.simd),
            "wall_s": round(time.perf_counter() - t_start, 1),
        },
    }
    if args.previous:
        prev = json.loads(Path(args.previous).read_text())
        prev.setdefault("label", Path(prev["model"]).stem)
        prev.pop("previous", None)
        report["previous"] = prev
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def _f(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def targets(r: dict[str, Any]) -> list[str]:
    """Markdown rows: the tuned settings of a run against the targets of issue 11.

    Per rest kind, the mode with the higher F1 is held to 3 points below the isolated
    top-1, the other to 5; unknown signs to 0.1 events per sign, rest to one false event
    per 5 minutes, delay p95 to 0.5 s.
    """
    iso = r["isolated"]["top1"]
    rows = []
    for kind, runs in r["results"].items():
        t = runs["tuned"]
        better = max(("window", "segment"), key=lambda m: t[m]["f1"])
        for mode in ("window", "segment"):
            x = t[mode]
            allowed = 0.03 if mode == better else 0.05
            gap = iso - x["f1"]
            fp5 = (x["false_events_per_minute"] or 0.0) * 5.0
            oov = x["oov_events_per_sign"]
            d95 = x["delay_p95_s"]
            ok = [gap <= allowed, oov is None or oov <= 0.1, fp5 <= 1.0,
                  d95 is not None and d95 <= 0.5]  # fmt: skip
            rows.append(
                f"| {r['label']} | {kind} | {mode}{' (better)' if mode == better else ''} | "
                f"{x['f1']:.3f} | {iso:.3f} | {gap * 100:+.1f} (≤ {allowed * 100:.0f}) "
                f"{'✓' if ok[0] else '✗'} | {_f(oov, 2)} {'✓' if ok[1] else '✗'} | "
                f"{fp5:.2f} {'✓' if ok[2] else '✗'} | {_f(d95, 2)} {'✓' if ok[3] else '✗'} |"
            )
    return rows


def table(r: dict[str, Any]) -> list[str]:
    """Markdown rows: every rest kind, mode and run of one report."""
    lines = []
    for kind, runs in r["results"].items():
        for mode in ("window", "segment"):
            for name, m in runs.items():
                x = m[mode]
                lines.append(
                    f"| {r['label']} | {kind} | {mode} | {name} | {x['precision']:.3f} | "
                    f"{x['recall']:.3f} | **{x['f1']:.3f}** | "
                    f"{_f(x['delay_p50_s'], 2)} / {_f(x['delay_p95_s'], 2)} | "
                    f"{_f(x['false_events_per_minute'], 2)} | "
                    f"{_f(x['oov_events_per_sign'], 2)} | {x['engine_calls']} |"
                )
    return lines


def markdown(r: dict[str, Any]) -> str:
    """The Markdown report of a run (and of ``r['previous']`` when present)."""
    r.setdefault("label", Path(r["model"]).stem)
    runs = [r] + ([r["previous"]] if "previous" in r else [])
    lines = [
        "# Live recognition: before and after the stream gates and tuned settings",
        "",
        f"Model `{Path(r['model']).name}` ({r['label']}). {r['note']}",
        "",
    ]
    for x in runs:
        lines += [
            f"**{x['label']}** (`{Path(x['model']).name}`): isolated top-1 of the same test "
            f"clips **{x['isolated']['top1']:.3f}** ({x['isolated']['clips']} clips); tuned "
            f"(`signrt tune-stream` on the validation streams): "
            f"`{json.dumps(x['tuned_settings'])}`",
            "",
        ]
    lines += [
        f"- before: `{json.dumps(r['before_settings'])}`",
        "- defaults: today's Stream defaults, no options",
        "",
        "Tuned settings against the targets of issue 11 (F1 gap to the isolated top-1, "
        "points; false events per 5 minutes of rest):",
        "",
        "| model | rest kind | mode | F1 | isolated top-1 | gap | OOV events / sign "
        "| false events / 5 min rest | delay p95 (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for x in runs:
        lines += targets(x)
    lines += [
        "",
        "| model | rest kind | mode | run | precision | recall | F1 | delay p50 / p95 (s) "
        "| false events / min rest | OOV events / sign | engine calls |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in runs:
        lines += table(x)
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
