"""Data-aware training defaults: look at the clips, choose what the user left open.

Every :class:`~signrt.train.config.TrainConfig` option that is ``None`` is chosen here from
a :class:`DataProfile` of the training clips, and every choice is logged and returned with
its reason (the trainer writes them into ``RUN_DIR/choices.json`` and the checkpoint's
training info, hence into the exported model's metadata). An option given explicitly is
never changed.

The rules (measured on real signing clips, see ``benches/results/train_recipe.md``):

* **spec**: the face present in most frames → ``islr118`` (lips, eyes, nose, hands);
  otherwise ``hands_pose`` (upper-body pose + hands, shoulder normalisation).
* **max_len**: the median clip length rounded up to a multiple of 16 (16 … 128);
  **fit** ``resample`` when any clip is longer than that (``truncate`` would cut its end
  off), else ``truncate`` (nothing to cut).
* **arch**: ``cnn1d`` (0.8M parameters, hand-relative features) below
  :data:`SMALL_DATASET` training clips, where it beats the attention models;
  ``cnn_transformer`` above.
* **epochs / batch size**: about :data:`TARGET_STEPS` optimiser steps in all, 20 … 100
  epochs; batch 32 below 2000 clips, else 64. **lr** 2e-3; **weight decay** 0.05.
* **augment**: below :data:`SMALL_DATASET` clips :data:`LIGHT_AUGMENT` (speed, small
  rotation and shear: the heavy default with masks and frame dropout under-fits a few
  hundred clips and lost 40 points on held-out sessions), else the full default.
* **patience**: 0 (no early stopping: the whole schedule) below :data:`SMALL_DATASET`
  clips, where a validation set of a few dozen clips is too noisy to stop on; else 10.
* **mixup** and **ema**: off. Mixup Beta(0.2, 0.2) won a 4-fold screen (+9 points) but
  lost the full leave-one-session-out comparison; weight averaging changed no fold (the
  cosine schedule ends near zero, so the last weights are already an average).
* **class_weights**: on when the largest class has more than twice the clips of the
  smallest (inverse-frequency loss weights).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from .. import layouts
from ..errors import DataError
from .augment import AugmentConfig
from .config import TrainConfig
from .data import ClipSet

__all__ = [
    "LIGHT_AUGMENT",
    "SMALL_DATASET",
    "TARGET_STEPS",
    "Choice",
    "DataProfile",
    "auto_config",
    "profile",
]

log = logging.getLogger(__name__)

#: Below this many training clips the small ``cnn1d`` is the default architecture.
SMALL_DATASET: Final = 5000
#: Optimiser steps a default run aims at (epochs = steps / steps per epoch, clamped).
TARGET_STEPS: Final = 420
#: Augmentation of the small-data recipe (measured: benches/results/train_recipe.md). The
#: shoulder normalisation undoes scale and shift, so they are left out.
LIGHT_AUGMENT: Final = AugmentConfig(
    resample_p=0.8, resample_range=(0.8, 1.25), dropout_p=0.0, mirror_p=0.0, affine_p=0.75,
    scale=(1.0, 1.0), shear=0.05, rotate_deg=10.0, shift=0.0, temporal_mask_p=0.0,
    spatial_mask_p=0.0,
)
#: Clips read to profile a large dataset (evenly spaced).
PROFILE_SAMPLE: Final = 400


@dataclass(frozen=True)
class Choice:
    """One option chosen from the data.

    Attributes:
        key: The TrainConfig option.
        value: The value chosen (plain JSON types).
        reason: Why, in words.
    """

    key: str
    value: Any
    reason: str


@dataclass
class DataProfile:
    """What the training clips look like.

    Attributes:
        clips: Number of training clips.
        classes: Number of classes.
        class_counts: Clips per class.
        lengths: Frame counts of the profiled clips.
        presence: Per body part, the share of profiled frames in which it has a point.
        profiled: How many clips were read for ``lengths`` and ``presence``.
    """

    clips: int
    classes: int
    class_counts: list[int]
    lengths: list[int] = field(default_factory=list)
    presence: dict[str, float] = field(default_factory=dict)
    profiled: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Summary as plain types (lengths as percentiles)."""
        ln = np.asarray(self.lengths or [0])
        return {
            "clips": self.clips, "classes": self.classes,
            "class_counts": {"min": min(self.class_counts), "max": max(self.class_counts)},
            "length_percentiles": {str(q): float(np.percentile(ln, q)) for q in (0, 50, 90, 100)},
            "presence": {k: round(v, 3) for k, v in self.presence.items()},
            "profiled": self.profiled,
        }  # fmt: skip


def profile(data: ClipSet, *, sample: int = PROFILE_SAMPLE) -> DataProfile:
    """Read (up to ``sample``) clips and measure lengths and body-part presence.

    Raises:
        DataError: If the data has no clip.
    """
    n = len(data)
    if n == 0:
        raise DataError(f"{data.source or 'the training data'} holds no clip")
    idx = np.unique(np.linspace(0, n - 1, min(n, sample)).round().astype(int))
    lengths: list[int] = []
    present = {name: 0 for name in layouts.PARTS}
    frames = 0
    for i in idx:
        clip = np.asarray(data.clips[int(i)])
        lengths.append(int(clip.shape[0]))
        frames += clip.shape[0]
        for name, rng in layouts.PARTS.items():
            part = clip[:, rng.start : rng.stop, :2]  # (T, P, 2)
            present[name] += int(np.isfinite(part).all(axis=-1).any(axis=-1).sum())
    return DataProfile(
        clips=n, classes=data.num_classes, class_counts=data.class_counts().tolist(),
        lengths=lengths, presence={k: v / max(frames, 1) for k, v in present.items()},
        profiled=len(idx),
    )  # fmt: skip


def _check_classes(data: ClipSet) -> None:
    counts = data.class_counts()
    used = int((counts > 0).sum())
    if used < 2:
        raise DataError(
            f"{data.source or 'the training data'} has {used} sign with clips "
            f"({', '.join(n for n, c in zip(data.label_names, counts, strict=True) if c)}); "
            "a classifier needs at least two"
        )
    empty = [n for n, c in zip(data.label_names, counts, strict=True) if c == 0]
    if empty:
        raise DataError(
            f"{len(empty)} sign(s) have no training clip: {', '.join(empty[:5])}"
            f"{' ...' if len(empty) > 5 else ''} (every sign needs one; drop it or add clips)"
        )


def auto_config(
    cfg: TrainConfig, data: ClipSet
) -> tuple[TrainConfig, list[Choice], DataProfile]:
    """Fill in every option of ``cfg`` left ``None`` from the training clips ``data``.

    Returns:
        The completed config (a copy), the choices made (in order) and the data profile.

    Raises:
        DataError: If the data has fewer than two signs or a sign without a clip.
    """
    _check_classes(data)
    prof = profile(data)
    choices: list[Choice] = []
    ch: dict[str, Any] = {}

    def choose(key: str, value: Any, reason: str) -> None:
        if getattr(cfg, key) is None:
            ch[key] = value
            choices.append(Choice(key, value.to_dict() if hasattr(value, "to_dict") else value,
                                  reason))  # fmt: skip

    face, pose = prof.presence.get("face", 0.0), prof.presence.get("pose", 0.0)
    hands = max(prof.presence.get("left_hand", 0.0), prof.presence.get("right_hand", 0.0))
    if face >= 0.5:
        choose("spec", "islr118", f"the face is present in {face:.0%} of the frames")
    else:
        choose("spec", "hands_pose", f"the face is present in {face:.0%} of the frames "
               f"(pose {pose:.0%}, a hand {hands:.0%}): body pose and hands only")  # fmt: skip
    med = float(np.median(prof.lengths))
    longest = max(prof.lengths)
    max_len = int(min(128, max(16, 16 * math.ceil(med / 16))))
    choose("max_len", max_len, f"median clip length {med:.0f} frames, rounded up to 16")
    final_len = cfg.max_len if cfg.max_len is not None else max_len
    if longest > final_len:
        share = float(np.mean(np.asarray(prof.lengths) > final_len))
        choose("fit", "resample", f"{share:.0%} of the clips are longer than {final_len} "
               f"frames (up to {longest}): resample instead of cutting their end off")  # fmt: skip
    else:
        choose("fit", "truncate", f"no clip is longer than {final_len} frames")
    n = prof.clips
    if n < SMALL_DATASET:
        choose("arch", "cnn1d", f"{n} training clips (< {SMALL_DATASET}): the small temporal "
               "CNN generalises best on small real datasets")  # fmt: skip
    else:
        choose("arch", "cnn_transformer", f"{n} training clips (>= {SMALL_DATASET})")
    batch = 32 if n < 2000 else 64
    choose("batch_size", batch, f"{n} training clips")
    final_batch = cfg.batch_size if cfg.batch_size is not None else batch
    steps = max(1, math.ceil(n / final_batch))
    epochs = int(min(100, max(20, round(TARGET_STEPS / steps))))
    choose("epochs", epochs, f"about {TARGET_STEPS} optimiser steps of {steps} per epoch")
    if n < SMALL_DATASET:
        choose("patience", 0, f"{n} training clips: the validation set is too small to stop "
               "on; the schedule runs to its end")  # fmt: skip
    else:
        choose("patience", 10, "stop after 10 epochs without a better validation top-1")
    choose("lr", 2e-3, "AdamW peak learning rate of the measured recipe")
    choose("weight_decay", 0.05, "measured recipe")
    if n < SMALL_DATASET:
        choose("augment", LIGHT_AUGMENT, f"{n} training clips: light augmentation (speed, "
               "small rotation and shear); masks, frame dropout and mirroring cost accuracy "
               "on held-out sessions")  # fmt: skip
    else:
        choose("augment", AugmentConfig(), f"{n} training clips: the full augmentation")
    choose("ema", 0.0, "no weight averaging: at the end of the cosine schedule the last "
           "weights are their own average (measured: no change on held-out sessions)")
    choose("mixup", 0.0, "no mixup (measured leaving one session out: it moved single folds "
           "by -12 to +33 points and did not raise the mean)")
    counts = np.asarray([c for c in prof.class_counts if c > 0])
    ratio = float(counts.max() / counts.min())
    choose("class_weights", ratio > 2.0, f"largest/smallest class = {ratio:.1f} "
           f"({'>' if ratio > 2.0 else '<='} 2)")  # fmt: skip
    out = dataclasses.replace(cfg, **ch)
    for c in choices:
        log.info("auto: %s = %s (%s)", c.key, c.value, c.reason)
    return out, choices, prof
