"""``signrt serve`` (the camera daemon) and ``signrt demo`` (signs printed to the terminal)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import Any

__all__ = ["register"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="ONNX model (default: the bundled demo model)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, tensorrt or trt")
    p.add_argument(
        "--source",
        default=None,
        help=(
            "camera index, /dev/videoN, video file, image folder, GStreamer pipeline, URL or "
            "replay:CLIP.parquet (default: the bundled replay clip of synthetic signing)"
        ),
    )
    p.add_argument("--fps", type=float, default=None, help="replay / file / folder frame rate")
    p.add_argument(
        "--landmarker", default=None, metavar="onnx[:DEVICE]|legacy|PATH.task",
        help="onnx (bundled models on ONNX Runtime), legacy (MediaPipe) or a .task model "
        "(default: legacy where MediaPipe is installed, else onnx)",
    )  # fmt: skip
    p.add_argument("--threads", type=int, default=None, help="extractor inference threads")
    p.add_argument("--mode", choices=("window", "segment"), default=None, help="stream mode")
    p.add_argument("--threshold", type=float, default=None,
                   help="minimum event score (a probability unless --score energy)")
    p.add_argument("--score", choices=("probability", "energy"), default=None,
                   help="what the threshold compares (default: the model's tuned setting)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``signrt serve`` and ``signrt demo``."""
    p = sub.add_parser(
        "serve",
        help="run the camera daemon (HTTP + WebSocket sign events, metrics, status page)",
        description=(
            "Capture frames, extract landmarks, recognise signs and publish them over a "
            "WebSocket (/ws), with /healthz, /readyz, /metrics and a status page at /. "
            "With no arguments it replays a bundled clip of synthetic signing through the "
            "bundled demo model, so it runs on any machine. Binds to 127.0.0.1 unless told "
            "otherwise; any other address needs a token (--token or SIGNRT_TOKEN). Stops on "
            "SIGTERM/SIGINT; speaks sd_notify under systemd (see deploy/signrt.service)."
        ),
    )
    _common(p)
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default 8765)")
    p.add_argument("--token", default=None, help="bearer token for /ws and /metrics")
    p.add_argument("--config", default=None, metavar="FILE.toml", help="settings file")
    p.add_argument("--no-loop", action="store_true", help="do not restart replays/files")
    p.add_argument("--record", default=None, metavar="DIR", help="record landmarks to parquet")
    p.set_defaults(func=_cmd_serve)

    d = sub.add_parser(
        "demo",
        help="print recognised signs with their latency, then exit",
        description=(
            "Run the recognition pipeline without a server and print each recognised sign "
            "with its score and latency. With no arguments it replays the bundled clip of "
            "synthetic signing through the bundled demo model (labelled sign00, sign01, ...: "
            "made-up gestures, not a sign language) and exits at the end of the clip."
        ),
    )
    _common(d)
    d.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    d.add_argument("--fast", action="store_true", help="replay as fast as possible")
    d.set_defaults(func=_cmd_demo)


def _config(args: argparse.Namespace) -> Any:
    from .config import DaemonConfig

    cfg = DaemonConfig.from_toml(args.config) if getattr(args, "config", None) else DaemonConfig()
    changes = {
        k: getattr(args, k, None)
        for k in (
            "model", "device", "source", "fps", "landmarker", "threads", "mode", "threshold",
            "score",
            "host", "port", "token", "record",
        )
    }  # fmt: skip
    if getattr(args, "no_loop", False):
        changes["loop"] = False
    return cfg.updated(changes, where="command line")


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server import Daemon

    daemon = Daemon(_config(args))
    host = daemon.config.host
    print(f"signrt serve: http://{host}:{daemon.config.port}/ (Ctrl-C to stop)", flush=True)
    return daemon.run()


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..recognizer import load
    from .build import build_pipeline, open_configured_source
    from .pipeline import FrameResult

    cfg = _config(args)
    t0 = time.perf_counter()
    rec = load(cfg.model, device=cfg.device)
    print(f"model {rec.model.path.name}: {len(rec.labels)} labels, engine {rec.engine.name}, "
          f"loaded in {time.perf_counter() - t0:.2f} s")
    source = open_configured_source(cfg, realtime=not args.fast, loop=False)
    print(f"source {source.name}")
    lock = threading.Lock()
    count = [0]

    def on_result(res: FrameResult) -> None:
        pipe.record_latency(res.stages)
        for ev in res.events:
            with lock:
                count[0] += 1
            lat = (time.perf_counter() - res.captured) * 1e3 if res.index >= 0 else 0.0
            print(
                f"{ev.end:7.2f} s  {ev.label:<16} score {ev.score:.2f}  "
                f"latency {lat:6.2f} ms (features {ev.latency.preprocess_ms:.2f}, "
                f"inference {ev.latency.inference_ms:.2f})",
                flush=True,
            )

    pipe = build_pipeline(cfg, rec, source, on_result=on_result, drop_stale=not args.fast)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pipe.start()
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        while not pipe.finished.is_set() and not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            pipe.finished.wait(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        pipe.stop(1.0)
        signal.signal(signal.SIGTERM, previous)
    elapsed = time.perf_counter() - t0
    stages = ", ".join(
        "{} p50 {:.2f} / p99 {:.2f} ms".format(name, *pipe.latency[name].percentiles(50, 99))
        for name in ("landmarks", "features", "inference")
        if name in pipe.latency and (name != "landmarks" or pipe.needs_extractor)
    )
    print(
        f"{count[0]} sign(s) in {pipe.frames_done} frames ({elapsed:.1f} s, "
        f"{pipe.dropped} dropped); per frame: {stages}"
    )
    if pipe.source_error or pipe.worker_error:
        print(f"error: {pipe.source_error or pipe.worker_error}", file=sys.stderr)
        return 1
    return 0
