"""Training clips for an explicit background class: rest, transitions and idle motion.

A model that knows only its signs must give every window or segment one of them. An
explicit background class (label :data:`signrt.results.BACKGROUND_LABEL`,
``__background__``) gives it somewhere else to go: the recognizer marks such predictions
``unknown`` and a stream never emits them. On INCLUDE include-dev streams the class removed
the false events on rest with the hands in view that the stream's defaults raised
(benches/results/stream_rejection_bg.md).

The clips are cut from continuous streams built from the training clips themselves
(:mod:`.streams`, the rest kinds with the hands in view: ``low_in_view`` and ``idle``, 0.6
and 1.2 s of rest): windows of 12-64 frames of which at most ``max_sign_fraction`` belong
to a sign and at least half show a hand, so they hold rest, the hands moving into rest
after a sign and out of it into the next one, and the edges of the clips. Only training
clips are used: validation and test sessions stay unseen.

``signrt background-data --data TRAIN --out DIR`` writes a training folder: links to the
training clips (``DIR/<sign>/``) plus ``DIR/__background__/bg_NNNN.npy``; train on it with
``signrt train --data DIR --val-data VAL`` as on any clip folder. ``--other DIR`` also puts
the clips of other words (signs outside the vocabulary) into the background class: on
include-dev two such words raised the separation of five never-seen words from the known
signs (AUROC of the background probability) from 0.71 to 0.90.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .. import layouts
from ..errors import DataError, OptionError
from ..results import BACKGROUND_LABEL
from .streams import JoinedStream, StreamConfig, build_streams

__all__ = ["BackgroundConfig", "background_windows", "write_background_dataset"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_WRISTS = [layouts.LEFT_HAND.start, layouts.RIGHT_HAND.start]


@dataclass(frozen=True)
class BackgroundConfig:
    """How background clips are cut.

    Attributes:
        clips: Number of background clips.
        min_frames: Shortest window.
        max_frames: Longest window.
        max_sign_fraction: Largest share of a window's frames that may belong to a sign.
        min_hand_fraction: Smallest share of a window's frames that must show a hand.
        rests: Seconds of rest between signs in the source streams.
        seed: Seed of the streams and the cuts.
    """

    clips: int = 40
    min_frames: int = 12
    max_frames: int = 64
    max_sign_fraction: float = 0.3
    min_hand_fraction: float = 0.5
    rests: tuple[float, ...] = (0.6, 1.2)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clips < 1 or not 1 <= self.min_frames <= self.max_frames:
            raise OptionError("background: clips must be >= 1 and 1 <= min_frames <= max_frames")
        if not 0.0 <= self.max_sign_fraction < 1.0 or not 0.0 <= self.min_hand_fraction <= 1.0:
            raise OptionError("background: max_sign_fraction must be in [0, 1), "
                              "min_hand_fraction in [0, 1]")  # fmt: skip


def background_windows(
    streams: Sequence[JoinedStream], config: BackgroundConfig | None = None
) -> list[FloatArray]:
    """Random mostly non-signing windows with a hand in view, cut from joined streams.

    Args:
        streams: Streams with their ``signing`` masks.
        config: The cut (default :class:`BackgroundConfig`).

    Returns:
        Up to ``config.clips`` windows (T, 543, 3) float32 (fewer when the streams hold too
        little rest after 200 tries per clip).
    """
    cfg = config or BackgroundConfig()
    rng = np.random.default_rng(cfg.seed)
    out: list[FloatArray] = []
    usable = [s for s in streams if len(s.frames) > cfg.min_frames]
    tries = 0
    while usable and len(out) < cfg.clips and tries < 200 * cfg.clips:
        tries += 1
        st = usable[int(rng.integers(len(usable)))]
        length = int(rng.integers(cfg.min_frames, min(cfg.max_frames, len(st.frames) - 1) + 1))
        a = int(rng.integers(0, len(st.frames) - length + 1))
        sl = slice(a, a + length)
        if float(st.signing[sl].mean()) > cfg.max_sign_fraction:
            continue
        hands = np.isfinite(st.frames[sl][:, _WRISTS, :2]).all(axis=-1).any(axis=-1)  # (T,)
        if float(hands.mean()) < cfg.min_hand_fraction:
            continue
        out.append(np.array(st.frames[sl], dtype=np.float32))
    return out


def write_background_dataset(
    data: str | os.PathLike[str], out: str | os.PathLike[str],
    config: BackgroundConfig | None = None, *, other: str | os.PathLike[str] | None = None,
) -> tuple[int, int]:  # fmt: skip
    """Write a training folder: the clips of ``data`` (links) plus a background class.

    Args:
        data: The training clip folder (or Kaggle layout).
        out: The new folder (created; existing links are kept).
        config: The cut.
        other: A clip folder of signs outside the vocabulary, linked into the background
            class too (never the words used to measure unknown-sign rejection).

    Returns:
        (linked clips, background clips written or linked).

    Raises:
        DataError: If ``data`` is not a dataset, already has a background class, or yields
            no background window.
    """
    from .stream_eval import load_clip_set

    cfg = config or BackgroundConfig()
    clips = load_clip_set(os.fspath(data))
    if BACKGROUND_LABEL in clips.labels:
        raise DataError(f"{data}: already has a {BACKGROUND_LABEL} class")
    dest = Path(out)
    for path, sign in zip(clips.paths, clips.labels, strict=True):
        link = dest / sign / Path(path).name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink(Path(path).resolve(), link)
    streams: list[JoinedStream] = []
    for i, kind in enumerate(("low_in_view", "idle")):
        for j, rest in enumerate(cfg.rests):
            sc = StreamConfig(rest=rest, rest_kind=kind, seed=cfg.seed + 10 * i + j)  # type: ignore[arg-type]
            streams += build_streams(clips.clips, clips.labels, sc, groups=clips.groups)
    wins = background_windows(streams, cfg)
    if not wins:
        raise DataError(f"{data}: no background window found (clips without a visible hand?)")
    bg = dest / BACKGROUND_LABEL
    bg.mkdir(parents=True, exist_ok=True)
    for k, w in enumerate(wins):
        np.save(bg / f"bg_{k:04d}.npy", w)
    n_other = 0
    if other is not None:
        extra = load_clip_set(os.fspath(other))
        clash = sorted(set(extra.labels) & set(clips.labels))
        if clash:
            raise DataError(f"{other}: holds signs of the vocabulary ({', '.join(clash)}); "
                            "--other takes clips of other words only")  # fmt: skip
        for path, sign in zip(extra.paths, extra.labels, strict=True):
            link = bg / f"other_{sign}_{Path(path).name}"
            if not link.exists():
                os.symlink(Path(path).resolve(), link)
            n_other += 1
    log.info("background-data: linked %d clips, wrote %d background clips to %s",
             len(clips.paths), len(wins), bg)  # fmt: skip
    return len(clips.paths), len(wins) + n_other
