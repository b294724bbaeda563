"""Connection limits for the daemon's HTTP server.

A cap below the descriptor limit, a header timeout, and logs that stay a few lines per
second under abuse. aiohttp has no limit on open connections and no deadline for a
request's headers, so idle or half-sent connections pile up until ``accept()`` fails with
"Too many open files"; then ``/healthz`` times out and asyncio logs a traceback per failed
accept. The :class:`ConnectionGuard` wraps each connection's protocol:

* at most ``limit`` connections are open (``max_connections``, lowered to fit the process's
  ``RLIMIT_NOFILE`` with room for model, camera and recording files). A new connection at
  the limit closes the oldest one that is not inside a request (idle keep-alive or still
  sending its headers), so a health check always gets through; when every connection is
  busy the new one is closed instead;
* a connection that is not inside a request must start one within ``header_timeout``
  seconds (slow or stalled headers, idle keep-alive), else it is closed;
* what it does is logged through a :class:`RateLimitedLog`, as are asyncio's
  accept-failure reports (:func:`install_accept_error_filter`).

A request counts as started once aiohttp has parsed its headers and calls the handler
(:meth:`ConnectionGuard.middleware`); a WebSocket stays inside its request until it closes
(WebSocket clients have their own cap, ``max_clients``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = [
    "ConnectionGuard",
    "RateLimitedLog",
    "connection_limit",
    "guarded_site",
    "install_accept_error_filter",
]

log = logging.getLogger(__name__)

#: Descriptors kept free for everything but client connections (model, camera, recorder,
#: the extractor's files, the listening socket, logs).
FD_RESERVE = 64


class RateLimitedLog:
    """At most one log line per ``every`` seconds per key; suppressed ones are counted.

    Args:
        logger: Where lines go.
        every: Seconds between two lines of the same key.
    """

    def __init__(self, logger: logging.Logger, every: float = 5.0) -> None:
        self.logger = logger
        self.every = every
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``every`` seconds ago.

        Returns:
            Whether the line was written.
        """
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        skipped = self._suppressed.pop(key, 0)
        if skipped:
            msg += " (%d similar in the last %.0f s)"
            args = (*args, skipped, now - (last or now))
        self.logger.log(level, msg, *args)
        return True


def open_descriptors() -> int:
    """Descriptors this process has open (Linux ``/proc``; 0 where unknown)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return 0


def connection_limit(configured: int) -> int:
    """``configured``, lowered so that the connections fit under ``RLIMIT_NOFILE``.

    Each connection holds one descriptor; :data:`FD_RESERVE` plus those open now stay free.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    room = soft - open_descriptors() - FD_RESERVE
    limit = max(4, min(configured, room))
    if limit < configured:
        log.warning(
            "max_connections lowered from %d to %d to fit the descriptor limit %d "
            "(raise it with LimitNOFILE= or ulimit -n)",
            configured, limit, soft,
        )  # fmt: skip
    return limit


class _Conn:
    __slots__ = ("busy", "opened", "timer")

    def __init__(self, opened: float) -> None:
        self.opened = opened
        self.busy = 0
        self.timer: asyncio.TimerHandle | None = None


class _GuardedProtocol(asyncio.Protocol):
    """Forwards every protocol callback to aiohttp's handler, telling the guard first."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._inner.connection_made(transport)
        self._guard._opened(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard._closed(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class ConnectionGuard:
    """Caps open connections and closes those that do not send a request in time.

    Args:
        limit: Most connections open at once (see :func:`connection_limit`).
        header_timeout: Seconds a connection outside a request may stay open.

    Attributes:
        evicted: Idle connections closed to make room for a new one.
        refused: New connections closed because every open one was busy.
        timed_out: Connections closed for not starting a request in time.
    """

    def __init__(self, limit: int, header_timeout: float) -> None:
        self.limit = max(1, limit)
        self.header_timeout = header_timeout
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0
        self._conns: dict[asyncio.Transport, _Conn] = {}  # insertion order: oldest first
        self._log = RateLimitedLog(log, every=5.0)

    @property
    def open(self) -> int:
        """Connections open now."""
        return len(self._conns)

    def wrap(self, factory: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` around aiohttp's ``runner.server``."""

        def make() -> asyncio.Protocol:
            return _GuardedProtocol(self, factory())

        return make

    def _opened(self, transport: asyncio.Transport) -> None:
        if len(self._conns) >= self.limit:
            victim = next((t for t, c in self._conns.items() if c.busy == 0), None)
            if victim is None:
                self.refused += 1
                self._log.log(
                    logging.WARNING, "refused",
                    "%d connections open, all inside requests (max_connections); "
                    "closing a new one", len(self._conns),
                )  # fmt: skip
                transport.abort()
                return
            self.evicted += 1
            self._log.log(
                logging.WARNING, "evicted",
                "%d connections open (max_connections); closing the oldest idle one",
                len(self._conns),
            )  # fmt: skip
            self._drop(victim)
        conn = self._conns[transport] = _Conn(time.monotonic())
        self._arm(transport, conn)

    def _closed(self, transport: asyncio.Transport) -> None:
        conn = self._conns.pop(transport, None)
        if conn is not None and conn.timer is not None:
            conn.timer.cancel()

    def _drop(self, transport: asyncio.Transport) -> None:
        self._closed(transport)
        transport.abort()

    def _arm(self, transport: asyncio.Transport, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        conn.timer = loop.call_later(self.header_timeout, self._expire, transport)

    def _expire(self, transport: asyncio.Transport) -> None:
        conn = self._conns.get(transport)
        if conn is None or conn.busy:
            return
        self.timed_out += 1
        self._log.log(
            logging.INFO, "timeout",
            "closed a connection that sent no complete request within %.0f s",
            self.header_timeout,
        )  # fmt: skip
        self._drop(transport)

    def started(self, transport: Any) -> None:
        """A request's headers arrived on ``transport`` (the handler is about to run)."""
        conn = self._conns.get(transport)
        if conn is None:
            return
        conn.busy += 1
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        # A busy connection moves to the young end: eviction picks the longest idle first.
        self._conns[transport] = self._conns.pop(transport)

    def finished(self, transport: Any) -> None:
        """The handler of a request on ``transport`` returned."""
        conn = self._conns.get(transport)
        if conn is None:
            return
        conn.busy = max(0, conn.busy - 1)
        if conn.busy == 0:
            self._arm(transport, conn)

    def middleware(self) -> Any:
        """An aiohttp middleware marking each request's connection busy while it runs."""
        from aiohttp import web

        @web.middleware
        async def track(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
            transport = request.transport
            self.started(transport)
            try:
                return await handler(request)
            finally:
                self.finished(transport)

        return track

    def close_all(self) -> None:
        """Cancel every timer (at shutdown; aiohttp closes the connections)."""
        for conn in self._conns.values():
            if conn.timer is not None:
                conn.timer.cancel()
        self._conns.clear()


def install_accept_error_filter(loop: asyncio.AbstractEventLoop, every: float = 5.0) -> None:
    """Rate-limit asyncio's "socket.accept() out of system resource" reports on ``loop``.

    asyncio reports every failed ``accept()`` (descriptor exhaustion) with a traceback, many
    times a second; this logs one line per ``every`` seconds instead and passes every other
    report to the previous handler.
    """
    previous = loop.get_exception_handler()
    limited = RateLimitedLog(log, every=every)

    def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if "out of system resource" in message:
            exc = context.get("exception")
            limited.log(
                logging.ERROR, "accept",
                "cannot accept connections: %s (descriptor limit %d; raise LimitNOFILE= or "
                "lower max_connections)", exc, resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            )  # fmt: skip
            return
        if previous is not None:
            previous(lp, context)
        else:
            lp.default_exception_handler(context)

    loop.set_exception_handler(handler)


def guarded_site(runner: Any, host: str, port: int, guard: ConnectionGuard) -> Any:
    """An aiohttp site listening on ``host:port`` whose connections go through ``guard``.

    Args:
        runner: A set-up ``aiohttp.web.AppRunner``.
        host: Address to bind.
        port: TCP port (0: any free one; read it from ``site.bound_port`` after start).
        guard: The connection guard.

    Returns:
        An ``aiohttp.web.BaseSite`` to ``await site.start()``; the runner stops it.
    """
    from aiohttp import web

    class GuardedSite(web.BaseSite):
        bound_port: int | None = None

        @property
        def name(self) -> str:
            return f"http://{host}:{self.bound_port or port}"

        async def start(self) -> None:
            await super().start()
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                guard.wrap(runner.server), host, port, backlog=self._backlog
            )
            self._server = server
            sockets = server.sockets or ()
            self.bound_port = sockets[0].getsockname()[1] if sockets else port

    return GuardedSite(runner)
