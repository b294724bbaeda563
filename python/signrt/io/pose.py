"""pose-format ``.pose`` files with MediaPipe Holistic components.

Reading and writing go through the `pose-format <https://github.com/sign-language-processing/pose>`_
package (``pip install signrt[pose]``), imported on first use.

A holistic ``.pose`` file stores its components in the order ``POSE_LANDMARKS`` (33),
``FACE_LANDMARKS`` (468, or 478 with irises), ``LEFT_HAND_LANDMARKS`` (21),
``RIGHT_HAND_LANDMARKS`` (21) and usually ``POSE_WORLD_LANDMARKS`` (ignored here). That is
not the holistic-543 order, so components and points are matched by name: pose and hand
points by their MediaPipe names (``LEFT_SHOULDER``, ``WRIST``, ...), face points by their
index (``"0"`` .. ``"467"``; the irises ``"468"`` .. ``"477"`` are dropped). Reduced files
that keep only some points or components are read with NaN for everything absent.

Coordinates: pose-format's MediaPipe estimator stores pixel coordinates (normalised x times
the header width, y times the height, z unscaled). The reader divides x and y by the header
dimensions to return image-normalised units; the writer multiplies by the ``width`` and
``height`` it is given, default 1, which stores the holistic-543 values unchanged.
A point with confidence 0, masked, or non-finite is missing (NaN); 2-D files get z = 0.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .._fs import atomic_write
from ..errors import DataError, DependencyError, OptionError
from ..layouts import FACE, LEFT_HAND, NUM_LANDMARKS, POSE, RIGHT_HAND
from ._files import FloatArray, PathLike, clip_for_writing, existing_file, finish_clip

__all__ = [
    "COMPONENTS",
    "HAND_POINTS",
    "POSE_POINTS",
    "read_pose",
    "write_pose",
]

logger = logging.getLogger(__name__)

#: MediaPipe Pose landmark names, in landmark order (pose landmark k is layout index 489 + k).
POSE_POINTS: Final = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL",
    "RIGHT_HEEL", "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)  # fmt: skip
#: MediaPipe Hands landmark names, in landmark order.
HAND_POINTS: Final = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)  # fmt: skip
_FACE_POINTS_WITH_IRISES: Final = 478

#: Holistic components, in the order pose-format writes them, with their layout ranges.
COMPONENTS: Final[dict[str, range]] = {
    "POSE_LANDMARKS": POSE,
    "FACE_LANDMARKS": FACE,
    "LEFT_HAND_LANDMARKS": LEFT_HAND,
    "RIGHT_HAND_LANDMARKS": RIGHT_HAND,
}
_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "POSE_LANDMARKS": POSE_POINTS,
    "FACE_LANDMARKS": tuple(str(i) for i in range(len(FACE))),
    "LEFT_HAND_LANDMARKS": HAND_POINTS,
    "RIGHT_HAND_LANDMARKS": HAND_POINTS,
}

# MediaPipe connections, drawn by pose-format's visualiser (the face mesh is left undrawn).
_POSE_LIMBS: Final = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
    (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19), (12, 14), (14, 16), (16, 18),
    (16, 20), (16, 22), (18, 20), (11, 23), (12, 24), (23, 24), (23, 25), (24, 26), (25, 27),
    (26, 28), (27, 29), (28, 30), (29, 31), (30, 32), (27, 31), (28, 32),
)  # fmt: skip
_HAND_LIMBS: Final = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10),
    (10, 11), (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18),
    (18, 19), (19, 20),
)  # fmt: skip
_LIMBS: Final[dict[str, tuple[tuple[int, int], ...]]] = {
    "POSE_LANDMARKS": _POSE_LIMBS,
    "FACE_LANDMARKS": (),
    "LEFT_HAND_LANDMARKS": _HAND_LIMBS,
    "RIGHT_HAND_LANDMARKS": _HAND_LIMBS,
}
_COLORS: Final[dict[str, tuple[int, int, int]]] = {
    "POSE_LANDMARKS": (255, 0, 0),
    "FACE_LANDMARKS": (128, 0, 0),
    "LEFT_HAND_LANDMARKS": (0, 255, 0),
    "RIGHT_HAND_LANDMARKS": (0, 0, 255),
}


def _pose_format() -> Any:
    """Import pose-format, or say how to install it."""
    try:
        import pose_format
        import pose_format.numpy
        import pose_format.pose_header
    except ImportError as exc:
        raise DependencyError(
            "reading and writing .pose files needs the pose-format package, which is not "
            f"installed ({exc}); install it with `pip install signrt[pose]`"
        ) from exc
    return pose_format


def _point_index(component: str, point: str, where: str) -> int | None:
    """Layout offset of ``point`` within ``component``; None for a dropped iris point.

    Raises:
        DataError: If ``component`` has no point of that name (``where`` names the file).
    """
    names = _NAMES[component]
    if point in names:
        return names.index(point) if component != "FACE_LANDMARKS" else int(point)
    if point.isdigit():  # points named by their MediaPipe index
        k = int(point)
        if k < len(names):
            return k
        if component == "FACE_LANDMARKS" and k < _FACE_POINTS_WITH_IRISES:
            return None
    raise DataError(f"{where}: component {component} has an unknown point {point!r}")


def read_pose(path: PathLike) -> FloatArray:
    """Read a pose-format ``.pose`` file with MediaPipe Holistic components.

    Only the first person of each frame is read.

    Args:
        path: The ``.pose`` file.

    Returns:
        (T, 543, 3) float32 landmarks in image-normalised units, NaN where missing.

    Raises:
        DependencyError: If pose-format is not installed.
        FileNotFoundError: If the file does not exist.
        DataError: If the file is not a readable ``.pose`` file (truncated, corrupt, another
            format), has none of the holistic components, or a component has an unknown
            point.
    """
    p = existing_file(path)
    pf = _pose_format()
    buffer = p.read_bytes()
    try:
        pose = pf.Pose.read(buffer)
        header = pose.header
        # numpy 1.26's stubs leave np.ma untyped; numpy 2's type it.
        data = np.ma.getdata(pose.body.data)  # type: ignore[no-untyped-call]
        masked = np.ma.getmaskarray(pose.body.data)  # type: ignore[no-untyped-call]
        confidence = np.asarray(pose.body.confidence, dtype=np.float64)
    except Exception as exc:  # pose-format raises anything from struct.error to IndexError
        raise DataError(f"{p}: not a readable .pose file ({type(exc).__name__}: {exc})") from None
    if data.ndim != 4 or confidence.shape != data.shape[:3]:
        raise DataError(f"{p}: unexpected .pose body of shape {data.shape}")
    t, people, _, dims = data.shape
    if dims < 2:
        raise DataError(f"{p}: .pose points have {dims} coordinate(s), expected at least x, y")

    # Global point index in the file -> layout index, matched by component and point name.
    src: list[int] = []
    dst: list[int] = []
    start = 0
    names = [c.name for c in header.components]
    for comp in header.components:
        rng = COMPONENTS.get(comp.name)
        if rng is not None:
            for i, point in enumerate(comp.points):
                k = _point_index(comp.name, str(point), str(p))
                if k is not None:
                    src.append(start + i)
                    dst.append(rng.start + k)
        start += len(comp.points)
    if not any(name in COMPONENTS for name in names):
        raise DataError(
            f"{p}: no MediaPipe Holistic component ({', '.join(COMPONENTS)}) in this .pose "
            f"file; its components are {', '.join(names) or 'none'}"
        )
    if start != data.shape[2]:
        raise DataError(f"{p}: header lists {start} points but the body has {data.shape[2]}")
    if len(set(dst)) != len(dst):
        raise DataError(f"{p}: a holistic component lists the same point twice")

    clip = np.full((t, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    if people > 0 and src:
        idx = np.asarray(src, dtype=np.intp)
        xyz = np.zeros((t, idx.size, 3), dtype=np.float64)
        ncoord = min(dims, 3)
        xyz[:, :, :ncoord] = data[:, 0][:, idx, :ncoord]
        width, height = header.dimensions.width, header.dimensions.height
        xyz[:, :, 0] /= width if width > 0 else 1
        xyz[:, :, 1] /= height if height > 0 else 1
        missing = (confidence[:, 0][:, idx] == 0) | masked[:, 0][:, idx].any(axis=-1)
        xyz[missing] = np.nan
        clip[:, np.asarray(dst, dtype=np.intp)] = xyz
    logger.debug("read %s: %d frames, components %s", p, t, names)
    return finish_clip(clip)


def write_pose(
    path: PathLike,
    clip: npt.ArrayLike,
    *,
    fps: float = 30.0,
    width: int = 1,
    height: int = 1,
) -> None:
    """Write a clip as a pose-format ``.pose`` file with four holistic components, atomically.

    The components are ``POSE_LANDMARKS``, ``FACE_LANDMARKS`` (468 points),
    ``LEFT_HAND_LANDMARKS`` and ``RIGHT_HAND_LANDMARKS`` in pose-format's order, with point
    format ``XYZC``; a missing landmark is written as zeros with confidence 0, every other
    with confidence 1.

    Args:
        path: Destination ``.pose`` file; its directory must exist.
        clip: (T, 543, 3) landmarks, or any layout :func:`signrt.layouts.to_holistic543`
            accepts.
        fps: Frame rate stored in the file.
        width: Image width: x is stored as x * width (pixels, like pose-format's estimator);
            the default 1 keeps image-normalised values.
        height: Image height, likewise for y.

    Raises:
        DependencyError: If pose-format is not installed.
        ShapeError: If the clip matches no known layout.
        OptionError: If ``fps`` is not positive or ``width``/``height`` is outside 1-65535.
    """
    x = clip_for_writing(clip)
    if not (np.isfinite(fps) and fps > 0):
        raise OptionError(f"fps must be a positive number, got {fps}")
    for name, value in (("width", width), ("height", height)):
        if not 1 <= int(value) <= 0xFFFF:
            raise OptionError(f"{name} must be between 1 and 65535, got {value}")
    pf = _pose_format()
    header_mod = pf.pose_header
    components = [
        header_mod.PoseHeaderComponent(
            name=name,
            points=list(_NAMES[name]),
            limbs=list(_LIMBS[name]),
            colors=[_COLORS[name]],
            point_format="XYZC",
        )
        for name in COMPONENTS
    ]
    header = header_mod.PoseHeader(
        version=header_mod.VERSION,
        dimensions=header_mod.PoseHeaderDimensions(width=int(width), height=int(height), depth=0),
        components=components,
    )
    order = np.concatenate([np.arange(r.start, r.stop) for r in COMPONENTS.values()])
    xyz = x[:, order].astype(np.float64)
    present = np.all(np.isfinite(xyz), axis=-1)  # (T, 543)
    xyz[:, :, 0] *= int(width)
    xyz[:, :, 1] *= int(height)
    xyz[~present] = 0.0
    data = xyz.astype(np.float32)[:, None]  # (T, people=1, points, 3)
    confidence = present.astype(np.float32)[:, None]
    body = pf.numpy.NumPyPoseBody(fps=float(fps), data=data, confidence=confidence)
    pose = pf.Pose(header, body)
    with atomic_write(path) as fh:
        pose.write(fh)
    logger.debug("wrote %s: %d frames at %g fps", path, x.shape[0], fps)
