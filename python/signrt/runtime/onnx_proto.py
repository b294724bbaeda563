"""Read what signrt needs from an ONNX file's protobuf: metadata and the graph's inputs/outputs.

Loading a model must not build an inference session only to read its metadata (the engine
builds the one session a model load needs). The ``onnx`` package is not a core dependency,
so this module reads the few fields it needs straight from the protobuf wire format
(https://protobuf.dev/programming-guides/encoding/) of ``onnx.proto``:

=====================  ===================================================================
``ModelProto``         7 ``graph``, 14 ``metadata_props`` (``StringStringEntryProto``:
                       1 ``key``, 2 ``value``)
``GraphProto``         5 ``initializer`` (``TensorProto``: 8 ``name``), 11 ``input``,
                       12 ``output``
``ValueInfoProto``     1 ``name``, 2 ``type`` (``TypeProto``: 1 ``tensor_type``)
``TypeProto.Tensor``   1 ``elem_type``, 2 ``shape`` (``TensorShapeProto``: 1 ``dim``)
``Dimension``          1 ``dim_value``, 2 ``dim_param``
=====================  ===================================================================

Every other field is skipped by its wire type without being decoded, so large initializers
cost a slice each. Graph inputs that are initializers (old IR versions list them) are left
out, as onnxruntime does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from ..errors import ModelError

__all__ = [
    "ELEM_FLOAT",
    "OnnxSummary",
    "TensorArg",
    "read_onnx_summary",
    "type_name",
]

#: ``TensorProto.DataType.FLOAT``.
ELEM_FLOAT: Final = 1
_TYPE_NAMES: Final = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    16: "bfloat16",
}


def type_name(elem_type: int | None) -> str:
    """Onnxruntime's name of a tensor type (``tensor(float)``), for messages."""
    if elem_type is None:
        return "untyped"
    return f"tensor({_TYPE_NAMES.get(elem_type, f'type {elem_type}')})"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

Dim = int | str | None


@dataclass(frozen=True)
class TensorArg:
    """A graph input or output.

    Attributes:
        name: The tensor name.
        elem_type: ``TensorProto.DataType`` (1 is float32), or None when untyped.
        dims: The dims (int, symbolic name, or None for an unnamed dim), or None when the
            shape is not given.
    """

    name: str
    elem_type: int | None
    dims: tuple[Dim, ...] | None


@dataclass(frozen=True)
class OnnxSummary:
    """The parts of a ModelProto that signrt reads.

    Attributes:
        metadata: ``metadata_props`` as a dict.
        inputs: Graph inputs (initializers excluded), in graph order.
        outputs: Graph outputs.
    """

    metadata: dict[str, str] = field(default_factory=dict)
    inputs: tuple[TensorArg, ...] = ()
    outputs: tuple[TensorArg, ...] = ()


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ModelError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """``(field number, wire type, value)`` of each field; LEN values as views."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ModelError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ModelError("length-delimited field runs past the end")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > end:
                raise ModelError("fixed-width field runs past the end")
        else:  # groups (3, 4) are not used by onnx.proto; 6, 7 do not exist
            raise ModelError(f"wire type {wire}")


def _text(value: int | memoryview) -> str:
    if not isinstance(value, memoryview):
        raise ModelError("expected a string field")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"string field is not UTF-8: {exc}") from None


def _message(value: int | memoryview) -> memoryview:
    if not isinstance(value, memoryview):
        raise ModelError("expected an embedded message")
    return value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _dim(buf: memoryview) -> Dim:
    out: Dim = None
    for number, _, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            out = _signed(value)
        elif number == 2:
            out = _text(value)
    return out


def _tensor_arg(buf: memoryview) -> TensorArg:
    name = ""
    elem: int | None = None
    dims: tuple[Dim, ...] | None = None
    for number, _, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 2:
            for t_num, _, t_val in _fields(_message(value)):
                if t_num != 1:  # only tensor_type
                    continue
                for k, _, v in _fields(_message(t_val)):
                    if k == 1 and isinstance(v, int):
                        elem = v
                    elif k == 2:
                        dims = tuple(
                            _dim(_message(d)) for n, _, d in _fields(_message(v)) if n == 1
                        )
    return TensorArg(name, elem, dims)


def _tensor_name(buf: memoryview) -> str:
    for number, _, value in _fields(buf):
        if number == 8:
            return _text(value)
    return ""


def read_onnx_summary(data: bytes) -> OnnxSummary:
    """Read metadata and graph inputs/outputs from a serialized ONNX ModelProto.

    Args:
        data: The file's bytes.

    Returns:
        The summary.

    Raises:
        ModelError: If the bytes are not a well-formed protobuf message or hold no graph
            (the message says what is malformed; the caller adds the file name).
    """
    model = memoryview(data)
    metadata: dict[str, str] = {}
    graph: memoryview | None = None
    for number, _, value in _fields(model):
        if number == 7:
            graph = _message(value)
        elif number == 14:
            key = val = ""
            for k, _, v in _fields(_message(value)):
                if k == 1:
                    key = _text(v)
                elif k == 2:
                    val = _text(v)
            metadata[key] = val
    if graph is None:
        raise ModelError("no graph (field 7 of ModelProto)")
    inputs: list[TensorArg] = []
    outputs: list[TensorArg] = []
    initializers: set[str] = set()
    for number, _, value in _fields(graph):
        if number == 5:
            initializers.add(_tensor_name(_message(value)))
        elif number == 11:
            inputs.append(_tensor_arg(_message(value)))
        elif number == 12:
            outputs.append(_tensor_arg(_message(value)))
    return OnnxSummary(
        metadata=metadata,
        inputs=tuple(a for a in inputs if a.name not in initializers),
        outputs=tuple(outputs),
    )
