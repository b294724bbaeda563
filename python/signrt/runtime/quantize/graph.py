"""Graph rewriting: an fp32 signrt model file to INT8 static Q/DQ, INT8 dynamic or FP16.

Each converter writes a new model file whose ``signrt.model`` metadata carries the new
precision and how it was made (DESIGN §4: precision lives in the graph):

``int8`` (static, QDQ format)
    QuantizeLinear/DequantizeLinear pairs around the MatMul, Gemm and Conv nodes: weights
    symmetric per output channel, activations symmetric per tensor (zero point 0, the form
    TensorRT requires), activation ranges from calibration batches
    (:mod:`.calibration`). Layer norms, softmax, masking and the final classifier stay in
    float for accuracy. ONNX Runtime (CPU, CUDA, TensorRT EP) and TensorRT run the same file.
``int8-dynamic``
    Weights stored as int8, activations quantised on the fly (ONNX Runtime
    ``DynamicQuantizeLinear`` + ``MatMulInteger``): no calibration, CPU only.
``fp16``
    Float16 weights and compute with Cast nodes at the graph's edges; inputs and outputs stay
    float32. Layer norms, reductions, softmax and the masking ``Where`` stay float32 (their
    ranges or -1e4 fills do not suit float16 well). Meant for GPUs; on a CPU ONNX Runtime
    falls back to float32 kernels.

Needs ``onnx`` and onnxruntime's quantisation tools (the ``train`` extra), imported on use.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ...errors import ModelError
from .calibration import calibration_reader

if TYPE_CHECKING:
    import onnx

    from ..model import ModelFile

__all__ = [
    "DYNAMIC_OPS",
    "FP16_KEEP_FLOAT",
    "INT8_OPS",
    "MODES",
    "convert_fp16",
    "load_fp32",
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

FloatArray = npt.NDArray[np.float32]


# --------------------------------------------------------------------------- converters
def load_fp32(path: str | os.PathLike[str]) -> tuple[onnx.ModelProto, ModelFile]:
    """Read an fp32 model file: its ONNX proto and its validated :class:`ModelFile`.

    Raises:
        ModelError: If the file is invalid or not fp32 (quantise the exported fp32 model).
    """
    import onnx

    from ..model import load_model_file

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
    """Stamp the metadata (new precision, how it was made) and write atomically.

    Tuned stream settings (``signrt.stream``) of the source model are carried over.
    """
    from ..model import save_onnx, stamp_metadata, stamp_stream_settings

    info = dict(mf.info)
    info.pop("signrt_version", None)
    info["precision"] = precision
    info["quantization"] = {**dict(how), "source": mf.path.name, "source_sha256": mf.sha256}
    stamp_metadata(proto, mf.spec, mf.labels, info)
    if mf.stream:
        stamp_stream_settings(proto, mf.stream)
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
        calibration: Preprocessed batches (see :func:`.calibration.calibration_batches`).
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

    proto, mf = load_fp32(model_path)
    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise ModelError(f"calibration method must be one of {sorted(methods)}, got {method!r}")
    if not calibration:
        raise ModelError("static INT8 quantisation needs calibration data (--calib DIR)")
    if method != "minmax":
        # the histogram calibrators stack every batch's activations into one array, so
        # the batches must have one shape: feed the clips one at a time
        calibration = [(f[i : i + 1], m[i : i + 1]) for f, m in calibration
                       for i in range(f.shape[0])]  # fmt: skip
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
                    calibration_reader(calibration),
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

    proto, mf = load_fp32(model_path)
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

    proto, mf = load_fp32(model_path)
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


