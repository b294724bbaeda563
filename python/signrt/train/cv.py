"""Cross-validation: ``signrt train --cv sessions`` (leave-one-session-out) or ``--cv random``.

Every fold trains a fresh model exactly as ``signrt train`` would (data-aware defaults
included, chosen from that fold's training clips) into ``RUN_DIR/cv/<fold>/`` and is scored
on its held-out clips with the *last* epoch's weights: the held-out clips are never used to
pick a checkpoint, so the mean is an honest estimate. ``RUN_DIR/cv.json`` holds every
fold's top-1 and the mean ± standard deviation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .config import TrainConfig
from .data import ClipSet, check_clips, open_dataset
from .splits import Fold, random_folds, session_folds

__all__ = ["CV_KINDS", "cross_validate", "fold_sets"]

log = logging.getLogger(__name__)

#: Accepted values of ``--cv``.
CV_KINDS = ("sessions", "random")


def fold_sets(data: ClipSet, fold: Fold) -> tuple[ClipSet, ClipSet]:
    """The fold's training and test clips, over the signs its training clips have.

    Leaving a session out can leave a sign recorded only in that session without a
    training clip; the fold's model then knows only the other signs (the fold's test clips
    of that sign are already excluded by :func:`~signrt.train.splits.session_folds`).
    """
    tr, te = data.subset(fold.train), data.subset(fold.test)
    present = [n for n, c in zip(tr.label_names, tr.class_counts(), strict=True) if c > 0]
    if len(present) < len(tr.label_names):
        missing = sorted(set(tr.label_names) - set(present))
        log.info("fold %s: no training clip of %s; that fold classifies the other %d signs",
                 fold.name, ", ".join(missing), len(present))  # fmt: skip
        tr = tr.with_label_names(present)
        te = te.with_label_names(present, drop_unknown=True)
    return tr, te


def cross_validate(cfg: TrainConfig, kind: str, *, k: int = 5) -> dict[str, Any]:
    """Run the folds of ``kind`` over ``cfg.data`` and return (and write) the summary.

    Args:
        cfg: The run configuration; ``cfg.out`` receives ``cv/`` and ``cv.json``.
        kind: ``sessions`` (leave-one-session-out over the manifest's sessions or signers)
            or ``random`` (stratified ``k``-fold).
        k: Folds of ``random``.

    Returns:
        ``{"kind", "folds": [{"fold", "top1", "test_clips", "train_s"}], "top1_mean",
        "top1_std"}``.

    Raises:
        DataError: For an unknown kind, or data that cannot be split that way.
    """
    from .trainer import train

    if kind not in CV_KINDS:
        raise DataError(f"--cv must be one of {', '.join(CV_KINDS)}, got {kind!r}")
    if cfg.val_data:
        raise DataError("--cv splits --data itself; do not give --val-data with it")
    full = check_clips(open_dataset(cfg.data), strict=cfg.strict)
    folds = (session_folds(full.labels, full.groups) if kind == "sessions"
             else random_folds(full.labels, k, seed=cfg.seed))  # fmt: skip
    out = Path(cfg.out)
    rows = []
    for fold in folds:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", fold.name).strip("-")
        fcfg = dataclasses.replace(cfg, out=str(out / "cv" / slug), patience=0)
        t0 = time.perf_counter()
        tr, te = fold_sets(full, fold)
        result = train(fcfg, train_set=tr, val_set=te)
        top1 = float(result.history[-1]["val_top1"])
        row: dict[str, Any] = {"fold": fold.name, "top1": top1,
               "test_clips": len(fold.test), "train_s": time.perf_counter() - t0}  # fmt: skip
        log.info("cv %s: top-1 %.1f%% on %d clips", fold.name, top1 * 100,
                 row["test_clips"])  # fmt: skip
        rows.append(row)
    accs = np.asarray([r["top1"] for r in rows])
    doc = {"kind": kind, "data": cfg.data, "folds": rows, "top1_mean": float(accs.mean()),
           "top1_std": float(accs.std())}  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc
