"""Kaggle ASL Signs ("Google - Isolated Sign Language Recognition") parquet clips.

One clip is one parquet file with one row per landmark and frame and the columns

=================  ===========  =====================================================
column             type         meaning
=================  ===========  =====================================================
``frame``          integer      frame number (need not start at 0 or be contiguous)
``row_id``         string       ``"<frame>-<type>-<landmark_index>"`` (not needed to read)
``type``           string       ``face``, ``left_hand``, ``pose`` or ``right_hand``
``landmark_index`` integer      index of the landmark within its part
``x``, ``y``, ``z`` floating     coordinates; null or NaN where the part was not detected
=================  ===========  =====================================================

543 rows per frame (MediaPipe Holistic with the 468-point face). Files of newer MediaPipe
have 553 rows per frame (478-point face including the irises); the irises are dropped through
:func:`signrt.layouts.from_holistic553`. Each row is placed by its ``type`` and
``landmark_index``, never by its position in the file, and frames are sorted by ``frame``.

Any malformed file raises :class:`signrt.DataError` naming the file and the problem.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._fs import atomic_write
from ..errors import DataError, ShapeError
from ..layouts import FACE, LEFT_HAND, NUM_LANDMARKS, POSE, RIGHT_HAND, from_holistic553
from ._files import FloatArray, PathLike, clip_for_writing, existing_file, finish_clip

__all__ = ["COLUMNS", "TYPES", "read_parquet", "write_parquet"]

logger = logging.getLogger(__name__)

#: Columns of a Kaggle ASL Signs clip, in file order.
COLUMNS: Final = ("frame", "row_id", "type", "landmark_index", "x", "y", "z")
#: Values of the ``type`` column, in holistic-543 layout order.
TYPES: Final = ("face", "left_hand", "pose", "right_hand")

# Columns the reader needs (row_id is redundant with frame/type/landmark_index).
_NEEDED: Final = ("frame", "type", "landmark_index", "x", "y", "z")
_PARTS: Final = (FACE, LEFT_HAND, POSE, RIGHT_HAND)
# Start of each part in the 543-row and the 553-row (478-point face) layouts.
_OFFSETS_543: Final = np.array([r.start for r in _PARTS], dtype=np.int64)
_OFFSETS_553: Final = _OFFSETS_543 + np.array([0, 10, 10, 10], dtype=np.int64)
# Number of landmarks of each part; the face may have 478 (irises 468-477).
_SIZES: Final = np.array([478, len(LEFT_HAND), len(POSE), len(RIGHT_HAND)], dtype=np.int64)
_IRIS_ROWS: Final = 10
_TYPES_ARROW: Final = pa.array(TYPES, type=pa.string())
# Part code and landmark_index of each of the 543 rows of one frame in layout order.
_LAYOUT_PART: Final = np.repeat(np.arange(len(_PARTS), dtype=np.int64), [len(r) for r in _PARTS])
_LAYOUT_INDEX: Final = np.concatenate([np.arange(len(r), dtype=np.int64) for r in _PARTS])


def _reason(exc: BaseException) -> str:
    """Return the message of a pyarrow error on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_schema(path: Path, schema: pa.Schema) -> None:
    names = list(schema.names)
    missing = [c for c in _NEEDED if c not in names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a Kaggle ASL Signs clip has the "
            f"columns {', '.join(COLUMNS)} (found: {', '.join(names) or 'none'})"
        )
    for name in _NEEDED:
        if names.count(name) > 1:
            raise DataError(f"{path}: column {name!r} appears {names.count(name)} times")
    for name in ("frame", "landmark_index"):
        typ = schema.field(name).type
        if not pa.types.is_integer(typ):
            raise DataError(f"{path}: column {name!r} has type {typ}, expected an integer type")
    typ = schema.field("type").type
    value_type = typ.value_type if pa.types.is_dictionary(typ) else typ
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        raise DataError(f"{path}: column 'type' has type {typ}, expected strings")
    for name in ("x", "y", "z"):
        typ = schema.field(name).type
        if not pa.types.is_floating(typ):
            raise DataError(
                f"{path}: column {name!r} has type {typ}, expected a floating-point type"
            )


def _int_column(path: Path, table: pa.Table, name: str) -> npt.NDArray[np.integer[Any]]:
    """The column as a NumPy array of the file's integer type (int16 in the Kaggle files)."""
    col = table.column(name)
    if col.null_count:
        raise DataError(f"{path}: column {name!r} has {col.null_count} null value(s)")
    return np.asarray(col.to_numpy())


def _part_column(path: Path, table: pa.Table) -> npt.NDArray[np.int64]:
    col = table.column("type")
    if col.null_count:
        raise DataError(f"{path}: column 'type' has {col.null_count} null value(s)")
    if pa.types.is_dictionary(col.type):
        # Read as parquet stores it (dictionary-encoded): look up the few distinct values
        # once per chunk instead of comparing every row's string.
        parts = []
        for chunk in col.chunks:
            values = chunk.dictionary.cast(pa.string())
            lut = pc.index_in(values, value_set=_TYPES_ARROW).fill_null(-1)
            codes = np.asarray(lut.to_numpy(), dtype=np.int64)[
                np.asarray(chunk.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
            bad = np.flatnonzero(codes < 0)
            if bad.size:
                unknown = values[int(chunk.indices[int(bad[0])].as_py())].as_py()
                raise DataError(
                    f"{path}: unknown landmark type {unknown!r} in column 'type' "
                    f"(expected one of {', '.join(TYPES)})"
                )
            parts.append(codes)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if col.type != pa.string():
        col = col.cast(pa.string())
    codes = pc.index_in(col, value_set=_TYPES_ARROW)
    if codes.null_count:
        unknown = pc.filter(col, pc.is_null(codes))[0].as_py()
        raise DataError(
            f"{path}: unknown landmark type {unknown!r} in column 'type' "
            f"(expected one of {', '.join(TYPES)})"
        )
    return np.asarray(codes.to_numpy(), dtype=np.int64)


def _float_column(table: pa.Table, name: str) -> npt.NDArray[np.float64]:
    # Nulls (how the Kaggle files store undetected parts) become NaN.
    return np.asarray(table.column(name).to_numpy(), dtype=np.float64)


def _in_layout_order(
    table: pa.Table,
    frame: npt.NDArray[np.integer[Any]],
    part: npt.NDArray[np.int64],
    index: npt.NDArray[np.integer[Any]],
) -> FloatArray | None:
    """The clip of a file whose rows are already in place, else ``None``.

    Files written by the competition's pipeline and by :func:`write_parquet` hold their
    543 rows per frame in layout order (face, left_hand, pose, right_hand, each by
    ``landmark_index``), frames ascending: then the x, y and z columns *are* the clip, and a
    few O(n) comparisons replace the sorts of the general path. Anything else (another row
    order, the 553-row layout, any malformed file) returns ``None`` and takes the general
    path, which also names what is wrong.
    """
    n = table.num_rows
    if n == 0 or n % NUM_LANDMARKS:
        return None
    t = n // NUM_LANDMARKS
    frames = frame.reshape(t, NUM_LANDMARKS)
    in_place = (
        bool((part.reshape(t, NUM_LANDMARKS) == _LAYOUT_PART).all())
        and bool((index.reshape(t, NUM_LANDMARKS) == _LAYOUT_INDEX).all())
        and bool((frames == frames[:, :1]).all())
        and bool((np.diff(frames[:, 0]) > 0).all())
    )
    if not in_place:
        return None
    xyz = np.empty((n, 3), dtype=np.float32)
    for c, name in enumerate(("x", "y", "z")):
        # Nulls (how the Kaggle files store undetected parts) become NaN.
        xyz[:, c] = table.column(name).to_numpy()
    return xyz.reshape(t, NUM_LANDMARKS, 3)


def _row_name(frame: int, part: int, index: int) -> str:
    return f"frame {frame}, type {TYPES[part]}, landmark_index {index}"


def _open(p: Path, **options: Any) -> pq.ParquetFile:
    """``pq.ParquetFile(p, **options)``; an unreadable file is a DataError."""
    try:
        return pq.ParquetFile(p, **options)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{p}: not a readable parquet file ({_reason(exc)})") from None


def read_parquet(path: PathLike) -> FloatArray:
    """Read one Kaggle ASL Signs parquet clip.

    Args:
        path: The ``.parquet`` file.

    Returns:
        (T, 543, 3) float32 landmarks, frames in ascending ``frame`` order, NaN where a
        landmark is missing (null or NaN in the file). T is the number of distinct frames.

    Raises:
        FileNotFoundError: If the file does not exist.
        DataError: If the file is not readable parquet (truncated, corrupt, another format),
            misses a column, has a column of the wrong type, has an unknown ``type`` value,
            a ``landmark_index`` out of range, a row count that is not a multiple of 543
            (553 with irises), duplicated rows, or a frame with rows missing.
    """
    p = existing_file(path)
    try:
        # ``type`` stays dictionary-encoded (4 distinct strings): no string per row.
        pfile = _open(p, read_dictionary=["type"])
    except KeyError:  # no column 'type': opened plainly, the schema check names it
        pfile = _open(p)
    try:
        _check_schema(p, pfile.schema_arrow)
        table = pfile.read(columns=list(_NEEDED))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{p}: corrupt or truncated parquet data ({_reason(exc)})") from None
    finally:
        pfile.close()

    n = table.num_rows
    frame = _int_column(p, table, "frame")
    part = _part_column(p, table)
    index = _int_column(p, table, "landmark_index")
    clip = _in_layout_order(table, frame, part, index)
    if clip is not None:
        logger.debug("read %s: %d frames in layout order", p, clip.shape[0])
        return finish_clip(clip)
    # The general path does arithmetic on them: int64 (as the file's values, not wrapped
    # for int8/int16 files).
    frame, index = frame.astype(np.int64), index.astype(np.int64)

    size = _SIZES[part]
    bad = np.flatnonzero((index < 0) | (index >= size))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{p}: landmark_index {index[i]} is out of range for type {TYPES[part[i]]!r} "
            f"(0-{size[i] - 1}) at row {i}"
        )
    irises = bool(np.any((part == 0) & (index >= len(FACE))))
    rows = NUM_LANDMARKS + _IRIS_ROWS if irises else NUM_LANDMARKS
    if n % rows:
        detail = " (newer MediaPipe layout with irises)" if irises else ""
        raise DataError(
            f"{p}: {n} rows is not a multiple of {rows}, the number of landmarks per "
            f"frame{detail}; the file is incomplete or has extra rows"
        )

    frames, inverse = np.unique(frame, return_inverse=True)
    inverse = inverse.reshape(-1)
    offsets = _OFFSETS_553 if irises else _OFFSETS_543
    key = inverse * rows + offsets[part] + index
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    if counts.size != n:
        d = int(np.argmax(counts > 1))
        i = int(first[d])
        raise DataError(
            f"{p}: duplicated rows: {int(counts[d])} rows for "
            f"{_row_name(int(frame[i]), int(part[i]), int(index[i]))}"
        )
    if n != frames.size * rows:
        per_frame = np.bincount(inverse, minlength=frames.size)
        f = int(np.flatnonzero(per_frame != rows)[0])
        raise DataError(
            f"{p}: frame {int(frames[f])} has {int(per_frame[f])} rows, expected {rows} "
            "(one per landmark)"
        )

    xyz = np.full((frames.size * rows, 3), np.nan, dtype=np.float32)
    for c, name in enumerate(("x", "y", "z")):
        xyz[key, c] = _float_column(table, name)
    clip = xyz.reshape(frames.size, rows, 3)
    if irises:
        clip = from_holistic553(clip)
    logger.debug("read %s: %d frames, %d rows per frame", p, frames.size, rows)
    return finish_clip(clip)


def write_parquet(
    path: PathLike, clip: npt.ArrayLike, *, frames: Sequence[int] | None = None
) -> None:
    """Write a clip as a Kaggle ASL Signs parquet file, atomically.

    The schema is that of the competition data: ``frame`` int16 (int32 if a frame number
    does not fit), ``row_id`` string, ``type`` string, ``landmark_index`` int16, ``x``,
    ``y``, ``z`` double with null for missing landmarks; 543 rows per frame in layout order.
    The file is written to a temporary file in the same directory and renamed over ``path``.

    Args:
        path: Destination ``.parquet`` file; its directory must exist.
        clip: (T, 543, 3) landmarks, or any layout :func:`signrt.layouts.to_holistic543`
            accepts.
        frames: Frame numbers, one per frame, all different; default ``0 .. T-1``.

    Raises:
        ShapeError: If the clip matches no known layout or ``frames`` has the wrong length.
        DataError: If ``frames`` repeats a frame number.
    """
    x = clip_for_writing(clip)
    t = x.shape[0]
    if frames is None:
        numbers = np.arange(t, dtype=np.int64)
    else:
        numbers = np.asarray(frames, dtype=np.int64).reshape(-1)
        if numbers.size != t:
            raise ShapeError(f"frames: expected {t} frame numbers, got {numbers.size}")
        if np.unique(numbers).size != t:
            raise DataError("frames: frame numbers must all be different")
    small = t == 0 or (numbers.min() >= -(2**15) and numbers.max() < 2**15)
    frame_type = pa.int16() if small else pa.int32()

    part_of_row = np.concatenate([np.full(len(r), k) for k, r in enumerate(_PARTS)])
    index_of_row = np.concatenate([np.arange(len(r)) for r in _PARTS])
    frame_col = pa.array(np.repeat(numbers, NUM_LANDMARKS), type=frame_type)
    type_col = pc.take(pa.array(TYPES, type=pa.string()), pa.array(np.tile(part_of_row, t)))
    index_col = pa.array(np.tile(index_of_row, t), type=pa.int16())
    row_id = pc.binary_join_element_wise(
        frame_col.cast(pa.string()), type_col, index_col.cast(pa.string()), "-"
    )
    flat = x.reshape(t * NUM_LANDMARKS, 3).astype(np.float64)
    coords = [pa.array(flat[:, c], type=pa.float64(), from_pandas=True) for c in range(3)]
    table = pa.Table.from_arrays(
        [frame_col, row_id, type_col, index_col, *coords], names=list(COLUMNS)
    )
    with atomic_write(path) as fh:
        pq.write_table(table, fh)
    logger.debug("wrote %s: %d frames", path, t)
