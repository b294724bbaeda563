"""Profile of the onnx Holistic graph on CPU: session settings A/B and time per step.

Every variant (threads, the face and hand tasks, batched hands, BGR input, and with
``--baseline-models DIR`` the same graph on other model files, e.g. those before the
layout rewrites of tools/convert_holistic.py) and MediaPipe's legacy Holistic (the
reference) process the same frames of the real clips, interleaved frame by frame in one
run (the machine is shared: compare ratios, not absolute times). The CPU time of the
process per frame (all threads) is recorded beside the wall time. Then one serial
extractor is timed per model call and per crop.

Writes ``benches/results/landmarks_profile.json`` and ``.md``.

Usage:
    python benches/landmarks_profile.py [--media DIR] [--frames 60] [--baseline-models DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from signrt.bench import write_report
from signrt.extract import _holistic_ops as ops
from signrt.extract.extractor import create_extractor
from signrt.extract.onnx_holistic import OnnxHolisticExtractor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from landmarks import EXCERPTS, SHARED, load_media

SPIN_OFF = {"session.intra_op.allow_spinning": "0"}
SPIN_ON = {"session.intra_op.allow_spinning": "1"}
# intra-op spinning is off in every variant: a spinning pool keeps a core busy after its
# call and slows whichever extractor runs next, so it cannot be A/B-ed frame by frame (and
# on a shared CPU it takes cores from the other processes); see the notes.
DEFAULT = "onnx 1 thread, hand and face tasks (default)"
VARIANTS: dict[str, dict[str, Any]] = {
    DEFAULT: {"num_threads": 1},
    "onnx 1 thread, hand and face tasks, BGR input": {"num_threads": 1, "bgr": True},
    "onnx 1 thread, batched hands (2 threads), face task": {
        "num_threads": 1, "hand_batch": True},
    "onnx 1 thread, serial, batched hands (2 threads)": {
        "num_threads": 1, "hand_batch": True, "parallel": False},
    "onnx 1 thread, serial, one call per hand": {"num_threads": 1, "parallel": False},
    "onnx default threads, hand and face tasks": {},
}  # fmt: skip
BASELINE = "onnx 1 thread, hand and face tasks, baseline models"
REFERENCES: dict[str, int | None] = {"mediapipe default threads": None, "mediapipe 1 thread": 1}


def ab(
    media: list[tuple[str, list[npt.NDArray[np.uint8]]]], baseline: Path | None
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per-frame wall and process-CPU ms of every variant and reference, interleaved."""
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    variants = dict(VARIANTS)
    if baseline is not None:
        variants[BASELINE] = {"num_threads": 1, "model_dir": baseline}
    onnx = {}
    for n, kw in variants.items():
        kw = {k: v for k, v in kw.items() if k != "bgr"}
        onnx[n] = OnnxHolisticExtractor(device="cpu", session_config=SPIN_OFF, **kw)
    try:
        for name, frames in media:
            for ex in onnx.values():
                ex.reset()
            mps = {n: create_extractor("legacy", num_threads=t) for n, t in REFERENCES.items()}
            names = list(onnx) + list(mps)
            for k, f in enumerate(frames):
                shift = k % len(names)
                bgr = np.ascontiguousarray(f[:, :, ::-1])
                for n in names[shift:] + names[:shift]:
                    t0, c0 = time.perf_counter(), time.process_time()
                    if n in mps:
                        mps[n].process(f)
                    elif variants[n].get("bgr"):
                        onnx[n].process(bgr, bgr=True)
                    else:
                        onnx[n].process(f)
                    if k > 0:
                        times[n].append((time.perf_counter() - t0) * 1e3)
                        cpu[n].append((time.process_time() - c0) * 1e3)
            for e in mps.values():
                e.close()
            print(f"  {name}: {len(frames)} frames", file=sys.stderr, flush=True)
    finally:
        for e in onnx.values():
            e.close()
    return times, cpu


def steps(
    media: list[tuple[str, list[npt.NDArray[np.uint8]]]], baseline: Path | None = None
) -> dict[str, list[float]]:
    """ms per model call and per crop of a serial 1-thread extractor.

    With ``baseline``, a second such extractor on those model files processes every frame
    right after the first, and its model calls are timed too (``baseline models:`` rows).
    """
    times: dict[str, list[float]] = defaultdict(list)
    # one call per hand, no tasks
    ex = OnnxHolisticExtractor(device="cpu", num_threads=1, parallel=False,
                               session_config=SPIN_OFF)  # fmt: skip
    other = None
    if baseline is not None:
        other = OnnxHolisticExtractor(device="cpu", num_threads=1, parallel=False,
                                      session_config=SPIN_OFF, model_dir=baseline)  # fmt: skip
        run_other = other._run

        def timed_other(name: str, x: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return run_other(name, x)
            finally:
                key = f"baseline models: model {name} (batch {len(x)})"
                times[key].append((time.perf_counter() - t0) * 1e3)

        other._run = timed_other  # type: ignore[method-assign]
    run, crop = ex._run, ops.crop

    def timed_run(name: str, x: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return run(name, x)
        finally:
            times[f"model {name} (batch {len(x)})"].append((time.perf_counter() - t0) * 1e3)

    # same parameter names as ops.crop, so it may stand in for it
    def timed_crop(image: Any, r: Any, out_w: int, out_h: int, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return crop(image, r, out_w, out_h, **kw)
        finally:
            times[f"crop {out_w}x{out_h}"].append((time.perf_counter() - t0) * 1e3)

    ex._run = timed_run  # type: ignore[method-assign]
    ops.crop = timed_crop
    try:
        for _name, frames in media:
            ex.reset()
            if other is not None:
                other.reset()
            for k, f in enumerate(frames):
                t0 = time.perf_counter()
                ex.process(f)
                if k > 0:
                    times["frame"].append((time.perf_counter() - t0) * 1e3)
                if other is not None:
                    ops.crop = crop  # only the first extractor's crops are timed
                    other.process(f)
                    ops.crop = timed_crop
    finally:
        ops.crop = crop
        ex.close()
        if other is not None:
            other.close()
    return times


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", type=Path, default=SHARED if SHARED.is_dir() else EXCERPTS)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--baseline-models", type=Path, default=None,
                    help="other model files to A/B (e.g. before the rewrites)")  # fmt: skip
    args = ap.parse_args(argv)
    media = [m for m in load_media(args.media, args.frames) if len(m[1]) > 1]
    load0 = os.getloadavg()[0]
    t_ab, c_ab = ab(media, args.baseline_models)
    t_steps = steps(media, args.baseline_models)
    ref = float(np.median(t_ab["mediapipe 1 thread"]))
    ref_cpu = float(np.median(c_ab["mediapipe 1 thread"]))
    rows = [{"case": n, "frames": len(v), "p50_ms": float(np.median(v)),
             "p90_ms": float(np.percentile(v, 90)),
             "ratio_to_mediapipe_1_thread": float(np.median(v)) / ref,
             "cpu_p50_ms": float(np.median(c_ab[n])),
             "cpu_ratio_to_mediapipe_1_thread": float(np.median(c_ab[n])) / ref_cpu}
            for n, v in t_ab.items()]  # fmt: skip
    frame_total = float(np.sum(t_steps["frame"]))
    rows += [{"case": f"step: {n}", "frames": len(v), "p50_ms": float(np.median(v)),
              "p90_ms": float(np.percentile(v, 90)),
              **({} if n.startswith("baseline")
                 else {"share_of_frame_time": float(np.sum(v)) / frame_total})}
             for n, v in sorted(t_steps.items())]  # fmt: skip
    notes = [
        f"Inputs: {', '.join(n for n, _ in media)} from {args.media.name}/, at most "
        f"{args.frames} frames each, video mode; the first frame of each clip is not timed.",
        "A/B rows: every extractor on every frame, interleaved (order rotating per frame); "
        "intra-op spinning off everywhere; cpu = process CPU time (all threads) per frame.",
        "step rows: one serial extractor (1 thread, one call per hand, no tasks); share = "
        "summed step time / summed frame time"
        + (
            f"; `baseline models:` rows: the same graph on {args.baseline_models.name}/ "
            "right after it on every frame."
            if args.baseline_models is not None
            else "."
        ),
        f"Load average (1 min) of the shared 2-core machine: {load0:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after.",
    ]
    write_report("landmarks_profile", rows, args.out_dir,
                 title="onnx Holistic profile (CPU, video mode)", notes=notes,
                 columns=("case", "frames", "p50_ms", "p90_ms", "ratio_to_mediapipe_1_thread",
                          "cpu_p50_ms", "cpu_ratio_to_mediapipe_1_thread",
                          "share_of_frame_time"))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
