"""``signrt extract VIDEO... -o DIR``: videos to a Kaggle-layout landmark dataset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]

_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``signrt extract``."""
    p = sub.add_parser(
        "extract",
        help="extract MediaPipe Holistic landmarks from videos into a Kaggle-layout dataset",
        description=(
            "Run MediaPipe Holistic on every frame of each video (several processes) and write "
            "DIR/train_landmark_files/<participant>/<sequence>.parquet plus DIR/train.csv, the "
            "layout of the Kaggle ASL Signs data. Finished videos are skipped on a second run; "
            "videos that fail are listed in DIR/failed.csv and the others go on. A folder "
            "argument is searched for videos; the sign label is each video's parent folder "
            "name unless --sign is given. Needs the camera extra: pip install 'signrt[camera]'."
        ),
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or folders of videos")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="output dataset folder")
    p.add_argument("-j", "--workers", type=int, default=None, help="processes (default: cores)")
    p.add_argument("--sign", default=None, help="sign label for all videos")
    p.add_argument("--participant", type=int, default=0, help="participant id (default 0)")
    p.add_argument(
        "--landmarker",
        default=None,
        metavar="onnx[:DEVICE]|legacy|PATH.task",
        help="onnx: bundled Holistic models on ONNX Runtime (DEVICE auto/cpu/cuda/tensorrt); "
        "legacy: MediaPipe Holistic; or a HolisticLandmarker .task model "
        "(default: legacy where MediaPipe is installed, else onnx)",
    )
    p.add_argument(
        "--model-complexity", type=int, default=1, choices=(0, 1, 2), help="pose model (legacy)"
    )
    p.add_argument("--max-frames", type=int, default=None, help="frames per video at most")
    p.add_argument("--overwrite", action="store_true", help="extract finished videos again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_extract)


def _expand(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                str(f)
                for f in path.rglob("*")
                if f.is_file() and f.suffix.lower() in _VIDEO_SUFFIXES
            )
            out.extend(found if found else [item])  # an image folder is one clip
        else:
            out.append(item)
    return out


def _cmd_extract(args: argparse.Namespace) -> int:
    from ..extract.batch import extract_videos

    videos = _expand(args.videos)
    res = extract_videos(
        videos,
        args.out,
        workers=args.workers,
        sign=args.sign,
        participant_id=args.participant,
        landmarker=args.landmarker,
        model_complexity=args.model_complexity,
        max_frames=args.max_frames,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    fps = res.frames / res.seconds if res.seconds > 0 else 0.0
    print(
        f"extracted {len(res.done)} video(s), {res.frames} frames in {res.seconds:.1f} s "
        f"({fps:.1f} frames/s); skipped {len(res.skipped)} already done; "
        f"failed {len(res.failed)} -> {args.out}/train.csv"
    )
    for video, error in res.failed:
        print(f"FAILED {video}: {error}", file=sys.stderr)
    if res.failed:
        print(f"failures listed in {Path(args.out) / 'failed.csv'}", file=sys.stderr)
        return 1
    return 0
