"""``attention_bilstm``: body-part embeddings, residual BiLSTM blocks, attention pooling.

Each body part (FeatureSpec.part_groups) is embedded by its own small MLP, the part vectors
are concatenated and projected to the model width, then residual bidirectional LSTM blocks
(``x + Dropout(BiLSTM(LayerNorm(x)))``) run over time and masked attention pooling reduces
the frames to one vector for the classifier.

Padding: real frames come first and padding after (DESIGN §3, step 8), so the forward LSTM
reads the real frames before any padding. The backward direction would read the padding
first; instead of packed sequences (which the ONNX exporters do not keep), each clip's real
frames are reversed *in place* with a per-clip index (t → n − 1 − t for t < n), run through
a forward LSTM, and reversed back. Padded frames stay at the end in both directions and
never reach a real frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ...spec import FeatureSpec
from .layers import (
    AttentionPool,
    ModelConfig,
    PartSplitter,
    SignModel,
    init_weights,
    valid_mask,
    zero_padding,
)

__all__ = ["AttentionBiLSTM", "AttentionBiLSTMConfig"]


@dataclass
class AttentionBiLSTMConfig(ModelConfig):
    """Options of ``attention_bilstm`` (the defaults give about 1.0M parameters on islr118).

    Attributes:
        part_dim: Width of each body part's embedding.
        dim: Model width (the BiLSTM output; each direction has dim / 2 units).
        depth: Residual BiLSTM blocks.
        dropout: Dropout of the embeddings and of each block's output.
        head_dropout: Dropout before the classifier.
    """

    part_dim: int = 96
    dim: int = 256
    depth: int = 2
    dropout: float = 0.1
    head_dropout: float = 0.2

    def __post_init__(self) -> None:
        self._check_common()
        self._require(self.dim % 2 == 0, "dim must be even (two LSTM directions)")


def reverse_index(valid: Tensor) -> Tensor:
    """Per-clip time index that reverses the real frames and keeps padding in place.

    Args:
        valid: (B, L) boolean mask, real frames first.

    Returns:
        (B, L) int64 index: ``n_b - 1 - t`` for ``t < n_b`` and ``t`` otherwise.
        Applying it twice is the identity.
    """
    n = valid.to(torch.int64).sum(dim=1, keepdim=True)  # (B, 1)
    t = torch.arange(valid.shape[1], device=valid.device).unsqueeze(0)  # (1, L)
    return torch.where(t < n, n - 1 - t, t)  # (B, L)


class BiLSTMBlock(nn.Module):
    """Residual pre-norm BiLSTM block that keeps padding out of both directions."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fwd = nn.LSTM(dim, dim // 2, batch_first=True)
        self.bwd = nn.LSTM(dim, dim // 2, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, rev: Tensor) -> Tensor:
        """Map (B, L, D) to (B, L, D); ``rev`` (B, L, D) is the expanded reverse index."""
        y = self.norm(x)  # (B, L, D)
        f, _ = self.fwd(y)  # (B, L, D/2)
        yr = torch.gather(y, 1, rev)  # (B, L, D): real frames reversed
        r, _ = self.bwd(yr)  # (B, L, D/2)
        r = torch.gather(r, 1, rev[..., : r.shape[-1]])  # back to time order
        out: Tensor = x + self.drop(torch.cat([f, r], dim=-1))  # (B, L, D)
        return out


class AttentionBiLSTM(SignModel):
    """Part embeddings → residual BiLSTM blocks → masked attention pooling → classifier."""

    arch = "attention_bilstm"

    def __init__(
        self, spec: FeatureSpec, num_classes: int, config: AttentionBiLSTMConfig
    ) -> None:
        super().__init__(spec, num_classes, config)
        cfg = config
        self.split = PartSplitter(spec)
        self.part_embed = nn.ModuleList(
            nn.Sequential(nn.Linear(w, cfg.part_dim), nn.LayerNorm(cfg.part_dim))
            for w in self.split.widths
        )
        self.project = nn.Linear(cfg.part_dim * len(self.split.widths), cfg.dim)
        self.embed_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(BiLSTMBlock(cfg.dim, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.pool = AttentionPool(cfg.dim, cfg.dim // 2)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.classifier = nn.Linear(cfg.dim, num_classes)
        init_weights(self)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        valid = valid_mask(mask)  # (B, L)
        x = zero_padding(features, valid)  # (B, L, F)
        parts = [F.gelu(emb(p)) for emb, p in zip(self.part_embed, self.split(x), strict=True)]
        x = self.embed_drop(self.project(torch.cat(parts, dim=-1)))  # (B, L, D)
        rev = reverse_index(valid).unsqueeze(-1).expand_as(x)  # (B, L, D)
        for block in self.blocks:
            x = block(x, rev)  # (B, L, D)
        pooled = self.pool(self.norm(x), valid)  # (B, D)
        logits: Tensor = self.classifier(self.head_drop(pooled))  # (B, K)
        return logits
