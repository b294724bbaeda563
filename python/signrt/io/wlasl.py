"""WLASL: the ``WLASL_v0.3.json`` index and the landmarks of its videos.

A WLASL folder holds ``WLASL_v0.3.json`` (a list of ``{"gloss", "instances": [...]}``
entries) and ``videos/<video_id>.mp4``. The landmarks of a video are extracted once and
cached as ``<landmark_cache>/<video_id>.npy`` (the whole video); each instance is a frame
range of it.

Extraction is a layer above this one (:func:`signrt.extract.extract_video`), so
:func:`wlasl_clips` takes it as the ``extract`` argument; the training data reader
(:func:`signrt.train.data.open_dataset`) passes ``extract_video``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from ..errors import DataError
from ._files import FloatArray, PathLike
from .arrays import write_npy

__all__ = ["WLASL_INDEX", "WlaslClip", "WlaslInstance", "index_wlasl", "wlasl_clips"]

log = logging.getLogger(__name__)

#: The index file of a WLASL folder.
WLASL_INDEX: Final = "WLASL_v0.3.json"


@dataclass(frozen=True)
class WlaslInstance:
    """One WLASL instance (a sign within a video).

    Attributes:
        gloss: The sign.
        video_id: The video file stem.
        signer_id: The signer.
        split: ``train``, ``val`` or ``test``.
        frame_start: First frame, 0-based.
        frame_stop: One past the last frame, or None for the end of the video.
    """

    gloss: str
    video_id: str
    signer_id: str
    split: str
    frame_start: int
    frame_stop: int | None


def index_wlasl(json_path: PathLike) -> list[WlaslInstance]:
    """Parse ``WLASL_v0.3.json``: a list of ``{"gloss", "instances": [...]}`` entries.

    WLASL frame numbers are 1-based and inclusive, ``frame_end == -1`` meaning the end of
    the video; they are converted to a 0-based ``[start, stop)`` range.

    Raises:
        DataError: If the file is not valid WLASL JSON.
    """
    p = Path(json_path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot read WLASL index: {exc}") from exc
    if not isinstance(doc, list):
        raise DataError(f"{p}: expected a JSON list of glosses")
    out: list[WlaslInstance] = []
    for entry in doc:
        try:
            gloss = str(entry["gloss"])
            for inst in entry["instances"]:
                start = int(inst.get("frame_start", 1))
                end = int(inst.get("frame_end", -1))
                out.append(
                    WlaslInstance(
                        gloss=gloss,
                        video_id=str(inst["video_id"]),
                        signer_id=str(inst.get("signer_id", inst["video_id"])),
                        split=str(inst.get("split", "train")),
                        frame_start=max(0, start - 1),
                        frame_stop=None if end < 0 else end,
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{p}: malformed WLASL entry {str(entry)[:80]!r}: {exc}") from exc
    return out


@dataclass(frozen=True)
class WlaslClip:
    """A usable WLASL instance: its cached landmarks and its frame range.

    Attributes:
        path: ``<landmark_cache>/<video_id>.npy``, the landmarks of the whole video.
        gloss: The sign.
        signer_id: The signer.
        frames: ``(start, stop)`` frame range, ``stop`` None for the end of the video.
    """

    path: Path
    gloss: str
    signer_id: str
    frames: tuple[int, int | None]


def wlasl_clips(
    root: PathLike,
    extract: Callable[[Path], FloatArray],
    *,
    split: str | None = None,
    landmark_cache: PathLike | None = None,
) -> list[WlaslClip]:
    """Parse the index, extract the landmarks of each needed video once, list the instances.

    Instances whose video is neither cached nor present under ``videos/`` are skipped
    (WLASL links rot; the count is logged).

    Args:
        root: The WLASL folder or its ``WLASL_v0.3.json``.
        extract: ``video path -> (T, 543, 3)`` landmarks (e.g.
            :func:`signrt.extract.extract_video`), called only for videos not cached yet.
        split: Keep only this split (``train``, ``val``, ``test``).
        landmark_cache: Cache folder (default ``<root>/landmarks``).

    Returns:
        The usable instances, in index order.

    Raises:
        DataError: If the index is malformed or no instance is usable.
    """
    p = Path(root)
    json_path = p if p.is_file() else p / WLASL_INDEX
    base = json_path.parent
    cache = Path(landmark_cache) if landmark_cache is not None else base / "landmarks"
    insts = index_wlasl(json_path)
    if split is not None:
        insts = [i for i in insts if i.split == split]
    out: list[WlaslClip] = []
    missing = 0
    for inst in insts:
        npy = cache / f"{inst.video_id}.npy"
        if not npy.is_file():
            video = next(
                (v for v in sorted((base / "videos").glob(f"{inst.video_id}.*")) if v.is_file()),
                None,
            )
            if video is None:
                missing += 1
                continue
            log.info("extracting landmarks of %s", video)
            clip = np.asarray(extract(video), dtype=np.float32)  # (T, 543, 3)
            cache.mkdir(parents=True, exist_ok=True)
            write_npy(npy, clip)
        out.append(WlaslClip(npy, inst.gloss, inst.signer_id, (inst.frame_start, inst.frame_stop)))
    if missing:
        log.warning(
            "WLASL: %d of %d instances have no video or cached landmarks", missing, len(insts)
        )
    if not out:
        raise DataError(f"{json_path}: no usable instance (no cached landmarks or videos)")
    return out
