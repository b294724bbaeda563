"""Export a trained model to a signrt model file (ONNX + metadata, DESIGN §4).

The export:

1. rebuilds the model from a checkpoint (:func:`signrt.train.checkpoint.load_checkpoint`);
2. traces it with ``torch.onnx.export``: the torch.export-based ("dynamo") exporter by
   default, the legacy TorchScript exporter on request or as a fallback; inputs
   ``features`` (B, L, F) and ``mask`` (B, L), output ``logits`` (B, K), B dynamic, L
   dynamic up to the spec's max_len when the model gets window-length buckets (else fixed
   to max_len);
3. simplifies the graph with onnxslim (constant folding, dead-code and shape-op removal);
4. stamps the metadata (FeatureSpec, labels, model info with ``precision: fp32``);
5. verifies it: ONNX Runtime runs the final graph on real batches (synthetic-signer clips or
   a dataset, preprocessed with the model's own spec, plus a clip with no real frame) at
   the smallest and the largest batch size, and its logits are compared with PyTorch's; the
   export fails with a :class:`~signrt.errors.ModelError` when they differ by more than
   the tolerance;
   with buckets, ONNX Runtime also runs clips that fit in several buckets at each of them
   and at max_len: when the logits differ by more than ``BUCKET_ATOL`` (padding is not
   inert for that model), the model is exported again with a fixed L, without buckets and
   with a note in its metadata, and the runtime always gives it max_len frames;
6. with calibration data (``--calib-data``, by default the run's ``--val-data``): fits a
   temperature on those held-out clips (:func:`fit_calibration`) and stores it in the model
   info as ``calibration`` (T, data, NLL/ECE before and after); the runtime divides the
   logits by T before the softmax;
7. writes the file atomically.

Warnings that the exporters emit about their own internals are filtered here, precisely by
message, and nowhere else.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import DataError, ModelError
from ..spec import FeatureSpec

if TYPE_CHECKING:
    import onnx
    import torch

    from .checkpoint import Checkpoint

__all__ = [
    "DEFAULT_BATCH_RANGE",
    "DEFAULT_OPSET",
    "EXPORTERS",
    "ExportReport",
    "check_buckets_inert",
    "default_buckets",
    "export_checkpoint",
    "export_model",
    "parse_batch_range",
    "parse_buckets",
    "to_onnx",
    "verification_batch",
]

log = logging.getLogger(__name__)

#: Opset of exported models. The torch.export-based exporter implements opset 18 and up
#: (asking it for 17 makes it convert down, which may fail); DESIGN §4 requires >= 17.
DEFAULT_OPSET: Final = 18
MIN_OPSET: Final = 17
#: Batch sizes the exported graph is declared for (and verified at, both ends).
DEFAULT_BATCH_RANGE: Final = (1, 64)
EXPORTERS: Final = ("auto", "dynamo", "torchscript")
#: Default parity tolerance: |onnx - torch| <= ATOL + RTOL * |torch| for every logit.
ATOL: Final = 1e-4
RTOL: Final = 1e-4
#: Largest |logit difference| between a bucket and max_len for padding to count as inert.
BUCKET_ATOL: Final = 1e-5
#: Smallest window-length bucket of :func:`default_buckets`.
MIN_BUCKET: Final = 16
#: Synthetic-signer clips used to verify an export when no dataset is given.
_VERIFY_SOURCE: Final = "synthetic:classes=8,signers=2,clips_per_class=2,seed=12345"

FloatArray = npt.NDArray[np.float32]

# (category, message regex) of exporter warnings about the exporters' own internals.
_EXPORT_WARNINGS: Final[tuple[tuple[type[Warning], str], ...]] = (
    # torch.export / dynamo internals (torch 2.9+)
    (FutureWarning, r"_check_is_size will be removed"),
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
    (UserWarning, r"The tensor attributes .*_flat_weights"),
    (UserWarning, r"# The axis name: .* will not be used"),
    # legacy TorchScript exporter
    (DeprecationWarning, r"You are using the legacy TorchScript-based ONNX export"),
    (DeprecationWarning, r"The feature will be removed"),
    (UserWarning, r"Exporting a model to ONNX with a batch_size other than 1"),
    (UserWarning, r"Constant folding - Only steps=1 can be constant folded"),
)
# Loggers that report, at WARNING level, facts irrelevant here (no torchvision, ...).
_QUIET_LOGGERS: Final = ("torch.onnx", "onnxscript")


@dataclass
class ExportReport:
    """What an export did and how well the ONNX graph matches PyTorch.

    Attributes:
        path: The written model file.
        arch: Architecture name.
        exporter: ``dynamo`` or ``torchscript`` (the one that produced the file).
        opset: ONNX opset of the default domain.
        batch_range: Smallest and largest batch the graph was declared and verified for.
        num_classes: K.
        num_parameters: Trainable parameters of the model.
        max_abs_diff: Largest |ONNX Runtime − PyTorch| over every verified logit.
        tolerance: ``(atol, rtol)`` the verification used.
        verify_clips: Clips in the verification set (including one with no real frame).
        verify_source: Where they came from.
        nodes: Nodes of the final graph.
        nodes_before_simplify: Nodes before onnxslim.
        size_bytes: File size.
        seconds: Wall time of the export (trace, simplify, verify, write).
    """

    path: Path
    arch: str
    exporter: str
    opset: int
    batch_range: tuple[int, int]
    num_classes: int
    num_parameters: int
    max_abs_diff: float
    tolerance: tuple[float, float]
    verify_clips: int
    verify_source: str
    nodes: int
    nodes_before_simplify: int
    size_bytes: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    def summary(self) -> str:
        """One line for the command line."""
        return (
            f"exported {self.arch} ({self.num_parameters / 1e6:.2f}M params, K={self.num_classes}) "
            f"to {self.path} [{self.size_bytes / 1e6:.2f} MB, opset {self.opset}, {self.exporter}, "
            f"{self.nodes} nodes (from {self.nodes_before_simplify})]; ONNX Runtime vs PyTorch "
            f"max |diff| = {self.max_abs_diff:.2e} on {self.verify_clips} clips "
            f"({self.verify_source}), batch {self.batch_range[0]}..{self.batch_range[1]}; "
            f"{_time_axis_summary(self.info)}; {_calibration_summary(self.info)}; "
            f"{self.seconds:.1f}s"
        )


def _calibration_summary(info: Mapping[str, Any]) -> str:
    cal = info.get("calibration")
    if not isinstance(cal, Mapping):
        return "no calibration"
    return (
        f"temperature {cal['temperature']:.4g} on {cal.get('clips')} clips of {cal.get('data')} "
        f"(NLL {cal.get('nll_before')} -> {cal.get('nll_after')})"
    )


def _time_axis_summary(info: Mapping[str, Any]) -> str:
    """``L in buckets [...]`` or ``L fixed`` (with the note of a failed bucket check)."""
    buckets = info.get("buckets")
    if buckets:
        return f"L in buckets {list(buckets)}"
    axis = info.get("export", {}).get("time_axis", {}) if isinstance(info, Mapping) else {}
    note = axis.get("note") if isinstance(axis, Mapping) else None
    return f"L fixed ({note[:200]})" if note else "L fixed"


# ------------------------------------------------------------------------------- helpers
def parse_batch_range(text: str | Sequence[int]) -> tuple[int, int]:
    """Parse ``"1:64"`` / ``"1,64"`` / ``"8"`` / ``(1, 64)`` into ``(lo, hi)``.

    Raises:
        ModelError: Unless ``1 <= lo <= hi``.
    """
    if isinstance(text, str):
        parts = [p for p in text.replace(",", ":").replace("-", ":").split(":") if p.strip()]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ModelError(f"batch range must be MIN:MAX (e.g. 1:64), got {text!r}") from None
    else:
        values = [int(v) for v in text]
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not 1 <= values[0] <= values[1]:
        raise ModelError(f"batch range must be MIN:MAX with 1 <= MIN <= MAX, got {text!r}")
    return values[0], values[1]


def parse_buckets(text: str) -> bool | tuple[int, ...]:
    """Parse ``--buckets``: ``auto`` (True), ``none`` (False) or ``16,32,64``.

    Raises:
        ModelError: On anything else.
    """
    word = text.strip().lower()
    if word == "auto":
        return True
    if word in ("none", "off", "fixed"):
        return False
    try:
        values = tuple(int(p) for p in word.replace(":", ",").split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ModelError(
            f"--buckets must be auto, none or positive window lengths such as 16,32,64; got "
            f"{text!r}"
        )
    return values


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Filter the exporters' internal warnings and chatter, only around the export call."""
    saved = []
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        if not log.isEnabledFor(logging.DEBUG):
            logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category, message in _EXPORT_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            # The TorchScript tracer warns about every Python int it records (sizes become
            # constants). L is fixed by design and B is made dynamic explicitly; the
            # verification below runs the graph at other batch sizes to prove it.
            from torch.jit import TracerWarning  # type: ignore[attr-defined]

            warnings.filterwarnings("ignore", category=TracerWarning)
            with contextlib.redirect_stdout(io.StringIO()) as out:
                yield
            if out.getvalue().strip():
                log.debug("exporter output:\n%s", out.getvalue())
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _json_safe(value: Any) -> Any:
    """Round-trip through JSON (Paths and other objects become strings; NaN becomes None)."""
    def default(o: Any) -> Any:
        if isinstance(o, (np.integer, np.floating)):
            return o.item()
        return str(o)

    text = json.dumps(value, default=default)
    return json.loads(text, parse_constant=lambda _: None)


# ------------------------------------------------------------------------------ tracing
def to_onnx(
    model: torch.nn.Module,
    spec: FeatureSpec,
    *,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    batch_range: tuple[int, int] = DEFAULT_BATCH_RANGE,
    simplify: bool = True,
    min_length: int | None = None,
) -> tuple[onnx.ModelProto, str, int]:
    """Trace a model into an ONNX graph (no metadata, no verification).

    Args:
        model: A model with ``forward(features (B, L, F), mask (B, L)) -> (B, K)``.
        spec: Its FeatureSpec (L and F).
        opset: ONNX opset (>= 17).
        exporter: ``dynamo`` (torch.export-based), ``torchscript`` (legacy) or ``auto``
            (dynamo, falling back to torchscript if it fails).
        batch_range: Bounds of the dynamic batch dimension.
        simplify: Run onnxslim on the graph.
        min_length: With a value, the time axis L is dynamic from it to max_len
            (named ``length``); None keeps L fixed to max_len.

    Returns:
        ``(model_proto, exporter_used, nodes_before_simplify)``.

    Raises:
        ModelError: If the export fails or the graph does not have the DESIGN §4 interface.
    """
    import torch

    if opset < MIN_OPSET:
        raise ModelError(f"opset must be >= {MIN_OPSET} (DESIGN §4), got {opset}")
    if exporter not in EXPORTERS:
        raise ModelError(f"exporter must be one of {', '.join(EXPORTERS)}, got {exporter!r}")
    lo, hi = batch_range
    model = model.eval()
    # trace with B = 2 (never 1, which tracers specialise) so that B stays symbolic
    feats = torch.zeros(2, spec.max_len, spec.num_features)
    mask = torch.ones(2, spec.max_len)
    mask[1, spec.max_len // 2 :] = 0.0
    order = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    errors: list[str] = []
    proto = None
    used = order[0]
    for used in order:
        try:
            with _quiet_exporter(), torch.no_grad():
                proto = _trace(model, (feats, mask), used, opset, (lo, hi),
                               _length_range(min_length, spec.max_len))
            break
        except Exception as exc:  # exporters raise many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            errors.append(f"{used}: {type(exc).__name__}: {first[:400]}")
            log.warning("the %s exporter failed (%s)", used, first[:200])
    if proto is None:
        raise ModelError(
            "ONNX export failed: " + "; ".join(errors)
            + " (try --exporter torchscript or --exporter dynamo, or a newer torch)"
        )
    before = len(proto.graph.node)
    if simplify:
        proto = _simplify(proto)
    _fix_interface(proto, spec.max_len, dynamic_length=min_length is not None)
    return proto, used, before


def _length_range(min_length: int | None, max_len: int) -> tuple[int, int] | None:
    """The (min, max) of a dynamic time axis; None for a fixed one."""
    if min_length is None:
        return None
    if not 1 <= min_length <= max_len:
        raise ModelError(f"min_length must be in 1..{max_len} (max_len), got {min_length}")
    # torch.export specialises sizes 0 and 1, so the declared range starts at 2 at least
    return max(2, min_length), max_len


def _trace(
    model: torch.nn.Module,
    args: tuple[torch.Tensor, torch.Tensor],
    exporter: str,
    opset: int,
    batch_range: tuple[int, int],
    length_range: tuple[int, int] | None = None,
) -> onnx.ModelProto:
    import onnx
    import torch

    inputs, outputs = ["features", "mask"], ["logits"]
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=batch_range[0], max=max(batch_range[1], 2))
        axes: dict[int, Any] = {0: batch}
        if length_range is not None:
            axes[1] = torch.export.Dim("length", min=length_range[0], max=length_range[1])
        program = torch.onnx.export(
            model,
            args,
            None,
            input_names=inputs,
            output_names=outputs,
            opset_version=opset,
            dynamo=True,
            external_data=False,
            dynamic_shapes=(axes, axes),
            optimize=True,
            verbose=False,
        )
        if program is None:  # pragma: no cover - only with f given
            raise ModelError("torch.onnx.export returned no program")
        proto: onnx.ModelProto = program.model_proto
        return proto
    buf = io.BytesIO()
    length_axis = {1: "length"} if length_range is not None else {}
    torch.onnx.export(
        model,
        args,
        buf,  # type: ignore[arg-type]  # the legacy exporter writes to file objects
        input_names=inputs,
        output_names=outputs,
        opset_version=opset,
        dynamo=False,
        do_constant_folding=True,
        dynamic_axes={
            "features": {0: "batch", **length_axis},
            "mask": {0: "batch", **length_axis},
            "logits": {0: "batch"},
        },
    )
    return onnx.load_from_string(buf.getvalue())


def _simplify(proto: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    try:
        with _quiet_exporter():
            slim = onnxslim.slim(proto)
    except Exception as exc:  # onnxslim is an optimisation: never fail the export for it
        log.warning("onnxslim could not simplify the graph (%s); keeping it as exported", exc)
        return proto
    if slim is None:  # pragma: no cover - slim() returns None only when writing a file
        return proto
    out: onnx.ModelProto = slim
    return out


def _fix_interface(proto: onnx.ModelProto, max_len: int, *, dynamic_length: bool = False
                   ) -> None:
    """Check names and ranks; name the batch axis ``batch``; L static or ``length``."""
    ins = {v.name: v for v in proto.graph.input}
    outs = {v.name: v for v in proto.graph.output}
    if set(ins) != {"features", "mask"} or set(outs) != {"logits"}:
        raise ModelError(
            f"exported graph has inputs {sorted(ins)} and outputs {sorted(outs)}; expected "
            "features, mask -> logits"
        )
    for name, vi in [*ins.items(), *outs.items()]:
        dims = vi.type.tensor_type.shape.dim
        if len(dims) < 2:
            raise ModelError(f"exported graph: '{name}' has rank {len(dims)}")
        if dims[0].HasField("dim_value"):
            raise ModelError(
                f"exported graph: the batch axis of '{name}' is static ({dims[0].dim_value}); "
                "the export must keep it dynamic"
            )
        dims[0].dim_param = "batch"
        if name != "logits" and dynamic_length:
            if dims[1].HasField("dim_value"):
                raise ModelError(
                    f"exported graph: the time axis of '{name}' is static "
                    f"({dims[1].dim_value}); the export asked for a dynamic one"
                )
            dims[1].dim_param = "length"
        elif name != "logits" and dims[1].dim_value != max_len:
            raise ModelError(
                f"exported graph: '{name}' should have L = {max_len} frames, got {dims[1]}"
            )


# ---------------------------------------------------------------------------- verifying
def verification_batch(
    spec: FeatureSpec,
    source: str | os.PathLike[str] | None = None,
    *,
    limit: int = 31,
) -> tuple[FloatArray, FloatArray, str]:
    """Real inputs to verify an export with: preprocessed clips plus one empty clip.

    Args:
        spec: The model's FeatureSpec.
        source: A dataset (anything :func:`signrt.train.data.open_dataset` opens); default a
            few synthetic-signer clips.
        limit: Clips to take from the source.

    Returns:
        ``(features (N, L, F), mask (N, L), description)``; the last row has no real frame.

    Raises:
        DataError: If the dataset cannot be opened.
    """
    from .data import batch_preprocess, open_dataset

    src = os.fspath(source) if source is not None else _VERIFY_SOURCE
    clipset = open_dataset(src, limit=limit)
    clips = [np.asarray(clipset.clips[i], dtype=np.float32) for i in range(len(clipset))]
    clips.append(np.full((3, 543, 3), np.nan, dtype=np.float32))  # no signer at all
    feats, mask = batch_preprocess(clips, spec)
    return feats, mask, f"{src} ({len(clips) - 1} clips + 1 empty)"


def _verify(
    model: torch.nn.Module,
    proto_bytes: bytes,
    feats: FloatArray,
    mask: FloatArray,
    batch_range: tuple[int, int],
    atol: float,
    rtol: float,
) -> float:
    """Compare ONNX Runtime with PyTorch at the smallest and largest batch; max |diff|."""
    import onnxruntime as ort
    import torch

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = max(1, min(4, torch.get_num_threads()))
    sess = ort.InferenceSession(proto_bytes, opts, providers=["CPUExecutionProvider"])
    n = feats.shape[0]
    lo, hi = batch_range
    # Tile the verification set so that the largest batch is really run.
    reps = -(-hi // n) if hi > n else 1
    all_f = np.concatenate([feats] * reps)[: max(n, hi)]
    all_m = np.concatenate([mask] * reps)[: max(n, hi)]
    worst = 0.0
    bad: str | None = None
    for size in sorted({lo, hi}):
        for start in range(0, all_f.shape[0], size):
            f, m = all_f[start : start + size], all_m[start : start + size]
            if f.shape[0] != size:
                continue
            got = sess.run(["logits"], {"features": f, "mask": m})[0]
            with torch.no_grad():
                ref = model(torch.from_numpy(f), torch.from_numpy(m)).numpy()
            if got.shape != ref.shape:
                raise ModelError(
                    f"export verification: ONNX Runtime gave logits {got.shape}, PyTorch "
                    f"{ref.shape} (batch {size})"
                )
            if not np.isfinite(got).all():
                raise ModelError(f"export verification: ONNX logits are not finite (batch {size})")
            diff = np.abs(got - ref)
            worst = max(worst, float(diff.max()))
            if bad is None and (diff > atol + rtol * np.abs(ref)).any():
                bad = f"batch {size}: max |diff| {float(diff.max()):.3g}"
    if bad is not None:
        raise ModelError(
            f"export verification failed: ONNX Runtime and PyTorch disagree beyond atol={atol} "
            f"rtol={rtol} ({bad}); try --exporter torchscript, or report the model"
        )
    return worst


# ----------------------------------------------------------------------- length buckets
def default_buckets(max_len: int) -> tuple[int, ...]:
    """Window-length buckets for a spec: 16, 32, 64, ... below max_len, then max_len.

    Args:
        max_len: The spec's max_len.

    Returns:
        Ascending lengths ending at max_len (just ``(max_len,)`` when max_len <= 16).
    """
    out: list[int] = []
    b = MIN_BUCKET
    while b < max_len:
        out.append(b)
        b *= 2
    out.append(max_len)
    return tuple(out)


def _resolve_buckets(length_buckets: bool | Sequence[int], max_len: int) -> tuple[int, ...]:
    """The buckets an export asks for; () for a fixed time axis."""
    from ..runtime.model import check_buckets

    if length_buckets is False:
        return ()
    if length_buckets is True:
        wanted: Sequence[int] = default_buckets(max_len)
    else:
        wanted = sorted({int(b) for b in length_buckets} | {max_len})
    buckets = check_buckets(list(wanted), max_len, "export")
    return buckets if len(buckets) > 1 else ()


def check_buckets_inert(
    proto_bytes: bytes,
    feats: FloatArray,
    mask: FloatArray,
    buckets: Sequence[int],
    *,
    atol: float = BUCKET_ATOL,
) -> tuple[float, int, str | None]:
    """Check with ONNX Runtime that padding is inert: a bucket gives max_len's logits.

    Every clip of the verification set with a real frame is cut to lengths that fit in
    several buckets (each bucket's own length, and one frame more than the bucket below,
    so a clip fills a bucket exactly and barely), padded with zeros as preprocessing
    pads; the graph runs on it at every bucket that holds it and at max_len.

    Args:
        proto_bytes: The serialized graph (dynamic time axis).
        feats: (N, max_len, F) verification features.
        mask: (N, max_len) their mask.
        buckets: Ascending lengths, the last one max_len.
        atol: Largest allowed |logit difference| to max_len.

    Returns:
        ``(max_abs_diff, clips_checked, problem)``; ``problem`` is None when every bucket
        agrees within ``atol``, else one line naming the worst length and bucket.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto_bytes, opts, providers=["CPUExecutionProvider"])
    real = mask.any(axis=1)
    base_f, base_m = feats[real], mask[real]  # (N', L, F), (N', L)
    L = int(buckets[-1])
    lengths = sorted({int(b) for b in buckets[:-1]} | {int(b) + 1 for b in buckets[:-1]})
    worst, checked = 0.0, 0
    for n in lengths:
        f = base_f.copy()
        m = base_m.copy()
        f[:, n:] = 0.0
        m[:, n:] = 0.0
        for b in [L, *(b for b in buckets[:-1] if b >= n)]:
            feed = {"features": np.ascontiguousarray(f[:, :b]),
                    "mask": np.ascontiguousarray(m[:, :b])}  # fmt: skip
            try:
                got = sess.run(["logits"], feed)[0]  # (N', K)
            except Exception as exc:  # onnxruntime raises its own exception types
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                problem = f"ONNX Runtime cannot run the graph at L = {b}: {first[:300]}"
                return worst, checked, problem
            if b == L:
                ref = got
                continue
            diff = float(np.abs(got - ref).max())
            worst = diff if not diff <= worst else worst
            if not diff <= atol:
                return worst, checked, (
                    f"clips of {n} frames give logits at L = {b} that differ from L = {L} by "
                    f"{diff:.3g} (> {atol:g})"
                )
        checked += int(f.shape[0])
    return worst, checked, None


def _trace_bucketed(
    model: torch.nn.Module,
    spec: FeatureSpec,
    feats: FloatArray,
    mask: FloatArray,
    buckets: tuple[int, ...],
    **trace: Any,
) -> tuple[onnx.ModelProto, str, int, dict[str, Any]]:
    """Trace with a dynamic time axis and check the buckets; else trace with a fixed L.

    Returns:
        ``(proto, exporter, nodes_before_simplify, time_axis)``; ``time_axis`` is the
        export metadata of the time axis: ``buckets`` (a list, empty for a fixed L), the
        check's ``bucket_max_abs_diff`` and ``bucket_clips``, and a ``note`` when a model
        asked for buckets was exported with a fixed L.
    """
    axis: dict[str, Any] = {"buckets": []}
    exporter = trace.pop("exporter", "auto")
    notes: list[str] = []
    for candidate in (["dynamo", "torchscript"] if exporter == "auto" else [exporter]):
        if not buckets:
            break
        try:
            proto, used, before = to_onnx(
                model, spec, min_length=buckets[0], exporter=candidate, **trace
            )
        except ModelError as exc:
            notes.append(f"{candidate}: no dynamic time axis ({str(exc)[:300]})")
            continue
        diff, clips, problem = check_buckets_inert(proto.SerializeToString(), feats, mask, buckets)
        if problem is None:
            axis.update(buckets=list(buckets), bucket_max_abs_diff=diff, bucket_clips=clips,
                        bucket_tolerance=BUCKET_ATOL)
            return proto, used, before, axis
        notes.append(f"{candidate}: padding is not inert ({problem})")
    if notes:
        axis["note"] = f"fixed L = {spec.max_len}; " + "; ".join(notes)
        log.warning("export: %s", axis["note"])
    proto, used, before = to_onnx(model, spec, exporter=exporter, **trace)
    return proto, used, before, axis


# ------------------------------------------------------------------------------ export
def export_model(
    model: torch.nn.Module,
    spec: FeatureSpec,
    labels: Sequence[str],
    out: str | os.PathLike[str],
    *,
    info: Mapping[str, Any],
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    batch_range: tuple[int, int] = DEFAULT_BATCH_RANGE,
    verify_inputs: tuple[FloatArray, FloatArray, str] | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
    simplify: bool = True,
    length_buckets: bool | Sequence[int] = True,
) -> ExportReport:
    """Export an in-memory model to a verified signrt model file.

    Args:
        model: The model (put in eval mode).
        spec: Its FeatureSpec.
        labels: The K class names.
        out: Destination ``.onnx`` path (written atomically, only after verification).
        info: The ``signrt.model`` metadata; must have ``architecture``; ``precision`` is
            set to ``fp32`` and an ``export`` entry is added.
        opset: ONNX opset (>= 17).
        exporter: ``auto``, ``dynamo`` or ``torchscript``.
        batch_range: Bounds of the dynamic batch axis, verified at both ends.
        verify_inputs: ``(features, mask, description)``; default
            :func:`verification_batch` on synthetic-signer clips.
        atol: Absolute parity tolerance.
        rtol: Relative parity tolerance.
        simplify: Simplify with onnxslim.
        length_buckets: Window-length buckets the runtime may trim inputs to: True for
            :func:`default_buckets`, a list of lengths (max_len is added), or False for a
            fixed time axis. They are recorded (``buckets`` in the model info) only when
            the graph exports with a dynamic time axis and passes
            :func:`check_buckets_inert`; otherwise L is fixed and ``export.time_axis``
            notes why.

    Returns:
        The :class:`ExportReport`.

    Raises:
        ModelError: If the export, the metadata or the verification fails.
    """
    import torch

    from ..runtime.model import save_onnx, stamp_metadata

    t0 = time.perf_counter()
    model = model.eval()
    buckets = _resolve_buckets(length_buckets, spec.max_len)
    if verify_inputs is None:
        verify_inputs = verification_batch(spec)
    feats, mask, source = verify_inputs
    proto, used, before, time_axis = _trace_bucketed(
        model, spec, feats, mask, buckets,
        opset=opset, exporter=exporter, batch_range=batch_range, simplify=simplify,
    )  # fmt: skip
    num_params = sum(p.numel() for p in model.parameters())
    meta = _json_safe(dict(info))
    meta["precision"] = "fp32"
    meta.setdefault("num_parameters", num_params)
    export_info: dict[str, Any] = {
        "exporter": used,
        "opset": opset,
        "torch": torch.__version__,
        "batch_range": list(batch_range),
        "simplified": simplify,
    }
    export_info["time_axis"] = time_axis
    meta["export"] = export_info
    if time_axis["buckets"]:
        meta["buckets"] = list(time_axis["buckets"])
    else:
        meta.pop("buckets", None)
    stamp_metadata(proto, spec, labels, meta)
    diff = _verify(model, proto.SerializeToString(), feats, mask, batch_range, atol, rtol)
    export_info["parity_max_abs_diff"] = diff
    stamp_metadata(proto, spec, labels, meta)
    path = save_onnx(proto, out)
    report = ExportReport(
        path=path,
        arch=str(meta.get("architecture")),
        exporter=used,
        opset=opset,
        batch_range=batch_range,
        num_classes=len(labels),
        num_parameters=num_params,
        max_abs_diff=diff,
        tolerance=(atol, rtol),
        verify_clips=int(feats.shape[0]),
        verify_source=source,
        nodes=len(proto.graph.node),
        nodes_before_simplify=before,
        size_bytes=path.stat().st_size,
        seconds=time.perf_counter() - t0,
        info=meta,
    )
    log.info("%s", report.summary())
    return report


def fit_calibration(
    model: torch.nn.Module,
    spec: FeatureSpec,
    labels: Sequence[str],
    source: str | os.PathLike[str],
    *,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Fit the calibration temperature of a model on held-out labelled clips.

    Clips of signs the model does not know are left out. The logits come from the model
    in eval mode on the clips preprocessed with its own spec (the export proves ONNX
    Runtime gives the same); T minimises their NLL
    (:func:`signrt.runtime.calibration.fit_temperature`).

    Args:
        model: The model.
        spec: Its FeatureSpec.
        labels: Its K labels.
        source: A dataset folder (anything :func:`signrt.train.data.open_dataset` opens)
            held out from training: the validation clips.
        batch_size: Clips per forward pass.

    Returns:
        The ``calibration`` object of the model info: ``method``, ``temperature``, ``data``
        and :func:`~signrt.runtime.calibration.calibration_report`'s figures.

    Raises:
        DataError: If the dataset cannot be opened or holds no clip of the model's signs.
    """
    import torch

    from ..runtime.calibration import calibration_report, fit_temperature
    from .data import batch_preprocess, open_dataset

    clipset = open_dataset(source)
    index = {name: i for i, name in enumerate(labels)}
    rows = [(i, index[clipset.label_names[int(y)]]) for i, y in enumerate(clipset.labels)
            if clipset.label_names[int(y)] in index]  # fmt: skip
    if not rows:
        raise DataError(
            f"calibration data {os.fspath(source)}: none of its signs is among the model's "
            f"{len(labels)} labels; pass held-out clips of the model's own signs"
        )
    model = model.eval()
    parts: list[FloatArray] = []
    for a in range(0, len(rows), batch_size):
        clips = [np.asarray(clipset.clips[i], dtype=np.float32)
                 for i, _ in rows[a : a + batch_size]]  # fmt: skip
        feats, mask = batch_preprocess(clips, spec)  # (B, L, F), (B, L)
        with torch.no_grad():
            parts.append(model(torch.from_numpy(feats), torch.from_numpy(mask)).float().numpy())
    logits = np.concatenate(parts).astype(np.float64)  # (N, K)
    y = np.asarray([k for _, k in rows], dtype=np.intp)
    t = fit_temperature(logits, y)
    out: dict[str, Any] = {"method": "temperature", "temperature": round(t, 5),
                           "data": os.fspath(source)}  # fmt: skip
    out.update(calibration_report(logits, y, round(t, 5)))
    if len(rows) < len(clipset.labels):
        out["skipped_clips"] = len(clipset.labels) - len(rows)
    log.info("calibration: T = %.4f on %d clips of %s (NLL %.4f -> %.4f, ECE %.4f -> %.4f)",
             t, out["clips"], out["data"], out["nll_before"], out["nll_after"],
             out["ece_before"], out["ece_after"])  # fmt: skip
    return out


def checkpoint_info(ckpt: Checkpoint) -> dict[str, Any]:
    """The ``signrt.model`` metadata of a checkpoint (precision fp32)."""
    from .models import make_config

    return {
        "architecture": ckpt.arch,
        "precision": "fp32",
        "hyperparameters": make_config(ckpt.arch, ckpt.model_config).to_dict(),
        "num_classes": len(ckpt.labels),
        "training": ckpt.train,
        "metrics": ckpt.metrics,
        "epoch": ckpt.epoch,
    }


def resolve_calib_data(
    calib_data: str | os.PathLike[str] | None, train: Mapping[str, Any] | None
) -> str | None:
    """The calibration data to use: ``"auto"`` means the run's validation data if present.

    Args:
        calib_data: A dataset, ``"auto"`` or None.
        train: The checkpoint's training information (its ``val_data``).

    Returns:
        The dataset, or None for no calibration.
    """
    if calib_data is None:
        return None
    text = os.fspath(calib_data)
    if text != "auto":
        return text
    val = (train or {}).get("val_data")
    if isinstance(val, str) and val and Path(val).exists():
        log.info("calibration: on the run's validation data %s", val)
        return val
    log.info("calibration: none (the run has no --val-data folder here; pass --calib-data)")
    return None


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    exporter: str = "auto",
    batch_range: tuple[int, int] = DEFAULT_BATCH_RANGE,
    verify_data: str | os.PathLike[str] | None = None,
    verify_limit: int = 31,
    atol: float = ATOL,
    rtol: float = RTOL,
    simplify: bool = True,
    length_buckets: bool | Sequence[int] = True,
    calib_data: str | os.PathLike[str] | None = "auto",
) -> ExportReport:
    """Export a training checkpoint (``RUN_DIR/best.pt``) to a verified signrt model file.

    Args:
        checkpoint: The checkpoint written by ``signrt train``.
        out: Destination ``.onnx`` path.
        opset: ONNX opset (>= 17).
        exporter: ``auto``, ``dynamo`` or ``torchscript``.
        batch_range: Bounds of the dynamic batch axis, verified at both ends.
        verify_data: Dataset whose clips verify the export (default: synthetic clips).
        verify_limit: Clips taken from it.
        atol: Absolute parity tolerance.
        rtol: Relative parity tolerance.
        simplify: Simplify with onnxslim.
        length_buckets: Window-length buckets (see :func:`export_model`).
        calib_data: Held-out labelled clips the calibration temperature is fitted on
            (:func:`fit_calibration`); ``"auto"`` (default): the run's validation data
            (``--val-data`` of ``signrt train``) when the checkpoint names one that exists,
            else no calibration; None: no calibration.

    Returns:
        The :class:`ExportReport`.

    Raises:
        DataError: If the calibration data cannot be read or holds none of the signs.
        ModelError: If the file is not a signrt checkpoint, its weights do not fit its
            architecture, or the export or its verification fails.
    """
    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    try:
        model = ckpt.build_model()
    except ModelError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"checkpoint {checkpoint}: the weights do not fit architecture {ckpt.arch!r} with "
            f"its config ({str(exc).splitlines()[0][:300]})"
        ) from exc
    inputs = verification_batch(ckpt.spec, verify_data, limit=verify_limit)
    info = checkpoint_info(ckpt)
    source = resolve_calib_data(calib_data, ckpt.train)
    if source is not None:
        info["calibration"] = fit_calibration(model, ckpt.spec, ckpt.labels, source)
    return export_model(
        model,
        ckpt.spec,
        ckpt.labels,
        out,
        info=info,
        opset=opset,
        exporter=exporter,
        batch_range=batch_range,
        verify_inputs=inputs,
        atol=atol,
        rtol=rtol,
        simplify=simplify,
        length_buckets=length_buckets,
    )
