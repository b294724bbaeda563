"""Recipe experiments on real clips: variant -> random and session top-1, train time.

Every variant is a set of ``TrainConfig`` overrides applied on top of the data-aware
defaults (:func:`signrt.train.auto.auto_config`); each fold trains with ``signrt.train``
exactly as ``signrt train`` does and is scored on its held-out clips with the *last*
epoch's weights (no model selection on the test clips).

The variant ``baseline`` trains the plain reference CNN (``benches/baseline_cnn.py``) on
the same folds in the same run, so the two are compared under the same load. ``--folds``
restricts ``cv-sessions`` to a fixed subset of held-out sessions for cheap screening (the
same subset for every variant).

Run: ``python benches/train_recipe.py --data ../shared/data/include-dev --variants
default,baseline --splits cv-sessions`` (INCLUDE words, Sridhar et al., ACM MM 2020);
screening: ``--variants mixup,ema --splits cv-sessions --folds 1,3,6,8``. Results are
appended to ``benches/results/train_recipe.jsonl`` and tabulated in
``benches/results/train_recipe.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

#: name -> TrainConfig overrides (on top of the data-aware defaults).
_LIGHT = {"resample_p": 0.8, "resample_range": [0.8, 1.25], "dropout_p": 0.0, "mirror_p": 0.0,
          "affine_p": 0.75, "scale": [1.0, 1.0], "shear": 0.05, "rotate_deg": 10.0,
          "shift": 0.0, "temporal_mask_p": 0.0, "spatial_mask_p": 0.0}  # fmt: skip
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "light-aug": {"augment": _LIGHT},  # = what the defaults choose below 5000 clips
    "light-aug+mirror": {"augment": {**_LIGHT, "mirror_p": 0.5}},
    "light-aug+no-hand-relative": {"augment": _LIGHT, "model": {"hand_relative": False}},
    "no-augment": {"augment": {"resample_p": 0.0, "dropout_p": 0.0, "mirror_p": 0.0,
                   "affine_p": 0.0, "temporal_mask_p": 0.0, "spatial_mask_p": 0.0}},
    "no-hand-relative": {"model": {"hand_relative": False}},
    "hand-size-norm": {"model": {"hand_size_norm": True, "hand_scale": 1.0}},
    "hand-shape": {"model": {"hand_shape": True}},
    "hand-size-norm+shape": {"model": {"hand_size_norm": True, "hand_scale": 1.0,
                                       "hand_shape": True}},
    "time-norm": {"model": {"time_norm": True}},
    "ema": {"ema": 0.99},
    "mixup": {"mixup": 0.2},
    "dropout-0.3": {"model": {"dropout": 0.3, "head_dropout": 0.3}},
    "wide-256": {"model": {"dim": 256}},
    "long-1.5x": {"epochs": 100},
    # seed ensemble: 2 narrower cnn1d members (seeds s, s+1), logits averaged on the test
    # clips (2 x 0.45M parameters)
    "ensemble2-d128": {"ensemble": 2, "model": {"dim": 128}},
    # the plain 1D-CNN reference (benches/baseline_cnn.py), trained on the same folds
    "baseline": {"baseline": True},
}

RESULTS = Path(__file__).parent / "results"


def _isa() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    return "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else platform.machine()


def run_baseline_fold(data: Any, raw: list[Any], fold: Any, seed: int = 0) -> dict[str, Any]:
    """Train and score the plain reference CNN (``benches/baseline_cnn.py``) on one fold.

    ``raw`` holds the clips as stored ((T, 75, 3) Pose + Hands), which the baseline reads.
    """
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from baseline_cnn import fit_and_score

    acc, wall = fit_and_score(raw, data.labels, fold.train, fold.test, data.num_classes,
                              seed=seed)  # fmt: skip
    return {"fold": fold.name, "top1": acc, "test_clips": len(fold.test), "train_s": wall}


def _test_logits(ckpt_path: Path, test: Any) -> tuple[Any, Any, int]:
    """Logits (N, K) of a checkpoint on ``test``, the labels in its order, its parameters."""
    import torch

    from signrt.train.checkpoint import load_checkpoint
    from signrt.train.data import batch_preprocess

    ckpt = load_checkpoint(ckpt_path)
    model = ckpt.build_model().eval()
    data = test.with_label_names(ckpt.labels)
    out = []
    with torch.no_grad():
        for a in range(0, len(data), 64):
            b = min(len(data), a + 64)
            feats, mask = batch_preprocess([data.clips[i] for i in range(a, b)], ckpt.spec)
            z = model(torch.from_numpy(feats), torch.from_numpy(mask))  # (B, K)
            out.append(z.double().numpy())
    params = sum(p.numel() for p in model.parameters())
    return np.concatenate(out), data.labels, int(params)


def run_ensemble_fold(data: Any, fold: Any, overrides: dict[str, Any], seed: int = 0,
                      ) -> dict[str, Any]:  # fmt: skip
    """A seed ensemble on one fold: ``overrides["ensemble"]`` members trained with seeds
    ``seed``, ``seed + 1``, ... (the same defaults + overrides), scored by the mean of their
    last-epoch logits on ``fold.test``."""
    from signrt.train.config import TrainConfig
    from signrt.train.cv import fold_sets
    from signrt.train.trainer import train

    k = int(overrides["ensemble"])
    rest = {key: v for key, v in overrides.items() if key != "ensemble"}
    tr, te = fold_sets(data, fold)
    logits, members, walls, params, labels = [], [], [], 0, None
    for m in range(k):
        with tempfile.TemporaryDirectory(prefix="signrt-recipe-") as tmp:
            cfg = TrainConfig.from_mapping({}, data=data.source, out=tmp, num_workers=0,
                                           plots=False, patience=0, seed=seed + m,
                                           **rest)  # fmt: skip
            t0 = time.perf_counter()
            result = train(cfg, train_set=tr, val_set=te)
            walls.append(time.perf_counter() - t0)
            z, labels, n = _test_logits(result.run_dir / "last.pt", te)
        logits.append(z)
        params += n
        members.append({"seed": seed + m, "val_top1": result.history[-1]["val_top1"],
                        "top1": float(np.mean(z.argmax(1) == labels))})  # fmt: skip
    mean = np.mean(logits, axis=0)  # (N, K)
    top1 = float(np.mean(mean.argmax(1) == labels))
    return {"fold": fold.name, "top1": top1, "test_clips": len(te), "train_s": float(sum(walls)),
            "member_train_s": walls, "members": members, "params": params}  # fmt: skip


def run_fold(data: Any, fold: Any, overrides: dict[str, Any], seed: int = 0,
             raw: list[Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train on ``fold.train`` with the defaults + ``overrides``; score ``fold.test``."""
    if overrides.get("baseline"):
        assert raw is not None, "the baseline reads the stored (T, 75, 3) clips"
        return run_baseline_fold(data, raw, fold, seed)
    if overrides.get("ensemble"):
        return run_ensemble_fold(data, fold, overrides, seed)
    from signrt.train.config import TrainConfig
    from signrt.train.cv import fold_sets
    from signrt.train.trainer import train

    tr, te = fold_sets(data, fold)
    with tempfile.TemporaryDirectory(prefix="signrt-recipe-") as tmp:
        cfg = TrainConfig.from_mapping({}, data=data.source, out=tmp, num_workers=0,
                                       plots=False, patience=0, seed=seed, **overrides)  # fmt: skip
        t0 = time.perf_counter()
        result = train(cfg, train_set=tr, val_set=te)
        wall = time.perf_counter() - t0
    last = result.history[-1]
    return {"fold": fold.name, "top1": last["val_top1"], "test_clips": len(te),
            "train_s": wall, "clips_per_s": float(np.mean([h["clips_per_s"] for h in
                                                            result.history]))}  # fmt: skip


def main() -> None:
    """Run the requested variants on the requested splits."""
    from signrt.train.data import ClipSet, open_dataset
    from signrt.train.splits import random_folds, random_split, session_folds, session_split

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/include-dev")
    ap.add_argument("--variants", default="default")
    ap.add_argument("--splits", default="session,random")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="an extra override for every variant")  # fmt: skip
    ap.add_argument("--name", help="name of an ad-hoc variant made of --set overrides")
    ap.add_argument("--folds", help="cv-sessions only: the held-out sessions to run, e.g. "
                    "1,3,6,8 (a screening subset; the same for every variant)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    torch.set_num_threads(args.threads)  # the machine is shared: 1 is faster under load
    lazy = open_dataset(args.data)
    data = ClipSet([lazy.clips[i] for i in range(len(lazy))], lazy.labels, lazy.label_names,
                   lazy.groups, source=lazy.source)  # in memory  # fmt: skip
    paths = getattr(lazy.clips, "paths", None)
    raw = [np.asarray(np.load(p), np.float32) for p in paths] if paths is not None else None
    y = data.labels
    plan = {"random": lambda: [random_split(y, 0.2, seed=0)],
            "session": lambda: [session_split(y, data.groups)],
            "cv-random": lambda: random_folds(y, 5, seed=0),
            "cv-sessions": lambda: session_folds(y, data.groups)}  # fmt: skip
    extra = {}
    for item in args.set:
        k, _, v = item.partition("=")
        extra[k] = json.loads(v)
    variants = {args.name: extra} if args.name else {
        n: {**VARIANTS[n], **extra} for n in args.variants.split(",")}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    for vname, overrides in variants.items():
        for split in args.splits.split(","):
            folds = plan[split]()
            if args.folds and split == "cv-sessions":
                keep = {f"session {s}" for s in args.folds.split(",")}
                folds = [f for f in folds if f.name in keep]
            rows = []
            for f in folds:
                rows.append(run_fold(data, f, overrides, raw=raw))
                print(f"  {vname} {f.name}: {rows[-1]['top1'] * 100:.1f} "
                      f"({rows[-1]['train_s']:.0f} s) {rows[-1].get('members', '')}",
                      flush=True)  # fmt: skip
            accs = [r["top1"] for r in rows]
            doc = {"variant": vname, "overrides": overrides, "split": split,
                   "top1_mean": float(np.mean(accs)), "top1_std": float(np.std(accs)),
                   "folds": rows, "train_s_mean": float(np.mean([r["train_s"] for r in rows])),
                   "isa": _isa(), "threads": torch.get_num_threads(),
                   "fold_subset": args.folds if split == "cv-sessions" else None,
                   "data": "INCLUDE (Sridhar et al., ACM MM 2020) include-dev"}  # fmt: skip
            with open(RESULTS / "train_recipe.jsonl", "a") as fh:
                fh.write(json.dumps(doc) + "\n")
            print(f"{vname} {split}: {doc['top1_mean'] * 100:.1f} ± {doc['top1_std'] * 100:.1f} "
                  f"({len(rows)} folds, {doc['train_s_mean']:.0f} s/fold)", flush=True)


if __name__ == "__main__":
    main()


def render(path: Path = RESULTS / "train_recipe.jsonl") -> str:
    """Markdown table of every recorded experiment (one row per variant and split)."""
    lines = ["| variant | split | top-1 (mean ± std) | folds | train s / fold | ISA |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for line in path.read_text().splitlines():
        d = json.loads(line)
        lines.append(f"| {d['variant']} | {d['split']} | {d['top1_mean'] * 100:.1f} ± "
                     f"{d['top1_std'] * 100:.1f} % | {len(d['folds'])} | "
                     f"{d['train_s_mean']:.0f} | {d['isa']} |")  # fmt: skip
    return "\n".join(lines) + "\n"
