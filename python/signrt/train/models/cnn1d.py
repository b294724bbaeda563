"""``cnn1d``: a small temporal CNN with hand-shape features, the default for small datasets.

Per frame, the FeatureSpec's features are extended in the model (so the exported graph
carries it and the FeatureSpec contract stays as it is) by *hand-relative* coordinates: for
every hand the spec selects completely (21 points, wrist first), each point's position
minus the wrist's, multiplied by ``hand_scale``. The body-normalised positions say where the
hands are; the wrist-relative ones say what shape they make, independently of where.

Then ``len(kernels)`` blocks of Conv1d over time → BatchNorm → ReLU → dropout (padded frames
zeroed before every convolution), masked mean pooling over the real frames, dropout and a
linear classifier. About 0.77M parameters on ``hands_pose``; a batch-1 forward is a few
hundred microseconds on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ... import layouts
from ...spec import FeatureSpec
from .layers import ModelConfig, SignModel, masked_mean, valid_mask

__all__ = ["CNN1D", "CNN1DConfig", "hand_point_groups"]


@dataclass
class CNN1DConfig(ModelConfig):
    """Options of ``cnn1d``.

    Attributes:
        dim: Channels of every conv block.
        kernels: Temporal kernel size of each block (odd), one entry per block.
        dropout: Dropout after every block.
        head_dropout: Dropout before the classifier.
        hand_relative: Add wrist-relative hand coordinates (hands the spec selects whole).
        hand_scale: Multiplier of the wrist-relative coordinates.
    """

    dim: int = 192
    kernels: tuple[int, ...] = (5, 5, 3)
    dropout: float = 0.2
    head_dropout: float = 0.2
    hand_relative: bool = True
    hand_scale: float = 2.0

    def __post_init__(self) -> None:
        self.kernels = tuple(int(k) for k in self.kernels)
        self._check_common()
        self._require(len(self.kernels) >= 1, "kernels must name at least one block")
        self._require(all(k >= 1 and k % 2 == 1 for k in self.kernels), "kernels must be odd")
        self._require(self.hand_scale > 0, "hand_scale must be > 0")


def hand_point_groups(spec: FeatureSpec) -> list[list[int]]:
    """Positions (in the spec's landmark order) of every hand selected whole, wrist first."""
    pos = {lm: i for i, lm in enumerate(spec.landmarks)}
    groups = []
    for hand in (layouts.LEFT_HAND, layouts.RIGHT_HAND):
        if all(lm in pos for lm in hand):
            groups.append([pos[lm] for lm in hand])
    return groups


class CNN1D(SignModel):
    """Temporal conv blocks over per-frame features (plus hand-relative coordinates)."""

    arch = "cnn1d"

    def __init__(self, spec: FeatureSpec, num_classes: int, config: CNN1DConfig) -> None:
        super().__init__(spec, num_classes, config)
        cfg = config
        self.points = len(spec.landmarks)
        self.channels = spec.num_features // self.points  # C_out per point
        self.coords = spec.coords
        groups = hand_point_groups(spec) if cfg.hand_relative else []
        idx = [i for g in groups for i in g]
        wrist = [g[0] for g in groups for _ in g]
        self.register_buffer("hand_idx", torch.tensor(idx, dtype=torch.int64), persistent=False)
        self.register_buffer("wrist_idx", torch.tensor(wrist, dtype=torch.int64), persistent=False)
        cin = spec.num_features + len(idx) * self.coords
        blocks: list[nn.Module] = []
        for k in cfg.kernels:
            blocks.append(nn.Sequential(
                nn.Conv1d(cin, cfg.dim, k, padding=k // 2), nn.BatchNorm1d(cfg.dim),
                nn.ReLU(), nn.Dropout(cfg.dropout),
            ))  # fmt: skip
            cin = cfg.dim
        self.blocks = nn.ModuleList(blocks)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.classifier = nn.Linear(cfg.dim, num_classes)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        cfg = self.config
        assert isinstance(cfg, CNN1DConfig)
        valid = valid_mask(mask)  # (B, L)
        b, n = features.shape[0], features.shape[1]
        x = features
        hand_idx, wrist_idx = self.hand_idx, self.wrist_idx
        assert isinstance(hand_idx, Tensor) and isinstance(wrist_idx, Tensor)
        if hand_idx.numel():
            pts = features.reshape(b, n, self.points, self.channels)[..., : self.coords]
            rel = pts.index_select(2, hand_idx) - pts.index_select(2, wrist_idx)
            x = torch.cat([x, rel.reshape(b, n, -1) * cfg.hand_scale], dim=-1)  # (B, L, F')
        keep = valid.unsqueeze(1).to(x.dtype)  # (B, 1, L)
        h = x.transpose(1, 2).contiguous()  # (B, F', L)
        for block in self.blocks:
            h = block(h * keep)  # (B, D, L)
        pooled = masked_mean(h.transpose(1, 2), valid)  # (B, D)
        logits: Tensor = self.classifier(self.head_drop(pooled))  # (B, K)
        return logits
