"""The on-device camera daemon: pipeline threads, HTTP + WebSocket server, metrics, systemd.

Install the ``serve`` extra (aiohttp, prometheus-client), and the ``camera`` extra for real
cameras (the bundled replay source needs neither MediaPipe nor OpenCV). Run it with
``signrt serve``; embed it with :class:`Daemon`. Nothing heavy is imported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_module

if TYPE_CHECKING:
    from .build import bundled_replay
    from .config import DaemonConfig
    from .pipeline import FrameResult, Pipeline
    from .server import Daemon
    from .systemd import Notifier

__all__ = ["Daemon", "DaemonConfig", "FrameResult", "Notifier", "Pipeline", "bundled_replay"]

_LAZY: dict[str, str] = {
    "Daemon": ".server",
    "bundled_replay": ".build",
    "DaemonConfig": ".config",
    "FrameResult": ".pipeline",
    "Pipeline": ".pipeline",
    "Notifier": ".systemd",
}


__getattr__, __dir__ = lazy_module(__name__, _LAZY, __all__)
