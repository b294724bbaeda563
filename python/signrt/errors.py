"""Exception hierarchy of signrt.

Every error signrt raises on purpose derives from :class:`SignrtError`. Subclasses also
derive from the built-in exception whose meaning fits, so ``except ValueError`` keeps
working for callers that do not know signrt. The Rust extension raises these same classes
(it looks them up in this module), so a native error and a Python error look alike.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
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


class ConfigError(SignrtError, ValueError):
    """A configuration is malformed: unknown key, wrong type, bad value or unreadable file.

    Raised for the daemon's settings (TOML file, environment, command line).
    """


class DeviceError(SignrtError, RuntimeError):
    """A requested inference backend or device is not available on this machine."""


class SourceError(SignrtError, OSError):
    """A frame source (camera, video file, stream) failed, could not be opened or ended."""
