"""Helpers shared by the readers and writers: atomic writes, path checks, clip clean-up."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ShapeError
from ..layouts import NUM_LANDMARKS, to_holistic543

FloatArray = npt.NDArray[np.float32]
PathLike = str | os.PathLike[str]


def existing_file(path: PathLike) -> Path:
    """Return ``path`` as a Path; raise FileNotFoundError or IsADirectoryError if it is none."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder, not a clip file", str(p))
    if not p.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such clip file", str(p))
    return p


def finish_clip(clip: npt.NDArray[np.floating[Any]]) -> FloatArray:
    """Make a clip meet the layout contract: C-contiguous float32, missing points all-NaN.

    A landmark with any non-finite coordinate (NaN, ±inf) is missing, and a missing landmark
    is NaN in all three coordinates (DESIGN §2).
    """
    out = np.ascontiguousarray(clip, dtype=np.float32)
    if out.ndim != 3 or out.shape[1:] != (NUM_LANDMARKS, 3):
        raise ShapeError(f"expected a (T, {NUM_LANDMARKS}, 3) clip, got {out.shape}")
    # Points that are missing but not already all-NaN (a stray inf, a lone NaN coordinate).
    # x + y + z is non-finite for every point with a non-finite coordinate (and, rarely, for
    # finite ones that overflow): only those candidates get the exact per-coordinate test,
    # which keeps this at a few passes over the clip instead of a dozen.
    points = out.reshape(-1, 3)  # (T*543, 3) view
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, overflow: non-finite
        total = points[:, 0] + points[:, 1] + points[:, 2]  # (T*543,)
    cand = np.flatnonzero(~np.isfinite(total))
    if cand.size:
        sub = points[cand]  # (m, 3)
        fix = cand[~np.isfinite(sub).all(axis=1) & ~np.isnan(sub).all(axis=1)]
        if fix.size:
            out = out.copy()  # never modify the caller's array
            out.reshape(-1, 3)[fix] = np.nan
    return out


def clip_for_writing(clip: npt.ArrayLike) -> FloatArray:
    """Adapt a clip given to a writer into a (T, 543, 3) float32 array.

    Any layout :func:`signrt.layouts.to_holistic543` accepts is adapted first.

    Raises:
        ShapeError: If the array matches no known landmark layout.
    """
    return finish_clip(to_holistic543(clip))


