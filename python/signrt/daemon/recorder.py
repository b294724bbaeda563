"""Recording of the landmark stream to rotating Kaggle-layout parquet files.

One file per ``rotate_seconds`` (or ``rotate_frames``), named after the rotation's first
frame: ``DIR/<prefix>-<date>-<time>-<n>.parquet``. The pipeline thread only appends a frame
to a list; two background threads do the I/O:

* the **journal** thread appends the frames of the current rotation to a crash-safe journal,
  ``DIR/.<name>.parquet.journal`` (an Arrow IPC stream of ``frame`` int64 and ``xyz``
  float32 record batches), every ``flush_frames`` frames or ``flush_seconds`` seconds,
  whichever comes first. Each batch reaches the operating system as soon as it is written,
  so a killed process leaves a journal that is readable up to its last complete batch;
* the **writer** thread converts each finished rotation (from memory) to the final parquet
  file, atomically (temporary file, then rename: no reader sees a half-written file), and
  only then deletes the rotation's journal.

Every stop path flushes: :meth:`Recorder.close` hands the current rotation to the threads
and waits until everything is on disk (the daemon calls it on SIGTERM/SIGINT, when the
source ends and when the pipeline fails), so those lose nothing. A SIGKILL (or a crash, or
the OOM killer) loses only frames that were in no journal batch yet: at most the last
``flush_seconds`` of the current rotation. A rotation whose parquet file was still being
written is in its journal. When a recorder next opens the folder it recovers every
journal left behind into ``<name>.recovered.parquet`` (one log line per file), deletes a
journal whose parquet file is already complete, and removes the temporary files of a
killed parquet write. A power cut is not covered beyond what the file system keeps: the
journal is not fsync'ed (the parquet files are).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["JOURNAL_SUFFIX", "RECOVERED_SUFFIX", "Recorder", "read_journal", "recover_journals"]

log = logging.getLogger(__name__)

#: Suffix of a rotation's journal: ``.<name>.parquet`` + this.
JOURNAL_SUFFIX = ".journal"
#: Suffix of a parquet file recovered from a journal: ``<name>`` + this.
RECOVERED_SUFFIX = ".recovered.parquet"
# Schema metadata of a journal, checked when it is read back.
_FORMAT = b"signrt-recorder-journal-1"


@dataclass(eq=False)
class _Rotation:
    """One file in the making.

    ``frames``, ``numbers`` and ``handed*`` are guarded by the recorder's lock; ``sink``,
    ``writer``, ``schema``, ``journaled`` and ``journal_failed`` belong to the journal thread.
    """

    path: Path
    journal: Path
    frames: list[npt.NDArray[np.float32]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    handed: int = 0  # frames handed to the journal thread
    handed_at: float = field(default_factory=time.monotonic)
    sink: Any = None
    writer: Any = None
    schema: Any = None
    journaled: int = 0
    journal_failed: bool = False


# Items of the journal queue: new frames of a rotation, the end of a rotation, or the end.
_Append = tuple[_Rotation, list[npt.NDArray[np.float32]], list[int]]
_JournalItem = _Append | _Rotation | None


def _journal_schema(shape: tuple[int, ...]) -> Any:
    import pyarrow as pa

    size = int(np.prod(shape))
    return pa.schema(
        [("frame", pa.int64()), ("xyz", pa.list_(pa.float32(), size))],
        metadata={b"format": _FORMAT, b"shape": ",".join(map(str, shape)).encode()},
    )


def read_journal(path: str | Path) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Read a recorder journal up to its last complete record batch.

    A journal cut short (the recorder was killed while writing it) yields the frames of its
    complete batches; a torn batch at the end and anything after it are ignored, and a file
    without a complete header (killed before its first batch) yields no frame.

    Args:
        path: The journal file.

    Returns:
        ``(frames, numbers)``: (T, ...) float32 landmarks in the shape the recorder was
        given (usually (T, 543, 3)) and their (T,) frame numbers; T may be 0.

    Raises:
        DataError: If the file's header is that of another format than a recorder journal.
    """
    import pyarrow as pa

    from ..errors import DataError

    p = Path(path)
    batches = []
    with open(p, "rb") as fh:
        try:
            reader = pa.ipc.open_stream(fh)
        except (pa.ArrowInvalid, OSError) as exc:  # killed before its header was written
            log.debug("%s: no complete header (%s)", p, exc)
            return np.zeros((0, 543, 3), np.float32), np.zeros(0, np.int64)
        meta = reader.schema.metadata or {}
        if meta.get(b"format") != _FORMAT or b"shape" not in meta:
            raise DataError(f"{p}: not a recorder journal (expected format {_FORMAT.decode()})")
        shape = tuple(int(s) for s in meta[b"shape"].decode().split(","))
        if reader.schema != _journal_schema(shape):
            raise DataError(f"{p}: journal schema {reader.schema} does not match its shape")
        while True:
            try:
                batches.append(reader.read_next_batch())
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError) as exc:  # torn batch: the writer was killed
                log.debug("%s: journal ends in a torn batch (%s)", p, exc)
                break
    if not batches:
        return np.zeros((0, *shape), np.float32), np.zeros(0, np.int64)
    table = pa.Table.from_batches(batches)
    numbers = table.column("frame").to_numpy().astype(np.int64)
    flat = table.column("xyz").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    frames = np.asarray(flat, dtype=np.float32).reshape(len(numbers), *shape)
    return frames, numbers


def recover_journals(folder: str | Path, prefix: str = "signrt") -> list[Path]:
    """Turn the journals a killed recorder left in ``folder`` into parquet files.

    Each ``.<name>.parquet.journal`` becomes ``<name>.recovered.parquet`` (written
    atomically, then the journal is deleted), with one log line per file. A journal whose
    ``<name>.parquet`` (or recovered file) already exists is deleted: that file is complete.
    A journal without a single complete batch is deleted; a file of another format, or one
    whose parquet file cannot be written, is logged and kept. Temporary files of a killed parquet
    write (``.<name>.parquet.<random>.tmp``) are removed: their frames are in the journal.

    Args:
        folder: The recording folder.
        prefix: The recorder's file name prefix.

    Returns:
        The recovered parquet files, in name order.
    """
    from ..errors import SignrtError
    from ..io.kaggle import write_parquet

    root = Path(folder)
    recovered: list[Path] = []
    for journal in sorted(root.glob(f".{prefix}-*.parquet{JOURNAL_SUFFIX}")):
        name = journal.name[1 : -len(".parquet" + JOURNAL_SUFFIX)]
        final, target = root / f"{name}.parquet", root / f"{name}{RECOVERED_SUFFIX}"
        done = next((p for p in (final, target) if p.exists()), None)
        if done is not None:
            with contextlib.suppress(FileNotFoundError):
                journal.unlink()
            log.info("removed journal %s: %s is complete", journal, done)
            continue
        try:
            frames, numbers = read_journal(journal)
            if len(frames):
                write_parquet(target, frames, frames=numbers.tolist())
        except (SignrtError, OSError, ValueError) as exc:
            log.error("cannot recover journal %s (kept): %s", journal, exc)
            continue
        with contextlib.suppress(FileNotFoundError):
            journal.unlink()
        if len(frames):
            recovered.append(target)
            log.warning(
                "recovered %d frames of a killed recording from %s into %s",
                len(frames), journal.name, target,
            )  # fmt: skip
        else:
            log.warning("removed journal %s of a killed recording: no complete frame", journal)
    # atomic_write names its temporary ".<name>.<random>.tmp" beside the destination.
    for tmp in sorted(root.glob(f".{prefix}-*.parquet.*.tmp")):
        try:
            tmp.unlink()
        except OSError as exc:  # pragma: no cover - permissions
            log.warning("cannot remove stale temporary file %s: %s", tmp, exc)
        else:
            log.warning("removed %s, left by a recorder that was killed mid-write", tmp)
    return recovered


class Recorder:
    """Write landmark frames to ``DIR/<prefix>-<date>-<time>-<n>.parquet``, rotating.

    Thread-safe: :meth:`add` and :meth:`rotate` run on the pipeline thread, :meth:`close`
    on whichever thread stops the daemon. Opening a folder first recovers what a killed
    recorder left there (:func:`recover_journals`). See the module docstring for what each
    way of stopping keeps.

    Args:
        folder: Destination folder (created).
        rotate_seconds: Start a new file after this many seconds of stream time.
        rotate_frames: ... or after this many frames, whichever comes first.
        prefix: File name prefix.
        flush_frames: Append the current rotation's new frames to its journal every this
            many frames...
        flush_seconds: ... or this many seconds, whichever comes first.

    Attributes:
        files: Files written so far, in order.
        frames_written: Frames in those files.
        recovered: Files recovered from the journals of a killed recorder at start.
        errors: Files that could not be written (logged; their journal is kept, for
            recovery at the next start).
        late: Frames offered after :meth:`close` (not recorded; logged once).
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        rotate_seconds: float = 60.0,
        rotate_frames: int = 3600,
        prefix: str = "signrt",
        flush_frames: int = 64,
        flush_seconds: float = 0.5,
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.rotate_seconds = rotate_seconds
        self.rotate_frames = max(1, rotate_frames)
        self.prefix = prefix
        self.flush_frames = max(1, flush_frames)
        self.flush_seconds = flush_seconds
        self.files: list[Path] = []
        self.frames_written = 0
        self.errors = 0
        self.late = 0
        self._accepted = 0
        self._failed = 0
        self._rot: _Rotation | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._closed = False
        self._journal_queue: queue.Queue[_JournalItem] = queue.Queue()
        self._write_queue: queue.Queue[_Rotation | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.recovered = recover_journals(self.folder, prefix)

    @property
    def pending(self) -> int:
        """Frames accepted but not yet in a finished file (nor failed)."""
        with self._lock:
            return self._accepted - self.frames_written - self._failed

    def add(self, index: int, frame: npt.NDArray[np.float32]) -> None:
        """Append one frame (called from the pipeline thread)."""
        with self._lock:
            if self._closed:
                self.late += 1
                if self.late == 1:
                    log.warning("recorder %s is closed; frame %d not recorded", self.folder, index)
                return
            rot = self._rot
            if rot is None:
                rot = self._rot = self._new_rotation()
            rot.frames.append(np.array(frame, dtype=np.float32))
            rot.numbers.append(index)
            self._accepted += 1
            now = time.monotonic()
            if len(rot.frames) >= self.rotate_frames or now - rot.started >= self.rotate_seconds:
                self._rotate_locked()
            elif (
                len(rot.frames) - rot.handed >= self.flush_frames
                or now - rot.handed_at >= self.flush_seconds
            ):
                self._hand_locked(rot)

    def rotate(self) -> None:
        """Hand the buffered frames to the writer and start a new file."""
        with self._lock:
            self._rotate_locked()

    def _new_rotation(self) -> _Rotation:
        if not self._threads:
            for target, name in ((self._journal_loop, "journal"), (self._write_loop, "writer")):
                t = threading.Thread(target=target, name=f"signrt-recorder-{name}", daemon=True)
                t.start()
                self._threads.append(t)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:  # never reuse a name, also not one of an earlier (killed) recorder
            self._seq += 1
            name = f"{self.prefix}-{stamp}-{self._seq:04d}"
            path = self.folder / f"{name}.parquet"
            journal = self.folder / f".{name}.parquet{JOURNAL_SUFFIX}"
            recovered = self.folder / f"{name}{RECOVERED_SUFFIX}"
            if not (path.exists() or journal.exists() or recovered.exists()):
                return _Rotation(path, journal)

    def _hand_locked(self, rot: _Rotation) -> None:
        if len(rot.frames) > rot.handed:
            self._journal_queue.put((rot, rot.frames[rot.handed :], rot.numbers[rot.handed :]))
            rot.handed = len(rot.frames)
        rot.handed_at = time.monotonic()

    def _rotate_locked(self) -> None:
        rot = self._rot
        if rot is None or not rot.frames:
            return
        self._hand_locked(rot)
        self._journal_queue.put(rot)
        self._rot = None

    # ---------------------------------------------------------------- journal thread
    def _journal_loop(self) -> None:
        while True:
            try:
                item = self._journal_queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                with self._lock:  # frames may wait while no new frame comes
                    rot = self._rot
                    if rot is not None and time.monotonic() - rot.handed_at >= self.flush_seconds:
                        self._hand_locked(rot)
                continue
            if item is None:
                self._write_queue.put(None)
                return
            if isinstance(item, _Rotation):
                self._close_journal(item)
                self._write_queue.put(item)
            else:
                self._append_journal(*item)

    def _append_journal(
        self, rot: _Rotation, frames: list[npt.NDArray[np.float32]], numbers: list[int]
    ) -> None:
        if rot.journal_failed:
            return
        import pyarrow as pa

        try:
            block = np.stack(frames)  # (n, 543, 3) float32
            if rot.writer is None:
                rot.schema = _journal_schema(block.shape[1:])
                # An Arrow file: batches are written without the GIL, unbuffered. The name
                # is new (checked in _new_rotation).
                rot.sink = pa.OSFile(str(rot.journal), "wb")
                rot.writer = pa.ipc.new_stream(rot.sink, rot.schema)
            xyz = pa.FixedSizeListArray.from_arrays(
                pa.array(block.reshape(-1), type=pa.float32()),
                rot.schema.field("xyz").type.list_size,
            )
            numbers_ = pa.array(np.asarray(numbers, dtype=np.int64))
            batch = pa.record_batch([numbers_, xyz], schema=rot.schema)
            rot.writer.write_batch(batch)
            rot.journaled += len(frames)
        except Exception as exc:
            rot.journal_failed = True
            log.error(
                "journal %s failed after %d frames (the rotation is kept in memory only): %s",
                rot.journal, rot.journaled, exc,
            )  # fmt: skip

    def _close_journal(self, rot: _Rotation) -> None:
        try:
            if rot.writer is not None and not rot.journal_failed:
                rot.writer.close()  # end-of-stream marker
        except Exception as exc:
            rot.journal_failed = True
            log.error("journal %s could not be closed: %s", rot.journal, exc)
        finally:
            if rot.sink is not None:
                with contextlib.suppress(OSError):
                    rot.sink.close()
            rot.writer = rot.sink = None

    # ----------------------------------------------------------------- writer thread
    def _write_loop(self) -> None:
        from ..io.kaggle import write_parquet

        while True:
            rot = self._write_queue.get()
            if rot is None:
                return
            n = len(rot.frames)
            try:
                # Frame numbers must be unique per file; they are, because a source's
                # indices only grow (across loops and reconnects too).
                write_parquet(rot.path, np.stack(rot.frames), frames=rot.numbers)
            except Exception as exc:
                with self._lock:
                    self.errors += 1
                    self._failed += n
                kept = (
                    f"; {rot.journaled} of them are kept in {rot.journal} and recovered at "
                    "the next start"
                    if rot.journaled
                    else ""
                )
                log.error("recording %d frames to %s failed: %s%s", n, rot.path, exc, kept)
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(rot.journal)
            with self._lock:
                self.files.append(rot.path)
                self.frames_written += n
            rot.frames, rot.numbers = [], []
            log.info("recorded %d frames to %s", n, rot.path)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is buffered and stop the threads; safe to call more than once.

        Args:
            timeout: Seconds to wait for the threads; ``None`` (default) waits until every
                frame is on disk.

        Returns:
            True when everything was written (or failed and was logged) in time.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                self._rotate_locked()
                if self._threads:
                    self._journal_queue.put(None)
            threads = list(self._threads)
        t0 = time.monotonic()
        for t in threads:
            t.join(None if timeout is None else max(0.0, timeout - (time.monotonic() - t0)))
        if any(t.is_alive() for t in threads):
            log.error(
                "recorder %s: %d frames still being written after %.1f s",
                self.folder, self.pending, time.monotonic() - t0,
            )  # fmt: skip
            return False
        return True
