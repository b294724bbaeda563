"""WebSocket helpers shared by the daemon tests (needs aiohttp; import after importorskip)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp


async def collect(ws: Any, seconds: float, until: int | None = None) -> list[dict[str, Any]]:
    """JSON messages received within ``seconds`` (or until ``until`` sign events arrived).

    Stops early at a non-text message (the server closed the socket).
    """
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(json.loads(msg.data))
        if until is not None and sum(m["type"] == "sign" for m in out) >= until:
            break
    return out
