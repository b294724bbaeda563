"""Readers and writers of landmark clips, and indexes of clip datasets.

Every reader returns a (T, 543, 3) float32 clip in the holistic-543 layout (DESIGN §2), NaN
where a landmark is missing; every writer accepts such a clip (or any layout
:func:`signrt.layouts.to_holistic543` adapts) and writes atomically (a temporary file in the
same directory, then a rename). The format follows the file suffix:

==============  =============================================================================
suffix          format
==============  =============================================================================
``.parquet``    Kaggle ASL Signs clip (:mod:`signrt.io.kaggle`)
``.npy``        NumPy array, (T, 543, 3) or another known layout (:mod:`signrt.io.arrays`)
``.npz``        NumPy archive, array ``landmarks`` or the only one (:mod:`signrt.io.arrays`)
``.pose``       pose-format file with holistic components, needs ``signrt[pose]``
                (:mod:`signrt.io.pose`)
==============  =============================================================================

A dataset on disk is either a Kaggle-layout folder (``train.csv`` with columns path,
participant_id, sequence_id, sign, and the parquet files it names) or a clip folder (one
subfolder per sign holding its clips, the ImageFolder convention); :func:`index_dataset`
tells them apart.

Malformed files raise :class:`signrt.DataError` with a message naming the file and the
problem.

Example:
    >>> from signrt.io import index_dataset, read_clip
    >>> records = index_dataset("asl-signs")
    >>> clip = read_clip(records[0].path)        # (T, 543, 3) float32
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy.typing as npt

from ..errors import DataError
from ._files import FloatArray, PathLike
from .arrays import read_npy, read_npz, write_npy, write_npz
from .kaggle import read_parquet, write_parquet
from .pose import read_pose, write_pose

__all__ = [
    "CLIP_SUFFIXES",
    "KAGGLE_INDEX",
    "ClipRecord",
    "index_clip_folder",
    "index_dataset",
    "index_kaggle",
    "read_clip",
    "read_npy",
    "read_npz",
    "read_parquet",
    "read_pose",
    "write_clip",
    "write_npy",
    "write_npz",
    "write_parquet",
    "write_pose",
]

logger = logging.getLogger(__name__)

#: File suffixes of clips, each with its reader.
CLIP_SUFFIXES: Final = (".parquet", ".npy", ".npz", ".pose")
#: The index file of a Kaggle-layout dataset.
KAGGLE_INDEX: Final = "train.csv"
_KAGGLE_COLUMNS: Final = ("path", "participant_id", "sequence_id", "sign")

_READERS: Final[dict[str, Callable[[PathLike], FloatArray]]] = {
    ".parquet": read_parquet,
    ".npy": read_npy,
    ".npz": read_npz,
    ".pose": read_pose,
}


def _suffix(path: PathLike, action: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in CLIP_SUFFIXES:
        raise DataError(
            f"{path}: cannot {action} clips of type {suffix or '(no suffix)'!r}; supported: "
            f"{', '.join(CLIP_SUFFIXES)}"
        )
    return suffix


def read_clip(path: PathLike) -> FloatArray:
    """Read a landmark clip, choosing the reader by the file suffix.

    Args:
        path: A ``.parquet`` (Kaggle ASL Signs), ``.npy``, ``.npz`` or ``.pose`` file.

    Returns:
        (T, 543, 3) float32 landmarks, NaN where missing.

    Raises:
        FileNotFoundError: If the file does not exist.
        DataError: If the suffix is not supported or the file is malformed.
        DependencyError: For a ``.pose`` file when pose-format is not installed.
    """
    return _READERS[_suffix(path, "read")](path)


def write_clip(path: PathLike, clip: npt.ArrayLike, *, fps: float = 30.0) -> None:
    """Write a landmark clip atomically, choosing the format by the file suffix.

    Args:
        path: Destination ``.parquet``, ``.npy``, ``.npz`` or ``.pose`` file; its directory
            must exist.
        clip: (T, 543, 3) landmarks, or any layout :func:`signrt.layouts.to_holistic543`
            accepts.
        fps: Frame rate, stored by ``.pose`` files (the other formats store none).

    Raises:
        DataError: If the suffix is not supported.
        ShapeError: If the clip matches no known layout.
        DependencyError: For a ``.pose`` file when pose-format is not installed.
    """
    suffix = _suffix(path, "write")
    if suffix == ".parquet":
        write_parquet(path, clip)
    elif suffix == ".npy":
        write_npy(path, clip)
    elif suffix == ".npz":
        write_npz(path, clip)
    else:
        write_pose(path, clip, fps=fps)


@dataclass(frozen=True)
class ClipRecord:
    """One labelled clip of a dataset.

    Attributes:
        path: Absolute path of the clip file.
        sign: The sign (class label) of the clip.
        participant_id: The signer, where the dataset records one (Kaggle layout), else None.
        sequence_id: The clip's id, where the dataset records one (Kaggle layout), else None.
    """

    path: Path
    sign: str
    participant_id: int | None = None
    sequence_id: int | None = None

    def read(self) -> FloatArray:
        """Read the clip; see :func:`read_clip`."""
        return read_clip(self.path)


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _dataset_dir(root: PathLike) -> Path:
    p = _absolute(Path(root))
    if not p.is_dir():
        what = "is not a folder" if p.exists() else "does not exist"
        raise DataError(f"{p}: dataset folder {what}")
    return p


def _csv_int(index: Path, line: int, name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{index}: line {line}: {name} {value!r} is not an integer") from None


def index_kaggle(root: PathLike, *, check_files: bool = True) -> list[ClipRecord]:
    """Index a Kaggle-layout dataset from its ``train.csv``.

    Args:
        root: The dataset folder (holding ``train.csv``), or the csv file itself; the clip
            paths in the csv are relative to the folder holding it.
        check_files: Check that every clip file exists (one ``stat`` per clip).

    Returns:
        One record per csv row, in file order, with absolute paths.

    Raises:
        DataError: If the folder or csv is missing, the csv lacks a column, a row has an
            empty path or sign or a non-integer id, a path is listed twice, or (with
            ``check_files``) clip files are missing.
    """
    given = _absolute(Path(root))
    index = given if given.is_file() else given / KAGGLE_INDEX
    if not index.is_file():
        raise DataError(f"{index}: no {KAGGLE_INDEX} here, so this is not a Kaggle-layout dataset")
    base = index.parent
    records: list[ClipRecord] = []
    seen: set[Path] = set()
    try:
        with open(index, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in _KAGGLE_COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"{index}: missing column(s) {', '.join(missing)}; expected "
                    f"{', '.join(_KAGGLE_COLUMNS)} (found: {', '.join(header) or 'none'})"
                )
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                rel, sign = (row.get("path") or "").strip(), (row.get("sign") or "").strip()
                if not rel or not sign:
                    raise DataError(f"{index}: line {line}: empty path or sign")
                path = _absolute(base / rel)
                if path in seen:
                    raise DataError(f"{index}: line {line}: {rel} is listed twice")
                seen.add(path)
                records.append(
                    ClipRecord(
                        path=path,
                        sign=sign,
                        participant_id=_csv_int(
                            index, line, "participant_id", row.get("participant_id") or ""
                        ),
                        sequence_id=_csv_int(
                            index, line, "sequence_id", row.get("sequence_id") or ""
                        ),
                    )
                )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{index}: unreadable csv ({exc})") from None
    if check_files:
        absent = [r.path for r in records if not r.path.is_file()]
        if absent:
            shown = ", ".join(str(a) for a in absent[:3])
            more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
            raise DataError(
                f"{index}: {len(absent)} of {len(records)} clip files are missing: {shown}{more}"
            )
    logger.info("indexed %s: %d clips", index, len(records))
    return records


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _iter_clips(folder: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if _visible(Path(d)))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if _visible(p) and p.suffix.lower() in CLIP_SUFFIXES:
                yield p


def index_clip_folder(root: PathLike) -> list[ClipRecord]:
    """Index a clip folder: one subfolder per sign, each holding that sign's clips.

    Clips are the files with a suffix in :data:`CLIP_SUFFIXES`, found anywhere below a sign
    folder; hidden files and folders (a leading ``.``) are skipped. Signs and clips
    are listed in sorted order.

    Args:
        root: The dataset folder.

    Returns:
        One record per clip, with absolute paths and no participant or sequence id.

    Raises:
        DataError: If the folder does not exist, has no sign subfolders, or a sign folder
            holds no clip.
    """
    base = _dataset_dir(root)
    signs = sorted(d for d in base.iterdir() if d.is_dir() and _visible(d))
    if not signs:
        raise DataError(f"{base}: no sign subfolders, so this is not a clip folder")
    records: list[ClipRecord] = []
    empty: list[str] = []
    for sign_dir in signs:
        clips = list(_iter_clips(sign_dir))
        if not clips:
            empty.append(sign_dir.name)
        records += [ClipRecord(path=c, sign=sign_dir.name) for c in clips]
    if empty:
        raise DataError(
            f"{base}: sign folder(s) {', '.join(empty)} hold no clip "
            f"({', '.join(CLIP_SUFFIXES)} files)"
        )
    logger.info("indexed %s: %d clips of %d signs", base, len(records), len(signs))
    return records


def _looks_like_clip_folder(base: Path) -> bool:
    return any(
        d.is_dir() and _visible(d) and next(_iter_clips(d), None) is not None
        for d in base.iterdir()
    )


def index_dataset(root: PathLike, *, check_files: bool = True) -> list[ClipRecord]:
    """Index a dataset folder of either layout.

    A folder with a ``train.csv`` is a Kaggle-layout dataset (:func:`index_kaggle`); one
    whose subfolders hold clip files is a clip folder (:func:`index_clip_folder`).

    Args:
        root: The dataset folder, or a Kaggle ``train.csv``.
        check_files: For a Kaggle-layout dataset, check that every clip file exists.

    Returns:
        One record per clip, with absolute paths.

    Raises:
        DataError: If the folder is neither kind, or indexing it fails.
    """
    given = _absolute(Path(root))
    if given.is_file() and given.suffix.lower() == ".csv":
        return index_kaggle(given, check_files=check_files)
    base = _dataset_dir(given)
    if (base / KAGGLE_INDEX).is_file():
        return index_kaggle(base, check_files=check_files)
    if _looks_like_clip_folder(base):
        return index_clip_folder(base)
    raise DataError(
        f"{base}: not a dataset: neither a Kaggle-layout folder ({KAGGLE_INDEX} listing "
        "parquet clips) nor a clip folder (one subfolder per sign holding "
        f"{', '.join(CLIP_SUFFIXES)} clips)"
    )
