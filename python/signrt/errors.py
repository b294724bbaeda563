"""Exception hierarchy of signrt.

Every error signrt raises on purpose derives from :class:`SignrtError`. Subclasses also
derive from the built-in exception whose meaning fits, so ``except ValueError`` keeps
working for callers that do not know signrt. The Rust extension raises these same classes
(imported once when it initialises), so a native error and a Python error look alike. Every
error class of the package is defined here (and nowhere else); the modules that raise them
import them from here.

The command line prints one line for any :class:`SignrtError` (exit status 2); any other
exception is a bug and shows its traceback.
"""

from __future__ import annotations

__all__ = [
    "AllocationError",
    "ConfigError",
    "DataError",
    "DependencyError",
    "DeviceError",
    "EngineOptionError",
    "ExtractorError",
    "ModelError",
    "OptionError",
    "ShapeError",
    "SignrtError",
    "SourceError",
    "SpecError",
    "StreamOptionError",
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
    """Input data is malformed, truncated or of the wrong kind.

    Raised for clip and dataset files and for a client's JSON message to the daemon.
    """


class ModelError(SignrtError, ValueError):
    """A model file is missing, corrupt, or inconsistent with its metadata."""


class DependencyError(SignrtError, ImportError):
    """An optional package that a feature needs is not installed.

    The message names the package and the ``pip install`` that provides it.
    """


class DeviceError(SignrtError, RuntimeError):
    """A requested inference backend or device is not available on this machine."""


class SourceError(SignrtError, OSError):
    """A frame source (camera, video file, stream) failed, could not be opened or ended."""


class ExtractorError(SignrtError, RuntimeError):
    """A landmark extractor could not be created or failed on an image."""


class ConfigError(SignrtError, ValueError):
    """A configuration is malformed: unknown key, wrong type, bad value or unreadable file.

    Raised for the daemon's settings (TOML file, environment, command line) and the
    training configuration.
    """


class OptionError(SignrtError, ValueError):
    """An option (keyword argument or command-line flag) is unknown or out of range.

    The message names the option, the value given and what is expected.
    """


class EngineOptionError(OptionError):
    """An engine option or device name is unknown or out of range.

    Raised by :class:`~signrt.runtime.options.EngineOptions` and the engine factory.
    """


class StreamOptionError(OptionError):
    """A :class:`~signrt.stream.Stream` option is out of range or belongs to the other mode."""


class AllocationError(SignrtError, MemoryError):
    """Memory for an output or working buffer could not be had.

    Raised when a request's size (from a clip's length, the batch size or a spec's
    ``max_len``, landmarks and lags) overflows, is over the native core's allocation limit
    or is refused by the allocator; the message names the buffer and its size.
    """
