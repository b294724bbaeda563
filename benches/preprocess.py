"""Preprocessing benchmark: signrt's native core vs its memory floor, NumPy and PyTorch.

One run measures, side by side on the same real clips and the same machine, with the
``islr118`` spec (max_len 64):

* **one clip per input layout** (C float32, C float64, pandas-loaded, polars-loaded,
  Fortran order, reversed), T in {16, 64, 384}, the clips rotating through the cache (every
  real clip found under ``tests/data`` and ``../shared/data``, cut or looped to T frames):
  ``signrt.preprocess`` beside the floor ``np.copyto`` of the same input into a C array of
  its dtype (the cost of reading the input once), measured in interleaved rounds. Each
  instruction set runs in its own process: the CPU's widest, ``SIGNRT_SIMD=avx2`` (the path
  an AVX2-only machine runs) and ``SIGNRT_DISABLE_SIMD=1`` (the baseline); the NumPy
  reference and ``torch_preprocess`` below (the seed's PyTorch preprocessing, one thread)
  run on the same C float32 clips in each process;
* batch throughput (``preprocess_batch``, rayon) vs a loop of single-clip calls;
* the streaming window (W = 64) from Python: ``FeatureStream.push`` and ``features()``;
* ``read_clip`` of the Kaggle parquet clips vs pyarrow's raw read of the same files.

Writes ``benches/results/preprocess.json`` and ``benches/results/preprocess.md``.

Usage:
    python benches/preprocess.py [--quick] [--out-dir benches/results]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from signrt import FeatureSpec, _native, preprocess, preprocess_batch, preprocess_reference
from signrt.bench import write_report
from signrt.features import FeatureStream, Preprocessor
from signrt.io import read_clip

SPEC_NAME = "islr118"
LENGTHS = (16, 64, 384)
ROOT = Path(__file__).resolve().parents[1]
#: Where the real clips come from: the repository's test data and the shared data folder
#: (``--data`` / ``SIGNRT_BENCH_DATA`` names another one, e.g. from a git worktree).
DATA_DIRS = (ROOT / "tests" / "data",
             Path(os.environ.get("SIGNRT_BENCH_DATA") or ROOT.parent / "shared" / "data"))
LAYOUT_NAMES = ("C float32", "C float64", "pandas-loaded", "polars-loaded", "Fortran order",
                "reversed")


# --------------------------------------------------------------------------- PyTorch
def torch_preprocess(
    clip: npt.NDArray[np.float32], spec: FeatureSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """DESIGN §3 with plain torch ops on CPU, as a user would write it (float32)."""
    x = torch.from_numpy(clip)
    x = torch.where(torch.isfinite(x), x, torch.tensor(float("nan")))
    c = spec.coords
    sel = x[:, list(spec.landmarks), :c]
    if spec.drop_empty_frames:
        keep = ~torch.isnan(sel).all(dim=2).all(dim=1)
        sel, x = sel[keep], x[keep]
    kind = spec.normalize.kind
    if kind == "reference_rms":
        m = torch.nanmean(x[:, spec.normalize.reference, :c], dim=0)
        m = torch.nan_to_num(m, nan=0.5)
        s = torch.sqrt(torch.nanmean(((sel - m) ** 2).reshape(-1, c), dim=0))
        s = torch.where(torch.isnan(s) | (s < 1e-6), torch.ones_like(s), s)
        sel = (sel - m) / s
    elif kind == "shoulders":
        a, b = x[:, 500, :c], x[:, 501, :c]
        m = torch.nan_to_num(torch.nanmean((a + b) / 2, dim=0), nan=0.5)
        d = torch.nanmean(torch.linalg.vector_norm(a[:, :2] - b[:, :2], dim=1))
        d = torch.where(torch.isnan(d) | (d < 1e-6), torch.ones_like(d), d)
        sel = (sel - m) / d
    t, n = sel.shape[0], spec.max_len
    if t > n:
        if spec.fit == "truncate":
            sel = sel[:n]
        else:
            pos = torch.arange(n, dtype=torch.float64) * (t - 1) / max(n - 1, 1)
            lo = pos.floor().long()
            hi = torch.clamp(lo + 1, max=t - 1)
            w = (pos - lo).to(sel.dtype)[:, None, None]
            interp = sel[lo] * (1 - w) + sel[hi] * w
            sel = torch.where(w > 0, interp, sel[lo])
        t = n
    parts = [sel]
    for k in spec.motion_lags:
        d = torch.zeros_like(sel)
        if t > k:
            d[: t - k] = sel[k:] - sel[: t - k]
        parts.append(d)
    feats = torch.nan_to_num(torch.cat(parts, dim=2), nan=spec.nan_fill)
    out = torch.zeros(n, spec.num_features)
    out[:t] = feats.reshape(t, spec.num_features)
    mask = torch.zeros(n)
    mask[:t] = 1.0
    return out, mask


# --------------------------------------------------------------------------- data
def clip_files() -> list[Path]:
    """Every real clip (parquet / npz / npy) under the data folders, sorted."""
    found: set[Path] = set()
    for d in DATA_DIRS:
        if d.is_dir():
            for ext in ("*.parquet", "*.npz", "*.npy"):
                found.update(p.resolve() for p in d.rglob(ext))
    return sorted(found)


def real_clips(t: int, limit: int | None = None) -> list[npt.NDArray[np.float32]]:
    """The real clips, each cut or looped to ``t`` frames, C-contiguous float32."""
    out: list[npt.NDArray[np.float32]] = []
    for path in clip_files()[:limit]:
        c = read_clip(path)
        if len(c):
            out.append(np.ascontiguousarray(c[np.arange(t) % len(c)], dtype=np.float32))
    if not out:
        raise SystemExit(f"no real clips found under {', '.join(map(str, DATA_DIRS))}")
    return out


def layout(name: str, clip: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
    """``clip`` (C float32) as a user holds it in the given layout (the same values)."""
    if name == "C float32":
        return clip
    if name == "C float64":
        return clip.astype(np.float64)
    if name == "Fortran order":
        return np.asfortranarray(clip)
    if name == "reversed":
        return clip[::-1].copy()[::-1]  # frames in order, read through a negative stride
    flat = clip.reshape(-1, 3).astype(np.float64)  # Kaggle files store doubles
    cols = {"x": flat[:, 0], "y": flat[:, 1], "z": flat[:, 2]}
    if name == "pandas-loaded":
        import pandas as pd

        df = pd.DataFrame(cols)
        return df[["x", "y", "z"]].values.reshape(-1, 543, 3)  # type: ignore[no-any-return]
    if name == "polars-loaded":
        import polars as pl

        return pl.DataFrame(cols).select(["x", "y", "z"]).to_numpy().reshape(-1, 543, 3)
    raise ValueError(name)


#: The clock of the single-clip rows: this thread's CPU time (``time.thread_time``), so that
#: the time slices other processes take on a shared machine are not counted (they still
#: share the caches and the memory bus); ``SIGNRT_BENCH_CLOCK=wall`` uses wall time.
CLOCK = time.perf_counter if os.environ.get("SIGNRT_BENCH_CLOCK") == "wall" else time.thread_time


def per_call_us(
    fn: Callable[[npt.NDArray[Any]], object], xs: list[npt.NDArray[Any]], reps: int
) -> float:
    """Mean µs of ``fn(x)`` over ``reps`` calls rotating through ``xs`` (:data:`CLOCK`)."""
    n = len(xs)
    t0 = CLOCK()
    for k in range(reps):
        fn(xs[k % n])
    return (CLOCK() - t0) / reps * 1e6


def interleaved(fns: dict[str, tuple[Callable[[npt.NDArray[Any]], object], list[npt.NDArray[Any]]]],
                rounds: int, reps: int) -> dict[str, float]:
    """Median µs per call of each function, measured round-robin (same conditions)."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for fn, xs in fns.values():
        for x in xs:  # warm up: first touch, caches, thread-local scratch
            fn(x)
    for _ in range(rounds):
        for k, (fn, xs) in fns.items():
            samples[k].append(per_call_us(fn, xs, reps))
    return {k: float(np.median(v)) for k, v in samples.items()}


# --------------------------------------------------------------------------- worker
def worker(quick: bool) -> dict[str, Any]:
    """Layout rows on this process's instruction set (read once at import)."""
    torch.set_num_threads(1)
    spec = FeatureSpec.preset(SPEC_NAME)
    pre = Preprocessor(spec)
    rounds = 7
    out: dict[str, Any] = {"simd": _native.simd, "T": {}}
    for t in LENGTHS:
        clips = real_clips(t)
        reps = max(len(clips), int((2e4 if quick else 6e4) / t))
        fns: dict[str, tuple[Callable[[npt.NDArray[Any]], object], list[npt.NDArray[Any]]]] = {}
        for name in LAYOUT_NAMES:
            xs = [layout(name, c) for c in clips]
            dsts = [np.empty(x.shape, x.dtype) for x in xs]
            it = {"i": 0}

            def copy(x: npt.NDArray[Any], dsts: list[npt.NDArray[Any]] = dsts,
                     it: dict[str, int] = it, n: int = len(xs)) -> None:
                np.copyto(dsts[it["i"] % n], x)
                it["i"] += 1

            fns[f"copyto {name}"] = (copy, xs)
            fns[f"signrt {name}"] = (pre, xs)
        res = interleaved(fns, rounds, reps)
        few = clips[:12]
        slow = interleaved({"numpy": (lambda c: preprocess_reference(c, spec), few),
                            "torch": (lambda c: torch_preprocess(c, spec), few)},
                           rounds=3, reps=len(few))
        out["T"][str(t)] = {**res, **slow, "clips": len(clips)}
    return out


def run_worker(env_extra: dict[str, str], quick: bool) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("SIGNRT_SIMD", "SIGNRT_DISABLE_SIMD")}
    env.update(env_extra)
    argv = [sys.executable, __file__, "--worker"] + (["--quick"] if quick else [])
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True,
                          timeout=3600)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def merge_passes(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over passes of every timing of a worker's results."""
    out: dict[str, Any] = {"simd": runs[0]["simd"], "T": {}, "passes": len(runs)}
    for t, first in runs[0]["T"].items():
        out["T"][t] = {k: float(np.median([r["T"][t][k] for r in runs])) for k in first}
    return out


def check_parity(spec: FeatureSpec, clips: list[npt.NDArray[np.float32]]) -> float:
    """Max abs difference of native (every layout) and torch against the reference."""
    worst = 0.0
    for clip in clips:
        ref, _ = preprocess_reference(clip, spec)
        tor, _ = torch_preprocess(clip, spec)
        worst = max(worst, float(np.abs(tor.numpy() - ref).max()))
        for name in LAYOUT_NAMES:
            nat, _ = preprocess(layout(name, clip), spec)
            worst = max(worst, float(np.abs(nat - ref).max()))
    return worst


# --------------------------------------------------------------------------- main
def run(quick: bool, out_dir: Path) -> tuple[Path, Path]:
    load_before = os.getloadavg()[0]
    torch.set_num_threads(1)
    spec = FeatureSpec.preset(SPEC_NAME)
    parity = check_parity(spec, real_clips(64, limit=6) + real_clips(384, limit=2))
    cpu = _native.simd
    configs: list[tuple[str, dict[str, str]]] = [(cpu, {})]
    if cpu == "avx512":
        configs.append(("avx2", {"SIGNRT_SIMD": "avx2"}))
    if cpu != "baseline":
        configs.append(("baseline", {"SIGNRT_DISABLE_SIMD": "1"}))
    # The instruction sets take turns (passes), so that a change of the machine's load during
    # the run touches all of them alike; each figure is the median over the passes.
    passes: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in configs}
    for _ in range(1 if quick else 3):
        for label, env in configs:
            passes[label].append(run_worker(env, quick))
    workers = {label: merge_passes(runs) for label, runs in passes.items()}
    rows: list[dict[str, Any]] = []

    def row(bench: str, isa: str, t: Any, unit: str, ours: float, floor: Any = "",
            vs_c32: Any = "", numpy_v: Any = "", torch_v: Any = "", higher: bool = False,
            target: str = "") -> dict[str, Any]:
        def ratio(other: Any) -> Any:
            if other == "" or other is None:
                return ""
            return ours / other if higher else other / ours

        r = {"benchmark": bench, "isa": isa, "T": t, "unit": unit, "signrt": ours,
             "np.copyto floor": floor,
             "× floor": ours / floor if floor != "" else "",
             "× C float32": vs_c32, "numpy_ref": numpy_v, "torch": torch_v,
             "speedup_vs_numpy": ratio(numpy_v), "speedup_vs_torch": ratio(torch_v),
             "target": target}
        rows.append(r)
        return r

    for res in workers.values():
        for t in LENGTHS:
            m = res["T"][str(t)]
            c32 = m["signrt C float32"]
            for name in LAYOUT_NAMES:
                ours = m[f"signrt {name}"]
                target = ""
                if t == 64 and name == "C float32":
                    target = "≤ 1.5× floor, ≥ 30× torch"
                elif t == 64 and name in ("pandas-loaded", "polars-loaded"):
                    target = "≤ 1.3× C float32, ≥ 30× torch"
                elif t == 64:
                    target = "≤ 1.3× C float32"
                row(f"one clip, {name}", res["simd"], t, "µs/clip", ours,
                    m[f"copyto {name}"], ours / c32, m["numpy"], m["torch"], target=target)

    # Batch throughput: real clips, mixed lengths (16-128 frames).
    rng = np.random.default_rng(0)
    n_clips = 256 if quick else 1024
    base = real_clips(128)
    lengths = rng.integers(16, 129, n_clips)
    clips = [base[i % len(base)][: int(t)] for i, t in enumerate(lengths)]
    t0 = time.perf_counter()
    reps = 3 if quick else 5
    times = []
    preprocess_batch(clips, spec)
    for _ in range(reps):
        t0 = time.perf_counter()
        preprocess_batch(clips, spec)
        times.append(time.perf_counter() - t0)
    batch_rate = n_clips / float(np.median(times))

    def loop(fn: Any, cs: list[npt.NDArray[np.float32]]) -> float:
        start = time.perf_counter()
        out = [fn(c, spec) for c in cs]
        np.stack([np.asarray(f) for f, _ in out])
        np.stack([np.asarray(m) for _, m in out])
        return len(cs) / (time.perf_counter() - start)

    loop_native = max(loop(preprocess, clips) for _ in range(3))
    loop_numpy = loop(preprocess_reference, clips[:128])
    loop_torch = loop(torch_preprocess, clips[:128])
    label = f"{n_clips} real clips, T 16-128"
    row(f"batch: preprocess_batch ({label})", cpu, "mixed", "clips/s", batch_rate,
        numpy_v=loop_numpy, torch_v=loop_torch, higher=True)
    row(f"batch: loop of preprocess + np.stack ({label})", cpu, "mixed", "clips/s",
        loop_native, numpy_v=loop_numpy, torch_v=loop_torch, higher=True)

    # Streaming window, W = 64, from Python, real frames.
    frames = np.concatenate(real_clips(64))
    stream = FeatureStream(spec)
    for f in frames[:200]:
        stream.push(f)

    def timed(fn: Callable[[], object], n: int) -> float:
        for _ in range(min(n, 100)):
            fn()
        best = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best.append((time.perf_counter() - t0) / n * 1e6)
        return float(np.median(best))

    warm = frames[: spec.max_len]
    it = {"i": 0}

    def push_warm() -> None:
        stream.push(warm[it["i"] % len(warm)])
        it["i"] += 1

    def push_cold() -> None:
        stream.push(frames[it["i"] % len(frames)])
        it["i"] += 1

    n_push = 2000 if quick else 20000
    push_w = timed(push_warm, n_push)
    push_c = timed(push_cold, n_push)
    feats_us = timed(stream.features, 500 if quick else 3000)
    window = frames[-spec.max_len:]
    win_ref = timed(lambda: preprocess_reference(window, spec), 20)
    win_torch = timed(lambda: torch_preprocess(window, spec), 20)
    row("stream: push(frame), warm frames", "scalar", 1, "µs/frame", push_w, target="≤ 2 µs")
    row("stream: push(frame), cold frames", "scalar", 1, "µs/frame", push_c)
    row("stream: features() (W=64)", cpu, 64, "µs/window", feats_us, numpy_v=win_ref,
        torch_v=win_torch, target="≤ 30 µs")

    # read_clip of the Kaggle parquet clips vs pyarrow's raw read of the same files.
    import pyarrow.parquet as pq

    parquet = [p for p in clip_files() if p.suffix == ".parquet"]
    io_rows: dict[str, float] = {}
    if parquet:
        res_io = interleaved({"read_clip": (read_clip, parquet),  # type: ignore[dict-item]
                              "pyarrow": (pq.read_table, parquet)},  # type: ignore[dict-item]
                             rounds=5 if quick else 15, reps=len(parquet) * 4)
        io_rows = res_io
        row(f"read_clip(parquet) vs pq.read_table ({len(parquet)} Kaggle files)", "-", "file",
            "µs/file", res_io["read_clip"], target="≤ 1.2× pyarrow")
        rows[-1]["pyarrow raw read"] = res_io["pyarrow"]
        rows[-1]["× pyarrow"] = res_io["read_clip"] / res_io["pyarrow"]

    # Summary of the targets (T = 64).
    def at64(isa: str, name: str) -> dict[str, Any]:
        return next(r for r in rows if r["isa"] == isa and r["T"] == 64
                    and r["benchmark"] == f"one clip, {name}")

    notes = [
        f"spec {SPEC_NAME} (P={spec.num_points}, F={spec.num_features}, "
        f"max_len={spec.max_len}); {workers[cpu]['T']['64']['clips']:.0f} real clips (every "
        f"clip file under {', '.join(d.name for d in DATA_DIRS if d.is_dir())}: Kaggle ASL "
        "Signs samples, and INCLUDE clips without a face where present) cut or looped to T "
        "frames, rotating through the cache.",
        "isa: the instruction set of the core's hot path. This machine's CPU has "
        f"{cpu}; the avx2 rows force the AVX2 path (SIGNRT_SIMD=avx2: the code an AVX2-only "
        "machine runs, on this machine's memory system); baseline = SIGNRT_DISABLE_SIMD=1. "
        "Each instruction set ran in its own process, all in this one run, the three taking "
        "turns (3 passes; each figure the median over the passes of the median of 7 rounds).",
        f"one clip: median µs ({'wall' if CLOCK is time.perf_counter else 'thread CPU'} "
        "time) per signrt.preprocess call (single thread) beside the floor, "
        "np.copyto of the same input into a C array of its dtype, measured in interleaved "
        "rounds; × floor = signrt / floor; × C float32 = signrt / signrt on C float32 at the "
        "same T and isa. pandas-loaded = df[['x','y','z']].values.reshape(-1, 543, 3) and "
        "polars-loaded = pl.DataFrame.select([...]).to_numpy().reshape(...) (float64 "
        "strided views, read in place); reversed = frames through a negative stride.",
        "numpy_ref / torch: the NumPy reference and the seed's PyTorch preprocessing "
        "(torch_preprocess, torch.set_num_threads(1)) on 12 of the C float32 clips, in the "
        "same process; speed-up = their time / signrt's time on that row's layout.",
        f"batch: preprocess_batch with rayon on {os.cpu_count()} cores vs loops of single-clip "
        "calls + np.stack (numpy/torch loops over the first 128 clips).",
        "stream: FeatureStream from Python (W=64), real frames; warm = cycling over one "
        "window, cold = all frames of all clips.",
        f"parity check before timing (every layout, real clips): max |native − reference|, "
        f"|torch − reference| = {parity:.2e}.",
    ]
    for isa in workers:
        c = at64(isa, "C float32")
        worst = max(at64(isa, n)["× C float32"] for n in LAYOUT_NAMES)
        pd_t = min(at64(isa, n)["speedup_vs_torch"] for n in ("pandas-loaded", "polars-loaded"))
        notes.append(
            f"targets at T=64 on {isa}: C float32 {c['signrt']:.1f} µs = "
            f"{c['× floor']:.2f}× its np.copyto floor (target ≤ 1.5×); slowest layout "
            f"{worst:.2f}× C float32 (target ≤ 1.3×); pandas/polars-loaded ≥ {pd_t:.1f}× the "
            "seed's PyTorch preprocessing (target ≥ 30×)."
        )
    if io_rows:
        notes.append(
            f"read_clip of {len(parquet)} Kaggle parquet files: {io_rows['read_clip']:.0f} µs vs "
            f"pyarrow's pq.read_table {io_rows['pyarrow']:.0f} µs = "
            f"{io_rows['read_clip'] / io_rows['pyarrow']:.2f}× (target ≤ 1.2×)."
        )
    notes.append(
        f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} cores (a shared machine: absolute figures include other processes' "
        "time slices; the ratios, measured side by side in interleaved rounds, are the result)."
    )
    if quick:
        notes.append("--quick run: shorter timings and 256 batch clips.")
    return write_report(
        "preprocess",
        rows,
        out_dir,
        title="signrt preprocessing benchmark",
        notes=notes,
        extra={"spec": spec.to_dict(), "workers": workers, "quick": quick, "simd": cpu,
               "isas": list(workers), "parity": parity,
               "stream": {"push_warm_us": push_w, "push_cold_us": push_c,
                          "features_us": feats_us},
               "read_clip": io_rows},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter run (smoke test)")
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parent / "results",
        help="where preprocess.json / preprocess.md go (default: benches/results)",
    )
    parser.add_argument("--data", type=Path, default=None,
                        help="the shared data folder (default ../shared/data next to the repo)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.data is not None:  # the workers (subprocesses) read it from the environment
        os.environ["SIGNRT_BENCH_DATA"] = str(args.data.resolve())
        global DATA_DIRS
        DATA_DIRS = (ROOT / "tests" / "data", args.data.resolve())
    if args.worker:
        print(json.dumps(worker(args.quick)))
        return 0
    json_path, md_path = run(args.quick, args.out_dir)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
