"""File helpers shared by every part of signrt that writes files."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "write_bytes_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, make_parents: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success move it onto ``path`` atomically.

    The temporary file lives in the destination's directory (so :func:`os.replace` is a
    rename on the same file system), gets the usual permissions (``0666 & ~umask``), is
    flushed and fsync'ed before the rename, and is removed if writing fails. Readers
    therefore see either the old file or the complete new one, never a torn write.

    Args:
        path: Destination file.
        make_parents: Create missing parent folders first (otherwise they must exist).

    Yields:
        A binary file object to write the content to.
    """
    dest = Path(path)
    if make_parents:
        dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders; returns the path."""
    with atomic_write(path, make_parents=True) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically, creating parent folders."""
    return write_bytes_atomic(path, text.encode("utf-8"))
