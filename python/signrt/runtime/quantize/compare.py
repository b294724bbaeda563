"""The fp32-vs-quantised comparison: accuracy, logit agreement and CPU latency side by side.

All models of one comparison see the same features (the validation clips preprocessed
once with the model's FeatureSpec) and, for timing, the same machine load (round-robin
slices). ONNX Runtime CPU sessions, one per model file.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ...bench import measure
from ...errors import DataError
from ...features import preprocess_batch
from ...spec import FeatureSpec
from ..model import load_model_file
from .calibration import LabelledClips

__all__ = [
    "accuracy",
    "compare_models",
    "labelled_features",
    "logit_agreement",
    "run_logits",
]

FloatArray = npt.NDArray[np.float32]


def _session(path: str | os.PathLike[str], threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])


def labelled_features(
    clips: LabelledClips, spec: FeatureSpec, batch_size: int = 256
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Preprocess labelled clips once: features (N, L, F), mask (N, L), labels (N,).

    Raises:
        DataError: If there are no clips.
    """
    n = len(clips)
    if n == 0:
        raise DataError("the validation set is empty")
    feats = np.empty((n, spec.max_len, spec.num_features), np.float32)
    mask = np.empty((n, spec.max_len), np.float32)
    for s in range(0, n, batch_size):
        idx = range(s, min(n, s + batch_size))
        feats[s : s + len(idx)], mask[s : s + len(idx)] = preprocess_batch(
            [clips.clips[i] for i in idx], spec
        )
    return feats, mask, np.asarray(clips.labels, dtype=np.int64)


def run_logits(sess: Any, feats: FloatArray, mask: FloatArray, batch_size: int = 64
               ) -> FloatArray:
    """Logits (N, K) of an onnxruntime session on features (N, L, F) and mask (N, L)."""
    out = [
        sess.run(["logits"], {"features": feats[s : s + batch_size],
                              "mask": mask[s : s + batch_size]})[0]
        for s in range(0, feats.shape[0], batch_size)
    ]  # fmt: skip
    logits: FloatArray = np.concatenate(out).astype(np.float32, copy=False)  # (N, K)
    return logits


def accuracy(logits: FloatArray, labels: npt.NDArray[np.int64]) -> dict[str, float]:
    """Top-1 and top-5 accuracy (0..1) of logits (N, K) against labels (N,)."""
    k = min(5, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]  # (N, k)
    hits = top == labels[:, None]
    n = max(1, logits.shape[0])
    return {"top1": float(hits[:, 0].sum()) / n, "top5": float(hits.any(axis=1).sum()) / n}


def logit_agreement(reference: FloatArray, other: FloatArray) -> dict[str, float]:
    """How closely ``other`` logits follow ``reference`` logits on the same inputs.

    Returns:
        ``top1_agreement`` (fraction of rows with the same best class),
        ``max_logit_diff`` and ``mean_logit_diff`` (absolute differences).
    """
    if reference.shape != other.shape:
        raise DataError(f"logit shapes differ: {reference.shape} and {other.shape}")
    diff = np.abs(reference.astype(np.float64) - other)
    same = reference.argmax(axis=1) == other.argmax(axis=1)
    return {
        "top1_agreement": float(same.mean()) if same.size else 1.0,
        "max_logit_diff": float(diff.max()) if diff.size else 0.0,
        "mean_logit_diff": float(diff.mean()) if diff.size else 0.0,
    }


def compare_models(
    fp32_path: str | os.PathLike[str],
    quant_paths: Sequence[str | os.PathLike[str]],
    val: LabelledClips | tuple[FloatArray, FloatArray, npt.NDArray[np.int64]] | None,
    *,
    threads: int = 1,
    batch_size: int = 64,
    throughput_batch: int = 32,
    min_time: float = 1.0,
) -> list[dict[str, Any]]:
    """Evaluate and time an fp32 model and its quantised versions side by side (CPU).

    Every model runs on the same features: the validation clips preprocessed once with the
    model's FeatureSpec (native, as the runtime does), or the given features. Each row has
    top-1 and top-5 accuracy; each quantised row also compares its logits with the fp32
    ones on those features (``top1_agreement``: the fraction of clips with the same best
    class; ``max_logit_diff`` / ``mean_logit_diff``: absolute logit differences).
    Latencies are measured round-robin in short slices so that all models see the same
    machine load.

    Args:
        fp32_path: The fp32 model file.
        quant_paths: Quantised model files.
        val: Labelled validation clips, or ``(features, mask, labels)``; None skips accuracy.
        threads: ONNX Runtime intra-op threads for timing.
        batch_size: Evaluation batch size.
        throughput_batch: Batch size of the throughput measurement.
        min_time: Seconds of timing per model and batch size.

    Returns:
        One row per model (fp32 first): ``path``, ``precision``, ``size_bytes``, ``top1``,
        ``top5``, ``top1_agreement``, ``max_logit_diff``, ``mean_logit_diff`` (with
        ``val``), ``latency_ms`` (batch 1 median), ``batch_ms`` (median per batch),
        ``clips_per_s``.
    """
    paths = [Path(fp32_path), *[Path(p) for p in quant_paths]]
    files = [load_model_file(p) for p in paths]
    spec = files[0].spec
    rows: list[dict[str, Any]] = [
        {"path": str(p), "precision": f.precision, "mode": f.info.get("quantization", {}).get(
            "mode", f.precision), "size_bytes": f.size_bytes}
        for p, f in zip(paths, files, strict=True)
    ]
    sessions = [_session(p, threads) for p in paths]
    # accuracy and agreement, all models on the same features
    if val is not None:
        if isinstance(val, tuple):
            feats, mask, labels = val
        else:
            feats, mask, labels = labelled_features(val, spec)
        logits = [run_logits(sess, feats, mask, batch_size) for sess in sessions]
        for row, lg in zip(rows, logits, strict=True):
            row.update(accuracy(lg, labels))
        for row, lg in zip(rows[1:], logits[1:], strict=True):
            row.update(logit_agreement(logits[0], lg))
    else:
        rng = np.random.default_rng(0)
        feats = rng.standard_normal((throughput_batch, spec.max_len, spec.num_features),
                                    dtype=np.float32)
        mask = np.ones((throughput_batch, spec.max_len), np.float32)
    # latency: interleave the models, a short slice each, several rounds
    one = {"features": feats[:1], "mask": mask[:1]}
    many = {"features": _tile(feats, throughput_batch), "mask": _tile(mask, throughput_batch)}
    rounds = 5
    single: list[list[float]] = [[] for _ in paths]
    batched: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for i, sess in enumerate(sessions):
            t = measure(functools.partial(sess.run, None, one), warmup=3,
                        min_time=min_time / rounds)
            single[i].append(t.median_ms)
            t = measure(functools.partial(sess.run, None, many), warmup=1,
                        min_time=min_time / rounds)
            batched[i].append(t.median_ms)
    for i, row in enumerate(rows):
        row["latency_ms"] = float(np.median(single[i]))
        row["batch_ms"] = float(np.median(batched[i]))
        row["clips_per_s"] = throughput_batch / (row["batch_ms"] / 1e3)
        row["threads"] = threads
        row["throughput_batch"] = throughput_batch
    return rows


def _tile(a: FloatArray, n: int) -> FloatArray:
    reps = -(-n // a.shape[0])
    return np.ascontiguousarray(np.concatenate([a] * reps)[:n])
