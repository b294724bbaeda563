"""``st_transformer``: body-part tokens with factorised spatial and temporal attention.

Each frame is split into body-part tokens with :meth:`FeatureSpec.part_groups` (pose, face,
right hand, left hand; parts the spec does not select are left out): the feature columns of
a part are embedded by that part's own linear layer, and a part embedding plus a learned
frame-position embedding are added. A block then applies

1. *spatial* attention among the G part tokens of the same frame,
2. *temporal* attention of each part's token across the real frames (padding masked),
3. a feed-forward,

each pre-norm with a residual. The L × G tokens are pooled by masked attention pooling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...spec import FeatureSpec
from .layers import (
    AttentionPool,
    DropPath,
    FeedForward,
    ModelConfig,
    MultiHeadAttention,
    PartSplitter,
    SignModel,
    init_weights,
    valid_mask,
    zero_padding,
)

__all__ = ["STTransformer", "STTransformerConfig"]


@dataclass
class STTransformerConfig(ModelConfig):
    """Options of ``st_transformer`` (the defaults give about 0.9M parameters on islr118).

    Attributes:
        dim: Token width.
        depth: Spatio-temporal blocks.
        heads: Attention heads (spatial and temporal).
        mlp_ratio: Feed-forward hidden-width multiplier.
        dropout: Dropout inside blocks.
        drop_path: Drop-path rate of the last block (linear from 0).
        head_dropout: Dropout before the classifier.
    """

    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    drop_path: float = 0.1
    head_dropout: float = 0.2

    def __post_init__(self) -> None:
        self._check_common()


class STBlock(nn.Module):
    """Spatial attention (within a frame), temporal attention (across frames), feed-forward."""

    def __init__(self, cfg: STTransformerConfig, drop_path: float) -> None:
        super().__init__()
        self.norm_s = nn.LayerNorm(cfg.dim)
        self.spatial = MultiHeadAttention(cfg.dim, cfg.heads, cfg.dropout)
        self.norm_t = nn.LayerNorm(cfg.dim)
        self.temporal = MultiHeadAttention(cfg.dim, cfg.heads, cfg.dropout)
        self.norm_f = nn.LayerNorm(cfg.dim)
        self.ffn = FeedForward(cfg.dim, int(cfg.dim * cfg.mlp_ratio), cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, valid_t: Tensor) -> Tensor:
        """Map tokens (B, L, G, D) to (B, L, G, D); ``valid_t`` is the (B·G, L) key mask."""
        b, length, g, d = x.shape
        s = x.reshape(b * length, g, d)  # (B·L, G, D): the parts of one frame
        s = s + self.drop_path(self.drop(self.spatial(self.norm_s(s))))
        t = s.reshape(b, length, g, d).transpose(1, 2).reshape(b * g, length, d)  # (B·G, L, D)
        t = t + self.drop_path(self.drop(self.temporal(self.norm_t(t), key_valid=valid_t)))
        t = t + self.drop_path(self.drop(self.ffn(self.norm_f(t))))
        out: Tensor = t.reshape(b, g, length, d).transpose(1, 2)  # (B, L, G, D)
        return out


class STTransformer(SignModel):
    """Part-token spatio-temporal transformer with attention pooling."""

    arch = "st_transformer"

    def __init__(self, spec: FeatureSpec, num_classes: int, config: STTransformerConfig) -> None:
        super().__init__(spec, num_classes, config)
        cfg = config
        self.split = PartSplitter(spec)
        self.part_embed = nn.ModuleList(
            nn.Sequential(nn.Linear(w, cfg.dim), nn.LayerNorm(cfg.dim))
            for w in self.split.widths
        )
        n_parts = len(self.split.widths)
        self.part_pos = nn.Parameter(torch.zeros(1, 1, n_parts, cfg.dim))
        self.time_pos = nn.Parameter(torch.zeros(1, spec.max_len, 1, cfg.dim))
        rates = [cfg.drop_path * i / max(1, cfg.depth - 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(STBlock(cfg, r) for r in rates)
        self.norm = nn.LayerNorm(cfg.dim)
        self.pool = AttentionPool(cfg.dim)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.classifier = nn.Linear(cfg.dim, num_classes)
        init_weights(self)
        nn.init.trunc_normal_(self.part_pos, std=0.02)
        nn.init.trunc_normal_(self.time_pos, std=0.02)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        valid = valid_mask(mask)  # (B, L)
        x = zero_padding(features, valid)  # (B, L, F)
        b, length = x.shape[0], x.shape[1]
        parts = self.split(x)  # G × (B, L, F_g)
        tokens = torch.stack(
            [emb(p) for emb, p in zip(self.part_embed, parts, strict=True)], dim=2
        )  # (B, L, G, D)
        tokens = tokens + self.part_pos + self.time_pos[:, :length]
        g = tokens.shape[2]
        valid_t = valid.unsqueeze(1).expand(b, g, length).reshape(b * g, length)  # (B·G, L)
        for block in self.blocks:
            tokens = block(tokens, valid_t)  # (B, L, G, D)
        flat = self.norm(tokens).reshape(b, length * g, -1)  # (B, L·G, D)
        valid_tok = valid.unsqueeze(2).expand(b, length, g).reshape(b, length * g)  # (B, L·G)
        pooled = self.pool(flat, valid_tok)  # (B, D)
        logits: Tensor = self.classifier(self.head_drop(pooled))  # (B, K)
        return logits
