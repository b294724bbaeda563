"""``cnn_transformer``: 1D depthwise-conv blocks interleaved with transformer blocks.

The layout of the Kaggle ASL Signs (ISLR) 1st-place family of models: a linear stem, then
stages of (``convs_per_stage`` × conv block, 1 × transformer block), a wider top projection,
masked mean pooling and a linear classifier. A conv block is

    x + drop_path(Linear(ECA(DepthwiseConv1d(SiLU(Linear(LayerNorm(x)))))))

with efficient channel attention (ECA: a small conv over the masked time-average of the
channels, then a sigmoid gate). Padded frames are zeroed before every depthwise conv and
excluded from the ECA average, so they never reach a real frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from ...spec import FeatureSpec
from .layers import (
    DropPath,
    ModelConfig,
    SignModel,
    TransformerBlock,
    init_weights,
    masked_mean,
    valid_mask,
    zero_padding,
)

__all__ = ["CNNTransformer", "CNNTransformerConfig"]


@dataclass
class CNNTransformerConfig(ModelConfig):
    """Options of ``cnn_transformer`` (the defaults give about 1.8M parameters on islr118).

    Attributes:
        dim: Model width.
        stages: Number of (conv blocks, transformer block) stages.
        convs_per_stage: Conv blocks per stage.
        kernel_size: Depthwise conv kernel (odd; frames).
        expand: Width multiplier inside a conv block.
        causal: Causal convs (look only at past frames) instead of centred ones.
        heads: Attention heads of the transformer blocks.
        mlp_ratio: Hidden-width multiplier of the transformer feed-forward.
        top_ratio: Width multiplier of the projection before pooling.
        dropout: Dropout inside blocks.
        drop_path: Stochastic-depth rate of every residual branch.
        head_dropout: Dropout before the classifier.
    """

    dim: int = 192
    stages: int = 2
    convs_per_stage: int = 3
    kernel_size: int = 17
    expand: int = 2
    causal: bool = False
    heads: int = 4
    mlp_ratio: float = 2.0
    top_ratio: int = 2
    dropout: float = 0.1
    drop_path: float = 0.1
    head_dropout: float = 0.3

    def __post_init__(self) -> None:
        self._check_common()
        self._require(self.kernel_size % 2 == 1, "kernel_size must be odd")


class ECA(nn.Module):
    """Efficient channel attention over the real frames."""

    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Gate the channels of (B, L, C) by a function of their masked time-average."""
        s = masked_mean(x, valid).unsqueeze(1)  # (B, 1, C)
        g = torch.sigmoid(self.conv(s))  # (B, 1, C)
        return x * g  # (B, L, C)


class ConvBlock(nn.Module):
    """Pre-norm depthwise-conv block with ECA and a residual connection."""

    def __init__(self, cfg: CNNTransformerConfig, drop_path: float) -> None:
        super().__init__()
        inner = cfg.dim * cfg.expand
        self.norm = nn.LayerNorm(cfg.dim)
        self.expand = nn.Linear(cfg.dim, inner)
        k = cfg.kernel_size
        self.pad = (k - 1, 0) if cfg.causal else (k // 2, k // 2)
        self.dw = nn.Conv1d(inner, inner, k, groups=inner)
        self.eca = ECA()
        self.project = nn.Linear(inner, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Map (B, L, D) to (B, L, D)."""
        y = F.silu(self.expand(self.norm(x)))  # (B, L, E)
        y = zero_padding(y, valid)  # padded frames act as the conv's zero padding
        y = F.pad(y.transpose(1, 2), self.pad)  # (B, E, L + k - 1)
        y = self.dw(y).transpose(1, 2)  # (B, L, E)
        y = self.eca(y, valid)
        y = self.project(y)  # (B, L, D)
        out: Tensor = x + self.drop_path(self.drop(y))  # (B, L, D)
        return out


class CNNTransformer(SignModel):
    """Depthwise-conv + transformer classifier (see the module docstring)."""

    arch = "cnn_transformer"

    def __init__(self, spec: FeatureSpec, num_classes: int, config: CNNTransformerConfig) -> None:
        super().__init__(spec, num_classes, config)
        cfg = config
        self.stem = nn.Linear(spec.num_features, cfg.dim, bias=False)
        self.stem_norm = nn.LayerNorm(cfg.dim)
        n_blocks = cfg.stages * (cfg.convs_per_stage + 1)
        rates = [cfg.drop_path * i / max(1, n_blocks - 1) for i in range(n_blocks)]
        blocks: list[nn.Module] = []
        for i in range(n_blocks):
            if (i + 1) % (cfg.convs_per_stage + 1) == 0:
                blocks.append(
                    TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout, rates[i],
                                     act="silu")
                )
            else:
                blocks.append(ConvBlock(cfg, rates[i]))
        self.blocks = nn.ModuleList(blocks)
        self.top = nn.Linear(cfg.dim, cfg.dim * cfg.top_ratio)
        self.top_norm = nn.LayerNorm(cfg.dim * cfg.top_ratio)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.classifier = nn.Linear(cfg.dim * cfg.top_ratio, num_classes)
        init_weights(self)

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        valid = valid_mask(mask)  # (B, L)
        x = zero_padding(features, valid)  # (B, L, F)
        x = self.stem_norm(self.stem(x))  # (B, L, D)
        for block in self.blocks:  # conv and transformer blocks alike: (B, L, D) -> (B, L, D)
            x = block(x, valid)
        x = F.silu(self.top_norm(self.top(x)))  # (B, L, D·top)
        pooled = masked_mean(x, valid)  # (B, D·top)
        logits: Tensor = self.classifier(self.head_drop(pooled))  # (B, K)
        return logits
