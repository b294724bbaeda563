"""NumPy clip files: ``.npy`` (one array) and ``.npz`` (key ``landmarks``, or the only array).

The canonical content is a (T, 543, 3) float array in the holistic-543 layout. Arrays in
another known layout — (T, 553, 3) with irises, (T, 75, 3) pose + hands, (T, 1662) flat
vectors, or a single frame of any of these — are adapted through
:func:`signrt.layouts.to_holistic543`. Files are always loaded with ``allow_pickle=False``;
anything that is not a plain numeric array raises :class:`signrt.DataError` naming the file.
"""

from __future__ import annotations

import logging
import zipfile
import zlib
from pathlib import Path
from typing import Final

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
            arr = np.load(fh, allow_pickle=False)
    except _LOAD_ERRORS as exc:
        raise DataError(f"{p}: unreadable .npy array ({exc})") from None
    return _to_clip(p, arr, "array")


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
            arr = archive[name]
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
