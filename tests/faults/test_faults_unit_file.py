"""deploy/signrt.service: descriptor limit, stop timeout and hardening options."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from signrt.daemon.config import DaemonConfig
from signrt.daemon.connections import FD_RESERVE

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "signrt.service"


def _options() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_unit_limits_fit_the_daemon() -> None:
    opts = _options()
    nofile = int(opts["LimitNOFILE"][0])
    assert nofile >= DaemonConfig().max_connections + FD_RESERVE + 100
    assert float(opts["TimeoutStopSec"][0]) >= 10  # room to write a recording rotation


def test_unit_hardening_options() -> None:
    opts = _options()
    expected = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "CapabilityBoundingSet": "",
    }  # fmt: skip
    for key, value in expected.items():
        assert opts.get(key) == [value], key
    assert any("recordings" in p for p in opts["ReadWritePaths"])
    assert "MemoryDenyWriteExecute" not in opts  # CUDA/TensorRT JIT needs W+X pages


def test_unit_verifies() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    proc = subprocess.run(["systemd-analyze", "verify", str(UNIT)], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                if ln.strip() and "is not executable" not in ln]  # fmt: skip
    assert not problems, problems
