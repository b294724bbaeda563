"""``signrt bench {preprocess,inference,pipeline}``: latency benchmarks, trtexec style.

The measuring code lives here once; ``benches/*.py`` call these functions too, so the
command line and the benchmark scripts measure the same thing. Statistics and reports come
from :mod:`signrt.bench`.

* :func:`bench_preprocess`: native preprocessing (one clip, a batch, the streaming window)
  next to the NumPy reference;
* :func:`bench_inference`: the engines at several batch sizes, ``predict``,
  ``predict_batch`` and ``Stream.push``, and the overhead signrt adds to the raw engine call;
* :func:`bench_pipeline`: frames to events, offline, every stage (read or extract,
  features, engine, decision, publish) on each available device (CPU, CUDA, TensorRT).
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
    from ..results import TopK
    from ..spec import FeatureSpec


__all__ = [
    "INFERENCE_COLUMNS",
    "PIPELINE_COLUMNS",
    "PIPELINE_DEVICES",
    "PIPELINE_STAGES",
    "PREPROCESS_COLUMNS",
    "bench_inference",
    "bench_pipeline",
    "bench_preprocess",
    "overhead_notes",
    "parse_landmarkers",
    "pipeline_notes",
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
        help="every stage, per frame: read/extract -> features -> engine -> decision -> "
        "publish, on CPU, CUDA and TensorRT",
        description="Play a video through the MediaPipe Holistic extractor, or recorded "
        "landmarks (a clip file, a dataset folder, or synthetic clips), into a window "
        "Stream as fast as it goes (nothing dropped), on each device, and report every "
        "stage trtexec-style (min, max, mean, median, p99). Devices that are not "
        "available here are skipped with the reason.",
    )
    p.add_argument("source", nargs="?", default=None, metavar="VIDEO|CLIP|DIR",
                   help="a video file, a landmark clip (.npy/.parquet/.pose) or a dataset "
                   "folder; default: synthetic landmark clips")
    p.add_argument("--model", default=None, help="the .onnx model (default: the demo model)")
    p.add_argument("--device", nargs="+", default=list(PIPELINE_DEVICES),
                   choices=[d for d in _DEVICES if d != "auto"],
                   help="devices to measure (default: cpu cuda tensorrt trt; unavailable "
                   "ones are skipped)")
    p.add_argument("--frames", type=positive_int, default=600, help="frames at most (600)")
    p.add_argument("--stride", type=positive_int, default=4, help="Stream stride (default 4)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="extractor and onnxruntime threads")
    p.add_argument("--landmarker", default=None, metavar="NAME[,NAME...]",
                   help="landmark extractor(s) for a video: onnx, legacy or a .task file; "
                   "several, comma-separated, run side by side on the same decoded frames "
                   "(alternating which goes first) and every later stage is measured on "
                   "each one's landmarks (default: legacy where MediaPipe is installed, "
                   "else onnx)")
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
    from .. import _native
    from ..spec import FeatureSpec

    spec = FeatureSpec.resolve(args.spec)
    clips = _dataset_clips(args.data, args.clips) if args.data else synthetic_clips(args.clips)
    rows = bench_preprocess(spec, clips, batch=args.batch, duration_s=args.duration, echo=print)
    notes = [f"spec {spec.fingerprint} (F={spec.num_features}, L={spec.max_len}); "
             f"{len(clips)} {'real' if args.data else 'synthetic'} clips; native path "
             f"{_native.simd}"]
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
PIPELINE_COLUMNS = ("landmarker", "device", "stage", "count", "min_ms", "median_ms",
                    "mean_ms", "p99_ms", "max_ms")  # fmt: skip
#: Stages of ``bench pipeline``, in order (``read``/``extract`` do not depend on the device).
PIPELINE_STAGES = ("read", "extract", "features", "engine", "decision", "publish", "total")
#: Devices ``bench pipeline`` measures by default (unavailable ones are skipped).
PIPELINE_DEVICES = ("cpu", "cuda", "tensorrt", "trt")
_CLIP_SUFFIXES = (".npy", ".npz", ".parquet", ".pose")


class _StageClock:
    """Times a Recognizer's work inside a Stream: engine calls and the whole classification.

    It is the Stream's :class:`~signrt.stream.Classifier`: ``classify_features`` goes to
    a Recognizer whose engine is wrapped, so that a push splits into ``engine`` (the
    engine call), ``decision`` (the rest of the classification: trim, softmax/top-k,
    labels) and, by difference, ``features`` (window push and features(), decision
    bookkeeping).
    """

    def __init__(self, rec: Recognizer) -> None:
        from ..recognizer import Recognizer

        self.engine_s = 0.0
        self.classify_s = 0.0
        inner = rec.engine
        clock = time.perf_counter
        outer = self

        class _TimedEngine:
            name, device, providers = inner.name, inner.device, inner.providers
            lengths = tuple(getattr(inner, "lengths", (rec.model.max_len,)))

            def run(self, features: FloatArray, mask: FloatArray) -> FloatArray:
                t0 = clock()
                try:
                    return inner.run(features, mask)
                finally:
                    outer.engine_s += clock() - t0

        self.rec = Recognizer(rec.model, _TimedEngine(), top_k=rec.top_k)
        self.top_k = rec.top_k

    @property
    def spec(self) -> FeatureSpec:
        """The model's FeatureSpec."""
        return self.rec.spec

    def preprocess(self, clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Features and mask of one clip (segment mode)."""
        return self.rec.preprocess(clip)

    def classify_features(self, features: FloatArray, mask: FloatArray, *,
                          top_k: int | None = None) -> list[TopK]:
        """Classify, timing the whole call."""
        t0 = time.perf_counter()
        try:
            return self.rec.classify_features(features, mask, top_k=top_k)
        finally:
            self.classify_s += time.perf_counter() - t0


def _publisher() -> Callable[[FloatArray, float, int, Sequence[Any]], int]:
    """The daemon's publish work for one frame: JSON of its landmarks and of its events.

    Imports happen here, once, so that no timed call pays for them.
    """
    import json

    from ..daemon.server import landmarks_message

    def publish(frame: FloatArray, ts: float, index: int, events: Sequence[Any]) -> int:
        text = json.dumps(landmarks_message(frame, ts), separators=(",", ":"), allow_nan=False)
        size = len(text)
        for ev in events:
            msg = {"type": "sign", **ev.to_dict(), "frame": index}
            size += len(json.dumps(msg, separators=(",", ":"), allow_nan=False))
        return size

    return publish


def _stage_row(device: str, stage: str, samples_ms: Sequence[float],
               landmarker: str = "-") -> dict[str, Any]:
    t = summarize(np.asarray(samples_ms, dtype=np.float64) / 1e3)
    return {"landmarker": landmarker, "device": device, "stage": stage, "count": t.count,
            "min_ms": t.min_ms, "median_ms": t.median_ms, "mean_ms": t.mean_ms,
            "p99_ms": t.p99_ms, "max_ms": t.max_ms, "p90_ms": t.p90_ms, "p95_ms": t.p95_ms,
            "throughput": t.throughput, "trtexec": t.trtexec()}  # fmt: skip


def parse_landmarkers(text: str | None) -> list[str | None]:
    """``--landmarker``'s comma-separated names (``None``: the default extractor only).

    Raises:
        OptionError: For an empty name or a name given twice.
    """
    if text is None:
        return [None]
    names = [n.strip() for n in text.split(",")]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise OptionError(
            f"--landmarker {text!r}: expected distinct comma-separated names such as "
            "onnx,legacy"
        )
    return list(names)


def bench_pipeline(
    source: str | os.PathLike[str] | None = None,
    model: str | os.PathLike[str] | None = None,
    *,
    devices: Sequence[str] = PIPELINE_DEVICES,
    frames: int = 600,
    stride: int = 4,
    threads: int | None = None,
    landmarkers: Sequence[str | None] = (None,),
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every stage from input to published event, per frame, on each available device.

    Stages: ``read`` (a landmark clip file read with ``read_clip``, per file; or a video
    frame decoded, per frame), ``extract`` (the landmark extractor, per video frame),
    ``features`` (the window Stream's push and features(), with its decision bookkeeping),
    ``engine`` (the engine call of each classification, on the bucket), ``decision``
    (softmax/top-k and labels of each classification), ``publish`` (the daemon's JSON of
    the frame's landmarks and events) and ``total`` (per frame: read/extract share of a
    video frame + features + engine + decision + publish). ``read`` and ``extract`` run
    once and are reported under device ``any``; the rest runs once per device, on the same
    landmark frames, as fast as it goes (nothing dropped).

    With several ``landmarkers`` (video sources), each decoded frame goes through every
    extractor in turn (the first one alternating from frame to frame, so that all see the
    same machine load), and the later stages run on each extractor's landmarks; every row
    names its ``landmarker`` (``-`` for landmark sources).

    Args:
        source: A video file, a landmark clip file (.npy/.npz/.parquet/.pose), a dataset
            folder (Kaggle layout or clip folder; its clips are read and played one after
            the other), or None (synthetic landmark clips).
        model: The model (default: the bundled demo model).
        devices: Devices to measure; unavailable ones are skipped with the reason.
        frames: Frames at most.
        stride: The Stream's stride.
        threads: Extractor and onnxruntime intra-op threads.
        landmarkers: Extractor names for a video (``onnx``, ``legacy``, a ``.task`` file;
            ``None``: the default one); ignored for landmark sources.

    Returns:
        ``(rows, extra)``: one row per landmarker, device and stage (statistics in ms and
        the trtexec line), and a dict with the frames, the source, per-device engine calls,
        events, engine names and fps (keyed ``LANDMARKER/DEVICE`` when several landmarkers
        ran), per-landmarker extract and end-to-end figures, and the ``skipped`` devices
        with their reasons.
    """
    from ..errors import DeviceError
    from ..recognizer import load
    from ..runtime.engines import available_devices
    from ..stream import Stream

    inputs, pre, label = _pipeline_input(source, frames, threads, landmarkers)
    n_frames = len(next(iter(inputs.values())))
    if not n_frames:
        raise OptionError(f"{label}: no frames")
    rows = [_stage_row("any", "read", pre["read"])] if pre["read"] else []
    extra: dict[str, Any] = {"frames": n_frames, "source": label, "stride": stride,
                             "devices": {}, "skipped": {}, "landmarkers": {}}  # fmt: skip
    several = len(inputs) > 1
    for name in inputs:
        if pre["extract"].get(name):
            rows.append(_stage_row("any", "extract", pre["extract"][name], name))
    avail = available_devices()
    opts: dict[str, Any] = {} if threads is None else {"intra_op_num_threads": threads}
    clock = time.perf_counter
    for device in devices:
        reason = avail.get(device, f"unknown device {device!r}")
        if reason is not None:
            extra["skipped"][device] = reason
            continue
        for name, lm_frames in inputs.items():
            per_frame_pre = pre["frame_ms"].get(name) or [0.0] * len(lm_frames)
            try:
                rec = load(model, device=device, **opts)
            except DeviceError as exc:
                extra["skipped"][device] = str(exc)
                break
            timer = _StageClock(rec)
            stream = Stream(timer, "window", stride=stride)
            publish = _publisher()
            publish(*lm_frames[0], -1, [])  # warm: first JSON of a landmarks message
            samples: dict[str, list[float]] = {s: [] for s in PIPELINE_STAGES[2:]}
            events = 0
            t_start = clock()
            try:
                for i, (frame, ts) in enumerate(lm_frames):
                    timer.engine_s = timer.classify_s = 0.0
                    calls = stream.engine_calls
                    t0 = clock()
                    out = stream.push(frame, ts)
                    t1 = clock()
                    publish(frame, ts, i, out)
                    t2 = clock()
                    events += len(out)
                    feat_ms = (t1 - t0 - timer.classify_s) * 1e3
                    samples["features"].append(feat_ms)
                    if stream.engine_calls > calls:
                        samples["engine"].append(timer.engine_s * 1e3)
                        samples["decision"].append((timer.classify_s - timer.engine_s) * 1e3)
                    samples["publish"].append((t2 - t1) * 1e3)
                    samples["total"].append((t2 - t0) * 1e3 + per_frame_pre[i])
            finally:
                rec.close()
            elapsed = clock() - t_start
            rows += [_stage_row(device, stage, v, name or "-")
                     for stage, v in samples.items() if v]  # fmt: skip
            key = f"{name}/{device}" if several else device
            extra["devices"][key] = {
                "engine": rec.engine.name, "providers": list(rec.engine.providers),
                "engine_calls": stream.engine_calls, "events": events,
                "fps": len(lm_frames) / elapsed,
                "fps_end_to_end": 1e3 / float(np.mean(samples["total"])),
                "lengths": list(getattr(rec.engine, "lengths", (rec.model.max_len,))),
            }  # fmt: skip
    for name, info in pre["backends"].items():
        ex_ms = np.asarray(pre["extract"][name], dtype=np.float64)
        extra["landmarkers"][name] = {
            "backend": info, "extract_median_ms": float(np.median(ex_ms)),
            "extract_mean_ms": float(ex_ms.mean()),
            "fps_end_to_end": 1e3 / float(np.mean(pre["frame_ms"][name])),
        }  # fmt: skip
    extra["load_average"] = os.getloadavg()[0]
    if not extra["devices"]:
        raise OptionError(
            "bench pipeline: no device could run: "
            + "; ".join(f"{d}: {r}" for d, r in extra["skipped"].items())
        )
    return rows, extra


def _pipeline_input(
    source: str | os.PathLike[str] | None, limit: int, threads: int | None,
    landmarkers: Sequence[str | None] = (None,),
) -> tuple[dict[str, list[tuple[FloatArray, float]]], dict[str, Any], str]:
    """Landmark frames with timestamps per landmarker, the read/extract samples, a label.

    The frames are keyed by landmarker name (``-`` for landmark sources and the default
    extractor). ``pre`` holds ``read`` (ms per decoded frame or per file), and per
    landmarker ``extract`` (ms per frame), ``frame_ms`` (the read + extract time of each
    video frame; nothing for landmark sources, whose reading is per file) and ``backends``
    (the extractor's backend name).
    """
    from ..io import index_dataset, read_clip

    pre: dict[str, Any] = {"read": [], "extract": {}, "frame_ms": {}, "backends": {}}
    clock = time.perf_counter
    out: list[tuple[FloatArray, float]] = []

    def add_clip(clip: FloatArray) -> None:
        for f in clip[: max(0, limit - len(out))]:
            out.append((f, len(out) / 30.0))

    if source is None:
        for clip in synthetic_clips(8, seed=3):
            add_clip(clip)
        return {"-": out}, pre, "synthetic landmarks"
    path = Path(source)
    if path.is_dir() or path.suffix.lower() in _CLIP_SUFFIXES:
        files = [r.path for r in index_dataset(path)] if path.is_dir() else [path]
        if not files:
            raise OptionError(f"{path}: no clips found")
        for f in files:
            if len(out) >= limit:
                break
            t0 = clock()
            clip = np.asarray(read_clip(f), dtype=np.float32)
            pre["read"].append((clock() - t0) * 1e3)
            add_clip(clip)
        what = f"{len(pre['read'])} clips of {path}" if path.is_dir() else str(path)
        return {"-": out}, pre, what
    from contextlib import ExitStack

    from ..extract import create_extractor, open_source

    keys = [name or "-" for name in landmarkers]
    frames: dict[str, list[tuple[FloatArray, float]]] = {k: [] for k in keys}
    for k in keys:
        pre["extract"][k], pre["frame_ms"][k] = [], []
    with ExitStack() as stack:
        extractors = [
            stack.enter_context(create_extractor(name, num_threads=threads))
            for name in landmarkers
        ]
        for k, ex in zip(keys, extractors, strict=True):
            pre["backends"][k] = str(getattr(ex, "backend", type(ex).__name__))
        src = stack.enter_context(open_source(path, realtime=False))
        it = iter(src)
        n = 0
        while n < limit:
            t0 = clock()
            frame = next(it, None)
            read_ms = (clock() - t0) * 1e3
            if frame is None or frame.image is None:
                break
            pre["read"].append(read_ms)
            # alternate the order, so that no extractor always runs on a warm cache
            order = list(range(len(keys)))
            if n % 2:
                order.reverse()
            for j in order:
                t1 = clock()
                landmarks = extractors[j].process(frame.image, bgr=True)
                ms = (clock() - t1) * 1e3
                pre["extract"][keys[j]].append(ms)
                pre["frame_ms"][keys[j]].append(read_ms + ms)
                frames[keys[j]].append(
                    (np.asarray(landmarks, dtype=np.float32), float(frame.timestamp))
                )
            n += 1
    return frames, pre, str(path)


def pipeline_notes(rows: Sequence[dict[str, Any]], extra: dict[str, Any]) -> list[str]:
    """The trtexec-style lines and the run's facts, one string per line."""
    notes = [
        f"{r['device']} {r['stage']}: {r['trtexec']}" if r.get("landmarker", "-") == "-"
        else f"{r['landmarker']} {r['device']} {r['stage']}: {r['trtexec']}"
        for r in rows
    ]
    notes.append(f"{extra['frames']} frames of {extra['source']}; window Stream, stride "
                 f"{extra['stride']}")  # fmt: skip
    for device, d in extra["devices"].items():
        notes.append(
            f"{device}: {d['engine']} ({', '.join(d['providers'])}), {d['engine_calls']} "
            f"engine calls on lengths {d['lengths']}, {d['events']} events, "
            f"{d['fps']:.0f} fps without read/extract, {d['fps_end_to_end']:.1f} fps end to "
            "end (1 / mean total)"
        )
    lms = extra.get("landmarkers", {})
    for name, d in lms.items():
        notes.append(
            f"landmarker {name} ({d['backend']}): extract median {d['extract_median_ms']:.1f} "
            f"ms, mean {d['extract_mean_ms']:.1f} ms; read + extract alone: "
            f"{d['fps_end_to_end']:.1f} fps"
        )
    if len(lms) > 1:
        names = list(lms)
        a, b = lms[names[0]], lms[names[1]]
        notes.append(
            f"extract median {names[0]} / {names[1]}: "
            f"{a['extract_median_ms'] / b['extract_median_ms']:.2f} (same frames, same run, "
            "interleaved)"
        )
    for device, reason in extra["skipped"].items():
        notes.append(f"{device}: skipped ({reason})")
    notes.append(f"load average {extra['load_average']:.1f} on {os.cpu_count()} cores at the "
                 "end of the run (other processes share the CPU: read p99/max with that)")
    return notes


def _cmd_bench_pipeline(args: argparse.Namespace) -> int:
    rows, extra = bench_pipeline(
        args.source, args.model, devices=args.device, frames=args.frames, stride=args.stride,
        threads=args.threads, landmarkers=parse_landmarkers(args.landmarker),
    )  # fmt: skip
    notes = pipeline_notes(rows, extra)
    for line in notes:
        log.debug("%s", line)
    _report(args, rows, PIPELINE_COLUMNS, "signrt pipeline latency, per stage", notes, extra)
    return 0
