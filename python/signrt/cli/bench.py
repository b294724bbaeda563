"""``signrt bench {preprocess,inference,pipeline}``: latency benchmarks, trtexec style.

The measuring code lives here once; ``benches/*.py`` call these functions too, so the
command line and the benchmark scripts measure the same thing. Statistics and reports come
from :mod:`signrt.bench`.

* :func:`bench_preprocess`: native preprocessing (one clip, a batch, the streaming window)
  next to the NumPy reference;
* :func:`bench_inference`: the engines at several batch sizes, ``predict``,
  ``predict_batch`` and ``Stream.push``, and the overhead signrt adds to the raw engine call;
* :func:`bench_pipeline`: frames to events, offline: a video through the MediaPipe
  extractor and a Stream (or recorded landmarks through the Stream alone), per stage.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..bench import Timing, markdown_table, measure, summarize, write_report
from ..errors import OptionError
from ._args import positive_float, positive_int

if TYPE_CHECKING:
    from ..recognizer import Recognizer
    from ..spec import FeatureSpec

__all__ = [
    "INFERENCE_COLUMNS",
    "PIPELINE_COLUMNS",
    "PREPROCESS_COLUMNS",
    "bench_inference",
    "bench_pipeline",
    "bench_preprocess",
    "overhead_notes",
    "register",
    "synthetic_clips",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_DEVICES = ("auto", "cpu", "cuda", "tensorrt", "trt")  # = runtime.options.DEVICES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``bench`` with its ``preprocess``, ``inference`` and ``pipeline`` subcommands."""
    parser = sub.add_parser(
        "bench", help="benchmarks (trtexec-style latency reports)",
        description="Latency benchmarks; each prints trtexec-style lines and a Markdown "
        "table, and writes JSON + Markdown with --json.",
    )  # fmt: skip
    bench = parser.add_subparsers(dest="bench_command", metavar="BENCH")
    bench.required = True

    p = bench.add_parser(
        "preprocess",
        help="native preprocessing latency (clip, batch, streaming window) vs the NumPy reference",
        description="Time preprocess() on one clip, preprocess_batch() on a batch, the "
        "streaming window's push() and features(), and the NumPy reference, on real clips "
        "(--data, a Kaggle-layout or clip folder) or synthetic ones.",
    )
    p.add_argument("--spec", default="islr118", help="preset name or FeatureSpec JSON file")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="clips to rotate through (default: synthetic clips)")
    p.add_argument("--clips", type=positive_int, default=8, help="clips to use (default 8)")
    p.add_argument("--batch", type=positive_int, default=32, help="batch size (default 32)")
    p.add_argument("--duration", type=positive_float, default=1.0,
                   help="seconds measured per case")
    _add_json(p)
    p.set_defaults(func=_cmd_bench_preprocess)

    p = bench.add_parser(
        "inference",
        help="latency of the engines, of predict() and of Stream, trtexec style",
        description="Measure engine latency at several batch sizes per device, the "
        "landmark-to-label path (predict) and the landmark-to-event path of Stream, and the "
        "overhead signrt adds around the raw engine call.",
    )
    p.add_argument("model", nargs="?", default=None, metavar="MODEL",
                   help="the .onnx model (default: the bundled demo model)")
    p.add_argument("--batch", type=positive_int, nargs="+", default=[1, 32], help="batch sizes")
    p.add_argument("--device", nargs="+", default=None, choices=_DEVICES,
                   help="devices (default: every available one)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per case")
    p.add_argument("--duration", type=positive_float, default=3.0,
                   help="seconds measured per case")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="onnxruntime intra-op threads")
    _add_json(p)
    p.set_defaults(func=_cmd_bench_inference)

    p = bench.add_parser(
        "pipeline",
        help="frames to events, per stage: video -> landmarks -> Stream (features, inference)",
        description="Run a video through the MediaPipe Holistic extractor and a window "
        "Stream as fast as they go (nothing dropped) and report per-stage latency and "
        "throughput. Without a video, recorded landmarks (a clip file, or synthetic "
        "clips) go through the Stream alone.",
    )
    p.add_argument("source", nargs="?", default=None, metavar="VIDEO|CLIP",
                   help="a video file, or a landmark clip (.npy/.parquet/.pose); default: "
                   "synthetic landmark clips")
    p.add_argument("--model", default=None, help="the .onnx model (default: the demo model)")
    p.add_argument("--device", default="cpu", choices=_DEVICES, help="inference device")
    p.add_argument("--frames", type=positive_int, default=300, help="frames at most (300)")
    p.add_argument("--stride", type=positive_int, default=4, help="Stream stride (default 4)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="extractor and onnxruntime threads")
    _add_json(p)
    p.set_defaults(func=_cmd_bench_pipeline)


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", default=None, metavar="PATH",
                   help="write the report as JSON (and Markdown beside it)")


def _report(args: argparse.Namespace, rows: list[dict[str, Any]], columns: Sequence[str],
            title: str, notes: Sequence[str] = (), extra: dict[str, Any] | None = None) -> None:
    print()
    print(markdown_table(rows, columns), end="")
    for n in notes:
        print(f"- {n}")
    if args.json:
        out = Path(args.json)
        json_path, md_path = write_report(
            out.stem, rows, out.parent, title=title, notes=notes, columns=columns,
            extra=extra or {},
        )
        print(f"wrote {json_path} and {md_path}")


def _timed(fn: Callable[[], object], warmup_s: float, duration_s: float) -> Timing:
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        fn()
    return measure(fn, warmup=0, min_time=duration_s)


# ------------------------------------------------------------------------ preprocess
PREPROCESS_COLUMNS = ("case", "batch", "min_ms", "median_ms", "p99_ms", "max_ms",
                      "clips_per_s")


def _dataset_clips(root: str | os.PathLike[str], n: int) -> list[FloatArray]:
    from ..io import index_dataset, read_clip

    records = index_dataset(root)
    if not records:
        raise OptionError(f"--data {root}: no clips found")
    return [np.asarray(read_clip(r.path), dtype=np.float32) for r in records[:n]]


def bench_preprocess(
    spec: FeatureSpec | str = "islr118",
    clips: Sequence[FloatArray] | None = None,
    *,
    batch: int = 32,
    duration_s: float = 1.0,
    echo: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Time native preprocessing and the NumPy reference, rotating through the clips.

    Cases: ``preprocess`` (one clip), ``preprocess_batch`` (``batch`` clips), the
    streaming window's ``push`` (one frame) and ``features`` (a full window), and
    ``preprocess_reference`` (one clip, NumPy).

    Args:
        spec: The FeatureSpec (or a preset name / JSON).
        clips: (T_i, 543, 3) clips (default: 8 synthetic clips).
        batch: Batch size of the batch case.
        duration_s: Seconds measured per case.
        echo: Called with one trtexec-style line per case.

    Returns:
        One row per case: latency statistics in ms and clips (or frames) per second.
    """
    from ..features import FeatureStream, Preprocessor, preprocess_reference
    from ..spec import FeatureSpec

    s = FeatureSpec.resolve(spec) if isinstance(spec, str) else spec
    data = list(clips) if clips is not None else synthetic_clips(8, seed=2)
    if not data:
        raise OptionError("bench_preprocess needs at least one clip")
    pre = Preprocessor(s)
    turn = iter(range(1 << 62))

    def one() -> object:
        return pre(data[next(turn) % len(data)])

    group = [data[i % len(data)] for i in range(batch)]
    stream = FeatureStream(s)
    frames = np.concatenate(data)
    for f in frames[: s.max_len]:
        stream.push(f)

    def push() -> None:
        stream.push(frames[next(turn) % len(frames)])

    def reference() -> object:
        return preprocess_reference(data[next(turn) % len(data)], s)

    cases: list[tuple[str, int, Callable[[], object]]] = [
        ("preprocess", 1, one),
        ("preprocess_batch", batch, lambda: pre.batch(group)),
        ("FeatureStream.push (one frame)", 1, push),
        ("FeatureStream.features (full window)", 1, stream.features),
        ("preprocess_reference (NumPy)", 1, reference),
    ]
    rows: list[dict[str, Any]] = []
    for name, b, fn in cases:
        t = _timed(fn, duration_s / 5, duration_s)
        rows.append({"case": name, "batch": b, **t.to_dict(),
                     "clips_per_s": t.throughput * b, "spec": s.fingerprint})
        if echo is not None:
            echo(f"{name} (batch {b}): {t.trtexec()}")
    return rows


def _cmd_bench_preprocess(args: argparse.Namespace) -> int:
    from ..features import _native_module
    from ..spec import FeatureSpec

    spec = FeatureSpec.resolve(args.spec)
    clips = _dataset_clips(args.data, args.clips) if args.data else synthetic_clips(args.clips)
    rows = bench_preprocess(spec, clips, batch=args.batch, duration_s=args.duration, echo=print)
    notes = [f"spec {spec.fingerprint} (F={spec.num_features}, L={spec.max_len}); "
             f"{len(clips)} {'real' if args.data else 'synthetic'} clips; native path "
             f"{_native_module().simd}"]
    _report(args, rows, PREPROCESS_COLUMNS, "signrt preprocessing latency", notes)
    return 0


# ------------------------------------------------------------------------- inference
def synthetic_clips(n: int, seed: int = 0) -> list[npt.NDArray[np.float32]]:
    """Plausible holistic-543 clips for timing: ``n`` clips of the synthetic signer.

    Args:
        n: Number of clips (labels cycle over ``max(n, 2)`` classes, signers over 3).
        seed: The signer's seed.

    Returns:
        (T_i, 543, 3) float32 clips.
    """
    from ..synthetic import SyntheticConfig, SyntheticSigner

    signer = SyntheticSigner(SyntheticConfig(num_classes=max(n, 2), seed=seed))
    return [signer.clip(label=i % max(n, 2), signer=i % 3, rep=i).astype(np.float32)
            for i in range(n)]


def bench_inference(
    model_path: str | os.PathLike[str] | None = None,
    *,
    devices: Sequence[str] | None = None,
    batches: Sequence[int] = (1, 32),
    warmup_s: float = 1.0,
    duration_s: float = 3.0,
    threads: int | None = None,
    echo: Callable[[str], None] | None = None,
    **engine_options: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Measure inference latency, trtexec style.

    For each device: the engine call at each batch size, the raw onnxruntime
    ``session.run`` (no signrt around it), ``Recognizer.predict`` (landmarks to label,
    batch 1) and ``predict_batch``, native preprocessing alone, and ``Stream.push`` in
    window mode with stride 1 (landmarks to event decision, every frame classified).

    Args:
        model_path: The model (default: the bundled demo model).
        devices: Devices to measure (default: every available one).
        batches: Batch sizes.
        warmup_s: Warm-up seconds per case.
        duration_s: Measured seconds per case.
        threads: onnxruntime intra-op threads (None: its default).
        echo: Called with one trtexec-style line per case (e.g. ``print``).
        **engine_options: More engine options (e.g. ``allow_spinning=False``).

    Returns:
        ``(rows, extra)``: one dict per case (device, case, batch, latency statistics in
        ms, throughput in calls/s and samples/s) and a dict with the overhead analysis
        (per device) and the model description.
    """
    from ..recognizer import default_model_path
    from ..runtime.engines import available_devices
    from ..runtime.model import load_model_file

    path = Path(model_path) if model_path is not None else default_model_path()
    mf = load_model_file(path)
    avail = available_devices()
    devs = list(devices) if devices else [d for d, r in avail.items() if r is None]
    batches = sorted(set(int(b) for b in batches))
    clips = synthetic_clips(max(batches), seed=1)
    rows: list[dict[str, Any]] = []
    overhead: dict[str, Any] = {}

    def add(device: str, case: str, batch: int, timing: Any) -> dict[str, Any]:
        row = {"device": device, "case": case, "batch": batch, **timing.to_dict(),
               "samples_per_s": timing.throughput * batch}
        rows.append(row)
        if echo is not None:
            echo(f"[{device}] {case} (batch {batch}): {timing.trtexec()}")
        return row

    opts: dict[str, Any] = {
        "batch_sizes": tuple(batches), "max_batch": max(batches), **engine_options
    }
    if threads is not None:
        opts["intra_op_num_threads"] = threads
    for dev in devs:
        name, res = _bench_device(path, dev, opts, batches, clips, warmup_s, duration_s, add)
        if "interleaved" in res:
            overhead[name] = res["interleaved"]
    extra = {
        "model": {
            "path": str(path),
            "architecture": mf.architecture,
            "precision": mf.precision,
            "sha256": mf.sha256,
            "L": mf.max_len,
            "F": mf.num_features,
            "K": mf.num_classes,
            "parameters": mf.info.get("parameters"),
        },
        "devices": {d: ("available" if r is None else r) for d, r in avail.items()},
        "overhead": overhead,
        "settings": {"warmup_s": warmup_s, "duration_s": duration_s, "threads": threads,
                     "batches": batches, **engine_options},
    }
    return rows, extra


def _bench_device(
    path: Path,
    dev: str,
    opts: dict[str, Any],
    batches: Sequence[int],
    clips: Sequence[npt.NDArray[np.float32]],
    warmup_s: float,
    duration_s: float,
    add: Callable[[str, str, int, Any], dict[str, Any]],
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Measure every case on one device; returns its resolved name and the rows by case."""
    from ..recognizer import load
    from ..runtime.engines import OrtEngine
    from ..runtime.model import INPUT_FEATURES, INPUT_MASK, OUTPUT_LOGITS

    rec = load(path, device=dev, **opts)
    eng = rec.engine
    name = eng.device
    feats, mask = rec.preprocess_batch(clips)
    res: dict[str, dict[str, Any]] = {}
    res["preprocess"] = add(name, "preprocess", 1, _timed(
        lambda: rec.preprocess(clips[0]), warmup_s / 2, duration_s / 2))
    for b in batches:
        f, m = np.ascontiguousarray(feats[:b]), np.ascontiguousarray(mask[:b])

        def run(f: FloatArray = f, m: FloatArray = m) -> object:
            return eng.run(f, m)

        res[f"engine{b}"] = add(name, "engine.run", b, _timed(run, warmup_s, duration_s))
        if isinstance(eng, OrtEngine):
            sess = eng.session
            feed = {INPUT_FEATURES: f, INPUT_MASK: m}

            def raw(feed: dict[str, FloatArray] = feed, sess: Any = sess) -> object:
                return sess.run([OUTPUT_LOGITS], feed)

            res[f"raw{b}"] = add(name, "raw session.run", b, _timed(raw, warmup_s, duration_s))
        if b == 1:
            res["predict1"] = add(name, "predict (landmarks->label)", 1, _timed(
                lambda: rec.predict(clips[0]), warmup_s, duration_s))
            res["interleaved"] = _interleaved_overhead(rec, clips[0], duration_s)
        else:
            sub = list(clips[:b])

            def batch(sub: list[npt.NDArray[np.float32]] = sub) -> object:
                return rec.predict_batch(sub)

            add(name, "predict_batch (landmarks->labels)", b, _timed(batch, warmup_s, duration_s))
    stream = rec.stream("window", stride=1, threshold=1.0, min_frames=1)
    frames = np.concatenate(list(clips[: min(4, len(clips))]))
    counter = iter(range(1 << 62))

    def push() -> None:
        stream.push(frames[next(counter) % len(frames)])

    add(name, "Stream.push window stride 1 (landmarks->event)", 1,
        _timed(push, warmup_s, duration_s))
    rec.close()
    return name, res


def _interleaved_overhead(rec: Recognizer, clip: npt.NDArray[np.float32], duration_s: float
                          ) -> dict[str, float]:
    """What signrt adds around the raw engine call, measured in interleaved rounds.

    Each round times the raw call (onnxruntime ``session.run`` on the same features, or the
    engine's ``run`` for other engines), ``predict`` and ``preprocess`` back to back, so
    that all three see the same machine load; the overhead of a round is
    predict - preprocess - raw.
    """
    from ..runtime.engines import OrtEngine
    from ..runtime.model import INPUT_FEATURES, INPUT_MASK, OUTPUT_LOGITS

    feats, mask = rec.preprocess(clip)
    f, m = np.ascontiguousarray(feats[None]), np.ascontiguousarray(mask[None])
    eng = rec.engine
    if isinstance(eng, OrtEngine):
        sess, feed = eng.session, {INPUT_FEATURES: f, INPUT_MASK: m}

        def raw() -> object:
            return sess.run([OUTPUT_LOGITS], feed)
    else:
        def raw() -> object:
            return eng.run(f, m)

    clock = time.perf_counter
    rows: list[tuple[float, float, float]] = []
    end = clock() + duration_s
    while clock() < end or len(rows) < 20:
        t0 = clock()
        raw()
        t1 = clock()
        rec.predict(clip)
        t2 = clock()
        rec.preprocess(clip)
        t3 = clock()
        rows.append((t1 - t0, t2 - t1, t3 - t2))
    a = np.asarray(rows) * 1e3
    over = a[:, 1] - a[:, 2] - a[:, 0]
    pred_med = float(np.median(a[:, 1]))
    return {
        "rounds": len(rows),
        "predict_median_ms": pred_med,
        "predict_p99_ms": float(np.percentile(a[:, 1], 99)),
        "preprocess_median_ms": float(np.median(a[:, 2])),
        "raw_engine_median_ms": float(np.median(a[:, 0])),
        "raw_engine_p99_ms": float(np.percentile(a[:, 0], 99)),
        "signrt_overhead_ms": float(np.median(over)),
        "overhead_ratio_of_predict": float(np.median(over)) / pred_med,
    }


INFERENCE_COLUMNS = ("device", "case", "batch", "min_ms", "median_ms", "mean_ms", "p90_ms",
                     "p95_ms", "p99_ms", "max_ms", "throughput", "samples_per_s")


def overhead_notes(extra: dict[str, Any]) -> list[str]:
    """Human-readable lines on the overhead analysis of :func:`bench_inference`."""
    notes = []
    for dev, o in extra.get("overhead", {}).items():
        notes.append(
            f"{dev}, interleaved rounds ({o['rounds']}): landmarks->label predict median "
            f"{o['predict_median_ms']:.3f} ms, p99 {o['predict_p99_ms']:.3f} ms; preprocess "
            f"{o['preprocess_median_ms']:.3f} ms; raw engine median "
            f"{o['raw_engine_median_ms']:.3f} ms (p99 {o['raw_engine_p99_ms']:.3f}); signrt "
            f"overhead {o['signrt_overhead_ms']:.3f} ms = "
            f"{100 * o['overhead_ratio_of_predict']:.1f}% of predict"
        )
    return notes


def _cmd_bench_inference(args: argparse.Namespace) -> int:
    rows, extra = bench_inference(
        args.model, devices=args.device, batches=args.batch, warmup_s=args.warmup,
        duration_s=args.duration, threads=args.threads, echo=print,
    )
    _report(args, rows, INFERENCE_COLUMNS, "signrt inference latency", overhead_notes(extra),
            extra)
    return 0


# -------------------------------------------------------------------------- pipeline
PIPELINE_COLUMNS = ("stage", "frames", "median_ms", "p99_ms", "mean_ms", "max_ms")


def bench_pipeline(
    source: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
    frames: int = 300,
    stride: int = 4,
    threads: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Frames to events, as fast as the stages go, per stage (nothing dropped).

    A video goes through the MediaPipe Holistic extractor (stage ``landmarks``) and a
    window-mode Stream (stage ``stream``: window bookkeeping, features, decision and the
    inference of every ``stride``-th frame). Recorded landmarks (a clip file, or synthetic
    clips when ``source`` is None) skip the extractor.

    Args:
        source: A video file, a landmark clip file, or None (synthetic landmarks).
        model: The model (default: the bundled demo model).
        device: Inference device.
        frames: Frames at most.
        stride: The Stream's stride.
        threads: Extractor and onnxruntime intra-op threads.

    Returns:
        ``(rows, extra)``: one row per stage (``landmarks``, ``stream``, ``total``) and a
        dict with frames, throughput, engine calls, events and the engine name.
    """
    from ..recognizer import load

    opts: dict[str, Any] = {} if threads is None else {"intra_op_num_threads": threads}
    rec = load(model, device=device, **opts)
    stream = rec.stream("window", stride=stride)
    samples: dict[str, list[float]] = {"landmarks": [], "stream": [], "total": []}
    events = 0
    clock = time.perf_counter
    t_start = clock()
    try:
        for lm_ms, frame, ts in _pipeline_frames(source, frames, threads):
            t0 = clock()
            events += len(stream.push(frame, ts))
            push_ms = (clock() - t0) * 1e3
            if lm_ms is not None:
                samples["landmarks"].append(lm_ms)
            samples["stream"].append(push_ms)
            samples["total"].append(push_ms + (lm_ms or 0.0))
    finally:
        rec.close()
    elapsed = clock() - t_start
    n = len(samples["stream"])
    if n == 0:
        raise OptionError(f"{source}: no frames")
    rows = []
    for stage, values in samples.items():
        if values:
            t = summarize(np.asarray(values) / 1e3)
            rows.append({"stage": stage, "frames": t.count, "median_ms": t.median_ms,
                         "p99_ms": t.p99_ms, "mean_ms": t.mean_ms, "max_ms": t.max_ms})
    extra = {"frames": n, "fps": n / elapsed, "engine_calls": stream.engine_calls,
             "events": events, "engine": rec.engine.name, "stride": stride,
             "source": str(source) if source is not None else "synthetic landmarks"}
    return rows, extra


def _pipeline_frames(
    source: str | os.PathLike[str] | None, limit: int, threads: int | None
) -> Any:
    """Yield ``(extractor ms or None, (543, 3) landmarks, timestamp)`` per frame."""
    from ..io import read_clip

    suffix = Path(source).suffix.lower() if source is not None else ""
    if source is None or suffix in (".npy", ".npz", ".parquet", ".pose"):
        if source is None:
            clip = np.concatenate(synthetic_clips(8, seed=3))
        else:
            clip = np.asarray(read_clip(source), dtype=np.float32)
        for i in range(min(limit, clip.shape[0])):
            yield None, clip[i], i / 30.0
        return
    from ..extract import create_extractor, open_source

    clock = time.perf_counter
    with create_extractor(num_threads=threads) as ex, open_source(source, realtime=False) as src:
        for i, frame in enumerate(src):
            if i >= limit or frame.image is None:
                break
            t0 = clock()
            landmarks = ex.process(frame.image, bgr=True)
            yield (clock() - t0) * 1e3, landmarks, frame.timestamp


def _cmd_bench_pipeline(args: argparse.Namespace) -> int:
    rows, extra = bench_pipeline(
        args.source, args.model, device=args.device, frames=args.frames, stride=args.stride,
        threads=args.threads,
    )
    notes = [f"{extra['frames']} frames of {extra['source']} at {extra['fps']:.1f} fps; "
             f"{extra['engine_calls']} engine calls ({extra['engine']}), {extra['events']} "
             f"events; stride {extra['stride']}"]
    _report(args, rows, PIPELINE_COLUMNS, "signrt pipeline latency", notes, extra)
    return 0
