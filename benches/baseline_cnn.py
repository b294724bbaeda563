"""The reference row: a plain 1D-CNN on Pose + Hands clips (issue 10), own code, no signrt.train.

Features: upper-body pose (0-24) and both hands, x/y centred on the clip's mean shoulder
midpoint and divided by its mean shoulder width, NaN -> 0, resampled to 64 frames, plus frame
differences. Model: three Conv1d blocks (192 channels, kernels 5, 5, 3, BatchNorm, ReLU,
dropout 0.2), global average pooling, dropout, linear. AdamW 2e-3, one-cycle, label smoothing
0.1, 60 epochs, batch 32, scale/shift/speed augmentation.

Run: ``python benches/baseline_cnn.py --data ../shared/data/include-dev`` (INCLUDE words,
Sridhar et al., ACM MM 2020). Splits and folds come from ``benches/train_splits.py``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

POINTS = np.r_[0:25, 33:75]  # upper-body pose, left hand, right hand (75-point layout)
L = 64


def features(clip: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(T, 75, 3) -> (T, 67, 2) normalised positions (NaN -> 0)."""
    xy = clip[:, :, :2].astype(np.float64)
    mid = np.nanmean((xy[:, 11] + xy[:, 12]) / 2, axis=0)
    width = np.nanmean(np.linalg.norm(xy[:, 11] - xy[:, 12], axis=-1))
    x = (xy[:, POINTS] - np.nan_to_num(mid, nan=0.5)) / (width if width > 1e-6 else 1.0)
    return np.nan_to_num(x, nan=0.0).astype(np.float32)  # type: ignore[no-any-return]


def resample(
    x: npt.NDArray[np.float32], rng: np.random.Generator | None
) -> npt.NDArray[np.float32]:
    """(T, P, 2) -> (2 * P * 2, L): positions at L times (speed-jittered) plus differences."""
    t = np.linspace(0, len(x) - 1, L)
    if rng is not None:  # speed: stretch or squeeze about the centre; scale and shift
        t = np.clip((t - t.mean()) * rng.uniform(0.8, 1.25) + t.mean(), 0, len(x) - 1)
        x = x * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1, size=2).astype(np.float32)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(x) - 1)
    w = (t - lo)[:, None, None].astype(np.float32)
    y = (x[lo] * (1 - w) + x[hi] * w).reshape(L, -1)
    d = np.diff(y, axis=0, append=y[-1:])
    return np.concatenate([y, d], axis=1).T.astype(np.float32)  # type: ignore[no-any-return]


def block(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2), nn.BatchNorm1d(cout),
                         nn.ReLU(), nn.Dropout(0.2))  # fmt: skip


def make_model(cin: int, k: int) -> nn.Module:
    return nn.Sequential(block(cin, 192, 5), block(192, 192, 5), block(192, 192, 3),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(192, k))  # fmt: skip


def fit_and_score(clips: list[npt.NDArray[np.float32]], labels: npt.NDArray[np.int64],
                  train_idx: npt.NDArray[np.int64], test_idx: npt.NDArray[np.int64], k: int,
                  *, epochs: int = 60, seed: int = 0,
                  ) -> tuple[float, float]:  # fmt: skip
    """Train on ``train_idx``, return (top-1 on ``test_idx``, training wall seconds)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    feats = [features(c) for c in clips]
    model = make_model(2 * 67 * 2, k)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    steps = epochs * int(np.ceil(len(train_idx) / 32))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    for _ in range(epochs):
        model.train()
        order = rng.permutation(train_idx)
        for a in range(0, len(order), 32):
            b = order[a : a + 32]
            x = torch.from_numpy(np.stack([resample(feats[i], rng) for i in b]))  # (B, C, L)
            loss = loss_fn(model(x), torch.from_numpy(labels[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    wall = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.stack([resample(feats[i], None) for i in test_idx]))
        pred = model(x).argmax(1).numpy()
    return float((pred == labels[test_idx]).mean()), wall


def main() -> None:
    """Score the baseline on the requested splits; write JSON + Markdown rows."""
    import argparse
    import json
    from pathlib import Path

    from signrt.train.data import open_dataset
    from signrt.train.splits import random_folds, random_split, session_folds, session_split

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/include-dev")
    ap.add_argument("--splits", default="random,session,cv-random,cv-sessions")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--out", default="benches/results/baseline_cnn.json")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as benches/train_recipe.py: one thread is faster on a shared CPU
    cs = open_dataset(args.data)
    clips = [np.asarray(np.load(p), np.float32) for p in cs.clips.paths]  # type: ignore[attr-defined]
    y, k = cs.labels, cs.num_classes
    plan = {"random": [random_split(y, 0.2, seed=0)], "session": [session_split(y, cs.groups)],
            "cv-random": random_folds(y, 5, seed=0), "cv-sessions": session_folds(y, cs.groups)}
    rows: dict[str, dict[str, Any]] = {}
    for name in args.splits.split(","):
        accs, walls = [], []
        for fold in plan[name]:
            acc, wall = fit_and_score(clips, y, fold.train, fold.test, k, epochs=args.epochs)
            accs.append(acc)
            walls.append(wall)
            print(f"{name} {fold.name}: top-1 {acc * 100:.1f}% ({len(fold.test)} clips) "
                  f"{wall:.0f}s",
                  flush=True)
        rows[name] = {"top1_mean": float(np.mean(accs)), "top1_std": float(np.std(accs)),
                      "folds": len(accs), "top1": accs, "train_s_mean": float(np.mean(walls))}
    doc = {"model": "baseline_cnn", "data": args.data, "epochs": args.epochs,
           "threads": torch.get_num_threads(), "results": rows,
           "attribution": "INCLUDE (Sridhar et al., ACM MM 2020), MediaPipe Pose + Hands"}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    for name, r in rows.items():
        print(f"| {name} | {r['top1_mean'] * 100:.1f} ± {r['top1_std'] * 100:.1f} "
              f"| {r['folds']} | {r['train_s_mean']:.0f} s |")


if __name__ == "__main__":
    main()
