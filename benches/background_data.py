"""A training folder with an explicit background class, for the rejection comparison.

The in-vocabulary training clips are linked into ``OUT/<sign>/`` and a class
``OUT/__background__/`` is added: windows cut from continuous streams built from the same
training clips (:mod:`signrt.evaluate.streams`, rest kinds with the hands in view:
``low_in_view`` and ``idle``), each window mostly non-signing: rest, the transition from a
sign's end into rest and out of it into the next sign, and the edges of the clips (at
most ``--max-sign-fraction`` of a window's frames belong to a sign, and at least half of
them show a hand). Window lengths are drawn between 12 and 64 frames. Only the training
split is used, so the validation and test sessions stay unseen.

Usage:
    python benches/background_data.py --data DIR/train --out DIR/train_bg [--clips 40]
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from signrt.evaluate.stream_eval import load_clip_set
from signrt.evaluate.streams import StreamConfig, build_streams

log = logging.getLogger("background_data")
BACKGROUND = "__background__"
LH0, RH0 = 468, 522


def background_windows(
    streams: Sequence[object], n: int, rng: np.random.Generator, *, max_sign_fraction: float,
    lengths: tuple[int, int] = (12, 64),
) -> list[np.ndarray]:  # fmt: skip
    """Random mostly non-signing windows with a hand in view."""
    out: list[np.ndarray] = []
    tries = 0
    while len(out) < n and tries < 200 * n:
        tries += 1
        st = streams[int(rng.integers(len(streams)))]
        frames, signing = st.frames, st.signing  # type: ignore[attr-defined]
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        if len(frames) <= length:
            continue
        a = int(rng.integers(0, len(frames) - length))
        sl = slice(a, a + length)
        if signing[sl].mean() > max_sign_fraction:
            continue
        hands = np.isfinite(frames[sl][:, [LH0, RH0], :2]).all(axis=-1).any(axis=-1)
        if hands.mean() < 0.5:
            continue
        out.append(np.array(frames[sl], dtype=np.float32))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="training clip folder")
    ap.add_argument("--out", required=True, help="new folder (links + background clips)")
    ap.add_argument("--clips", type=int, default=40, help="background clips (default 40)")
    ap.add_argument("--max-sign-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    data = load_clip_set(args.data)
    out = Path(args.out)
    for path, sign in zip(data.paths, data.labels, strict=True):
        dest = out / sign / Path(path).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            os.symlink(Path(path).resolve(), dest)
    streams = []
    for i, kind in enumerate(("low_in_view", "idle")):
        for rest in (0.6, 1.2):
            cfg = StreamConfig(rest=rest, rest_kind=kind, seed=args.seed + 10 * i)  # type: ignore[arg-type]
            streams += build_streams(data.clips, data.labels, cfg, groups=data.groups)
    rng = np.random.default_rng(args.seed)
    wins = background_windows(streams, args.clips, rng, max_sign_fraction=args.max_sign_fraction)
    bg = out / BACKGROUND
    bg.mkdir(parents=True, exist_ok=True)
    for j, w in enumerate(wins):
        np.save(bg / f"bg_{j:04d}.npy", w)
    log.info("linked %d clips, wrote %d background clips to %s", len(data.paths), len(wins), bg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
