"""Frame sources: video files, cameras, GStreamer pipelines, image folders, landmark replay.

:func:`open_source` turns one string into a :class:`Source`:

=====================================  ==================================================
``0``, ``1``, ``/dev/video0``          a camera (V4L2), reopened with backoff if it drops
``rtsp://...``, ``http://...``         a network stream (FFmpeg), reopened like a camera
``nvarguscamerasrc ... ! appsink``     a GStreamer pipeline (needs OpenCV with GStreamer;
``gst:PIPELINE``                       the pip wheels have none, JetPack's OpenCV has)
``DIR/``                               an image folder, files in name order
``replay:CLIP.parquet`` (or ``.npy``)  recorded landmarks replayed at ``fps``, no extractor
``VIDEO.mp4`` (any other path)         a video file
=====================================  ==================================================

A source yields :class:`Frame` objects (a BGR image, or landmarks for replay) from
:meth:`Source.read`, ``None`` once it has ended. A source that cannot be opened raises
:class:`signrt.SourceError` with a hint; a live source that fails is reopened with
exponential backoff until :meth:`Source.close` is called (from any thread).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._closing import Closing
from .._redact import redact
from ..errors import SourceError

__all__ = [
    "IMAGE_SUFFIXES",
    "CaptureSource",
    "Frame",
    "ImageFolderSource",
    "ReplaySource",
    "Source",
    "open_source",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_CV2_HINT = "install OpenCV: pip install 'signrt[camera]' (opencv-python-headless)"


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise SourceError(f"OpenCV is not installed ({exc}); {_CV2_HINT}") from exc
    return cv2


@dataclass
class Frame:
    """One frame from a source.

    Attributes:
        index: 0-based frame number within the source (continues across reconnects/loops).
        timestamp: Seconds: the media time for files and replays, the capture time
            (``time.monotonic()``) for live sources.
        image: BGR uint8 image (H, W, 3), or ``None`` for landmark replays.
        landmarks: (543, 3) float32 landmarks for replays, else ``None``.
        captured: ``time.perf_counter()`` when the frame left the source (for latency).
    """

    index: int
    timestamp: float
    image: npt.NDArray[np.uint8] | None = None
    landmarks: npt.NDArray[np.float32] | None = None
    captured: float = field(default_factory=time.perf_counter)


class Source(Closing):
    """Base class of frame sources: ``read()`` until ``None``, then ``close()``.

    Attributes:
        name: Human-readable description (for logs and the status page), with any
            credentials masked (see :func:`signrt._redact.redact`).
        live: Whether frames arrive in real time whether or not they are read (cameras,
            streams); a daemon must then keep only the latest one.
        ended: Set once the source has no more frames.
        reconnects: How many times a live source was reopened.
        last_error: The last failure message, or ``None``.
    """

    live: bool = False

    def __init__(self, name: str) -> None:
        self.name = redact(name)
        self.ended = False
        self.reconnects = 0
        self.last_error: str | None = None
        self._closed = threading.Event()
        self._index = 0

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed.is_set()

    def read(self) -> Frame | None:
        """Return the next frame, or ``None`` when the source has ended or was closed.

        Raises:
            SourceError: If the source failed and cannot recover.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Stop the source; a ``read`` blocked in another thread returns soon after."""
        self._closed.set()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame


    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class _Pacer:
    """Sleep so that frame ``i`` is delivered at ``start + i / fps`` (interruptible)."""

    def __init__(self, fps: float | None, stop: threading.Event) -> None:
        self.fps = fps
        self.stop = stop
        self.start: float | None = None

    def wait(self, i: int) -> None:
        if not self.fps:
            return
        now = time.monotonic()
        if self.start is None:
            self.start = now
        delay = self.start + i / self.fps - now
        if delay > 0:
            self.stop.wait(delay)

    def reset(self, i: int) -> None:
        """Deliver frame ``i`` now and pace from there (after an outage: no burst)."""
        if self.fps:
            self.start = time.monotonic() - i / self.fps


class CaptureSource(Source):
    """Frames from an OpenCV ``VideoCapture``: video file, camera, stream or GStreamer.

    Args:
        target: What ``VideoCapture`` opens (path, index, URL or pipeline).
        name: Description for logs.
        live: Reopen with backoff when reading fails (cameras, streams) instead of ending.
            A looping file that cannot be reopened at its end is retried the same way.
        api: OpenCV capture API preference (``cv2.CAP_*``), or ``None`` for any.
        fps: For non-live sources: deliver frames at this rate (``None``: as fast as read);
            ``0`` uses the file's own frame rate.
        loop: For non-live sources: start again at the end.
        width: Requested capture width (cameras), or ``None``.
        height: Requested capture height (cameras), or ``None``.
        backoff: (first, maximum) seconds between reopen attempts; doubles each time.
        max_retries: Give up (raise :class:`SourceError`) after this many failed reopen
            attempts in a row; ``None`` retries until closed.
        capture_factory: Creates the capture object (default ``cv2.VideoCapture``); tests
            inject failures through it.

    Raises:
        SourceError: If the first open fails (for live sources too: a wrong device is
            better reported at once than retried silently).
    """

    def __init__(
        self,
        target: str | int,
        *,
        name: str | None = None,
        live: bool = False,
        api: int | None = None,
        fps: float | None = None,
        loop: bool = False,
        width: int | None = None,
        height: int | None = None,
        backoff: tuple[float, float] = (0.5, 10.0),
        max_retries: int | None = None,
        capture_factory: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(name or str(target))
        self.target = target
        self.live = live
        self.api = api
        self.loop = loop
        self.size = (width, height)
        self.backoff = backoff
        self.max_retries = max_retries
        self._factory = capture_factory
        self._cap: Any = None
        self._reading = False
        self._media_fps = 0.0
        self._open_or_raise()
        self._pacer = _Pacer(
            None if live else (self._media_fps or 30.0) if fps == 0 else fps, self._closed
        )
        self._loop_offset = 0.0
        self._last_ts = 0.0
        self._file_index = 0

    # -- opening ---------------------------------------------------------------------------
    def _create(self) -> Any:
        if self._factory is not None:
            return self._factory(self.target) if self.api is None else self._factory(
                self.target, self.api
            )
        cv2 = _cv2()
        return (
            cv2.VideoCapture(self.target)
            if self.api is None
            else cv2.VideoCapture(self.target, self.api)
        )

    def _try_open(self) -> bool:
        try:
            cap = self._create()
        except Exception as exc:
            self.last_error = f"cannot open {self.name}: {redact(exc)}"
            return False
        if cap is None or not cap.isOpened():
            self.last_error = f"cannot open {self.name}"
            if cap is not None:
                cap.release()
            return False
        w, h = self.size
        if w:
            cap.set(3, float(w))  # CAP_PROP_FRAME_WIDTH
        if h:
            cap.set(4, float(h))  # CAP_PROP_FRAME_HEIGHT
        try:
            self._media_fps = float(cap.get(5) or 0.0)  # CAP_PROP_FPS
        except Exception:
            self._media_fps = 0.0
        self._cap = cap
        return True

    def _open_or_raise(self) -> None:
        if not self._try_open():
            raise SourceError(f"{self.last_error}; {self._hint()}")
        log.info("opened source %s", self.name)

    def _hint(self) -> str:
        t = self.target
        if isinstance(t, int) or str(t).startswith("/dev/video"):
            return (
                "check that the camera is connected (ls /dev/video*), not used by another "
                "program, and that this user is in the 'video' group"
            )
        if "!" in str(t):
            return (
                "check the pipeline with gst-launch-1.0 and that it ends in "
                "'appsink drop=1 max-buffers=1'"
            )
        if "://" in str(t):
            return "check the URL and that the stream is reachable"
        return "check that the file exists and is a video OpenCV/FFmpeg can decode"

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception as exc:  # pragma: no cover - driver dependent
                log.debug("release of %s failed: %s", self.name, exc)

    def _reconnect(self) -> bool:
        """Reopen the source with exponential backoff; False if closed meanwhile.

        Raises:
            SourceError: After ``max_retries`` failed attempts in a row.
        """
        self._release()
        delay, cap_delay = self.backoff
        failures = 0
        while not self._closed.is_set():
            log.warning(
                "source %s failed (%s); reopening in %.1f s", self.name, self.last_error, delay
            )
            if self._closed.wait(delay):
                return False
            if self._try_open():
                self.reconnects += 1
                log.info("source %s reopened (reconnect %d)", self.name, self.reconnects)
                return True
            failures += 1
            if self.max_retries is not None and failures >= self.max_retries:
                self.ended = True
                raise SourceError(
                    f"{self.last_error} after {failures} attempts; {self._hint()}"
                )
            delay = min(delay * 2.0, cap_delay)
        return False

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> Frame | None:
        """Return the next BGR frame, ``None`` at the end (or when closed).

        Raises:
            SourceError: If a live source could not be reopened within ``max_retries``.
        """
        while not self._closed.is_set():
            if self._cap is None and (self.ended or not self.live or not self._reconnect()):
                return None
            self._pacer.wait(self._index)
            cap = self._cap
            if cap is None or self._closed.is_set():
                break
            self._reading = True
            try:
                ok, image = cap.read()
            except Exception as exc:
                ok, image = False, None
                self.last_error = f"read failed: {redact(exc)}"
            finally:
                self._reading = False
            if self._closed.is_set():
                break
            if ok and image is not None:
                return self._frame(image)
            if self.live:
                self.last_error = self.last_error or "no frame"
                if not self._reconnect():
                    return None
                self.last_error = None
                continue
            if self.loop and self._index > 0:
                self._loop_offset = self._last_ts + (1.0 / (self._media_fps or 30.0))
                self._release()
                self._file_index = 0
                if self._try_open():
                    continue
                # The file went away (deleted, unmounted, being replaced): retry it with the
                # same bounded backoff as a camera instead of ending for good.
                if not self._reconnect():
                    return None
                self._pacer.reset(self._index)
                self.last_error = None
                continue
            self.ended = True
            self._release()
            log.info("source %s ended after %d frames", self.name, self._index)
            return None
        self._release()
        return None

    def _frame(self, image: Any) -> Frame:
        if self.live:
            ts = time.monotonic()
        else:
            pos = 0.0
            try:
                pos = float(self._cap.get(0) or 0.0) / 1e3  # CAP_PROP_POS_MSEC
            except Exception:
                pos = 0.0
            i = self._file_index
            local = pos if pos > 0 or i == 0 else i / (self._media_fps or 30.0)
            ts = self._loop_offset + local
            self._last_ts = ts
        frame = Frame(index=self._index, timestamp=ts, image=image)
        self._index += 1
        self._file_index += 1
        return frame

    def close(self) -> None:
        """Stop and release the capture (safe from another thread).

        A ``read`` in progress in another thread is not interrupted inside OpenCV (releasing
        a capture that another thread reads from is unsafe); that thread releases it when
        its read returns.
        """
        super().close()
        if not self._reading:
            self._release()


class ImageFolderSource(Source):
    """Images of a folder in file-name order, as a video at ``fps``.

    Args:
        folder: Directory with images (png, jpg, bmp, tif, webp).
        fps: Frame rate for timestamps; with ``realtime`` also the delivery rate.
        realtime: Deliver at ``fps`` instead of as fast as possible.
        loop: Start again after the last image.

    Raises:
        SourceError: If the folder does not exist or holds no image.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        fps: float = 30.0,
        realtime: bool = False,
        loop: bool = False,
    ) -> None:
        path = Path(folder)
        super().__init__(str(path))
        if not path.is_dir():
            raise SourceError(f"image folder {path} does not exist")
        self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(
                f"image folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)})"
            )
        if fps <= 0:
            raise SourceError(f"fps must be > 0, got {fps}")
        self.fps = fps
        self.loop = loop
        self._pacer = _Pacer(fps if realtime else None, self._closed)

    def read(self) -> Frame | None:
        """Return the next image as a BGR frame; unreadable files are skipped with a warning."""
        cv2 = _cv2()
        while not self._closed.is_set():
            i = self._index
            if i >= len(self.files) and not self.loop:
                self.ended = True
                return None
            path = self.files[i % len(self.files)]
            self._pacer.wait(i)
            self._index += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.last_error = f"cannot decode {path}"
                log.warning("image folder %s: %s, skipped", self.name, self.last_error)
                continue
            return Frame(index=i, timestamp=i / self.fps, image=image)
        return None


class ReplaySource(Source):
    """Recorded landmark frames replayed at ``fps`` (no camera, no extractor needed).

    Args:
        clip: A clip file (Kaggle ``.parquet``, ``.npy``, or anything
            :func:`signrt.read_clip` reads) or a (T, 543, 3) array.
        fps: Replay rate in frames per second.
        realtime: Deliver at ``fps`` (like a camera) instead of as fast as possible.
        loop: Start again after the last frame (timestamps keep increasing).

    Raises:
        SourceError: If the clip cannot be read or is empty.
    """

    def __init__(
        self,
        clip: str | os.PathLike[str] | npt.ArrayLike,
        *,
        fps: float = 30.0,
        realtime: bool = True,
        loop: bool = False,
    ) -> None:
        if isinstance(clip, (str, os.PathLike)):
            name = f"replay:{clip}"
            frames = _read_landmarks(Path(clip))
        else:
            name = "replay:<array>"
            frames = np.asarray(clip, dtype=np.float32)
        super().__init__(name)
        if frames.ndim != 3 or frames.shape[1:] != (543, 3) or frames.shape[0] == 0:
            raise SourceError(
                f"{name}: expected a non-empty (T, 543, 3) landmark clip, got {frames.shape}"
            )
        if fps <= 0:
            raise SourceError(f"fps must be > 0, got {fps}")
        self.frames = np.ascontiguousarray(frames, dtype=np.float32)
        self.fps = fps
        self.loop = loop
        self._pacer = _Pacer(fps if realtime else None, self._closed)

    def read(self) -> Frame | None:
        """Return the next landmark frame (``image`` is ``None``)."""
        i = self._index
        n = len(self.frames)
        if self._closed.is_set() or (i >= n and not self.loop):
            self.ended = self.ended or i >= n
            return None
        self._pacer.wait(i)
        if self._closed.is_set():
            return None
        self._index += 1
        return Frame(index=i, timestamp=i / self.fps, landmarks=self.frames[i % n])


def _read_landmarks(path: Path) -> npt.NDArray[np.float32]:
    if not path.is_file():
        raise SourceError(f"replay clip {path} not found; record one with `signrt serve --record`")
    try:
        if path.suffix == ".npy":
            return np.asarray(np.load(path), dtype=np.float32)
        from ..io import read_clip
        from ..io.kaggle import read_parquet

        if path.suffix == ".parquet":
            return np.asarray(read_parquet(path), dtype=np.float32)
        return np.asarray(read_clip(path), dtype=np.float32)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"cannot read replay clip {path}: {redact(exc)}") from exc


def _has_gstreamer(cv2: Any) -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if "GStreamer" in line:
            return "YES" in line.upper()
    return False


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    fps: float | None = None,
    realtime: bool | None = None,
    loop: bool = False,
    width: int | None = None,
    height: int | None = None,
    backoff: tuple[float, float] = (0.5, 10.0),
    max_retries: int | None = None,
) -> Source:
    """Open a frame source from its description (see the module documentation).

    Args:
        spec: Camera index, ``/dev/videoN``, URL, GStreamer pipeline (``gst:`` prefix or a
            string containing ``!``), image folder, ``replay:CLIP`` or video file.
        fps: Replay and image-folder rate (default 30); for files, the delivery rate when
            ``realtime`` (default: the file's own rate).
        realtime: Deliver file, folder and replay frames at their rate, like a camera;
            ``None`` means yes for replays and no for files and folders.
        loop: Restart files, folders and replays at the end.
        width: Requested camera width.
        height: Requested camera height.
        backoff: (first, maximum) reopen delay of live sources (and of a looping file that
            went away), seconds.
        max_retries: Reopen attempts in a row before such a source gives up (None: forever).

    Returns:
        The opened source.

    Raises:
        SourceError: If the source cannot be opened; the message says how to fix it.
    """
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if isinstance(text, int) or (isinstance(text, str) and text.strip().isdigit()):
        index = int(text)
        cv2 = _cv2()
        return CaptureSource(
            index, name=f"camera {index}", live=True, api=getattr(cv2, "CAP_V4L2", None),
            width=width, height=height, backoff=backoff, max_retries=max_retries,
        )  # fmt: skip
    assert isinstance(text, str)
    text = text.strip()
    if not text:
        raise SourceError("empty source; give a video file, camera index, pipeline or replay:")
    if text.startswith("replay:"):
        return ReplaySource(
            text[len("replay:") :], fps=fps or 30.0, realtime=realtime is not False, loop=loop,
        )  # fmt: skip
    if text.startswith("gst:") or "!" in text:
        pipeline = text[4:] if text.startswith("gst:") else text
        cv2 = _cv2()
        if not _has_gstreamer(cv2):
            raise SourceError(
                "this OpenCV build has no GStreamer support, so the pipeline cannot be opened; "
                "on Jetson use JetPack's OpenCV (apt install python3-opencv) instead of the pip "
                "wheel, or use a camera index / /dev/videoN"
            )
        if "appsink" not in pipeline:
            raise SourceError(
                "a GStreamer pipeline for signrt must end in an appsink, e.g. "
                "'... ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1'"
            )
        return CaptureSource(
            pipeline, name=f"gstreamer {pipeline[:60]}", live=True, api=cv2.CAP_GSTREAMER,
            backoff=backoff, max_retries=max_retries,
        )  # fmt: skip
    if text.startswith("/dev/video"):
        cv2 = _cv2()
        if not Path(text).exists():
            raise SourceError(
                f"camera device {text} does not exist; list cameras with `ls /dev/video*` "
                "or `v4l2-ctl --list-devices`"
            )
        return CaptureSource(
            text, name=f"camera {text}", live=True, api=getattr(cv2, "CAP_V4L2", None),
            width=width, height=height, backoff=backoff, max_retries=max_retries,
        )  # fmt: skip
    if "://" in text:
        return CaptureSource(
            text, name=text, live=True, backoff=backoff, max_retries=max_retries
        )
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, fps=fps or 30.0, realtime=bool(realtime), loop=loop)
    if not path.exists():
        raise SourceError(
            f"source {text!r} is neither an existing file or folder, a camera index, "
            "/dev/videoN, a URL, a GStreamer pipeline nor replay:CLIP.parquet"
        )
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SourceError(f"{text} is a single image; put it in a folder and pass the folder")
    return CaptureSource(
        str(path), name=str(path), live=False, fps=(fps or 0) if realtime else None, loop=loop,
        backoff=backoff, max_retries=max_retries,
    )  # fmt: skip
