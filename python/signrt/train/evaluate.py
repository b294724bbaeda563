"""Evaluation of a checkpoint or an ONNX model file on a labelled clip set.

The report holds top-1 and top-5 accuracy, per-class precision, recall and F1, their macro
averages and the confusion matrix; it is written as JSON (:meth:`EvalReport.to_json`) and
the confusion matrix as a PNG (:meth:`EvalReport.save_confusion_png`).

* :func:`evaluate_onnx` runs the model file through the runtime
  (:func:`signrt.recognizer.load`, native batch preprocessing with the spec stored in the
  model), exactly as a deployed model runs.
* :func:`evaluate_checkpoint` rebuilds the PyTorch model from a training checkpoint.

The clip set's sign names are matched to the model's labels by name; a sign the model does
not know is an error. A clip in which no selected landmark is present gets no prediction
(the runtime answers "no signer"); it counts as wrong and is reported in ``no_signer``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import ShapeError
from .data import ClipSet, batch_preprocess

__all__ = [
    "EvalReport",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_onnx",
    "report_from_scores",
]

log = logging.getLogger(__name__)


@dataclass
class EvalReport:
    """Metrics of a model on a clip set.

    Attributes:
        labels: Class names, index = class.
        y_true: (N,) true classes.
        y_pred: (N,) predicted classes (-1: no prediction, the clip had no signer).
        top1: Top-1 accuracy.
        top5: Top-5 accuracy (top-K when K < 5).
        precision: (K,) per-class precision (0 for a class never predicted).
        recall: (K,) per-class recall (0 for a class absent from the data).
        f1: (K,) per-class F1.
        support: (K,) clips per true class.
        confusion: (K, K) counts, rows = true class, columns = predicted class.
        no_signer: Clips without a prediction.
        model: The evaluated model (path).
        data: The data source.
    """

    labels: list[str]
    y_true: npt.NDArray[np.int64]
    y_pred: npt.NDArray[np.int64]
    top1: float
    top5: float
    precision: npt.NDArray[np.float64]
    recall: npt.NDArray[np.float64]
    f1: npt.NDArray[np.float64]
    support: npt.NDArray[np.int64]
    confusion: npt.NDArray[np.int64]
    no_signer: int = 0
    model: str = ""
    data: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_clips(self) -> int:
        """N, the number of evaluated clips."""
        return int(self.y_true.shape[0])

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes present in the data."""
        present = self.support > 0
        return float(self.f1[present].mean()) if present.any() else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        present = self.support > 0
        return {
            "model": self.model,
            "data": self.data,
            "num_clips": self.num_clips,
            "num_classes": len(self.labels),
            "top1": self.top1,
            "top5": self.top5,
            "macro_precision": float(self.precision[present].mean()) if present.any() else 0.0,
            "macro_recall": float(self.recall[present].mean()) if present.any() else 0.0,
            "macro_f1": self.macro_f1,
            "no_signer": self.no_signer,
            "per_class": [
                {
                    "label": lab,
                    "precision": float(self.precision[i]),
                    "recall": float(self.recall[i]),
                    "f1": float(self.f1[i]),
                    "support": int(self.support[i]),
                }
                for i, lab in enumerate(self.labels)
            ],
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
            **self.extra,
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path``."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.to_json() + "\n")
        return p

    def summary(self, *, max_rows: int = 30) -> str:
        """A human-readable summary: accuracies and the per-class table (worst F1 first)."""
        lines = [
            f"model: {self.model}",
            f"data:  {self.data} ({self.num_clips} clips, {len(self.labels)} classes)",
            f"top-1 {self.top1 * 100:.2f}%   top-5 {self.top5 * 100:.2f}%   "
            f"macro F1 {self.macro_f1:.3f}"
            + (f"   no signer: {self.no_signer}" if self.no_signer else ""),
            "",
            f"{'label':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}",
        ]
        order = np.argsort(self.f1, kind="stable")
        shown = [i for i in order if self.support[i] > 0][:max_rows]
        for i in shown:
            lines.append(
                f"{self.labels[i][:24]:<24} {self.precision[i]:>9.3f} {self.recall[i]:>7.3f} "
                f"{self.f1[i]:>6.3f} {self.support[i]:>8d}"
            )
        hidden = int((self.support > 0).sum()) - len(shown)
        if hidden > 0:
            lines.append(f"... {hidden} more classes")
        return "\n".join(lines)

    def save_confusion_png(
        self, path: str | os.PathLike[str], *, normalize: bool = True, max_ticks: int = 60
    ) -> Path:
        """Draw the confusion matrix (rows normalised to recall by default) into a PNG.

        Args:
            path: Destination file.
            normalize: Divide each row by its support.
            max_ticks: Label the axes only when there are at most this many classes.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        k = len(self.labels)
        cm = self.confusion.astype(np.float64)
        if normalize:
            cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)
        size = min(4.0 + 0.25 * k, 24.0)
        fig, ax = plt.subplots(figsize=(size, size))
        im = ax.imshow(cm, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if k <= max_ticks:
            ax.set_xticks(range(k), self.labels, rotation=90, fontsize=7)
            ax.set_yticks(range(k), self.labels, fontsize=7)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    if self.confusion[i, j]:
                        val = f"{cm[i, j]:.2f}" if normalize else str(int(cm[i, j]))
                        colour = "white" if cm[i, j] > 0.5 * cm.max() else "black"
                        ax.text(j, i, val, ha="center", va="center", fontsize=6, color=colour)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"top-1 {self.top1 * 100:.1f}% ({self.num_clips} clips)")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=90)
        plt.close(fig)
        return out


def report_from_scores(
    scores: npt.ArrayLike,
    y_true: npt.ArrayLike,
    labels: Sequence[str],
    *,
    valid: npt.ArrayLike | None = None,
    model: str = "",
    data: str = "",
) -> EvalReport:
    """Compute the metrics from class scores (logits or probabilities).

    Args:
        scores: (N, K) scores, higher = more likely.
        y_true: (N,) true classes.
        labels: K class names.
        valid: (N,) booleans, False for clips without a prediction (no signer).
        model: Model name for the report.
        data: Data name for the report.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    k = len(labels)
    n = y.shape[0]
    if s.shape != (n, k):
        raise ShapeError(f"scores must be ({n}, {k}), got {s.shape}")
    ok = np.ones(n, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    pred = np.where(ok, s.argmax(axis=1) if n else np.zeros(0, np.int64), -1).astype(np.int64)
    top = min(5, k)
    topk = np.argsort(-s, axis=1, kind="stable")[:, :top]  # (N, top)
    hit5 = (topk == y[:, None]).any(axis=1) & ok
    conf = np.zeros((k, k), dtype=np.int64)
    np.add.at(conf, (y[ok], pred[ok]), 1)
    tp = np.diag(conf).astype(np.float64)
    support = np.bincount(y, minlength=k).astype(np.int64)
    predicted = conf.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return EvalReport(
        labels=list(labels),
        y_true=y,
        y_pred=pred,
        top1=float((pred == y).mean()) if n else 0.0,
        top5=float(hit5.mean()) if n else 0.0,
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        confusion=conf,
        no_signer=int((~ok).sum()),
        model=model,
        data=data,
    )


def _softmax(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def evaluate_onnx(
    model_path: str | os.PathLike[str],
    clipset: ClipSet,
    *,
    device: str = "cpu",
    batch_size: int = 64,
) -> EvalReport:
    """Evaluate an ONNX model file through the runtime.

    Args:
        model_path: The ``.onnx`` file (with signrt metadata, DESIGN §4).
        clipset: Labelled clips; signs are matched to the model's labels by name.
        device: Runtime device (``cpu``, ``cuda``, ``tensorrt``, ``auto``).
        batch_size: Clips per engine call.

    Raises:
        ModelError: If the model file is invalid.
        DataError: If a sign of the data is not among the model's labels.
    """
    from ..recognizer import load

    rec = load(model_path, device=device)
    try:
        labels = list(rec.labels)
        data = clipset.with_label_names(labels)
        k = len(labels)
        pos = {lab: i for i, lab in enumerate(labels)}
        scores = np.zeros((len(data), k))
        valid = np.ones(len(data), dtype=bool)
        for a in range(0, len(data), batch_size):
            clips = [data.clips[i] for i in range(a, min(len(data), a + batch_size))]
            for j, pred in enumerate(rec.predict_batch(clips, top_k=k)):
                if pred.no_signer:
                    valid[a + j] = False
                    continue
                for lab, p in pred.topk:
                    scores[a + j, pos[lab]] = p
    finally:
        rec.close()
    report = report_from_scores(
        scores, data.labels, labels, valid=valid, model=str(model_path), data=clipset.source
    )
    report.extra["precision_of_model"] = str(rec.model.precision)
    report.extra["device"] = device
    return report


def evaluate_checkpoint(
    ckpt_path: str | os.PathLike[str],
    clipset: ClipSet,
    *,
    device: str = "cpu",
    batch_size: int = 64,
) -> EvalReport:
    """Evaluate a training checkpoint (``best.pt``) with PyTorch.

    Args:
        ckpt_path: The checkpoint.
        clipset: Labelled clips; signs are matched to the checkpoint's labels by name.
        device: Torch device (``cpu``, ``cuda``, ``auto``).
        batch_size: Clips per forward pass.

    Raises:
        ModelError: If the checkpoint is invalid.
        DataError: If a sign of the data is not among the checkpoint's labels.
    """
    import torch

    from .checkpoint import load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ckpt.build_model().to(device)
    data = clipset.with_label_names(ckpt.labels)
    k = len(ckpt.labels)
    scores = np.zeros((len(data), k))
    valid = np.ones(len(data), dtype=bool)
    with torch.no_grad():
        for a in range(0, len(data), batch_size):
            b = min(len(data), a + batch_size)
            feats, mask = batch_preprocess([data.clips[i] for i in range(a, b)], ckpt.spec)
            valid[a:b] = mask.any(axis=1)
            logits = model(torch.from_numpy(feats).to(device), torch.from_numpy(mask).to(device))
            scores[a:b] = _softmax(logits.float().cpu().numpy().astype(np.float64))  # (B, K)
    report = report_from_scores(
        scores, data.labels, ckpt.labels, valid=valid, model=str(ckpt_path), data=clipset.source
    )
    report.extra["checkpoint_epoch"] = ckpt.epoch
    report.extra["arch"] = ckpt.arch
    return report


def evaluate(
    model: str | os.PathLike[str], clipset: ClipSet, *, device: str = "cpu", batch_size: int = 64
) -> EvalReport:
    """Evaluate a checkpoint (``.pt``) or an ONNX file (``.onnx``), chosen by suffix."""
    if Path(model).suffix.lower() == ".onnx":
        return evaluate_onnx(model, clipset, device=device, batch_size=batch_size)
    return evaluate_checkpoint(model, clipset, device=device, batch_size=batch_size)
