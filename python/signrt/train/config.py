"""Trainer configuration: a dataclass loadable from TOML (``tomllib``) and command-line flags.

A config file holds the trainer keys at the top level and two tables, ``[model]`` (options
of the architecture's config dataclass) and ``[augment]`` (:class:`AugmentConfig`)::

    data = "synthetic:classes=20,signers=10,clips_per_class=6,seed=0"
    arch = "cnn_transformer"
    spec = "islr118"
    epochs = 40
    batch_size = 64
    lr = 2e-3

    [model]
    dim = 96

    [augment]
    mirror_p = 0.5

Flags given on the command line override the file.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..spec import FeatureSpec
from .augment import AugmentConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["SPLITS", "ConfigError", "TrainConfig"]

#: How a validation set is split off when ``val_data`` is not given.
SPLITS = ("group", "session", "random")


@dataclass
class TrainConfig:
    """Everything a training run needs (see :func:`signrt.train.trainer.train`).

    Attributes:
        Options documented as *auto* default to ``None``: the trainer chooses them from the
        training clips (:mod:`signrt.train.auto`) and records why.

        data: Training data: a dataset folder or ``synthetic:...`` (see ``open_dataset``).
        val_data: Validation data; default: a split of ``data`` (see ``split``).
        out: Run folder (``best.pt``, ``last.pt``, ``metrics.jsonl``, ``curves.png``).
        arch: Architecture name (``signrt.train.models.ARCHITECTURES``); auto.
        spec: FeatureSpec: a preset name, a JSON file or JSON text; auto.
        max_len: Override of the spec's max_len; auto.
        fit: Override of the spec's fit (``truncate`` or ``resample``); auto.
        epochs: Maximum number of epochs; auto.
        batch_size: Clips per optimiser step (per process under DDP); auto.
        lr: Peak learning rate (AdamW); auto.
        weight_decay: AdamW weight decay (not applied to biases and norms); auto.
        warmup_epochs: Linear warm-up length, in epochs (fractions allowed).
        min_lr_ratio: Final learning rate of the cosine schedule, relative to ``lr``.
        label_smoothing: Cross-entropy label smoothing.
        grad_clip: Maximum gradient norm (0 disables clipping).
        amp: Mixed precision (float16 autocast + grad scaling); used on CUDA only.
        patience: Early stopping after this many epochs without a better validation top-1
            (0 disables); auto.
        seed: Seed of everything (weights, data order, augmentation).
        val_fraction: Share of the participants held out when ``val_data`` is not given.
        num_workers: DataLoader workers (-1: automatic).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        cache: Use the preprocessed feature cache (validation; training when augmentation
            is off).
        cache_dir: Cache folder (default ``<out>/cache``).
        resume: Continue from ``<out>/last.pt``.
        progress: Progress bars (None: only on a terminal).
        plots: Write ``curves.png`` after every epoch.
        limit: Use only the first N training clips.
        class_weights: Inverse-frequency class weights in the loss; auto.
        ema: Decay of an exponential moving average of the weights, updated after every
            optimiser step (0 disables); validation, ``best.pt``, ``last.pt`` and the
            exported model use the averaged weights; auto.
        mixup: Mixup of training batches: Beta(mixup, mixup) weights, features of two clips
            blended, the loss blended likewise (0 disables); auto.
        split: Validation split when ``val_data`` is not given: ``group`` (whole groups,
            e.g. participants, ``val_fraction`` of the clips), ``session`` (every sign's
            last recording session, :func:`signrt.train.splits.session_split`) or
            ``random`` (stratified per sign).
        strict: Stop before training when a clip cannot be read (default: skip it, logged).
        model: Options of the architecture's config dataclass.
        augment: Augmentation probabilities and ranges; auto.
    """

    data: str = ""
    val_data: str | None = None
    out: str = "runs/train"
    arch: str | None = None
    spec: str | None = None
    max_len: int | None = None
    fit: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    amp: bool = True
    patience: int | None = None
    seed: int = 0
    val_fraction: float = 0.2
    num_workers: int = -1
    device: str = "auto"
    cache: bool = True
    cache_dir: str | None = None
    resume: bool = False
    progress: bool | None = None
    plots: bool = True
    limit: int | None = None
    class_weights: bool | None = None
    ema: float | None = None
    mixup: float | None = None
    split: str = "group"
    strict: bool = False
    model: dict[str, Any] = field(default_factory=dict)
    augment: AugmentConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.augment, Mapping):
            self.augment = AugmentConfig.from_mapping(self.augment)
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.fit not in (None, "truncate", "resample"):
            raise ConfigError(f"fit must be truncate or resample, got {self.fit!r}")
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema must be in [0, 1), got {self.ema}")
        if self.mixup is not None and self.mixup < 0.0:
            raise ConfigError(f"mixup must be >= 0, got {self.mixup}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")

    # ----------------------------------------------------------------------- building
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], /, **overrides: Any) -> TrainConfig:
        """Build from a mapping (parsed TOML); ``overrides`` that are not None win.

        Raises:
            ConfigError: On an unknown key or an invalid value.
        """
        merged = dict(values)
        for k, v in overrides.items():
            if v is None:
                continue
            if k in ("model", "augment") and isinstance(v, Mapping):
                merged[k] = {**dict(merged.get(k) or {}), **v}
            else:
                merged[k] = v
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(
                f"unknown training option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        try:
            return cls(**merged)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid training config: {exc}") from exc

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], /, **overrides: Any) -> TrainConfig:
        """Load a TOML file; ``overrides`` (e.g. command-line flags) that are not None win.

        Raises:
            ConfigError: If the file cannot be read or parsed, or holds unknown keys.
        """
        p = Path(path)
        try:
            with open(p, "rb") as fh:
                data = tomllib.load(fh)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read training config {p}: {exc}") from exc
        return cls.from_mapping(data, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain types (stored in checkpoints)."""
        d = dataclasses.asdict(self)
        d["augment"] = self.augment.to_dict() if self.augment is not None else None
        return d

    def resolve_spec(self) -> FeatureSpec:
        """The FeatureSpec of this run (``spec`` plus the ``max_len`` and ``fit`` overrides).

        Raises:
            ConfigError: If ``spec`` is still open (``None``: chosen from the data by
                :func:`signrt.train.auto.auto_config`).
        """
        if self.spec is None:
            raise ConfigError("spec is not set yet: it is chosen from the data (auto_config)")
        spec = FeatureSpec.resolve(self.spec)
        if self.max_len:
            spec = spec.replace(max_len=self.max_len)
        return spec.replace(fit=self.fit) if self.fit else spec
