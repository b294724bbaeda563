"""A synthetic signer: labelled landmark clips in the holistic-543 layout.

No sign-language video data can be downloaded here, so tests, demos and the bundled demo
model train on clips drawn from the small generative model below. The clips look like
MediaPipe Holistic output (face 0-467, left hand 468-488, pose 489-521, right hand 522-542,
NaN for a part that is not detected), so every part of signrt handles them like real data.
They are *not* a sign language: the classes are made-up gestures, labelled ``sign00`` ...

Generative model
----------------
Coordinates are built in a **body frame**: origin between the shoulders, unit = the signer's
shoulder width, x to the image right, y down (like the image). A right-handed signer's
dominant hand is the subject's right hand (``right_hand``, 522-542), which a camera facing
the signer sees on the image left (negative body x).

*Class* ``k`` (drawn from ``rng(seed, k)``; consecutive pairs ``2j, 2j+1`` share their
movement and differ in hand shape and orientation, so hand shape alone must separate them):

* an **anchor** near the body (forehead, cheek, mouth, chin, chest, shoulder, neutral space,
  ...) and a **movement family**: straight line, arc/circle, zig-zag, repeated taps, or a
  wrist twist in place; its direction, size, sweep and repetitions;
* a **hand shape** at the start and one at the end (finger curls, spread and thumb from a
  palette: flat, fist, point, V, Y, L, C, O, claw, W, I, 3, spread-5, bent) and a palm
  orientation (roll, yaw, pitch) at the start and the end;
* **two-handedness**: one-handed (the other hand rests below the frame and is mostly not
  detected), mirrored (the other hand moves symmetrically), alternating (mirrored with half a
  cycle of delay) or base (the other hand holds a fixed shape in front of the chest);
* a mouth movement (the mouth opens with some amplitude, or not) and a base duration
  (18-30 frames at 30 fps).

*Signer* ``s`` (drawn from ``rng(seed, s)``): position in the image, shoulder width,
shoulder height, body tilt, hand size, handedness (a left-handed signer's clips are mirrored
with :func:`signrt.layouts.mirror_clip`, which swaps every left/right landmark pair), a
personal speed, movement amplitude and sloppiness (finger-curl noise), a hand-detection drop
rate and a jitter level.

*Clip* (drawn from ``rng(seed, k, s, r)``): a speed factor and a time warp ``u -> u**g``
(speed changes within the sign), idle frames before and after in which the hands rest below
the frame (not detected), short transitions from and to rest, per-landmark jitter and a
small whole-hand tremor, a slow head/body sway, and dropped hand detections (independent
frames plus an occasional burst), written as NaN.

Everything is a pure function of the seed and the indices, so clips are reproducible on
any machine and do not depend on generation order.

Example:
    >>> signer = SyntheticSigner(SyntheticConfig(num_classes=20, seed=0))
    >>> clip = signer.clip(label=3, signer=1, rep=0)   # (T, 543, 3) float32
    >>> clips, labels, groups = signer.dataset()
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from . import layouts
from .errors import DataError

__all__ = [
    "HAND_SHAPES",
    "ClassParams",
    "SignerParams",
    "SyntheticConfig",
    "SyntheticSigner",
    "parse_synthetic_source",
]

FloatArray = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

#: Hand shapes: (thumb, index, middle, ring, pinky curls in 0..1, finger spread 0..1).
HAND_SHAPES: Final[dict[str, tuple[float, float, float, float, float, float]]] = {
    "flat": (0.1, 0.0, 0.0, 0.0, 0.0, 0.0),
    "spread5": (0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    "fist": (0.7, 1.0, 1.0, 1.0, 1.0, 0.0),
    "point": (0.7, 0.0, 1.0, 1.0, 1.0, 0.0),
    "v": (0.7, 0.0, 0.0, 1.0, 1.0, 0.9),
    "y": (0.0, 1.0, 1.0, 1.0, 0.0, 1.0),
    "l": (0.0, 0.0, 1.0, 1.0, 1.0, 0.3),
    "c": (0.35, 0.45, 0.45, 0.45, 0.45, 0.1),
    "o": (0.6, 0.65, 0.7, 0.7, 0.75, 0.0),
    "claw": (0.3, 0.6, 0.6, 0.6, 0.6, 1.0),
    "w": (0.8, 0.0, 0.0, 0.0, 1.0, 0.8),
    "i": (0.7, 1.0, 1.0, 1.0, 0.0, 0.2),
    "three": (0.0, 0.0, 0.0, 1.0, 1.0, 0.7),
    "bent": (0.2, 0.55, 0.55, 0.55, 0.55, 0.0),
}
_SHAPE_NAMES: Final = tuple(HAND_SHAPES)

#: Anchors of the dominant hand in the body frame (dominant side = negative x).
_ANCHORS: Final[dict[str, tuple[float, float]]] = {
    "forehead": (-0.05, -0.62),
    "cheek": (-0.17, -0.36),
    "mouth": (-0.02, -0.26),
    "chin": (-0.04, -0.16),
    "chest": (-0.08, 0.28),
    "shoulder": (-0.38, 0.12),
    "neutral": (-0.25, 0.45),
    "side": (-0.55, 0.2),
    "stomach": (-0.05, 0.62),
}
_MOVES: Final = ("line", "arc", "zigzag", "tap", "twist")
_TWO_HANDED: Final = ("one", "one", "mirror", "alternate", "base")

# Body geometry (body-frame units = shoulder widths).
_NOSE_Y: Final = -0.42  # nose tip above the shoulder midpoint
_REST: Final = np.array([-0.35, 1.1])  # a resting dominant hand, below the frame
_UPPER_ARM, _FOREARM = 0.62, 0.58

# Hand geometry in hand units (wrist to middle fingertip ~ 0.75), right hand, palm to camera,
# fingers up (-y), thumb towards +x (the body midline for a right hand seen from the front).
_FINGER_BASES: Final = np.array(
    [[0.07, -0.10], [0.09, -0.36], [0.02, -0.38], [-0.045, -0.36], [-0.10, -0.32]]
)
_FINGER_SEGMENTS: Final = np.array(
    [[0.13, 0.10, 0.08], [0.16, 0.09, 0.07], [0.18, 0.11, 0.08], [0.16, 0.10, 0.07],
     [0.12, 0.07, 0.06]]
)  # fmt: skip
_FINGER_ANGLES: Final = np.array([-0.95, -0.10, 0.0, 0.10, 0.22])  # rad, splay at spread=1
_FLEX: Final = np.radians([60.0, 90.0, 70.0])  # joint flexion at curl = 1


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of a synthetic data set.

    Attributes:
        num_classes: Number of signs (labels ``sign00`` ...).
        num_signers: Number of signers (groups ``signer00`` ...).
        clips_per_class: Repetitions of every sign by every signer.
        seed: Master seed; everything is a function of it and the indices.
        left_handed: Probability that a signer is left-handed.
        drop_rate: Range of per-signer hand-detection drop rates per frame.
        jitter: Landmark jitter (std, in shoulder widths).
        idle: Range of idle frames before and after the sign.
        speed: Range of the per-clip speed factor (with a per-signer factor on top).
        signer_offset: Index of the first signer (so that held-out signers can be drawn
            from the same population: ``signer_offset=8`` gives signers 8, 9, ...).
    """

    num_classes: int = 20
    num_signers: int = 8
    clips_per_class: int = 5
    seed: int = 0
    left_handed: float = 0.25
    drop_rate: tuple[float, float] = (0.0, 0.12)
    jitter: float = 0.006
    idle: tuple[int, int] = (1, 8)
    speed: tuple[float, float] = (0.8, 1.25)
    signer_offset: int = 0

    def __post_init__(self) -> None:
        for name in ("num_classes", "num_signers", "clips_per_class"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"synthetic: {name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.left_handed <= 1.0:
            raise DataError(f"synthetic: left_handed must be in [0, 1], got {self.left_handed}")

    @property
    def label_names(self) -> list[str]:
        """The class names, ``sign00`` ... (index = label)."""
        width = max(2, len(str(self.num_classes - 1)))
        return [f"sign{k:0{width}d}" for k in range(self.num_classes)]

    def describe(self) -> str:
        """The ``synthetic:...`` source string of this configuration."""
        return (
            f"synthetic:classes={self.num_classes},signers={self.num_signers},"
            f"clips_per_class={self.clips_per_class},seed={self.seed}"
            + (f",signer_offset={self.signer_offset}" if self.signer_offset else "")
        )


_SOURCE_KEYS: Final[dict[str, str]] = {
    "classes": "num_classes",
    "num_classes": "num_classes",
    "signers": "num_signers",
    "num_signers": "num_signers",
    "clips_per_class": "clips_per_class",
    "reps": "clips_per_class",
    "seed": "seed",
    "left_handed": "left_handed",
    "jitter": "jitter",
    "signer_offset": "signer_offset",
}


def parse_synthetic_source(source: str) -> SyntheticConfig:
    """Parse ``synthetic:classes=20,signers=8,clips_per_class=5,seed=0`` into a config.

    Every key is optional (``synthetic:`` alone gives the defaults). Keys: ``classes``,
    ``signers``, ``clips_per_class`` (alias ``reps``), ``seed``, ``left_handed``, ``jitter``,
    ``signer_offset``.

    Raises:
        DataError: On an unknown key or a malformed value.
    """
    if not source.startswith("synthetic"):
        raise DataError(f"not a synthetic source: {source!r}")
    body = source.partition(":")[2].strip()
    kwargs: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(SyntheticConfig)}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _SOURCE_KEYS:
            raise DataError(
                f"synthetic source: cannot read {item!r}; expected key=value with keys "
                f"{', '.join(sorted(_SOURCE_KEYS))}"
            )
        name = _SOURCE_KEYS[key]
        try:
            kwargs[name] = float(value) if types[name] == "float" else int(value)
        except ValueError:
            raise DataError(f"synthetic source: {key}={value!r} is not a number") from None
    return SyntheticConfig(**kwargs)


@dataclass(frozen=True)
class ClassParams:
    """The generative parameters of one sign (see the module docstring)."""

    anchor: tuple[float, float]
    move: str
    direction: float  # rad, in the body frame
    size: float  # shoulder widths
    sweep: float  # arc sweep (rad, signed) / number of zig-zags, taps or twists
    shape_start: str
    shape_end: str
    roll: tuple[float, float]  # rad, start/end; 0 = fingers up
    yaw: tuple[float, float]
    pitch: float
    two_handed: str
    mouth: float  # mouth opening amplitude (shoulder widths)
    frames: int  # base duration at speed 1


@dataclass(frozen=True)
class SignerParams:
    """The generative parameters of one signer (see the module docstring)."""

    centre_x: float  # image x of the shoulder midpoint
    shoulder_y: float  # image y of the shoulder midpoint
    width: float  # shoulder width in image units
    tilt: float  # body roll (rad)
    hand_size: float
    left_handed: bool
    speed: float
    amplitude: float
    sloppiness: float
    drop_rate: float
    jitter: float


def _smoothstep(u: F64) -> F64:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _rot2(angle: float) -> F64:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


class SyntheticSigner:
    """Draw labelled clips from the synthetic generative model (module docstring).

    Args:
        config: The data set parameters; the default is 20 classes, 8 signers, 5 clips
            per class and signer, seed 0.
    """

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = config or SyntheticConfig()
        self._classes = [self._class_params(k) for k in range(self.config.num_classes)]
        self._face = _face_template()

    # --------------------------------------------------------------------- parameters
    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, *keys])

    @property
    def label_names(self) -> list[str]:
        """Class names, index = label."""
        return self.config.label_names

    def class_params(self, label: int) -> ClassParams:
        """The parameters of sign ``label``."""
        return self._classes[label]

    def _class_params(self, k: int) -> ClassParams:
        # The movement is shared by the pair (2j, 2j+1); shape and orientation are not.
        mv = self._rng(1, k // 2)
        own = self._rng(2, k)
        # anchors and movement families cycle through seeded permutations (9 and 5 are
        # coprime: 45 distinct combinations before one repeats), positions vary per pair
        order = self._rng(0)
        anchors, moves = order.permutation(len(_ANCHORS_LIST)), order.permutation(len(_MOVES))
        ax, ay = _ANCHORS[_ANCHORS_LIST[int(anchors[(k // 2) % len(anchors)])]]
        ax, ay = ax + float(mv.normal(0.0, 0.04)), ay + float(mv.normal(0.0, 0.04))
        move = _MOVES[int(moves[(k // 2) % len(moves)])]
        if move == "arc":
            sweep = float(mv.choice([-1.0, 1.0]) * mv.uniform(0.8 * math.pi, 2.0 * math.pi))
            size = float(mv.uniform(0.10, 0.2))
        elif move in ("zigzag", "tap", "twist"):
            sweep = float(mv.integers(2, 4))
            size = float(mv.uniform(0.22, 0.4) if move == "zigzag" else mv.uniform(0.07, 0.12))
        else:
            sweep = 0.0
            size = float(mv.uniform(0.25, 0.5))
        # Shapes: the pair partner takes a shape at least two curls away from the first.
        pair = self._rng(3, k // 2)
        first = int(pair.integers(len(_SHAPE_NAMES)))
        if k % 2 == 0:
            start = first
        else:
            far = [
                i
                for i in range(len(_SHAPE_NAMES))
                if _shape_distance(_SHAPE_NAMES[i], _SHAPE_NAMES[first]) > 1.2
            ]
            start = far[int(own.integers(len(far)))]
        end = start if own.random() < 0.5 else int(own.integers(len(_SHAPE_NAMES)))
        roll0 = float(own.uniform(-1.4, 0.6))
        return ClassParams(
            anchor=(ax, ay),
            move=move,
            direction=float(mv.uniform(-math.pi, math.pi)),
            size=size,
            sweep=sweep,
            shape_start=_SHAPE_NAMES[start],
            shape_end=_SHAPE_NAMES[end],
            roll=(roll0, roll0 + float(own.uniform(-0.8, 0.8))),
            yaw=(float(own.uniform(-0.6, 0.6)), float(own.uniform(-0.6, 0.6))),
            pitch=float(own.uniform(-0.4, 0.4)),
            two_handed=_TWO_HANDED[int(mv.integers(len(_TWO_HANDED)))],
            mouth=float(own.uniform(0.0, 0.05)) if own.random() < 0.4 else 0.0,
            frames=int(mv.integers(18, 31)),
        )

    def signer_params(self, signer: int) -> SignerParams:
        """The parameters of signer ``signer`` (any non-negative index)."""
        r = self._rng(4, signer)
        cfg = self.config
        return SignerParams(
            centre_x=float(r.uniform(0.4, 0.6)),
            shoulder_y=float(r.uniform(0.6, 0.76)),
            width=float(r.uniform(0.32, 0.55)),
            tilt=float(r.normal(0.0, 0.05)),
            hand_size=float(r.uniform(0.85, 1.15)),
            left_handed=bool(r.random() < cfg.left_handed),
            speed=float(r.uniform(0.85, 1.2)),
            amplitude=float(r.uniform(0.8, 1.2)),
            sloppiness=float(r.uniform(0.03, 0.12)),
            drop_rate=float(r.uniform(*cfg.drop_rate)),
            jitter=float(cfg.jitter * r.uniform(0.6, 1.4)),
        )

    # --------------------------------------------------------------------------- clips
    def clip(self, label: int, signer: int, rep: int = 0) -> FloatArray:
        """Generate one clip.

        Args:
            label: Class index (0 .. num_classes-1).
            signer: Signer index (any non-negative integer; signers beyond
                ``num_signers`` are new people from the same population).
            rep: Repetition index.

        Returns:
            (T, 543, 3) float32 landmarks, NaN where a hand is not detected.
        """
        if not 0 <= label < self.config.num_classes:
            raise DataError(f"synthetic: label {label} outside 0..{self.config.num_classes - 1}")
        cls = self._classes[label]
        sp = self.signer_params(signer)
        rng = self._rng(5, label, signer, rep)
        return _render(cls, sp, rng, self._face, self.config)

    def dataset(self) -> tuple[list[FloatArray], npt.NDArray[np.int64], list[str]]:
        """Generate the whole data set: every signer signs every class ``clips_per_class`` times.

        Returns:
            ``(clips, labels, groups)``: (T_i, 543, 3) clips, int64 labels and the signer id
            of each clip (``signer03``), ordered by signer, class, repetition.
        """
        cfg = self.config
        clips: list[FloatArray] = []
        labels: list[int] = []
        groups: list[str] = []
        for s in range(cfg.signer_offset, cfg.signer_offset + cfg.num_signers):
            for k in range(cfg.num_classes):
                for r in range(cfg.clips_per_class):
                    clips.append(self.clip(k, s, r))
                    labels.append(k)
                    groups.append(f"signer{s:02d}")
        return clips, np.asarray(labels, dtype=np.int64), groups


_ANCHORS_LIST: Final = tuple(_ANCHORS)


def _shape_distance(a: str, b: str) -> float:
    return float(np.abs(np.subtract(HAND_SHAPES[a], HAND_SHAPES[b])).sum())


# ------------------------------------------------------------------------------ geometry
def _face_template() -> F64:
    """468 face points relative to the nose tip (body units, y down), with z.

    Lips, eyes and nose wings sit where MediaPipe puts them and are left/right symmetric
    under the layout's mirror pairs; the other points fill the face oval.
    """
    rng = np.random.default_rng(468)
    pts = np.zeros((468, 3))
    # interior and oval: points in an ellipse around the face centre
    n = 468
    r = np.sqrt(rng.uniform(0.0, 1.0, n))
    a = rng.uniform(0.0, 2.0 * math.pi, n)
    pts[:, 0] = 0.19 * r * np.cos(a)
    pts[:, 1] = -0.02 + 0.27 * r * np.sin(a)
    pts[:, 2] = -0.04 * (1.0 - r**2) + rng.normal(0.0, 0.003, n)
    # nose
    pts[1] = (0.0, 0.0, -0.06)
    pts[2] = (0.0, 0.025, -0.045)
    pts[98] = (-0.032, 0.018, -0.03)
    pts[327] = (0.032, 0.018, -0.03)
    # lips (mouth centre 0.09 below the nose tip, half-width 0.075)
    mw, my = 0.075, 0.09
    upper = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
    lower = (146, 91, 181, 84, 17, 314, 405, 321, 375)
    iu = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
    il = (95, 88, 178, 87, 14, 317, 402, 318, 324)
    xs = np.linspace(-1.0, 1.0, 11)
    for i, x in zip(upper, xs, strict=True):
        pts[i] = (mw * x, my - 0.022 * math.sqrt(max(0.0, 1 - x * x)) - 0.004, -0.035)
    for i, x in zip(lower, xs[1:-1], strict=True):
        pts[i] = (mw * x, my + 0.026 * math.sqrt(max(0.0, 1 - x * x)), -0.035)
    for i, x in zip(iu, xs, strict=True):
        pts[i] = (0.8 * mw * x, my - 0.004 * math.sqrt(max(0.0, 1 - x * x)), -0.03)
    for i, x in zip(il, xs[1:-1], strict=True):
        pts[i] = (0.8 * mw * x, my + 0.004 * math.sqrt(max(0.0, 1 - x * x)), -0.03)
    # eyes: subject's right eye on the image left; outer corner first, lower lid then upper
    ex, ey, ew, eh = 0.085, -0.1, 0.035, 0.012
    lower_lid = np.linspace(-1.0, 1.0, 9)  # outer (-x) -> inner
    upper_lid = np.linspace(-1.0, 1.0, 9)[1:-1]
    for right_idx, left_idx, x, sign in (
        *((r_, l_, x_, 1.0) for r_, l_, x_ in zip(layouts.RIGHT_EYE[:9], layouts.LEFT_EYE[:9],
                                                   lower_lid, strict=True)),
        *((r_, l_, x_, -1.0) for r_, l_, x_ in zip(layouts.RIGHT_EYE[9:], layouts.LEFT_EYE[9:],
                                                    upper_lid, strict=True)),
    ):  # fmt: skip
        y = ey + sign * eh * math.sqrt(max(0.0, 1 - x * x))
        pts[right_idx] = (-ex + ew * x, y, -0.02)
        pts[left_idx] = (ex - ew * x, y, -0.02)
    return pts


def _hand_points(
    curls: F64, spread: F64, roll: F64, yaw: F64, pitch: F64, scale: float, left: bool
) -> F64:
    """21 hand landmarks relative to the wrist for T frames.

    Args:
        curls: (T, 5) finger curls (thumb first), 0 straight .. 1 closed.
        spread: (T,) finger spread 0..1.
        roll: (T,) in-plane rotation (rad), 0 = fingers up.
        yaw: (T,) rotation about the vertical axis (rad).
        pitch: (T,) rotation about the horizontal axis (rad).
        scale: Hand size in body units.
        left: A left hand (thumb on the other side).

    Returns:
        (T, 21, 3) offsets in body units (x right, y down, z towards the camera negative).
    """
    t = curls.shape[0]
    out = np.zeros((t, 21, 3))
    for f in range(5):
        # point 4f+1 is the finger's base (thumb CMC, finger MCP); 4f+2..4f+4 follow it
        pos = np.zeros((t, 3))
        pos[:, :2] = _FINGER_BASES[f]
        out[:, 4 * f + 1] = pos
        ang = np.full(t, _FINGER_ANGLES[0]) if f == 0 else _FINGER_ANGLES[f] * (
            0.35 + 0.65 * spread
        )
        d_xy = np.stack([-np.sin(ang), -np.cos(ang)], axis=1)  # (T, 2) in the palm plane
        cum = np.zeros(t)
        for j in range(3):
            # flexion turns the segment towards the camera (-z); the thumb folds across
            cum = cum + curls[:, f] * _FLEX[j]
            seg = np.zeros((t, 3))
            seg[:, :2] = d_xy * np.cos(cum)[:, None]
            seg[:, 2] = -np.sin(cum)
            if f == 0:
                seg[:, 0] -= 0.6 * np.sin(cum)
            pos = pos + _FINGER_SEGMENTS[f, j] * seg
            out[:, 4 * f + 2 + j] = pos
    if left:
        out[:, :, 0] = -out[:, :, 0]
    # rotations: pitch (about x), yaw (about y), roll (about z, in the image plane)
    cp, sp = np.cos(pitch)[:, None], np.sin(pitch)[:, None]
    y1 = out[:, :, 1] * cp - out[:, :, 2] * sp
    z1 = out[:, :, 1] * sp + out[:, :, 2] * cp
    cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x2 = out[:, :, 0] * cy + z1 * sy
    z2 = -out[:, :, 0] * sy + z1 * cy
    r = -roll if left else roll
    cr, sr = np.cos(r)[:, None], np.sin(r)[:, None]
    x3 = x2 * cr - y1 * sr
    y3 = x2 * sr + y1 * cr
    rotated: npt.NDArray[np.float64] = np.stack([x3, y3, z2], axis=2) * scale
    return rotated


def _trajectory(cls: ClassParams, u: F64, amplitude: float) -> tuple[F64, F64]:
    """Dominant wrist path (body frame) and extra roll for sign progress u in [0, 1]."""
    ax, ay = cls.anchor
    d = np.array([math.cos(cls.direction), math.sin(cls.direction)])
    perp = np.array([-d[1], d[0]])
    s = cls.size * amplitude
    extra_roll = np.zeros_like(u)
    if cls.move == "line":
        p = (u - 0.5)[:, None] * s * d
    elif cls.move == "arc":
        a = cls.direction + cls.sweep * u
        p = s * np.stack([np.cos(a) - math.cos(cls.direction),
                          np.sin(a) - math.sin(cls.direction)], axis=1)  # fmt: skip
    elif cls.move == "zigzag":
        p = (u - 0.5)[:, None] * s * d + (0.07 * amplitude * np.sin(
            2 * math.pi * cls.sweep * u))[:, None] * perp  # fmt: skip
    elif cls.move == "tap":
        p = (s * np.abs(np.sin(math.pi * cls.sweep * u)))[:, None] * d
    else:  # twist
        p = (0.03 * amplitude * np.sin(2 * math.pi * u))[:, None] * d
        extra_roll = 0.6 * np.sin(2 * math.pi * cls.sweep * u)
    return np.array([ax, ay]) + p, extra_roll


def _interp_shape(a: str, b: str, w: F64) -> tuple[F64, F64]:
    sa, sb = np.asarray(HAND_SHAPES[a]), np.asarray(HAND_SHAPES[b])
    v = sa[None] * (1.0 - w[:, None]) + sb[None] * w[:, None]  # (T, 6)
    return v[:, :5], v[:, 5]


def _elbow(shoulder: F64, wrist: F64, outward: float) -> F64:
    """2-link inverse kinematics: the elbow between shoulder and wrist, hanging down/out."""
    v = wrist - shoulder  # (T, 2)
    d = np.clip(np.linalg.norm(v, axis=1), 1e-6, (_UPPER_ARM + _FOREARM) * 0.999)
    u = v / d[:, None]
    a = (_UPPER_ARM**2 - _FOREARM**2 + d**2) / (2 * d)
    h = np.sqrt(np.clip(_UPPER_ARM**2 - a**2, 0.0, None))
    n = np.stack([-u[:, 1], u[:, 0]], axis=1)
    # choose the perpendicular that points down (and outward)
    sgn = np.where(n[:, 1] + 0.3 * outward * n[:, 0] >= 0, 1.0, -1.0)
    elbow: F64 = shoulder + u * a[:, None] + n * (h * sgn)[:, None]
    return elbow


def _render(
    cls: ClassParams,
    sp: SignerParams,
    rng: np.random.Generator,
    face: F64,
    cfg: SyntheticConfig,
) -> FloatArray:
    speed = sp.speed * rng.uniform(*cfg.speed)
    core = max(8, round(cls.frames / speed))
    trans_in, trans_out = int(rng.integers(3, 6)), int(rng.integers(3, 6))
    idle_in, idle_out = (int(rng.integers(cfg.idle[0], cfg.idle[1] + 1)) for _ in range(2))
    total = idle_in + trans_in + core + trans_out + idle_out
    t_idx = np.arange(total, dtype=np.float64)

    # sign progress u in [0, 1] during the core, with a time warp (speed change)
    warp = math.exp(rng.normal(0.0, 0.2))
    u = np.clip((t_idx - idle_in - trans_in) / max(core - 1, 1), 0.0, 1.0) ** warp
    # how far the hands are from rest: 0 at rest, 1 while signing
    lift = np.zeros(total)
    a0, a1 = idle_in, idle_in + trans_in
    b0 = a1 + core
    lift[a0:a1] = _smoothstep((t_idx[a0:a1] - a0 + 1) / (trans_in + 1))
    lift[a1:b0] = 1.0
    out_t = t_idx[b0 : b0 + trans_out] - b0 + 1
    lift[b0 : b0 + trans_out] = 1.0 - _smoothstep(out_t / (trans_out + 1))

    # ----------------------------------------------------------------- dominant hand
    path, twist = _trajectory(cls, u, sp.amplitude)
    path = path + rng.normal(0.0, 0.03, 2)  # where this repetition is placed
    wrist_d = _REST[None] * (1 - lift[:, None]) + path * lift[:, None]  # (T, 2)
    w_shape = _smoothstep(u * 1.6 - 0.3)
    curls, spread = _interp_shape(cls.shape_start, cls.shape_end, w_shape)
    curls = np.clip(curls + rng.normal(0.0, sp.sloppiness, 5)[None], 0.0, 1.0)
    roll = cls.roll[0] + (cls.roll[1] - cls.roll[0]) * u + twist + rng.normal(0.0, 0.08)
    yaw = cls.yaw[0] + (cls.yaw[1] - cls.yaw[0]) * u + rng.normal(0.0, 0.08)
    pitch = np.full(total, cls.pitch + rng.normal(0.0, 0.08))
    hand_scale = 0.5 * sp.hand_size
    dom = _hand_points(curls, spread, roll, yaw, pitch, hand_scale, left=False)

    # -------------------------------------------------------------- non-dominant hand
    mirror_xy = np.array([-1.0, 1.0])
    nd_visible_rest = False
    if cls.two_handed in ("mirror", "alternate"):
        if cls.two_handed == "alternate":
            lag = max(1, core // 4)
            u2 = np.clip((t_idx - idle_in - trans_in - lag) / max(core - 1, 1), 0.0, 1.0) ** warp
            path2, twist2 = _trajectory(cls, u2, sp.amplitude)
        else:
            path2, twist2 = path, twist
        wrist_n = (_REST[None] * (1 - lift[:, None]) + path2 * lift[:, None]) * mirror_xy
        roll2 = cls.roll[0] + (cls.roll[1] - cls.roll[0]) * u + twist2
        non = _hand_points(curls, spread, roll2, yaw, pitch, hand_scale, left=True)
    elif cls.two_handed == "base":
        base = np.array([0.12, 0.42])
        wrist_n = _REST[None] * mirror_xy * (1 - lift[:, None]) + base * lift[:, None]
        c2, s2 = _interp_shape("flat", "flat", np.zeros(total))
        non = _hand_points(c2, s2, np.full(total, -1.3), np.zeros(total), np.full(total, 0.9),
                           hand_scale, left=True)  # fmt: skip
        nd_visible_rest = True
    else:
        wrist_n = np.repeat((_REST * mirror_xy)[None], total, axis=0)
        wrist_n = wrist_n + rng.normal(0.0, 0.01, (total, 2))
        c2, s2 = _interp_shape("flat", "flat", np.zeros(total))
        non = _hand_points(c2, s2, np.full(total, 0.3), np.zeros(total), np.zeros(total),
                           hand_scale, left=True)  # fmt: skip
    del nd_visible_rest

    # -------------------------------------------------------------------- body, face
    sway = 0.01 * np.sin(2 * math.pi * (t_idx / 45.0 + rng.uniform()))
    frame = np.full((total, layouts.NUM_LANDMARKS, 3), np.nan)
    nose = np.stack([sway, np.full(total, _NOSE_Y) + 0.3 * sway], axis=1)  # (T, 2)
    mouth_open = cls.mouth * np.sin(math.pi * u) * lift
    f = np.repeat(face[None], total, axis=0)  # (T, 468, 3)
    lower_lip = np.zeros(468, dtype=bool)
    lower_lip[[146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318,
               324]] = True  # fmt: skip
    f[:, lower_lip, 1] += mouth_open[:, None]
    f[:, :, :2] += nose[:, None, :]
    frame[:, 0:468] = f

    pose = np.zeros((total, 33, 3))
    pose[:, 0, :2] = nose
    # eyes (inner, centre, outer), ears, mouth corners: offsets from the nose tip
    for k, off in ((1, 0.05), (2, 0.085), (3, 0.12)):
        pose[:, k, :2] = nose + np.array([off, -0.1])
        pose[:, k + 3, :2] = nose + np.array([-off, -0.1])
    pose[:, 7, :2], pose[:, 8, :2] = nose + np.array([0.2, -0.03]), nose + np.array([-0.2, -0.03])
    pose[:, 9, :2], pose[:, 10, :2] = nose + np.array([0.05, 0.1]), nose + np.array([-0.05, 0.1])
    pose[:, 11, :2], pose[:, 12, :2] = (0.5, 0.0), (-0.5, 0.0)
    pose[:, 23, :2], pose[:, 24, :2] = (0.3, 1.25), (-0.3, 1.25)
    for k, y in zip((25, 27, 29, 31), (2.1, 2.9, 3.0, 3.05), strict=True):
        pose[:, k, :2], pose[:, k + 1, :2] = (0.3, y), (-0.3, y)
    # dominant = subject's right (pose odd indices 12, 14, ...), non-dominant = left
    for wrist, hand, side, sh in ((wrist_d, dom, 0, 12), (wrist_n, non, 1, 11)):
        w_idx = 16 - side
        pose[:, w_idx, :2] = wrist
        pose[:, w_idx - 2, :2] = _elbow(pose[:, sh, :2], wrist, -1.0 if side == 0 else 1.0)
        for k, hk in ((18, 17), (20, 5), (22, 2)):  # pinky, index, thumb
            pose[:, k - side, :2] = wrist + hand[:, hk, :2]
    pose[:, :, 2] = -0.3 + 0.1 * pose[:, :, 1]
    frame[:, 489:522] = pose
    right = dom.copy()
    right[:, :, :2] += wrist_d[:, None, :]
    left = non.copy()
    left[:, :, :2] += wrist_n[:, None, :]
    frame[:, 522:543] = right
    frame[:, 468:489] = left

    # ------------------------------------------------------------------ noise, to image
    frame[:, :, :2] += rng.normal(0.0, sp.jitter, (total, layouts.NUM_LANDMARKS, 2))
    for rng_part in (layouts.LEFT_HAND, layouts.RIGHT_HAND):
        frame[:, rng_part, :2] += rng.normal(0.0, sp.jitter * 1.5, (total, 1, 2))
    rot = _rot2(sp.tilt + rng.normal(0.0, 0.02))
    xy = frame[:, :, :2] @ rot.T
    img = np.empty_like(frame)
    img[:, :, 0] = sp.centre_x + rng.normal(0.0, 0.01) + sp.width * xy[:, :, 0]
    img[:, :, 1] = sp.shoulder_y + rng.normal(0.0, 0.01) + sp.width * xy[:, :, 1]
    img[:, :, 2] = sp.width * frame[:, :, 2]

    # --------------------------------------------------------------- hand detections
    for part, wr in ((layouts.RIGHT_HAND, wrist_d), (layouts.LEFT_HAND, wrist_n)):
        wy = sp.shoulder_y + sp.width * wr[:, 1]
        lost = wy > 0.98  # below the frame: not detected
        lost |= (wy > 0.9) & (rng.random(total) < 0.7)
        lost |= rng.random(total) < sp.drop_rate
        if rng.random() < 0.3:  # a burst of missed detections
            start = int(rng.integers(0, total))
            lost[start : start + int(rng.integers(2, 6))] = True
        img[lost, part.start : part.stop] = np.nan
    out = img.astype(np.float32)
    if sp.left_handed:
        out = layouts.mirror_clip(out)
    return out


def config_from_mapping(data: Mapping[str, Any]) -> SyntheticConfig:
    """Build a config from a mapping (TOML table) with the keys of :class:`SyntheticConfig`."""
    known = {f.name for f in fields(SyntheticConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataError(f"synthetic: unknown keys {unknown}; known: {sorted(known)}")
    kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return SyntheticConfig(**kw)
