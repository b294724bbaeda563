"""Commands of the training subpackage: ``signrt train`` and ``signrt eval``.

``signrt train`` runs unchanged under ``torchrun --nproc_per_node N`` (one process per
device; only rank 0 prints and writes). Torch is imported only when a command runs, so
``signrt --help`` stays fast and works without the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``train`` and ``eval``."""
    p = sub.add_parser(
        "train",
        help="train a sign classifier (checkpoints, metrics log, curves)",
        description=(
            "Train a model on a Kaggle-layout folder, a clip folder, WLASL or the synthetic "
            "signer (--data synthetic:classes=20,signers=8,clips_per_class=5,seed=0). Writes "
            "RUN_DIR/best.pt, last.pt, metrics.jsonl and curves.png. Flags override --config. "
            "Runs under torchrun --nproc_per_node N for data-parallel training. Options left "
            "out are chosen from the data (spec from the body parts present, max_len and fit "
            "from the clip lengths, architecture, epochs and batch from the dataset size, "
            "class weights from the balance); the choices are logged and written to "
            "RUN_DIR/choices.json."
        ),
    )
    p.add_argument("--config", metavar="FILE.toml", help="training config (TOML)")
    p.add_argument("--data", help="training data: folder or synthetic:...")
    p.add_argument("--val-data", help="validation data (default: participant-disjoint split)")
    p.add_argument("--arch", help="architecture (cnn_transformer, st_transformer, ...)")
    p.add_argument("--spec", help="FeatureSpec: preset name or JSON file")
    p.add_argument("--max-len", type=int, help="override the spec's max_len")
    p.add_argument("--fit", choices=["truncate", "resample"], help="override the spec's fit")
    p.add_argument("--split", choices=["group", "session", "random"],
                   help="validation split without --val-data: whole groups (default), every "
                        "sign's last recording session, or stratified random")  # fmt: skip
    p.add_argument("--cv", choices=["sessions", "random"],
                   help="cross-validate instead: leave-one-session-out or 5-fold random; "
                        "prints mean +- std over the folds and writes RUN_DIR/cv.json")  # fmt: skip
    p.add_argument("--strict", action="store_true", default=None,
                   help="stop before training when a clip cannot be read (default: skip it)")
    p.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None,
                   help="inverse-frequency class weights in the loss (default: from the data)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--ema", type=float,
                   help="decay of the weights' moving average (0: off; default: from the data)")
    p.add_argument("--mixup", type=float,
                   help="mixup Beta(a, a) parameter (0: off; default: from the data)")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder")
    p.add_argument("--resume", action="store_true", default=None, help="continue from last.pt")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, dest="num_workers", help="DataLoader workers")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--no-augment", action="store_true", help="disable augmentation")
    p.add_argument("--no-cache", action="store_true", help="do not use the feature cache")
    p.add_argument("--limit", type=int, help="use only the first N training clips")
    p.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="architecture option (repeatable), e.g. --model-opt dim=96")  # fmt: skip
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars (default: on a terminal)")  # fmt: skip
    p.set_defaults(func=_cmd_train)

    e = sub.add_parser(
        "eval",
        help="evaluate a checkpoint or ONNX model: top-1/top-5, per-class P/R/F1, confusion",
        description=(
            "Evaluate RUN_DIR/best.pt or MODEL.onnx on a labelled dataset. Prints a summary "
            "(or the JSON report with --json) and can write the confusion matrix as a PNG."
        ),
    )
    e.add_argument("model", metavar="MODEL", help="checkpoint (.pt) or model file (.onnx)")
    e.add_argument("--data", required=True, help="dataset folder or synthetic:...")
    e.add_argument("--split", help="WLASL split (train, val, test)")
    e.add_argument("--json", action="store_true", help="print the JSON report")
    e.add_argument("--report", metavar="FILE.json", help="also write the JSON report here")
    e.add_argument("--confusion", metavar="FILE.png", help="write the confusion matrix PNG")
    e.add_argument("--device", default="cpu", help="cpu, cuda, tensorrt (ONNX) or auto")
    e.add_argument("--batch-size", type=int, default=64)
    e.set_defaults(func=_cmd_eval)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _cmd_train(args: argparse.Namespace) -> int:
    from .augment import AugmentConfig
    from .config import ConfigError, TrainConfig
    from .trainer import train

    model_opts: dict[str, Any] = {}
    for item in args.model_opt:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--model-opt expects KEY=VALUE, got {item!r}")
        model_opts[key.strip()] = _parse_value(value)
    overrides: dict[str, Any] = {
        k: getattr(args, k)
        for k in ("data", "val_data", "arch", "spec", "max_len", "epochs", "batch_size", "lr",
                  "weight_decay", "label_smoothing", "patience", "out", "resume", "seed",
                  "num_workers", "device", "limit", "progress", "fit", "split",
                  "strict", "class_weights", "ema", "mixup")
    }  # fmt: skip
    if model_opts:
        overrides["model"] = model_opts
    if args.no_augment:
        overrides["augment"] = AugmentConfig.off()
    if args.no_cache:
        overrides["cache"] = False
    if args.config:
        cfg = TrainConfig.from_toml(args.config, **overrides)
    else:
        cfg = TrainConfig.from_mapping({}, **overrides)
    if not cfg.data:
        raise ConfigError("no training data: give --data or set data in --config")
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 and logging.getLogger().level > logging.INFO:
        logging.getLogger("signrt.train").setLevel(logging.INFO)  # epoch lines
    elif rank > 0:
        logging.getLogger("signrt").setLevel(logging.WARNING)
    if args.cv:
        from .cv import cross_validate

        doc = cross_validate(cfg, args.cv)
        for row in doc["folds"]:
            print(f"{row['fold']}: top-1 {row['top1'] * 100:.1f}% ({row['test_clips']} clips)")
        print(f"cv {args.cv}: top-1 {doc['top1_mean'] * 100:.1f} +- {doc['top1_std'] * 100:.1f}% "
              f"over {len(doc['folds'])} folds -> {cfg.out}/cv.json")
        return 0
    result = train(cfg)
    if rank == 0:
        best = result.best
        print(
            f"best epoch {int(best.get('epoch', 0))}: "
            f"val top-1 {best.get('val_top1', 0) * 100:.2f}% "
            f"top-5 {best.get('val_top5', 0) * 100:.2f}% -> {result.best_checkpoint}"
            + (" (early stop)" if result.stopped_early else "")
        )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .data import open_dataset
    from .evaluate import evaluate

    data = open_dataset(args.data, split=args.split)
    report = evaluate(args.model, data, device=args.device, batch_size=args.batch_size)
    if args.report:
        report.save_json(args.report)
    if args.confusion:
        report.save_confusion_png(args.confusion)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        print(report.summary())
    return 0
