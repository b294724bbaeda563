"""Recognizer (clips in, labels out) and Stream (live frames in, events out).

Example:
    >>> import signrt
    >>> rec = signrt.load("model.onnx", device="auto")
    >>> pred = rec.predict(clip)                  # clip: (T, 543, 3) landmarks
    >>> pred.label, pred.score, pred.topk, pred.no_signer
    >>> stream = rec.stream(mode="window", stride=4, threshold=0.6, confirm=2)
    >>> for frame in frames:                      # frame: (543, 3)
    ...     for event in stream.push(frame):
    ...         print(event.label, event.score, event.start, event.end)

The FeatureSpec stored in the model decides the preprocessing; the engine is picked by
``device`` (see :mod:`signrt.runtime.engines`). A :class:`Recognizer` is thread-safe; a
:class:`Stream` belongs to one frame source.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from . import layouts
from .errors import ModelError, ShapeError
from .runtime.engines import Engine, EngineOptions, create_engine
from .runtime.model import ModelFile, load_model_file
from .spec import FeatureSpec

__all__ = [
    "Event",
    "Latency",
    "Prediction",
    "Recognizer",
    "Stream",
    "default_model_path",
    "load",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
StreamMode = Literal["window", "segment"]

#: Environment variable naming the model ``signrt.load()`` uses when given no path.
MODEL_ENV: Final = "SIGNRT_MODEL"
_PRECISION_TAGS: Final = ("int8", "fp16")
#: Default decision settings of a window-mode :class:`Stream` (the daemon uses the same).
DEFAULT_STRIDE: Final = 4
DEFAULT_THRESHOLD: Final = 0.6
DEFAULT_CONFIRM: Final = 2
DEFAULT_COOLDOWN: Final = 1.0


# ------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class Latency:
    """Time spent per stage, in milliseconds.

    Attributes:
        preprocess_ms: Landmarks -> features (native preprocessing).
        inference_ms: The engine call plus softmax and top-k.
    """

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Sum of the stages."""
        return self.preprocess_ms + self.inference_ms

    def to_dict(self) -> dict[str, float]:
        """Return the stages (and total) as a dict."""
        return {
            "preprocess_ms": self.preprocess_ms,
            "inference_ms": self.inference_ms,
            "total_ms": self.total_ms,
        }


@dataclass(frozen=True)
class Prediction:
    """The answer for one clip.

    Attributes:
        label: The most probable sign, or None when ``no_signer``.
        score: Its softmax probability (0.0 when ``no_signer``).
        topk: The k most probable ``(label, probability)`` pairs, best first.
        no_signer: True when the clip has no frame with a selected landmark (nobody in
            view); no engine call is made and ``label`` is None.
        latency: Time per stage.
    """

    label: str | None
    score: float
    topk: tuple[tuple[str, float], ...] = ()
    no_signer: bool = False
    latency: Latency = field(default_factory=Latency)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "label": self.label,
            "score": self.score,
            "topk": [[lab, s] for lab, s in self.topk],
            "no_signer": self.no_signer,
            "latency": self.latency.to_dict(),
        }


@dataclass(frozen=True)
class Event:
    """A sign recognised in a stream.

    Attributes:
        kind: ``"sign"``.
        label: The recognised sign.
        score: Its probability (window mode: mean over the confirming windows).
        start: Timestamp of the first frame of the sign (seconds, the stream's clock).
        end: Timestamp of the last frame that confirmed it.
        latency: Preprocessing and inference time of the deciding classification.
        topk: The k most probable ``(label, probability)`` pairs of that classification.
        frames: Number of frames in the classified window or segment.
    """

    kind: str
    label: str
    score: float
    start: float
    end: float
    latency: Latency = field(default_factory=Latency)
    topk: tuple[tuple[str, float], ...] = ()
    frames: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "kind": self.kind,
            "label": self.label,
            "score": self.score,
            "start": self.start,
            "end": self.end,
            "latency": self.latency.to_dict(),
            "topk": [[lab, s] for lab, s in self.topk],
            "frames": self.frames,
        }


# ------------------------------------------------------------------------ preprocessing
Preprocess = Callable[[npt.ArrayLike], tuple[FloatArray, FloatArray]]
PreprocessBatch = Callable[[Sequence[npt.ArrayLike]], tuple[FloatArray, FloatArray]]


def _make_preprocessor(spec: FeatureSpec) -> tuple[Preprocess, PreprocessBatch, str]:
    """Native preprocessing when the Rust extension loads, else the NumPy reference."""
    from . import features

    try:
        pre = features.Preprocessor(spec)
    except ImportError as exc:
        log.warning("native preprocessing unavailable, using the slower NumPy reference: %s", exc)

        def one(clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
            return features.preprocess_reference(clip, spec)

        def many(clips: Sequence[npt.ArrayLike]) -> tuple[FloatArray, FloatArray]:
            outs = [one(c) for c in clips]
            return (
                np.stack([o[0] for o in outs]).astype(np.float32, copy=False),
                np.stack([o[1] for o in outs]).astype(np.float32, copy=False),
            )

        return one, many, "reference"
    return pre, pre.batch, "native"


# ----------------------------------------------------------------------------- recognizer
class Recognizer:
    """A model file, its engine and its preprocessing: clips in, labels out.

    Thread-safe: ``predict`` and ``predict_batch`` may be called from several threads at
    once and give the same answers as sequential calls.

    Attributes:
        model: The model file.
        engine: The inference engine.
        top_k: Default number of ``(label, score)`` pairs in predictions.
        preprocessing: ``native`` (Rust) or ``reference`` (NumPy fallback).
    """

    def __init__(self, model: ModelFile, engine: Engine, *, top_k: int = 5) -> None:
        """Wrap a model file and an engine (use :func:`load` to build both).

        Args:
            model: A validated model file.
            engine: An engine running that model.
            top_k: Default size of the top-k list.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.model = model
        self.engine = engine
        self.top_k = top_k
        self._labels = model.labels
        self._pre_one, self._pre_batch, self.preprocessing = _make_preprocessor(model.spec)
        # Softmax + top-k of a batch in one native call (a few µs even with the caches cold
        # after an engine call); the NumPy path where the extension does not load.
        self._native_scores: Callable[[FloatArray, int], list[list[tuple[int, float]]]] | None
        self._native_scores = _native_softmax_topk() if self.preprocessing == "native" else None

    @property
    def labels(self) -> tuple[str, ...]:
        """The sign names, in logit order."""
        return self._labels

    @property
    def spec(self) -> FeatureSpec:
        """The model's FeatureSpec."""
        return self.model.spec

    @property
    def info(self) -> dict[str, Any]:
        """The model's ``signrt.model`` information (architecture, precision, ...)."""
        return dict(self.model.info)

    # ------------------------------------------------------------------ building blocks
    def preprocess(self, clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Features and mask of one clip with the model's spec."""
        return self._pre_one(clip)

    def _topk(self, probs: npt.NDArray[np.float64], k: int) -> tuple[tuple[str, float], ...]:
        k = min(k, probs.shape[0])
        if k == 1:
            i = int(probs.argmax())
            return ((self._labels[i], float(probs[i])),)
        if k < probs.shape[0]:
            part = np.argpartition(probs, -k)[-k:]
            idx = part[np.argsort(-probs[part], kind="stable")]
        else:
            idx = np.argsort(-probs, kind="stable")
        labels = self._labels
        return tuple(zip([labels[i] for i in idx.tolist()], probs[idx].tolist(), strict=True))

    def classify_features(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> list[tuple[tuple[str, float], ...]]:
        """Run the engine on preprocessed features and return the top-k of each row.

        Args:
            features: (B, L, F) float32.
            mask: (B, L) float32.
            top_k: Pairs per row (default ``self.top_k``).

        Returns:
            One top-k tuple per row, best first.
        """
        logits = self.engine.run(features, mask)  # (B, K)
        k = top_k or self.top_k
        if self._native_scores is not None:
            labels = self._labels
            rows = self._native_scores(logits, k)  # B lists of (class, probability)
            return [tuple([(labels[i], p) for i, p in row]) for row in rows]
        return self._numpy_scores(logits, k)

    def _numpy_scores(self, logits: FloatArray, k: int) -> list[tuple[tuple[str, float], ...]]:
        """The NumPy softmax + top-k (fallback of the native path, and its test oracle)."""
        bad = np.argwhere(~np.isfinite(logits))
        if bad.size:
            r, c = (int(x) for x in bad[0])
            raise ModelError(
                f"the model returned a non-finite logit ({logits[r, c]} for class {c}); check "
                "the model (e.g. `signrt info`) and its input features"
            )
        probs = _softmax(logits)  # (B, K) float64
        return [self._topk(p, k) for p in probs]

    # ----------------------------------------------------------------------- predicting
    def predict(self, clip: npt.ArrayLike, *, top_k: int | None = None) -> Prediction:
        """Recognise the sign in one clip.

        Args:
            clip: (T, 543, 3) landmarks (T may be 0).
            top_k: Size of the top-k list (default ``self.top_k``).

        Returns:
            The prediction; ``no_signer`` (and no engine call) when the clip has no frame
            with a selected landmark.

        Raises:
            ShapeError: If the clip is not (T, 543, 3).
        """
        t0 = time.perf_counter()
        feats, mask = self._pre_one(clip)
        t1 = time.perf_counter()
        if not mask.any():
            return Prediction(None, 0.0, (), True, Latency((t1 - t0) * 1e3, 0.0))
        topk = self.classify_features(feats[None], mask[None], top_k=top_k)[0]
        t2 = time.perf_counter()
        return Prediction(
            topk[0][0], topk[0][1], topk, False, Latency((t1 - t0) * 1e3, (t2 - t1) * 1e3)
        )

    def predict_batch(
        self, clips: Sequence[npt.ArrayLike], *, top_k: int | None = None
    ) -> list[Prediction]:
        """Recognise many clips with one batched preprocessing call and one engine call.

        Clips without a signer are answered ``no_signer`` and left out of the engine call.
        Every prediction carries the latency of the whole batch.

        Args:
            clips: (T_i, 543, 3) clips of any lengths.
            top_k: Size of the top-k lists.

        Returns:
            One prediction per clip, in order.
        """
        if len(clips) == 0:
            return []
        t0 = time.perf_counter()
        feats, mask = self._pre_batch(clips)
        t1 = time.perf_counter()
        valid = mask.any(axis=1)
        results: list[tuple[tuple[str, float], ...] | None] = [None] * len(clips)
        if valid.any():
            if valid.all():
                rows = self.classify_features(feats, mask, top_k=top_k)
            else:
                rows = self.classify_features(feats[valid], mask[valid], top_k=top_k)
            for i, r in zip(np.flatnonzero(valid), rows, strict=True):
                results[int(i)] = r
        t2 = time.perf_counter()
        lat = Latency((t1 - t0) * 1e3, (t2 - t1) * 1e3)
        return [
            Prediction(None, 0.0, (), True, lat)
            if r is None
            else Prediction(r[0][0], r[0][1], r, False, lat)
            for r in results
        ]

    def stream(self, mode: StreamMode = "window", **options: Any) -> Stream:
        """Open a stream for live frames; see :class:`Stream` for the modes and options."""
        return Stream(self, mode, **options)

    def close(self) -> None:
        """Release the engine's resources."""
        close = getattr(self.engine, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Recognizer({self.model.path.name}, {self.model.architecture}, "
            f"{self.model.precision}, K={len(self._labels)}, engine={self.engine.name})"
        )


def _native_softmax_topk() -> Callable[[FloatArray, int], list[list[tuple[int, float]]]] | None:
    """The extension's ``softmax_topk``, or None where it does not load."""
    try:
        from .features import _native_module

        fn: Callable[[FloatArray, int], list[list[tuple[int, float]]]] = (
            _native_module().softmax_topk
        )
    except (ImportError, AttributeError):  # pragma: no cover - only on a broken install
        return None
    return fn


def _softmax(logits: FloatArray) -> npt.NDArray[np.float64]:
    z = np.array(logits, dtype=np.float64)
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


# ------------------------------------------------------------------------------- stream
class _PyWindow:
    """Fallback streaming window: the last W frames, preprocessed on demand."""

    def __init__(self, spec: FeatureSpec, pre: Preprocess) -> None:
        self._frames: deque[npt.NDArray[Any]] = deque(maxlen=spec.max_len)
        self._pre = pre

    def push(self, frame: npt.NDArray[Any]) -> None:
        self._frames.append(np.array(frame, dtype=np.float32))

    def features(self) -> tuple[FloatArray, FloatArray]:
        return self._pre(np.stack(list(self._frames)))

    def reset(self) -> None:
        self._frames.clear()


def _make_window(spec: FeatureSpec, pre: Preprocess) -> Any:
    """The native FeatureStream when available, else :class:`_PyWindow`."""
    try:
        from .features import FeatureStream  # type: ignore[attr-defined]

        return FeatureStream(spec)
    except (ImportError, AttributeError) as exc:
        log.debug("native FeatureStream unavailable (%s); using the Python window", exc)
        return _PyWindow(spec, pre)


_LEFT = slice(layouts.LEFT_HAND.start, layouts.LEFT_HAND.stop)
_RIGHT = slice(layouts.RIGHT_HAND.start, layouts.RIGHT_HAND.stop)


def _hand_centre(frame: npt.NDArray[Any], part: slice) -> npt.NDArray[np.float64] | None:
    xy = frame[part, :2]
    ok = np.isfinite(xy).all(axis=1)
    if not ok.any():
        return None
    return xy[ok].mean(axis=0, dtype=np.float64)  # type: ignore[no-any-return]


class Stream:
    """Live landmark frames in, sign events out.

    Modes:
        ``window``: keep the last W = max_len frames; every ``stride`` frames classify the
            window; a label whose score is >= ``threshold`` in ``confirm`` consecutive
            classifications is emitted once, unless the same label was emitted less than
            ``cooldown`` seconds before. A classification below the threshold, another
            label, or a frame without a signer resets the run of confirmations.
        ``segment``: activity detection. A frame is *active* when a hand is visible and its
            centre moved more than ``motion_threshold`` (image units) since the previous
            frame. An active frame starts a segment; ``rest_frames`` inactive frames in a
            row (hands at rest or gone) end it; the segment without those trailing frames is
            classified as one clip and emitted if it has at least ``min_frames`` frames and
            its score is >= ``threshold``. A segment reaching ``max_frames`` is classified
            at once.

    Frames without a signer (no selected landmark) never reach the engine. Timestamps are
    seconds; when ``push`` gets none, the previous timestamp + 1/``fps`` is used (the
    first frame is 0.0).

    Not meant to be shared between threads (one stream per frame source); ``push`` takes a
    lock so that misuse cannot corrupt its state.

    Attributes:
        mode: ``window`` or ``segment``.
        frames: Frames pushed so far.
        engine_calls: Classifications run so far.
        events: Events emitted so far.
    """

    _WINDOW_OPTS: Final = ("stride", "threshold", "confirm", "cooldown", "min_frames", "fps",
                           "top_k")
    _SEGMENT_OPTS: Final = ("rest_frames", "motion_threshold", "min_frames", "max_frames",
                            "threshold", "fps", "top_k")

    def __init__(
        self,
        recognizer: Recognizer,
        mode: StreamMode = "window",
        *,
        stride: int = DEFAULT_STRIDE,
        threshold: float = DEFAULT_THRESHOLD,
        confirm: int = DEFAULT_CONFIRM,
        cooldown: float = DEFAULT_COOLDOWN,
        min_frames: int | None = None,
        rest_frames: int = 8,
        motion_threshold: float = 0.004,
        max_frames: int | None = None,
        fps: float = 30.0,
        top_k: int | None = None,
    ) -> None:
        """Open a stream (usually through :meth:`Recognizer.stream`).

        Args:
            recognizer: The recognizer that classifies windows or segments.
            mode: ``window`` or ``segment``.
            stride: Window mode: classify every ``stride`` frames.
            threshold: Minimum probability of an emitted label.
            confirm: Window mode: consecutive confirming classifications needed.
            cooldown: Window mode: seconds before the same label may be emitted again.
            min_frames: Frames with a signer needed before classifying (window mode,
                default 8) or in a segment (segment mode, default 6); capped at max_len
                in window mode.
            rest_frames: Segment mode: inactive frames that end a segment.
            motion_threshold: Segment mode: hand-centre displacement per frame (image
                units) that counts as moving.
            max_frames: Segment mode: longest segment (default 4 x max_len).
            fps: Frame rate assumed for frames pushed without a timestamp.
            top_k: Size of the events' top-k lists.

        Raises:
            ValueError: On an unknown mode or an option out of range.
        """
        if mode not in ("window", "segment"):
            raise ValueError(f"mode must be 'window' or 'segment', got {mode!r}")
        spec = recognizer.spec
        if stride < 1 or confirm < 1 or rest_frames < 1:
            raise ValueError("stride, confirm and rest_frames must be >= 1")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if cooldown < 0 or motion_threshold < 0 or fps <= 0:
            raise ValueError("cooldown and motion_threshold must be >= 0 and fps > 0")
        self.mode: StreamMode = mode
        self._rec = recognizer
        self.stride = stride
        self.threshold = float(threshold)
        self.confirm = confirm
        self.cooldown = float(cooldown)
        default_min = 8 if mode == "window" else 6
        self.min_frames = max(1, min_frames if min_frames is not None else default_min)
        if mode == "window":
            self.min_frames = min(self.min_frames, spec.max_len)
        self.rest_frames = rest_frames
        self.motion_threshold = float(motion_threshold)
        self.max_frames = max(1, max_frames if max_frames is not None else 4 * spec.max_len)
        self.fps = float(fps)
        self.top_k = top_k or recognizer.top_k
        self._landmarks = np.asarray(spec.landmarks, dtype=np.intp)
        self._coords = spec.coords
        self._lock = threading.Lock()
        self._window = (
            _make_window(spec, recognizer._pre_one) if mode == "window" else None
        )
        self.frames = 0
        self.engine_calls = 0
        self.events = 0
        self._last_ts: float | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        # window mode
        self._ts: deque[float] = deque(maxlen=self._rec.spec.max_len)
        self._valid: deque[bool] = deque(maxlen=self._rec.spec.max_len)
        self._since_reset = 0
        self._cand: str | None = None
        self._streak = 0
        self._streak_scores: list[float] = []
        self._streak_start = 0.0
        self._last_emit: dict[str, float] = {}
        # segment mode
        self._seg: list[npt.NDArray[Any]] = []
        self._seg_ts: list[float] = []
        self._quiet = 0
        self._prev_hands: tuple[Any, Any] = (None, None)

    def reset(self) -> None:
        """Forget the window, the current segment and the cooldowns (e.g. a new session)."""
        with self._lock:
            if self._window is not None:
                self._window.reset()
            self._last_ts = None
            self._reset_state()

    # ------------------------------------------------------------------------ helpers
    def _timestamp(self, timestamp: float | None) -> float:
        if timestamp is None:
            ts = 0.0 if self._last_ts is None else self._last_ts + 1.0 / self.fps
        else:
            ts = float(timestamp)
        self._last_ts = ts
        return ts

    def _has_signer(self, frame: npt.NDArray[Any]) -> bool:
        sel = frame[self._landmarks, : self._coords]
        return bool(np.isfinite(sel).any())

    def _classify(self, feats: FloatArray, mask: FloatArray
                  ) -> tuple[tuple[tuple[str, float], ...], float]:
        t0 = time.perf_counter()
        topk = self._rec.classify_features(feats[None], mask[None], top_k=self.top_k)[0]
        self.engine_calls += 1
        return topk, (time.perf_counter() - t0) * 1e3

    # --------------------------------------------------------------------------- push
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
            out = self._push_window(f, ts) if self.mode == "window" else self._push_segment(f, ts)
            self.events += len(out)
            return out

    def flush(self) -> list[Event]:
        """End of input: classify the open segment (segment mode); window mode emits nothing.

        Returns:
            The events of the closed segment, if any.
        """
        with self._lock:
            if self.mode == "segment" and self._seg:
                out = self._close_segment(trim=self._quiet)
                self.events += len(out)
                return out
            self._streak, self._cand = 0, None
            return []

    # ---------------------------------------------------------------------- window mode
    def _push_window(self, frame: npt.NDArray[Any], ts: float) -> list[Event]:
        window = self._window
        assert window is not None
        valid = self._has_signer(frame)
        window.push(frame)
        self._ts.append(ts)
        self._valid.append(valid)
        self._since_reset += 1
        if not valid:
            self._streak, self._cand = 0, None
            return []
        if self._since_reset % self.stride != 0:
            return []
        n_valid = sum(self._valid)
        if n_valid < self.min_frames:
            return []
        t0 = time.perf_counter()
        feats, mask = window.features()
        pre_ms = (time.perf_counter() - t0) * 1e3
        topk, inf_ms = self._classify(feats, mask)
        label, score = topk[0]
        if score < self.threshold:
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

    # --------------------------------------------------------------------- segment mode
    def _push_segment(self, frame: npt.NDArray[Any], ts: float) -> list[Event]:
        hands = (_hand_centre(frame, _LEFT), _hand_centre(frame, _RIGHT))
        moving = False
        for prev, cur in zip(self._prev_hands, hands, strict=True):
            if (
                prev is not None
                and cur is not None
                and float(np.hypot(*(cur - prev))) > self.motion_threshold
            ):
                moving = True
                break
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
            return self._close_segment(trim=self._quiet)
        if len(self._seg) >= self.max_frames:
            return self._close_segment(trim=0)
        return []

    def _close_segment(self, trim: int) -> list[Event]:
        n = len(self._seg) - trim
        frames, stamps = self._seg[:n], self._seg_ts[:n]
        self._seg, self._seg_ts, self._quiet = [], [], 0
        if n < self.min_frames:
            log.debug("segment of %d frames is shorter than min_frames; ignored", n)
            return []
        t0 = time.perf_counter()
        feats, mask = self._rec._pre_one(np.stack(frames))
        pre_ms = (time.perf_counter() - t0) * 1e3
        if not mask.any():
            return []
        topk, inf_ms = self._classify(feats, mask)
        label, score = topk[0]
        if score < self.threshold:
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

    def __repr__(self) -> str:
        return f"Stream(mode={self.mode!r}, frames={self.frames}, events={self.events})"


# ---------------------------------------------------------------------------- loading
def _model_sort_key(path: Path) -> tuple[int, str]:
    name = path.name.lower()
    return (int(any(tag in name for tag in _PRECISION_TAGS)), name)


def default_model_path() -> Path:
    """The model :func:`load` uses when given no path.

    Searched in order: ``$SIGNRT_MODEL``; the bundled demo model in the package data folder
    ``signrt/_models/demo/`` (see ``models/README.md``). In a folder, fp32 models come
    before fp16/int8 ones, then by name.

    Raises:
        ModelError: If no model is found (the message says how to get one).
    """
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve().parent
    folders = [here / "_models" / "demo"]
    for folder in folders:
        if folder.is_dir():
            found = sorted(folder.glob("*.onnx"), key=_model_sort_key)
            if found:
                return found[0]
    raise ModelError(
        "no model given and no bundled demo model found (looked in "
        f"{', '.join(str(f) for f in folders)}); pass a model path, e.g. "
        "signrt.load('model.onnx'), set SIGNRT_MODEL, or make one with `signrt train` and "
        "`signrt export`"
    )


def load(
    path: str | os.PathLike[str] | None = None,
    device: str = "auto",
    *,
    top_k: int = 5,
    **options: Any,
) -> Recognizer:
    """Load a model file and create its engine.

    Args:
        path: The ``.onnx`` model; None loads the bundled demo model
            (see :func:`default_model_path`).
        device: ``auto``, ``cpu``, ``cuda``, ``tensorrt`` or ``trt``.
        top_k: Default size of the predictions' top-k lists.
        **options: Engine options (:class:`~signrt.runtime.engines.EngineOptions`), e.g.
            ``intra_op_num_threads``, ``cache_dir``, ``max_batch``, ``batch_sizes``,
            ``warmup``, ``workspace_bytes``.

    Returns:
        A ready, warmed-up :class:`Recognizer`.

    Raises:
        ModelError: If the model file is missing or invalid.
        DeviceError: If the requested device is unavailable.
        TypeError: On an unknown option.
    """
    model = load_model_file(path if path is not None else default_model_path())
    engine = create_engine(model, device, EngineOptions.from_kwargs(options))
    return Recognizer(model, engine, top_k=top_k)
