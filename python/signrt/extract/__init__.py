"""Landmark extraction: Holistic extractors, frame sources, batch extraction.

Two ways to get landmarks: the bundled Holistic models on ONNX Runtime
(``create_extractor("onnx")``; it needs only OpenCV, ``pip install 'signrt[landmarks]'``),
or MediaPipe itself (the ``camera`` extra: MediaPipe 0.10.21 and OpenCV).
Nothing heavy is imported here; MediaPipe and OpenCV load when an extractor or a
source is created.

Example:
    >>> from signrt.extract import create_extractor, open_source
    >>> with create_extractor() as ex, open_source("clip.mp4") as src:
    ...     frames = [ex.process(f.image, bgr=True) for f in src]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_module

if TYPE_CHECKING:
    from .batch import BatchResult, extract_video, extract_videos
    from .extractor import (
        Extractor,
        ExtractorError,
        HolisticExtractor,
        TasksHolisticExtractor,
        create_extractor,
        empty_frame,
        landmarks_to_frame,
    )
    from .onnx_holistic import OnnxHolisticExtractor
    from .sources import (
        CaptureSource,
        Frame,
        ImageFolderSource,
        ReplaySource,
        Source,
        open_source,
    )

__all__ = [
    "BatchResult",
    "CaptureSource",
    "Extractor",
    "ExtractorError",
    "Frame",
    "HolisticExtractor",
    "ImageFolderSource",
    "OnnxHolisticExtractor",
    "ReplaySource",
    "Source",
    "TasksHolisticExtractor",
    "create_extractor",
    "empty_frame",
    "extract_video",
    "extract_videos",
    "landmarks_to_frame",
    "open_source",
]

_LAZY: dict[str, str] = {
    "BatchResult": ".batch",
    "extract_video": ".batch",
    "extract_videos": ".batch",
    "Extractor": ".extractor",
    "ExtractorError": ".extractor",
    "HolisticExtractor": ".extractor",
    "TasksHolisticExtractor": ".extractor",
    "create_extractor": ".extractor",
    "empty_frame": ".extractor",
    "landmarks_to_frame": ".extractor",
    "OnnxHolisticExtractor": ".onnx_holistic",
    "CaptureSource": ".sources",
    "Frame": ".sources",
    "ImageFolderSource": ".sources",
    "ReplaySource": ".sources",
    "Source": ".sources",
    "open_source": ".sources",
}


__getattr__, __dir__ = lazy_module(__name__, _LAZY, __all__)
