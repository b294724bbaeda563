"""The landmark recorder: rotation, exact content, flush on close, thread safety, the
crash-safe journal and its recovery."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

import pyarrow as pa

from signrt.daemon.recorder import (
    JOURNAL_SUFFIX,
    RECOVERED_SUFFIX,
    Recorder,
    read_journal,
    recover_journals,
)
from signrt.errors import DataError
from signrt.io.kaggle import read_parquet, write_parquet


def _frames(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 543, 3), dtype=np.float32)
    x[:, 468:489] = np.nan  # a missing hand survives the round trip
    return x


def test_rotates_by_frames_and_close_writes_the_rest(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, rotate_seconds=1e9, rotate_frames=40)
    clip = _frames(100)
    for i, frame in enumerate(clip):
        rec.add(i, frame)
    assert rec.close() is True
    assert [len(read_parquet(f)) for f in rec.files] == [40, 40, 20]
    np.testing.assert_array_equal(np.concatenate([read_parquet(f) for f in rec.files]), clip)
    assert rec.frames_written == 100 and rec.errors == 0 and rec.pending == 0
    assert sorted(tmp_path.iterdir()) == sorted(rec.files)  # no temporary file left


def test_close_waits_for_a_large_rotation(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, rotate_seconds=1e9, rotate_frames=10_000)
    for i, frame in enumerate(_frames(1200)):
        rec.add(i, frame)
    assert rec.close() is True  # no timeout: the 1,200 frames are on disk on return
    assert rec.frames_written == 1200 and len(read_parquet(rec.files[0])) == 1200


def test_frames_after_close_are_counted_not_written(tmp_path: Path) -> None:
    rec = Recorder(tmp_path)
    rec.add(0, _frames(1)[0])
    rec.close()
    rec.close()  # idempotent
    rec.add(1, _frames(1)[0])
    assert rec.late == 1 and rec.frames_written == 1 and len(rec.files) == 1


def test_recorder_without_frames_writes_nothing_and_starts_no_thread(tmp_path: Path) -> None:
    before = threading.active_count()
    rec = Recorder(tmp_path / "new")
    assert threading.active_count() == before
    assert rec.close() is True and rec.files == [] and list((tmp_path / "new").iterdir()) == []


def test_concurrent_add_and_rotate_lose_nothing(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, rotate_seconds=1e9, rotate_frames=1_000_000)
    clip = _frames(300)
    stop = threading.Event()

    def rotator() -> None:
        while not stop.is_set():
            rec.rotate()

    t = threading.Thread(target=rotator)
    t.start()
    try:
        for i, frame in enumerate(clip):
            rec.add(i, frame)
    finally:
        stop.set()
        t.join(10)
    rec.close()
    got = np.concatenate([read_parquet(f) for f in rec.files])
    np.testing.assert_array_equal(got, clip)


def test_failed_write_is_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                            ) -> None:
    rec = Recorder(tmp_path / "gone", rotate_frames=5)
    (tmp_path / "gone").rmdir()  # the folder disappears under the recorder
    for i, frame in enumerate(_frames(5)):
        rec.add(i, frame)
    rec.close()
    assert rec.errors == 1 and rec.files == []
    assert any("recording 5 frames" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------ journal
def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _journals(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".*{JOURNAL_SUFFIX}"))


def _journaled(folder: Path) -> int:
    js = _journals(folder)
    return len(read_journal(js[0])[0]) if js else 0


def test_current_rotation_is_journaled_before_it_is_finished(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, rotate_seconds=1e9, rotate_frames=10_000, flush_frames=10)
    clip = _frames(35)
    for i, frame in enumerate(clip):
        rec.add(100 + i, frame)
    # 30 frames in three batches at once, the last 5 after flush_seconds without new frames.
    assert _wait(lambda: _journaled(tmp_path) == 35), _journaled(tmp_path)
    (journal,) = _journals(tmp_path)
    frames, numbers = read_journal(journal)
    np.testing.assert_array_equal(frames, clip)  # bit for bit, NaN included
    np.testing.assert_array_equal(numbers, np.arange(100, 135))
    assert rec.files == [] and rec.pending == 35
    assert rec.close() is True
    assert _journals(tmp_path) == []  # deleted once the parquet file is in place
    np.testing.assert_array_equal(read_parquet(rec.files[0]), clip)


def _killed_journal(folder: Path, n: int = 50, batch: int = 10) -> tuple[Path, np.ndarray]:
    """A journal as a killed recorder leaves it: ``n`` frames in batches, not closed."""
    rec = Recorder(folder, rotate_seconds=1e9, rotate_frames=10_000, flush_frames=batch)
    clip = _frames(n, seed=1)
    for i, frame in enumerate(clip):
        rec.add(i, frame)
    assert _wait(lambda: _journaled(folder) == n)
    (journal,) = _journals(folder)
    copy = folder / "journal.bytes"
    shutil.copyfile(journal, copy)  # what is on disk while the rotation is in progress
    rec.close()
    for f in rec.files:
        f.unlink()
    return copy, clip


@pytest.fixture(scope="module")
def killed_journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, np.ndarray]:
    path, clip = _killed_journal(tmp_path_factory.mktemp("journal"))
    return path.read_bytes(), clip


@settings(max_examples=40, deadline=None)
@given(cut=st.floats(0.0, 1.0))
@example(cut=0.0).via("empty file")
@example(cut=0.001).via("torn header")
@example(cut=1.0).via("complete")
def test_truncated_journal_reads_up_to_its_last_complete_batch(
    killed_journal: tuple[bytes, np.ndarray], cut: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data, clip = killed_journal
    path = tmp_path_factory.mktemp("cut") / f".signrt-x-0001.parquet{JOURNAL_SUFFIX}"
    size = int(cut * len(data))
    path.write_bytes(data[:size])
    frames, numbers = read_journal(path)
    assert frames.shape[1:] == (543, 3)
    assert len(frames) % 10 == 0 and len(frames) <= len(clip)  # whole batches only
    if size == len(data):
        assert len(frames) == len(clip)
    np.testing.assert_array_equal(frames, clip[: len(frames)])
    np.testing.assert_array_equal(numbers, np.arange(len(frames)))


def test_next_recorder_recovers_a_truncated_journal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy, clip = _killed_journal(tmp_path / "scratch")
    data = copy.read_bytes()
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    name = "signrt-20260101-120000-0007"
    journal = rec_dir / f".{name}.parquet{JOURNAL_SUFFIX}"
    journal.write_bytes(data[: len(data) - 1000])  # the last batch is torn
    stale = rec_dir / f".{name}.parquet.0123456789ab.tmp"  # the killed parquet write
    stale.write_bytes(b"PAR1 half written")
    caplog.set_level(logging.INFO, "signrt.daemon.recorder")
    rec = Recorder(rec_dir)
    target = rec_dir / f"{name}{RECOVERED_SUFFIX}"
    assert rec.recovered == [target]
    assert not journal.exists() and not stale.exists()
    np.testing.assert_array_equal(read_parquet(target), clip[:40])
    lines = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert lines == [f"recovered 40 frames of a killed recording from {journal.name} into {target}"]
    # The new recorder's files do not collide with the recovered one and are not counted.
    rec.add(0, clip[0])
    rec.close()
    assert rec.files[0] != target and rec.frames_written == 1


def test_recovery_of_journals_whose_file_is_complete_empty_or_foreign(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy, clip = _killed_journal(tmp_path / "scratch")
    data = copy.read_bytes()
    done = tmp_path / "signrt-20260101-120000-0001.parquet"  # killed after the rename
    write_parquet(done, clip[:3])
    (tmp_path / f".{done.name}{JOURNAL_SUFFIX}").write_bytes(data)
    header_only = tmp_path / f".signrt-20260101-120000-0002.parquet{JOURNAL_SUFFIX}"
    header_only.write_bytes(data[:300])  # killed before the first batch was complete
    empty = tmp_path / f".signrt-20260101-120000-0003.parquet{JOURNAL_SUFFIX}"
    empty.write_bytes(b"")  # killed right after creating it
    foreign = tmp_path / f".signrt-20260101-120000-0004.parquet{JOURNAL_SUFFIX}"
    table = pa.table({"frame": pa.array([1, 2], pa.int64())})
    with pa.OSFile(str(foreign), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    caplog.set_level(logging.INFO, "signrt.daemon.recorder")
    assert recover_journals(tmp_path) == []
    assert len(read_parquet(done)) == 3  # untouched
    assert _journals(tmp_path) == [foreign]  # not a journal: kept, and said so
    with pytest.raises(DataError, match="not a recorder journal"):
        read_journal(foreign)
    assert any("cannot recover journal" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)  # fmt: skip
    assert not list(tmp_path.glob("*.recovered.parquet"))


def test_failed_parquet_write_keeps_the_journal_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signrt.io.kaggle

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    clip = _frames(30)
    with monkeypatch.context() as m:
        m.setattr(signrt.io.kaggle, "write_parquet", disk_full)
        rec = Recorder(tmp_path, rotate_frames=30, flush_frames=8)
        for i, frame in enumerate(clip):
            rec.add(i, frame)
        rec.close()
    assert rec.errors == 1 and rec.files == [] and rec.pending == 0
    again = Recorder(tmp_path)
    assert len(again.recovered) == 1
    np.testing.assert_array_equal(read_parquet(again.recovered[0]), clip)


def test_failed_journal_is_logged_and_the_rotation_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(5, "Input/output error")

    clip = _frames(20)
    with monkeypatch.context() as m:
        m.setattr(pa.ipc, "new_stream", broken)
        rec = Recorder(tmp_path, rotate_frames=20, flush_frames=4)
        for i, frame in enumerate(clip):
            rec.add(i, frame)
        assert rec.close() is True
    np.testing.assert_array_equal(read_parquet(rec.files[0]), clip)
    assert sorted(tmp_path.iterdir()) == rec.files  # the empty journal is gone as well
    failed = [r for r in caplog.records if "journal" in r.getMessage()]
    assert len(failed) == 1 and "kept in memory only" in failed[0].getMessage()
