"""``signbert``: a BERT-style pre-norm transformer encoder over frames.

Each feature row is embedded by a linear layer, learned position embeddings (one per frame
index up to the spec's max_len) are added, a stack of pre-norm transformer blocks with
stochastic depth (linearly increasing drop-path) attends across the real frames, and the
final-normed frame vectors are mean-pooled over the real frames before the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...spec import FeatureSpec
from .layers import (
    ModelConfig,
    SignModel,
    TransformerBlock,
    init_weights,
    masked_mean,
    valid_mask,
    zero_padding,
)

__all__ = ["SignBERT", "SignBERTConfig"]


@dataclass
class SignBERTConfig(ModelConfig):
    """Options of ``signbert`` (the defaults give about 2.4M parameters on islr118).

    Attributes:
        dim: Model width.
        depth: Transformer blocks.
        heads: Attention heads.
        mlp_ratio: Feed-forward hidden-width multiplier.
        dropout: Dropout inside blocks and after the embedding.
        drop_path: Drop-path rate of the last block (0 for the first, linear in between).
        head_dropout: Dropout before the classifier.
    """

    dim: int = 192
    depth: int = 5
    heads: int = 6
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    drop_path: float = 0.1
    head_dropout: float = 0.2

    def __post_init__(self) -> None:
        self._check_common()


class SignBERT(SignModel):
    """Pre-norm transformer encoder with learned positions and masked mean pooling."""

    arch = "signbert"

    def __init__(self, spec: FeatureSpec, num_classes: int, config: SignBERTConfig) -> None:
        super().__init__(spec, num_classes, config)
        cfg = config
        self.embed = nn.Linear(spec.num_features, cfg.dim)
        self.pos = nn.Parameter(torch.zeros(1, spec.max_len, cfg.dim))
        self.embed_drop = nn.Dropout(cfg.dropout)
        rates = [cfg.drop_path * i / max(1, cfg.depth - 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout, r) for r in rates
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.classifier = nn.Linear(cfg.dim, num_classes)
        init_weights(self)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        valid = valid_mask(mask)  # (B, L)
        x = zero_padding(features, valid)  # (B, L, F)
        x = self.embed(x) + self.pos[:, : x.shape[1]]  # (B, L, D)
        x = self.embed_drop(x)
        for block in self.blocks:
            x = block(x, valid)  # (B, L, D)
        pooled = masked_mean(self.norm(x), valid)  # (B, D)
        logits: Tensor = self.classifier(self.head_drop(pooled))  # (B, K)
        return logits
