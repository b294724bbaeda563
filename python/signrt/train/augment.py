"""Augmentation of raw landmark clips, before preprocessing.

Every operation takes and returns a (T, 543, 3) float32 clip in image coordinates, so it
works for any FeatureSpec and runs in DataLoader workers ahead of the (native) batch
preprocessing in the collate function. Missing landmarks (NaN) stay missing under every
operation; operations only ever add NaN (masks, dropout), never remove it.

Operations (each applied with its own probability, in this order):

1. **temporal resample** by a factor ×U(lo, hi): linear interpolation onto
   ``round(T * factor)`` frames; the first and the last frame are kept exactly.
2. **frame dropout**: delete each frame with a small probability (at least one frame stays).
3. **mirror**: x -> 1 - x with every left/right landmark pair swapped
   (:func:`signrt.layouts.mirror_clip`, DESIGN §2).
4. **affine** about the clip centre: scale, shear, rotation and shift of x, y (z scaled).
5. **temporal mask**: a contiguous run of frames becomes missing.
6. **spatial mask**: the landmarks inside a random box (around a present landmark) become
   missing in every frame.

Randomness comes from a ``numpy.random.Generator`` passed in; the trainer derives it from
``(seed, epoch, clip index)``, so the augmented data does not depend on the number of
workers or on which worker draws which clip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import layouts
from ..errors import ConfigError, ShapeError

__all__ = [
    "AugmentConfig",
    "Augmenter",
    "affine",
    "frame_dropout",
    "mirror",
    "spatial_mask",
    "temporal_mask",
    "temporal_resample",
]

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the augmentations (``p == 0`` disables an operation).

    Attributes:
        resample_p: Probability of a temporal resample.
        resample_range: Range of the resample factor (new length = T × factor).
        dropout_p: Probability of applying frame dropout to a clip.
        dropout_rate: Probability of deleting each frame when it is applied.
        mirror_p: Probability of a horizontal mirror (left/right swapped).
        affine_p: Probability of an affine transform.
        scale: Range of the scale factor.
        shear: Maximum absolute shear (x += shear · y and y += shear · x).
        rotate_deg: Maximum absolute rotation in degrees.
        shift: Maximum absolute shift in image units.
        temporal_mask_p: Probability of a temporal mask.
        temporal_mask_frac: Maximum length of the masked run as a fraction of T.
        spatial_mask_p: Probability of a spatial mask.
        spatial_mask_size: Maximum side of the masked box as a fraction of the clip's extent.
    """

    resample_p: float = 0.8
    resample_range: tuple[float, float] = (0.5, 1.5)
    dropout_p: float = 0.3
    dropout_rate: float = 0.1
    mirror_p: float = 0.5
    affine_p: float = 0.75
    scale: tuple[float, float] = (0.8, 1.2)
    shear: float = 0.15
    rotate_deg: float = 15.0
    shift: float = 0.08
    temporal_mask_p: float = 0.4
    temporal_mask_frac: float = 0.2
    spatial_mask_p: float = 0.3
    spatial_mask_size: float = 0.25

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith("_p") or f.name in ("dropout_rate", "temporal_mask_frac"):
                v = float(getattr(self, f.name))
                if not 0.0 <= v <= 1.0:
                    raise ConfigError(f"augment.{f.name} must be in [0, 1], got {v}")
        for name in ("resample_range", "scale"):
            lo, hi = getattr(self, name)
            object.__setattr__(self, name, (float(lo), float(hi)))
            if not 0.0 < lo <= hi:
                raise ConfigError(f"augment.{name} must be 0 < lo <= hi, got {(lo, hi)}")

    @classmethod
    def off(cls) -> AugmentConfig:
        """A config that changes nothing (every probability 0)."""
        zeros: dict[str, Any] = {f.name: 0.0 for f in fields(cls) if f.name.endswith("_p")}
        return cls(**zeros)

    @property
    def enabled(self) -> bool:
        """Whether any operation has a non-zero probability."""
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.endswith("_p"))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AugmentConfig:
        """Build from a mapping (a TOML ``[augment]`` table); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"augment: unknown keys {unknown}; known keys: {sorted(known)}")
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a plain dict."""
        return asdict(self)


def _check(clip: npt.ArrayLike) -> FloatArray:
    x: FloatArray = np.asarray(clip, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != (layouts.NUM_LANDMARKS, 3):
        raise ShapeError(f"augmentation expects a (T, 543, 3) clip, got {x.shape}")
    return x


def _copy(x: FloatArray) -> FloatArray:
    out: FloatArray = np.array(x, dtype=np.float32, copy=True)
    return out


# ------------------------------------------------------------------------ operations
def temporal_resample(clip: npt.ArrayLike, factor: float) -> FloatArray:
    """Resample a clip in time by linear interpolation onto ``round(T · factor)`` frames.

    The new frames sit at evenly spaced positions from 0 to T-1, so the first and the last
    frame are kept exactly; a position that falls on an original frame takes that frame
    unchanged, and an interpolated value is missing if either neighbour is.

    Args:
        clip: (T, 543, 3) landmarks.
        factor: Length factor (> 0); 1 leaves the clip unchanged.

    Returns:
        (T', 543, 3) float32 with T' = max(1, round(T · factor)) (T' = T when T < 2).
    """
    x = _check(clip)
    t = x.shape[0]
    n = max(1, round(t * factor))
    if t < 2 or n == t:
        return _copy(x)
    if n == 1:
        return _copy(x[:1])
    pos = np.linspace(0.0, t - 1, n)  # (T',)
    lo = np.floor(pos).astype(np.intp)
    lo = np.minimum(lo, t - 1)
    hi = np.minimum(lo + 1, t - 1)
    w = (pos - lo).astype(np.float32)[:, None, None]  # (T', 1, 1)
    out: FloatArray = x[lo] * (1.0 - w) + x[hi] * w  # (T', 543, 3)
    exact = w[:, 0, 0] == 0.0
    out[exact] = x[lo[exact]]
    out[-1] = x[-1]
    return out


def frame_dropout(clip: npt.ArrayLike, keep: npt.NDArray[np.bool_]) -> FloatArray:
    """Delete frames: keep only the frames where ``keep`` is true (at least one is kept).

    Args:
        clip: (T, 543, 3) landmarks.
        keep: (T,) booleans.
    """
    x = _check(clip)
    k = np.asarray(keep, dtype=bool)
    if k.shape != (x.shape[0],):
        raise ShapeError(f"keep must have shape ({x.shape[0]},), got {k.shape}")
    if x.shape[0] and not k.any():
        k = k.copy()
        k[0] = True
    return _copy(x[k])


def mirror(clip: npt.ArrayLike) -> FloatArray:
    """Horizontal mirror with every left/right pair swapped (see :func:`layouts.mirror_clip`)."""
    return layouts.mirror_clip(_check(clip))


def clip_centre(clip: npt.ArrayLike) -> tuple[float, float]:
    """The mean x, y of every present landmark of the clip ((0.5, 0.5) if none)."""
    x = _check(clip)
    xs, ys = x[..., 0], x[..., 1]  # (T, 543) each
    ok = np.isfinite(xs) & np.isfinite(ys)
    n = int(np.count_nonzero(ok))
    if n == 0:
        return 0.5, 0.5
    cx = float(np.where(ok, xs, 0.0).sum(dtype=np.float64)) / n
    cy = float(np.where(ok, ys, 0.0).sum(dtype=np.float64)) / n
    return cx, cy


def affine(
    clip: npt.ArrayLike,
    *,
    scale: float = 1.0,
    shear: tuple[float, float] = (0.0, 0.0),
    rotate_deg: float = 0.0,
    shift: tuple[float, float] = (0.0, 0.0),
    centre: tuple[float, float] | None = None,
) -> FloatArray:
    """Scale, shear and rotate x, y about a centre, then shift; z is scaled.

    ``p' = R · H · (s · (p - c)) + c + shift`` with H = [[1, shx], [shy, 1]] and R the
    rotation by ``rotate_deg`` (positive = counter-clockwise on screen, y pointing down).

    Args:
        clip: (T, 543, 3) landmarks.
        scale: Scale factor.
        shear: (shx, shy).
        rotate_deg: Rotation angle in degrees.
        shift: (dx, dy) in image units.
        centre: Centre of the transform; default :func:`clip_centre`.
    """
    x = _check(clip)
    cx, cy = centre if centre is not None else clip_centre(x)
    a = math.radians(rotate_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    sh = np.array([[1.0, shear[0]], [shear[1], 1.0]])
    m = rot @ sh * scale  # (2, 2)
    px = x[..., 0] - np.float32(cx)  # (T, 543)
    py = x[..., 1] - np.float32(cy)
    out = np.empty_like(x)
    out[..., 0] = np.float32(m[0, 0]) * px + np.float32(m[0, 1]) * py + np.float32(cx + shift[0])
    out[..., 1] = np.float32(m[1, 0]) * px + np.float32(m[1, 1]) * py + np.float32(cy + shift[1])
    out[..., 2] = x[..., 2] * np.float32(scale)
    return out


def temporal_mask(clip: npt.ArrayLike, start: int, length: int) -> FloatArray:
    """Mark frames ``start .. start+length-1`` as missing (NaN)."""
    x = _copy(_check(clip))
    x[max(0, start) : max(0, start + length)] = np.nan
    return x


def spatial_mask(clip: npt.ArrayLike, box: tuple[float, float, float, float]) -> FloatArray:
    """Mark every landmark whose x, y lies inside ``box = (x0, y0, x1, y1)`` as missing."""
    x = _copy(_check(clip))
    x0, y0, x1, y1 = box
    with np.errstate(invalid="ignore"):
        inside = (x[..., 0] >= x0) & (x[..., 0] <= x1) & (x[..., 1] >= y0) & (x[..., 1] <= y1)
    x[inside] = np.nan
    return x


# ----------------------------------------------------------------------------- pipeline
class Augmenter:
    """Apply the configured augmentations to raw clips.

    Args:
        config: Probabilities and ranges; default :class:`AugmentConfig`.

    Example:
        >>> aug = Augmenter(AugmentConfig(mirror_p=1.0))
        >>> out = aug(clip, np.random.default_rng(0))
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config or AugmentConfig()

    def __call__(self, clip: npt.ArrayLike, rng: np.random.Generator) -> FloatArray:
        """Return an augmented copy of ``clip`` (T may change)."""
        cfg = self.config
        x = _check(clip)
        if x.shape[0] == 0:
            return _copy(x)
        if rng.random() < cfg.resample_p:
            x = temporal_resample(x, float(rng.uniform(*cfg.resample_range)))
        if rng.random() < cfg.dropout_p and x.shape[0] > 2:
            keep = np.greater_equal(rng.random(x.shape[0]), cfg.dropout_rate)
            x = frame_dropout(x, keep)
        if rng.random() < cfg.mirror_p:
            x = mirror(x)
        if rng.random() < cfg.affine_p:
            x = affine(
                x,
                scale=float(rng.uniform(*cfg.scale)),
                shear=(
                    float(rng.uniform(-cfg.shear, cfg.shear)),
                    float(rng.uniform(-cfg.shear, cfg.shear)),
                ),
                rotate_deg=float(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)),
                shift=(
                    float(rng.uniform(-cfg.shift, cfg.shift)),
                    float(rng.uniform(-cfg.shift, cfg.shift)),
                ),
            )
        t = x.shape[0]
        if rng.random() < cfg.temporal_mask_p and t > 2:
            length = int(rng.integers(1, max(2, int(t * cfg.temporal_mask_frac) + 1)))
            x = temporal_mask(x, int(rng.integers(0, t - length + 1)), length)
        if rng.random() < cfg.spatial_mask_p:
            x = self._spatial(x, rng)
        return x

    def _spatial(self, x: FloatArray, rng: np.random.Generator) -> FloatArray:
        xs, ys = x[..., 0], x[..., 1]  # (T, 543) each
        present = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
        if present.size == 0:
            return x
        px, py = xs.reshape(-1)[present], ys.reshape(-1)[present]
        extent = np.maximum(
            np.array([px.max() - px.min(), py.max() - py.min()], dtype=np.float64), 1e-3
        )
        k = int(rng.integers(present.size))
        cx, cy = float(px[k]), float(py[k])
        w, h = extent * rng.uniform(0.05, self.config.spatial_mask_size, 2)
        return spatial_mask(x, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))

    def __repr__(self) -> str:
        return f"Augmenter({self.config})"
