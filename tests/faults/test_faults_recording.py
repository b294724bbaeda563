"""Recording survives every stop: SIGTERM and SIGINT lose no frame, SIGKILL at most the
rotation in progress, and no reader ever sees a half-written file."""

from __future__ import annotations

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
from signrt.daemon.recorder import Recorder
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
    # At 200 fps a 0.5 s rotation holds <= 100 frames (+ the one being written).
    assert len(frames) >= processed - 2 * 100 - 50, (len(frames), processed)
    # A leftover temporary file of the killed writer is removed by the next recorder.
    leftover = rec / ".signrt-20260101-000000-0001.parquet.0123456789ab.tmp"
    leftover.write_bytes(b"PAR1 half written")
    Recorder(rec).close()
    assert not leftover.exists()
