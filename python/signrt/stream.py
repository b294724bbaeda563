"""Stream: live landmark frames in, sign events out.

A :class:`Stream` keeps the clock, the frame counters and the lock; what to classify and
when to emit is decided by one of two decision classes, one per mode:

* :class:`WindowDecision` (``mode="window"``): the last W = max_len frames in the native
  streaming window; every ``stride`` frames the window is classified; a label whose score
  is >= ``threshold`` in ``confirm`` consecutive classifications is emitted once, unless
  the same label was emitted less than ``cooldown`` seconds before;
* :class:`SegmentDecision` (``mode="segment"``): activity detection; a segment runs from
  the first moving-hand frame until ``rest_frames`` quiet frames and is classified as one
  clip. Hand motion is measured in shoulder widths per frame by default, so the threshold
  does not depend on the signer's distance to the camera.

Window mode classifies only while a hand is visible (``require_hand``): with the hands out
of view the pose alone is no sign, and classifying it raised false events on real rest
(benches/results/stream.md).

Thresholds compare the recognizer's probabilities, which are calibrated when the model
carries a temperature (``signrt.model`` calibration); a classification whose top-1 is the
model's background class (``__background__``, :data:`~signrt.results.BACKGROUND_LABEL`)
counts as one below the threshold, so it is never emitted.

The defaults below are the Stream's own; a model whose metadata carries tuned stream
settings (``signrt.stream``, written by ``signrt tune-stream``) gives
:meth:`~signrt.recognizer.Recognizer.stream` its defaults, and explicit options win.

Each mode takes only its own options: an option of the other mode is rejected with a
:class:`~signrt.errors.StreamOptionError`, never silently ignored.

The stream classifies through a :class:`Classifier` (a :class:`~signrt.recognizer.Recognizer`
is one), so this module does not depend on the recognizer.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from . import layouts
from .errors import ShapeError, StreamOptionError
from .features import FeatureStream
from .results import BACKGROUND_LABEL, Event, Latency, TopK
from .spec import FeatureSpec

__all__ = [
    "COMMON_OPTIONS",
    "DEFAULT_CONFIRM",
    "DEFAULT_COOLDOWN",
    "DEFAULT_MOTION_IMAGE",
    "DEFAULT_MOTION_SHOULDER",
    "DEFAULT_STRIDE",
    "DEFAULT_THRESHOLD",
    "MOTION_UNITS",
    "SEGMENT_OPTIONS",
    "WINDOW_OPTIONS",
    "Classifier",
    "MotionUnit",
    "SegmentDecision",
    "Stream",
    "StreamMode",
    "WindowDecision",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
StreamMode = Literal["window", "segment"]

#: Default decision settings of a window-mode :class:`Stream` (the daemon uses the same).
DEFAULT_STRIDE: Final = 4
DEFAULT_THRESHOLD: Final = 0.6
DEFAULT_CONFIRM: Final = 2
DEFAULT_COOLDOWN: Final = 1.0
_WINDOW_MIN_FRAMES: Final = 8
_SEGMENT_MIN_FRAMES: Final = 6
_REST_FRAMES: Final = 12
#: Segment mode: hand motion per frame that counts as moving, in shoulder widths (the
#: threshold that best separated signing from rest frames on INCLUDE validation streams)
#: and in image units (the previous fixed threshold, for ``motion_unit="image"``).
DEFAULT_MOTION_SHOULDER: Final = 0.020
DEFAULT_MOTION_IMAGE: Final = 0.004
#: Shoulder width (image units) assumed until a frame shows both shoulders.
_NOMINAL_SHOULDER: Final = 0.25
MOTION_UNITS: Final = ("shoulder", "image")
MotionUnit = Literal["shoulder", "image"]

#: Options only window mode takes, and only segment mode takes (``threshold``,
#: ``min_frames``, ``fps`` and ``top_k`` belong to both).
WINDOW_OPTIONS: Final = ("stride", "confirm", "cooldown", "require_hand")
SEGMENT_OPTIONS: Final = ("rest_frames", "motion_threshold", "motion_unit", "max_frames")
#: Options both modes take.
COMMON_OPTIONS: Final = ("threshold", "min_frames", "fps", "top_k")

_LEFT = slice(layouts.LEFT_HAND.start, layouts.LEFT_HAND.stop)
_RIGHT = slice(layouts.RIGHT_HAND.start, layouts.RIGHT_HAND.stop)
# wrist (0), middle-finger base (9) and tip (12) of each hand
_HAND_PROBES: Final = tuple(h.start + k for h in (layouts.LEFT_HAND, layouts.RIGHT_HAND)
                            for k in (0, 9, 12))  # fmt: skip
_SHOULDER_L = layouts.POSE.start + 11
_SHOULDER_R = layouts.POSE.start + 12


class Classifier(Protocol):
    """What a stream needs from a recognizer."""

    @property
    def spec(self) -> FeatureSpec:
        """The FeatureSpec of the model."""
        ...

    top_k: int

    def preprocess(self, clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Features (L, F) and mask (L,) of one clip."""
        ...

    def classify_features(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> list[TopK]:
        """Top-k of each row of (B, L, F) features and (B, L) mask."""
        ...


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise StreamOptionError(message)


def _classify(rec: Classifier, feats: FloatArray, mask: FloatArray, top_k: int
              ) -> tuple[TopK, float]:
    t0 = time.perf_counter()
    topk = rec.classify_features(feats[None], mask[None], top_k=top_k)[0]
    return topk, (time.perf_counter() - t0) * 1e3


def _hand_centre(frame: npt.NDArray[Any], part: slice) -> npt.NDArray[np.float64] | None:
    xy = frame[part, :2]
    ok = np.isfinite(xy).all(axis=1)
    if not ok.any():
        return None
    return xy[ok].mean(axis=0, dtype=np.float64)  # type: ignore[no-any-return]


def _hand_visible(frame: npt.NDArray[Any]) -> bool:
    """Whether a hand is in view.

    A hand is in view when its wrist, middle-finger base or middle-finger tip has a finite
    x (hand trackers report a hand whole or not at all; six scalar reads keep this at a
    fraction of a microsecond).
    """
    a, b, c, d, e, f = _HAND_PROBES
    isfin = math.isfinite
    return (isfin(frame[a, 0]) or isfin(frame[d, 0]) or isfin(frame[b, 0])
            or isfin(frame[e, 0]) or isfin(frame[c, 0]) or isfin(frame[f, 0]))  # fmt: skip


# ------------------------------------------------------------------------ window mode
class WindowDecision:
    """Window mode: classify the last W frames every ``stride`` frames, confirm, cool down.

    A classification below the threshold, another label, or a frame without a signer
    resets the run of confirmations. With ``require_hand`` (the default) a frame counts as
    having a signer only when a hand is visible: pose-only frames enter the window but are
    never classified and break the run.

    Attributes:
        stride, threshold, confirm, cooldown, min_frames, require_hand, top_k: The settings.
        engine_calls: Classifications run so far.
    """

    def __init__(
        self,
        rec: Classifier,
        *,
        stride: int = DEFAULT_STRIDE,
        threshold: float = DEFAULT_THRESHOLD,
        confirm: int = DEFAULT_CONFIRM,
        cooldown: float = DEFAULT_COOLDOWN,
        min_frames: int = _WINDOW_MIN_FRAMES,
        require_hand: bool = True,
        top_k: int = 5,
    ) -> None:
        """Set up an empty window.

        Args:
            rec: The classifier.
            stride: Classify every ``stride`` frames (>= 1).
            threshold: Minimum probability of an emitted label, in [0, 1].
            confirm: Consecutive confirming classifications needed (>= 1).
            cooldown: Seconds before the same label may be emitted again (>= 0).
            min_frames: Frames with a signer needed before classifying (capped at max_len).
            require_hand: Classify only frames with a visible hand (False: any selected
                landmark, the pose alone included, counts as a signer).
            top_k: Size of the events' top-k lists.

        Raises:
            StreamOptionError: On an option out of range.
        """
        _check(isinstance(require_hand, bool),
               f"require_hand must be true or false, got {require_hand!r}")
        _check(stride >= 1, f"stride must be >= 1, got {stride}")
        _check(confirm >= 1, f"confirm must be >= 1, got {confirm}")
        _check(0.0 <= threshold <= 1.0, f"threshold must be in [0, 1], got {threshold}")
        _check(cooldown >= 0, f"cooldown must be >= 0, got {cooldown}")
        spec = rec.spec
        self._rec = rec
        self.stride = stride
        self.threshold = float(threshold)
        self.confirm = confirm
        self.cooldown = float(cooldown)
        self.min_frames = min(max(1, min_frames), spec.max_len)
        self.require_hand = require_hand
        self.top_k = top_k
        self.engine_calls = 0
        self._window = FeatureStream(spec)
        self._ts: deque[float] = deque(maxlen=spec.max_len)
        self._valid: deque[bool] = deque(maxlen=spec.max_len)
        self.reset()

    def reset(self) -> None:
        """Forget the window, the run of confirmations and the cooldowns."""
        self._window.reset()
        self._ts.clear()
        self._valid.clear()
        self._since_reset = 0
        self._cand: str | None = None
        self._streak = 0
        self._streak_scores: list[float] = []
        self._streak_start = 0.0
        self._last_emit: dict[str, float] = {}

    def flush(self) -> list[Event]:
        """End of input: nothing is pending in window mode; the run of confirmations ends."""
        self._streak, self._cand = 0, None
        return []

    def push(self, frame: npt.NDArray[Any], ts: float, has_signer: bool) -> list[Event]:
        """Add one frame; return the event it confirms, if any."""
        if has_signer and self.require_hand:
            has_signer = _hand_visible(frame)
        self._window.push(frame)
        self._ts.append(ts)
        self._valid.append(has_signer)
        self._since_reset += 1
        if not has_signer:
            self._streak, self._cand = 0, None
            return []
        if self._since_reset % self.stride != 0:
            return []
        n_valid = sum(self._valid)
        if n_valid < self.min_frames:
            return []
        t0 = time.perf_counter()
        feats, mask = self._window.features()
        pre_ms = (time.perf_counter() - t0) * 1e3
        topk, inf_ms = _classify(self._rec, feats, mask, self.top_k)
        self.engine_calls += 1
        label, score = topk[0]
        if score < self.threshold or label == BACKGROUND_LABEL:  # the background: no sign
            self._streak, self._cand = 0, None
            return []
        if label != self._cand:
            self._cand = label
            self._streak = 0
            self._streak_scores = []
            self._streak_start = next(t for t, v in zip(self._ts, self._valid, strict=True) if v)
        self._streak += 1
        self._streak_scores.append(score)
        if self._streak != self.confirm:
            return []
        last = self._last_emit.get(label)
        if last is not None and ts - last < self.cooldown:
            return []
        self._last_emit[label] = ts
        return [
            Event(
                kind="sign",
                label=label,
                score=float(np.mean(self._streak_scores)),
                start=self._streak_start,
                end=ts,
                latency=Latency(pre_ms, inf_ms),
                topk=topk,
                frames=n_valid,
            )
        ]


# ----------------------------------------------------------------------- segment mode
class SegmentDecision:
    """Segment mode: activity detection, one classification per segment.

    A frame is *active* when a hand is visible and its centre moved more than
    ``motion_threshold`` since the previous frame, measured in shoulder widths (the
    distance between pose landmarks 11 and 12 of the frame, or of the last frame that
    showed both shoulders; ``motion_unit="shoulder"``, the default) or in image units
    (``motion_unit="image"``). An active frame starts a segment; ``rest_frames`` inactive
    frames in a row end it; the segment without those trailing frames is classified as one
    clip and emitted if it has at least ``min_frames`` frames and its score is >=
    ``threshold``. A segment reaching ``max_frames`` is classified at once.

    Attributes:
        rest_frames, motion_threshold, motion_unit, min_frames, max_frames, threshold,
            top_k: Settings.
        engine_calls: Classifications run so far.
    """

    def __init__(
        self,
        rec: Classifier,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        rest_frames: int = _REST_FRAMES,
        motion_threshold: float | None = None,
        motion_unit: MotionUnit = "shoulder",
        min_frames: int = _SEGMENT_MIN_FRAMES,
        max_frames: int | None = None,
        top_k: int = 5,
    ) -> None:
        """Set up with no open segment.

        Args:
            rec: The classifier.
            threshold: Minimum probability of an emitted label, in [0, 1].
            rest_frames: Inactive frames that end a segment (>= 1).
            motion_threshold: Hand-centre displacement per frame that counts as moving, in
                ``motion_unit`` (default 0.020 shoulder widths, or 0.004 image units).
            motion_unit: ``shoulder`` (shoulder widths per frame) or ``image``.
            min_frames: Shortest segment that is classified.
            max_frames: Longest segment (default 4 x max_len).
            top_k: Size of the events' top-k lists.

        Raises:
            StreamOptionError: On an option out of range.
        """
        _check(motion_unit in MOTION_UNITS,
               f"motion_unit must be 'shoulder' or 'image', got {motion_unit!r}")
        if motion_threshold is None:
            motion_threshold = (
                DEFAULT_MOTION_SHOULDER if motion_unit == "shoulder" else DEFAULT_MOTION_IMAGE
            )
        _check(rest_frames >= 1, f"rest_frames must be >= 1, got {rest_frames}")
        _check(0.0 <= threshold <= 1.0, f"threshold must be in [0, 1], got {threshold}")
        _check(motion_threshold >= 0, f"motion_threshold must be >= 0, got {motion_threshold}")
        self._rec = rec
        self.threshold = float(threshold)
        self.rest_frames = rest_frames
        self.motion_threshold = float(motion_threshold)
        self.motion_unit: MotionUnit = motion_unit
        self.min_frames = max(1, min_frames)
        self.max_frames = max(1, max_frames if max_frames is not None else 4 * rec.spec.max_len)
        self.top_k = top_k
        self.engine_calls = 0
        self.reset()

    def reset(self) -> None:
        """Drop the open segment and the remembered shoulder width."""
        self._seg: list[npt.NDArray[Any]] = []
        self._seg_ts: list[float] = []
        self._quiet = 0
        self._prev_hands: tuple[Any, Any] = (None, None)
        self._shoulder = _NOMINAL_SHOULDER

    def flush(self) -> list[Event]:
        """End of input: classify the open segment, if any."""
        return self._close(trim=self._quiet) if self._seg else []

    def _limit(self, frame: npt.NDArray[Any]) -> float:
        """The displacement (image units) above which this frame's hands move."""
        if self.motion_unit == "image":
            return self.motion_threshold
        dx = float(frame[_SHOULDER_L, 0]) - float(frame[_SHOULDER_R, 0])
        dy = float(frame[_SHOULDER_L, 1]) - float(frame[_SHOULDER_R, 1])
        w = math.hypot(dx, dy)
        if w > 1e-6:  # False for NaN (a shoulder not seen): keep the last width
            self._shoulder = w
        return self.motion_threshold * self._shoulder

    def push(self, frame: npt.NDArray[Any], ts: float, has_signer: bool) -> list[Event]:
        """Add one frame; return the event of the segment it closes, if any."""
        hands = (_hand_centre(frame, _LEFT), _hand_centre(frame, _RIGHT))
        moving = False
        if hands[0] is not None or hands[1] is not None:
            limit = self._limit(frame)
            moving = any(
                prev is not None and cur is not None
                and float(np.hypot(*(cur - prev))) > limit
                for prev, cur in zip(self._prev_hands, hands, strict=True)
            )  # fmt: skip
        self._prev_hands = hands
        if not self._seg:
            if moving:
                self._seg = [np.array(frame, copy=True)]
                self._seg_ts = [ts]
                self._quiet = 0
            return []
        self._seg.append(np.array(frame, copy=True))
        self._seg_ts.append(ts)
        self._quiet = 0 if moving else self._quiet + 1
        if self._quiet >= self.rest_frames:
            return self._close(trim=self._quiet)
        if len(self._seg) >= self.max_frames:
            return self._close(trim=0)
        return []

    def _close(self, trim: int) -> list[Event]:
        n = len(self._seg) - trim
        frames, stamps = self._seg[:n], self._seg_ts[:n]
        self._seg, self._seg_ts, self._quiet = [], [], 0
        if n < self.min_frames:
            log.debug("segment of %d frames is shorter than min_frames; ignored", n)
            return []
        t0 = time.perf_counter()
        feats, mask = self._rec.preprocess(np.stack(frames))
        pre_ms = (time.perf_counter() - t0) * 1e3
        if not mask.any():
            return []
        topk, inf_ms = _classify(self._rec, feats, mask, self.top_k)
        self.engine_calls += 1
        label, score = topk[0]
        if score < self.threshold or label == BACKGROUND_LABEL:  # the background: no sign
            return []
        return [
            Event(
                kind="sign",
                label=label,
                score=score,
                start=stamps[0],
                end=stamps[-1],
                latency=Latency(pre_ms, inf_ms),
                topk=topk,
                frames=n,
            )
        ]


# ----------------------------------------------------------------------------- stream
class Stream:
    """Live landmark frames in, sign events out (see the module docstring for the modes).

    Frames without a signer (no selected landmark) never reach the engine. Timestamps are
    seconds; when ``push`` gets none, the previous timestamp + 1/``fps`` is used (the
    first frame is 0.0).

    Not meant to be shared between threads (one stream per frame source); ``push`` takes a
    lock so that misuse cannot corrupt its state.

    Attributes:
        mode: ``window`` or ``segment``.
        decision: The mode's :class:`WindowDecision` or :class:`SegmentDecision`; its
            attributes are the settings in use.
        fps: Frame rate assumed for frames pushed without a timestamp.
        frames: Frames pushed so far.
        events: Events emitted so far.
    """

    def __init__(
        self,
        recognizer: Classifier,
        mode: StreamMode = "window",
        *,
        threshold: float = DEFAULT_THRESHOLD,
        min_frames: int | None = None,
        fps: float = 30.0,
        top_k: int | None = None,
        stride: int | None = None,
        confirm: int | None = None,
        cooldown: float | None = None,
        require_hand: bool | None = None,
        rest_frames: int | None = None,
        motion_threshold: float | None = None,
        motion_unit: MotionUnit | None = None,
        max_frames: int | None = None,
    ) -> None:
        """Open a stream (usually through :meth:`Recognizer.stream`).

        Args:
            recognizer: Classifies windows or segments (a Recognizer).
            mode: ``window`` or ``segment``.
            threshold: Minimum probability of an emitted label.
            min_frames: Frames with a signer needed before classifying (window mode,
                default 8, capped at max_len) or in a segment (segment mode, default 6).
            fps: Frame rate assumed for frames pushed without a timestamp.
            top_k: Size of the events' top-k lists (default: the recognizer's).
            stride: Window mode: classify every ``stride`` frames (default 4).
            confirm: Window mode: consecutive confirming classifications needed (2).
            cooldown: Window mode: seconds before the same label may be emitted again (1.0).
            require_hand: Window mode: classify only frames with a visible hand (True).
            rest_frames: Segment mode: inactive frames that end a segment (12).
            motion_threshold: Segment mode: hand-centre displacement per frame that counts
                as moving, in ``motion_unit`` (0.020 shoulder widths; 0.004 image units).
            motion_unit: Segment mode: ``shoulder`` (default) or ``image``.
            max_frames: Segment mode: longest segment (default 4 x max_len).

        Raises:
            StreamOptionError: On an unknown mode, an option out of range, or an option of
                the other mode (e.g. ``stride`` with ``mode="segment"``).
        """
        _check(mode in ("window", "segment"),
               f"mode must be 'window' or 'segment', got {mode!r}")
        _check(fps > 0, f"fps must be > 0, got {fps}")
        _check(top_k is None or top_k >= 1, f"top_k must be >= 1, got {top_k}")
        given = {"stride": stride, "confirm": confirm, "cooldown": cooldown,
                 "require_hand": require_hand, "rest_frames": rest_frames,
                 "motion_threshold": motion_threshold, "motion_unit": motion_unit,
                 "max_frames": max_frames}
        own, other = (WINDOW_OPTIONS, SEGMENT_OPTIONS) if mode == "window" else (
            SEGMENT_OPTIONS, WINDOW_OPTIONS)
        wrong = [name for name in other if given[name] is not None]
        _check(not wrong, f"{', '.join(wrong)}: {'is a' if len(wrong) == 1 else 'are'} "
               f"{'segment' if mode == 'window' else 'window'}-mode option"
               f"{'' if len(wrong) == 1 else 's'}; mode {mode!r} takes {', '.join(own)} "
               "(and threshold, min_frames, fps, top_k)")
        self.mode: StreamMode = mode
        self.fps = float(fps)
        k = top_k or recognizer.top_k
        self.decision: WindowDecision | SegmentDecision
        if mode == "window":
            self.decision = WindowDecision(
                recognizer,
                stride=stride if stride is not None else DEFAULT_STRIDE,
                threshold=threshold,
                confirm=confirm if confirm is not None else DEFAULT_CONFIRM,
                cooldown=cooldown if cooldown is not None else DEFAULT_COOLDOWN,
                min_frames=min_frames if min_frames is not None else _WINDOW_MIN_FRAMES,
                require_hand=require_hand if require_hand is not None else True,
                top_k=k,
            )
        else:
            self.decision = SegmentDecision(
                recognizer,
                threshold=threshold,
                rest_frames=rest_frames if rest_frames is not None else _REST_FRAMES,
                motion_threshold=motion_threshold,
                motion_unit=motion_unit if motion_unit is not None else "shoulder",
                min_frames=min_frames if min_frames is not None else _SEGMENT_MIN_FRAMES,
                max_frames=max_frames,
                top_k=k,
            )
        spec = recognizer.spec
        self._landmarks = np.asarray(spec.landmarks, dtype=np.intp)
        self._coords = spec.coords
        self._lock = threading.Lock()
        self._last_ts: float | None = None
        self.frames = 0
        self.events = 0

    @property
    def engine_calls(self) -> int:
        """Classifications run so far."""
        return self.decision.engine_calls

    @property
    def threshold(self) -> float:
        """Minimum probability of an emitted label."""
        return self.decision.threshold

    @property
    def min_frames(self) -> int:
        """Frames with a signer needed (window) or shortest segment classified (segment)."""
        return self.decision.min_frames

    @property
    def top_k(self) -> int:
        """Size of the events' top-k lists."""
        return self.decision.top_k

    def reset(self) -> None:
        """Forget the window, the current segment and the cooldowns (e.g. a new session)."""
        with self._lock:
            self.decision.reset()
            self._last_ts = None

    def _timestamp(self, timestamp: float | None) -> float:
        if timestamp is None:
            ts = 0.0 if self._last_ts is None else self._last_ts + 1.0 / self.fps
        else:
            ts = float(timestamp)
        self._last_ts = ts
        return ts

    def push(self, frame: npt.ArrayLike, timestamp: float | None = None) -> list[Event]:
        """Add one frame; return the events it completes (usually none).

        Args:
            frame: (543, 3) landmarks of one camera frame (NaN where missing).
            timestamp: Its time in seconds (default: previous + 1/fps).

        Returns:
            Events decided by this frame, oldest first.

        Raises:
            ShapeError: If the frame is not (543, 3).
        """
        f = np.asarray(frame)
        if f.shape != (layouts.NUM_LANDMARKS, 3):
            raise ShapeError(
                f"expected one frame of shape ({layouts.NUM_LANDMARKS}, 3), got {f.shape}"
            )
        with self._lock:
            ts = self._timestamp(timestamp)
            self.frames += 1
            has_signer = bool(np.isfinite(f[self._landmarks, : self._coords]).any())
            out = self.decision.push(f, ts, has_signer)
            self.events += len(out)
            return out

    def flush(self) -> list[Event]:
        """End of input: classify the open segment (segment mode); window mode emits nothing.

        Returns:
            The events of the closed segment, if any.
        """
        with self._lock:
            out = self.decision.flush()
            self.events += len(out)
            return out

    def __repr__(self) -> str:
        return f"Stream(mode={self.mode!r}, frames={self.frames}, events={self.events})"
