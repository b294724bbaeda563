"""Lazy attribute access for package ``__init__`` modules (PEP 562).

Keeps ``import signrt`` (and its subpackages) light: names listed in a mapping are imported
from their submodule on first access and cached in the package namespace.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_module"]


def lazy_module(
    package: str, names: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build a package's ``__getattr__`` and ``__dir__``.

    Args:
        package: The package's ``__name__``.
        names: ``attribute -> relative submodule`` (e.g. ``{"Daemon": ".server"}``).
        public: The package's ``__all__``, listed by ``dir()``.

    Returns:
        ``(__getattr__, __dir__)`` to assign at module level.
    """
    listed = set(public)

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | listed)

    return getattr_, dir_
