"""The landmark recorder: rotation, exact content, flush on close, thread safety."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from signrt.daemon.recorder import Recorder
from signrt.io.kaggle import read_parquet


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
