"""The live pipeline: a capture thread, an extractor + Stream worker, and per-stage timing.

::

    source ──capture thread──▶ LatestSlot ──worker thread──▶ extractor ─▶ Stream.push ─▶ on_result
                               (keeps only the newest frame;                 (events, landmarks,
                                stale frames are dropped and counted)         stage latencies)

The capture thread never waits for the worker: a live camera keeps delivering and the
worker always takes the newest frame, so latency stays bounded when the extractor is slower
than the camera. ``on_result`` runs on the worker thread; the server hands results to its
event loop from there (``loop.call_soon_threadsafe``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .._redact import redact
from ..errors import SourceError
from ..extract.sources import Frame, ReplaySource, Source

__all__ = ["FrameResult", "LatestSlot", "Pipeline", "Rolling"]

log = logging.getLogger(__name__)


class LatestSlot:
    """A one-frame mailbox: ``put`` replaces an unread frame (counted as dropped).

    Args:
        block: Make ``put`` wait until the previous frame was taken instead of replacing
            it (for files read as fast as possible, where nothing may be lost).
    """

    def __init__(self, *, block: bool = False) -> None:
        self._cond = threading.Condition()
        self._item: Frame | None = None
        self._closed = False
        self.block = block
        self.dropped = 0

    def put(self, item: Frame) -> bool:
        """Store ``item``; returns True if an unread frame was dropped for it."""
        with self._cond:
            if self.block:
                while self._item is not None and not self._closed:
                    self._cond.wait(0.1)
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()
            return replaced

    def get(self, timeout: float) -> Frame | None:
        """Take the newest frame, waiting up to ``timeout`` seconds; ``None`` if none came."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """Wake every waiter; later ``put`` calls no longer block."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class Rolling:
    """The last ``size`` samples of a quantity, for percentiles on demand."""

    def __init__(self, size: int = 512) -> None:
        self._buf = np.zeros(size, dtype=np.float64)
        self._n = 0
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        """Append one sample."""
        with self._lock:
            self._buf[self._n % self._buf.size] = value
            self._n += 1

    def percentiles(self, *qs: float) -> list[float]:
        """Percentiles (0-100) of the samples held; NaN when empty."""
        with self._lock:
            n = min(self._n, self._buf.size)
            data = self._buf[:n].copy()
        if n == 0:
            return [float("nan")] * len(qs)
        return [float(v) for v in np.percentile(data, qs)]

    @property
    def count(self) -> int:
        """Samples added so far."""
        return self._n

    def samples(self) -> npt.NDArray[np.float64]:
        """A copy of the samples held (at most ``size``, not in time order once wrapped)."""
        with self._lock:
            out: npt.NDArray[np.float64] = self._buf[: min(self._n, self._buf.size)].copy()
        return out


@dataclass
class FrameResult:
    """What the worker made of one frame.

    Attributes:
        index: Source frame index.
        timestamp: Source timestamp (seconds).
        landmarks: (543, 3) float32 landmarks.
        events: Events the Stream decided on this frame.
        signer: Whether any landmark the model uses was found.
        stages: Milliseconds per stage: ``capture`` (waiting in the slot), ``landmarks``
            (extractor), ``features`` (Stream bookkeeping and preprocessing), ``inference``
            (engine calls); the server adds ``publish`` and ``total``.
        captured: ``perf_counter()`` when the source delivered the frame.
        done: ``perf_counter()`` when the worker finished it.
    """

    index: int
    timestamp: float
    landmarks: npt.NDArray[np.float32]
    events: list[Any]
    signer: bool
    stages: dict[str, float] = field(default_factory=dict)
    captured: float = 0.0
    done: float = 0.0


class _TimedEngine:
    """Wraps an engine to accumulate the time spent in ``run`` (read by the worker)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.elapsed = 0.0

    def run(self, features: Any, mask: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._engine.run(features, mask)
        finally:
            self.elapsed += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class Pipeline:
    """Capture thread + worker thread around a source, an extractor and a Stream.

    Args:
        source: The frame source.
        recognizer: A loaded :class:`signrt.Recognizer` (its engine gets a timing wrapper).
        extractor_factory: Creates the landmark extractor; not needed (may be ``None``) for
            a replay source that delivers landmarks.
        stream_options: Keyword arguments of ``recognizer.stream`` (``mode``, ``stride``...).
        on_result: Called on the worker thread with each :class:`FrameResult`.
        drop_stale: Keep only the newest frame (live operation). ``False`` makes the capture
            thread wait for the worker (offline files, nothing lost).
        recorder: Optional :class:`~signrt.daemon.recorder.Recorder` fed every frame.
        metrics: Optional :class:`~signrt.daemon.metrics.Metrics`.
    """

    def __init__(
        self,
        source: Source,
        recognizer: Any,
        *,
        extractor_factory: Callable[[], Any] | None = None,
        stream_options: dict[str, Any] | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        drop_stale: bool = True,
        recorder: Any = None,
        metrics: Any = None,
    ) -> None:
        self.source = source
        self.recognizer = recognizer
        opts = dict(stream_options or {})
        mode = opts.pop("mode", "window")
        self.stream = recognizer.stream(mode=mode, **opts)
        self._timed = _TimedEngine(recognizer.engine)
        recognizer.engine = self._timed
        self._landmarks = np.asarray(recognizer.spec.landmarks, dtype=np.intp)
        self._coords = int(recognizer.spec.coords)
        self.extractor_factory = extractor_factory
        self.extractor: Any = None
        self.on_result = on_result
        self.recorder = recorder
        self.metrics = metrics
        self.slot = LatestSlot(block=not drop_stale)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.frames_in = 0
        self.frames_done = 0
        self.events = 0
        self.signer = False
        self.source_ended = False
        self.source_error: str | None = None
        self.worker_error: str | None = None
        self.warmed = False
        self.heartbeat = time.monotonic()
        self.last_frame_at: float | None = None
        self.finished = threading.Event()
        self.latency: dict[str, Rolling] = {}
        self._done_times: deque[float] = deque(maxlen=120)

    # ---------------------------------------------------------------------------- set-up
    @property
    def needs_extractor(self) -> bool:
        """Whether frames are images (not replayed landmarks)."""
        return not isinstance(self.source, ReplaySource)

    def warm_up(self) -> None:
        """Create the extractor and run it and the recognizer once, so the first frame is fast.

        Raises:
            ExtractorError: If the extractor cannot be created.
        """
        if self.needs_extractor and self.extractor is None:
            if self.extractor_factory is None:
                raise SourceError(
                    f"source {self.source.name} delivers images but no landmark extractor "
                    "was given; install signrt[camera]"
                )
            self.extractor = self.extractor_factory()
            self.extractor.process(np.zeros((64, 64, 3), dtype=np.uint8))
        blank = np.full((1, 543, 3), np.nan, dtype=np.float32)
        self.recognizer.predict(blank)
        self.warmed = True

    def start(self) -> None:
        """Warm up (if not done) and start both threads."""
        if not self.warmed:
            self.warm_up()
        for target, name in ((self._capture, "capture"), (self._work, "worker")):
            t = threading.Thread(target=target, name=f"signrt-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the source and both threads (each joined for up to ``timeout`` seconds).

        The recorder, if any, is then closed and waited for until every frame it was given
        is on disk: a recording is never cut short by a stop.
        """
        self._stop.set()
        self.source.close()
        self.slot.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.extractor is not None:
            try:
                self.extractor.close()
            except Exception as exc:  # pragma: no cover
                log.debug("extractor close: %s", exc)
        if self.recorder is not None:
            self.recorder.close()

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs and has looped recently."""
        worker = self._threads[1] if len(self._threads) > 1 else None
        return (
            worker is not None and worker.is_alive() and time.monotonic() - self.heartbeat < 5.0
        )

    def delivering(self, within: float = 2.0) -> bool:
        """Whether a frame was processed in the last ``within`` seconds."""
        return self.last_frame_at is not None and time.monotonic() - self.last_frame_at < within

    @property
    def dropped(self) -> int:
        """Stale frames dropped so far."""
        return self.slot.dropped

    def fps(self) -> float:
        """Processed frames per second over the last ~2 s."""
        times = list(self._done_times)
        now = time.perf_counter()
        times = [t for t in times if now - t < 2.0]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    def record_latency(self, stages: dict[str, float]) -> None:
        """Add one frame's stage latencies (ms) to the rolling windows (and metrics)."""
        for name, ms in stages.items():
            roll = self.latency.get(name)
            if roll is None:
                roll = self.latency[name] = Rolling()
            roll.add(ms)
        if self.metrics is not None:
            self.metrics.observe_stages(stages)

    # --------------------------------------------------------------------------- threads
    def _capture(self) -> None:
        source = self.source
        try:
            while not self._stop.is_set():
                try:
                    frame = source.read()
                except SourceError as exc:
                    self.source_error = redact(exc)
                    log.error("source %s failed: %s", source.name, self.source_error)
                    break
                if frame is None:
                    if not self._stop.is_set():
                        self.source_ended = True
                        log.info("source %s ended", source.name)
                    break
                self.frames_in += 1
                if self.metrics is not None:
                    self.metrics.frames.inc()
                    self.metrics.reconnects.set(source.reconnects)
                if self.slot.put(frame) and self.metrics is not None:
                    self.metrics.dropped.inc()
        except Exception as exc:  # pragma: no cover - defensive
            self.source_error = f"capture thread crashed: {redact(exc)}"
            log.exception("capture thread crashed")
        finally:
            self.slot.close()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                self.heartbeat = time.monotonic()
                frame = self.slot.get(0.2)
                if frame is None:
                    if self.source_ended or self.source_error is not None:
                        break
                    continue
                self._process(frame)
            if self.source_ended and not self._stop.is_set():
                events = self.stream.flush()
                if events and self.on_result is not None:
                    last = np.full((543, 3), np.nan, dtype=np.float32)
                    now = time.perf_counter()
                    self.on_result(FrameResult(-1, 0.0, last, events, False, {}, now, now))
        except Exception as exc:
            self.worker_error = f"{type(exc).__name__}: {exc}"
            log.exception("pipeline worker failed")
        finally:
            if self.recorder is not None and not self._stop.is_set():
                # Source ended or the worker failed: write what was recorded now rather
                # than at the daemon's stop (which may be a long time later, or a SIGKILL).
                self.recorder.rotate()
            self.finished.set()

    def _process(self, frame: Frame) -> None:
        t_pick = time.perf_counter()
        if frame.landmarks is not None:
            lm = frame.landmarks
            t_lm = t_pick
        else:
            assert frame.image is not None and self.extractor is not None
            lm = self.extractor.process(
                frame.image, timestamp_ms=int(frame.timestamp * 1e3), bgr=True
            )
            t_lm = time.perf_counter()
        self._timed.elapsed = 0.0
        events = self.stream.push(lm, frame.timestamp)
        t_done = time.perf_counter()
        inference = self._timed.elapsed * 1e3
        signer = bool(np.isfinite(lm[self._landmarks, : self._coords]).any())
        stages = {
            "capture": (t_pick - frame.captured) * 1e3,
            "landmarks": (t_lm - t_pick) * 1e3,
            "features": (t_done - t_lm) * 1e3 - inference,
            "inference": inference,
        }
        self.frames_done += 1
        self.events += len(events)
        self.signer = signer
        self.last_frame_at = time.monotonic()
        self._done_times.append(t_done)
        if self.recorder is not None:
            self.recorder.add(frame.index, lm)
        if self.metrics is not None:
            self.metrics.processed.inc()
            self.metrics.signer.set(1 if signer else 0)
            for ev in events:
                self.metrics.events.labels(label=ev.label).inc()
        result = FrameResult(
            frame.index, frame.timestamp, lm, events, signer, stages, frame.captured, t_done
        )
        if self.on_result is not None:
            self.on_result(result)
        else:
            self.record_latency(stages)
