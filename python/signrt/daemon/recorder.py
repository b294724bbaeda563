"""Recording of the landmark stream to rotating Kaggle-layout parquet files.

Frames are buffered in memory and written by a background thread, one file per
``rotate_seconds`` (or ``rotate_frames``), each atomically (temporary file, then rename), so
a reader or a crash never sees a half-written file. The pipeline thread only appends to a
list.

Every stop path flushes: :meth:`Recorder.close` hands the current rotation to the writer
and waits until everything queued is on disk (the daemon calls it on SIGTERM/SIGINT, when
the source ends and when the pipeline fails). A SIGKILL loses only the frames not yet in a
finished file: the current rotation (and the previous one while it is being written, about
a second per 1,000 frames). The temporary file a killed writer leaves behind is removed
when the next recorder opens the folder.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Recorder"]

log = logging.getLogger(__name__)

_Batch = tuple[Path, list[npt.NDArray[np.float32]], list[int]]


class Recorder:
    """Write landmark frames to ``DIR/signrt-<date>-<time>-<n>.parquet``, rotating.

    Thread-safe: :meth:`add` and :meth:`rotate` run on the pipeline thread, :meth:`close`
    on whichever thread stops the daemon.

    Args:
        folder: Destination folder (created).
        rotate_seconds: Start a new file after this many seconds of stream time.
        rotate_frames: ... or after this many frames, whichever comes first.
        prefix: File name prefix.

    Attributes:
        files: Files written so far, in order.
        frames_written: Frames in those files.
        errors: Files that could not be written (logged).
        late: Frames offered after :meth:`close` (not recorded; logged once).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        rotate_seconds: float = 60.0,
        rotate_frames: int = 3600,
        prefix: str = "signrt",
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rotate_seconds = rotate_seconds
        self.rotate_frames = max(1, rotate_frames)
        self.prefix = prefix
        self.files: list[Path] = []
        self.frames_written = 0
        self.errors = 0
        self.late = 0
        self._frames: list[npt.NDArray[np.float32]] = []
        self._numbers: list[int] = []
        self._started = time.monotonic()
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False
        self._queue: queue.Queue[_Batch | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        # atomic_write names its temporary ".<name>.<random>.tmp" beside the destination.
        for tmp in self.folder.glob(f".{self.prefix}-*.parquet.*.tmp"):
            try:
                tmp.unlink()
            except OSError as exc:  # pragma: no cover - permissions
                log.warning("cannot remove stale temporary file %s: %s", tmp, exc)
            else:
                log.warning("removed %s, left by a recorder that was killed mid-write", tmp)

    @property
    def pending(self) -> int:
        """Frames buffered or queued but not yet written."""
        with self._lock:
            buffered = len(self._frames)
        return buffered + sum(len(item[1]) for item in list(self._queue.queue) if item)

    def add(self, index: int, frame: npt.NDArray[np.float32]) -> None:
        """Append one frame (called from the pipeline thread)."""
        with self._lock:
            if self._closed:
                self.late += 1
                if self.late == 1:
                    log.warning("recorder %s is closed; frame %d not recorded", self.folder, index)
                return
            self._frames.append(np.array(frame, dtype=np.float32))
            self._numbers.append(index)
            due = (
                len(self._frames) >= self.rotate_frames
                or time.monotonic() - self._started >= self.rotate_seconds
            )
            if due:
                self._rotate_locked()

    def rotate(self) -> None:
        """Hand the buffered frames to the writer and start a new file."""
        with self._lock:
            self._rotate_locked()

    def _rotate_locked(self) -> None:
        if not self._frames:
            return
        self._seq += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{self.prefix}-{stamp}-{self._seq:04d}.parquet"
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._writer, name="signrt-recorder", daemon=True
            )
            self._thread.start()
        self._queue.put((path, self._frames, self._numbers))
        self._frames, self._numbers = [], []
        self._started = time.monotonic()

    def _writer(self) -> None:
        from ..io.kaggle import write_parquet

        while True:
            item = self._queue.get()
            if item is None:
                return
            path, frames, numbers = item
            try:
                # Frame numbers must be unique per file; they are, because a source's
                # indices only grow (across loops and reconnects too).
                write_parquet(path, np.stack(frames), frames=numbers)
                self.files.append(path)
                self.frames_written += len(frames)
                log.info("recorded %d frames to %s", len(frames), path)
            except Exception as exc:
                self.errors += 1
                log.error("recording %d frames to %s failed: %s", len(frames), path, exc)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is buffered and stop the writer; safe to call more than once.

        Args:
            timeout: Seconds to wait for the writer; ``None`` (default) waits until every
                frame is on disk.

        Returns:
            True when everything was written (or failed and was logged) in time.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._rotate_locked()
                if self._thread is not None:
                    self._queue.put(None)
            thread = self._thread
        if thread is None:
            return True
        t0 = time.monotonic()
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "recorder %s: %d frames still being written after %.1f s",
                self.folder, self.pending, time.monotonic() - t0,
            )  # fmt: skip
            return False
        return True
