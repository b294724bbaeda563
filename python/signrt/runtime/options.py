"""Engine options, input checks and the cache folder: what every engine shares.

:mod:`signrt.runtime.engines` (ONNX Runtime) and :mod:`signrt.runtime.tensorrt` (native
TensorRT) both import this module and not each other's internals, so that neither engine
module depends on the other (``engines`` only asks ``tensorrt`` whether it is available and
creates its engine).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from ..errors import EngineOptionError, ShapeError

if TYPE_CHECKING:
    from .model import ModelFile

__all__ = [
    "CACHE_ENV",
    "DEVICES",
    "OPT_LEVELS",
    "ORT_PROVIDERS",
    "EngineOptions",
    "check_inputs",
    "default_cache_dir",
    "engine_lengths",
    "profile_shapes",
    "resolve_cache_dir",
]

FloatArray = npt.NDArray[np.float32]

#: ONNX Runtime execution provider of each device name (the engines and the ONNX landmarker).
ORT_PROVIDERS: Final = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
Shape = tuple[int, ...]

#: The ``device`` names :func:`signrt.runtime.engines.create_engine` accepts.
DEVICES: Final = ("auto", "cpu", "cuda", "tensorrt", "trt")
#: Environment variable naming the cache folder.
CACHE_ENV: Final = "SIGNRT_CACHE_DIR"


@dataclass(frozen=True)
class EngineOptions:
    """Options shared by the engines (``signrt.load(..., **options)`` passes them on).

    Attributes:
        intra_op_num_threads: CPU threads of onnxruntime's intra-op pool (None: its
            default, one per core).
        inter_op_num_threads: Threads of the inter-op pool (None: default).
        cache_dir: Folder of TensorRT engine and timing caches. None: ``$SIGNRT_CACHE_DIR``,
            else ``~/.cache/signrt``.
        workspace_bytes: TensorRT builder workspace limit.
        min_batch: Smallest batch of the TensorRT optimisation profile.
        opt_batch: Batch size TensorRT optimises for.
        max_batch: Largest batch of the profile; bigger batches are split.
        batch_sizes: Batch sizes that get a preallocated binding and a warm-up run.
        warmup: Warm-up runs per batch size on creation (0 disables).
        device_id: CUDA device index.
        graph_optimization: onnxruntime graph optimisation (``all``, ``extended``,
            ``basic``, ``none``).
        allow_spinning: Let onnxruntime's idle intra-op threads spin-wait (lowest latency
            on an otherwise idle machine; turn off when the CPU is shared).
        length_buckets: Run a model that lists ``buckets`` on the real frames rounded up
            to a bucket (False: always max_len frames, e.g. to compare). Models without
            buckets always run at max_len.

    Raises:
        EngineOptionError: On an option out of range.
    """

    intra_op_num_threads: int | None = None
    inter_op_num_threads: int | None = None
    cache_dir: str | os.PathLike[str] | None = None
    workspace_bytes: int = 1 << 30
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 32
    batch_sizes: tuple[int, ...] = (1,)
    warmup: int = 3
    device_id: int = 0
    graph_optimization: str = "all"
    allow_spinning: bool = True
    length_buckets: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", tuple(int(b) for b in self.batch_sizes))
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise EngineOptionError(
                "batch range must satisfy 1 <= min_batch <= opt_batch <= max_batch, got "
                f"{self.min_batch}, {self.opt_batch}, {self.max_batch}"
            )
        if any(b < 1 for b in self.batch_sizes):
            raise EngineOptionError(f"batch_sizes must be positive, got {self.batch_sizes}")
        for name in ("intra_op_num_threads", "inter_op_num_threads"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise EngineOptionError(f"{name} must be >= 1 or None, got {v}")
        if self.warmup < 0 or self.workspace_bytes < 1:
            raise EngineOptionError("warmup must be >= 0 and workspace_bytes >= 1")
        if self.graph_optimization not in OPT_LEVELS:
            raise EngineOptionError(
                f"graph_optimization must be one of {list(OPT_LEVELS)}, got "
                f"{self.graph_optimization!r}"
            )

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> EngineOptions:
        """Build options from keyword arguments, rejecting unknown names.

        Raises:
            EngineOptionError: On an unknown option (the message lists the known ones).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise EngineOptionError(
                f"unknown engine option(s) {unknown}; known options: {sorted(known)}"
            )
        return cls(**options)


OPT_LEVELS: Final = {
    "all": "ORT_ENABLE_ALL",
    "extended": "ORT_ENABLE_EXTENDED",
    "basic": "ORT_ENABLE_BASIC",
    "none": "ORT_DISABLE_ALL",
}


def default_cache_dir() -> Path:
    """The cache folder: ``$SIGNRT_CACHE_DIR`` if set, else ``~/.cache/signrt``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "signrt"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """Resolve the cache folder: the argument if given, else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()



def check_inputs(
    features: npt.ArrayLike,
    mask: npt.ArrayLike,
    L: int,
    F: int,
    lengths: Collection[int] = (),
) -> tuple[FloatArray, FloatArray]:
    """Check and convert an engine's inputs (every engine calls this first).

    Args:
        features: (B, L, F) features, any real dtype (converted to contiguous float32).
        mask: (B, L) mask.
        L: The model's window length (max_len).
        F: The model's features per frame.
        lengths: Other window lengths the engine accepts (the model's buckets).

    Returns:
        ``(features, mask)`` as C-contiguous float32 (no copy when they already are).

    Raises:
        ShapeError: On a wrong shape or an empty batch.
    """
    f = np.ascontiguousarray(features, dtype=np.float32)
    m = np.ascontiguousarray(mask, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != F or (f.shape[1] != L and f.shape[1] not in lengths):
        others = sorted({*lengths, L})
        allowed = f"L in {others}" if len(others) > 1 else f"{L}"
        raise ShapeError(f"features must be (B, {allowed}, {F}) float32, got {f.shape}")
    if m.shape != f.shape[:2]:
        raise ShapeError(f"mask must be (B, L) = {f.shape[:2]} float32, got {m.shape}")
    if f.shape[0] == 0:
        raise ShapeError("empty batch: features must have B >= 1 rows")
    return f, m


def engine_lengths(model: ModelFile, options: EngineOptions) -> tuple[int, ...]:
    """The window lengths an engine runs a model at: its buckets, or max_len only.

    Args:
        model: The model file (:attr:`~signrt.runtime.model.ModelFile.buckets`).
        options: The engine options (``length_buckets`` off keeps max_len only).

    Returns:
        Ascending lengths, the last one the spec's max_len.
    """
    return model.buckets if options.length_buckets else (model.max_len,)


def profile_shapes(
    model: ModelFile,
    min_batch: int,
    opt_batch: int,
    max_batch: int,
    lengths: Sequence[int] | None = None,
) -> dict[str, tuple[Shape, Shape, Shape]]:
    """The TensorRT optimisation profile of a model (native engine and the ORT EP).

    F is fixed; L runs from the smallest of ``lengths`` to max_len and is optimised for
    max_len (the full window of a stream); the batch comes from the range, or is the
    graph's static batch for min, opt and max.

    Args:
        model: The model file.
        min_batch: Smallest batch.
        opt_batch: Batch TensorRT optimises for.
        max_batch: Largest batch.
        lengths: Window lengths to cover (default: max_len only).

    Returns:
        ``{"features": (min, opt, max), "mask": (min, opt, max)}``.
    """
    L, F = model.max_len, model.num_features
    lo_len = min(lengths) if lengths else L
    fixed = model.fixed_batch
    lo, mid, hi = (fixed, fixed, fixed) if fixed is not None else (min_batch, opt_batch, max_batch)
    return {
        "features": ((lo, lo_len, F), (mid, L, F), (hi, L, F)),
        "mask": ((lo, lo_len), (mid, L), (hi, L)),
    }
