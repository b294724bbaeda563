"""Inference engines: ONNX Runtime (CPU, CUDA, TensorRT EP) and native TensorRT.

Every engine follows one small protocol, :class:`Engine`: ``run(features, mask) -> logits``
with features float32 (B, L, F), mask float32 (B, L) and logits float32 (B, K), plus the
attributes ``name``, ``device`` and ``providers``. :func:`create_engine` picks one from a
``device`` string:

* ``cpu``: onnxruntime's CPU execution provider (thread count configurable);
* ``cuda``: onnxruntime's CUDA execution provider (``onnxruntime-gpu``);
* ``tensorrt``: onnxruntime's TensorRT execution provider with one optimisation profile
  (L over the model's buckets, a batch range), engine and timing caches under the cache dir,
  a workspace limit and the precision the graph was exported in;
* ``trt``: native TensorRT (:mod:`signrt.runtime.tensorrt`);
* ``auto``: the best available, in the order TensorRT EP, native TensorRT, CUDA, CPU; one
  log line says which. An explicitly requested backend that is unavailable raises
  :class:`~signrt.errors.DeviceError` naming what is missing, never a silent CPU fallback.

Engines warm up on creation. On the hot path they do not allocate: each batch size (and
window length) gets an IO binding with a preallocated output buffer (the caller's input
arrays are bound without a copy on CPU and copied into preallocated device buffers on GPU).

An engine accepts L = max_len and, for a model that lists ``buckets``
(:attr:`~signrt.runtime.model.ModelFile.buckets`), every bucket; its ``lengths`` attribute
says which (``(max_len,)`` when ``EngineOptions.length_buckets`` is off).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import DeviceError, EngineOptionError, ModelError
from .model import INPUT_FEATURES, INPUT_MASK, OUTPUT_LOGITS, ModelFile
from .options import (
    DEVICES,
    OPT_LEVELS,
    ORT_PROVIDERS,
    EngineOptions,
    check_inputs,
    default_cache_dir,
    engine_lengths,
    profile_shapes,
    resolve_cache_dir,
)
from .tensorrt import TensorRTEngine, tensorrt_unavailable_reason

__all__ = [
    "DEVICES",
    "Engine",
    "EngineOptions",
    "OrtEngine",
    "available_devices",
    "create_engine",
    "default_cache_dir",
    "device_report",
    "resolve_cache_dir",
    "tensorrt_ep_options",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

#: Order in which ``auto`` tries the backends.
AUTO_ORDER: Final = ("tensorrt", "trt", "cuda", "cpu")
_PROVIDER: Final = ORT_PROVIDERS
#: (batch, length) pairs with their own IO binding, per bucket (beyond these, calls use
#: session.run).
_MAX_SLOTS: Final = 8


@runtime_checkable
class Engine(Protocol):
    """What the Recognizer needs from an inference backend.

    Attributes:
        name: Backend name (``onnxruntime-cpu``, ``onnxruntime-tensorrt``, ``tensorrt``...).
        device: The resolved device (``cpu``, ``cuda``, ``tensorrt``, ``trt``).
        providers: Execution providers actually in use, in priority order.

    An engine may also have ``lengths`` (ascending window lengths it accepts, the last one
    max_len); the Recognizer trims inputs to them. Without it, inputs keep max_len frames.
    """

    name: str
    device: str
    providers: tuple[str, ...]

    def run(self, features: FloatArray, mask: FloatArray) -> FloatArray:
        """Run the model: features (B, L, F), mask (B, L) float32 -> logits (B, K) float32."""
        ...


# ----------------------------------------------------------------------------- discovery
@functools.cache
def _ort_providers() -> tuple[str, ...]:
    """Onnxruntime's available providers, asked once per process."""
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - onnxruntime is a core dependency
        return ()
    return tuple(ort.get_available_providers())


def _ort_package_hint() -> str:
    try:
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__} offers {list(_ort_providers())}"
    except ImportError:  # pragma: no cover
        return "onnxruntime is not installed"


def available_devices() -> dict[str, str | None]:
    """Which backends this machine can use.

    The check is cheap (no session is created) and probes once per process (the provider
    list and the TensorRT packages are looked up on the first call and remembered): a
    listed provider may still fail to start (missing CUDA libraries); :func:`create_engine`
    detects that.

    Returns:
        ``device -> None`` when available, or ``device -> reason`` (what is missing and how
        to install it) when not; keys ``cpu``, ``cuda``, ``tensorrt``, ``trt``.
    """
    return dict(_probe_devices())


@functools.cache
def _probe_devices() -> tuple[tuple[str, str | None], ...]:
    """The device probe of :func:`available_devices`, run once per process."""
    providers = _ort_providers()
    out: dict[str, str | None] = {}
    out["cpu"] = (
        None
        if "CPUExecutionProvider" in providers
        else "onnxruntime is not installed (pip install onnxruntime)"
    )
    out["cuda"] = (
        None
        if _PROVIDER["cuda"] in providers
        else f"{_ort_package_hint()}: no CUDAExecutionProvider; install onnxruntime-gpu "
        "(pip install 'signrt[gpu]') on a machine with an NVIDIA GPU and CUDA 12"
    )
    out["tensorrt"] = (
        None
        if _PROVIDER["tensorrt"] in providers
        else f"{_ort_package_hint()}: no TensorrtExecutionProvider; install onnxruntime-gpu "
        "and TensorRT (pip install 'signrt[gpu,tensorrt]')"
    )
    out["trt"] = tensorrt_unavailable_reason()
    return tuple(out.items())


# ----------------------------------------------------------------------------- engines
class _Slot:
    """IO binding of one batch size with a preallocated output (and device inputs on GPU)."""

    __slots__ = ("batch", "binding", "dev_features", "dev_mask", "out")

    def __init__(self, sess: Any, batch: int, L: int, F: int, K: int, on_gpu: bool,
                 device_id: int) -> None:
        import onnxruntime as ort

        self.batch = batch
        self.out: FloatArray = np.zeros((batch, K), dtype=np.float32)
        self.binding = sess.io_binding()
        self.binding.bind_output(
            OUTPUT_LOGITS, "cpu", 0, np.float32, self.out.shape, self.out.ctypes.data
        )
        self.dev_features: Any = None
        self.dev_mask: Any = None
        if on_gpu:
            # Inputs live on the GPU; each call copies the host arrays into them in place.
            self.dev_features = ort.OrtValue.ortvalue_from_shape_and_type(
                (batch, L, F), np.float32, "cuda", device_id
            )
            self.dev_mask = ort.OrtValue.ortvalue_from_shape_and_type(
                (batch, L), np.float32, "cuda", device_id
            )
            self.binding.bind_ortvalue_input(INPUT_FEATURES, self.dev_features)
            self.binding.bind_ortvalue_input(INPUT_MASK, self.dev_mask)


class OrtEngine:
    """An onnxruntime session behind the :class:`Engine` protocol.

    Thread-safe: the preallocated IO binding is used by one caller at a time; a concurrent
    caller that finds it busy runs through ``session.run`` (thread-safe) instead of waiting.

    Attributes:
        name: ``onnxruntime-<device>``.
        device: ``cpu``, ``cuda`` or ``tensorrt``.
        providers: Providers of the session, in priority order.
        session: The ``onnxruntime.InferenceSession``.
        model: The model file.
        options: The engine options.
        load_ms: Session creation time (warm-up excluded), in milliseconds.
        warmup_ms: Warm-up time, in milliseconds.
        lengths: Window lengths the engine runs at (the model's buckets, or max_len only).
    """

    def __init__(
        self, model: ModelFile, device: str = "cpu", options: EngineOptions | None = None
    ) -> None:
        """Create the session, bind buffers and warm up.

        Args:
            model: A validated model file.
            device: ``cpu``, ``cuda`` or ``tensorrt``.
            options: Engine options (defaults if None).

        Raises:
            DeviceError: If the provider is missing or fails to start.
            ModelError: If the model's output width disagrees with its labels.
        """
        if device not in _PROVIDER:
            raise EngineOptionError(
                f"OrtEngine device must be one of {list(_PROVIDER)}, got {device!r}"
            )
        import onnxruntime as ort

        self.model = model
        self.options = opts = options or EngineOptions()
        self.device = device
        self.name = f"onnxruntime-{device}"
        self._L, self._F, self._K = model.max_len, model.num_features, model.num_classes
        self.lengths: tuple[int, ...] = engine_lengths(model, opts)
        self._fixed = model.fixed_batch
        self._chunk = self._fixed or (opts.max_batch if device == "tensorrt" else None)

        reason = available_devices()[device]
        if reason is not None:
            raise DeviceError(f"device {device!r} is not available: {reason}")

        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, OPT_LEVELS[opts.graph_optimization]
        )
        if opts.intra_op_num_threads is not None:
            so.intra_op_num_threads = opts.intra_op_num_threads
        if opts.inter_op_num_threads is not None:
            so.inter_op_num_threads = opts.inter_op_num_threads
        so.log_severity_level = 3
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if opts.allow_spinning else "0"
        )
        providers = self._provider_list(device, opts)
        t0 = time.perf_counter()
        try:
            self.session = ort.InferenceSession(str(model.path), so, providers=providers)
        except Exception as exc:
            if device == "cpu":
                raise ModelError(f"{model.path}: onnxruntime cannot load the model: {exc}") from exc
            raise DeviceError(
                f"device {device!r}: onnxruntime failed to create a {_PROVIDER[device]} "
                f"session: {exc}"
            ) from exc
        self.load_ms = (time.perf_counter() - t0) * 1e3
        self.providers: tuple[str, ...] = tuple(self.session.get_providers())
        if self.providers[0] != _PROVIDER[device]:
            raise DeviceError(
                f"device {device!r}: {_PROVIDER[device]} failed to start (the session fell "
                f"back to {list(self.providers)}); check that the CUDA 12, cuDNN 9"
                f"{' and TensorRT 10' if device == 'tensorrt' else ''} libraries are installed "
                "and on the library path"
            )
        self._on_gpu = device != "cpu"
        self._lock = threading.Lock()
        self._slots: dict[tuple[int, int], _Slot] = {}
        for b in opts.batch_sizes:
            for length in self.lengths:
                self._slot(b, length)
        self.warmup_ms = self._warmup(opts.warmup)

    # ------------------------------------------------------------------------ options
    def _provider_list(self, device: str, opts: EngineOptions) -> list[Any]:
        cuda = (_PROVIDER["cuda"], {"device_id": str(opts.device_id)})
        if device == "cpu":
            return ["CPUExecutionProvider"]
        if device == "cuda":
            return [cuda, "CPUExecutionProvider"]
        return [
            (_PROVIDER["tensorrt"], tensorrt_ep_options(self.model, opts)),
            cuda,
            "CPUExecutionProvider",
        ]

    # ------------------------------------------------------------------------ running
    def _slot(self, batch: int, length: int) -> _Slot | None:
        slot = self._slots.get((batch, length))
        if slot is None and len(self._slots) < _MAX_SLOTS * len(self.lengths):
            slot = _Slot(
                self.session, batch, length, self._F, self._K, self._on_gpu,
                self.options.device_id,
            )
            self._slots[batch, length] = slot
        return slot

    def _warmup(self, runs: int) -> float:
        t0 = time.perf_counter()
        for i, b in enumerate(self.options.batch_sizes or (1,)):
            for j, length in enumerate(reversed(self.lengths)):  # max_len first
                f = np.zeros((b, length, self._F), dtype=np.float32)
                m = np.zeros((b, length), dtype=np.float32)
                m[:, 0] = 1.0
                if i == 0 and j == 0:  # one unbound run: check the output width
                    feed = {INPUT_FEATURES: f, INPUT_MASK: m}
                    out = self.session.run([OUTPUT_LOGITS], feed)[0]
                    if out.shape != (b, self._K):
                        raise ModelError(
                            f"{self.model.path}: the model returns logits of shape "
                            f"{out.shape} for a batch of {b}, expected ({b}, {self._K}) "
                            f"({self._K} labels); re-export it with the labels it was "
                            "trained with"
                        )
                for _ in range(runs):
                    self.run(f, m)
        return (time.perf_counter() - t0) * 1e3

    def run(self, features: FloatArray, mask: FloatArray) -> FloatArray:
        """Run the model on a batch.

        Args:
            features: (B, L, F) float32 (other real dtypes are converted); L is max_len
                or one of ``lengths``.
            mask: (B, L) float32.

        Returns:
            Logits (B, K) float32, owned by the caller.

        Raises:
            ShapeError: On wrong shapes.
        """
        f, m = check_inputs(features, mask, self._L, self._F, self.lengths)
        b = f.shape[0]
        if self._chunk is not None and (b > self._chunk or (self._fixed and b != self._fixed)):
            return self._run_chunks(f, m, self._chunk)
        return self._run_one(f, m)

    def run_prepared(self, features: FloatArray, mask: FloatArray) -> FloatArray:
        """:meth:`run` for inputs the caller built itself, without re-checking them.

        The Recognizer's ``predict`` calls this: its features and mask come straight from
        the native preprocessing (trimmed to a bucket), so they are C-contiguous float32 of
        shape (B, L, F) and (B, L) with L one of :attr:`lengths`; skipping
        :func:`~signrt.runtime.options.check_inputs` saves its array calls on the hot path.
        Any other input must go through :meth:`run` (wrong ones are undefined here).

        Args:
            features: (B, L, F) C-contiguous float32, L in ``lengths``.
            mask: (B, L) C-contiguous float32.

        Returns:
            Logits (B, K) float32, owned by the caller (as :meth:`run`).
        """
        if self._chunk is not None:
            return self.run(features, mask)
        return self._run_one(features, mask)

    def _run_chunks(self, f: FloatArray, m: FloatArray, chunk: int) -> FloatArray:
        out = np.empty((f.shape[0], self._K), dtype=np.float32)
        for i in range(0, f.shape[0], chunk):
            fc, mc = f[i : i + chunk], m[i : i + chunk]
            n = fc.shape[0]
            if self._fixed is not None and n < self._fixed:
                fc = np.concatenate([fc, np.zeros((self._fixed - n, *fc.shape[1:]), np.float32)])
                mc = np.concatenate([mc, np.zeros((self._fixed - n, *mc.shape[1:]), np.float32)])
            out[i : i + n] = self._run_one(fc, mc)[:n]
        return out

    def _run_one(self, f: FloatArray, m: FloatArray) -> FloatArray:
        b, length = f.shape[0], f.shape[1]
        slot = self._slots.get((b, length))
        if slot is None:
            with self._lock:
                slot = self._slot(b, length)
        if slot is not None and self._lock.acquire(blocking=False):
            try:
                io = slot.binding
                if self._on_gpu:
                    slot.dev_features.update_inplace(f)
                    slot.dev_mask.update_inplace(m)
                else:
                    # Zero-copy: the binding wraps the caller's (contiguous float32) arrays.
                    io.bind_cpu_input(INPUT_FEATURES, f)
                    io.bind_cpu_input(INPUT_MASK, m)
                self.session.run_with_iobinding(io)
                if self._on_gpu:
                    io.synchronize_outputs()
                result: FloatArray = slot.out.copy()
                return result
            finally:
                self._lock.release()
        # Busy (another thread holds the binding) or an unusual batch size.
        out = self.session.run([OUTPUT_LOGITS], {INPUT_FEATURES: f, INPUT_MASK: m})[0]
        return np.asarray(out, dtype=np.float32)

    def close(self) -> None:
        """Release the bindings and the session."""
        with self._lock:
            self._slots.clear()

    def __repr__(self) -> str:
        return f"OrtEngine(device={self.device!r}, providers={list(self.providers)})"


def tensorrt_ep_options(model: ModelFile, opts: EngineOptions) -> dict[str, str]:
    """Options of onnxruntime's TensorRT execution provider for a model.

    Precision follows the graph (the model info's ``precision``: FP16 casts or INT8 Q/DQ
    nodes are in the graph, the builder flags only allow TensorRT to honour them). The
    optimisation profile covers L from the smallest bucket to max_len (optimised for
    max_len, the full window of a stream; L = max_len only for a model without buckets or
    with ``length_buckets`` off) and the batch range of ``opts`` (or the model's static
    batch). Engine cache and timing cache live under the cache dir, the
    engine cache in a folder of its own per model.

    Args:
        model: The model file.
        opts: Engine options.

    Returns:
        Provider options (string values) for ``TensorrtExecutionProvider``.
    """
    cache = resolve_cache_dir(opts.cache_dir)
    engines = cache / "ort-trt" / model.sha256[:16]
    timing = cache / "timing"
    for d in (engines, timing):
        d.mkdir(parents=True, exist_ok=True)
    shapes = profile_shapes(
        model, opts.min_batch, opts.opt_batch, opts.max_batch, engine_lengths(model, opts)
    )

    def fmt(i: int) -> str:
        f, m = shapes[INPUT_FEATURES][i], shapes[INPUT_MASK][i]
        return (
            f"{INPUT_FEATURES}:{'x'.join(map(str, f))},{INPUT_MASK}:{'x'.join(map(str, m))}"
        )

    def flag(v: bool) -> str:
        return "True" if v else "False"

    return {
        "device_id": str(opts.device_id),
        "trt_max_workspace_size": str(opts.workspace_bytes),
        "trt_fp16_enable": flag(model.precision in ("fp16", "int8")),
        "trt_int8_enable": flag(model.precision == "int8"),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(engines),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(timing),
        "trt_profile_min_shapes": fmt(0),
        "trt_profile_opt_shapes": fmt(1),
        "trt_profile_max_shapes": fmt(2),
    }


# ----------------------------------------------------------------------------- factory
def _create(model: ModelFile, device: str, opts: EngineOptions) -> Engine:
    if device == "trt":
        return TensorRTEngine(model, opts)
    return OrtEngine(model, device, opts)


def create_engine(
    model: ModelFile, device: str = "auto", options: EngineOptions | None = None
) -> Engine:
    """Create the engine for ``device``.

    Args:
        model: A validated model file.
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` (onnxruntime's TensorRT EP) or
            ``trt`` (native TensorRT).
        options: Engine options.

    Returns:
        A warmed-up engine.

    Raises:
        DeviceError: If an explicitly requested backend is unavailable (the message names
            the missing package or provider), or if ``auto`` finds nothing usable.
        EngineOptionError: For an unknown device name.
    """
    dev = device.lower().strip() if isinstance(device, str) else device
    if dev not in DEVICES:
        raise EngineOptionError(f"unknown device {device!r}; choose one of {list(DEVICES)}")
    opts = options or EngineOptions()
    if dev != "auto":
        reason = available_devices()[dev]
        if reason is not None:
            raise DeviceError(f"device {dev!r} is not available: {reason}")
        return _create(model, dev, opts)

    skipped: list[str] = []
    avail = available_devices()
    for cand in AUTO_ORDER:
        reason = avail[cand]
        if reason is not None:
            skipped.append(f"{cand}: {_short(reason)}")
            continue
        try:
            engine = _create(model, cand, opts)
        except DeviceError as exc:
            log.debug("auto: %s failed: %s", cand, exc)
            skipped.append(f"{cand}: {_short(str(exc))}")
            continue
        log.info(
            "device auto -> %s (%s)%s",
            cand,
            ", ".join(engine.providers),
            f"; skipped {'; '.join(skipped)}" if skipped else "",
        )
        return engine
    raise DeviceError("device 'auto': no usable backend; " + "; ".join(skipped))


def _short(reason: str) -> str:
    return reason if len(reason) <= 90 else reason[:87] + "..."


def device_report() -> list[tuple[str, str]]:
    """Lines ``(device, status)`` describing every backend (for ``signrt info``)."""
    return [(d, "available" if r is None else f"unavailable: {r}")
            for d, r in available_devices().items()]
