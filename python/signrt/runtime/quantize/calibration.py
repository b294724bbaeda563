"""Calibration data for static INT8: clips preprocessed with the model's own FeatureSpec.

A class-balanced, seeded sample of labelled clips becomes batches of ``(features (b, L, F),
mask (b, L))`` (native preprocessing, exactly what the runtime feeds the model), and an
onnxruntime ``CalibrationDataReader`` feeds them to the calibrator.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from ...errors import ModelError
from ...features import preprocess_batch
from ...spec import FeatureSpec

__all__ = ["DEFAULT_CALIB_CLIPS", "LabelledClips", "calibration_batches", "calibration_reader"]

#: Calibration clips used by default.
DEFAULT_CALIB_CLIPS: Final = 256

FloatArray = npt.NDArray[np.float32]


class LabelledClips(Protocol):
    """Clips with integer labels (a :class:`signrt.train.data.ClipSet` is one)."""

    @property
    def clips(self) -> Sequence[npt.ArrayLike]:
        """(T_i, 543, 3) clips (may be read lazily)."""
        ...

    @property
    def labels(self) -> Sequence[int] | npt.NDArray[np.int64]:
        """One class index per clip."""
        ...

    def __len__(self) -> int: ...


def calibration_batches(
    clipset: LabelledClips,
    spec: FeatureSpec,
    *,
    max_clips: int = DEFAULT_CALIB_CLIPS,
    batch_size: int = 32,
    seed: int = 0,
) -> list[tuple[FloatArray, FloatArray]]:
    """Preprocess up to ``max_clips`` clips (a class-balanced, seeded sample) into batches.

    Args:
        clipset: Calibration clips.
        spec: The model's FeatureSpec.
        max_clips: Clips to use.
        batch_size: Clips per batch.
        seed: Sampling seed.

    Returns:
        ``[(features (b, L, F), mask (b, L)), ...]``.
    """
    n = len(clipset)
    if n == 0:
        raise ModelError("calibration data set is empty")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    # round-robin over classes so that every sign is represented
    labels = np.asarray(clipset.labels)
    by_class = [list(order[labels[order] == k]) for k in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(n, max_clips):
        for rows in by_class:
            if rows and len(picked) < max_clips:
                picked.append(int(rows.pop()))
    out = []
    for start in range(0, len(picked), batch_size):
        idx = picked[start : start + batch_size]
        clips = [np.asarray(clipset.clips[i], dtype=np.float32) for i in idx]
        out.append(preprocess_batch(clips, spec))
    return out


def calibration_reader(batches: Sequence[tuple[FloatArray, FloatArray]]) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over preprocessed batches (rewindable)."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Batches(CalibrationDataReader):  # type: ignore[misc]
        """Feeds preprocessed batches to the calibrator."""

        def __init__(self) -> None:
            self._it: Iterator[tuple[FloatArray, FloatArray]] = iter(batches)

        def get_next(self) -> dict[str, FloatArray] | None:
            item = next(self._it, None)
            if item is None:
                return None
            return {"features": item[0], "mask": item[1]}

        def rewind(self) -> None:
            self._it = iter(batches)

    return _Batches()
