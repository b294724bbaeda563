"""Per-frame cost of ``Stream.push`` without an engine call, per mode (issue 11 item 6).

Real landmark frames (INCLUDE-dev clips under ``../shared/data/include-dev``, else the
Kaggle sample clips under ``tests/data``) rotate through every stream, so that no case
runs on one hot frame. The model is the packaged demo model (``islr118``, W = 64). Cases,
each opened through ``Recognizer.stream`` with options that never call the engine:

* ``window``: window mode with its defaults (hand gate on), stride 10^9;
* ``window_any_signer``: the same with ``require_hand=False``;
* ``segment_idle``: segment mode with its defaults, motion threshold 10^9 (no segment ever
  opens: the cost of the motion detector alone);
* ``segment_open``: motion threshold 0, rest and max frames 10^9 (every frame after the
  first moving one is recorded into the open segment); the stream is reset every 100
  frames, outside the timing, so that the open segments are as long as real signs;
* ``window_energy``, ``segment_open_energy``: ``window`` and ``segment_open`` with
  ``score="energy"`` (the score kind only matters at an engine call);
* ``feature_stream``: the native window alone (``FeatureStream.push``), for reference.

The cases are timed in turn, ``--rounds`` rounds of ``--pushes`` pushes each; the best and
the median round of each are kept (wall clock), so that a load change on a shared machine
hits every case alike, and the best round's thread CPU time (the wall time less the time
the process waited for a core). ``--before`` names an earlier run's JSON (e.g. before a
change) whose figures are printed beside this run's.

Writes ``<out>/<name>.json`` and ``<out>/<name>.md``.

Usage:
    python benches/stream_push.py [--rounds 30] [--pushes 2000] [--before OLD.json]
        [--out benches/results] [--name stream_push] [--note TEXT]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import signrt
from signrt import _native
from signrt.bench import machine_info
from signrt.features import FeatureStream
from signrt.io import index_dataset

log = logging.getLogger("stream_push")
ROOT = Path(__file__).resolve().parents[1]
DATA = (ROOT.parent / "shared" / "data" / "include-dev",
        ROOT.parents[1] / "shared" / "data" / "include-dev",
        ROOT / "tests" / "data" / "asl-signs-sample")
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "window": ("window", {"stride": 10**9}),
    "window_any_signer": ("window", {"stride": 10**9, "require_hand": False}),
    "segment_idle": ("segment", {"motion_threshold": 1e9}),
    "segment_open": ("segment", {"motion_threshold": 0.0, "rest_frames": 10**9,
                                 "max_frames": 10**9}),
    # the energy score changes only what happens at an engine call
    "window_energy": ("window", {"stride": 10**9, "score": "energy", "threshold": 1.0}),
    "segment_open_energy": ("segment", {"motion_threshold": 0.0, "rest_frames": 10**9,
                                        "max_frames": 10**9, "score": "energy",
                                        "threshold": 1.0}),
}  # fmt: skip
#: Frames per open segment in ``segment_open`` (a sign of 4 s at 25 fps).
SEGMENT = 100


def real_frames(limit: int) -> tuple[list[npt.NDArray[np.float32]], str]:
    """Up to ``limit`` real (543, 3) float32 frames, a few clips of every sign."""
    for root in DATA:
        if not root.is_dir():
            continue
        records = index_dataset(root)
        by_label: dict[str, list[Any]] = {}
        for r in records:
            by_label.setdefault(str(r.path.parent), []).append(r)
        frames: list[npt.NDArray[np.float32]] = []
        for k in range(3):
            for recs in by_label.values():
                if k < len(recs):
                    frames += [np.ascontiguousarray(f, dtype=np.float32) for f in recs[k].read()]
        if frames:
            return frames[:limit], str(root)
    raise SystemExit("no landmark data found (../shared/data/include-dev or tests/data)")


def measure(rec: Any, frames: list[npt.NDArray[np.float32]], rounds: int, n: int) -> dict[str, Any]:
    """Best and median wall-clock µs per push of every case (interleaved rounds), and the
    best thread CPU time (``time.thread_time``: without the time the process waited for a
    core on a loaded machine)."""
    streams: dict[str, Any] = {k: rec.stream(mode, **o) for k, (mode, o) in CASES.items()}
    window = FeatureStream(rec.spec)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in [*CASES, "feature_stream"]}
    i = 0
    for _ in range(rounds):
        for name in times:
            wall = cpu = 0.0
            if name == "feature_stream":
                push = window.push
                t0, c0 = time.perf_counter(), time.thread_time()
                for j in range(i, i + n):
                    push(frames[j % len(frames)])
                wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
            else:
                st = streams[name]
                spush = st.push
                # segment_open: segments of SEGMENT frames, reset between them (untimed)
                step = SEGMENT if name.startswith("segment_open") else n
                for k0 in range(i, i + n, step):
                    st.reset()
                    t0, c0 = time.perf_counter(), time.thread_time()
                    for j in range(k0, k0 + step):
                        spush(frames[j % len(frames)], j / 25.0)
                    wall += time.perf_counter() - t0
                    cpu += time.thread_time() - c0
            times[name].append((wall / n * 1e6, cpu / n * 1e6))
        i += n
    calls = {k: st.engine_calls for k, st in streams.items()}
    if any(calls.values()):
        raise SystemExit(f"a case called the engine: {calls}")
    return {k: {"best_us": round(min(w for w, _ in v), 3),
                "median_us": round(statistics.median(w for w, _ in v), 3),
                "cpu_best_us": round(min(c for _, c in v), 3)}
            for k, v in times.items()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)  # --pushes must be a multiple of 100
    ap.add_argument("--pushes", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=6000, help="real frames rotating")
    ap.add_argument("--before", help="an earlier run's JSON, shown beside this run")
    ap.add_argument("--out", default=str(ROOT / "benches" / "results"))
    ap.add_argument("--name", default="stream_push")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rec = signrt.load(signrt.recognizer.default_model_path(), device="cpu")
    frames, source = real_frames(args.frames)
    log.info("%d real frames from %s", len(frames), source)
    result = measure(rec, frames, args.rounds, args.pushes)
    before = json.loads(Path(args.before).read_text())["push_us"] if args.before else None
    report = {
        "kind": "signrt.bench.stream_push",
        "note": args.note,
        "model": str(signrt.recognizer.default_model_path().name),
        "spec": {"landmarks": len(rec.spec.landmarks), "max_len": rec.spec.max_len},
        "data": {"source": source, "frames": len(frames)},
        "rounds": args.rounds, "pushes_per_round": args.pushes,
        "push_us": result,
        "before_push_us": before,
        "environment": {**machine_info(), "simd": str(_native.simd),
                        "load_average": [round(x, 2) for x in os.getloadavg()]},
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(report))
    print(json.dumps(result, indent=2))
    return 0


def markdown(r: dict[str, Any]) -> str:
    """The Markdown table of a report."""
    before = r["before_push_us"] or {}
    lines = [
        "# `Stream.push` without an engine call, per mode",
        "",
        f"{r['note']}".strip(),
        "",
        f"Model {r['model']} ({r['spec']['landmarks']} landmarks, W = {r['spec']['max_len']}); "
        f"{r['data']['frames']} real frames from `{r['data']['source']}` rotating; "
        f"{r['rounds']} interleaved rounds of {r['pushes_per_round']} pushes per case; "
        f"CPU {r['environment']['cpu']} ({r['environment']['cores']} cores; instruction "
        f"sets {r['environment']['instruction_set']}; the native window runs its "
        f"`{r['environment']['simd']}` path); load average "
        f"{r['environment']['load_average']} during the run (a shared machine: the best "
        "round is the cost, the median shows the load). Target ≤ 2 µs.",
        "",
        "| case | before best (µs) | before median (µs) | best (µs) | median (µs) "
        "| best thread CPU (µs) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, v in r["push_us"].items():
        b = before.get(k, {})
        lines.append(f"| {k} | {b.get('best_us', '–')} | {b.get('median_us', '–')} | "
                     f"{v['best_us']} | {v['median_us']} | "
                     f"{v.get('cpu_best_us', '–')} |")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
