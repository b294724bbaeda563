"""Engine on the real frames: bucketed vs full-length (max_len) inference, side by side.

Writes ``benches/results/buckets.json`` and ``buckets.md``.

The model is the bundled demo model's recipe (``models/demo/train.toml``: cnn_transformer,
dim 128, 2 stages, islr118 with max_len 64), built with fixed random weights (latency does
not depend on the weights) and exported with ``signrt.train.export`` and its default
buckets (16, 32, 64), which the export checks to be inert. The same file is loaded twice:
``length_buckets=True`` (the engine runs on the real frames rounded up to a bucket) and
``length_buckets=False`` (always 64 frames, as before), both on the CPU with one
onnxruntime thread.

Cases (batch 1, real clips of the Kaggle ASL Signs sample, CC BY 4.0 Google):

* ``predict T=n``: ``Recognizer.predict`` on the first n frames of each clip, rotating
  through the clips; the two recognizers alternate call by call;
* ``stream``: each clip pushed frame by frame into a window Stream (stride 4) opened when
  the signer appears (a fresh stream per clip, as after a gap without a signer); the
  latency of the pushes that classify, rotating through the clips, alternating the two.

Usage:
    python benches/buckets.py [--data DIR] [--clips 42] [--duration 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from signrt.bench import summarize, write_report

ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = {"dim": 128, "stages": 2, "convs_per_stage": 2, "kernel_size": 17, "heads": 4,
              "dropout": 0.1, "drop_path": 0.1, "head_dropout": 0.3}  # fmt: skip
LENGTHS = (8, 16, 24, 32, 48, 64)
COLUMNS = ("case", "frames", "bucket", "bucketed_median_ms", "bucketed_p99_ms",
           "full_median_ms", "full_p99_ms", "median_saving", "calls")  # fmt: skip


def build_model(path: Path) -> dict[str, Any]:
    """Export the demo recipe's cnn_transformer (random weights) with default buckets."""
    import torch

    from signrt.spec import FeatureSpec
    from signrt.train.export import export_model
    from signrt.train.models import build_model as build

    torch.manual_seed(0)
    torch.set_num_threads(1)
    spec = FeatureSpec.preset("islr118")
    labels = [f"sign{i:02d}" for i in range(20)]
    model = build("cnn_transformer", spec, len(labels), DEMO_MODEL).eval()
    report = export_model(model, spec, labels, path, info={"architecture": "cnn_transformer"})
    return dict(report.info["export"]["time_axis"])


def load_clips(root: Path, n: int) -> list[npt.NDArray[np.float32]]:
    from signrt.io import index_dataset, read_clip

    records = index_dataset(root)[:n]
    return [np.asarray(read_clip(r.path), dtype=np.float32) for r in records]


def alternate(calls: list[Any], duration_s: float) -> tuple[list[float], list[float]]:
    """Time ``calls`` (pairs of zero-argument functions) alternating A and B until done."""
    a_s: list[float] = []
    b_s: list[float] = []
    clock = time.perf_counter
    end = clock() + duration_s
    i = 0
    while clock() < end or i < 2 * len(calls):
        fa, fb = calls[i % len(calls)]
        first, second = (fa, fb) if i % 2 == 0 else (fb, fa)  # who goes first alternates
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        (a_s if first is fa else b_s).append(t1 - t0)
        (b_s if first is fa else a_s).append(t2 - t1)
        i += 1
    return a_s, b_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "asl-signs-42")
    parser.add_argument("--clips", type=int, default=42)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=ROOT / "benches" / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from signrt.recognizer import load
    from signrt.runtime.model import bucket_length

    load_before = os.getloadavg()[0]
    clips = load_clips(args.data, args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo_recipe.onnx"
        axis = build_model(path)
        opts: dict[str, Any] = {"device": "cpu", "intra_op_num_threads": 1}
        bucketed = load(path, length_buckets=True, **opts)
        full = load(path, length_buckets=False, **opts)
    buckets = bucketed.lengths
    rows: list[dict[str, Any]] = []

    def row(case: str, frames: int | str, bucket: int | str, a: list[float], b: list[float]
            ) -> None:
        ta, tb = summarize(a), summarize(b)
        rows.append({"case": case, "frames": frames, "bucket": bucket,
                     "bucketed_median_ms": ta.median_ms, "bucketed_p99_ms": ta.p99_ms,
                     "full_median_ms": tb.median_ms, "full_p99_ms": tb.p99_ms,
                     "median_saving": 1.0 - ta.median_ms / tb.median_ms,
                     "calls": ta.count})  # fmt: skip

    for n in LENGTHS:
        cut = [c[:n] for c in clips if c.shape[0] >= n] or [c[:n] for c in clips]
        calls = [(lambda c=c: bucketed.predict(c), lambda c=c: full.predict(c)) for c in cut]
        a, b = alternate(calls, args.duration)
        real = max(int(bucketed.preprocess(c)[1].sum()) for c in cut)
        row("predict", n, bucket_length(real, buckets), a, b)

    short_calls = [0, 0]  # classifications with fewer than max_len frames pushed, all

    def stream_samples(rec: Any, clip: npt.NDArray[np.float32], out: list[float]) -> None:
        stream = rec.stream("window", stride=4)
        clock = time.perf_counter
        for t, frame in enumerate(clip):
            before = stream.engine_calls
            t0 = clock()
            stream.push(frame, t / 30.0)
            dt = clock() - t0
            if stream.engine_calls > before:
                out.append(dt)
                if rec is bucketed:
                    short_calls[0] += int(t + 1 < rec.spec.max_len)
                    short_calls[1] += 1

    sa: list[float] = []
    sb: list[float] = []
    end = time.perf_counter() + args.duration * 3
    i = 0
    while time.perf_counter() < end or i < 2 * len(clips):
        clip = clips[i % len(clips)]
        order = [(bucketed, sa), (full, sb)] if i % 2 == 0 else [(full, sb), (bucketed, sa)]
        for rec, out in order:
            stream_samples(rec, clip, out)
        i += 1
    frames = [c.shape[0] for c in clips]
    row("stream", f"{min(frames)}..{max(frames)}", "16..64", sa, sb)

    notes = [
        "model: cnn_transformer with the demo recipe's hyper-parameters (random weights), "
        f"islr118 max_len 64, buckets {list(buckets)}; export check: {axis}",
        f"clips: {len(clips)} real clips of {args.data.name} (T = {min(frames)}..{max(frames)} "
        "frames; ASL Signs, CC BY 4.0 Google), batch 1, CPU, 1 onnxruntime thread; the two "
        "recognizers alternate call by call in one run",
        "bucketed: the engine runs on the real frames rounded up to a bucket; full: always 64",
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (a shared "
        "machine: p99 reflects other processes; medians and their ratio are the result)",
        f"stream: a fresh window Stream per clip, stride 4; {short_calls[0]} of "
        f"{short_calls[1]} classifications came before 64 frames were pushed (those are the "
        "ones a bucket can shorten; a full window runs at 64 either way)",
    ]
    extra = {"buckets": list(buckets), "time_axis": axis, "lengths": list(LENGTHS)}
    json_path, md_path = write_report("buckets", rows, args.out,
                                      title="signrt engine on the real frames (buckets)",
                                      notes=notes, columns=COLUMNS, extra=extra)
    from signrt.bench import markdown_table

    print(markdown_table(rows, COLUMNS), end="")
    for note in notes:  # not `n`: that is an int above
        print(f"- {note}")
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
