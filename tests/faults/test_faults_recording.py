"""Recording survives every stop: SIGTERM and SIGINT lose no frame, SIGKILL at most the
rotation in progress (also while the previous one is being written: its journal is
recovered at the next start), and no reader ever sees a half-written file."""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("prometheus_client")
pytest.importorskip("pyarrow")

import pyarrow.parquet as pyarrow_parquet
from _util import free_port, get, metric, serve, stop, wait_ready

from signrt.daemon.build import bundled_replay
from signrt.daemon.recorder import JOURNAL_SUFFIX, RECOVERED_SUFFIX, Recorder
from signrt.io.kaggle import read_parquet

pytestmark = pytest.mark.timeout(90)


def _recorded(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(folder.glob("*.parquet"))
    frames = [read_parquet(f) for f in files]
    numbers = [
        np.unique(pyarrow_parquet.read_table(f, columns=["frame"]).column("frame").to_numpy())
        for f in files
    ]
    if not files:
        return np.zeros((0, 543, 3), np.float32), np.zeros(0, np.int64)
    return np.concatenate(frames), np.concatenate(numbers)


def _check_frames(frames: np.ndarray, numbers: np.ndarray) -> None:
    """Recorded frames are exactly the replayed ones, in order, each once."""
    clip = read_parquet(bundled_replay())
    assert np.all(np.diff(numbers) > 0)
    np.testing.assert_array_equal(frames, clip[numbers % len(clip)])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_writes_every_recorded_frame(sig: signal.Signals, tmp_path: Path) -> None:
    port, rec, err = free_port(), tmp_path / "rec", tmp_path / "stderr.txt"
    # One rotation of 60 s: everything is still in memory when the signal comes.
    # Under the limits deploy/signrt.service sets (as far as a process can set them).
    proc = serve(["--port", str(port), "--fps", "400", "--record", str(rec)], err, hardened=True)
    try:
        wait_ready(proc, port, err)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # at least 1,000 frames, as a minute of camera
            status, body = get(port, "/metrics", 1.0)
            if status == 200 and metric(body, "signrt_frames_processed_total") >= 1000:
                break
            time.sleep(0.2)
        proc.send_signal(sig)
        rc = proc.wait(30)
    finally:
        stop(proc)
    log = err.read_text()
    assert rc == 0, log
    m = re.search(r"stopped in [\d.]+ s after (\d+) frames, (\d+) recorded in (\d+) files", log)
    assert m, log
    processed, recorded = int(m[1]), int(m[2])
    assert processed >= 1000 and recorded == processed, log
    assert not list(rec.glob(".*")), "a temporary file was left behind"
    frames, numbers = _recorded(rec)
    assert len(frames) == recorded
    _check_frames(frames, numbers)
    assert all(f.stat().st_mode & 0o777 == 0o640 for f in rec.glob("*.parquet"))  # UMask


def test_sigkill_loses_at_most_the_rotation_in_progress(tmp_path: Path) -> None:
    port, rec, err = free_port(), tmp_path / "rec", tmp_path / "stderr.txt"
    rec.mkdir()
    (tmp_path / "signrt.toml").write_text(f'record = "{rec}"\nrecord_rotate = 0.5\n')
    proc = serve(["--port", str(port), "--fps", "200", "--config",
                  str(tmp_path / "signrt.toml")], err)  # fmt: skip
    try:
        wait_ready(proc, port, err)
        time.sleep(2.5)
        status, body = get(port, "/metrics", 1.0)
        assert status == 200
        processed = metric(body, "signrt_frames_processed_total")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop(proc)
    frames, numbers = _recorded(rec)  # every visible file is complete parquet
    _check_frames(frames, numbers)
    Recorder(rec).close()  # the next start recovers the journals
    frames, numbers = _recorded(rec)
    _check_frames(frames, numbers)
    # At 200 fps a 0.5 s rotation holds <= 100 frames: at most those are lost.
    assert len(frames) >= processed - 100, (len(frames), processed)
    # A leftover temporary file of the killed writer is removed by the next recorder.
    leftover = rec / ".signrt-20260101-000000-0001.parquet.0123456789ab.tmp"
    leftover.write_bytes(b"PAR1 half written")
    Recorder(rec).close()
    assert not leftover.exists()


def test_sigkill_during_the_background_write_loses_no_finished_rotation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Killed while a finished rotation is being converted to parquet (its temporary file
    exists): that rotation is in its journal, and the next start recovers it."""
    port, rec, err = free_port(), tmp_path / "rec", tmp_path / "stderr.txt"
    rec.mkdir()
    (tmp_path / "signrt.toml").write_text(f'record = "{rec}"\nrecord_rotate = 2\n')
    proc = serve(["--port", str(port), "--fps", "400", "--config",
                  str(tmp_path / "signrt.toml")], err)  # fmt: skip
    processed, killed_in = 0.0, ""
    try:
        wait_ready(proc, port, err)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            status, body = get(port, "/metrics", 1.0)
            if status == 200:
                processed = metric(body, "signrt_frames_processed_total")
            names = os.listdir(rec)
            writing = [n for n in names if n.endswith(".tmp")]
            # From the second rotation on, so that a complete one tells a rotation's size.
            if writing and any(n.endswith(".parquet") and n[0] != "." for n in names):
                proc.send_signal(signal.SIGKILL)
                killed_in = writing[0]
                break
            time.sleep(0.005)
        proc.wait(10)
    finally:
        stop(proc)
    assert killed_in, "no background write seen in 30 s:\n" + err.read_text()
    finished = sorted(rec.glob("*.parquet"))
    full = len(read_parquet(finished[0]))  # frames of one complete rotation
    name = killed_in[1 : killed_in.index(".parquet")]
    # False only if the write ended in the microseconds between seeing it and the kill.
    was_writing = not (rec / f"{name}.parquet").exists()

    caplog.set_level(logging.INFO, "signrt.daemon.recorder")
    recovered = Recorder(rec).recovered  # the next start
    if was_writing:
        assert rec / f"{name}{RECOVERED_SUFFIX}" in recovered  # the rotation being written
    lines = sorted(r.getMessage() for r in caplog.records if "recovered" in r.getMessage())
    assert lines == sorted(
        f"recovered {len(read_parquet(p))} frames of a killed recording from "
        f".{p.name.replace(RECOVERED_SUFFIX, '.parquet')}{JOURNAL_SUFFIX} into {p}"
        for p in recovered
    )  # one line per recovered file
    assert not list(rec.glob(".*")), "a journal or temporary file was left behind"
    frames, numbers = _recorded(rec)
    _check_frames(frames, numbers)  # every frame once, in order, exactly as replayed
    lost = processed - len(frames)
    # At most the frames of the current rotation, which was younger than one rotation (a
    # SIGKILL used to lose the rotation being written as well); in fact only the frames of
    # its last journal flush.
    assert lost < full, (lost, full, processed)
    print(f"processed >= {processed:.0f}, recorded {len(frames)}, lost <= {lost:.0f}, "
          f"a rotation holds {full}")  # fmt: skip
