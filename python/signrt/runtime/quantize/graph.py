"""Quantise a signrt model file: INT8 static Q/DQ, INT8 dynamic, or FP16 (DESIGN §4).

Three modes, each writing a new model file whose ``signrt.model`` metadata carries the new
precision and how it was made:

``int8`` (static, QDQ format)
    QuantizeLinear/DequantizeLinear pairs around the MatMul, Gemm and Conv nodes: weights
    symmetric per output channel, activations symmetric per tensor (zero point 0, the form
    TensorRT requires), activation ranges calibrated on clips from a dataset preprocessed
    with the model's own FeatureSpec. Layer norms, softmax, masking and the final
    classifier stay in float for accuracy. ONNX Runtime (CPU, CUDA, TensorRT EP) and TensorRT
    run the same file.
``int8-dynamic``
    Weights stored as int8, activations quantised on the fly (ONNX Runtime
    ``DynamicQuantizeLinear`` + ``MatMulInteger``): no calibration, CPU only.
``fp16``
    Float16 weights and compute with Cast nodes at the graph's edges; inputs and outputs stay
    float32. Layer norms, reductions, softmax and the masking ``Where`` stay float32 (their
    ranges or -1e4 fills do not suit float16 well). Meant for GPUs; on a CPU ONNX Runtime
    falls back to float32 kernels.

Then the quantised model is *checked*: fp32 and quantised model are evaluated on the same
validation set (top-1 in points) and timed side by side on this CPU; the accuracy gate
fails when the top-1 drop exceeds ``max_drop`` points.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ...errors import ModelError
from ...spec import FeatureSpec

if TYPE_CHECKING:
    import onnx

    from ...runtime.model import ModelFile
    from ...train.data import ClipSet

__all__ = [
    "MODES",
    "QuantizeResult",
    "calibration_batches",
    "compare_models",
    "convert_fp16",
    "quantize",
    "quantize_int8",
    "quantize_int8_dynamic",
]

log = logging.getLogger(__name__)

#: Quantisation modes and the precision each writes into the metadata.
MODES: Final[dict[str, str]] = {"int8": "int8", "int8-dynamic": "int8", "fp16": "fp16"}
#: Operators that static INT8 quantises (the compute; everything else stays float).
INT8_OPS: Final = ("MatMul", "Gemm", "Conv")
#: Operators that dynamic INT8 quantises.
DYNAMIC_OPS: Final = ("MatMul", "Gemm")
#: Operators kept in float32 by the FP16 conversion.
FP16_KEEP_FLOAT: Final = (
    "LayerNormalization",
    "ReduceSum",
    "ReduceMean",
    "Softmax",
    "Where",
    "Div",
    "Erf",
    "LSTM",
)
DEFAULT_MAX_DROP: Final = 1.0
DEFAULT_CALIB_CLIPS: Final = 256

FloatArray = npt.NDArray[np.float32]


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
        if self.speedup is not None:
            lines.append(
                f"  CPU latency (batch 1, median) fp32 {self.fp32_latency_ms:.3f} ms -> "
                f"{self.latency_ms:.3f} ms: {self.speedup:.2f}x"
                + (f"; batched {self.batch_speedup:.2f}x" if self.batch_speedup else "")
            )
        lines.append("  accuracy gate: " + ("passed" if self.passed else "FAILED"))
        return "\n".join(lines)


# ------------------------------------------------------------------------- calibration
def calibration_batches(
    clipset: ClipSet,
    spec: FeatureSpec,
    *,
    max_clips: int = DEFAULT_CALIB_CLIPS,
    batch_size: int = 32,
    seed: int = 0,
) -> list[tuple[FloatArray, FloatArray]]:
    """Preprocess up to ``max_clips`` clips (a class-balanced, seeded sample) into batches.

    Args:
        clipset: Calibration clips.
        spec: The model's FeatureSpec.
        max_clips: Clips to use.
        batch_size: Clips per batch.
        seed: Sampling seed.

    Returns:
        ``[(features (b, L, F), mask (b, L)), ...]``.
    """
    from ...train.data import batch_preprocess

    n = len(clipset)
    if n == 0:
        raise ModelError("calibration data set is empty")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    # round-robin over classes so that every sign is represented
    labels = np.asarray(clipset.labels)
    by_class = [list(order[labels[order] == k]) for k in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(n, max_clips):
        for rows in by_class:
            if rows and len(picked) < max_clips:
                picked.append(int(rows.pop()))
    out = []
    for start in range(0, len(picked), batch_size):
        idx = picked[start : start + batch_size]
        clips = [np.asarray(clipset.clips[i], dtype=np.float32) for i in idx]
        out.append(batch_preprocess(clips, spec, backend="auto"))
    return out


def _reader(batches: Sequence[tuple[FloatArray, FloatArray]]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Batches(CalibrationDataReader):  # type: ignore[misc]
        """Feeds preprocessed batches to the calibrator."""

        def __init__(self) -> None:
            self._it: Iterator[tuple[FloatArray, FloatArray]] = iter(batches)

        def get_next(self) -> dict[str, FloatArray] | None:
            item = next(self._it, None)
            if item is None:
                return None
            return {"features": item[0], "mask": item[1]}

        def rewind(self) -> None:
            self._it = iter(batches)

    return _Batches()


# --------------------------------------------------------------------------- converters
def _load(path: str | os.PathLike[str]) -> tuple[onnx.ModelProto, ModelFile]:
    import onnx

    from ...runtime.model import load_model_file

    mf = load_model_file(path)
    if mf.precision != "fp32":
        raise ModelError(
            f"{path} is already {mf.precision}; quantise the fp32 model from `signrt export`"
        )
    return onnx.load(os.fspath(path)), mf


def _finish(
    proto: onnx.ModelProto, mf: ModelFile, out: str | os.PathLike[str], precision: str,
    how: Mapping[str, Any],
) -> Path:
    """Stamp the metadata (new precision, how it was made) and write atomically."""
    from ...runtime.model import save_onnx, stamp_metadata

    info = dict(mf.info)
    info.pop("signrt_version", None)
    info["precision"] = precision
    info["quantization"] = {**dict(how), "source": mf.path.name, "source_sha256": mf.sha256}
    stamp_metadata(proto, mf.spec, mf.labels, info)
    return save_onnx(proto, out)


def _strip_value_info(proto: onnx.ModelProto) -> None:
    """Drop intermediate shape annotations (the quantisers re-infer them)."""
    del proto.graph.value_info[:]


def quantize_int8(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    calibration: Sequence[tuple[FloatArray, FloatArray]],
    *,
    per_channel: bool = True,
    symmetric: bool = True,
    op_types: Sequence[str] = INT8_OPS,
    method: str = "minmax",
    exclude_classifier: bool = True,
    quantize_outputs: bool = False,
) -> Path:
    """Static INT8 quantisation in QDQ format.

    Args:
        model_path: The fp32 model file.
        out: The INT8 model file to write.
        calibration: Preprocessed batches (see :func:`calibration_batches`).
        per_channel: Per-output-channel weight scales.
        symmetric: Symmetric activations (zero point 0; weights are always symmetric).
        op_types: Operators to quantise.
        method: Calibration: ``minmax``, ``percentile`` or ``entropy``.
        exclude_classifier: Keep the last Gemm/MatMul (the classifier) in float.
        quantize_outputs: Also put Q/DQ on the outputs of the quantised operators. Off by
            default for MatMul/Gemm: Q/DQ on their *inputs* only is the placement TensorRT
            recommends, and ONNX Runtime CPU then fuses each into an integer product with a
            float result and bias (``MatMulIntegerToFloat``), with no re-quantisation of
            the float residual stream. Conv outputs keep their Q/DQ so that ONNX Runtime
            runs ``QLinearConv`` instead of a float Conv on weights dequantised every run.

    Returns:
        The written path.

    Raises:
        ModelError: If the model is not an fp32 signrt model or quantisation fails.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    proto, mf = _load(model_path)
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise ModelError(f"calibration method must be one of {sorted(methods)}, got {method!r}")
    if not calibration:
        raise ModelError("static INT8 quantisation needs calibration data (--calib DIR)")
    exclude = _classifier_nodes(proto) if exclude_classifier else []
    exclude += _tiny_convs(proto) + _activation_matmuls(proto)
    _strip_value_info(proto)
    how = {
        "mode": "int8",
        "format": "QDQ",
        "weights": "int8 symmetric " + ("per-channel" if per_channel else "per-tensor"),
        "activations": "int8 " + ("symmetric" if symmetric else "asymmetric") + " per-tensor",
        "op_types": list(op_types),
        "quantized_outputs": quantize_outputs,
        "excluded_nodes": exclude,
        "calibration": method,
        "calibration_clips": int(sum(b[0].shape[0] for b in calibration)),
    }
    with tempfile.TemporaryDirectory(prefix="signrt-q-") as tmp:
        dst = Path(tmp) / "int8.onnx"
        try:
            with _quiet():
                quantize_static(
                    proto,
                    dst,
                    _reader(calibration),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(op_types),
                    per_channel=per_channel,
                    activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8,
                    nodes_to_exclude=exclude,
                    calibrate_method=methods[method],
                    extra_options={
                        "ActivationSymmetric": symmetric,
                        "WeightSymmetric": True,
                        "CalibTensorRangeSymmetric": symmetric,
                        "MatMulConstBOnly": True,
                        "QuantizeBias": False,  # float biases: what TensorRT expects
                        "OpTypesToExcludeOutputQuantization": (
                            [] if quantize_outputs
                            else [t for t in op_types if t in ("MatMul", "Gemm")]
                        ),
                    },
                )
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"static INT8 quantisation failed: {exc}") from exc
        return _finish(_load_plain(dst), mf, out, "int8", how)


def quantize_int8_dynamic(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    per_channel: bool = False,
    op_types: Sequence[str] = DYNAMIC_OPS,
) -> Path:
    """Dynamic INT8 quantisation (int8 weights, activations quantised at run time; CPU).

    Args:
        model_path: The fp32 model file.
        out: The model file to write.
        per_channel: Per-channel weight scales.
        op_types: Operators to quantise.

    Returns:
        The written path.

    Raises:
        ModelError: If the model is not an fp32 signrt model or quantisation fails.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto, mf = _load(model_path)
    _strip_value_info(proto)
    how = {
        "mode": "int8-dynamic",
        "weights": "int8 symmetric " + ("per-channel" if per_channel else "per-tensor"),
        "activations": "uint8 dynamic (quantised at run time)",
        "op_types": list(op_types),
    }
    with tempfile.TemporaryDirectory(prefix="signrt-q-") as tmp:
        dst = Path(tmp) / "int8-dynamic.onnx"
        try:
            with _quiet():
                quantize_dynamic(
                    proto,
                    dst,
                    op_types_to_quantize=list(op_types),
                    per_channel=per_channel,
                    weight_type=QuantType.QInt8,
                    extra_options={"MatMulConstBOnly": True},
                )
        except Exception as exc:
            raise ModelError(f"dynamic INT8 quantisation failed: {exc}") from exc
        return _finish(_load_plain(dst), mf, out, "int8", how)


def convert_fp16(
    model_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    keep_float: Sequence[str] = FP16_KEEP_FLOAT,
) -> Path:
    """Convert weights and compute to float16, keeping float32 inputs and outputs.

    Uses ONNX Runtime's ``onnxruntime.transformers.float16`` converter (no
    onnxconverter-common needed).

    Args:
        model_path: The fp32 model file.
        out: The model file to write.
        keep_float: Operator types left in float32 (Cast nodes are put around them).

    Returns:
        The written path.

    Raises:
        ModelError: If the model is not an fp32 signrt model or the conversion fails.
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    proto, mf = _load(model_path)
    _strip_value_info(proto)
    block = sorted({*DEFAULT_OP_BLOCK_LIST, *keep_float})
    try:
        with _quiet():
            half = convert_float_to_float16(proto, keep_io_types=True, op_block_list=block)
    except Exception as exc:
        raise ModelError(f"FP16 conversion failed: {exc}") from exc
    _dedupe_casts(half)
    how = {"mode": "fp16", "kept_float32": sorted(keep_float), "io": "float32"}
    return _finish(half, mf, out, "fp16", how)


def _dedupe_casts(proto: onnx.ModelProto) -> None:
    """Repair the FP16 converter's output where one tensor feeds several float32 nodes.

    The converter then inserts one identical Cast per consumer, all with the same node and
    output name, which is invalid ONNX. Identical duplicates are dropped, remaining name
    clashes of nodes renamed, and the nodes put back in topological order.

    Raises:
        ModelError: If two different nodes define the same tensor.
    """
    graph = proto.graph
    producer: dict[str, Any] = {}
    keep = []
    for node in graph.node:
        clash = [o for o in node.output if o in producer]
        if clash:
            first = producer[clash[0]]
            if (first.op_type, list(first.input), list(first.output), first.attribute) != (
                node.op_type, list(node.input), list(node.output), node.attribute
            ):
                raise ModelError(f"FP16 conversion produced two definitions of {clash[0]!r}")
            continue
        for o in node.output:
            producer[o] = node
        keep.append(node)
    names: set[str] = set()
    for node in keep:
        if node.name in names:
            i = 1
            while f"{node.name}_{i}" in names:
                i += 1
            node.name = f"{node.name}_{i}"
        names.add(node.name)
    # topological order (Kahn), stable with respect to the original order
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    ordered: list[Any] = []
    pending = list(keep)
    while pending:
        rest = []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ModelError("FP16 conversion produced a graph with a cycle or a missing input")
        pending = rest
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered, strict=True):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def _load_plain(path: Path) -> onnx.ModelProto:
    import onnx

    return onnx.load(os.fspath(path))


def _classifier_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the Gemm/MatMul nodes that produce the graph output (the classifier)."""
    producers = {o: n for n in proto.graph.node for o in n.output}
    out = []
    for vi in proto.graph.output:
        node = producers.get(vi.name)
        # walk back through Add (bias) to the matrix product
        while node is not None and node.op_type == "Add":
            node = next((producers[i] for i in node.input if i in producers), None)
        if node is not None and node.op_type in ("Gemm", "MatMul"):
            out.append(node.name)
    return out


def _activation_matmuls(proto: onnx.ModelProto) -> list[str]:
    """Names of MatMul nodes without a constant operand (attention scores and mixing).

    Their inputs change range per clip and per head; ONNX Runtime CPU has no fast path
    for them, and they hold no weights to compress: they stay float.
    """
    consts = {t.name for t in proto.graph.initializer}
    consts |= {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    return [
        n.name for n in proto.graph.node
        if n.op_type == "MatMul" and not any(i in consts for i in n.input)
    ]


def _tiny_convs(proto: onnx.ModelProto, min_weights: int = 256) -> list[str]:
    """Names of Conv nodes with very few weights (e.g. ECA's 1-channel gate conv).

    Quantising them saves nothing and costs a Q/DQ round trip each.
    """
    sizes = {t.name: int(np.prod(t.dims)) for t in proto.graph.initializer}
    return [
        n.name for n in proto.graph.node
        if n.op_type == "Conv" and len(n.input) > 1 and sizes.get(n.input[1], 0) < min_weights
    ]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the quantisers' chatter (root-logger warnings, progress prints).

    ONNX Runtime's quantisation tools log advice through the root logger and print
    calibration progress to stdout; both are hidden unless signrt logs at DEBUG.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


# --------------------------------------------------------------------------- comparing
def _session(path: str | os.PathLike[str], threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), opts, providers=["CPUExecutionProvider"])


def _top1(sess: Any, feats: FloatArray, mask: FloatArray, labels: npt.NDArray[np.int64],
          batch_size: int) -> float:
    hits = 0
    for s in range(0, feats.shape[0], batch_size):
        logits = sess.run(["logits"], {"features": feats[s : s + batch_size],
                                       "mask": mask[s : s + batch_size]})[0]
        hits += int((logits.argmax(axis=1) == labels[s : s + batch_size]).sum())
    return float(hits) / max(1, int(feats.shape[0]))


def compare_models(
    fp32_path: str | os.PathLike[str],
    quant_paths: Sequence[str | os.PathLike[str]],
    val: ClipSet | tuple[FloatArray, FloatArray, npt.NDArray[np.int64]] | None,
    *,
    threads: int = 1,
    batch_size: int = 64,
    throughput_batch: int = 32,
    min_time: float = 1.0,
) -> list[dict[str, Any]]:
    """Evaluate and time an fp32 model and its quantised versions side by side (CPU).

    Accuracy is computed by :func:`signrt.train.evaluate.evaluate_onnx` when ``val`` is a
    ClipSet (the runtime's own preprocessing), or directly on given features.
    Latencies are measured round-robin in short slices so that all models see the same
    machine load.

    Args:
        fp32_path: The fp32 model file.
        quant_paths: Quantised model files.
        val: Validation clips, or ``(features, mask, labels)``; None skips accuracy.
        threads: ONNX Runtime intra-op threads for timing.
        batch_size: Evaluation batch size.
        throughput_batch: Batch size of the throughput measurement.
        min_time: Seconds of timing per model and batch size.

    Returns:
        One row per model (fp32 first): ``path``, ``precision``, ``size_bytes``, ``top1``,
        ``top5``, ``latency_ms`` (batch 1 median), ``batch_ms`` (median per batch),
        ``clips_per_s``.
    """
    from ...bench import measure
    from ...runtime.model import load_model_file

    paths = [Path(fp32_path), *[Path(p) for p in quant_paths]]
    files = [load_model_file(p) for p in paths]
    spec = files[0].spec
    rows: list[dict[str, Any]] = [
        {"path": str(p), "precision": f.precision, "mode": f.info.get("quantization", {}).get(
            "mode", f.precision), "size_bytes": f.size_bytes}
        for p, f in zip(paths, files, strict=True)
    ]
    # accuracy
    if val is not None:
        if isinstance(val, tuple):
            feats, mask, labels = val
            for row, p in zip(rows, paths, strict=True):
                row["top1"] = _top1(_session(p, threads), feats, mask, labels, batch_size)
        else:
            from ...train.evaluate import evaluate_onnx

            for row, p in zip(rows, paths, strict=True):
                rep = evaluate_onnx(p, val, device="cpu", batch_size=batch_size)
                row["top1"] = float(rep.top1)
                row["top5"] = float(rep.top5)
            feats, mask = _timing_inputs(val, spec, throughput_batch)
    if val is None:
        rng = np.random.default_rng(0)
        feats = rng.standard_normal((throughput_batch, spec.max_len, spec.num_features),
                                    dtype=np.float32)
        mask = np.ones((throughput_batch, spec.max_len), np.float32)
    # latency: interleave the models, a short slice each, several rounds
    sessions = [_session(p, threads) for p in paths]
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


def _timing_inputs(val: ClipSet, spec: FeatureSpec, n: int) -> tuple[FloatArray, FloatArray]:
    from ...train.data import batch_preprocess

    take = min(len(val), n)
    clips = [np.asarray(val.clips[i], dtype=np.float32) for i in range(take)]
    return batch_preprocess(clips, spec, backend="auto")


# ------------------------------------------------------------------------------ driver
def quantize(
    model_path: str | os.PathLike[str],
    mode: str,
    *,
    out: str | os.PathLike[str] | None = None,
    calib: str | os.PathLike[str] | ClipSet | None = None,
    val: str | os.PathLike[str] | ClipSet | None = None,
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
        calib: Calibration dataset (``int8`` only; required there).
        val: Validation dataset; None skips the accuracy comparison (the gate then passes).
        max_drop: Largest allowed top-1 drop, in points.
        calib_clips: Calibration clips to use.
        method: Calibration method for ``int8``.
        threads: ONNX Runtime threads for the latency comparison.
        timing_s: Seconds of timing per model.

    Returns:
        The :class:`QuantizeResult`; check :attr:`QuantizeResult.passed`.

    Raises:
        ModelError: For an unknown mode, missing calibration data, or a failed conversion.
        DataError: If a dataset cannot be read.
    """
    from ...train.data import ClipSet, open_dataset

    if mode not in MODES:
        raise ModelError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    t0 = time.perf_counter()
    src = Path(model_path)
    dst = Path(out) if out is not None else src.with_name(f"{src.stem}.{mode}.onnx")
    if dst.resolve() == src.resolve():
        raise ModelError("the output would overwrite the input model; pass -o OUT")
    _, mf = _load(src)
    n_calib = 0
    if mode == "int8":
        if calib is None:
            raise ModelError("--int8 needs calibration data: pass --calib DIR (a dataset)")
        calib_set = calib if isinstance(calib, ClipSet) else open_dataset(calib)
        batches = calibration_batches(calib_set, mf.spec, max_clips=calib_clips)
        n_calib = sum(b[0].shape[0] for b in batches)
        quantize_int8(src, dst, batches, method=method)
    elif mode == "int8-dynamic":
        quantize_int8_dynamic(src, dst)
    else:
        convert_fp16(src, dst)
    val_set = None
    if val is not None:
        val_set = val if isinstance(val, ClipSet) else open_dataset(val)
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
        _record_metrics(dst, result)
    result.seconds = time.perf_counter() - t0
    return result


def _record_metrics(path: Path, result: QuantizeResult) -> None:
    """Add the measured accuracy to the quantised file's metadata (rewritten atomically)."""
    import onnx

    from ...runtime.model import load_model_file, save_onnx, stamp_metadata

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
            "cpu_speedup_batch1": result.speedup,
        }
    )
    info["quantization"] = quant
    proto = onnx.load(os.fspath(path))
    stamp_metadata(proto, mf.spec, mf.labels, info)
    save_onnx(proto, path)
