"""The installed package's version, in a module of its own.

Modules below the package face (the daemon, model metadata, checkpoints) import the version
from here instead of from ``signrt`` itself, which would import the whole public API.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__: str = version("signrt")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
