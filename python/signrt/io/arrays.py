"""NumPy clip files: ``.npy`` (one array) and ``.npz`` (key ``landmarks``, or the only array).

The canonical content is a (T, 543, 3) float array in the holistic-543 layout. Arrays in
another known layout — (T, 553, 3) with irises, (T, 75, 3) pose + hands, (T, 1662) flat
vectors, or a single frame of any of these — are adapted through
:func:`signrt.layouts.to_holistic543`. Files are always loaded with ``allow_pickle=False``;
anything that is not a plain numeric array raises :class:`signrt.DataError` naming the file.

The array header is checked against the bytes actually present before anything is
allocated: a small file whose header claims a huge shape is a :class:`~signrt.DataError`,
never a ``MemoryError`` (for ``.npz`` members, against the member's size in the archive
and the most that deflate can expand its compressed bytes to).
"""

from __future__ import annotations

import io
import logging
import math
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt

from .._fs import atomic_write
from ..errors import DataError, ShapeError
from ..layouts import to_holistic543
from ._files import FloatArray, PathLike, clip_for_writing, existing_file, finish_clip

__all__ = ["NPZ_KEY", "read_npy", "read_npz", "write_npy", "write_npz"]

logger = logging.getLogger(__name__)

#: Name of the array holding the clip in an ``.npz`` file.
NPZ_KEY: Final = "landmarks"

_NPY_MAGIC: Final = b"\x93NUMPY"
# Zip archives start with a local file header, or the end record when empty.
_ZIP_MAGICS: Final = (b"PK\x03\x04", b"PK\x05\x06")
# What numpy raises on malformed files: bad header or dtype, truncated data, a broken zip
# member or a pickled (object) array refused because of allow_pickle=False.
_LOAD_ERRORS: Final = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
# Deflate expands at most ~1032:1; a member claiming more data than that is a lie.
_DEFLATE_MAX_RATIO: Final = 1032


def _checked_header(fh: IO[bytes], where: str, available: int) -> None:
    """Read the .npy header at ``fh``'s position and check it against ``available`` bytes.

    ``available`` counts the bytes from the start of the header (magic included) to the
    end of the data. On return ``fh`` is back at the start of the header.

    Raises:
        DataError: If the header is unreadable or claims more data than ``available``
            holds.
    """
    start = fh.tell()
    fmt: Any = np.lib.format  # untyped module
    try:
        major, minor = fmt.read_magic(fh)
        if (major, minor) == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif major in (2, 3):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise DataError(f"unsupported .npy format version {major}.{minor}")
    except _LOAD_ERRORS as exc:
        raise DataError(f"{where}: bad header ({exc})") from None
    header_bytes = fh.tell() - start
    fh.seek(start)
    if dtype.hasobject:
        return  # numpy refuses pickled objects itself (allow_pickle=False), allocating nothing
    count = math.prod(int(n) for n in shape)
    claimed = count * dtype.itemsize
    if claimed > available - header_bytes:
        raise DataError(
            f"{where}: header claims a {tuple(int(n) for n in shape)} {dtype} array "
            f"({claimed:,} bytes) but only {max(0, available - header_bytes):,} bytes of "
            "data follow; the file is truncated or corrupt"
        )


def _magic(path: Path, size: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(size)


def _to_clip(path: Path, arr: npt.NDArray[np.generic], what: str) -> FloatArray:
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{path}: {what} has dtype {arr.dtype}, expected real numbers")
    try:
        clip = to_holistic543(arr)
    except ShapeError as exc:
        raise DataError(f"{path}: {what}: {exc}") from None
    logger.debug("read %s: %s %s -> %s", path, what, arr.shape, clip.shape)
    return finish_clip(clip)


def read_npy(path: PathLike) -> FloatArray:
    """Read a clip saved with :func:`numpy.save`.

    Args:
        path: The ``.npy`` file.

    Returns:
        (T, 543, 3) float32 landmarks, NaN where missing.

    Raises:
        FileNotFoundError: If the file does not exist.
        DataError: If the file is not a readable ``.npy`` array (truncated, pickled objects,
            another format), is not numeric, or has a shape of no known layout.
    """
    p = existing_file(path)
    if _magic(p, len(_NPY_MAGIC)) != _NPY_MAGIC:
        raise DataError(f"{p}: not a .npy file (the NumPy magic bytes are missing)")
    try:
        with open(p, "rb") as fh:
            _checked_header(fh, f"{p}: unreadable .npy array", p.stat().st_size)
            arr = np.load(fh, allow_pickle=False)
    except DataError:
        raise
    except _LOAD_ERRORS as exc:
        raise DataError(f"{p}: unreadable .npy array ({exc})") from None
    return _to_clip(p, arr, "array")


def _check_member(zf: zipfile.ZipFile, name: str, where: str) -> None:
    """Check an ``.npz`` member's header against what the archive can really hold."""
    member_name = f"{name}.npy" if f"{name}.npy" in zf.namelist() else name
    info = zf.getinfo(member_name)
    available = info.file_size
    if info.compress_type == zipfile.ZIP_STORED:
        available = min(available, info.compress_size)
    else:
        available = min(available, info.compress_size * _DEFLATE_MAX_RATIO + 1024)
    with zf.open(info) as member:
        head = member.read(65536 + 16)  # the header is at most 64 KiB (format 2.0 and up)
    _checked_header(io.BytesIO(head), where, available)


def read_npz(path: PathLike, key: str | None = None) -> FloatArray:
    """Read a clip from an ``.npz`` archive.

    Args:
        path: The ``.npz`` file.
        key: Name of the array; default ``"landmarks"``, or the only array in the archive.

    Returns:
        (T, 543, 3) float32 landmarks, NaN where missing.

    Raises:
        FileNotFoundError: If the file does not exist.
        DataError: If the file is not a readable ``.npz`` archive, the array cannot be chosen
            (no ``landmarks`` key and several arrays, or ``key`` absent), or the array is not
            numeric or has a shape of no known layout.
    """
    p = existing_file(path)
    if _magic(p, 4) not in _ZIP_MAGICS:
        raise DataError(f"{p}: not a .npz file (not a zip archive)")
    try:
        with open(p, "rb") as fh, np.load(fh, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is not None:
                name = key
            elif NPZ_KEY in names:
                name = NPZ_KEY
            elif len(names) == 1:
                name = names[0]
            else:
                raise DataError(
                    f"{p}: cannot choose the clip array: no {NPZ_KEY!r} key and "
                    f"{len(names)} arrays ({', '.join(names) or 'empty archive'})"
                )
            if name not in names:
                raise DataError(
                    f"{p}: no array named {name!r} (arrays: {', '.join(names) or 'none'})"
                )
            _check_member(archive.zip, name, f"{p}: unreadable .npz archive: array {name!r}")
            arr = archive[name]
    except DataError:
        raise
    except _LOAD_ERRORS as exc:
        raise DataError(f"{p}: unreadable .npz archive ({exc})") from None
    return _to_clip(p, arr, f"array {name!r}")


def write_npy(path: PathLike, clip: npt.ArrayLike) -> None:
    """Write a clip as a (T, 543, 3) float32 ``.npy`` file, atomically.

    Args:
        path: Destination file; its directory must exist.
        clip: (T, 543, 3) landmarks, or any layout :func:`signrt.layouts.to_holistic543`
            accepts.

    Raises:
        ShapeError: If the clip matches no known layout.
    """
    x = clip_for_writing(clip)
    with atomic_write(path) as fh:
        np.save(fh, x, allow_pickle=False)
    logger.debug("wrote %s: %d frames", path, x.shape[0])


def write_npz(path: PathLike, clip: npt.ArrayLike, *, compressed: bool = True) -> None:
    """Write a clip as an ``.npz`` archive with one array named ``landmarks``, atomically.

    Args:
        path: Destination file; its directory must exist.
        clip: (T, 543, 3) landmarks, or any layout :func:`signrt.layouts.to_holistic543`
            accepts.
        compressed: Deflate the array (default) or store it as is.

    Raises:
        ShapeError: If the clip matches no known layout.
    """
    x = clip_for_writing(clip)
    with atomic_write(path) as fh:
        if compressed:
            np.savez_compressed(fh, landmarks=x)
        else:
            np.savez(fh, landmarks=x)
    logger.debug("wrote %s: %d frames", path, x.shape[0])
