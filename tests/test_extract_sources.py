"""Frame sources: file end, camera failure and reconnect with backoff, replay timing, errors."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from signrt import SourceError
from signrt.extract.sources import (
    CaptureSource,
    ImageFolderSource,
    ReplaySource,
    open_source,
)

pytestmark = pytest.mark.timeout(60)


class FakeCapture:
    """A VideoCapture stand-in: yields ``frames`` images, then fails (camera unplugged)."""

    def __init__(self, frames: int, opened: bool = True) -> None:
        self.frames = frames
        self.opened = opened
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 30.0 if prop == 5 else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.frames <= 0:
            return False, None
        self.frames -= 1
        return True, np.zeros((4, 4, 3), dtype=np.uint8)

    def release(self) -> None:
        self.released = True


class Factory:
    """Hands out scripted captures; records when each open happened."""

    def __init__(self, script: list[FakeCapture]) -> None:
        self.script = list(script)
        self.opened_at: list[float] = []

    def __call__(self, target: object, *api: object) -> FakeCapture:
        self.opened_at.append(time.monotonic())
        if not self.script:
            return FakeCapture(0, opened=False)
        return self.script.pop(0)


def test_camera_failure_reconnects_with_backoff() -> None:
    # 3 frames, then the camera vanishes; two failed reopen attempts; then it is back.
    fac = Factory([FakeCapture(3), FakeCapture(0, False), FakeCapture(0, False), FakeCapture(2)])
    src = CaptureSource(0, live=True, backoff=(0.05, 0.2), capture_factory=fac)
    frames = [src.read() for _ in range(5)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames if f] == [0, 1, 2, 3, 4]
    assert src.reconnects == 1
    gaps = np.diff(fac.opened_at)
    assert len(gaps) == 3
    # Exponential backoff: 0.05, then 0.1, then 0.2 s (with scheduling slack).
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.19
    assert gaps[2] > gaps[0]
    src.close()


def test_camera_gives_up_after_max_retries() -> None:
    fac = Factory([FakeCapture(1)])
    src = CaptureSource(0, live=True, backoff=(0.01, 0.02), max_retries=3, capture_factory=fac)
    assert src.read() is not None
    with pytest.raises(SourceError, match="after 3 attempts"):
        src.read()


def test_close_interrupts_backoff_promptly() -> None:
    fac = Factory([FakeCapture(0)])
    src = CaptureSource(0, live=True, backoff=(5.0, 10.0), capture_factory=fac)
    result: list[object] = []
    t = threading.Thread(target=lambda: result.append(src.read()))
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    src.close()
    t.join(2.0)
    assert not t.is_alive() and result == [None]
    assert time.monotonic() - t0 < 0.5


def test_first_open_failure_is_reported_with_hint() -> None:
    with pytest.raises(SourceError, match="video"):
        CaptureSource("/dev/video99", live=True, capture_factory=Factory([]))


def test_replay_timing_and_loop() -> None:
    clip = np.random.default_rng(0).random((20, 543, 3)).astype(np.float32)
    src = ReplaySource(clip, fps=50.0)
    t0 = time.monotonic()
    frames = list(src)
    elapsed = time.monotonic() - t0
    assert len(frames) == 20 and src.ended
    # Frame i is delivered at i / fps: 19 intervals of 20 ms.
    assert 0.36 <= elapsed < 0.8
    assert [f.timestamp for f in frames] == pytest.approx([i / 50 for i in range(20)])
    np.testing.assert_array_equal(frames[7].landmarks, clip[7])
    assert frames[0].image is None

    loop = ReplaySource(clip, fps=1000.0, realtime=False, loop=True)
    got = [loop.read() for _ in range(45)]
    assert [f.index for f in got if f] == list(range(45))
    np.testing.assert_array_equal(got[44].landmarks, clip[4])
    loop.close()
    assert loop.read() is None


def test_replay_reads_parquet_and_npy(tmp_path: Path) -> None:
    from signrt.io.kaggle import write_parquet

    clip = np.full((5, 543, 3), np.nan, dtype=np.float32)
    clip[:, 522:543] = 0.25
    write_parquet(tmp_path / "c.parquet", clip)
    np.save(tmp_path / "c.npy", clip)
    for name in ("c.parquet", "c.npy"):
        src = open_source(f"replay:{tmp_path / name}", fps=1000)
        got = np.stack([f.landmarks for f in src])
        np.testing.assert_array_equal(got, clip)
    with pytest.raises(SourceError, match="not found"):
        open_source(f"replay:{tmp_path / 'missing.parquet'}")
    with pytest.raises(SourceError, match="543"):
        ReplaySource(np.zeros((3, 75, 3)))


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="neither"):
        open_source(tmp_path / "nope.mp4")
    with pytest.raises(SourceError, match="empty source"):
        open_source("  ")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no image"):
        open_source(tmp_path / "empty")
    # Without OpenCV the message says how to install it; with it, how to find cameras.
    has_cv2 = importlib.util.find_spec("cv2") is not None
    hint = r"ls /dev/video" if has_cv2 else r"pip install 'signrt\[camera\]'"
    with pytest.raises(SourceError, match=hint):
        open_source("/dev/video97")


def test_gstreamer_pipeline_needs_gstreamer_opencv() -> None:
    cv2 = pytest.importorskip("cv2")
    info = cv2.getBuildInformation()
    has_gst = any("GStreamer" in line and "YES" in line for line in info.splitlines())
    if has_gst:
        with pytest.raises(SourceError, match="appsink"):
            open_source("videotestsrc ! videoconvert ! fakesink")
    else:
        with pytest.raises(SourceError, match="GStreamer support"):
            open_source("videotestsrc ! videoconvert ! appsink drop=1 max-buffers=1")


def _write_video(path: Path, n: int) -> Path:
    cv2 = pytest.importorskip("cv2")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (32, 24))
    for i in range(n):
        writer.write(np.full((24, 32, 3), i * 20, dtype=np.uint8))
    writer.release()
    return path


def test_video_file_ends_and_is_reported(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "v.avi", 7)
    src = open_source(video)
    frames = list(src)
    assert len(frames) == 7 and src.ended
    assert frames[0].image is not None and frames[0].image.shape == (24, 32, 3)
    assert frames[3].timestamp == pytest.approx(3 / 25, abs=1e-3)
    assert src.read() is None
    # Paced at 50 fps: 7 frames take about 6 / 50 s.
    paced = open_source(video, fps=50, realtime=True)
    t0 = time.monotonic()
    assert len(list(paced)) == 7
    assert time.monotonic() - t0 >= 0.1


def test_video_file_loops(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "v.avi", 3)
    src = open_source(video, loop=True)
    frames = [src.read() for _ in range(8)]
    assert all(f is not None for f in frames)
    ts = [f.timestamp for f in frames if f]
    assert all(np.diff(ts) > 0)  # timestamps keep increasing
    src.close()


def test_corrupt_video_raises(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match="cannot open"):
        open_source(bad)


def test_image_folder(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 8, 3), i * 50, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(tmp_path, fps=10)
    assert isinstance(src, ImageFolderSource)
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames if f.image is not None] == [0, 50, 100]
    assert src.last_error is not None and "broken.png" in src.last_error


def test_looping_file_that_goes_away_is_retried_without_a_burst() -> None:
    # 3 frames; at the end the file cannot be reopened twice (deleted), then it is back.
    fac = Factory([FakeCapture(3), FakeCapture(0, False), FakeCapture(0, False),
                   FakeCapture(0, False), FakeCapture(3)])  # fmt: skip
    src = CaptureSource("clip.mp4", loop=True, fps=50.0, backoff=(0.05, 0.1),
                        capture_factory=fac)  # fmt: skip
    first = [src.read() for _ in range(3)]
    t0 = time.monotonic()
    resumed = [src.read() for _ in range(3)]
    delivered = time.monotonic()
    assert all(f is not None for f in first + resumed) and not src.ended
    assert [f.index for f in resumed if f] == [3, 4, 5]
    assert src.reconnects == 1 and src.last_error is None
    # After the outage the pacer restarts: the 3 frames take ~2/50 s, not 0 (a burst).
    assert delivered - t0 >= 0.05 + 0.1 + 0.03
    src.close()


def test_looping_file_gives_up_after_max_retries() -> None:
    fac = Factory([FakeCapture(2)])  # every reopen fails
    src = CaptureSource("clip.mp4", loop=True, backoff=(0.01, 0.02), max_retries=3,
                        capture_factory=fac)  # fmt: skip
    assert src.read() is not None and src.read() is not None
    with pytest.raises(SourceError, match="after 3 attempts"):
        src.read()
    assert src.ended


def test_source_names_and_errors_hide_credentials() -> None:
    class Refusing:
        def __init__(self, target: str, *api: object) -> None:
            raise OSError(f"cannot connect to {target}")

    url = "rtsp://admin:hunter2@127.0.0.1:1/live?token=abc"
    with pytest.raises(SourceError) as exc:
        CaptureSource(url, live=True, capture_factory=Refusing)
    assert "hunter2" not in str(exc.value) and "abc" not in str(exc.value)
    assert "rtsp://admin:***@127.0.0.1:1/live?token=***" in str(exc.value)
    src = CaptureSource(url, live=True, capture_factory=Factory([FakeCapture(1)]))
    assert src.name == "rtsp://admin:***@127.0.0.1:1/live?token=***" and "hunter2" not in repr(src)
    assert src.target == url  # the real address is still what gets opened
    src.close()
