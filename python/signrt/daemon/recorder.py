"""Recording of the landmark stream to rotating Kaggle-layout parquet files.

Frames are buffered in memory and written by a background thread, one file per
``rotate_seconds`` (or ``rotate_frames``), each atomically (temporary file, then rename), so
a reader or a crash never sees a half-written file. The pipeline thread only appends to a
list.
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


class Recorder:
    """Write landmark frames to ``DIR/signrt-<date>-<time>-<n>.parquet``, rotating.

    Args:
        folder: Destination folder (created).
        rotate_seconds: Start a new file after this many seconds of stream time.
        rotate_frames: ... or after this many frames, whichever comes first.
        prefix: File name prefix.
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
        self.errors = 0
        self._frames: list[npt.NDArray[np.float32]] = []
        self._numbers: list[int] = []
        self._started = time.monotonic()
        self._seq = 0
        self._queue: queue.Queue[tuple[Path, list[npt.NDArray[np.float32]], list[int]] | None] = (
            queue.Queue()
        )
        self._thread = threading.Thread(target=self._writer, name="signrt-recorder", daemon=True)
        self._thread.start()

    def add(self, index: int, frame: npt.NDArray[np.float32]) -> None:
        """Append one frame (called from the pipeline thread)."""
        self._frames.append(np.asarray(frame, dtype=np.float32))
        self._numbers.append(index)
        if (
            len(self._frames) >= self.rotate_frames
            or time.monotonic() - self._started >= self.rotate_seconds
        ):
            self.rotate()

    def rotate(self) -> None:
        """Hand the buffered frames to the writer and start a new file."""
        if not self._frames:
            return
        self._seq += 1
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{self.prefix}-{stamp}-{self._seq:04d}.parquet"
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
                # Frame numbers must be unique per file; a looping source may repeat none
                # within one file because indices only grow.
                write_parquet(path, np.stack(frames), frames=numbers)
                self.files.append(path)
                log.info("recorded %d frames to %s", len(frames), path)
            except Exception as exc:
                self.errors += 1
                log.error("recording to %s failed: %s", path, exc)

    def close(self, timeout: float = 1.0) -> None:
        """Write what is buffered and stop the writer (waits up to ``timeout`` seconds)."""
        self.rotate()
        self._queue.put(None)
        self._thread.join(timeout)
