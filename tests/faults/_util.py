"""Helpers of the fault suite: daemons with replay sources, subprocesses, local clients."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import signrt

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 2.0,
        headers: dict[str, str] | None = None) -> tuple[int, str]:
    """(status, body) of a GET on 127.0.0.1, or (0, error) when no answer came."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, repr(exc)


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(
        [str(Path(signrt.__file__).parent.parent), str(REPO / "tests"),
         os.environ.get("PYTHONPATH", "")]
    )
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "SIGNRT_TOKEN"):
        e.pop(key, None)
    return e


def _no_new_privs() -> None:
    import ctypes

    pr_set_no_new_privs = 38
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")


def serve(args: Sequence[str], stderr: Path, *, nofile: int | None = None,
          hardened: bool = False) -> subprocess.Popen[bytes]:
    """`signrt -v serve ARGS` in a subprocess, stderr to a file, optionally with a lowered
    descriptor limit (soft and hard) and, with ``hardened``, what deploy/signrt.service
    imposes that a process can impose on itself (NoNewPrivileges, UMask=0027,
    LimitNOFILE=4096)."""

    def limit() -> None:
        if hardened:
            _no_new_privs()
            os.umask(0o027)
            nofile_ = 4096
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile_, nofile_))
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with open(stderr, "wb") as errf:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "signrt.cli", "-v", "serve", "--device", "cpu", *args],
            env=env(), stdout=subprocess.DEVNULL, stderr=errf,
            preexec_fn=limit if nofile is not None or hardened else None,
        )


def wait_ready(proc: subprocess.Popen[bytes], port: int, stderr: Path, timeout: float = 45.0
               ) -> None:
    ok = wait_for(lambda: proc.poll() is not None or get(port, "/readyz", 0.5)[0] == 200,
                  timeout, 0.1)
    assert ok and proc.poll() is None, stderr.read_text()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} missing")


class FakeExtractor:
    """A landmark extractor stand-in for image sources: every frame has no signer."""

    def process(self, image: Any, timestamp_ms: int | None = None, bgr: bool = False) -> Any:
        assert image.ndim == 3
        return np.full((543, 3), np.nan, dtype=np.float32)

    def close(self) -> None:
        pass


def dumps(obj: Any) -> str:
    return json.dumps(obj)
