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

What the threshold compares is the stream's ``score``:

* ``"probability"`` (the default): the recognizer's top-1 probability, calibrated when the
  model carries a temperature (``signrt.model`` calibration); thresholds in [0, 1];
* ``"energy"``: the top-1's negative free energy ``T * logsumexp(logits / T)`` (T the
  model's temperature; higher means more like the training data), computed with the
  probabilities from the same logits (no extra engine call). Energies are thresholded on
  their own scale, which is the model's (no default: ``signrt tune-stream`` picks one on
  validation streams); on INCLUDE test streams it gave 1-9 F1 points more than the
  calibrated probability, and more unknown-word events in four of six settings
  (benches/results/stream_energy.md).

Either way an event reports the top-1 label and its calibrated probability (window mode: the
mean of the confirming classifications' probabilities). A classification whose top-1 is
the model's background class (``__background__``,
:data:`~signrt.results.BACKGROUND_LABEL`) counts as one below the threshold, so it is never
emitted.

The defaults below are the Stream's own; a model whose metadata carries tuned stream
settings (``signrt.stream``, written by ``signrt tune-stream``) gives
:meth:`~signrt.recognizer.Recognizer.stream` its defaults, and explicit options win.

Each mode takes only its own options: an option of the other mode is rejected with a
:class:`~signrt.errors.StreamOptionError`, never silently ignored.

The per-frame state machines (hand gate, motion detection, stride, confirmation, threshold,
cooldown and rest logic, the clock) run in the native core (``signrt-core``'s ``live``
module, through :class:`signrt._native.WindowDecider` and
:class:`signrt._native.SegmentDecider`): a frame that calls no engine costs one native call.
This module runs the engine when the core says a window or a segment is ready, and turns the
core's decisions into :class:`~signrt.results.Event` objects.

The stream classifies through a :class:`Classifier` (a :class:`~signrt.recognizer.Recognizer`
is one), so this module does not depend on the recognizer.
"""

from __future__ import annotations

import numbers
import threading
import time
from typing import Any, Final, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt

from . import _native
from .errors import StreamOptionError
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
    "SCORE_KINDS",
    "SEGMENT_OPTIONS",
    "WINDOW_OPTIONS",
    "Classifier",
    "EnergyClassifier",
    "MotionUnit",
    "ScoreKind",
    "SegmentDecision",
    "Stream",
    "StreamMode",
    "WindowDecision",
]

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
#: and in image units (the previous fixed threshold, for ``motion_unit="image"``); the
#: native core's defaults.
DEFAULT_MOTION_SHOULDER: Final[float] = _native.DEFAULT_MOTION_SHOULDER
DEFAULT_MOTION_IMAGE: Final[float] = _native.DEFAULT_MOTION_IMAGE
MOTION_UNITS: Final = ("shoulder", "image")
MotionUnit = Literal["shoulder", "image"]
#: What a stream's threshold compares: the top-1 probability or its energy.
SCORE_KINDS: Final = ("probability", "energy")
ScoreKind = Literal["probability", "energy"]

#: Options only window mode takes, and only segment mode takes (``threshold``, ``score``,
#: ``min_frames``, ``fps`` and ``top_k`` belong to both).
WINDOW_OPTIONS: Final = ("stride", "confirm", "cooldown", "require_hand")
SEGMENT_OPTIONS: Final = ("rest_frames", "motion_threshold", "motion_unit", "max_frames")
#: Options both modes take.
COMMON_OPTIONS: Final = ("threshold", "score", "min_frames", "fps", "top_k")

_I64: Final = (-(2**63), 2**63 - 1)


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


class EnergyClassifier(Classifier, Protocol):
    """A classifier that also gives each row's energy (what ``score="energy"`` needs)."""

    def classify_features_energy(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> tuple[list[TopK], npt.NDArray[np.float64]]:
        """Top-k of each row and its energy ``T * logsumexp(logits / T)``, (B,) float64."""
        ...


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise StreamOptionError(message)


def _integer(name: str, value: Any) -> int:
    """An integer option (an integral float such as 2.0 too), clamped to 64 bits."""
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        v = int(float(value))
    else:
        raise StreamOptionError(f"{name} must be an integer, got {value!r}")
    return min(max(v, _I64[0]), _I64[1])


def _real(name: str, value: Any) -> float:
    if not isinstance(value, numbers.Real):
        raise StreamOptionError(f"{name} must be a number, got {value!r}")
    return float(value)


def _decision_value(label: object, value: float) -> float:
    """What the core's threshold sees: ``value``, or -inf (below any threshold) for background.

    ``value`` is a probability or an energy; -inf falls below thresholds of either kind.
    """
    return float("-inf") if label == BACKGROUND_LABEL else value


def _classify(rec: Classifier, feats: FloatArray, mask: FloatArray, top_k: int
              ) -> tuple[TopK, float]:
    t0 = time.perf_counter()
    topk = rec.classify_features(feats[None], mask[None], top_k=top_k)[0]
    return topk, (time.perf_counter() - t0) * 1e3


def _classify_energy(rec: EnergyClassifier, feats: FloatArray, mask: FloatArray, top_k: int
                     ) -> tuple[TopK, float, float]:  # fmt: skip
    t0 = time.perf_counter()
    rows, energy = rec.classify_features_energy(feats[None], mask[None], top_k=top_k)
    return rows[0], float(energy[0]), (time.perf_counter() - t0) * 1e3


def _score_kind(rec: Classifier, score: object, threshold: object) -> tuple[bool, float]:
    """Whether the stream thresholds energies, and the threshold (checked by the core)."""
    _check(isinstance(score, str) and score in SCORE_KINDS,
           f"score must be 'probability' or 'energy', got {score!r}")
    energy = score == "energy"
    if energy:
        _check(callable(getattr(rec, "classify_features_energy", None)),
               f"score='energy' needs a classifier with classify_features_energy; "
               f"{type(rec).__name__} has none")
        _check(threshold is not None,
               "score='energy' needs a threshold on the model's energy scale (there is no "
               "default: `signrt tune-stream` picks one and stores it in the model)")
    return energy, _real("threshold", DEFAULT_THRESHOLD if threshold is None else threshold)


# ------------------------------------------------------------------------ window mode
class WindowDecision:
    """Window mode: classify the last W frames every ``stride`` frames, confirm, cool down.

    A classification below the threshold, another label, or a frame without a signer
    resets the run of confirmations. With ``require_hand`` (the default) a frame counts as
    having a signer only when a hand is visible: pose-only frames enter the window but are
    never classified and break the run. The per-frame decisions run in the native core
    (:class:`signrt._native.WindowDecider`); the engine runs here, when a window is ready.

    Attributes:
        top_k: Size of the events' top-k lists.
    """

    def __init__(
        self,
        rec: Classifier,
        *,
        stride: int = DEFAULT_STRIDE,
        threshold: float | None = None,
        score: ScoreKind = "probability",
        confirm: int = DEFAULT_CONFIRM,
        cooldown: float = DEFAULT_COOLDOWN,
        min_frames: int = _WINDOW_MIN_FRAMES,
        require_hand: bool = True,
        top_k: int = 5,
        fps: float = 30.0,
    ) -> None:
        """Set up an empty window.

        Args:
            rec: The classifier.
            stride: Classify every ``stride`` frames (>= 1).
            threshold: Minimum decision score of an emitted label: a probability in [0, 1]
                (default 0.6), or any finite energy (required) with ``score="energy"``.
            score: What the threshold compares: ``probability`` or ``energy``.
            confirm: Consecutive confirming classifications needed (>= 1).
            cooldown: Seconds before the same label may be emitted again (>= 0).
            min_frames: Frames with a signer needed before classifying (capped at max_len).
            require_hand: Classify only frames with a visible hand (False: any selected
                landmark, the pose alone included, counts as a signer).
            top_k: Size of the events' top-k lists.
            fps: Frame rate assumed for frames pushed without a timestamp (> 0).

        Raises:
            StreamOptionError: On an option out of range.
        """
        _check(isinstance(require_hand, bool),
               f"require_hand must be true or false, got {require_hand!r}")
        self._energy, thr = _score_kind(rec, score, threshold)
        self._rec = rec
        self.top_k = top_k
        self._core = _native.WindowDecider(
            rec.spec.native,
            score=score,
            stride=_integer("stride", stride),
            threshold=thr,
            confirm=_integer("confirm", confirm),
            cooldown=_real("cooldown", cooldown),
            min_frames=_integer("min_frames", min_frames),
            require_hand=require_hand,
            fps=_real("fps", fps),
        )

    @property
    def stride(self) -> int:
        """Classify every ``stride`` frames."""
        return int(self._core.stride)

    @property
    def threshold(self) -> float:
        """Minimum decision score of an emitted label (on the scale of :attr:`score`)."""
        return float(self._core.threshold)

    @property
    def score(self) -> ScoreKind:
        """What the threshold compares: ``probability`` or ``energy``."""
        return "energy" if self._energy else "probability"

    @property
    def confirm(self) -> int:
        """Consecutive confirming classifications needed."""
        return int(self._core.confirm)

    @property
    def cooldown(self) -> float:
        """Seconds before the same label may be emitted again."""
        return float(self._core.cooldown)

    @property
    def min_frames(self) -> int:
        """Frames with a signer needed before classifying (at most max_len)."""
        return int(self._core.min_frames)

    @property
    def require_hand(self) -> bool:
        """Whether only frames with a visible hand count as having a signer."""
        return bool(self._core.require_hand)

    @property
    def engine_calls(self) -> int:
        """Classifications run so far."""
        return int(self._core.engine_calls)

    def reset(self) -> None:
        """Forget the window, the run of confirmations and the cooldowns."""
        self._core.reset()

    def flush(self) -> list[Event]:
        """End of input: nothing is pending in window mode; the run of confirmations ends."""
        self._core.flush()
        return []

    def push(self, frame: npt.ArrayLike, ts: float | None = None) -> list[Event]:
        """Add one (543, 3) frame at ``ts`` seconds; return the event it confirms, if any."""
        return self._classify() if self._core.push(frame, ts) else []

    def _classify(self) -> list[Event]:
        """Classify the ready window and pass the top-1 to the core's decision."""
        t0 = time.perf_counter()
        feats, mask = self._core.features()  # (max_len, F), (max_len,)
        pre_ms = (time.perf_counter() - t0) * 1e3
        if self._energy:
            topk, energy, inf_ms = _classify_energy(
                cast("EnergyClassifier", self._rec), feats, mask, self.top_k)
            label, score = topk[0]
            # the threshold acts on the energy; the event reports the mean probability
            got = self._core.decide(str(label), _decision_value(label, energy), score)
        else:
            topk, inf_ms = _classify(self._rec, feats, mask, self.top_k)
            label, score = topk[0]
            got = self._core.decide(str(label), _decision_value(label, score))
        if got is None:
            return []
        mean, start, end, frames = got
        return [Event(kind="sign", label=label, score=mean, start=start, end=end,
                      latency=Latency(pre_ms, inf_ms), topk=topk, frames=frames)]  # fmt: skip


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
    ``threshold``. A segment reaching ``max_frames`` is classified at once. The per-frame
    decisions run in the native core (:class:`signrt._native.SegmentDecider`); the engine
    runs here, when a segment closes.

    Attributes:
        top_k: Size of the events' top-k lists.
    """

    def __init__(
        self,
        rec: Classifier,
        *,
        threshold: float | None = None,
        score: ScoreKind = "probability",
        rest_frames: int = _REST_FRAMES,
        motion_threshold: float | None = None,
        motion_unit: MotionUnit = "shoulder",
        min_frames: int = _SEGMENT_MIN_FRAMES,
        max_frames: int | None = None,
        top_k: int = 5,
        fps: float = 30.0,
    ) -> None:
        """Set up with no open segment.

        Args:
            rec: The classifier.
            threshold: Minimum decision score of an emitted segment: a probability in
                [0, 1] (default 0.6), or any finite energy (required) with
                ``score="energy"``.
            score: What the threshold compares: ``probability`` or ``energy``.
            rest_frames: Inactive frames that end a segment (>= 1).
            motion_threshold: Hand-centre displacement per frame that counts as moving, in
                ``motion_unit`` (default 0.020 shoulder widths, or 0.004 image units).
            motion_unit: ``shoulder`` (shoulder widths per frame) or ``image``.
            min_frames: Shortest segment that is classified.
            max_frames: Longest segment (default 4 x max_len).
            top_k: Size of the events' top-k lists.
            fps: Frame rate assumed for frames pushed without a timestamp (> 0).

        Raises:
            StreamOptionError: On an option out of range.
        """
        _check(isinstance(motion_unit, str),
               f"motion_unit must be 'shoulder' or 'image', got {motion_unit!r}")
        self._energy, thr = _score_kind(rec, score, threshold)
        self._rec = rec
        self.top_k = top_k
        self._core = _native.SegmentDecider(
            rec.spec.native,
            score=score,
            threshold=thr,
            rest_frames=_integer("rest_frames", rest_frames),
            motion_threshold=(None if motion_threshold is None
                              else _real("motion_threshold", motion_threshold)),
            motion_unit=motion_unit,
            min_frames=_integer("min_frames", min_frames),
            max_frames=None if max_frames is None else _integer("max_frames", max_frames),
            fps=_real("fps", fps),
        )  # fmt: skip

    @property
    def threshold(self) -> float:
        """Minimum decision score of an emitted segment (on the scale of :attr:`score`)."""
        return float(self._core.threshold)

    @property
    def score(self) -> ScoreKind:
        """What the threshold compares: ``probability`` or ``energy``."""
        return "energy" if self._energy else "probability"

    @property
    def rest_frames(self) -> int:
        """Inactive frames that end a segment."""
        return int(self._core.rest_frames)

    @property
    def motion_threshold(self) -> float:
        """Hand-centre displacement per frame that counts as moving, in ``motion_unit``."""
        return float(self._core.motion_threshold)

    @property
    def motion_unit(self) -> MotionUnit:
        """``shoulder`` or ``image``."""
        return "image" if self._core.motion_unit == "image" else "shoulder"

    @property
    def min_frames(self) -> int:
        """Shortest segment that is classified."""
        return int(self._core.min_frames)

    @property
    def max_frames(self) -> int:
        """Longest segment."""
        return int(self._core.max_frames)

    @property
    def engine_calls(self) -> int:
        """Classifications run so far."""
        return int(self._core.engine_calls)

    def reset(self) -> None:
        """Drop the open segment and the remembered shoulder width."""
        self._core.reset()

    def flush(self) -> list[Event]:
        """End of input: classify the open segment, if any."""
        return self._classify() if self._core.flush() else []

    def push(self, frame: npt.ArrayLike, ts: float | None = None) -> list[Event]:
        """Add one (543, 3) frame at ``ts`` seconds; return its closed segment's event."""
        return self._classify() if self._core.push(frame, ts) else []

    def _classify(self) -> list[Event]:
        """Classify the closed segment and pass the top-1 score to the core's decision."""
        frames = self._core.segment()  # (n, 543, 3), float32 when every frame was
        t0 = time.perf_counter()
        feats, mask = self._rec.preprocess(frames)  # (L, F), (L,)
        pre_ms = (time.perf_counter() - t0) * 1e3
        if not mask.any():
            return []
        if self._energy:
            topk, energy, inf_ms = _classify_energy(
                cast("EnergyClassifier", self._rec), feats, mask, self.top_k)
            label, score = topk[0]
            got = self._core.decide(_decision_value(label, energy), score)
        else:
            topk, inf_ms = _classify(self._rec, feats, mask, self.top_k)
            label, score = topk[0]
            got = self._core.decide(_decision_value(label, score))
        if got is None:
            return []
        score, start, end, n = got
        return [Event(kind="sign", label=label, score=score, start=start, end=end,
                      latency=Latency(pre_ms, inf_ms), topk=topk, frames=n)]  # fmt: skip


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
        events: Events emitted so far.
    """

    def __init__(
        self,
        recognizer: Classifier,
        mode: StreamMode = "window",
        *,
        threshold: float | None = None,
        score: ScoreKind | None = None,
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
            threshold: Minimum decision score of an emitted label, on the scale of
                ``score``: a probability in [0, 1] (default 0.6), or a finite energy
                (required with ``score="energy"``; the model's tuned one comes through
                :meth:`Recognizer.stream`).
            score: What the threshold compares: ``probability`` (default; the calibrated
                top-1 probability) or ``energy`` (``T * logsumexp(logits / T)``).
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
                the other mode (e.g. ``stride`` with ``mode="segment"``), an unknown score
                kind, or ``score="energy"`` without a threshold.
        """
        _check(mode in ("window", "segment"),
               f"mode must be 'window' or 'segment', got {mode!r}")
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
               "(and threshold, score, min_frames, fps, top_k)")
        self.mode: StreamMode = mode
        k = top_k or recognizer.top_k
        self.decision: WindowDecision | SegmentDecision
        if mode == "window":
            self.decision = WindowDecision(
                recognizer,
                stride=stride if stride is not None else DEFAULT_STRIDE,
                threshold=threshold,
                score=score if score is not None else "probability",
                confirm=confirm if confirm is not None else DEFAULT_CONFIRM,
                cooldown=cooldown if cooldown is not None else DEFAULT_COOLDOWN,
                min_frames=min_frames if min_frames is not None else _WINDOW_MIN_FRAMES,
                require_hand=require_hand if require_hand is not None else True,
                top_k=k,
                fps=fps,
            )
        else:
            self.decision = SegmentDecision(
                recognizer,
                threshold=threshold,
                score=score if score is not None else "probability",
                rest_frames=rest_frames if rest_frames is not None else _REST_FRAMES,
                motion_threshold=motion_threshold,
                motion_unit=motion_unit if motion_unit is not None else "shoulder",
                min_frames=min_frames if min_frames is not None else _SEGMENT_MIN_FRAMES,
                max_frames=max_frames,
                top_k=k,
                fps=fps,
            )
        self._core = self.decision._core
        self._push = self._core.push
        self._classify = self.decision._classify
        self._lock = threading.Lock()
        self.events = 0

    @property
    def fps(self) -> float:
        """Frame rate assumed for frames pushed without a timestamp."""
        return float(self._core.fps)

    @property
    def frames(self) -> int:
        """Frames pushed so far."""
        return int(self._core.frames)

    @property
    def engine_calls(self) -> int:
        """Classifications run so far."""
        return self.decision.engine_calls

    @property
    def threshold(self) -> float:
        """Minimum decision score of an emitted label (on the scale of :attr:`score`)."""
        return self.decision.threshold

    @property
    def score(self) -> ScoreKind:
        """What the threshold compares: ``probability`` or ``energy``."""
        return self.decision.score

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
            self._core.reset(clock=True)

    def push(self, frame: npt.ArrayLike, timestamp: float | None = None) -> list[Event]:
        """Add one frame; return the events it completes (usually none).

        Args:
            frame: (543, 3) landmarks of one camera frame (NaN where missing).
            timestamp: Its time in seconds (default: previous + 1/fps).

        Returns:
            Events decided by this frame, oldest first.

        Raises:
            ShapeError: If the frame is not (543, 3) or not real-valued.
        """
        with self._lock:
            if not self._push(frame, timestamp):
                return []
            out = self._classify()
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
