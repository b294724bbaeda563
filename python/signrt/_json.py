"""A JSON loader for untrusted text: bounded size and nesting, one exception type.

:func:`json.loads` recurses once per nesting level, so a few kilobytes of ``[[[[...]]]]``
raise :class:`RecursionError` (not a :class:`ValueError`), and ``NaN``/``Infinity`` or
huge integers slip through or fail in other ways. :func:`loads_limited` checks the nesting
depth with a linear scan before parsing and turns every failure into
:class:`~signrt.errors.DataError` (a :class:`ValueError`), so callers need a single except.
"""

from __future__ import annotations

import json
from typing import Any, Final

from .errors import DataError

__all__ = ["DEFAULT_MAX_DEPTH", "loads_limited"]

#: Deepest nesting of arrays and objects accepted by default.
DEFAULT_MAX_DEPTH: Final = 32


def _depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether arrays/objects nest deeper than ``max_depth`` (brackets in strings ignored)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise DataError(f"{name} is not valid JSON")


def loads_limited(
    data: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, max_bytes: int | None = None
) -> Any:
    """Parse untrusted JSON text with bounded size and nesting.

    Args:
        data: The text (``bytes`` must be UTF-8).
        max_depth: Deepest nesting of arrays and objects accepted.
        max_bytes: Longest input accepted (UTF-8 bytes for ``bytes``, characters for
            ``str``), or ``None`` for no limit.

    Returns:
        The parsed value.

    Raises:
        DataError: If the input is too long, nests too deeply, is not UTF-8, is not
            JSON, or uses ``NaN``/``Infinity``; the message says which.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise DataError(f"longer than {max_bytes} bytes ({len(data)})")
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    else:
        text = data
    if _depth_exceeds(text, max_depth):
        raise DataError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise DataError(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError; integers beyond the digit limit
        raise DataError(f"not valid JSON ({exc})") from None
