"""Tests of signrt.layouts: ranges, mirror permutation and the adapters into holistic-543."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from signrt import ShapeError, layouts

# Independent copies of the DESIGN §2 contract (not imported from the module under test).
LIPS_IMAGE_LEFT = [84, 181, 91, 146, 61, 185, 40, 39, 37, 87, 178, 88, 95, 78, 191, 80, 81, 82]
LIPS_IMAGE_RIGHT = [
    314, 405, 321, 375, 291, 409, 270, 269, 267, 317, 402, 318, 324, 308, 415, 310, 311, 312,
]  # fmt: skip
# MediaPipe Pose landmark names; pose landmark k is layout index 489 + k.
POSE_NAMES = [
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
]  # fmt: skip


def _pose_pairs() -> list[tuple[int, int]]:
    pairs = []
    for k, name in enumerate(POSE_NAMES):
        if "LEFT" in name:
            other = POSE_NAMES.index(name.replace("LEFT", "RIGHT"))
            pairs.append((489 + k, 489 + other))
    return pairs


def _random_clip(t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((t, 543, 3), dtype=np.float32)


# ----------------------------------------------------------------------------- ranges


def test_parts_cover_the_layout_in_order() -> None:
    assert layouts.NUM_LANDMARKS == 543
    assert list(layouts.PARTS) == ["face", "left_hand", "pose", "right_hand"]
    covered = [i for r in layouts.PARTS.values() for i in r]
    assert covered == list(range(543))
    parts = (layouts.FACE, layouts.LEFT_HAND, layouts.POSE, layouts.RIGHT_HAND)
    assert parts == (range(0, 468), range(468, 489), range(489, 522), range(522, 543))
    # shoulders are pose landmarks 11 and 12
    assert layouts.POSE[11] == 500 and layouts.POSE[12] == 501


@pytest.mark.parametrize(
    ("index", "part"),
    [(0, "face"), (467, "face"), (468, "left_hand"), (488, "left_hand"), (489, "pose"),
     (521, "pose"), (522, "right_hand"), (542, "right_hand")],
)  # fmt: skip
def test_part_of(index: int, part: str) -> None:
    assert layouts.part_of(index) == part


@pytest.mark.parametrize("index", [-1, 543, 10_000])
def test_part_of_outside_the_layout(index: int) -> None:
    with pytest.raises(ShapeError, match=rf"landmark index {index} is outside .*0-542"):
        layouts.part_of(index)


def test_landmark_groups_are_in_the_face() -> None:
    assert len(layouts.LIPS) == 40 and len(set(layouts.LIPS)) == 40
    assert len(layouts.LEFT_EYE) == len(layouts.RIGHT_EYE) == 16
    for group in (layouts.LIPS, layouts.NOSE, layouts.LEFT_EYE, layouts.RIGHT_EYE):
        assert all(i in layouts.FACE for i in group)
    assert set(LIPS_IMAGE_LEFT) | set(LIPS_IMAGE_RIGHT) <= set(layouts.LIPS)


# ----------------------------------------------------------------------------- mirror


def test_mirror_permutation_is_an_involution() -> None:
    perm = layouts.mirror_permutation()
    assert perm.shape == (543,)
    assert sorted(perm.tolist()) == list(range(543))
    np.testing.assert_array_equal(perm[perm], np.arange(543))


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param([(468 + i, 522 + i) for i in range(21)], id="hands"),
        pytest.param(list(zip(LIPS_IMAGE_LEFT, LIPS_IMAGE_RIGHT, strict=True)), id="lips"),
        pytest.param(list(zip(layouts.LEFT_EYE, layouts.RIGHT_EYE, strict=True)), id="eyes"),
        pytest.param([(98, 327)], id="nose"),
        pytest.param(_pose_pairs(), id="pose"),
    ],
)
def test_mirror_swaps_left_and_right(pairs: list[tuple[int, int]]) -> None:
    perm = layouts.mirror_permutation()
    assert pairs
    for a, b in pairs:
        assert (perm[a], perm[b]) == (b, a), (a, b)


def test_mirror_pose_pairs_are_the_sixteen_named_pairs() -> None:
    pairs = _pose_pairs()
    assert len(pairs) == 16
    assert (500, 501) in pairs  # shoulders
    assert (504, 505) in pairs  # wrists


def test_mirror_keeps_midline_points() -> None:
    perm = layouts.mirror_permutation()
    for i in (0, 1, 2, 13, 14, 17, 489):  # lip centres, nose tip, pose nose
        assert perm[i] == i
    # the groups a model selects are closed under the mirror
    for group in (layouts.LIPS, layouts.NOSE, layouts.LEFT_EYE + layouts.RIGHT_EYE):
        assert set(perm[list(group)].tolist()) == set(group)


def test_mirror_clip_flips_x_and_swaps_sides() -> None:
    clip = np.full((2, 543, 3), np.nan, dtype=np.float32)
    clip[:, 468 + 3] = (0.2, 0.3, -0.1)  # left thumb tip
    clip[:, 500] = (0.7, 0.4, 0.05)  # left shoulder
    clip[:, 17] = (0.5, 0.6, 0.0)  # lower-lip centre
    clip[1, 61] = (0.45, 0.62, 0.01)  # a mouth corner, one frame only
    out = layouts.mirror_clip(clip)
    assert out.dtype == np.float32 and out.shape == clip.shape
    np.testing.assert_allclose(out[:, 522 + 3], [[0.8, 0.3, -0.1]] * 2, rtol=1e-6)
    np.testing.assert_allclose(out[:, 501], [[0.3, 0.4, 0.05]] * 2, rtol=1e-6)
    np.testing.assert_allclose(out[:, 17], [[0.5, 0.6, 0.0]] * 2, rtol=1e-6)
    np.testing.assert_allclose(out[1, 291], [0.55, 0.62, 0.01], rtol=1e-6)
    assert np.isnan(out[0, 291]).all()
    # the left hand becomes missing exactly where the right hand was missing
    assert np.isnan(out[:, 468 + 3]).all() and np.isnan(out[:, 500]).all()
    assert np.isnan(clip[:, 522 + 3]).all()  # input untouched


def test_mirror_twice_is_identity() -> None:
    clip = _random_clip(5)
    clip[2, 468:489] = np.nan
    back = layouts.mirror_clip(layouts.mirror_clip(clip))
    np.testing.assert_allclose(back, clip, rtol=0, atol=1e-6, equal_nan=True)


def test_mirror_clip_accepts_one_frame() -> None:
    frame = _random_clip(1)[0]
    out = layouts.mirror_clip(frame)
    assert out.shape == (543, 3)
    assert out[522, 0] == pytest.approx(1.0 - frame[468, 0])


def test_mirror_clip_bad_shape() -> None:
    with pytest.raises(
        ShapeError, match=re.escape("(T, 543, 3) or (543, 3) landmarks, got (4, 75, 3)")
    ):
        layouts.mirror_clip(np.zeros((4, 75, 3)))


# ----------------------------------------------------------------------------- adapters


def test_from_pose_hands75_places_parts() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((3, 75, 3))
    out = layouts.from_pose_hands75(x)
    assert out.shape == (3, 543, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 489:522], x[:, 0:33], rtol=1e-6)
    np.testing.assert_allclose(out[:, 468:489], x[:, 33:54], rtol=1e-6)
    np.testing.assert_allclose(out[:, 522:543], x[:, 54:75], rtol=1e-6)
    assert np.isnan(out[:, 0:468]).all()
    # single frame
    assert layouts.from_pose_hands75(x[0]).shape == (1, 543, 3)


def test_from_holistic553_drops_the_irises() -> None:
    x = np.arange(2 * 553 * 3, dtype=np.float64).reshape(2, 553, 3)
    out = layouts.from_holistic553(x)
    assert out.shape == (2, 543, 3) and out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out[:, 0:468], x[:, 0:468])
    np.testing.assert_array_equal(out[:, 468:489], x[:, 478:499])  # left hand
    np.testing.assert_array_equal(out[:, 489:522], x[:, 499:532])  # pose
    np.testing.assert_array_equal(out[:, 522:543], x[:, 532:553])  # right hand


def _flat1662(t: int, seed: int = 2) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    parts = {
        "pose": rng.random((t, 33, 4)) + 0.1,  # x, y, z, visibility
        "face": rng.random((t, 468, 3)) + 0.1,
        "left": rng.random((t, 21, 3)) + 0.1,
        "right": rng.random((t, 21, 3)) + 0.1,
    }
    flat = np.concatenate([parts[k].reshape(t, -1) for k in ("pose", "face", "left", "right")], 1)
    assert flat.shape == (t, 1662)
    return flat, parts


def test_from_flat1662_places_parts_and_drops_visibility() -> None:
    flat, parts = _flat1662(3)
    out = layouts.from_flat1662(flat)
    assert out.shape == (3, 543, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 489:522], parts["pose"][:, :, :3], rtol=1e-6)
    np.testing.assert_allclose(out[:, 0:468], parts["face"], rtol=1e-6)
    np.testing.assert_allclose(out[:, 468:489], parts["left"], rtol=1e-6)
    np.testing.assert_allclose(out[:, 522:543], parts["right"], rtol=1e-6)
    assert layouts.from_flat1662(flat[0]).shape == (1, 543, 3)


def test_from_flat1662_zero_parts_become_nan() -> None:
    flat, _ = _flat1662(3)
    flat[0, 1536:1599] = 0.0  # left hand not detected in frame 0
    flat[1, 1599:1662] = 0.0  # right hand not detected in frame 1
    flat[2, 132:1536] = 0.0  # face not detected in frame 2
    out = layouts.from_flat1662(flat)
    assert np.isnan(out[0, 468:489]).all() and np.isfinite(out[1:, 468:489]).all()
    assert np.isnan(out[1, 522:543]).all() and np.isfinite(out[[0, 2], 522:543]).all()
    assert np.isnan(out[2, 0:468]).all() and np.isfinite(out[:2, 0:468]).all()
    assert np.isfinite(out[:, 489:522]).all()


@pytest.mark.parametrize(
    ("shape", "frames", "adapter"),
    [
        ((4, 543, 3), 4, None),
        ((543, 3), 1, None),
        ((0, 543, 3), 0, None),
        ((4, 553, 3), 4, layouts.from_holistic553),
        ((553, 3), 1, layouts.from_holistic553),
        ((4, 75, 3), 4, layouts.from_pose_hands75),
        ((75, 3), 1, layouts.from_pose_hands75),
        ((0, 75, 3), 0, layouts.from_pose_hands75),
        ((4, 1662), 4, layouts.from_flat1662),
        ((1662,), 1, layouts.from_flat1662),
        ((0, 1662), 0, layouts.from_flat1662),
    ],
)
def test_to_holistic543_dispatches_by_shape(
    shape: tuple[int, ...], frames: int, adapter: Callable[[np.ndarray], np.ndarray] | None
) -> None:
    rng = np.random.default_rng(3)
    x = rng.random(shape) + 0.1
    out = layouts.to_holistic543(x)
    assert out.shape == (frames, 543, 3) and out.dtype == np.float32
    expected = x.reshape(frames, 543, 3) if adapter is None else adapter(x)
    np.testing.assert_allclose(out, expected, rtol=1e-6, equal_nan=True)


def test_to_holistic543_converts_integers() -> None:
    out = layouts.to_holistic543(np.ones((2, 543, 3), dtype=np.int64))
    assert out.dtype == np.float32 and (out == 1.0).all()


P75, E75 = "pose+hands layout", "(T, 75, 3) or (75, 3)"
H553, E553 = "holistic-553 layout", "(T, 553, 3) or (553, 3)"
F1662, E1662 = "flat-1662 layout", "(T, 1662) or (1662,)"
UNKNOWN = "unknown landmark layout with shape"


@pytest.mark.parametrize(
    ("func", "shape", "message"),
    [
        (layouts.from_pose_hands75, (4, 74, 3), f"{P75}: expected {E75}, got (4, 74, 3)"),
        (layouts.from_pose_hands75, (4, 75, 2), f"{P75}: expected {E75}, got (4, 75, 2)"),
        (layouts.from_pose_hands75, (2, 4, 75, 3), "got (2, 4, 75, 3)"),
        (layouts.from_holistic553, (4, 543, 3), f"{H553}: expected {E553}, got (4, 543, 3)"),
        (layouts.from_flat1662, (4, 1661), f"{F1662}: expected {E1662}, got (4, 1661)"),
        (layouts.from_flat1662, (2, 3, 1662), "got (2, 3, 1662)"),
        (layouts.to_holistic543, (4, 100, 3), f"{UNKNOWN} (4, 100, 3)"),
        (layouts.to_holistic543, (4, 543, 2), f"{UNKNOWN} (4, 543, 2)"),
        (layouts.to_holistic543, (4, 1661), f"{UNKNOWN} (4, 1661)"),
        (layouts.to_holistic543, (2, 2, 543, 3), f"{UNKNOWN} (2, 2, 543, 3)"),
        (layouts.to_holistic543, (), f"{UNKNOWN} ()"),
    ],
)
def test_adapters_reject_bad_shapes(
    func: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ShapeError, match=re.escape(message)):
        func(np.zeros(shape, dtype=np.float32))


def test_shape_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected"):
        layouts.to_holistic543(np.zeros((3, 7)))
