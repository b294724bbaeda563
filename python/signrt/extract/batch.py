"""Batch extraction: many videos to a Kaggle-layout landmark dataset, in several processes.

The output folder looks like the Kaggle ASL Signs data, so every signrt reader and the
trainer take it as is::

    OUT/train.csv                                   path,participant_id,sequence_id,sign
    OUT/train_landmark_files/<participant>/<sequence_id>.parquet
    OUT/failed.csv                                  video,error (only when some failed)

Each clip is written atomically (temporary file, then rename), so an interrupted run leaves
no half-written clip and a second run skips every finished video (resumable). ``train.csv``
is merged with the rows already there and rewritten atomically at the end. A video that
cannot be decoded is listed in ``failed.csv`` and the others go on.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import logging
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["BatchResult", "VideoJob", "extract_video", "extract_videos", "plan_jobs"]

log = logging.getLogger(__name__)

CSV_COLUMNS = ("path", "participant_id", "sequence_id", "sign")


@dataclass(frozen=True)
class VideoJob:
    """One video to extract.

    Attributes:
        video: Path of the video (or image folder).
        out: Destination parquet file.
        rel: ``out`` relative to the dataset folder (the ``path`` column of train.csv).
        participant_id: Participant column of train.csv.
        sequence_id: Sequence column (stable hash of the video's absolute path).
        sign: Sign label column.
    """

    video: str
    out: str
    rel: str
    participant_id: int
    sequence_id: int
    sign: str


@dataclass
class BatchResult:
    """What a batch run did.

    Attributes:
        done: Jobs extracted in this run.
        skipped: Jobs whose output existed already (resumed).
        failed: (video, error message) of every video that failed.
        frames: Total frames extracted in this run.
        seconds: Wall time of the run.
    """

    done: list[VideoJob] = field(default_factory=list)
    skipped: list[VideoJob] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether no video failed."""
        return not self.failed


def sequence_id_for(video: str | os.PathLike[str]) -> int:
    """Return a stable positive 31-bit sequence id for a video path."""
    digest = hashlib.sha1(str(Path(video).resolve()).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_jobs(
    videos: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    sign: str | None = None,
    participant_id: int = 0,
) -> list[VideoJob]:
    """Plan one job per video (duplicates removed, order kept).

    Args:
        videos: Video files or image folders.
        out_dir: Dataset folder.
        sign: Sign label for every video; ``None`` takes each video's parent folder name
            (the ImageFolder convention ``videos/<sign>/clip.mp4``).
        participant_id: Participant id written to train.csv.

    Returns:
        The jobs.
    """
    out = Path(out_dir)
    jobs: list[VideoJob] = []
    seen: set[int] = set()
    for v in videos:
        seq = sequence_id_for(v)
        if seq in seen:
            continue
        seen.add(seq)
        rel = f"train_landmark_files/{participant_id}/{seq}.parquet"
        label = sign if sign is not None else (Path(v).resolve().parent.name or "unknown")
        jobs.append(VideoJob(str(v), str(out / rel), rel, participant_id, seq, label))
    return jobs


def extract_video(
    video: str | os.PathLike[str],
    *,
    landmarker: str | None = None,
    model_complexity: int = 1,
    num_threads: int | None = 1,
    max_frames: int | None = None,
) -> Any:
    """Extract the landmarks of every frame of one video (or image folder).

    Args:
        video: Video file or image folder.
        landmarker: ``None`` for legacy Holistic or a ``.task`` model path.
        model_complexity: Pose model complexity (legacy backend).
        num_threads: Inference threads per process.
        max_frames: Stop after this many frames.

    Returns:
        (T, 543, 3) float32 landmarks.

    Raises:
        SourceError: If the video cannot be opened or holds no frame.
    """
    import numpy as np

    from ..errors import SourceError
    from .extractor import create_extractor
    from .sources import open_source

    source = open_source(video, realtime=False)
    frames: list[Any] = []
    try:
        with create_extractor(
            landmarker,
            static_image_mode=False,
            model_complexity=model_complexity,
            num_threads=num_threads,
        ) as ex:
            for frame in source:
                assert frame.image is not None
                frames.append(
                    ex.process(frame.image, timestamp_ms=int(frame.timestamp * 1e3), bgr=True)
                )
                if max_frames is not None and len(frames) >= max_frames:
                    break
    finally:
        source.close()
    if not frames:
        raise SourceError(f"{video}: no frame could be decoded (corrupt or empty video?)")
    return np.stack(frames)


def _run_job(job: VideoJob, options: dict[str, Any]) -> tuple[VideoJob, int, str | None]:
    """Worker: extract one video and write its parquet atomically."""
    try:
        from ..io.kaggle import write_parquet

        clip = extract_video(job.video, **options)
        Path(job.out).parent.mkdir(parents=True, exist_ok=True)
        write_parquet(job.out, clip)
        return job, int(clip.shape[0]), None
    except Exception as exc:
        return job, 0, f"{type(exc).__name__}: {exc}"


def _worker_init() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _Progress:
    """tqdm when installed, else one log line per finished video."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.count = 0
        self.bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="video", desc="extract", file=sys.stderr)
            except ImportError:
                self.bar = None
        self.enabled = enabled

    def update(self, name: str) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.set_postfix_str(Path(name).name[-30:], refresh=False)
            self.bar.update(1)
        elif self.enabled:
            print(f"[{self.count}/{self.total}] {name}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from .._fs import atomic_write

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue().encode())


def _merge_train_csv(out: Path, jobs: Sequence[VideoJob]) -> None:
    path = out / "train.csv"
    rows: dict[str, tuple[str, ...]] = {}
    if path.exists():
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                if r.get("path"):
                    rows[r["path"]] = tuple(r.get(c, "") for c in CSV_COLUMNS)
    for j in jobs:
        rows[j.rel] = (j.rel, str(j.participant_id), str(j.sequence_id), j.sign)
    _write_csv_atomic(path, CSV_COLUMNS, rows.values())


def extract_videos(
    videos: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    workers: int | None = None,
    sign: str | None = None,
    participant_id: int = 0,
    landmarker: str | None = None,
    model_complexity: int = 1,
    max_frames: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_done: Callable[[VideoJob, int, str | None], None] | None = None,
) -> BatchResult:
    """Extract many videos into a Kaggle-layout dataset folder with several processes.

    Args:
        videos: Video files (or image folders).
        out_dir: Dataset folder (created).
        workers: Processes (default: CPU count, at most the number of videos); 1 runs
            in this process.
        sign: Sign label for all videos (default: each video's parent folder name).
        participant_id: Participant id for train.csv.
        landmarker: ``None`` (legacy Holistic) or a ``.task`` model path.
        model_complexity: Pose model complexity (legacy backend).
        max_frames: Stop each video after this many frames.
        overwrite: Extract again even if the output exists (default: skip, i.e. resume).
        progress: Show a progress bar on stderr.
        on_done: Called after each video with (job, frames, error or None).

    Returns:
        A :class:`BatchResult`; ``failed.csv`` in ``out_dir`` lists the failures.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    jobs = plan_jobs(videos, out, sign=sign, participant_id=participant_id)
    todo: list[VideoJob] = []
    for j in jobs:
        if not overwrite and Path(j.out).is_file():
            result.skipped.append(j)
        else:
            todo.append(j)
    if result.skipped:
        log.info("resuming: %d of %d videos already extracted", len(result.skipped), len(jobs))
    n = max(1, min(workers or (os.cpu_count() or 1), len(todo) or 1))
    options = {
        "landmarker": landmarker,
        "model_complexity": model_complexity,
        "num_threads": 1 if n > 1 else None,
        "max_frames": max_frames,
    }
    bar = _Progress(len(todo), progress and bool(todo))

    def finish(job: VideoJob, frames: int, error: str | None) -> None:
        if error is None:
            result.done.append(job)
            result.frames += frames
        else:
            log.warning("extraction of %s failed: %s", job.video, error)
            result.failed.append((job.video, error))
        bar.update(job.video)
        if on_done is not None:
            on_done(job, frames, error)

    try:
        if n == 1:
            _worker_init()
            for j in todo:
                finish(*_run_job(j, options))
        else:
            ctx = mp.get_context("spawn")
            with cf.ProcessPoolExecutor(n, mp_context=ctx, initializer=_worker_init) as pool:
                futures = {pool.submit(_run_job, j, options): j for j in todo}
                for fut in cf.as_completed(futures):
                    try:
                        finish(*fut.result())
                    except Exception as exc:  # worker crashed (e.g. killed)
                        finish(futures[fut], 0, f"worker crashed: {exc}")
    finally:
        bar.close()
        ok = [j for j in jobs if Path(j.out).is_file()]
        _merge_train_csv(out, ok)
        failed_path = out / "failed.csv"
        if result.failed:
            _write_csv_atomic(failed_path, ("video", "error"), result.failed)
        elif failed_path.exists():
            failed_path.unlink()
    result.seconds = time.perf_counter() - t0
    return result
