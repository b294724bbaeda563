"""Continuous landmark streams built from isolated clips, with synthetic rest between signs.

Real isolated-sign clips are trimmed to the sign. To measure live recognition on them, clips
are joined into continuous streams: a stretch of *rest* before the first sign, between two
signs and after the last one. The rest frames are synthesised from the clips' own pose and
hand positions (never from a template), so the body, its size and its place in the image
stay those of the signer in the neighbouring clip.

Rest kinds (``RestKind``):

``out_of_view``
    The hands have dropped below the image: both hand blocks are missing (NaN) and the body
    stays in view. The torso (every pose point but the arms) moves linearly from the last
    frame of the sign before to the first frame of the sign after; the pose wrists and pose
    hand points (pose 15-22) sit below the image bottom (y = 1.08), the elbows halfway
    between the shoulders and the hips.
``low_in_view``
    The hands rest low in view. Each hand's rest position and shape are taken from the
    clip itself: the frame of the clip in which that hand's wrist is lowest (largest image
    y), which in trimmed clips is the start or end of the sign where the hands hang at rest.
    The hands move there from the sign's last frame in ``transition`` seconds, hold, and
    move from there to the next sign's first frame in ``transition`` seconds (linear
    interpolation of every landmark). A hand never seen in the clip stays missing.
``idle``
    As ``low_in_view``, plus small idle movements while resting: each hand drifts by the sum
    of two slow sinusoids (periods 1.5-4 s, random phases, amplitude ``idle_amplitude / 4``
    each) and a slow random walk clipped to ``idle_amplitude / 2``, so it stays within
    ``idle_amplitude`` image units of its rest position; the torso sways by a tenth of the
    first hand's drift.

Every rest frame also gets per-landmark jitter of ``noise`` image units (standard
deviation), as a landmark detector gives on a still person. The transition frames belong
to the rest (non-signing) time. Pose wrists are paired with hand blocks by data: the pose
wrist (15 or 16) nearest to the hand block's wrist over the clip, since datasets differ in
whether the "left hand" is the subject's left or the hand on the image left.

Example:
    >>> cfg = StreamConfig(rest=0.6, rest_kind="out_of_view")
    >>> streams = build_streams(clips, labels, cfg)          # list[JoinedStream]
    >>> streams[0].frames.shape, streams[0].signs[0]         # (T, 543, 3), TrueSign(...)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from .. import layouts
from ..errors import OptionError, ShapeError

__all__ = [
    "REST_KINDS",
    "JoinedStream",
    "RestKind",
    "StreamConfig",
    "TrueSign",
    "build_idle_stream",
    "build_streams",
    "rest_frames",
]

FloatArray = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
RestKind = Literal["out_of_view", "low_in_view", "idle"]
REST_KINDS: Final[tuple[str, ...]] = ("out_of_view", "low_in_view", "idle")

_POSE0: Final = layouts.POSE.start
_LH: Final = slice(layouts.LEFT_HAND.start, layouts.LEFT_HAND.stop)
_RH: Final = slice(layouts.RIGHT_HAND.start, layouts.RIGHT_HAND.stop)
_HANDS: Final = (_LH, _RH)
# pose points that follow each pose wrist (wrist, pinky, index, thumb) and the elbows
_ARM_POINTS: Final[dict[int, tuple[int, ...]]] = {15: (15, 17, 19, 21), 16: (16, 18, 20, 22)}
_ELBOW: Final[dict[int, int]] = {15: 13, 16: 14}
_SHOULDER: Final[dict[int, int]] = {15: 11, 16: 12}
_HIP: Final[dict[int, int]] = {15: 23, 16: 24}
_BELOW_IMAGE_Y: Final = 1.08


@dataclass(frozen=True)
class StreamConfig:
    """How clips are joined into streams.

    Attributes:
        rest: Seconds of rest between two signs.
        rest_kind: ``out_of_view``, ``low_in_view`` or ``idle`` (see the module docs).
        lead: Seconds of rest before the first sign of a stream.
        tail: Seconds of rest after the last sign (room for late decisions).
        signs_per_stream: Clips per stream (the last stream may hold fewer).
        fps: Frame rate of the clips and the stream (timestamps are frame / fps).
        transition: Seconds the hands take between a sign and the rest position (in-view
            kinds), capped at a third of the rest.
        idle_amplitude: Peak drift of the hands in ``idle`` rest (image units).
        noise: Standard deviation of the per-landmark jitter in rest frames (image units).
        seed: Seed of the clip order and the rest randomness.
    """

    rest: float = 0.6
    rest_kind: RestKind = "out_of_view"
    lead: float = 1.0
    tail: float = 2.0
    signs_per_stream: int = 10
    fps: float = 25.0
    transition: float = 0.2
    idle_amplitude: float = 0.015
    noise: float = 0.001
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rest_kind not in REST_KINDS:
            raise OptionError(
                f"rest_kind must be one of {', '.join(REST_KINDS)}, got {self.rest_kind!r}"
            )
        if self.rest < 0 or self.lead < 0 or self.tail < 0 or self.transition < 0:
            raise OptionError("rest, lead, tail and transition must be >= 0 seconds")
        if self.signs_per_stream < 1:
            raise OptionError(f"signs_per_stream must be >= 1, got {self.signs_per_stream}")
        if self.fps <= 0:
            raise OptionError(f"fps must be > 0, got {self.fps}")
        if self.idle_amplitude < 0 or self.noise < 0:
            raise OptionError("idle_amplitude and noise must be >= 0")

    def frames(self, seconds: float) -> int:
        """Whole frames in ``seconds`` at ``fps``."""
        return round(seconds * self.fps)


@dataclass(frozen=True)
class TrueSign:
    """One sign placed in a stream.

    Attributes:
        label: Its sign name.
        start: Timestamp of its first frame (seconds).
        end: Timestamp of its last frame.
        known: False for an out-of-vocabulary sign (a word the model was not trained on).
        clip: Index of the source clip in the list given to :func:`build_streams`.
    """

    label: str
    start: float
    end: float
    known: bool = True
    clip: int = -1


@dataclass
class JoinedStream:
    """A continuous stream: frames, their timestamps and the signs in it.

    Attributes:
        name: A short name (``known-0``, ``unknown-2``, ``idle`` ...).
        frames: (T, 543, 3) float32 landmarks.
        timestamps: (T,) float64 seconds, frame / fps.
        signs: The signs in the stream, in time order.
        signing: (T,) bool, True on frames that belong to a sign.
    """

    name: str
    frames: FloatArray
    timestamps: F64
    signs: list[TrueSign] = field(default_factory=list)
    signing: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def duration(self) -> float:
        """Seconds covered by the stream (number of frames / fps)."""
        if self.timestamps.size < 2:
            return 0.0
        return float(self.timestamps[-1] - self.timestamps[0]) * (
            self.timestamps.size / (self.timestamps.size - 1)
        )


# ------------------------------------------------------------------------ clip anatomy
def _finite_rows(x: F64) -> npt.NDArray[np.bool_]:
    return np.isfinite(x).all(axis=-1)  # type: ignore[no-any-return]


def _hand_visible(clip: FloatArray, hand: slice) -> npt.NDArray[np.bool_]:
    """(T,) True where the hand block has at least its wrist point."""
    return np.isfinite(clip[:, hand.start, :2]).all(axis=-1)  # type: ignore[no-any-return]


def _pose_wrist_of(clip: FloatArray, hand: slice, default: int) -> int:
    """The pose wrist (15 or 16) closest to the hand block's wrist over the clip."""
    wrist = clip[:, hand.start, :2].astype(np.float64)  # (T, 2)
    best, best_d = default, math.inf
    for k in (15, 16):
        d = np.linalg.norm(wrist - clip[:, _POSE0 + k, :2], axis=-1)
        d = d[np.isfinite(d)]
        if d.size and float(d.mean()) < best_d:
            best, best_d = k, float(d.mean())
    return best


@dataclass(frozen=True)
class _RestPose:
    """Where the hands of one clip rest: a full hand block per hand (or None)."""

    hands: tuple[F64 | None, F64 | None]  # (21, 3) per hand block
    wrist_of: tuple[int, int]  # pose wrist paired with each hand block


def _rest_pose(clip: FloatArray) -> _RestPose:
    hands: list[F64 | None] = []
    for hand in _HANDS:
        vis = _hand_visible(clip, hand)
        if not vis.any():
            hands.append(None)
            continue
        ys = np.where(vis, clip[:, hand.start, 1], -np.inf)
        t = int(np.argmax(ys))
        block = clip[t, hand].astype(np.float64)
        # a detector misses single points more than whole hands: fill them from the wrist
        bad = ~_finite_rows(block)
        block[bad] = block[0]
        hands.append(block)
    wrists = (_pose_wrist_of(clip, _LH, 16), _pose_wrist_of(clip, _RH, 15))
    if wrists[0] == wrists[1]:
        wrists = (wrists[0], 31 - wrists[0])  # 15 <-> 16
    return _RestPose((hands[0], hands[1]), wrists)


def _edge_frame(clip: FloatArray, last: bool) -> FloatArray:
    """The first (or last) frame of the clip with a finite pose, else the edge frame."""
    pose = clip[:, layouts.POSE.start : layouts.POSE.stop, :2]
    ok = np.flatnonzero(np.isfinite(pose).any(axis=(1, 2)))
    if ok.size == 0:
        return np.asarray(clip[-1 if last else 0], dtype=np.float32)
    return np.asarray(clip[int(ok[-1] if last else ok[0])], dtype=np.float32)


# -------------------------------------------------------------------------- synthesis
def _lerp(a: F64, b: F64, w: F64) -> F64:
    """Per-frame linear interpolation a -> b; where one side is missing the other is kept.

    a, b: (P, 3); w: (n,) in [0, 1]. Returns (n, P, 3).
    """
    a2 = np.where(np.isfinite(a), a, b)
    b2 = np.where(np.isfinite(b), b, a)
    return a2[None] + (b2 - a2)[None] * w[:, None, None]  # type: ignore[no-any-return]


def _place_arm(frame: F64, wrist: int, target: F64 | None, base: FloatArray) -> None:
    """Move the pose wrist (and its hand points) of ``frame`` to ``target`` (xy)."""
    if target is None:
        return
    w0 = base[_POSE0 + wrist, :2].astype(np.float64)
    for k in _ARM_POINTS[wrist]:
        off = base[_POSE0 + k, :2] - w0
        off = np.where(np.isfinite(off), off, 0.0)
        frame[_POSE0 + k, :2] = target + off


def rest_frames(
    before: FloatArray | None,
    after: FloatArray | None,
    n: int,
    kind: RestKind,
    rng: np.random.Generator,
    *,
    fps: float = 25.0,
    transition: float = 0.2,
    idle_amplitude: float = 0.015,
    noise: float = 0.001,
) -> FloatArray:
    """Synthesise ``n`` rest frames between two clips (either may be None at stream ends).

    Args:
        before: The clip before the rest, (T, 543, 3), or None.
        after: The clip after the rest, or None.
        n: Number of frames.
        kind: The rest kind (see the module docs).
        rng: Random generator for the idle movement and the jitter.
        fps: Frame rate.
        transition: Seconds between sign and rest position (in-view kinds).
        idle_amplitude: Peak idle drift (image units).
        noise: Per-landmark jitter (image units).

    Returns:
        (n, 543, 3) float32 frames.

    Raises:
        OptionError: If both clips are None.
    """
    if before is None and after is None:
        raise OptionError("rest_frames needs the clip before or the clip after the rest")
    out = np.full((n, layouts.NUM_LANDMARKS, 3), np.nan, dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    start = _edge_frame(before, last=True) if before is not None else None
    stop = _edge_frame(after, last=False) if after is not None else None
    a = start if start is not None else stop
    b = stop if stop is not None else start
    assert a is not None and b is not None
    w = np.linspace(0.0, 1.0, n + 2)[1:-1]  # (n,) strictly inside (0, 1)
    pose = slice(layouts.POSE.start, layouts.POSE.stop)
    out[:, pose] = _lerp(a[pose].astype(np.float64), b[pose].astype(np.float64), w)
    src = before if before is not None else after
    assert src is not None
    rp = _rest_pose(src)
    if kind == "out_of_view":
        for wrist in rp.wrist_of:
            sh = out[:, _POSE0 + _SHOULDER[wrist], :2]
            hip = out[:, _POSE0 + _HIP[wrist], :2]
            hip = np.where(np.isfinite(hip), hip, sh + np.array([0.0, 0.35]))
            for k in _ARM_POINTS[wrist]:
                out[:, _POSE0 + k, 0] = sh[:, 0]
                out[:, _POSE0 + k, 1] = _BELOW_IMAGE_Y + 0.02 * (k != wrist)
            out[:, _POSE0 + _ELBOW[wrist], :2] = (sh + hip) / 2.0
    else:
        n_tr = min(round(transition * fps), n // 3)
        hold = np.zeros((n, 2))  # idle drift of one hand, (n, xy)
        for h, (hand, block, wrist) in enumerate(zip(_HANDS, rp.hands, rp.wrist_of, strict=True)):
            if block is None:
                continue
            rest = np.repeat(block[None], n, axis=0)  # (n, 21, 3)
            if kind == "idle":
                t = np.arange(n) / fps
                drift = np.zeros((n, 2))
                for _ in range(2):
                    period = rng.uniform(1.5, 4.0)
                    phase = rng.uniform(0, 2 * np.pi, size=2)
                    drift += np.sin(2 * np.pi * t[:, None] / period + phase) * (
                        idle_amplitude / 4.0
                    )
                walk = np.cumsum(rng.normal(0.0, idle_amplitude / 20.0, size=(n, 2)), axis=0)
                drift += np.clip(walk, -idle_amplitude / 2, idle_amplitude / 2)
                rest[:, :, :2] += drift[:, None, :]
                if h == 0:
                    hold = drift
            if before is not None and n_tr:
                last = before[-1, hand].astype(np.float64)
                if np.isfinite(last[:, :2]).all():
                    u = np.linspace(0.0, 1.0, n_tr + 1)[1:]
                    rest[:n_tr] = last[None] + (rest[:n_tr] - last[None]) * u[:, None, None]
            if after is not None and n_tr:
                first = after[0, hand].astype(np.float64)
                if np.isfinite(first[:, :2]).all():
                    u = np.linspace(0.0, 1.0, n_tr + 1)[:-1][::-1]
                    rest[n - n_tr :] = first[None] + (rest[n - n_tr :] - first[None]) * u[
                        :, None, None
                    ]
            out[:, hand] = rest
            base = before[-1] if before is not None else a
            for i in range(n):
                _place_arm(out[i], wrist, rest[i, 0, :2], base)
        if kind == "idle":
            sway = hold / 10.0
            body = [k for k in range(33) if k not in (13, 14, *_ARM_POINTS[15], *_ARM_POINTS[16])]
            for k in body:
                out[:, _POSE0 + k, :2] += sway
    if noise > 0:
        out += rng.normal(0.0, noise, size=out.shape)
    return out.astype(np.float32)


def _group_order(
    n: int, groups: Sequence[object] | None, per_stream: int, rng: np.random.Generator
) -> list[list[int]]:
    """Clip indices per stream: shuffled, one group (signer/session) per stream if given."""
    if groups is None:
        order = rng.permutation(n).tolist()
        return [order[i : i + per_stream] for i in range(0, n, per_stream)]
    by_group: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    out: list[list[int]] = []
    for g in sorted(by_group, key=str):
        idx = [by_group[g][j] for j in rng.permutation(len(by_group[g])).tolist()]
        out += [idx[i : i + per_stream] for i in range(0, len(idx), per_stream)]
    return out


def build_streams(
    clips: Sequence[FloatArray],
    labels: Sequence[str],
    config: StreamConfig,
    *,
    known: Sequence[bool] | None = None,
    groups: Sequence[object] | None = None,
    name: str = "stream",
) -> list[JoinedStream]:
    """Join clips into continuous streams with synthetic rest between the signs.

    Args:
        clips: (T_i, 543, 3) clips, one sign each (trimmed to the sign).
        labels: The sign of each clip.
        config: Rest length and kind, stream length, frame rate, seed.
        known: Per clip, False for an out-of-vocabulary sign (default all True).
        groups: Optional signer/session of each clip: a stream then holds clips of one
            group only (the same person), which keeps the body in place between signs.
        name: Prefix of the stream names.

    Returns:
        The streams, each starting and ending with rest.

    Raises:
        ShapeError: If the lists differ in length or a clip is not (T, 543, 3) with T >= 1.
    """
    if len(clips) != len(labels) or (known is not None and len(known) != len(clips)):
        raise ShapeError("clips, labels (and known) must have the same length")
    if groups is not None and len(groups) != len(clips):
        raise ShapeError("groups must have one entry per clip")
    for i, c in enumerate(clips):
        if c.ndim != 3 or c.shape[1:] != (layouts.NUM_LANDMARKS, 3) or c.shape[0] < 1:
            raise ShapeError(f"clip {i}: expected (T, 543, 3) with T >= 1, got {c.shape}")
    rng = np.random.default_rng(config.seed)
    streams: list[JoinedStream] = []
    for s, idx in enumerate(_group_order(len(clips), groups, config.signs_per_stream, rng)):
        parts: list[FloatArray] = []
        signing: list[npt.NDArray[np.bool_]] = []
        signs: list[TrueSign] = []
        t = 0
        prev: FloatArray | None = None
        for j, i in enumerate(idx):
            n_rest = config.frames(config.lead if j == 0 else config.rest)
            parts.append(_rest(prev, clips[i], n_rest, config, rng))
            signing.append(np.zeros(n_rest, dtype=bool))
            t += n_rest
            c = np.asarray(clips[i], dtype=np.float32)
            parts.append(c)
            signing.append(np.ones(len(c), dtype=bool))
            signs.append(
                TrueSign(
                    label=labels[i],
                    start=t / config.fps,
                    end=(t + len(c) - 1) / config.fps,
                    known=True if known is None else bool(known[i]),
                    clip=i,
                )
            )
            t += len(c)
            prev = c
        n_tail = config.frames(config.tail)
        parts.append(_rest(prev, None, n_tail, config, rng))
        signing.append(np.zeros(n_tail, dtype=bool))
        frames = np.concatenate(parts, axis=0)
        streams.append(
            JoinedStream(
                name=f"{name}-{s}",
                frames=frames,
                timestamps=np.arange(len(frames), dtype=np.float64) / config.fps,
                signs=signs,
                signing=np.concatenate(signing),
            )
        )
    return streams


def _rest(
    before: FloatArray | None,
    after: FloatArray | None,
    n: int,
    config: StreamConfig,
    rng: np.random.Generator,
) -> FloatArray:
    return rest_frames(
        before,
        after,
        n,
        config.rest_kind,
        rng,
        fps=config.fps,
        transition=config.transition,
        idle_amplitude=config.idle_amplitude,
        noise=config.noise,
    )


def build_idle_stream(
    clips: Sequence[FloatArray],
    config: StreamConfig,
    seconds: float,
    *,
    hold: float = 5.0,
    name: str = "idle",
) -> JoinedStream:
    """A stream of rest only: ``seconds`` of rest of ``config.rest_kind``, no sign.

    The rest poses cycle through the clips (``hold`` seconds each); the person shifts from
    one rest pose into the next over one second (linear), so the rest covers many bodies
    and hand positions without jumps.

    Args:
        clips: The clips whose rest poses are used.
        config: Rest kind, frame rate, seed.
        seconds: Length of the stream.
        hold: Seconds of rest per clip.
        name: The stream's name.

    Returns:
        The stream (no signs; ``signing`` all False).

    Raises:
        OptionError: If there is no clip or ``seconds`` / ``hold`` is not positive.
    """
    if not clips:
        raise OptionError("build_idle_stream needs at least one clip")
    if seconds <= 0 or hold <= 0:
        raise OptionError("seconds and hold must be > 0")
    rng = np.random.default_rng(config.seed + 7919)
    total = config.frames(seconds)
    per = max(1, config.frames(hold))
    order = rng.permutation(len(clips)).tolist()
    parts: list[FloatArray] = []
    k = 0
    while sum(len(p) for p in parts) < total:
        c = np.asarray(clips[order[k % len(order)]], dtype=np.float32)
        # rest after this clip's sign: hands move from the sign's end into rest; only the
        # rest part (after the transition) is kept
        n_tr = min(config.frames(config.transition), per)
        frames = _rest(c, None, per + n_tr, config, rng)[n_tr:]
        if parts:
            # the person shifts into the next rest pose over one second (no jump)
            n_x = min(config.frames(1.0), len(frames))
            a, b = parts[-1][-1].astype(np.float64), frames[n_x - 1].astype(np.float64)
            w = np.linspace(0.0, 1.0, n_x + 1)[1:]
            frames[:n_x] = _lerp(a, b, w).astype(np.float32)
        parts.append(frames)
        k += 1
    frames = np.concatenate(parts, axis=0)[:total]
    return JoinedStream(
        name=name,
        frames=frames,
        timestamps=np.arange(total, dtype=np.float64) / config.fps,
        signs=[],
        signing=np.zeros(total, dtype=bool),
    )
