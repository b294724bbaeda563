"""Runtime commands: ``signrt info``, ``signrt predict`` and ``signrt bench inference``.

The inference benchmark itself (:func:`bench_inference`) lives here too, so that
``benches/inference.py`` and the command line measure the same thing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..cli import bench_subparsers
from ..errors import SignrtError

__all__ = ["bench_inference", "register", "synthetic_clips"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_DEVICES = ("auto", "cpu", "cuda", "tensorrt", "trt")  # = engines.DEVICES, without the import

def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``info``, ``predict`` and ``bench inference`` to the ``signrt`` command."""
    p = sub.add_parser(
        "info",
        help="describe a model file: spec, labels, inputs, precision, size, devices",
        description="Validate a signrt model file and describe it, with the devices this "
        "machine can run it on.",
    )
    p.add_argument("model", metavar="MODEL", help="the .onnx model file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "predict",
        help="recognise the sign in landmark clips (.parquet, .npy, .pose)",
        description="Load a model and print the top-k signs of each clip.",
    )
    p.add_argument("model", metavar="MODEL", help="the .onnx model file")
    p.add_argument("clips", nargs="+", metavar="CLIP", help="landmark clips")
    p.add_argument("--device", default="auto", choices=_DEVICES,
                   help="inference backend (default auto)")
    p.add_argument("--top-k", type=int, default=5, help="signs per clip (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=_cmd_predict)

    bench = bench_subparsers(sub)
    p = bench.add_parser(
        "inference",
        help="latency of the engines, of predict() and of Stream, trtexec style",
        description="Measure engine latency at several batch sizes per device, the "
        "landmark-to-label path (predict) and the landmark-to-event path of Stream, and the "
        "overhead signrt adds around the raw engine call.",
    )
    p.add_argument("model", nargs="?", default=None, metavar="MODEL",
                   help="the .onnx model (default: the bundled demo model)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 32], help="batch sizes")
    p.add_argument("--device", nargs="+", default=None, choices=_DEVICES,
                   help="devices (default: every available one)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per case")
    p.add_argument("--duration", type=float, default=3.0, help="seconds measured per case")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    p.add_argument("--json", default=None, metavar="PATH",
                   help="write the report as JSON (and Markdown beside it)")
    p.set_defaults(func=_cmd_bench_inference)


# ------------------------------------------------------------------------------ info
def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _cmd_info(args: argparse.Namespace) -> int:
    from .engines import available_devices
    from .model import load_model_file

    mf = load_model_file(args.model)
    devices = available_devices()
    if args.json:
        doc = mf.summary()
        doc["devices"] = {d: ("available" if r is None else r) for d, r in devices.items()}
        print(json.dumps(doc, indent=2))
        return 0
    s = mf.spec
    norm = s.normalize.kind + (f" (reference {s.normalize.reference})"
                               if s.normalize.reference is not None else "")
    labels = ", ".join(mf.labels[:20]) + (f", ... ({len(mf.labels) - 20} more)"
                                          if len(mf.labels) > 20 else "")

    def dims(d: Sequence[Any]) -> str:
        return "(" + ", ".join("?" if x is None else str(x) for x in d) + ")"

    lines = [
        f"model         {mf.path}",
        f"architecture  {mf.architecture}",
        f"precision     {mf.precision}",
        f"size          {_human(mf.size_bytes)} ({mf.size_bytes} bytes)",
        f"sha256        {mf.sha256}",
        f"spec          {s.fingerprint}: {s.layout}, P={s.num_points} points x "
        f"{s.channels} channels = F {s.num_features}, L {s.max_len}, {s.fit}, "
        f"normalize {norm}, lags {list(s.motion_lags)}",
        f"labels        K={len(mf.labels)}: {labels}",
        "inputs        " + ", ".join(f"{k} {dims(v)}" for k, v in mf.inputs.items()),
        "outputs       " + ", ".join(f"{k} {dims(v)}" for k, v in mf.outputs.items()),
    ]
    extra = {k: v for k, v in mf.info.items() if k not in ("architecture", "precision")}
    if extra:
        lines.append(f"info          {json.dumps(extra, sort_keys=True)[:400]}")
    lines.append("devices")
    for d, reason in devices.items():
        lines.append(f"  {d:9s} {'available' if reason is None else 'unavailable: ' + reason}")
    print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------- predict
def _cmd_predict(args: argparse.Namespace) -> int:
    from ..io import read_clip
    from ..recognizer import load

    if args.top_k < 1:
        raise SignrtError("--top-k must be >= 1")
    rec = load(args.model, device=args.device, top_k=args.top_k)
    results: list[dict[str, Any]] = []
    status = 0
    for path in args.clips:
        try:
            clip = read_clip(path)
        except (OSError, ImportError, SignrtError) as exc:
            where = "" if str(path) in str(exc) else f"{path}: "
            print(f"signrt predict: {where}{exc}", file=sys.stderr)
            status = 2
            continue
        pred = rec.predict(clip)
        doc = {"clip": str(path), "frames": int(clip.shape[0]), **pred.to_dict()}
        results.append(doc)
        if not args.json:
            if pred.no_signer:
                print(f"{path}: no signer ({clip.shape[0]} frames)")
                continue
            alts = ", ".join(f"{lab} {p:.3f}" for lab, p in pred.topk[1:])
            print(
                f"{path}: {pred.label} {pred.score:.3f}"
                + (f"  [{alts}]" if alts else "")
                + f"  ({pred.latency.preprocess_ms:.2f} + {pred.latency.inference_ms:.2f} ms)"
            )
    if args.json:
        print(json.dumps({"model": str(rec.model.path), "device": rec.engine.device,
                          "predictions": results}, indent=2))
    return status


# ----------------------------------------------------------------------------- bench
def synthetic_clips(n: int, frames: int = 40, seed: int = 0) -> list[npt.NDArray[np.float32]]:
    """Plausible holistic-543 clips for timing (a face, shoulders, two moving hands).

    Uses the synthetic signer of the training package when it imports, else a simple
    random walk of the same layout; the numbers only need to look like landmarks.
    """
    try:
        from ..train.synthetic import SyntheticConfig, SyntheticSigner

        signer = SyntheticSigner(SyntheticConfig(num_classes=max(n, 2), seed=seed))
        return [signer.clip(label=i % max(n, 2), signer=i % 3, rep=i).astype(np.float32)
                for i in range(n)]
    except Exception as exc:  # the training package is optional
        log.debug("synthetic signer unavailable (%s); using random-walk clips", exc)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.uniform(0.3, 0.7, size=(1, 543, 3)).astype(np.float32)
        walk = np.cumsum(rng.normal(0, 0.004, size=(frames, 543, 3)), axis=0)
        clip = (base + walk).astype(np.float32)
        clip[rng.random(frames) < 0.1, 468:489] = np.nan
        out.append(clip)
    return out


def _timed(fn: Callable[[], object], warmup_s: float, duration_s: float) -> Any:
    from ..bench import measure

    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        fn()
    return measure(fn, warmup=0, min_time=duration_s)


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
    from .engines import available_devices
    from .model import load_model_file

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
    from .engines import OrtEngine
    from .model import INPUT_FEATURES, INPUT_MASK, OUTPUT_LOGITS

    rec = load(path, device=dev, **opts)
    eng = rec.engine
    name = eng.device
    feats, mask = rec._pre_batch(clips)
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


def _interleaved_overhead(rec: Any, clip: npt.NDArray[np.float32], duration_s: float
                          ) -> dict[str, float]:
    """What signrt adds around the raw engine call, measured in interleaved rounds.

    Each round times the raw call (onnxruntime ``session.run`` on the same features, or the
    engine's ``run`` for other engines), ``predict`` and ``preprocess`` back to back, so
    that all three see the same machine load; the overhead of a round is
    predict - preprocess - raw.
    """
    from .engines import OrtEngine
    from .model import INPUT_FEATURES, INPUT_MASK, OUTPUT_LOGITS

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


_COLUMNS = ("device", "case", "batch", "min_ms", "median_ms", "mean_ms", "p90_ms", "p95_ms",
            "p99_ms", "max_ms", "throughput", "samples_per_s")


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
    from ..bench import markdown_table, write_report

    rows, extra = bench_inference(
        args.model, devices=args.device, batches=args.batch, warmup_s=args.warmup,
        duration_s=args.duration, threads=args.threads, echo=print,
    )
    notes = overhead_notes(extra)
    print()
    print(markdown_table(rows, _COLUMNS), end="")
    for n in notes:
        print(f"- {n}")
    if args.json:
        out = Path(args.json)
        json_path, md_path = write_report(
            out.stem, rows, out.parent, title="signrt inference latency", notes=notes,
            columns=_COLUMNS, extra=extra,
        )
        print(f"wrote {json_path} and {md_path}")
    return 0
