"""The camera daemon end to end with a replay source and a tiny real ONNX model.

The model (tests/helpers_models.side_model) says "left" when the right hand is on the image
left (x < 0.5) and "right" otherwise, so a scripted replay clip has known sign events.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
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

import signrt
from helpers_models import hand_frame, side_model
from helpers_ws import collect
from signrt import SignrtError
from signrt.daemon import Daemon, DaemonConfig
from signrt.daemon.systemd import Notifier, watchdog_interval
from signrt.extract.sources import ReplaySource

pytestmark = pytest.mark.timeout(90)

REPO = Path(__file__).resolve().parents[1]


def scripted_clip() -> np.ndarray:
    """left sign, rest, right sign, rest: 90 frames."""
    frames = (
        [hand_frame(0.2)] * 30 + [hand_frame(None)] * 20
        + [hand_frame(0.8)] * 30 + [hand_frame(None)] * 10
    )  # fmt: skip
    return np.stack(frames).astype(np.float32)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return side_model(tmp_path_factory.mktemp("model") / "side.onnx")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "scripted.npy"
    np.save(path, scripted_clip())
    return path


def make_daemon(model_path: Path, *, fps: float = 120.0, loop: bool = False,
                **config: Any) -> Daemon:
    rec = signrt.load(model_path, device="cpu")
    source = ReplaySource(scripted_clip(), fps=fps, loop=loop)
    cfg = DaemonConfig(port=0, status_interval=0.1, cooldown=0.05, **config)
    return Daemon(cfg, recognizer=rec, source=source)


@pytest.fixture
def running(request: pytest.FixtureRequest, model_path: Path) -> Iterator[Daemon]:
    options = getattr(request, "param", {})
    d = make_daemon(model_path, **options).start_background()
    try:
        yield d
    finally:
        d.stop()


def url(d: Daemon, path: str) -> str:
    return f"http://127.0.0.1:{d.port}{path}"


# --------------------------------------------------------------------------- end to end
def test_events_readyz_and_metrics(model_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    d = make_daemon(model_path, fps=60.0)
    d.start_background()
    try:
        async def main() -> tuple[list[dict[str, Any]], list[tuple[int, str]], str]:
            ready_seen: list[tuple[int, str]] = []
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(url(d, "/ws")) as ws:
                    # /readyz flips to 200 while frames flow, then to 503 when the replay ends.
                    msgs_task = asyncio.ensure_future(collect(ws, 6.0, until=2))
                    deadline = time.monotonic() + 8
                    while time.monotonic() < deadline:
                        async with s.get(url(d, "/readyz")) as r:
                            body = await r.json()
                            ready_seen.append((r.status, body.get("reason", "")))
                        if ready_seen[-1][0] == 503 and any(st == 200 for st, _ in ready_seen):
                            break
                        await asyncio.sleep(0.05)
                    msgs = await msgs_task
                async with s.get(url(d, "/healthz")) as r:
                    assert r.status == 200
                async with s.get(url(d, "/metrics")) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/plain")
                    metrics = await r.text()
            return msgs, ready_seen, metrics

        msgs, ready_seen, metrics = asyncio.run(main())
    finally:
        d.stop()

    assert msgs[0]["type"] == "hello" and msgs[0]["labels"] == ["left", "right"]
    signs = [m for m in msgs if m["type"] == "sign"]
    assert [m["label"] for m in signs] == ["left", "right"]
    left, right = signs
    assert left["score"] > 0.5 and left["end"] < right["start"]
    assert left["latency_ms"] >= 0 and {"preprocess_ms", "inference_ms"} <= set(left["latency"])
    statuses = [st for st, _ in ready_seen]
    first_ok = statuses.index(200)
    assert 503 in statuses[first_ok:]
    assert ready_seen[-1][1] == "source ended"

    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    assert families["signrt_frames"].samples[0].value == 90
    # A few frames may be dropped as stale on a loaded machine.
    processed = families["signrt_frames_processed"].samples[0].value
    assert 60 <= processed <= 90
    events = {s.labels["label"]: s.value for s in families["signrt_events"].samples
              if s.name == "signrt_events_total"}
    assert events == {"left": 1.0, "right": 1.0}
    hist = families["signrt_stage_latency_seconds"]
    stages = {s.labels["stage"] for s in hist.samples}
    assert {"capture", "landmarks", "features", "inference", "publish", "total"} <= stages
    counts = [s.value for s in hist.samples
              if s.name.endswith("_count") and s.labels["stage"] == "total"]
    assert counts and abs(counts[0] - processed) <= 2
    assert "signrt_ws_clients" in families


def test_status_messages_and_client_protocol(running: Daemon) -> None:
    async def main() -> tuple[list[dict[str, Any]], str]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url(running, "/ws")) as ws:
                await ws.send_str("not json")
                await ws.send_str(json.dumps([1, 2]))
                await ws.send_str(json.dumps({"type": "nonsense"}))
                await ws.send_bytes(b"\x00\x01")
                await ws.send_str(json.dumps({"type": "ping"}))
                await ws.send_str(json.dumps({"type": "subscribe", "landmarks": True}))
                msgs = await collect(ws, 1.0)
            # A message above the size limit closes that connection only.
            async with s.ws_connect(url(running, "/ws")) as ws:
                await ws.send_str(json.dumps({"type": "ping", "pad": "x" * 10000}))
                tail = await collect(ws, 1.0)
                assert ws.closed or any(m["type"] != "pong" for m in tail)
            async with s.get(url(running, "/metrics")) as r:
                return msgs, await r.text()

    msgs, metrics = asyncio.run(main())
    kinds = {m["type"] for m in msgs}
    assert {"hello", "pong", "status", "landmarks"} <= kinds
    status = next(m for m in msgs if m["type"] == "status")
    assert {"fps", "dropped", "signer", "latency_ms", "clients", "source"} <= set(status)
    assert set(status["latency_ms"]["total"]) == {"p50", "p99"}
    lm = next(m for m in msgs if m["type"] == "landmarks")
    assert len(lm["pose"]) == 33 and len(lm["right_hand"]) == 21
    assert running.malformed >= 4
    line = next(ln for ln in metrics.splitlines()
                if ln.startswith("signrt_ws_client_messages_malformed_total"))
    assert float(line.split()[-1]) >= 4


def test_token_required_off_localhost(model_path: Path, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    monkeypatch.delenv("SIGNRT_TOKEN", raising=False)
    with pytest.raises(SignrtError, match="token"):
        DaemonConfig(host="0.0.0.0").validate()
    DaemonConfig(host="127.0.0.1").validate()
    DaemonConfig(host="::1").validate()
    monkeypatch.setenv("SIGNRT_TOKEN", "from-env")
    assert DaemonConfig(host="0.0.0.0").resolved_token() == "from-env"
    monkeypatch.delenv("SIGNRT_TOKEN")

    d = make_daemon(model_path, fps=60.0, loop=True, host="0.0.0.0", token="s3cret")
    d.start_background()
    try:
        async def main() -> dict[str, int]:
            got: dict[str, int] = {}
            async with aiohttp.ClientSession() as s:
                async with s.get(url(d, "/metrics")) as r:
                    got["metrics_none"] = r.status
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
                async with s.get(url(d, "/metrics"),
                                 headers={"Authorization": "Bearer wrong"}) as r:
                    got["metrics_wrong"] = r.status
                async with s.get(url(d, "/metrics"),
                                 headers={"Authorization": "Bearer s3cret"}) as r:
                    got["metrics_ok"] = r.status
                try:
                    async with s.ws_connect(url(d, "/ws")):
                        got["ws_none"] = 101
                except aiohttp.WSServerHandshakeError as exc:
                    got["ws_none"] = exc.status
                async with s.ws_connect(url(d, "/ws?token=s3cret")) as ws:
                    hello = await collect(ws, 0.5)
                    got["ws_ok"] = 101 if hello and hello[0]["type"] == "hello" else 0
                async with s.get(url(d, "/healthz")) as r:
                    got["healthz"] = r.status
            return got

        got = asyncio.run(main())
    finally:
        d.stop()
    assert got == {"metrics_none": 401, "metrics_wrong": 401, "metrics_ok": 200,
                   "ws_none": 401, "ws_ok": 101, "healthz": 200}


def _stalled_client(port: int) -> socket.socket:
    """A WebSocket client with a tiny receive buffer that never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws?landmarks=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


@pytest.mark.parametrize(
    "running",
    [{"fps": 240.0, "loop": True, "queue_size": 4, "landmarks_fps": 1000.0}],
    indirect=True,
)
def test_many_clients_and_a_stalled_one(running: Daemon) -> None:
    stalled = _stalled_client(running.port or 0)
    try:
        async def main() -> tuple[list[int], float, float]:
            async with aiohttp.ClientSession() as s:
                sockets = [await s.ws_connect(url(running, "/ws")) for _ in range(50)]
                # Wait until the stalled client's queue overflows, keep counting events.
                drops = 0.0
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and drops == 0:
                    await asyncio.sleep(0.25)
                    drops = float(sum(c.dropped for c in list(running.clients)))
                t_drop = time.monotonic()
                # After the stall, every normal client still gets fresh sign events quickly.
                results = await asyncio.gather(*(collect(ws, 4.0, until=4) for ws in sockets))
                elapsed = time.monotonic() - t_drop
                for ws in sockets:
                    await ws.close()
                return [sum(m["type"] == "sign" for m in r) for r in results], drops, elapsed

        counts, drops, elapsed = asyncio.run(main())
    finally:
        stalled.close()
    assert drops > 0, "the stalled client never overflowed its queue"
    assert min(counts) >= 4, counts
    assert elapsed < 4.0
    assert running.pipeline is not None and running.pipeline.frames_done > 0


def test_recording_rotates_atomic_files(model_path: Path, tmp_path: Path) -> None:
    from signrt.io.kaggle import read_parquet

    rec_dir = tmp_path / "rec"
    d = make_daemon(model_path, fps=90.0, record=str(rec_dir), record_rotate=0.2)
    d.start_background()
    try:
        assert d.wait_ready(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (d.pipeline and d.pipeline.source_ended):
            time.sleep(0.05)
    finally:
        d.stop()
    files = sorted(rec_dir.glob("*.parquet"))
    assert len(files) >= 2
    assert not list(rec_dir.glob(".*"))
    import pyarrow.parquet as pq

    frames = np.concatenate([read_parquet(f) for f in files])
    numbers = np.concatenate(
        [np.unique(pq.read_table(f, columns=["frame"]).column("frame").to_numpy()) for f in files]
    )
    # Frames the worker skipped as stale are not recorded; those recorded are exact.
    assert np.all(np.diff(numbers) > 0) and len(numbers) >= 30
    np.testing.assert_array_equal(frames, scripted_clip()[numbers])


# ------------------------------------------------------------------------------ systemd
def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def test_notifier_protocol(tmp_path: Path) -> None:
    listener = _notify_socket(tmp_path / "n.sock")
    n = Notifier(str(tmp_path / "n.sock"))
    assert n.ready("serving") and n.watchdog() and n.stopping()
    got = [listener.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=serving", "WATCHDOG=1", "STOPPING=1"]
    n.close()
    listener.close()
    assert not Notifier("").notify("READY=1")  # outside systemd: no-op
    assert Notifier(str(tmp_path / "absent.sock")).notify("READY=1") is False  # logged only
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_process_sd_notify_and_signal_stop(sig: signal.Signals, model_path: Path,
                                                 clip_path: Path, tmp_path: Path) -> None:
    notify = tmp_path / "notify.sock"
    listener = _notify_socket(notify)
    port = _free_port()
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify),
        "WATCHDOG_USEC": "200000",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(signrt.__file__).parent.parent), str(REPO / "tests"),
             os.environ.get("PYTHONPATH", "")]
        ),
    }
    env.pop("WATCHDOG_PID", None)
    errf = open(tmp_path / "stderr.txt", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "signrt.cli", "serve", "--model", str(model_path), "--device",
         "cpu", "--source", f"replay:{clip_path}", "--port", str(port), "--fps", "60"],
        env=env, stdout=subprocess.DEVNULL, stderr=errf,
    )  # fmt: skip
    messages: list[str] = []

    def drain(until: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                messages.append(listener.recv(4096).decode())
            except TimeoutError:
                if proc.poll() is not None:
                    return False
                continue
            if any(until in m for m in messages):
                return True
        return False

    try:
        assert drain("READY=1", 45), (tmp_path / "stderr.txt").read_text()
        assert drain("WATCHDOG=1", 2)

        async def client_then_signal() -> tuple[int | None, float]:
            async with (
                aiohttp.ClientSession() as s,
                s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
            ):
                await collect(ws, 0.3)
                t0 = time.monotonic()
                proc.send_signal(sig)
                while True:  # drain until the server closes the connection
                    msg = await ws.receive(timeout=3)
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.CLOSING):
                        break
                return ws.close_code, t0

        close_code, t0 = asyncio.run(client_then_signal())
        rc = proc.wait(timeout=5)
        stopped_in = time.monotonic() - t0
        drain("STOPPING=1", 0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
        errf.close()
    assert rc == 0, (tmp_path / "stderr.txt").read_text()
    assert stopped_in < 2.0
    assert close_code == 1001
    assert any("STOPPING=1" in m for m in messages)


# ------------------------------------------------------------------------------- config
def test_config_toml_and_cli_overrides(tmp_path: Path) -> None:
    from signrt.daemon.cli import _config

    cfg_file = tmp_path / "signrt.toml"
    cfg_file.write_text(
        'model = "m.onnx"\n[server]\nport = 9000\nhost = "127.0.0.1"\n'
        '[stream]\nthreshold = 0.7\nmode = "segment"\n'
    )
    cfg = DaemonConfig.from_toml(cfg_file)
    assert (cfg.model, cfg.port, cfg.threshold, cfg.mode) == ("m.onnx", 9000, 0.7, "segment")

    import argparse

    args = argparse.Namespace(config=str(cfg_file), port=9100, model=None, no_loop=True)
    merged = _config(args)
    assert merged.port == 9100 and merged.model == "m.onnx" and merged.loop is False

    bad = tmp_path / "bad.toml"
    bad.write_text("prot = 1\n")
    with pytest.raises(SignrtError, match="unknown setting 'prot'"):
        DaemonConfig.from_toml(bad)
    bad.write_text("port = 'x'\n")
    with pytest.raises(SignrtError, match="port must be an integer"):
        DaemonConfig.from_toml(bad)
    bad.write_text("port = [\n")
    with pytest.raises(SignrtError, match="not valid TOML"):
        DaemonConfig.from_toml(bad)
    token = tmp_path / "token"
    token.write_text("abc\n")
    assert DaemonConfig(token_file=str(token)).resolved_token() == "abc"


def test_demo_command_prints_signs(model_path: Path, clip_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from signrt.cli import main

    rc = main(["demo", "--model", str(model_path), "--device", "cpu",
               "--source", f"replay:{clip_path}", "--fast"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if "score" in ln and "latency" in ln]
    assert [ln.split()[2] for ln in lines] == ["left", "right"]
    assert "2 sign(s) in 90 frames" in out


def test_bundled_replay_clip_is_small_and_matches_generator() -> None:
    from signrt.daemon.server import bundled_replay
    from signrt.extract.sources import open_source

    path = bundled_replay()
    assert path.stat().st_size < 600_000
    src = open_source(f"replay:{path}", realtime=False)
    clip = np.stack([f.landmarks for f in src])
    assert clip.shape[1:] == (543, 3) and 200 <= clip.shape[0] <= 600
    pytest.importorskip("signrt.synthetic")
    from signrt.daemon.replay_data import build_replay_clip

    expected, spans = build_replay_clip()
    np.testing.assert_allclose(clip, expected, atol=1e-6)
    assert len(spans) == 6


def test_demo_on_bundled_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """`signrt demo` with no model/source: the bundled demo model on the bundled replay."""
    from signrt.cli import main
    from signrt.daemon.replay_data import REPLAY_LABELS
    from signrt.recognizer import default_model_path

    try:
        default_model_path()
    except signrt.ModelError:
        pytest.fail("the bundled demo model (signrt/_models/demo/*.onnx) is missing")
    rc = main(["demo", "--fast", "--device", "cpu"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "in 348 frames" in out
    labels = [ln.split()[2] for ln in out.splitlines() if "score" in ln and "latency" in ln]
    assert labels, out
    # The clip signs classes of the default synthetic configuration (labels sign00 ...);
    # a demo model trained on it recognises at least some of them.
    expected = {f"sign{k:02d}" for k in REPLAY_LABELS}
    assert expected & set(labels), labels
