"""``spoter``: a small transformer encoder-decoder with a learned class query (SPOTER-style).

Frames are embedded linearly and given learned positions; a transformer encoder attends
across the real frames; then a single learned *class query* is decoded against the encoded
frames (cross-attention with the padding masked out, then a feed-forward), and its final
vector is classified. The query sees only real frames, so padding cannot reach the logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...spec import FeatureSpec
from .layers import (
    DropPath,
    FeedForward,
    ModelConfig,
    MultiHeadAttention,
    SignModel,
    TransformerBlock,
    init_weights,
    valid_mask,
    zero_padding,
)

__all__ = ["Spoter", "SpoterConfig"]


@dataclass
class SpoterConfig(ModelConfig):
    """Options of ``spoter`` (the defaults give about 0.8M parameters on islr118).

    Attributes:
        dim: Model width.
        encoder_depth: Encoder blocks over frames.
        decoder_depth: Decoder blocks of the class query.
        heads: Attention heads.
        mlp_ratio: Feed-forward hidden-width multiplier.
        dropout: Dropout inside blocks.
        drop_path: Drop-path rate of the residual branches.
    """

    dim: int = 128
    encoder_depth: int = 3
    decoder_depth: int = 2
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    drop_path: float = 0.0

    def __post_init__(self) -> None:
        self._check_common()
        self._require(self.decoder_depth >= 1, "decoder_depth must be >= 1")


class QueryDecoderBlock(nn.Module):
    """Pre-norm decoder block of a single query: cross-attention, then feed-forward.

    (Self-attention over one query is the identity up to a linear map, so it is left out.)
    """

    def __init__(self, cfg: SpoterConfig) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(cfg.dim)
        self.norm_kv = nn.LayerNorm(cfg.dim)
        self.cross = MultiHeadAttention(cfg.dim, cfg.heads, cfg.dropout)
        self.norm2 = nn.LayerNorm(cfg.dim)
        self.ffn = FeedForward(cfg.dim, int(cfg.dim * cfg.mlp_ratio), cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.drop_path = DropPath(cfg.drop_path)

    def forward(self, q: Tensor, memory: Tensor, valid: Tensor) -> Tensor:
        """Update the query (B, 1, D) from the encoded frames (B, L, D) where valid (B, L)."""
        att = self.cross(self.norm_q(q), self.norm_kv(memory), key_valid=valid)  # (B, 1, D)
        q = q + self.drop_path(self.drop(att))
        q = q + self.drop_path(self.drop(self.ffn(self.norm2(q))))
        return q


class Spoter(SignModel):
    """Transformer encoder over frames plus a class-query decoder."""

    arch = "spoter"

    def __init__(self, spec: FeatureSpec, num_classes: int, config: SpoterConfig) -> None:
        super().__init__(spec, num_classes, config)
        cfg = config
        self.embed = nn.Linear(spec.num_features, cfg.dim)
        self.pos = nn.Parameter(torch.zeros(1, spec.max_len, cfg.dim))
        self.encoder = nn.ModuleList(
            TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout, cfg.drop_path)
            for _ in range(cfg.encoder_depth)
        )
        self.query = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.decoder = nn.ModuleList(QueryDecoderBlock(cfg) for _ in range(cfg.decoder_depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.classifier = nn.Linear(cfg.dim, num_classes)
        init_weights(self)
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.query, std=0.02)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        valid = valid_mask(mask)  # (B, L)
        x = zero_padding(features, valid)  # (B, L, F)
        x = self.embed(x) + self.pos[:, : x.shape[1]]  # (B, L, D)
        for block in self.encoder:
            x = block(x, valid)  # (B, L, D)
        q = self.query.expand(x.shape[0], -1, -1)  # (B, 1, D)
        for dec in self.decoder:
            q = dec(q, x, valid)  # (B, 1, D)
        logits: Tensor = self.classifier(self.norm(q[:, 0]))  # (B, K)
        return logits
