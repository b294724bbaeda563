"""Prometheus metrics of the daemon, in a registry of its own (never the global one)."""

from __future__ import annotations

from typing import Any

__all__ = ["STAGES", "Metrics"]

#: Pipeline stages timed per frame, in order.
STAGES: tuple[str, ...] = ("capture", "landmarks", "features", "inference", "publish", "total")

_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0,
)  # fmt: skip


class Metrics:
    """Counters, gauges and latency histograms of one daemon.

    All updates are thread-safe (prometheus_client locks internally), so the pipeline thread
    and the asyncio server both write here.

    Raises:
        ImportError: If prometheus_client is missing (install ``signrt[serve]``).
    """

    def __init__(self) -> None:
        import prometheus_client as pc

        self._pc = pc
        r = self.registry = pc.CollectorRegistry(auto_describe=True)
        self.frames = pc.Counter(
            "signrt_frames", "Frames delivered by the source", registry=r
        )
        self.processed = pc.Counter(
            "signrt_frames_processed", "Frames that went through landmarks and the stream",
            registry=r,
        )
        self.dropped = pc.Counter(
            "signrt_frames_dropped",
            "Frames dropped because a newer one arrived before they were processed (stale)",
            registry=r,
        )
        self.events = pc.Counter(
            "signrt_events", "Sign events published", ["label"], registry=r
        )
        self.latency = pc.Histogram(
            "signrt_stage_latency_seconds",
            "Per-frame latency of each pipeline stage",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.clients = pc.Gauge("signrt_ws_clients", "Connected WebSocket clients", registry=r)
        self.client_drops = pc.Counter(
            "signrt_ws_messages_dropped",
            "Messages dropped for slow clients (oldest first)",
            registry=r,
        )
        self.malformed = pc.Counter(
            "signrt_ws_client_messages_malformed",
            "Client messages ignored because they were malformed or too large",
            registry=r,
        )
        self.auth_failures = pc.Counter(
            "signrt_auth_failures", "Requests refused for a missing or wrong token", registry=r
        )
        self.reconnects = pc.Gauge(
            "signrt_source_reconnects", "Times the source was reopened", registry=r
        )
        self.ready = pc.Gauge("signrt_ready", "1 when the daemon is ready", registry=r)
        self.signer = pc.Gauge("signrt_signer_present", "1 when a signer is in view", registry=r)
        self.fps = pc.Gauge("signrt_fps", "Processed frames per second", registry=r)
        self._stage = {s: self.latency.labels(stage=s) for s in STAGES}

    def observe_stages(self, stages_ms: dict[str, float]) -> None:
        """Record one frame's stage latencies (milliseconds)."""
        for name, ms in stages_ms.items():
            child = self._stage.get(name)
            if child is not None:
                child.observe(ms / 1e3)

    def render(self) -> tuple[bytes, str]:
        """Return the text exposition and its content type."""
        pc: Any = self._pc
        return pc.generate_latest(self.registry), pc.CONTENT_TYPE_LATEST
