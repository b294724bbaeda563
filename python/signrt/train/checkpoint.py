"""Training checkpoints: weights plus everything needed to rebuild, export and serve a model.

A checkpoint is a ``torch.save`` dict of plain types and tensors only, so it loads with
``torch.load(path, weights_only=True)``::

    {
      "format": "signrt-checkpoint-v1",
      "arch": "cnn_transformer",
      "model_config": {...},          # the architecture dataclass as a dict
      "spec": "<FeatureSpec JSON>",
      "labels": ["hello", ...],
      "state_dict": {...},            # model weights (unwrapped from DDP)
      "metrics": {...},               # e.g. {"val_top1": 0.93, "epoch": 12}
      "epoch": 12,
      "train": {...},                 # trainer config and data description
      "optimizer": {...} | None,      # present in last.pt for --resume
      "scheduler": {...} | None,
      "signrt_version": "0.1.0",
    }
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._fs import atomic_write
from ..errors import ModelError
from ..spec import FeatureSpec

if TYPE_CHECKING:
    import torch

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "signrt-checkpoint-v1"
_REQUIRED = ("format", "arch", "model_config", "spec", "labels", "state_dict")


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    Attributes:
        arch: Architecture name (a key of ``signrt.train.models.ARCHITECTURES``).
        model_config: Keyword arguments of the architecture's config dataclass.
        spec: The FeatureSpec the model was trained with.
        labels: Class names, index = logit position.
        state_dict: Model weights.
        metrics: Metrics recorded when it was saved.
        epoch: Epoch it was saved after.
        train: Trainer configuration and data description.
        optimizer: Optimizer state (resume only).
        scheduler: LR scheduler state (resume only).
        extra: Any further keys.
    """

    arch: str
    model_config: dict[str, Any]
    spec: FeatureSpec
    labels: list[str]
    state_dict: Mapping[str, torch.Tensor]
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    train: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def build_model(self) -> torch.nn.Module:
        """Rebuild the model and load the weights (eval mode)."""
        from .models import build_model

        model = build_model(self.arch, self.spec, len(self.labels), self.model_config)
        model.load_state_dict(dict(self.state_dict))
        model.eval()
        return model


def save_checkpoint(path: str | os.PathLike[str], ckpt: Checkpoint) -> Path:
    """Write a checkpoint atomically (temp file in the same folder, then rename)."""
    import torch

    from .._version import package_version

    doc: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "arch": ckpt.arch,
        "model_config": dict(ckpt.model_config),
        "spec": ckpt.spec.to_json(),
        "labels": list(ckpt.labels),
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "metrics": dict(ckpt.metrics),
        "epoch": int(ckpt.epoch),
        "train": dict(ckpt.train),
        "optimizer": ckpt.optimizer,
        "scheduler": ckpt.scheduler,
        "signrt_version": package_version(),
        **ckpt.extra,
    }
    # Serialise in memory first: a Ctrl-C inside torch.save surfaces from its zip writer
    # as a RuntimeError (the writer's cleanup fails) with the KeyboardInterrupt only as the
    # context; re-raise the interrupt itself. The file is then written in one plain write
    # (atomically: an interrupt there leaves the previous checkpoint in place).
    buf = io.BytesIO()
    try:
        torch.save(doc, buf)
    except RuntimeError as exc:
        interrupt = _interrupt_in_chain(exc)
        if interrupt is not None:
            raise interrupt from None
        raise
    with atomic_write(path, make_parents=True) as fh:
        fh.write(buf.getbuffer())
    return Path(path)


def _interrupt_in_chain(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt among the causes/contexts of ``exc``, if any (bounded walk)."""
    seen: BaseException | None = exc
    for _ in range(16):
        if seen is None:
            return None
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        ModelError: If the file is missing, not a torch file, or not a signrt checkpoint.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise ModelError(
            f"checkpoint {p} does not exist (expected RUN_DIR/best.pt from `signrt train`)"
        )
    try:
        doc = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"cannot read checkpoint {p}: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"{p} is not a signrt checkpoint (no 'format': {CHECKPOINT_FORMAT!r}); "
            "checkpoints are written by `signrt train`"
        )
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise ModelError(f"checkpoint {p} lacks {', '.join(missing)}")
    known = {*_REQUIRED, "metrics", "epoch", "train", "optimizer", "scheduler"}
    labels: Sequence[str] = doc["labels"]
    return Checkpoint(
        arch=str(doc["arch"]),
        model_config=dict(doc["model_config"]),
        spec=FeatureSpec.from_json(doc["spec"]),
        labels=[str(x) for x in labels],
        state_dict=doc["state_dict"],
        metrics=dict(doc.get("metrics") or {}),
        epoch=int(doc.get("epoch") or 0),
        train=dict(doc.get("train") or {}),
        optimizer=doc.get("optimizer"),
        scheduler=doc.get("scheduler"),
        extra={k: v for k, v in doc.items() if k not in known},
    )
