"""The signrt model file: one ONNX graph plus the metadata that makes it self-describing.

A model file (DESIGN §4) is an ONNX model, opset >= 17, with inputs ``features`` float32
(B, L, F) and ``mask`` float32 (B, L) and the output ``logits`` float32 (B, K). Three
``metadata_props`` entries carry everything the runtime needs besides the graph:

========================  ==================================================================
``signrt.spec``           the FeatureSpec JSON (how landmarks become ``features``)
``signrt.labels``         JSON list of the K sign names, in logit order
``signrt.model``          JSON object: architecture, hyper-parameters, precision
                          (fp32/fp16/int8), training data, metrics, signrt version;
                          ``buckets`` (optional): the window lengths the graph may run at
``signrt.stream``         optional JSON object: tuned Stream settings per mode
                          (``{"window": {...}, "segment": {...}, "tuning": {...}}``),
                          written by ``signrt tune-stream`` (:func:`stamp_stream_settings`)
========================  ==================================================================

A model whose graph has a dynamic time axis and whose ``signrt.model`` lists ``buckets``
(ascending lengths ending at the spec's max_len, checked at export to give the same logits
as max_len) is run on the real frames rounded up to a bucket; every other model always
gets max_len frames (:attr:`ModelFile.buckets`).

Writing (:func:`stamp_metadata`, :func:`save_onnx`) needs the ``onnx`` package (the
``train`` extra); reading (:func:`load_model_file`) needs neither onnx nor an onnxruntime
session: metadata and graph signature come from the protobuf (:mod:`.onnx_proto`), and
the one session of a model load is the engine's.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .._fs import write_bytes_atomic
from .._version import package_version
from ..errors import ModelError, SpecError
from ..spec import FeatureSpec
from .onnx_proto import ELEM_FLOAT, Dim, read_onnx_summary, type_name

if TYPE_CHECKING:
    import onnx

__all__ = [
    "CALIBRATION_KEY",
    "INPUT_FEATURES",
    "INPUT_MASK",
    "LABELS_KEY",
    "MODEL_KEY",
    "OUTPUT_LOGITS",
    "PRECISIONS",
    "SPEC_KEY",
    "STREAM_KEY",
    "ModelFile",
    "bucket_length",
    "check_buckets",
    "check_calibration",
    "load_model_file",
    "save_onnx",
    "stamp_metadata",
    "stamp_stream_settings",
]

log = logging.getLogger(__name__)

SPEC_KEY: Final = "signrt.spec"
LABELS_KEY: Final = "signrt.labels"
MODEL_KEY: Final = "signrt.model"
METADATA_KEYS: Final = (SPEC_KEY, LABELS_KEY, MODEL_KEY)
#: Optional entry: tuned Stream settings (``signrt tune-stream``).
STREAM_KEY: Final = "signrt.stream"
#: Top-level keys of ``signrt.stream``: one options object per mode, and free provenance.
STREAM_SECTIONS: Final = ("window", "segment", "tuning")
PRECISIONS: Final = ("fp32", "fp16", "int8")
INPUT_FEATURES: Final = "features"
INPUT_MASK: Final = "mask"
OUTPUT_LOGITS: Final = "logits"
#: Key of the signrt version inside ``signrt.model``.
VERSION_KEY: Final = "signrt_version"
#: Key of the window-length buckets inside ``signrt.model``.
BUCKETS_KEY: Final = "buckets"
#: Key of the score calibration inside ``signrt.model``: ``{"temperature": T, ...}``.
CALIBRATION_KEY: Final = "calibration"
#: Range of a stored temperature (the search range of the fit).
TEMPERATURE_RANGE: Final = (0.05, 20.0)

_FIX_EXPORT = (
    "re-export the model with `signrt export` (or stamp it with "
    "signrt.runtime.model.stamp_metadata())"
)


# ------------------------------------------------------------------------------ writing
def _check_labels(labels: Sequence[str], where: str) -> tuple[str, ...]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise ModelError(f"{where}: labels must be a list of sign names, got {type(labels)}")
    out = tuple(labels)
    if not out:
        raise ModelError(f"{where}: the label list is empty; a classifier needs >= 1 label")
    seen: set[str] = set()
    for i, name in enumerate(out):
        if not isinstance(name, str) or not name:
            raise ModelError(f"{where}: label {i} must be a non-empty string, got {name!r}")
        if name in seen:
            raise ModelError(f"{where}: label {name!r} appears twice; labels must be unique")
        seen.add(name)
    return out


def _check_info(info: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(info, Mapping):
        raise ModelError(f"{where}: model info must be a JSON object, got {type(info).__name__}")
    arch = info.get("architecture")
    if not isinstance(arch, str) or not arch:
        raise ModelError(
            f"{where}: model info has no 'architecture' (a non-empty string such as "
            "'cnn_transformer')"
        )
    precision = info.get("precision")
    if precision not in PRECISIONS:
        raise ModelError(
            f"{where}: model info 'precision' must be one of {list(PRECISIONS)}, got "
            f"{precision!r}"
        )
    return dict(info)


def check_calibration(value: Any, where: str) -> dict[str, Any]:
    """Validate a ``calibration`` object of the model info.

    Args:
        value: The ``calibration`` value: a JSON object with ``temperature``, a number in
            [0.05, 20] (the logits are divided by it before the softmax), and any
            provenance (data, NLL and ECE before and after).
        where: Prefix of error messages.

    Returns:
        A copy, with ``temperature`` as a float.

    Raises:
        ModelError: If it is not such an object.
    """
    t = value.get("temperature") if isinstance(value, Mapping) else None
    lo, hi = TEMPERATURE_RANGE
    if (
        not isinstance(t, (int, float))
        or isinstance(t, bool)
        or not math.isfinite(t)
        or not lo <= t <= hi
    ):
        raise ModelError(
            f"{where}: model info '{CALIBRATION_KEY}' must be an object with 'temperature', a "
            f"number in [{lo}, {hi}], got {value!r}"
        )
    out = dict(value)
    out["temperature"] = float(t)
    return out


def check_buckets(value: Any, max_len: int, where: str) -> tuple[int, ...]:
    """Validate a ``buckets`` list: ascending window lengths in 1..max_len ending at max_len.

    Args:
        value: The ``buckets`` value of the model info.
        max_len: The spec's max_len.
        where: Prefix of error messages.

    Returns:
        The buckets as a tuple of ints.

    Raises:
        ModelError: If the value is not such a list.
    """
    ok = (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
    out = tuple(int(v) for v in value) if ok else ()
    if (
        not ok
        or any(b >= c for b, c in itertools.pairwise(out))
        or out[0] < 1
        or out[-1] != max_len
    ):
        raise ModelError(
            f"{where}: model info '{BUCKETS_KEY}' must be a list of ascending window lengths "
            f"in 1..{max_len} ending at the spec's max_len {max_len}, got {value!r}"
        )
    return out


def bucket_length(frames: int, buckets: Sequence[int]) -> int:
    """The smallest bucket that holds ``frames`` real frames (the largest if none does)."""
    for b in buckets:
        if frames <= b:
            return int(b)
    return int(buckets[-1])


def _graph_dims(value_info: Any) -> tuple[Dim, ...] | None:
    """Static dims of an onnx ValueInfoProto (int, symbolic name, or None); None if untyped."""
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims: list[Dim] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def stamp_metadata(
    model: onnx.ModelProto,
    spec: FeatureSpec,
    labels: Sequence[str],
    info: Mapping[str, Any],
) -> onnx.ModelProto:
    """Write the signrt metadata (spec, labels, model info) into an ONNX model.

    The model is changed in place and returned. Existing ``signrt.*`` entries are replaced;
    other metadata is kept. The signrt version is added to the model info as
    ``signrt_version``. Where the graph declares static sizes, they are checked against the
    spec and the labels, so that an inconsistent file is caught at export time.

    Args:
        model: The ONNX model (``onnx.ModelProto``).
        spec: The FeatureSpec the model was trained with.
        labels: The K sign names, in logit order.
        info: Model information; must contain ``architecture`` (str) and ``precision``
            (``fp32``, ``fp16`` or ``int8``), may contain anything JSON-serialisable
            (hyper-parameters, training data, metrics).

    Returns:
        The same ``model`` object.

    Raises:
        ModelError: If the labels or the info are invalid, the info is not
            JSON-serialisable, or the graph contradicts the spec or the label count.
    """
    where = "stamp_metadata"
    if not isinstance(spec, FeatureSpec):
        raise ModelError(f"{where}: spec must be a FeatureSpec, got {type(spec).__name__}")
    names = _check_labels(labels, where)
    meta = _check_info(info, where)
    if BUCKETS_KEY in meta:
        meta[BUCKETS_KEY] = list(check_buckets(meta[BUCKETS_KEY], spec.max_len, where))
    if CALIBRATION_KEY in meta:
        meta[CALIBRATION_KEY] = check_calibration(meta[CALIBRATION_KEY], where)
    meta[VERSION_KEY] = package_version()
    try:
        model_json = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: model info is not JSON-serialisable: {exc}") from exc

    graph = model.graph
    inputs = {vi.name: _graph_dims(vi) for vi in graph.input}
    outputs = {vi.name: _graph_dims(vi) for vi in graph.output}
    _check_io_dims(
        inputs, outputs, spec, len(names), where, fix="fix the export (input/output names "
        "and shapes must follow DESIGN §4)"
    )
    _check_bucket_axis(meta, inputs, spec.max_len, where, fix="export the graph with a "
                       f"dynamic time axis or leave '{BUCKETS_KEY}' out of the model info")

    values = {
        SPEC_KEY: spec.to_json(),
        LABELS_KEY: json.dumps(list(names), ensure_ascii=False),
        MODEL_KEY: model_json,
    }
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    for key, value in [*kept, *values.items()]:
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = value
    return model


def check_stream_settings(value: Any, where: str) -> dict[str, Any]:
    """Check the shape of a ``signrt.stream`` object (values are checked by the Stream).

    Args:
        value: The parsed JSON.
        where: Prefix of error messages.

    Returns:
        A copy, as a plain dict.

    Raises:
        ModelError: If it is not an object of ``window``/``segment``/``tuning`` objects with
            string keys, or an option value is not a JSON scalar.
    """
    if not isinstance(value, dict):
        raise ModelError(f"{where}: '{STREAM_KEY}' must be a JSON object, got "
                         f"{type(value).__name__}")  # fmt: skip
    bad = [k for k in value if k not in STREAM_SECTIONS]
    if bad:
        raise ModelError(f"{where}: '{STREAM_KEY}' has unknown key(s) {', '.join(map(repr, bad))};"
                         f" expected {', '.join(STREAM_SECTIONS)}")  # fmt: skip
    out: dict[str, Any] = {}
    for section, opts in value.items():
        if not isinstance(opts, dict):
            raise ModelError(f"{where}: '{STREAM_KEY}'.{section} must be a JSON object, got "
                             f"{type(opts).__name__}")  # fmt: skip
        if section != "tuning":
            for k, v in opts.items():
                if not isinstance(v, (bool, int, float, str)):
                    raise ModelError(
                        f"{where}: '{STREAM_KEY}'.{section}.{k} must be a number, string or "
                        f"boolean, got {type(v).__name__}"
                    )
        out[section] = dict(opts)
    return out


def stamp_stream_settings(model: onnx.ModelProto, settings: Mapping[str, Any]) -> onnx.ModelProto:
    """Write tuned Stream settings (``signrt.stream``) into an ONNX model, in place.

    The other metadata entries are kept (and :func:`stamp_metadata` keeps this one).

    Args:
        model: The ONNX model.
        settings: ``{"window": {option: value}, "segment": {...}, "tuning": {...}}``; any
            section may be left out.

    Returns:
        The same ``model`` object.

    Raises:
        ModelError: If the settings are malformed or not JSON-serialisable.
    """
    where = "stamp_stream_settings"
    value = check_stream_settings(settings, where)
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{where}: stream settings are not JSON-serialisable: {exc}") from exc
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != STREAM_KEY]
    del model.metadata_props[:]
    for key, val in [*kept, (STREAM_KEY, text)]:
        prop = model.metadata_props.add()
        prop.key = key
        prop.value = val
    return model


def save_onnx(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write an ONNX model atomically (temporary file in the same folder, then rename).

    A reader never sees a half-written model, and an interrupted write leaves the previous
    file intact.

    Args:
        model: The ONNX model.
        path: Destination file; missing parent folders are created.

    Returns:
        The destination path.
    """
    data = model.SerializeToString()
    dest = write_bytes_atomic(path, data)
    log.debug("wrote %s (%d bytes)", dest, len(data))
    return dest


# ------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class ModelFile:
    """A validated signrt model file.

    Attributes:
        path: The ONNX file.
        spec: The FeatureSpec stored in the model.
        labels: The K sign names, in logit order.
        info: The ``signrt.model`` object (architecture, precision, ...).
        precision: ``fp32``, ``fp16`` or ``int8``.
        sha256: Hex SHA-256 of the file's bytes (engine cache key).
        size_bytes: File size.
        inputs: Input name -> dims as declared by the graph (int, symbolic name or None).
        outputs: Output name -> dims.
        stream: The tuned Stream settings (``signrt.stream``), ``{}`` when absent.
    """

    path: Path
    spec: FeatureSpec
    labels: tuple[str, ...]
    info: Mapping[str, Any]
    precision: str
    sha256: str
    size_bytes: int
    inputs: Mapping[str, tuple[Dim, ...]] = field(default_factory=dict)
    outputs: Mapping[str, tuple[Dim, ...]] = field(default_factory=dict)
    stream: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """K, the number of labels."""
        return len(self.labels)

    @property
    def max_len(self) -> int:
        """L, frames per input window."""
        return self.spec.max_len

    @property
    def num_features(self) -> int:
        """F, features per frame."""
        return self.spec.num_features

    @property
    def architecture(self) -> str:
        """The architecture name from the model info."""
        return str(self.info.get("architecture", "unknown"))

    @property
    def buckets(self) -> tuple[int, ...]:
        """Window lengths the graph may run at, ascending, the last one max_len.

        ``(max_len,)`` for a model without ``buckets`` in its info (a fixed time axis, or
        padding that was not proven inert at export): such a model always gets max_len
        frames.
        """
        value = self.info.get(BUCKETS_KEY)
        if value is None:
            return (self.max_len,)
        return tuple(int(v) for v in value)

    @property
    def temperature(self) -> float:
        """The calibration temperature T (``calibration.temperature``; 1.0 when absent).

        The recognizer divides the logits by T before the softmax, so every probability
        it reports (predictions, stream thresholds) is calibrated.
        """
        cal = self.info.get(CALIBRATION_KEY)
        return float(cal["temperature"]) if isinstance(cal, Mapping) else 1.0

    @property
    def fixed_batch(self) -> int | None:
        """The batch size when the graph fixes it (a static first dim), else None."""
        dim = (self.inputs.get(INPUT_FEATURES) or (None,))[0]
        return dim if isinstance(dim, int) and dim > 0 else None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (used by ``signrt info``)."""
        return {
            "path": str(self.path),
            "architecture": self.architecture,
            "precision": self.precision,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "spec": self.spec.to_dict(),
            "spec_fingerprint": self.spec.fingerprint,
            "labels": list(self.labels),
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "info": dict(self.info),
            "stream": dict(self.stream),
        }


def _fmt_dims(dims: Sequence[Dim]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _check_bucket_axis(
    meta: Mapping[str, Any],
    inputs: Mapping[str, tuple[Dim, ...] | None],
    max_len: int,
    where: str,
    *,
    fix: str,
) -> None:
    """Buckets shorter than max_len need a time axis that is not fixed in the graph."""
    buckets = meta.get(BUCKETS_KEY)
    if buckets is None or len(buckets) < 2:
        return
    for name in (INPUT_FEATURES, INPUT_MASK):
        dims = inputs.get(name)
        if dims is not None and len(dims) >= 2 and isinstance(dims[1], int):
            raise ModelError(
                f"{where}: model info lists {BUCKETS_KEY} {list(buckets)} but '{name}' fixes "
                f"L = {dims[1]} {_fmt_dims(dims)}; {fix}"
            )


def _check_io_dims(
    inputs: Mapping[str, tuple[Dim, ...] | None],
    outputs: Mapping[str, tuple[Dim, ...] | None],
    spec: FeatureSpec,
    num_labels: int,
    where: str,
    *,
    fix: str,
) -> None:
    """Check names, ranks and static sizes of the graph's inputs and outputs."""
    want_in = (INPUT_FEATURES, INPUT_MASK)
    if set(inputs) != set(want_in):
        raise ModelError(
            f"{where}: the model's inputs are {sorted(inputs)}, expected exactly "
            f"{list(want_in)} (features (B, L, F) and mask (B, L)); {fix}"
        )
    if OUTPUT_LOGITS not in outputs or len(outputs) != 1:
        raise ModelError(
            f"{where}: the model's outputs are {sorted(outputs)}, expected exactly "
            f"['{OUTPUT_LOGITS}'] (B, K); {fix}"
        )
    L, F, K = spec.max_len, spec.num_features, num_labels
    expected: dict[str, tuple[tuple[str, int | None], ...]] = {
        INPUT_FEATURES: (("B", None), ("L", L), ("F", F)),
        INPUT_MASK: (("B", None), ("L", L)),
        OUTPUT_LOGITS: (("B", None), ("K", K)),
    }
    batch: Dim = None
    for name, want in expected.items():
        dims = inputs.get(name) if name in inputs else outputs.get(name)
        if dims is None:
            continue  # untyped: onnxruntime reports shapes, onnx may not
        if len(dims) != len(want):
            raise ModelError(
                f"{where}: '{name}' has rank {len(dims)} {_fmt_dims(dims)}, expected "
                f"({', '.join(w for w, _ in want)}); {fix}"
            )
        for (sym, value), dim in zip(want[1:], dims[1:], strict=True):
            if value is not None and isinstance(dim, int) and dim != value:
                what = {
                    "L": f"the spec's max_len is {L}",
                    "F": f"the spec gives F = {F} features per frame "
                    f"({spec.num_points} points x {spec.channels} channels)",
                    "K": f"there are {K} labels",
                }[sym]
                raise ModelError(
                    f"{where}: '{name}' has {sym} = {dim} {_fmt_dims(dims)} but {what}; "
                    f"the graph and its metadata disagree: {fix} with the spec and labels "
                    "it was trained with"
                )
        b = dims[0]
        if isinstance(b, int):
            if isinstance(batch, int) and b != batch:
                raise ModelError(
                    f"{where}: inconsistent static batch sizes ({batch} and {b} on "
                    f"'{name}'); {fix} with a dynamic batch axis"
                )
            batch = b


def load_model_file(path: str | os.PathLike[str]) -> ModelFile:
    """Read a signrt model file and check that graph and metadata agree.

    Reads the protobuf directly (no ``onnx``, no onnxruntime session: the engine creates
    the one session of a load, and reports a graph onnxruntime cannot run as a
    ModelError). The checks: the file exists and is a well-formed ONNX model; the three
    ``signrt.*`` metadata entries exist and parse; the inputs are
    exactly ``features`` (B, L, F) and ``mask`` (B, L), float32; the only output is
    ``logits`` (B, K), float32; L equals the spec's max_len, F its number of features and K
    the number of labels (where the graph declares them statically).

    Args:
        path: The ``.onnx`` file.

    Returns:
        The validated :class:`ModelFile`.

    Raises:
        ModelError: On any problem; the message says what is wrong and how to fix it.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(
            f"model file not found: {p}. Check the path; models are made with "
            "`signrt export` (or use signrt.load() without a path for the bundled demo model)"
        )
    if not p.is_file():
        raise ModelError(f"{p} is not a file; pass the path of an .onnx model file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {p}: {exc}") from exc
    if not data:
        raise ModelError(f"{p} is empty (0 bytes): the file was truncated; copy or export it again")

    try:
        summary = read_onnx_summary(data)
    except ModelError as exc:
        raise ModelError(
            f"{p} is not a valid ONNX model (truncated, corrupt or not ONNX): {exc}. "
            "Copy the file again or re-export it with `signrt export`"
        ) from exc

    where = str(p)
    meta = summary.metadata
    missing = [k for k in METADATA_KEYS if k not in meta]
    if missing:
        raise ModelError(
            f"{where}: metadata {', '.join(repr(k) for k in missing)} missing: this ONNX file "
            f"is not a signrt model (or was exported without metadata); {_FIX_EXPORT}"
        )
    try:
        spec = FeatureSpec.from_json(meta[SPEC_KEY])
    except SpecError as exc:
        raise ModelError(
            f"{where}: metadata '{SPEC_KEY}' is not a valid FeatureSpec ({exc}); {_FIX_EXPORT} "
            "and a valid spec"
        ) from exc
    labels = _parse_json(meta[LABELS_KEY], LABELS_KEY, where)
    if not isinstance(labels, list):
        raise ModelError(
            f"{where}: metadata '{LABELS_KEY}' must be a JSON list of sign names, got "
            f"{type(labels).__name__}; {_FIX_EXPORT}"
        )
    try:
        names = _check_labels(labels, f"{where}: metadata '{LABELS_KEY}'")
    except ModelError as exc:
        raise ModelError(f"{exc}; {_FIX_EXPORT}") from None
    info = _parse_json(meta[MODEL_KEY], MODEL_KEY, where)
    try:
        info = _check_info(info, f"{where}: metadata '{MODEL_KEY}'")
        if BUCKETS_KEY in info:
            info[BUCKETS_KEY] = list(
                check_buckets(info[BUCKETS_KEY], spec.max_len, f"{where}: metadata '{MODEL_KEY}'")
            )
        if CALIBRATION_KEY in info:
            info[CALIBRATION_KEY] = check_calibration(
                info[CALIBRATION_KEY], f"{where}: metadata '{MODEL_KEY}'"
            )
    except ModelError as exc:
        raise ModelError(f"{exc}; {_FIX_EXPORT}") from None

    stream: dict[str, Any] = {}
    if STREAM_KEY in meta:
        stream = check_stream_settings(_parse_json(meta[STREAM_KEY], STREAM_KEY, where), where)

    inputs = {a.name: a.dims for a in summary.inputs}
    outputs = {a.name: a.dims for a in summary.outputs}
    fix = f"{_FIX_EXPORT} from a graph that follows DESIGN §4"
    _check_io_dims(inputs, outputs, spec, len(names), where, fix=fix)
    _check_bucket_axis(info, inputs, spec.max_len, where, fix=fix)
    for arg in (*summary.inputs, *summary.outputs):
        if arg.elem_type != ELEM_FLOAT:
            raise ModelError(
                f"{where}: '{arg.name}' has type {type_name(arg.elem_type)}, expected float32 "
                f"({type_name(ELEM_FLOAT)}); "
                "keep the model's inputs and outputs float32 (cast inside the graph for fp16 "
                "or int8) and export again"
            )
    return ModelFile(
        path=p,
        spec=spec,
        labels=names,
        info=info,
        precision=str(info["precision"]),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        inputs={k: v if v is not None else () for k, v in inputs.items()},
        outputs={k: v if v is not None else () for k, v in outputs.items()},
        stream=stream,
    )


def _parse_json(text: str, key: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"{where}: metadata '{key}' is not valid JSON ({exc}); {_FIX_EXPORT}"
        ) from exc
