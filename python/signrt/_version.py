"""The installed package version, for parts that record it (metadata, reports, the CLI).

Parts below the package face read it here instead of importing ``signrt.__version__``
(the face sits above every layer; DESIGN §8).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["package_version"]


def package_version() -> str:
    """Signrt's version, or ``0.0.0+unknown`` when running from a source tree."""
    try:
        return version("signrt")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"
