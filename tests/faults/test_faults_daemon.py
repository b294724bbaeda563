"""The running daemon against hostile clients and failing sources (in process, 127.0.0.1).

Secrets in the source URL never reach a response, a WebSocket message or a log line;
nested JSON is a malformed message, not a traceback; idle, half-sent and stalled
connections are closed; a looping file that disappears is retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("prometheus_client")
pytest.importorskip("onnx")

import aiohttp
from _util import FakeExtractor, get, wait_for

import signrt
from helpers_models import hand_frame, side_model
from helpers_ws import collect
from signrt.daemon import Daemon, DaemonConfig
from signrt.extract.sources import CaptureSource, ReplaySource

pytestmark = pytest.mark.timeout(60)

SECRET = "s3cr3t-pw"
URL = f"http://admin:{SECRET}@127.0.0.1:9/stream.mjpg?token=tok-{SECRET}"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return side_model(tmp_path_factory.mktemp("model") / "side.onnx")


def _clip() -> np.ndarray:
    return np.stack([hand_frame(0.2)] * 30 + [hand_frame(None)] * 30).astype(np.float32)


def _daemon(model_path: Path, source: Any = None, **config: Any) -> Daemon:
    cfg = DaemonConfig(port=0, status_interval=0.1, **config)
    src = source if source is not None else ReplaySource(_clip(), fps=120.0, loop=True)
    return Daemon(cfg, recognizer=signrt.load(model_path, device="cpu"), source=src,
                  extractor_factory=FakeExtractor)  # fmt: skip


@pytest.fixture
def daemon(request: pytest.FixtureRequest, model_path: Path) -> Iterator[Daemon]:
    d = _daemon(model_path, **getattr(request, "param", {})).start_background()
    try:
        assert d.wait_ready(10)
        yield d
    finally:
        d.stop()


# ------------------------------------------------------------------------------ secrets
class _FlakyCamera:
    """A network camera that delivers 20 frames, then drops and refuses to reconnect with
    an error naming the full URL (as FFmpeg's messages do)."""

    opened = 0

    def __init__(self, target: str, *api: Any) -> None:
        type(self).opened += 1
        if type(self).opened > 1:
            raise OSError(f"connection to {target} refused")
        self.left = 20

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self) -> tuple[bool, Any]:
        time.sleep(0.01)
        self.left -= 1
        return (self.left >= 0, np.zeros((48, 64, 3), np.uint8) if self.left >= 0 else None)

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        pass


def test_camera_credentials_never_leave_the_process(
    model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _FlakyCamera.opened = 0
    source = CaptureSource(URL, live=True, backoff=(0.05, 0.1), capture_factory=_FlakyCamera)
    d = _daemon(model_path, source=source, token="tok")
    d.start_background()
    try:
        # The camera fails after 20 frames: wait until the daemon reports it.
        assert wait_for(lambda: _FlakyCamera.opened >= 3, 10)

        async def main() -> tuple[list[dict[str, Any]], str]:
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(f"http://127.0.0.1:{d.port}/ws?token=tok") as ws:
                    await ws.send_str(json.dumps({"type": "status"}))
                    msgs = await collect(ws, 0.5)
                deadline = time.monotonic() + 5  # ready until no frame came for 2 s
                while True:
                    async with s.get(f"http://127.0.0.1:{d.port}/readyz") as r:
                        if r.status == 503 or time.monotonic() > deadline:
                            assert r.status == 503
                            return msgs, await r.text()
                    await asyncio.sleep(0.1)

        msgs, readyz = asyncio.run(main())
    finally:
        d.stop()
    hello = msgs[0]
    assert hello["type"] == "hello" and hello["source"].startswith("http://admin:***@")
    statuses = [m for m in msgs if m["type"] == "status"]
    assert statuses and any(m["source"]["error"] for m in statuses)
    assert "***" in readyz and "refused" in readyz
    shown = [readyz, *map(json.dumps, msgs), *(r.getMessage() for r in caplog.records)]
    leaks = [text for text in shown if SECRET in text]
    assert not leaks, leaks[:3]
    assert any("reopening" in r.getMessage() for r in caplog.records)  # the logs were read


# ------------------------------------------------------------------------ client abuse
def test_nested_json_is_a_malformed_message(daemon: Daemon,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    nested = "[" * 2000 + "]" * 2000  # 4,000 bytes: under the 4,096-byte limit

    async def main() -> tuple[list[dict[str, Any]], bool]:
        async with (
            aiohttp.ClientSession() as s,
            s.ws_connect(f"http://127.0.0.1:{daemon.port}/ws") as ws,
        ):
            for bad in (nested, '{"type": "ping", "x": NaN}', "[1, 2]", "{"):
                await ws.send_str(bad)
            await ws.send_str(json.dumps({"type": "ping"}))
            msgs = await collect(ws, 1.0)
            return msgs, ws.closed

    before = daemon.malformed
    msgs, closed = asyncio.run(main())
    errors = [m["error"] for m in msgs if m["type"] == "error"]
    assert len(errors) == 4 and "nested deeper than 32 levels" in errors[0], errors
    assert any(m["type"] == "pong" for m in msgs) and not closed  # the connection lives on
    assert daemon.malformed - before == 4
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_oversized_message_closes_only_that_client(daemon: Daemon) -> None:
    async def main() -> tuple[int | None, int]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"http://127.0.0.1:{daemon.port}/ws") as ws:
                await ws.send_str("[" * 5000)
                await collect(ws, 1.0)
                code = ws.close_code
            async with s.get(f"http://127.0.0.1:{daemon.port}/healthz") as r:
                return code, r.status

    code, health = asyncio.run(main())
    assert code == 1009 and health == 200


def _half_sent(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no final blank line
    return sock


@pytest.mark.parametrize("daemon", [{"header_timeout": 0.5}], indirect=True)
def test_header_timeout_closes_half_sent_requests(daemon: Daemon) -> None:
    sock = _half_sent(daemon.port or 0)
    try:
        t0 = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server, no response
        assert 0.3 < time.monotonic() - t0 < 2.5
    finally:
        sock.close()
    assert daemon.guard is not None and daemon.guard.timed_out >= 1
    assert get(daemon.port or 0, "/healthz")[0] == 200


@pytest.mark.parametrize("daemon", [{"max_connections": 8}], indirect=True)
def test_connection_limit_keeps_healthz_answering(daemon: Daemon) -> None:
    socks = [_half_sent(daemon.port or 0) for _ in range(40)]
    try:
        assert wait_for(lambda: daemon.guard is not None and daemon.guard.open <= 8, 3)
        for _ in range(3):
            t0 = time.monotonic()
            assert get(daemon.port or 0, "/healthz", 2.0)[0] == 200
            assert time.monotonic() - t0 < 1.0
    finally:
        for s in socks:
            s.close()
    assert daemon.guard is not None and daemon.guard.evicted >= 30


@pytest.mark.parametrize(
    "daemon", [{"send_timeout": 0.5, "queue_size": 4, "landmarks_fps": 1000.0}], indirect=True
)
def test_stalled_client_is_disconnected_others_keep_receiving(daemon: Daemon) -> None:
    import base64

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", daemon.port or 0))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws?landmarks=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade"
        f"\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    try:
        assert wait_for(lambda: len(daemon.clients) == 1, 3)

        async def main() -> list[dict[str, Any]]:
            async with (
                aiohttp.ClientSession() as s,
                s.ws_connect(f"http://127.0.0.1:{daemon.port}/ws") as ws,
            ):
                return await collect(ws, 2.0)

        msgs = asyncio.run(main())
        # The stalled client is gone (send timeout), the reading one got its status feed.
        assert wait_for(lambda: len(daemon.clients) == 0, 10)
        assert sum(m["type"] == "status" for m in msgs) >= 5
    finally:
        sock.close()


def test_tokens_are_checked(model_path: Path) -> None:
    d = _daemon(model_path, token="right").start_background()
    try:
        port = d.port or 0
        assert get(port, "/metrics")[0] == 401
        assert get(port, "/metrics?token=")[0] == 401
        assert get(port, "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert get(port, "/metrics", headers={"Authorization": "Bearer  right "})[0] == 200
        assert get(port, "/healthz")[0] == 200
    finally:
        d.stop()


# ------------------------------------------------------------------------------ sources
def _write_video(path: Path, frames: int = 12) -> None:
    cv2 = pytest.importorskip("cv2")
    tmp = path.with_suffix(".tmp.avi")
    w = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(frames):
        w.write(np.full((48, 64, 3), 10 * i, np.uint8))
    w.release()
    os.replace(tmp, path)


def test_deleted_looping_video_is_retried(model_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    video = tmp_path / "loop.avi"
    _write_video(video)
    source = CaptureSource(str(video), fps=60.0, loop=True, backoff=(0.05, 0.2))
    d = _daemon(model_path, source=source).start_background()
    try:
        assert d.wait_ready(10)
        video.unlink()
        # At the end of the pass the file cannot be reopened: not ready, retrying.
        assert wait_for(lambda: "cannot open" in get(d.port or 0, "/readyz")[1], 5)
        status, body = get(d.port or 0, "/readyz")
        assert status == 503 and "source ended" not in body
        reconnects = source.reconnects
        _write_video(video)
        assert wait_for(lambda: get(d.port or 0, "/readyz")[0] == 200, 5)
        assert source.reconnects == reconnects + 1 and not source.ended
    finally:
        d.stop()
