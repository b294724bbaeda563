"""Landmark extractor benchmark: the onnx Holistic graph vs MediaPipe's legacy Holistic.

Same frames, same run, interleaved frame by frame (so both see the same machine load):

* agreement per part (face, left hand, pose, right hand): the share of frames in which both
  extractors find the part or both miss it;
* mean landmark distance where both find the part, in % of the image diagonal;
* per-frame latency p50/p90 on CPU, video mode (tracking and smoothing on) and still mode.

Inputs: the real clips and photos in ``../shared/data/media`` (``--media``), else the
excerpts in ``tests/data/media``. Targets (issue 13): agreement >= 95 %, distance <= 1 %,
onnx p50 <= 0.7x MediaPipe's.

Writes ``benches/results/landmarks.json`` and ``benches/results/landmarks.md``
(``landmarks_default_threads.*`` with ``--threads 0``).

Usage:
    python benches/landmarks.py [--frames 60] [--threads 1] [--out-dir benches/results]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from signrt.bench import summarize, write_report
from signrt.extract.extractor import create_extractor
from signrt.layouts import FACE, LEFT_HAND, POSE, RIGHT_HAND

PARTS = {"face": FACE, "left_hand": LEFT_HAND, "pose": POSE, "right_hand": RIGHT_HAND}
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "media"
EXCERPTS = ROOT / "tests" / "data" / "media"


def load_media(folder: Path, max_frames: int) -> list[tuple[str, list[npt.NDArray[np.uint8]]]]:
    """Videos (up to ``max_frames`` frames each) and photos of ``folder``, RGB."""
    import cv2

    out: list[tuple[str, list[npt.NDArray[np.uint8]]]] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() == ".mp4":
            cap = cv2.VideoCapture(str(path))
            frames: list[npt.NDArray[np.uint8]] = []
            while len(frames) < max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
            cap.release()
            if frames:
                out.append((path.name, frames))
        elif path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            bgr = cv2.imread(str(path))
            if bgr is not None:
                out.append((path.name, [np.ascontiguousarray(bgr[:, :, ::-1])]))
    return out


def compare(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], size: tuple[int, int],
    acc: dict[str, Any],
) -> None:
    """Accumulate per-part agreement and distance of one frame pair."""
    w, h = size
    diag = math.hypot(w, h)
    for part, rng in PARTS.items():
        pa = bool(np.isfinite(a[rng.start, 0]))
        pb = bool(np.isfinite(b[rng.start, 0]))
        s = acc.setdefault(
            part, {"agree": 0, "frames": 0, "onnx_only": 0, "mp_only": 0, "dist": []}
        )
        s["frames"] += 1
        s["agree"] += pa == pb
        s["onnx_only"] += pa and not pb
        s["mp_only"] += pb and not pa
        if pa and pb:
            d = np.hypot(
                (a[rng.start : rng.stop, 0] - b[rng.start : rng.stop, 0]) * w,
                (a[rng.start : rng.stop, 1] - b[rng.start : rng.stop, 1]) * h,
            )
            s["dist"].append(float(d.mean() / diag))


def run_mode(
    media: list[tuple[str, list[npt.NDArray[np.uint8]]]], static: bool, threads: int | None
) -> tuple[dict[str, Any], list[float], list[float], list[float], list[float]]:
    """Run both extractors over every input.

    Returns the part stats, the wall latencies (onnx, MediaPipe) and the process CPU
    time per frame (all threads; onnx, MediaPipe).
    """
    acc: dict[str, Any] = {}
    t_onnx: list[float] = []
    t_mp: list[float] = []
    c_onnx: list[float] = []
    c_mp: list[float] = []
    onnx = create_extractor("onnx", static_image_mode=static, device="cpu", num_threads=threads)
    try:
        for name, frames in media:
            if not static and len(frames) == 1:
                continue  # photos only in still mode
            onnx.reset()  # type: ignore[attr-defined]
            with create_extractor("legacy", static_image_mode=static, num_threads=threads) as mp:
                for k, f in enumerate(frames):
                    t0, c0 = time.perf_counter(), time.process_time()
                    a = onnx.process(f)
                    t1, c1 = time.perf_counter(), time.process_time()
                    b = mp.process(f)
                    t2, c2 = time.perf_counter(), time.process_time()
                    if k > 0 or len(frames) == 1:  # the first call of a graph warms it up
                        t_onnx.append(t1 - t0)
                        t_mp.append(t2 - t1)
                        c_onnx.append(c1 - c0)
                        c_mp.append(c2 - c1)
                    compare(a, b, (f.shape[1], f.shape[0]), acc)
            print(f"  {name}: {len(frames)} frames", file=sys.stderr, flush=True)
    finally:
        onnx.close()
    return acc, t_onnx, t_mp, c_onnx, c_mp


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", type=Path, default=None, help="folder of clips and photos")
    ap.add_argument("--frames", type=int, default=60, help="frames per clip at most")
    ap.add_argument("--threads", type=int, default=1, help="inference threads of both (0: default)")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benches" / "results")
    args = ap.parse_args(argv)
    folder = args.media or (SHARED if SHARED.is_dir() else EXCERPTS)
    media = load_media(folder, args.frames)
    threads = args.threads or None
    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    cpu_ratios: dict[str, float] = {}
    for mode, static in (("video", False), ("still", True)):
        print(f"{mode} mode", file=sys.stderr)
        acc, t_onnx, t_mp, c_onnx, c_mp = run_mode(media, static, threads)
        on, mp = summarize(t_onnx), summarize(t_mp)
        ratios[mode] = on.median_ms / mp.median_ms
        cpu_ratios[mode] = float(np.median(c_onnx) / np.median(c_mp))
        details[mode] = {
            "onnx": on.to_dict(),
            "mediapipe": mp.to_dict(),
            "cpu_p50_ms": {"onnx": 1e3 * float(np.median(c_onnx)),
                           "mediapipe": 1e3 * float(np.median(c_mp))},
            "parts": {},
        }  # fmt: skip
        for part, s in acc.items():
            dist = s.pop("dist")
            row = {
                "mode": mode,
                "part": part,
                "frames": s["frames"],
                "agreement %": 100.0 * s["agree"] / s["frames"],
                "onnx only": s["onnx_only"],
                "mediapipe only": s["mp_only"],
                "both found": len(dist),
                "mean dist % diag": 100.0 * float(np.mean(dist)) if dist else float("nan"),
                "p90 dist % diag": 100.0 * float(np.percentile(dist, 90)) if dist else float("nan"),
            }
            rows.append(row)
            details[mode]["parts"][part] = row
        rows.append(
            {
                "mode": mode,
                "part": "latency p50 ms (onnx / mediapipe)",
                "frames": len(t_onnx),
                "agreement %": f"{on.median_ms:.1f} / {mp.median_ms:.1f}",
                "onnx only": f"ratio {ratios[mode]:.2f}",
                "mediapipe only": f"cpu ratio {cpu_ratios[mode]:.2f}",
            }
        )
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    simd = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "baseline"
    import onnxruntime

    notes = [
        f"Inputs: {folder.name}/ ({', '.join(n for n, _ in media)}), at most {args.frames} "
        "frames per clip; photos only in still mode.",
        f"Threads: {threads or 'library default'} per model call for both (ONNX Runtime "
        "intra-op, XNNPACK); the onnx graph runs each hand and the face as tasks side by "
        "side, as MediaPipe's executor runs its hand and face nodes.",
        f"Load average (1 min) of the shared machine: {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after the run, on {os.cpu_count()} cores.",
        f"onnx p50 / MediaPipe p50: video {ratios['video']:.2f}, still {ratios['still']:.2f} "
        "(target <= 0.7); process CPU time per frame (all threads), p50 ratio: video "
        f"{cpu_ratios['video']:.2f}, still {cpu_ratios['still']:.2f}.",
        f"onnxruntime {onnxruntime.__version__}; widest x86 vector extension of the CPU: "
        f"{simd} (ONNX Runtime's MLAS and XNNPACK pick their kernels at run time).",
        "Distance: mean over a part's landmarks of the pixel distance, divided by the image "
        "diagonal, averaged over frames where both find the part.",
    ]
    # --threads 0 (each library's default threads) goes to its own report
    write_report(
        "landmarks" if threads is not None else "landmarks_default_threads",
        rows,
        args.out_dir,
        title="Landmarks: onnx Holistic vs MediaPipe legacy Holistic (CPU)",
        notes=notes,
        extra={
            "details": details,
            "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "isa": simd,
            "threads": threads,
            "loadavg_before": load_before,
        },
    )
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
