"""Feature extraction: a FeatureSpec applied to landmark clips.

Two implementations of DESIGN §3 live side by side:

* the native path (Rust, ``signrt._native``), used by :func:`preprocess`,
  :func:`preprocess_batch` and :class:`Preprocessor`: fast, batch-parallel, GIL released;
* the NumPy reference, :func:`preprocess_reference`: written for clarity, the oracle the
  native path is parity-tested against.

Non-finite input (NaN, +inf, -inf) counts as a missing landmark. The output is always finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _native
from .errors import ShapeError, SpecError
from .layouts import NUM_LANDMARKS
from .spec import FeatureSpec

__all__ = [
    "FeatureStream",
    "Preprocessor",
    "preprocess",
    "preprocess_batch",
    "preprocess_reference",
]

FloatArray = npt.NDArray[np.float32]

# Fallbacks of the normalisation statistics (DESIGN §3 step 3).
_CENTRE_FALLBACK = 0.5
_SCALE_FALLBACK = 1.0
_SCALE_MIN = 1e-6
_SHOULDERS = (500, 501)


def _resolve(spec: FeatureSpec | str | None) -> FeatureSpec:
    if spec is None:
        return FeatureSpec.preset("islr118")
    if not isinstance(spec, (FeatureSpec, str)):
        raise SpecError(
            f"spec must be a FeatureSpec, a preset name or JSON text, got {type(spec).__name__}"
        )
    return FeatureSpec.resolve(spec)


def preprocess(
    clip: npt.ArrayLike, spec: FeatureSpec | str | None = None
) -> tuple[FloatArray, FloatArray]:
    """Turn one clip of landmark frames into model features (native path).

    Args:
        clip: (T, 543, 3) landmarks, any real dtype; T may be 0. NaN/inf mark missing values.
        spec: A FeatureSpec, a preset name, or spec JSON; default ``islr118``.

    Returns:
        ``(features, mask)``: float32 (max_len, F) and float32 (max_len,), mask 1 on real
        frames and 0 on padding.

    Raises:
        ShapeError: If the clip is not (T, 543, 3).
        AllocationError: If the output or working memory cannot be allocated.
    """
    # The native module checks shape and dtype itself (same ShapeError messages as
    # _as_clip) and reads float32/float64 views of any strides in place; any other dtype,
    # byte order or alignment is converted once.
    return _native.preprocess(clip, _resolve(spec).native)  # type: ignore[no-any-return]


def preprocess_batch(
    clips: Sequence[npt.ArrayLike], spec: FeatureSpec | str | None = None
) -> tuple[FloatArray, FloatArray]:
    """Preprocess many clips of different lengths in parallel (native, GIL released).

    Args:
        clips: A sequence of (T_i, 543, 3) clips.
        spec: A FeatureSpec, a preset name, or spec JSON; default ``islr118``.

    Returns:
        ``(features, mask)``: float32 (B, max_len, F) and (B, max_len).

    Raises:
        ShapeError: If any clip is not (T, 543, 3); the message names its position.
        AllocationError: If the (B, max_len, F) output cannot be allocated.
    """
    # The native module checks every clip (ShapeError naming its position), reads
    # float32/float64 views of any strides in place and converts any other at most once.
    return _native.preprocess_batch(clips, _resolve(spec).native)  # type: ignore[no-any-return]


class Preprocessor:
    """A FeatureSpec bound to the native core, for repeated calls.

    Example:
        >>> pre = Preprocessor(FeatureSpec.preset("islr118"))
        >>> feats, mask = pre(clip)            # (64, 708), (64,)
        >>> feats, mask = pre.batch([a, b])    # (2, 64, 708), (2, 64)
    """

    def __init__(self, spec: FeatureSpec | str | None = None) -> None:
        self.spec = _resolve(spec)
        self._native = self.spec.native
        self._preprocess = _native.preprocess

    def __call__(self, clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Preprocess one clip; see :func:`preprocess`."""
        return self._preprocess(clip, self._native)  # type: ignore[no-any-return]

    def batch(self, clips: Sequence[npt.ArrayLike]) -> tuple[FloatArray, FloatArray]:
        """Preprocess many clips; see :func:`preprocess_batch`."""
        return preprocess_batch(clips, self.spec)

    def __repr__(self) -> str:
        return f"Preprocessor(spec={self.spec.fingerprint}, F={self.spec.num_features})"


class FeatureStream:
    """A sliding window of the last ``max_len`` frames, featurised on demand (native).

    Frames are pushed one at a time; :meth:`features` returns what :func:`preprocess` returns
    for the frames in the window (oldest first), computed from running statistics so that
    :meth:`push` costs O(P·C) whatever the window size.

    Thread-safe: one stream may be used from several threads (calls are serialised).

    Example:
        >>> stream = FeatureStream("islr118")
        >>> for frame in frames:                 # each (543, 3)
        ...     stream.push(frame)
        >>> feats, mask = stream.features()      # (64, 708), (64,)

    Attributes:
        spec: The FeatureSpec the window executes; its ``max_len`` is the window size.
    """

    def __init__(self, spec: FeatureSpec | str | None = None) -> None:
        """Create an empty window.

        Args:
            spec: A FeatureSpec, a preset name, or spec JSON; default ``islr118``.
        """
        self.spec = _resolve(spec)
        self._stream = _native.Stream(self.spec.native)

    def push(self, frame: npt.ArrayLike) -> None:
        """Append one frame, evicting the oldest when the window is full.

        Args:
            frame: (543, 3) landmarks of one frame, any real dtype; NaN/inf mark missing
                values. A frame with no selected value still takes a place in the window.

        Raises:
            ShapeError: If the frame is not (543, 3) or not real-valued.
        """
        self._stream.push(frame)

    def features(self) -> tuple[FloatArray, FloatArray]:
        """Return the features of the window.

        Returns:
            ``(features, mask)``: float32 (max_len, F) and (max_len,), equal to
            ``preprocess(window_frames, spec)``.
        """
        return self._stream.features()  # type: ignore[no-any-return]

    def reset(self) -> None:
        """Forget every frame (for example when the signer leaves)."""
        self._stream.reset()

    def __len__(self) -> int:
        """Frames in the window (at most ``capacity``), empty frames included."""
        return len(self._stream)

    @property
    def capacity(self) -> int:
        """The window size W (= ``spec.max_len``)."""
        return int(self._stream.capacity)

    @property
    def num_valid(self) -> int:
        """Frames in the window with at least one selected landmark present."""
        return int(self._stream.num_valid)

    def __repr__(self) -> str:
        return (
            f"FeatureStream(spec={self.spec.fingerprint}, len={len(self)}, "
            f"capacity={self.capacity}, num_valid={self.num_valid})"
        )


def _as_clip(clip: npt.ArrayLike) -> npt.NDArray[Any]:
    x = np.asarray(clip)
    if x.ndim != 3 or x.shape[1:] != (NUM_LANDMARKS, 3):
        raise ShapeError(
            f"expected a clip of shape (T, {NUM_LANDMARKS}, 3) (frames, landmarks, xyz), "
            f"got {x.shape}"
        )
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ShapeError(f"expected real-valued landmarks, got dtype {x.dtype}")
    return x


# --------------------------------------------------------------------------------------
# NumPy reference (readable oracle)
# --------------------------------------------------------------------------------------
def _nanmean(x: npt.NDArray[np.float64], axis: Any) -> npt.NDArray[np.float64]:
    """NaN-mean that returns NaN (without a warning) where every value is NaN."""
    valid = ~np.isnan(x)
    count = valid.sum(axis=axis)
    total = np.where(valid, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def preprocess_reference(
    clip: npt.ArrayLike, spec: FeatureSpec | str | None = None
) -> tuple[FloatArray, FloatArray]:
    """NumPy reference implementation of DESIGN §3, step by step (the parity oracle).

    Statistics are computed in float64; the result is float32 like the native path.

    Args:
        clip: (T, 543, 3) landmarks; NaN and ±inf are missing values.
        spec: A FeatureSpec, a preset name, or spec JSON; default ``islr118``.

    Returns:
        ``(features, mask)`` of shapes (max_len, F) and (max_len,).
    """
    s = _resolve(spec)
    raw = _as_clip(clip).astype(np.float64)  # (T, 543, 3)
    raw[~np.isfinite(raw)] = np.nan
    lm = np.asarray(s.landmarks)

    # 1. select -> (T, P, C)
    x = raw[:, lm, : s.coords]
    # 2. drop frames in which every selected value is missing
    if s.drop_empty_frames:
        keep = ~np.all(np.isnan(x), axis=(1, 2))  # (T,)
        x, raw = x[keep], raw[keep]
    # 3. normalise with statistics over the remaining frames
    x = _normalize(x, raw, s)
    # 4. fit to max_len
    x = _fit(x, s)
    t = x.shape[0]
    # 5. motion features, 6. concatenate along channels
    parts = [x]
    for k in s.motion_lags:
        d = np.zeros_like(x)
        if t > k:
            d[: t - k] = x[k:] - x[: t - k]
        parts.append(d)
    feats = np.concatenate(parts, axis=2)  # (T', P, C_out)
    # 7. nan_fill: missing values, and values that do not fit in a finite float32
    with np.errstate(over="ignore", invalid="ignore"):
        feats32 = feats.astype(np.float32)  # (T', P, C_out)
    feats32[~np.isfinite(feats32)] = s.nan_fill
    # 8. pad
    out = np.zeros((s.max_len, s.num_features), dtype=np.float32)
    out[:t] = feats32.reshape(t, s.num_features)
    mask = np.zeros(s.max_len, dtype=np.float32)
    mask[:t] = 1.0
    return out, mask


def _normalize(
    x: npt.NDArray[np.float64], raw: npt.NDArray[np.float64], s: FeatureSpec
) -> npt.NDArray[np.float64]:
    kind = s.normalize.kind
    if kind == "none":
        return x
    c = s.coords
    if kind == "reference_rms":
        assert s.normalize.reference is not None
        m = _nanmean(raw[:, s.normalize.reference, :c], axis=0)  # (C,)
        m = np.where(np.isnan(m), _CENTRE_FALLBACK, m)
        var = _nanmean((x - m) ** 2, axis=(0, 1))  # (C,)
        scale = np.sqrt(var)
    else:  # shoulders
        a, b = raw[:, _SHOULDERS[0], :c], raw[:, _SHOULDERS[1], :c]  # (T, C)
        m = _nanmean((a + b) / 2.0, axis=0)  # (C,)
        m = np.where(np.isnan(m), _CENTRE_FALLBACK, m)
        dist = np.sqrt(((a[:, :2] - b[:, :2]) ** 2).sum(axis=1))  # (T,)
        scale = np.broadcast_to(_nanmean(dist, axis=0), (c,))
    scale = np.where(np.isnan(scale) | (scale < _SCALE_MIN), _SCALE_FALLBACK, scale)
    out: npt.NDArray[np.float64] = (x - m) / scale
    return out


def _fit(x: npt.NDArray[np.float64], s: FeatureSpec) -> npt.NDArray[np.float64]:
    t, n = x.shape[0], s.max_len
    if t <= n:
        return x
    if s.fit == "truncate":
        return x[:n]
    # resample: T frames onto n evenly spaced positions; an exact position takes its frame
    pos = np.arange(n, dtype=np.float64) * (t - 1) / max(n - 1, 1)
    lo = np.floor(pos).astype(np.intp)
    w = pos - lo
    hi = np.minimum(lo + 1, t - 1)
    out: npt.NDArray[np.float64] = x[lo].copy()
    frac = w > 0
    wf = w[frac][:, None, None]
    out[frac] = x[lo[frac]] * (1.0 - wf) + x[hi[frac]] * wf
    return out
