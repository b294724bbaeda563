"""Exception hierarchy of signrt.

Every error signrt raises on purpose derives from :class:`SignrtError`. Subclasses also
derive from the built-in exception whose meaning fits, so ``except ValueError`` keeps
working for callers that do not know signrt. The Rust extension raises these same classes
(it looks them up in this module), so a native error and a Python error look alike.
"""

from __future__ import annotations

__all__ = [
    "AllocationError",
    "DataError",
    "DeviceError",
    "ModelError",
    "ShapeError",
    "SignrtError",
    "SourceError",
    "SpecError",
]


class SignrtError(Exception):
    """Base class of every error signrt raises on purpose."""


class SpecError(SignrtError, ValueError):
    """A FeatureSpec is malformed: unknown key, wrong type or a value out of range.

    Attributes:
        field: The JSON field at fault (``"landmarks"``, ``"normalize.kind"``, ...), or
            ``None`` when the problem concerns the whole document.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ShapeError(SignrtError, ValueError):
    """An array has the wrong shape or dtype; the message says what was expected and got."""


class DataError(SignrtError, ValueError):
    """A data file (clip, dataset index) is malformed, truncated or of the wrong kind."""


class ModelError(SignrtError, ValueError):
    """A model file is missing, corrupt, or inconsistent with its metadata."""


class DeviceError(SignrtError, RuntimeError):
    """A requested inference backend or device is not available on this machine."""


class SourceError(SignrtError, OSError):
    """A frame source (camera, video file, stream) failed, could not be opened or ended."""


class AllocationError(SignrtError, MemoryError):
    """Memory for an output or working buffer could not be had.

    Raised when a request's size (from a clip's length, the batch size or a spec's
    ``max_len``, landmarks and lags) overflows, is over the native core's allocation limit
    or is refused by the allocator; the message names the buffer and its size.
    """
