"""Quantisation of signrt model files (ONNX only): rewrite, calibrate, compare, gate.

* :mod:`.graph`: the graph rewriting (INT8 static Q/DQ, INT8 dynamic, FP16);
* :mod:`.calibration`: calibration batches from labelled clips (the model's FeatureSpec);
* :mod:`.compare`: fp32 and quantised models side by side on the same features
  (accuracy, logit agreement, CPU latency).

:func:`quantize` runs the three and applies the accuracy gate (``signrt quantize``): the
quantised model fails when its top-1 drop exceeds ``max_drop`` points. Data sets are given
as labelled clips (``signrt quantize`` opens them with :func:`signrt.train.data.open_dataset`),
so this package needs no training code.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from ...errors import ModelError
from .calibration import DEFAULT_CALIB_CLIPS, LabelledClips, calibration_batches
from .compare import compare_models
from .graph import MODES, convert_fp16, load_fp32, quantize_int8, quantize_int8_dynamic

__all__ = [
    "DEFAULT_CALIB_CLIPS",
    "DEFAULT_MAX_DROP",
    "MODES",
    "LabelledClips",
    "QuantizeResult",
    "calibration_batches",
    "compare_models",
    "convert_fp16",
    "quantize",
    "quantize_int8",
    "quantize_int8_dynamic",
]

#: The accuracy gate's default: largest allowed top-1 drop, in points.
DEFAULT_MAX_DROP: Final = 1.0


@dataclass
class QuantizeResult:
    """A quantised model and how it compares with its fp32 original.

    Attributes:
        mode: ``int8``, ``int8-dynamic`` or ``fp16``.
        path: The written model file.
        precision: Precision recorded in the metadata.
        size_bytes: Size of the quantised file.
        fp32_size_bytes: Size of the original file.
        fp32_top1: Top-1 (0..1) of the original on the validation set (None if not evaluated).
        top1: Top-1 of the quantised model.
        drop_points: ``(fp32_top1 - top1) * 100``.
        top1_agreement: Fraction of validation clips on which both models pick the same
            class (same features).
        max_logit_diff: Largest absolute logit difference to the fp32 model there.
        max_drop: The gate, in points.
        fp32_latency_ms: Median latency of one clip (batch 1), fp32, ONNX Runtime CPU.
        latency_ms: The same for the quantised model.
        speedup: ``fp32_latency_ms / latency_ms`` (the latency ratio; > 1 is faster).
        batch_speedup: The same ratio at the throughput batch size.
        val_clips: Clips in the validation set.
        calib_clips: Clips used for calibration (static INT8 only).
        seconds: Wall time of quantisation plus evaluation.
    """

    mode: str
    path: Path
    precision: str
    size_bytes: int
    fp32_size_bytes: int
    fp32_top1: float | None = None
    top1: float | None = None
    drop_points: float | None = None
    top1_agreement: float | None = None
    max_logit_diff: float | None = None
    max_drop: float = DEFAULT_MAX_DROP
    fp32_latency_ms: float | None = None
    latency_ms: float | None = None
    speedup: float | None = None
    batch_speedup: float | None = None
    val_clips: int = 0
    calib_clips: int = 0
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        """True unless the accuracy drop was measured and exceeds ``max_drop``."""
        return self.drop_points is None or self.drop_points <= self.max_drop

    @property
    def size_ratio(self) -> float:
        """Quantised size / fp32 size."""
        return self.size_bytes / max(1, self.fp32_size_bytes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        d = asdict(self)
        d["path"] = str(self.path)
        d["passed"] = self.passed
        d["size_ratio"] = self.size_ratio
        return d

    def summary(self) -> str:
        """Human-readable lines for the command line."""
        lines = [
            f"{self.mode}: wrote {self.path} ({self.size_bytes / 1e6:.2f} MB, "
            f"{self.size_ratio:.2f}x the fp32 size, precision {self.precision})"
        ]
        if self.top1 is not None and self.fp32_top1 is not None:
            lines.append(
                f"  top-1 fp32 {self.fp32_top1 * 100:.2f}% -> {self.mode} {self.top1 * 100:.2f}% "
                f"(drop {self.drop_points:+.2f} points, limit {self.max_drop:.2f}) on "
                f"{self.val_clips} clips"
            )
        if self.top1_agreement is not None:
            lines.append(
                f"  same best class as fp32 on {self.top1_agreement * 100:.1f}% of the clips; "
                f"largest logit difference {self.max_logit_diff:.4f}"
            )
        if self.speedup is not None:
            lines.append(
                f"  CPU latency (batch 1, median) fp32 {self.fp32_latency_ms:.3f} ms -> "
                f"{self.latency_ms:.3f} ms: {self.speedup:.2f}x"
                + (f"; batched {self.batch_speedup:.2f}x" if self.batch_speedup else "")
            )
        lines.append("  accuracy gate: " + ("passed" if self.passed else "FAILED"))
        return "\n".join(lines)


def quantize(
    model_path: str | os.PathLike[str],
    mode: str,
    *,
    out: str | os.PathLike[str] | None = None,
    calib: LabelledClips | None = None,
    val: LabelledClips | None = None,
    max_drop: float = DEFAULT_MAX_DROP,
    calib_clips: int = DEFAULT_CALIB_CLIPS,
    method: str = "minmax",
    threads: int = 1,
    timing_s: float = 1.0,
) -> QuantizeResult:
    """Quantise a model file, then evaluate and time it against the original.

    Args:
        model_path: The fp32 model file (from ``signrt export``).
        mode: ``int8``, ``int8-dynamic`` or ``fp16``.
        out: Output path; default ``<model>.<mode>.onnx`` beside the input
            (``model.int8.onnx``, ``model.int8-dynamic.onnx``, ``model.fp16.onnx``).
        calib: Labelled calibration clips (``int8`` only; required there), e.g. a
            :class:`signrt.train.data.ClipSet` from ``open_dataset``.
        val: Labelled validation clips; None skips the accuracy comparison (the gate then
            passes).
        max_drop: Largest allowed top-1 drop, in points.
        calib_clips: Calibration clips to use.
        method: Calibration method for ``int8``.
        threads: ONNX Runtime threads for the latency comparison.
        timing_s: Seconds of timing per model.

    Returns:
        The :class:`QuantizeResult`; check :attr:`QuantizeResult.passed`.

    Raises:
        ModelError: For an unknown mode, missing calibration data, or a failed conversion.
        DataError: If a data set is empty.
    """
    if mode not in MODES:
        raise ModelError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    t0 = time.perf_counter()
    src = Path(model_path)
    dst = Path(out) if out is not None else src.with_name(f"{src.stem}.{mode}.onnx")
    if dst.resolve() == src.resolve():
        raise ModelError("the output would overwrite the input model; pass -o OUT")
    _, mf = load_fp32(src)
    n_calib = 0
    if mode == "int8":
        if calib is None:
            raise ModelError("--int8 needs calibration data: pass --calib DIR (a dataset)")
        batches = calibration_batches(calib, mf.spec, max_clips=calib_clips)
        n_calib = sum(b[0].shape[0] for b in batches)
        quantize_int8(src, dst, batches, method=method)
    elif mode == "int8-dynamic":
        quantize_int8_dynamic(src, dst)
    else:
        convert_fp16(src, dst)
    val_set = val
    rows = compare_models(src, [dst], val_set, threads=threads, min_time=timing_s)
    base, q = rows
    result = QuantizeResult(
        mode=mode,
        path=dst,
        precision=MODES[mode],
        size_bytes=int(q["size_bytes"]),
        fp32_size_bytes=int(base["size_bytes"]),
        max_drop=max_drop,
        fp32_latency_ms=base["latency_ms"],
        latency_ms=q["latency_ms"],
        speedup=base["latency_ms"] / q["latency_ms"],
        batch_speedup=base["batch_ms"] / q["batch_ms"],
        val_clips=len(val_set) if val_set is not None else 0,
        calib_clips=n_calib,
        details={"rows": rows},
    )
    if val_set is not None:
        result.fp32_top1 = float(base["top1"])
        result.top1 = float(q["top1"])
        result.drop_points = (result.fp32_top1 - result.top1) * 100.0
        result.top1_agreement = float(q["top1_agreement"])
        result.max_logit_diff = float(q["max_logit_diff"])
        _record_metrics(dst, result)
    result.seconds = time.perf_counter() - t0
    return result


def _record_metrics(path: Path, result: QuantizeResult) -> None:
    """Add the measured accuracy to the quantised file's metadata (rewritten atomically)."""
    import onnx

    from ..model import load_model_file, save_onnx, stamp_metadata

    mf = load_model_file(path)
    info = dict(mf.info)
    info.pop("signrt_version", None)
    quant = dict(info.get("quantization") or {})
    quant.update(
        {
            "val_clips": result.val_clips,
            "fp32_top1": result.fp32_top1,
            "top1": result.top1,
            "drop_points": result.drop_points,
            "top1_agreement": result.top1_agreement,
            "cpu_speedup_batch1": result.speedup,
        }
    )
    info["quantization"] = quant
    proto = onnx.load(os.fspath(path))
    stamp_metadata(proto, mf.spec, mf.labels, info)
    save_onnx(proto, path)
