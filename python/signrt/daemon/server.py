"""The camera daemon: pipeline threads plus an asyncio HTTP + WebSocket server (aiohttp).

Endpoints:

==============  ================================================================
``/healthz``    200 while the process and its event loop are alive
``/readyz``     200 when the model is loaded and warmed and the source delivers
                frames, else 503 with the reason
``/metrics``    Prometheus text (frames, drops, events, latency histograms, clients)
``/ws``         WebSocket: JSON ``hello``, ``sign``, ``status`` and (on request)
                ``landmarks`` messages
``/``           the status page (live labels, skeleton, fps and latency)
==============  ================================================================

Off localhost ``/ws`` and ``/metrics`` need ``Authorization: Bearer TOKEN`` (or
``?token=TOKEN``, for browsers' WebSockets). Each client has a bounded queue: when a client
reads too slowly its oldest messages are dropped (and counted), so it never slows the
pipeline or the other clients.

Client messages (JSON text, at most ``max_message_bytes``, nested at most 32 deep)::

    {"type": "subscribe", "landmarks": true}   # also: /ws?landmarks=1
    {"type": "ping"}                           # answered with {"type": "pong"}
    {"type": "status"}                         # answered with a status message

Anything else is counted as malformed and answered with
``{"type": "error", "error": "..."}``; the connection stays open. A message above the size
limit closes the connection (1009).

Every source description and error message that is served or logged goes through
:func:`signrt._redact.redact`, so camera credentials never leave the process. Connections
are capped and must send their headers in time (:mod:`signrt.daemon.connections`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import signal
import socket
import sys
import threading
import time
from collections import deque
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from .._json import loads_limited
from .._redact import redact
from .._version import package_version
from ..errors import DataError, DependencyError, SignrtError
from ..layouts import FACE, LEFT_HAND, LIPS, POSE, RIGHT_HAND
from .build import build_pipeline, bundled_replay, open_configured_source
from .config import DaemonConfig
from .connections import (
    ConnectionGuard,
    connection_limit,
    guarded_site,
    install_accept_error_filter,
)
from .pipeline import FrameResult, Pipeline
from .systemd import Notifier, watchdog_interval

__all__ = ["Daemon", "bundled_replay"]

log = logging.getLogger(__name__)

_SERVE_HINT = "install the serve extra: pip install 'signrt[serve]' (aiohttp, prometheus-client)"
#: Face points sent for drawing: the face oval and the lips (the full mesh is not needed).
_FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
_DRAW_FACE = np.array(_FACE_OVAL + LIPS[:20], dtype=np.intp)
_CLIENT_SNDBUF = 64 * 1024
#: Deepest nesting accepted in a client message (real messages nest one level).
_MAX_MESSAGE_DEPTH = 32


def _status_page() -> str:
    return (resources.files("signrt.daemon") / "data" / "status.html").read_text("utf-8")


def _redacted_or_none(value: Any) -> str | None:
    return None if value is None else redact(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), default=_json_default, allow_nan=False)


def _finite(x: float) -> float | None:
    return round(x, 3) if math.isfinite(x) else None


def _points(frame: npt.NDArray[np.float32], idx: Any) -> list[list[float] | None]:
    xy = np.round(frame[idx, :2].astype(np.float64), 4)
    ok = [bool(fx and fy) for fx, fy in np.isfinite(xy).tolist()]
    return [[float(a), float(b)] if k else None for (a, b), k in zip(xy.tolist(), ok, strict=True)]


def landmarks_message(frame: npt.NDArray[np.float32], timestamp: float) -> dict[str, Any]:
    """A drawable subset of one frame: pose, both hands, face oval and lips (x, y or null)."""
    return {
        "type": "landmarks",
        "t": round(timestamp, 3),
        "pose": _points(frame, slice(POSE.start, POSE.stop)),
        "left_hand": _points(frame, slice(LEFT_HAND.start, LEFT_HAND.stop)),
        "right_hand": _points(frame, slice(RIGHT_HAND.start, RIGHT_HAND.stop)),
        "face": _points(frame, _DRAW_FACE + FACE.start),
    }


class _Client:
    """One WebSocket connection: a bounded queue (oldest dropped) drained by a sender task."""

    def __init__(self, ws: Any, size: int, landmarks: bool) -> None:
        self.ws = ws
        self.queue: deque[str] = deque(maxlen=size)
        self.wake = asyncio.Event()
        self.landmarks = landmarks
        self.dropped = 0
        self.sent = 0
        self.transport: Any = None

    def offer(self, text: str) -> bool:
        """Queue a message; True if the oldest one was dropped to make room."""
        full = len(self.queue) == self.queue.maxlen
        if full:
            self.dropped += 1
        self.queue.append(text)
        self.wake.set()
        return full


class Daemon:
    """The camera daemon: load the model, open the source, run the pipeline, serve clients.

    Use :meth:`run` from the command line (handles SIGTERM/SIGINT, sd_notify) or
    :meth:`start_background` / :meth:`stop` to embed it (tests, notebooks).

    Args:
        config: The settings.
        recognizer: An already loaded recognizer (default: ``signrt.load(config.model)``).
        source: An already opened source (default: ``open_source(config.source)``).
        extractor_factory: Creates the landmark extractor (default: from the config).
        notifier: sd_notify sender (default: from ``$NOTIFY_SOCKET``).
    """

    def __init__(
        self,
        config: DaemonConfig | None = None,
        *,
        recognizer: Any = None,
        source: Any = None,
        extractor_factory: Any = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config or DaemonConfig()
        self.config.validate()
        self.token = self.config.resolved_token()
        self.recognizer = recognizer
        self._owns_recognizer = recognizer is None
        self.source = source
        self.extractor_factory = extractor_factory
        self.notifier = notifier or Notifier()
        try:
            from .metrics import Metrics

            self.metrics = Metrics()
        except ImportError as exc:
            raise DependencyError(
                f"the daemon needs prometheus_client ({exc}); {_SERVE_HINT}"
            ) from exc
        self.pipeline: Pipeline | None = None
        self.clients: set[_Client] = set()
        self.port: int | None = None
        self.started = time.monotonic()
        self.state = "starting"
        self.load_error: str | None = None
        self.malformed = 0
        self.event_log: deque[dict[str, Any]] = deque(maxlen=20)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._last_landmarks = 0.0
        self._exit_code = 0
        self.guard: ConnectionGuard | None = None

    # ------------------------------------------------------------------------- loading
    def _load(self) -> None:
        """Load the model, open the source, warm up (runs in a worker thread)."""
        from ..recognizer import load

        cfg = self.config
        if self.recognizer is None:
            self.recognizer = load(cfg.model, device=cfg.device)
        if self.source is None:
            self.source = open_configured_source(cfg, realtime=True, loop=cfg.loop)
        self.pipeline = build_pipeline(
            cfg,
            self.recognizer,
            self.source,
            on_result=self._on_result_thread,
            drop_stale=True,
            factory=self.extractor_factory,
            metrics=self.metrics,
        )
        self.pipeline.warm_up()

    # --------------------------------------------------------------------------- state
    @property
    def ready(self) -> bool:
        """Model loaded and warmed, pipeline running, source delivering."""
        p = self.pipeline
        return (
            self.state == "running"
            and p is not None
            and p.warmed
            and not p.source_ended
            and p.source_error is None
            and p.worker_error is None
            and p.delivering()
        )

    def _not_ready_reason(self) -> str:
        return redact(self._raw_not_ready_reason())

    def _raw_not_ready_reason(self) -> str:
        p = self.pipeline
        if self.load_error:
            return f"loading failed: {self.load_error}"
        if self.state != "running" or p is None:
            return f"state is {self.state}"
        if p.source_error:
            return f"source failed: {p.source_error}"
        if p.source_ended:
            return "source ended"
        if p.worker_error:
            return f"pipeline failed: {p.worker_error}"
        if self.source is not None and getattr(self.source, "last_error", None):
            return f"source not delivering: {self.source.last_error}"
        return "source not delivering frames yet"

    def status(self) -> dict[str, Any]:
        """The ``status`` message: fps, drops, signer, latency p50/p99 per stage, clients."""
        p = self.pipeline
        latency: dict[str, dict[str, float | None]] = {}
        if p is not None:
            for name, roll in p.latency.items():
                p50, p99 = roll.percentiles(50, 99)
                latency[name] = {"p50": _finite(p50), "p99": _finite(p99)}
        client_drops = sum(c.dropped for c in self.clients)
        return {
            "type": "status",
            "state": self.state,
            "ready": self.ready,
            "uptime": round(time.monotonic() - self.started, 1),
            "fps": round(p.fps(), 2) if p else 0.0,
            "frames": p.frames_done if p else 0,
            "captured": p.frames_in if p else 0,
            "dropped": p.dropped if p else 0,
            "events": p.events if p else 0,
            "signer": bool(p.signer) if p else False,
            "latency_ms": latency,
            "clients": len(self.clients),
            "client_drops": client_drops,
            "malformed": self.malformed,
            "source": {
                "name": self._source_name(),
                "reconnects": getattr(self.source, "reconnects", 0),
                "ended": bool(p.source_ended) if p else False,
                "error": _redacted_or_none(
                    (p.source_error if p else None) or getattr(self.source, "last_error", None)
                ),
            },
        }

    # ----------------------------------------------------------------------- publishing
    def _on_result_thread(self, result: FrameResult) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing during shutdown
            loop.call_soon_threadsafe(self._on_result, result)

    def _on_result(self, result: FrameResult) -> None:
        now = time.perf_counter()
        stages = dict(result.stages)
        if stages:
            stages["publish"] = (now - result.done) * 1e3
            stages["total"] = (now - result.captured) * 1e3
            assert self.pipeline is not None
            self.pipeline.record_latency(stages)
        for ev in result.events:
            msg: dict[str, Any] = {"type": "sign", **ev.to_dict(), "frame": result.index}
            if stages:
                msg["latency_ms"] = round(stages["total"], 3)
            self.event_log.append(msg)
            self._broadcast(_dumps(msg))
        if result.index >= 0 and any(c.landmarks for c in self.clients):
            period = 1.0 / self.config.landmarks_fps if self.config.landmarks_fps > 0 else 0.0
            if now - self._last_landmarks >= period:
                self._last_landmarks = now
                text = _dumps(landmarks_message(result.landmarks, result.timestamp))
                self._broadcast(text, landmarks_only=True)

    def _broadcast(self, text: str, *, landmarks_only: bool = False) -> None:
        for client in self.clients:
            if landmarks_only and not client.landmarks:
                continue
            if client.offer(text):
                self.metrics.client_drops.inc()

    # --------------------------------------------------------------------------- HTTP
    def _authorized(self, request: Any) -> bool:
        if self.token is None:
            return True
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        given = given or request.query.get("token", "")
        ok = bool(given) and hmac.compare_digest(given.encode(), self.token.encode())
        if not ok:
            self.metrics.auth_failures.inc()
        return ok

    def _unauthorized(self) -> Any:
        from aiohttp import web

        return web.json_response(
            {"error": "missing or wrong token: send 'Authorization: Bearer TOKEN' or ?token="},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="signrt"'},
        )

    async def _healthz(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"status": "alive", "state": self.state})

    async def _readyz(self, request: Any) -> Any:
        from aiohttp import web

        if self.ready:
            return web.json_response({"ready": True})
        return web.json_response({"ready": False, "reason": self._not_ready_reason()}, status=503)

    async def _metrics(self, request: Any) -> Any:
        from aiohttp import web

        if not self._authorized(request):
            return self._unauthorized()
        self._refresh_gauges()
        body, content_type = self.metrics.render()
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    async def _index(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(text=_status_page(), content_type="text/html", charset="utf-8")

    def _refresh_gauges(self) -> None:
        p = self.pipeline
        self.metrics.clients.set(len(self.clients))
        self.metrics.ready.set(1 if self.ready else 0)
        if p is not None:
            self.metrics.fps.set(p.fps())
            self.metrics.reconnects.set(getattr(self.source, "reconnects", 0))

    async def _ws(self, request: Any) -> Any:
        from aiohttp import WSMsgType, web

        if not self._authorized(request):
            return self._unauthorized()
        max_clients = self.config.max_clients
        if self.guard is not None:  # keep a few connections for /healthz and the page
            max_clients = max(1, min(max_clients, self.guard.limit - 8))
        if len(self.clients) >= max_clients:
            return web.json_response({"error": "too many clients"}, status=503)
        ws = web.WebSocketResponse(
            max_msg_size=self.config.max_message_bytes, heartbeat=20.0, compress=False
        )
        await ws.prepare(request)
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CLIENT_SNDBUF)
        want_lm = request.query.get("landmarks", "") in ("1", "true", "yes")
        client = _Client(ws, self.config.queue_size, want_lm)
        client.transport = request.transport
        self.clients.add(client)
        self.metrics.clients.set(len(self.clients))
        client.offer(_dumps(self._hello()))
        for msg in list(self.event_log)[-5:]:
            client.offer(_dumps({**msg, "replayed": True}))
        sender = asyncio.ensure_future(self._sender(client))
        try:
            async for incoming in ws:
                if incoming.type == WSMsgType.TEXT:
                    try:
                        self._client_message(client, incoming.data)
                    except Exception as exc:  # a bug: keep serving, say so once per message
                        log.error("client message handler failed: %s: %s",
                                  type(exc).__name__, exc)
                        self._malformed("internal error", client)
                elif incoming.type == WSMsgType.BINARY:
                    self._malformed("binary message", client)
                elif incoming.type == WSMsgType.ERROR:
                    self._malformed(f"protocol error: {ws.exception()}")
                    break
        finally:
            self.clients.discard(client)
            self.metrics.clients.set(len(self.clients))
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        return ws

    def _hello(self) -> dict[str, Any]:
        rec = self.recognizer
        return {
            "type": "hello",
            "version": package_version(),
            "labels": list(rec.labels) if rec is not None else [],
            "model": str(getattr(getattr(rec, "model", None), "path", "")) if rec else None,
            "source": self._source_name(),
        }

    def _source_name(self) -> str | None:
        return _redacted_or_none(getattr(self.source, "name", None))

    def _malformed(self, why: str, client: _Client | None = None) -> None:
        self.malformed += 1
        self.metrics.malformed.inc()
        log.debug("ignored client message: %s", why)
        if client is not None:
            client.offer(_dumps({"type": "error", "error": f"ignored message: {why}"}))

    def _client_message(self, client: _Client, text: str) -> None:
        try:
            msg = loads_limited(
                text, max_depth=_MAX_MESSAGE_DEPTH, max_bytes=self.config.max_message_bytes
            )
        except DataError as exc:
            self._malformed(str(exc), client)
            return
        if not isinstance(msg, dict):
            self._malformed("not a JSON object", client)
            return
        kind = msg.get("type")
        if kind == "subscribe" and isinstance(msg.get("landmarks"), bool):
            client.landmarks = msg["landmarks"]
        elif kind == "ping":
            client.offer(_dumps({"type": "pong", "t": time.time()}))
        elif kind == "status":
            client.offer(_dumps(self.status()))
        else:
            shown = repr(kind) if isinstance(kind, str) and len(kind) <= 32 else "?"
            self._malformed(f"unknown message type {shown}", client)

    async def _sender(self, client: _Client) -> None:
        ws = client.ws
        try:
            while not ws.closed:
                await client.wake.wait()
                client.wake.clear()
                while client.queue and not ws.closed:
                    text = client.queue.popleft()
                    await asyncio.wait_for(ws.send_str(text), self.config.send_timeout)
                    client.sent += 1
        except asyncio.TimeoutError:
            log.warning("client stalled for %.1f s; disconnecting", self.config.send_timeout)
            # Its buffers are full, so a close frame could never reach it (and aiohttp's
            # close() would wait on the same full buffer): drop the connection, so that its
            # handler, queue and descriptor go now.
            if client.transport is not None:
                client.transport.abort()
            else:  # pragma: no cover - aiohttp always gives a transport
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(code=1008, message=b"too slow"), 1.0)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("client gone: %s", exc)

    def _app(self) -> Any:
        from aiohttp import web

        middlewares = [self.guard.middleware()] if self.guard is not None else []
        app = web.Application(
            client_max_size=self.config.max_message_bytes, middlewares=middlewares
        )
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/ws", self._ws)
        app.router.add_get("/", self._index)
        return app

    # ------------------------------------------------------------------------ lifecycle
    async def _ticker(self) -> None:
        interval = max(0.05, self.config.status_interval)
        while True:
            await asyncio.sleep(interval)
            self._refresh_gauges()
            if self.clients:
                self._broadcast(_dumps(self.status()))

    async def _watchdog(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            p = self.pipeline
            if p is None or self.state != "running" or p.alive or p.source_ended:
                self.notifier.watchdog()
            else:
                log.error("pipeline worker is not responding; withholding the watchdog ping")

    async def _serve(self, install_signals: bool) -> int:
        try:
            from aiohttp import web
        except ImportError as exc:
            raise DependencyError(f"the daemon needs aiohttp ({exc}); {_SERVE_HINT}") from exc
        self._loop = asyncio.get_running_loop()
        install_accept_error_filter(self._loop)
        self._stop_event = asyncio.Event()
        self.guard = ConnectionGuard(
            connection_limit(self.config.max_connections), self.config.header_timeout
        )
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop_event.set)
        try:
            runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.25)
        except TypeError:  # aiohttp < 3.10: the timeout belongs to the site
            runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        tasks: list[asyncio.Task[Any]] = []
        try:
            site = guarded_site(runner, self.config.host, self.config.port, self.guard)
            await site.start()
            self.port = site.bound_port
            log.info("listening on http://%s:%s", self.config.host, self.port)
            self._started.set()
            self.state = "loading"
            tasks.append(asyncio.ensure_future(self._ticker()))
            every = watchdog_interval()
            if every:
                tasks.append(asyncio.ensure_future(self._watchdog(every)))
            load = asyncio.ensure_future(asyncio.to_thread(self._load))
            stop_wait = asyncio.ensure_future(self._stop_event.wait())
            await asyncio.wait({load, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not self._stop_event.is_set():
                try:
                    load.result()
                except Exception as exc:
                    self.load_error = redact(exc)
                    self.state = "failed"
                    raise
                assert self.pipeline is not None
                self.pipeline.start()
                self.state = "running"
                self.notifier.ready(f"serving on {self.config.host}:{self.port}")
                log.info("ready: model %s, source %s", self._hello()["model"], self._source_name())
                await self._stop_event.wait()
            else:
                load.cancel()
            stop_wait.cancel()
        finally:
            await self._shutdown(runner, tasks)
        return self._exit_code

    async def _shutdown(self, runner: Any, tasks: list[asyncio.Task[Any]]) -> None:
        t0 = time.monotonic()
        self.state = "stopping"
        self.notifier.stopping()
        if self.pipeline is not None:
            await asyncio.to_thread(self.pipeline.stop, 0.8)
        elif self.source is not None:
            self.source.close()
        for t in tasks:
            t.cancel()
        # Give clients a moment to receive what is queued, then close them.
        deadline = time.monotonic() + self.config.shutdown_grace
        while any(c.queue for c in self.clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        closing = [
            asyncio.wait_for(c.ws.close(code=1001, message=b"server shutdown"), 0.3)
            for c in list(self.clients)
        ]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner.cleanup(), 0.5)
        if self.guard is not None:
            self.guard.close_all()
        if self.recognizer is not None and self._owns_recognizer:
            with contextlib.suppress(Exception):
                self.recognizer.close()
        self.notifier.close()
        self.state = "stopped"
        p = self.pipeline
        recorder = p.recorder if p is not None else None
        log.info(
            "stopped in %.2f s after %d frames%s", time.monotonic() - t0,
            p.frames_done if p is not None else 0,
            f", {recorder.frames_written} recorded in {len(recorder.files)} files"
            if recorder is not None else "",
        )  # fmt: skip

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (main thread); returns the exit status.

        The daemon owns its process, so the interpreter's thread switch interval is
        lowered to 1 ms: the event loop then gets the GIL soon after the worker hands it a
        result, instead of up to 5 ms later.
        """
        sys.setswitchinterval(0.001)
        return asyncio.run(self._serve(install_signals=True))

    def start_background(self, timeout: float = 30.0) -> Daemon:
        """Serve from a background thread; returns once the HTTP server listens.

        Raises:
            SignrtError: If the server did not start within ``timeout`` seconds.
        """

        def target() -> None:
            try:
                asyncio.run(self._serve(install_signals=False))
            except BaseException as exc:
                self._start_error = exc
                log.error("daemon failed: %s", redact(exc))
            finally:
                self._started.set()

        self._thread = threading.Thread(target=target, name="signrt-daemon", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise SignrtError(f"daemon did not start within {timeout} s")
        if self._start_error is not None and self.port is None:
            raise SignrtError(f"daemon failed to start: {redact(self._start_error)}")
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until :attr:`ready` (or the timeout); returns whether it is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready:
                return True
            if self.state in ("failed", "stopped"):
                return False
            time.sleep(0.02)
        return self.ready

    def stop(self, timeout: float = 5.0) -> None:
        """Stop a daemon started with :meth:`start_background` (thread-safe)."""
        loop, ev = self._loop, self._stop_event
        if loop is not None and ev is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(ev.set)
        if self._thread is not None:
            self._thread.join(timeout)
