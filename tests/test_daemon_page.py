"""The status page in a real headless Chromium shows a recognised label and the skeleton.

Chromium is driven over the DevTools protocol (a WebSocket), so no extra Python package is
needed. The test skips when no Chromium binary is installed (CI installs Debian's
``chromium``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("prometheus_client")
pytest.importorskip("onnx")

import aiohttp

import signrt
from helpers_models import hand_frame, side_model
from signrt.daemon import Daemon, DaemonConfig
from signrt.extract.sources import ReplaySource

pytestmark = pytest.mark.timeout(120)

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


async def _evaluate(ws: Any, expression: str, ident: int) -> Any:
    await ws.send_str(json.dumps({
        "id": ident, "method": "Runtime.evaluate",
        "params": {"expression": expression, "returnByValue": True},
    }))  # fmt: skip
    while True:
        msg = json.loads((await ws.receive(timeout=10)).data)
        if msg.get("id") == ident:
            return msg.get("result", {}).get("result", {}).get("value")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_status_page_shows_label_in_chromium(tmp_path: Path) -> None:
    model = side_model(tmp_path / "side.onnx")
    clip = np.stack([hand_frame(0.2)] * 40 + [hand_frame(None)] * 10).astype(np.float32)
    d = Daemon(
        DaemonConfig(port=0, status_interval=0.2, token="page-token", landmarks_fps=30),
        recognizer=signrt.load(model, device="cpu"),
        source=ReplaySource(clip, fps=30, loop=True),
    ).start_background()
    assert d.wait_ready(20)
    profile = tmp_path / "profile"
    assert CHROMIUM is not None
    browser = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         f"http://127.0.0.1:{d.port}/?token=page-token"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            port_file.exists() and port_file.read_text().strip()
        ):
            time.sleep(0.1)
        cdp_port = int(port_file.read_text().split()[0])

        async def main() -> dict[str, Any]:
            async with aiohttp.ClientSession() as s:
                target = None
                for _ in range(50):
                    async with s.get(f"http://127.0.0.1:{cdp_port}/json/list") as r:
                        pages = [p for p in await r.json() if p.get("type") == "page"]
                    if pages:
                        target = pages[0]["webSocketDebuggerUrl"]
                        break
                    await asyncio.sleep(0.1)
                assert target, "no page target in Chromium"
                async with s.ws_connect(target, max_msg_size=0) as ws:
                    state: dict[str, Any] = {}
                    for i in range(100):
                        state = await _evaluate(ws, (
                            "JSON.stringify({label: document.getElementById('label').textContent,"
                            " events: document.querySelectorAll('#events li').length,"
                            " conn: document.getElementById('conn').textContent,"
                            " ready: document.getElementById('ready').textContent,"
                            " fps: document.getElementById('fps').textContent,"
                            " rows: document.querySelectorAll('#latency tbody tr').length,"
                            " ink: (() => { const c = document.getElementById('view');"
                            "   const px = c.getContext('2d').getImageData(0, 0, c.width,"
                            "   c.height).data; let n = 0;"
                            "   for (let k = 3; k < px.length; k += 4) if (px[k]) n++;"
                            "   return n; })()})"
                        ), i + 1)
                        state = json.loads(state) if isinstance(state, str) else {}
                        if state.get("label") == "left" and state.get("rows") and state.get(
                            "ink"
                        ):
                            break
                        await asyncio.sleep(0.1)
                    return state

        state = asyncio.run(main())
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        d.stop()
    assert state.get("label") == "left", state
    assert state["events"] >= 1 and state["conn"] == "connected"
    assert state["ready"] == "ready" and float(state["fps"]) > 0
    assert state["rows"] >= 5  # latency table filled from status messages
    assert state["ink"] > 50  # the hand skeleton was drawn
