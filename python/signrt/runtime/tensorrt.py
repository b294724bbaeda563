"""Native TensorRT engines (``device="trt"``).

The ONNX model is parsed by TensorRT's ONNX parser and built into a serialized engine with
one optimisation profile (L from the model's smallest bucket to max_len, or max_len alone;
a batch range), a workspace limit and a persistent timing cache. The engine is cached on disk under
``<cache_dir>/trt/<key>.engine`` where the key hashes (ONNX sha256, TensorRT version, GPU
name, precision, profile shapes), so a new model, a TensorRT upgrade or another GPU gets a
fresh build. A sidecar ``<key>.json`` beside the engine keeps the spec, the labels and the
key fields, so an engine can be identified (and served) without its ONNX file.

Inference uses the TensorRT 10 name-based tensor API (``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``) on a CUDA stream, with device buffers
allocated once for the largest batch. ``tensorrt`` and ``cuda-python`` are imported only
when an engine is created.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .._fs import write_bytes_atomic
from ..errors import DeviceError, ModelError
from ..spec import FeatureSpec
from .model import INPUT_FEATURES, INPUT_MASK, OUTPUT_LOGITS, ModelFile
from .options import (
    EngineOptions,
    check_inputs,
    engine_lengths,
    profile_shapes,
    resolve_cache_dir,
)

__all__ = [
    "SIDECAR_VERSION",
    "TensorRTEngine",
    "engine_cache_key",
    "engine_paths",
    "profile_shapes",
    "read_sidecar",
    "tensorrt_unavailable_reason",
    "write_sidecar",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
Shape = tuple[int, ...]
#: name -> (min, opt, max) shapes of the optimisation profile.
ProfileShapes = Mapping[str, tuple[Shape, Shape, Shape]]

SIDECAR_VERSION: Final = 1


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def tensorrt_unavailable_reason() -> str | None:
    """Why native TensorRT cannot be used here, or None when its packages are installed.

    Only checks that the packages can be found (no import, no GPU query); a machine
    without a GPU is detected when an engine is created.
    """
    if not _has_module("tensorrt"):
        return (
            "the 'tensorrt' Python package is not installed; install TensorRT 10 "
            "(pip install 'signrt[tensorrt]', or JetPack's python3-libnvinfer on Jetson)"
        )
    if not (_has_module("cuda.bindings") or _has_module("cuda.cudart")):
        return (
            "the CUDA Python bindings ('cuda-python') are not installed; "
            "pip install 'signrt[tensorrt]'"
        )
    return None


def _import_tensorrt() -> Any:
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise DeviceError(f"device 'trt' is not available: {reason}")
    try:
        import tensorrt
    except Exception as exc:  # ImportError, or OSError from missing libnvinfer
        raise DeviceError(
            f"device 'trt': the tensorrt package fails to import ({exc}); check that the "
            "TensorRT libraries match the Python package and are on the library path"
        ) from exc
    return tensorrt


def _import_cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as exc:
            raise DeviceError(
                "device 'trt': the CUDA Python bindings do not import; "
                "pip install 'signrt[tensorrt]' (cuda-python)"
            ) from exc
    return cudart


# ------------------------------------------------------------------------ cache key
def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    precision: str,
    shapes: ProfileShapes,
) -> str:
    """Cache key of a serialized engine.

    Args:
        onnx_sha256: SHA-256 of the ONNX file.
        trt_version: ``tensorrt.__version__``.
        gpu_name: The CUDA device name.
        precision: ``fp32``, ``fp16`` or ``int8``.
        shapes: The optimisation profile, name -> (min, opt, max).

    Returns:
        A 32-hex-digit key; equal inputs give equal keys, any difference a new key.
    """
    doc = {
        "onnx_sha256": onnx_sha256,
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "precision": precision,
        "shapes": {k: [list(s) for s in v] for k, v in sorted(shapes.items())},
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def engine_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    """Paths of the engine file and its sidecar JSON for a cache key."""
    folder = cache_dir / "trt"
    return folder / f"{key}.engine", folder / f"{key}.json"




def write_sidecar(path: str | os.PathLike[str], model: ModelFile, key: Mapping[str, Any]) -> Path:
    """Write the sidecar JSON of an engine: spec, labels, model info and the key fields.

    Args:
        path: The sidecar path (``<key>.json``).
        model: The model the engine was built from.
        key: The key fields (onnx_sha256, tensorrt, gpu, precision, shapes).

    Returns:
        The sidecar path.
    """
    doc = {
        "version": SIDECAR_VERSION,
        "spec": model.spec.to_dict(),
        "labels": list(model.labels),
        "info": dict(model.info),
        "onnx": str(model.path),
        **{k: v for k, v in key.items()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    p = Path(path)
    write_bytes_atomic(p, (json.dumps(doc, indent=2, default=list) + "\n").encode())
    return p


def read_sidecar(
    path: str | os.PathLike[str],
) -> tuple[FeatureSpec, tuple[str, ...], dict[str, Any]]:
    """Read an engine's sidecar JSON.

    Returns:
        ``(spec, labels, document)``.

    Raises:
        ModelError: If the sidecar is missing, not JSON, or lacks a valid spec or labels.
    """
    p = Path(path)
    fix = "delete the engine and its sidecar from the cache so that it is rebuilt"
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        raise ModelError(f"engine sidecar {p} not found; {fix}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"engine sidecar {p} is unreadable ({exc}); {fix}") from exc
    if not isinstance(doc, dict) or doc.get("version") != SIDECAR_VERSION:
        raise ModelError(f"engine sidecar {p} has an unknown format; {fix}")
    try:
        spec = FeatureSpec.from_dict(doc["spec"])
        labels = doc["labels"]
        if not isinstance(labels, list) or not labels or not all(
            isinstance(x, str) and x for x in labels
        ):
            raise ModelError("labels must be a non-empty list of strings")
    except (KeyError, ValueError) as exc:
        raise ModelError(f"engine sidecar {p} is invalid ({exc}); {fix}") from exc
    return spec, tuple(labels), doc


# ------------------------------------------------------------------------- CUDA glue
class _Cuda:
    """Minimal CUDA runtime calls through cuda-python, with errors turned into DeviceError."""

    def __init__(self, device_id: int) -> None:
        self.rt = _import_cudart()
        self.device_id = device_id
        count = self._ok(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
        if int(count) <= device_id:
            raise DeviceError(
                f"device 'trt': CUDA device {device_id} not found ({int(count)} device(s)); "
                "native TensorRT needs an NVIDIA GPU"
            )
        self._ok(self.rt.cudaSetDevice(device_id), "cudaSetDevice")

    def _ok(self, result: Any, what: str) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise DeviceError(f"device 'trt': {what} failed with CUDA error {err}")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)

    def gpu_name(self) -> str:
        props = self._ok(self.rt.cudaGetDeviceProperties(self.device_id), "cudaGetDeviceProperties")
        name = props.name
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).split(b"\0", 1)[0].decode(errors="replace")
        return str(name).strip()

    def malloc(self, nbytes: int) -> int:
        return int(self._ok(self.rt.cudaMalloc(max(nbytes, 1)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self.rt.cudaFree(ptr)

    def stream(self) -> Any:
        return self._ok(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def h2d(self, dst: int, src: npt.NDArray[Any], stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst, src.ctypes.data, src.nbytes, kind, stream), "H2D")

    def d2h(self, dst: npt.NDArray[Any], src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.rt.cudaMemcpyAsync(dst.ctypes.data, src, dst.nbytes, kind, stream), "D2H")

    def sync(self, stream: Any) -> None:
        self._ok(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:80]


# ------------------------------------------------------------------------- engine
class TensorRTEngine:
    """A native TensorRT engine behind the :class:`~signrt.runtime.engines.Engine` protocol.

    Attributes:
        name: ``tensorrt``.
        device: ``trt``.
        providers: ``("TensorRT <version>",)``.
        engine_path: The cached serialized engine.
        cache_key: Its cache key.
        built: Whether this instance built the engine (False: loaded from the cache).
        load_ms: Time to build or load the engine, in milliseconds.
    """

    def __init__(self, model: ModelFile, options: EngineOptions | None = None) -> None:
        """Build or load the engine, allocate buffers and warm up.

        Args:
            model: A validated model file.
            options: :class:`~signrt.runtime.options.EngineOptions` (defaults if None).

        Raises:
            DeviceError: If tensorrt/cuda-python is missing, there is no GPU, or the build
                fails.
        """
        opts = options or EngineOptions()
        self.options = opts
        self.model = model
        self.name = "tensorrt"
        self.device = "trt"
        trt = _import_tensorrt()
        self._trt = trt
        self._cuda = _Cuda(opts.device_id)
        self.providers: tuple[str, ...] = (f"TensorRT {trt.__version__}",)
        self._L, self._F, self._K = model.max_len, model.num_features, model.num_classes
        self.lengths: tuple[int, ...] = engine_lengths(model, opts)
        shapes = profile_shapes(
            model, opts.min_batch, opts.opt_batch, opts.max_batch, self.lengths
        )
        self._min_b, _, self._max_b = (s[0] for s in shapes[INPUT_FEATURES])
        gpu = self._cuda.gpu_name()
        key_fields = {
            "onnx_sha256": model.sha256,
            "tensorrt": str(trt.__version__),
            "gpu": gpu,
            "precision": model.precision,
            "shapes": {k: [list(s) for s in v] for k, v in shapes.items()},
        }
        self.cache_key = engine_cache_key(model.sha256, trt.__version__, gpu, model.precision,
                                          shapes)
        cache_dir = resolve_cache_dir(opts.cache_dir)
        self.engine_path, self.sidecar_path = engine_paths(cache_dir, self.cache_key)
        self._timing_path = (
            cache_dir / "timing" / f"trt-{_safe_name(str(trt.__version__))}-{_safe_name(gpu)}.cache"
        )
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)

        t0 = time.perf_counter()
        self.built = False
        engine = None
        if self.engine_path.is_file() and self.sidecar_path.is_file():
            engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if engine is None:
                log.warning("cached TensorRT engine %s does not load; rebuilding", self.engine_path)
        if engine is None:
            data = self._build(shapes)
            write_bytes_atomic(self.engine_path, data)
            write_sidecar(self.sidecar_path, model, key_fields)
            self.built = True
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise DeviceError("device 'trt': TensorRT cannot deserialize the engine it built")
        self.load_ms = (time.perf_counter() - t0) * 1e3
        log.info(
            "TensorRT engine %s %s in %.0f ms", self.engine_path.name,
            "built" if self.built else "loaded", self.load_ms,
        )
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = self._cuda.stream()
        self._lock = threading.Lock()
        mb = self._max_b
        self._d_features = self._cuda.malloc(mb * self._L * self._F * 4)
        self._d_mask = self._cuda.malloc(mb * self._L * 4)
        self._d_logits = self._cuda.malloc(mb * self._K * 4)
        self._host_out: FloatArray = np.zeros((mb, self._K), dtype=np.float32)
        self._shape = (-1, -1)
        ctx = self._context
        ctx.set_tensor_address(INPUT_FEATURES, self._d_features)
        ctx.set_tensor_address(INPUT_MASK, self._d_mask)
        ctx.set_tensor_address(OUTPUT_LOGITS, self._d_logits)
        for b in opts.batch_sizes:
            for length in self.lengths:
                f = np.zeros((b, length, self._F), dtype=np.float32)
                m = np.zeros((b, length), dtype=np.float32)
                m[:, 0] = 1.0
                for _ in range(opts.warmup):
                    self.run(f, m)

    def _build(self, shapes: ProfileShapes) -> bytes:
        trt = self._trt
        opts = self.options
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # TensorRT 10: explicit batch is implied
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(self.model.path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelError(f"{self.model.path}: TensorRT's ONNX parser rejects it: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_bytes))
        # Precision is in the graph (FP16 casts / INT8 Q/DQ); the flags let TensorRT honour it.
        if self.model.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if self.model.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        profile = builder.create_optimization_profile()
        for name, (lo, mid, hi) in shapes.items():
            profile.set_shape(name, lo, mid, hi)
        config.add_optimization_profile(profile)
        timing_bytes = self._timing_path.read_bytes() if self._timing_path.is_file() else b""
        timing = config.create_timing_cache(timing_bytes)
        config.set_timing_cache(timing, False)
        t0 = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise DeviceError(
                f"device 'trt': TensorRT failed to build an engine for {self.model.path} "
                "(see the TensorRT log above); try device='tensorrt' or 'cuda'"
            )
        log.info("built TensorRT engine in %.1f s", time.perf_counter() - t0)
        try:
            write_bytes_atomic(
                self._timing_path, bytes(memoryview(config.get_timing_cache().serialize()))
            )
        except Exception as exc:  # a timing cache is an optimisation, never fatal
            log.warning("could not save the TensorRT timing cache: %s", exc)
        return bytes(memoryview(serialized))

    def run(self, features: FloatArray, mask: FloatArray) -> FloatArray:
        """Run the engine: features (B, L, F), mask (B, L) -> logits (B, K) float32.

        L is max_len or one of ``lengths``. Batches larger than the profile's maximum are
        split; a batch smaller than its minimum is padded.
        """
        f, m = check_inputs(features, mask, self._L, self._F, self.lengths)
        b, length = f.shape[0], f.shape[1]
        if b > self._max_b:
            out = np.empty((b, self._K), dtype=np.float32)
            for i in range(0, b, self._max_b):
                out[i : i + self._max_b] = self.run(f[i : i + self._max_b], m[i : i + self._max_b])
            return out
        if b < self._min_b:
            pad = self._min_b - b
            f = np.concatenate([f, np.zeros((pad, length, self._F), np.float32)])
            m = np.concatenate([m, np.zeros((pad, length), np.float32)])
            return self.run(f, m)[:b]
        with self._lock:
            ctx, cuda, s = self._context, self._cuda, self._stream
            if (b, length) != self._shape:
                ctx.set_input_shape(INPUT_FEATURES, (b, length, self._F))
                ctx.set_input_shape(INPUT_MASK, (b, length))
                self._shape = (b, length)
            cuda.h2d(self._d_features, f, s)
            cuda.h2d(self._d_mask, m, s)
            if not ctx.execute_async_v3(int(s)):
                raise DeviceError("device 'trt': execute_async_v3 failed (see the TensorRT log)")
            host: FloatArray = self._host_out[:b]
            cuda.d2h(host, self._d_logits, s)
            cuda.sync(s)
            result: FloatArray = host.copy()
            return result

    def close(self) -> None:
        """Free the device buffers."""
        with self._lock:
            for attr in ("_d_features", "_d_mask", "_d_logits"):
                ptr = getattr(self, attr, 0)
                if ptr:
                    self._cuda.free(ptr)
                    setattr(self, attr, 0)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def __repr__(self) -> str:
        return f"TensorRTEngine(key={self.cache_key}, built={self.built})"
