"""Augmentation of raw clips: properties of every operation and of the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signrt import layouts
from signrt.errors import ConfigError, ShapeError
from signrt.synthetic import SyntheticConfig, SyntheticSigner
from signrt.train.augment import (
    AugmentConfig,
    Augmenter,
    affine,
    frame_dropout,
    mirror,
    spatial_mask,
    temporal_mask,
    temporal_resample,
)

_SIGNER = SyntheticSigner(SyntheticConfig(num_classes=4, seed=1, left_handed=0.0))


def _random_clip(seed: int, t: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clip = rng.uniform(0.0, 1.0, (t, 543, 3)).astype(np.float32)
    clip[rng.random((t, 543)) < 0.2] = np.nan
    return clip


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), t=st.integers(1, 40))
def test_mirror_twice_is_identity(seed: int, t: int) -> None:
    clip = _random_clip(seed, t)
    np.testing.assert_allclose(mirror(mirror(clip)), clip, atol=1e-6)


def test_mirror_really_swaps_left_and_right() -> None:
    clip = _SIGNER.clip(1, 0, 0)  # right-handed: the right hand signs
    out = mirror(clip)
    lh, rh = layouts.LEFT_HAND, layouts.RIGHT_HAND
    # the hands exchanged places, x flipped
    np.testing.assert_allclose(out[:, lh, 0], 1.0 - clip[:, rh, 0], atol=1e-6)
    np.testing.assert_allclose(out[:, lh, 1:], clip[:, rh, 1:])
    np.testing.assert_allclose(out[:, rh, 0], 1.0 - clip[:, lh, 0], atol=1e-6)
    # pose: left shoulder (pose 11 = 500) takes the mirrored right shoulder (pose 12 = 501)
    np.testing.assert_allclose(out[:, 500, 0], 1.0 - clip[:, 501, 0], atol=1e-6)
    # after the flip the subject's left side is again on the image right
    assert np.all(out[:, 500, 0] > out[:, 501, 0])
    # the lips' corners swap, the midline (lower-lip centre 17) stays
    np.testing.assert_allclose(out[:, 61, 0], 1.0 - clip[:, 291, 0], atol=1e-6)
    np.testing.assert_allclose(out[:, 17, 0], 1.0 - clip[:, 17, 0], atol=1e-6)
    # a flip without a swap would leave the signing hand on the right_hand rows
    assert np.isfinite(out[:, lh, 0]).sum() == np.isfinite(clip[:, rh, 0]).sum()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), t=st.integers(2, 60), factor=st.floats(0.5, 1.5))
def test_resample_keeps_first_and_last_frame(seed: int, t: int, factor: float) -> None:
    clip = _random_clip(seed, t)
    out = temporal_resample(clip, factor)
    assert out.shape == (max(1, round(t * factor)), 543, 3) or (out.shape[0] == t)
    if out.shape[0] >= 2:
        np.testing.assert_array_equal(out[0], clip[0])
        np.testing.assert_array_equal(out[-1], clip[-1])
    # a landmark missing in every frame stays missing
    always = np.isnan(clip).all(axis=0)
    assert np.isnan(out[:, always]).all()


def test_resample_interpolates_linearly() -> None:
    clip = np.zeros((3, 543, 3), np.float32)
    clip[:, :, 0] = np.array([0.0, 1.0, 2.0])[:, None]
    out = temporal_resample(clip, 5 / 3)  # 5 frames at 0, .5, 1, 1.5, 2
    np.testing.assert_allclose(out[:, 0, 0], [0.0, 0.5, 1.0, 1.5, 2.0])
    np.testing.assert_array_equal(temporal_resample(clip, 1.0), clip)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(0.5, 1.5),
    shear=st.floats(-0.3, 0.3),
    angle=st.floats(-30, 30),
)
def test_affine_keeps_nan_and_inverts(seed: int, scale: float, shear: float, angle: float) -> None:
    clip = _random_clip(seed, 5)
    out = affine(clip, scale=scale, shear=(shear, 0.0), rotate_deg=angle, shift=(0.1, -0.05))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(clip))
    assert np.isfinite(out[~np.isnan(clip)]).all()


def test_affine_geometry() -> None:
    clip = np.full((1, 543, 3), np.nan, np.float32)
    clip[0, 0] = (0.6, 0.5, 0.1)
    clip[0, 1] = (0.4, 0.5, 0.1)
    out = affine(clip, scale=2.0, centre=(0.5, 0.5))
    np.testing.assert_allclose(out[0, 0], (0.7, 0.5, 0.2), atol=1e-6)
    out = affine(clip, rotate_deg=90.0, centre=(0.5, 0.5))  # right of centre -> above it
    np.testing.assert_allclose(out[0, 0, :2], (0.5, 0.4), atol=1e-6)
    out = affine(clip, shift=(0.1, 0.2))
    np.testing.assert_allclose(out[0, 1, :2], (0.5, 0.7), atol=1e-6)


def test_masks_and_dropout_only_add_nan() -> None:
    clip = _SIGNER.clip(2, 1, 0)
    t = clip.shape[0]
    m = temporal_mask(clip, 3, 4)
    assert np.isnan(m[3:7]).all() and np.array_equal(m[7:], clip[7:], equal_nan=True)
    box = spatial_mask(clip, (0.0, 0.0, 1.0, 0.5))  # the upper half of the image
    assert np.isnan(box[..., 1][np.isfinite(clip[..., 1]) & (clip[..., 1] <= 0.5)]).all()
    assert np.isnan(box).sum() > np.isnan(clip).sum()
    keep = np.arange(t) % 3 != 0
    d = frame_dropout(clip, keep)
    np.testing.assert_array_equal(d, clip[keep])
    assert frame_dropout(clip, np.zeros(t, bool)).shape[0] == 1


def test_augmenter_is_seeded_and_keeps_missing_hands_missing() -> None:
    clip = _SIGNER.clip(3, 2, 0)
    aug = Augmenter(AugmentConfig(mirror_p=0.0, resample_p=0.0, dropout_p=0.0))
    a = aug(clip, np.random.default_rng(5))
    b = aug(clip, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert np.isnan(a[np.isnan(clip)]).all()  # same length here: NaN stays NaN
    lengths = {Augmenter()(clip, np.random.default_rng(s)).shape[0] for s in range(20)}
    assert len(lengths) > 3 and min(lengths) >= 0.4 * clip.shape[0]
    for s in range(20):
        out = Augmenter()(clip, np.random.default_rng(s))
        assert out.dtype == np.float32 and out.shape[1:] == (543, 3)
    off = Augmenter(AugmentConfig.off())
    np.testing.assert_array_equal(off(clip, np.random.default_rng(0)), clip)
    assert not AugmentConfig.off().enabled and AugmentConfig().enabled


def test_config_validation() -> None:
    assert AugmentConfig.from_mapping({"mirror_p": 1.0, "scale": [0.9, 1.1]}).scale == (0.9, 1.1)
    with pytest.raises(ConfigError, match="unknown"):
        AugmentConfig.from_mapping({"flip_p": 0.5})
    with pytest.raises(ConfigError):
        AugmentConfig(mirror_p=1.5)
    with pytest.raises(ShapeError):
        mirror(np.zeros((3, 75, 3)))
