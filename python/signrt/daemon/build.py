"""Assembling the daemon's pipeline from a :class:`DaemonConfig`, in one place.

``signrt serve`` (:class:`signrt.daemon.Daemon`) and ``signrt demo`` both build their
source, extractor, stream options, recorder and :class:`Pipeline` here, so the two cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SignrtError
from ..extract.sources import Source, open_source
from .config import DaemonConfig
from .pipeline import FrameResult, Pipeline

__all__ = [
    "build_pipeline",
    "bundled_replay",
    "extractor_factory",
    "open_configured_source",
    "stream_options",
]


def bundled_replay() -> Path:
    """Path of the bundled replay clip of synthetic signing.

    Raises:
        SignrtError: If the package was installed without its data files.
    """
    path = Path(str(resources.files("signrt.daemon") / "data" / "replay_demo.parquet"))
    if not path.is_file():
        raise SignrtError(
            f"bundled replay clip {path} is missing; reinstall signrt or pass --source"
        )
    return path


def open_configured_source(cfg: DaemonConfig, *, realtime: bool, loop: bool) -> Source:
    """Open ``cfg.source`` (default: the bundled replay clip).

    Raises:
        SourceError: If the source cannot be opened.
    """
    spec = cfg.source or f"replay:{bundled_replay()}"
    return open_source(
        spec, fps=cfg.fps, realtime=realtime, loop=loop, width=cfg.width, height=cfg.height
    )


def extractor_factory(cfg: DaemonConfig) -> Callable[[], Any]:
    """A function creating the landmark extractor the config names (called on warm-up)."""

    def factory() -> Any:
        from ..extract.extractor import create_extractor

        return create_extractor(
            cfg.landmarker,
            static_image_mode=False,
            model_complexity=cfg.model_complexity,
            num_threads=cfg.threads,
        )

    return factory


def stream_options(cfg: DaemonConfig) -> dict[str, Any]:
    """Keyword arguments of ``Recognizer.stream`` for the config's mode.

    Settings left ``None`` are left out, so the model's tuned stream settings
    (``signrt.stream``) and then the Stream's defaults apply.
    """
    options: dict[str, Any] = {"mode": cfg.mode}
    given: dict[str, Any] = {"threshold": cfg.threshold, "score": cfg.score}
    if cfg.mode == "window":
        given.update(stride=cfg.stride, confirm=cfg.confirm, cooldown=cfg.cooldown)
    options.update({k: v for k, v in given.items() if v is not None})
    return options


def build_pipeline(
    cfg: DaemonConfig,
    recognizer: Any,
    source: Source,
    *,
    on_result: Callable[[FrameResult], None] | None,
    drop_stale: bool = True,
    factory: Callable[[], Any] | None = None,
    metrics: Any = None,
) -> Pipeline:
    """The pipeline for ``cfg``: stream options, extractor and (with ``cfg.record``) recorder.

    Args:
        cfg: The settings.
        recognizer: A loaded recognizer.
        source: An opened source.
        on_result: Called on the worker thread with each frame's result.
        drop_stale: Keep only the newest frame (live) or make the capture thread wait.
        factory: Creates the extractor (default: :func:`extractor_factory` of ``cfg``).
        metrics: Optional :class:`~signrt.daemon.metrics.Metrics`.

    Returns:
        The pipeline, not yet started.
    """
    recorder = None
    if cfg.record:
        from .recorder import Recorder

        recorder = Recorder(cfg.record, rotate_seconds=cfg.record_rotate)
    return Pipeline(
        source,
        recognizer,
        extractor_factory=factory or extractor_factory(cfg),
        stream_options=stream_options(cfg),
        on_result=on_result,
        drop_stale=drop_stale,
        recorder=recorder,
        metrics=metrics,
    )
