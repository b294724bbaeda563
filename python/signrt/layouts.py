"""Landmark layouts: the canonical holistic-543 layout, body-part groups, mirror map, adapters.

The canonical frame is a float32 array of shape (543, 3) in MediaPipe Holistic order
(legacy 468-point face): face 0-467, left hand 468-488, pose 489-521, right hand 522-542.
A missing landmark is NaN in all three coordinates. Other layouts are adapted into this one
by the functions below, with NaN wherever a part is absent.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from .errors import ShapeError

__all__ = [
    "FACE",
    "LAYOUT",
    "LEFT_EYE",
    "LEFT_HAND",
    "LIPS",
    "NOSE",
    "NUM_LANDMARKS",
    "PARTS",
    "POSE",
    "POSE_UPPER",
    "RIGHT_EYE",
    "RIGHT_HAND",
    "from_flat1662",
    "from_holistic553",
    "from_pose_hands75",
    "mirror_clip",
    "mirror_permutation",
    "part_of",
    "to_holistic543",
]

LAYOUT: Final = "holistic-543"
NUM_LANDMARKS: Final = 543

#: Index ranges of the four parts, in layout order.
PARTS: Final[dict[str, range]] = {
    "face": range(0, 468),
    "left_hand": range(468, 489),
    "pose": range(489, 522),
    "right_hand": range(522, 543),
}
FACE: Final = PARTS["face"]
LEFT_HAND: Final = PARTS["left_hand"]
POSE: Final = PARTS["pose"]
RIGHT_HAND: Final = PARTS["right_hand"]
#: Upper-body pose: MediaPipe pose landmarks 0-24 (face, shoulders, arms, hands, hips).
POSE_UPPER: Final = range(489, 514)

#: Lip contour (outer and inner), 40 points, in the order of the Kaggle 1st-place solution.
LIPS: Final[tuple[int, ...]] = (
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
)  # fmt: skip
NOSE: Final[tuple[int, ...]] = (1, 2, 98, 327)
#: Right and left eye contours (the subject's own right/left), index-aligned mirror pairs.
RIGHT_EYE: Final[tuple[int, ...]] = (
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
)  # fmt: skip
LEFT_EYE: Final[tuple[int, ...]] = (
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
)  # fmt: skip

# Left/right pairs of the face that a horizontal flip swaps (DESIGN §2).
_LIP_LEFT_OF_IMAGE = (84, 181, 91, 146, 61, 185, 40, 39, 37, 87, 178, 88, 95, 78, 191, 80, 81, 82)
_LIP_RIGHT_OF_IMAGE = (
    314, 405, 321, 375, 291, 409, 270, 269, 267, 317, 402, 318, 324, 308, 415, 310, 311, 312,
)  # fmt: skip
# MediaPipe Pose: (left, right) landmark pairs, 0-based within the 33 pose landmarks.
_POSE_PAIRS = (
    (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18),
    (19, 20), (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32),
)  # fmt: skip


def _mirror_pairs() -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    pairs += [(LEFT_HAND[i], RIGHT_HAND[i]) for i in range(21)]
    pairs += list(zip(_LIP_LEFT_OF_IMAGE, _LIP_RIGHT_OF_IMAGE, strict=True))
    pairs += list(zip(LEFT_EYE, RIGHT_EYE, strict=True))
    pairs += [(98, 327)]
    pairs += [(POSE[a], POSE[b]) for a, b in _POSE_PAIRS]
    return pairs


def mirror_permutation() -> npt.NDArray[np.intp]:
    """Return the permutation that swaps every left/right landmark pair.

    ``clip[:, perm]`` exchanges the hands, the lip and eye contours, the nose wings and the
    pose pairs; points on the midline map to themselves. Applying it twice is the identity.

    Returns:
        An integer array of shape (543,).
    """
    perm = np.arange(NUM_LANDMARKS, dtype=np.intp)
    for a, b in _mirror_pairs():
        perm[a], perm[b] = b, a
    return perm


_MIRROR: Final[npt.NDArray[np.intp]] = mirror_permutation()


def mirror_clip(clip: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Flip a clip horizontally: x -> 1 - x and every left/right pair swapped.

    Args:
        clip: (T, 543, 3) or (543, 3) landmarks.

    Returns:
        A new float32 array of the same shape.

    Raises:
        ShapeError: If the last two axes are not (543, 3).
    """
    x = np.asarray(clip, dtype=np.float32)
    if x.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ShapeError(f"mirror_clip expects (T, 543, 3) or (543, 3) landmarks, got {x.shape}")
    out: npt.NDArray[np.float32] = np.take(x, _MIRROR, axis=-2)  # a new array
    out[..., 0] = 1.0 - out[..., 0]
    return out


def part_of(index: int) -> str:
    """Name the part (``face``, ``left_hand``, ``pose``, ``right_hand``) of a layout index.

    Raises:
        ShapeError: If the index is outside 0-542.
    """
    for name, rng in PARTS.items():
        if index in rng:
            return name
    raise ShapeError(f"landmark index {index} is outside the holistic-543 layout (0-542)")


def _as_frames(data: npt.ArrayLike, rows: int, cols: int, what: str) -> npt.NDArray[np.float32]:
    x = np.asarray(data, dtype=np.float32)
    if x.ndim == 2 and x.shape == (rows, cols):
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != (rows, cols):
        raise ShapeError(f"{what}: expected (T, {rows}, {cols}) or ({rows}, {cols}), got {x.shape}")
    return x


def _empty(t: int) -> npt.NDArray[np.float32]:
    return np.full((t, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)


def from_pose_hands75(data: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Adapt MediaPipe Pose + Hands frames (75 points) into holistic-543.

    Input rows: pose 0-32, left hand 33-53, right hand 54-74. The face is NaN.

    Args:
        data: (T, 75, 3) or (75, 3), coordinates x, y, z.

    Returns:
        (T, 543, 3) float32.
    """
    x = _as_frames(data, 75, 3, "pose+hands layout")
    out = _empty(x.shape[0])
    out[:, POSE.start : POSE.stop] = x[:, 0:33]
    out[:, LEFT_HAND.start : LEFT_HAND.stop] = x[:, 33:54]
    out[:, RIGHT_HAND.start : RIGHT_HAND.stop] = x[:, 54:75]
    return out


def from_holistic553(data: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Adapt the 553-row layout of newer MediaPipe (478-point face with irises).

    Input rows: face 0-477 (468-477 are the irises, dropped), left hand 478-498,
    pose 499-531, right hand 532-552.

    Args:
        data: (T, 553, 3) or (553, 3).

    Returns:
        (T, 543, 3) float32.
    """
    x = _as_frames(data, 553, 3, "holistic-553 layout")
    return np.ascontiguousarray(np.concatenate([x[:, 0:468], x[:, 478:553]], axis=1))


def from_flat1662(data: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Adapt flat 1662-value vectors (33 pose x,y,z,visibility; face, left, right hand x,y,z).

    This is the common "pose 132 + face 1404 + left hand 63 + right hand 63" vector. Parts
    written as all zeros (the convention for "not detected") become NaN.

    Args:
        data: (T, 1662) or (1662,).

    Returns:
        (T, 543, 3) float32.
    """
    x = np.asarray(data, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != 1662:
        raise ShapeError(f"flat-1662 layout: expected (T, 1662) or (1662,), got {x.shape}")
    t = x.shape[0]
    pose = x[:, 0:132].reshape(t, 33, 4)[:, :, :3]
    face = x[:, 132:1536].reshape(t, 468, 3)
    left = x[:, 1536:1599].reshape(t, 21, 3)
    right = x[:, 1599:1662].reshape(t, 21, 3)
    out = _empty(t)
    for block, rng in ((face, FACE), (left, LEFT_HAND), (pose, POSE), (right, RIGHT_HAND)):
        present = np.any(block != 0.0, axis=(1, 2))  # (T,)
        out[present, rng.start : rng.stop] = block[present]
    return out


def to_holistic543(data: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Adapt any supported layout to holistic-543, choosing the adapter by shape.

    Accepts (T, 543, 3), (T, 553, 3), (T, 75, 3), (T, 1662) and their single-frame forms.

    Raises:
        ShapeError: If the shape matches no known layout.
    """
    x = np.asarray(data)
    if x.ndim in (2, 3) and x.shape[-2:] == (NUM_LANDMARKS, 3):
        return _as_frames(x, NUM_LANDMARKS, 3, LAYOUT)
    if x.ndim in (2, 3) and x.shape[-2:] == (553, 3):
        return from_holistic553(x)
    if x.ndim in (2, 3) and x.shape[-2:] == (75, 3):
        return from_pose_hands75(x)
    if x.ndim in (1, 2) and x.shape[-1] == 1662:
        return from_flat1662(x)
    raise ShapeError(
        f"unknown landmark layout with shape {x.shape}: expected (T, 543, 3) holistic, "
        "(T, 553, 3) holistic with irises, (T, 75, 3) pose+hands or (T, 1662) flat vectors"
    )
