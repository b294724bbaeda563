"""Profile of the onnx Holistic graph on CPU: session settings A/B and time per step.

Every variant (ONNX Runtime threads, intra-op spinning, the face thread) and MediaPipe's
legacy Holistic (the reference) process the same frames of the real clips, interleaved
frame by frame in one run (the machine is shared: compare ratios, not absolute times).
Then one serial extractor (no face thread) is timed per model call and per crop.

Writes ``benches/results/landmarks_profile.json`` and ``.md``.

Usage:
    python benches/landmarks_profile.py [--media DIR] [--frames 60]
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
VARIANTS: dict[str, dict[str, Any]] = {
    "onnx 1 thread, serial": {"num_threads": 1, "session_config": SPIN_OFF, "parallel": False},
    "onnx 1 thread, serial, hand 1 thread": {
        "num_threads": 1, "session_config": SPIN_OFF, "parallel": False, "hand": 1},
    "onnx 1 thread, serial, hand 1 thread, BGR input": {
        "num_threads": 1, "session_config": SPIN_OFF, "parallel": False, "hand": 1,
        "bgr": True},
    "onnx 1 thread, serial, hand 1 thread, BGR input converted first (former path)": {
        "num_threads": 1, "session_config": SPIN_OFF, "parallel": False, "hand": 1,
        "bgr": "convert"},
    "onnx default threads, face thread": {"session_config": SPIN_OFF},
}
REFERENCES: dict[str, int | None] = {"mediapipe default threads": None, "mediapipe 1 thread": 1}


def ab(media: list[tuple[str, list[np.ndarray]]]) -> dict[str, list[float]]:
    """Per-frame ms of every variant and reference, interleaved (order rotating)."""
    times: dict[str, list[float]] = defaultdict(list)
    onnx = {}
    for n, kw in VARIANTS.items():
        kw = {k: v for k, v in kw.items() if k not in ("bgr", "hand")}
        cls = OnnxHolisticExtractor
        if "hand" in VARIANTS[n]:
            cls = type("Hand1", (OnnxHolisticExtractor,), {"_HAND_THREADS": 1})
        onnx[n] = cls(device="cpu", **kw)
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
                    t0 = time.perf_counter()
                    if n in mps:
                        mps[n].process(f)
                    elif VARIANTS[n].get("bgr") == "convert":
                        onnx[n].process(np.ascontiguousarray(bgr[:, :, ::-1]))
                    elif VARIANTS[n].get("bgr"):
                        onnx[n].process(bgr, bgr=True)
                    else:
                        onnx[n].process(f)
                    if k > 0:
                        times[n].append((time.perf_counter() - t0) * 1e3)
            for e in mps.values():
                e.close()
            print(f"  {name}: {len(frames)} frames", file=sys.stderr, flush=True)
    finally:
        for e in onnx.values():
            e.close()
    return times


def steps(media: list[tuple[str, list[np.ndarray]]]) -> dict[str, list[float]]:
    """ms per model call and per crop of a serial 1-thread extractor."""
    times: dict[str, list[float]] = defaultdict(list)
    ex = OnnxHolisticExtractor(device="cpu", num_threads=1, parallel=False,
                               session_config=SPIN_OFF)  # fmt: skip
    run, crop = ex._run, ops.crop

    def timed_run(name: str, x: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return run(name, x)
        finally:
            times[f"model {name} (batch {len(x)})"].append((time.perf_counter() - t0) * 1e3)

    def timed_crop(image: Any, roi: Any, w: int, h: int, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return crop(image, roi, w, h, **kw)
        finally:
            times[f"crop {w}x{h}"].append((time.perf_counter() - t0) * 1e3)

    ex._run = timed_run  # type: ignore[method-assign]
    ops.crop = timed_crop
    try:
        for _name, frames in media:
            ex.reset()
            for k, f in enumerate(frames):
                t0 = time.perf_counter()
                ex.process(f)
                if k > 0:
                    times["frame"].append((time.perf_counter() - t0) * 1e3)
    finally:
        ops.crop = crop
        ex.close()
    return times


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", type=Path, default=SHARED if SHARED.is_dir() else EXCERPTS)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    media = [m for m in load_media(args.media, args.frames) if len(m[1]) > 1]
    load0 = os.getloadavg()[0]
    t_ab = ab(media)
    t_steps = steps(media)
    ref = float(np.median(t_ab["mediapipe 1 thread"]))
    rows = [{"case": n, "frames": len(v), "p50_ms": float(np.median(v)),
             "p90_ms": float(np.percentile(v, 90)),
             "ratio_to_mediapipe_1_thread": float(np.median(v)) / ref}
            for n, v in t_ab.items()]  # fmt: skip
    frame_total = float(np.sum(t_steps["frame"]))
    rows += [{"case": f"step: {n}", "frames": len(v), "p50_ms": float(np.median(v)),
              "p90_ms": float(np.percentile(v, 90)),
              "share_of_frame_time": float(np.sum(v)) / frame_total}
             for n, v in sorted(t_steps.items())]  # fmt: skip
    notes = [
        f"Inputs: {', '.join(n for n, _ in media)} from {args.media.name}/, at most "
        f"{args.frames} frames each, video mode; the first frame of each clip is not timed.",
        "A/B rows: every extractor on every frame, interleaved (order rotating per frame).",
        "step rows: one serial extractor (1 thread, no spinning, no face thread); share = "
        "summed step time / summed frame time.",
        f"Load average (1 min) of the shared 2-core machine: {load0:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after.",
    ]
    write_report("landmarks_profile", rows, args.out_dir,
                 title="onnx Holistic profile (CPU, video mode)", notes=notes,
                 columns=("case", "frames", "p50_ms", "p90_ms", "ratio_to_mediapipe_1_thread",
                          "share_of_frame_time"))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
