"""Descriptor exhaustion: 1,100 idle half-sent requests against a daemon limited to 1,024
descriptors. /healthz keeps answering and the log stays a few lines."""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("prometheus_client")

from _util import free_port, get, serve, stop, wait_ready

pytestmark = pytest.mark.timeout(90)

CONNECTIONS = 1100
LIMIT = 1024


def test_healthz_answers_under_descriptor_exhaustion(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = CONNECTIONS + 200
    if soft < need:  # this process holds the client ends
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"descriptor limit {hard} too low to open {CONNECTIONS} clients")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    port, err = free_port(), tmp_path / "stderr.txt"
    proc = serve(["--port", str(port)], err, nofile=LIMIT)
    socks: list[socket.socket] = []
    try:
        wait_ready(proc, port, err)
        lines_before = len(err.read_text().splitlines())
        t0 = time.monotonic()
        for _ in range(CONNECTIONS):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            socks.append(s)
        assert time.monotonic() - t0 < 30
        for _ in range(5):
            t = time.monotonic()
            status, body = get(port, "/healthz", 2.0)
            assert status == 200, body
            assert time.monotonic() - t < 1.0
            time.sleep(0.2)
        assert get(port, "/readyz", 2.0)[0] == 200
        elapsed = time.monotonic() - t0
        lines = err.read_text().splitlines()[lines_before:]
        # Rate-limited: one line per 5 s per kind of event, no traceback.
        assert len(lines) <= 3 + elapsed / 5 * 3, lines[:20]
        assert not any("Traceback" in ln or "Too many open files" in ln for ln in lines), lines
        assert any("max_connections" in ln for ln in lines), lines
    finally:
        for s in socks:
            s.close()
        stop(proc)
