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
from typing import Final

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
        hand_size_norm: Divide the wrist-relative coordinates by the hand's size (per
            frame: the mean wrist-to-knuckle distance), so they describe the hand's shape
            independently of its distance from the camera and of the signer's hand size.
        hand_shape: Add, per hand, the 10 fingertip-to-fingertip and 5 fingertip-to-wrist
            distances divided by the hand's size (rotation- and scale-invariant shape).
        time_norm: Resample every clip's real frames (linearly) onto the spec's ``max_len``
            positions before the convolutions, so that a sign signed slowly and the same
            sign signed quickly look alike (the FeatureSpec only compresses clips longer
            than ``max_len``; this also stretches the shorter ones).
    """

    dim: int = 192
    kernels: tuple[int, ...] = (5, 5, 3)
    dropout: float = 0.2
    head_dropout: float = 0.2
    hand_relative: bool = True
    hand_scale: float = 2.0
    hand_size_norm: bool = False
    hand_shape: bool = False
    time_norm: bool = False

    def __post_init__(self) -> None:
        self.kernels = tuple(int(k) for k in self.kernels)
        self._check_common()
        self._require(len(self.kernels) >= 1, "kernels must name at least one block")
        self._require(all(k >= 1 and k % 2 == 1 for k in self.kernels), "kernels must be odd")
        self._require(self.hand_scale > 0, "hand_scale must be > 0")


#: Hand points (MediaPipe order, wrist 0): the four knuckles that give the hand's size, and
#: the five fingertips.
_KNUCKLES: Final = [5, 9, 13, 17]
_TIPS: Final = [4, 8, 12, 16, 20]
_PAIR_A: Final = [i for i in range(5) for _ in range(i + 1, 5)]
_PAIR_B: Final = [j for i in range(5) for j in range(i + 1, 5)]
#: Smallest hand size divided by (shoulder widths): a missing hand (all zeros) gives 0, not NaN.
_MIN_HAND: Final = 0.05


def _norm(v: Tensor) -> Tensor:
    """Euclidean norm over the last axis, with a finite gradient at 0."""
    return (v * v).sum(dim=-1).add(1e-8).sqrt()


def _time_normalise(x: Tensor, valid: Tensor, out_len: int) -> tuple[Tensor, Tensor]:
    """Resample the real frames of x (B, L, F) (the first ``valid.sum(1)``) onto out_len.

    Position i reads i·(n−1)/(out_len−1) of a clip with n real frames (linear
    interpolation, only real frames read); a clip without a real frame stays all padding.
    Returns x (B, out_len, F) and its mask (B, out_len).
    """
    b, f = x.shape[0], x.shape[2]
    n = valid.sum(dim=1, keepdim=True).to(x.dtype)  # (B, 1)
    last = (n - 1.0).clamp(min=0.0)  # (B, 1)
    steps = torch.arange(out_len, dtype=x.dtype, device=x.device)[None] / max(out_len - 1, 1)
    pos = steps * last  # (B, out_len)
    lo = pos.floor()
    w = (pos - lo).unsqueeze(-1)  # (B, out_len, 1)
    hi = torch.minimum(lo + 1.0, last)
    lo_i = lo.long().unsqueeze(-1).expand(b, out_len, f)
    hi_i = hi.long().unsqueeze(-1).expand(b, out_len, f)
    out = x.gather(1, lo_i) * (1.0 - w) + x.gather(1, hi_i) * w  # (B, out_len, F)
    keep = (n > 0.5).expand(b, out_len)  # (B, out_len)
    return torch.where(keep.unsqueeze(-1), out, torch.zeros_like(out)), keep


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
        groups = hand_point_groups(spec) if (cfg.hand_relative or cfg.hand_shape) else []
        self.hands = len(groups)
        self.out_len = spec.max_len
        idx = [i for g in groups for i in g]
        self.register_buffer("hand_idx", torch.tensor(idx, dtype=torch.int64), persistent=False)
        cin = spec.num_features
        if cfg.hand_relative:
            cin += len(idx) * self.coords
        if cfg.hand_shape:
            cin += self.hands * (len(_PAIR_A) + len(_TIPS))
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

    def _hand_features(self, features: Tensor) -> list[Tensor]:
        """Per-frame hand-shape features of features (B, L, F): a list of (B, L, ·)."""
        cfg = self.config
        assert isinstance(cfg, CNN1DConfig)
        b, n, c = features.shape[0], features.shape[1], self.coords
        pts = features.reshape(b, n, self.points, self.channels)[..., :c]  # (B, L, P, C)
        hand_idx = self.hand_idx
        assert isinstance(hand_idx, Tensor)
        hand = pts.index_select(2, hand_idx).reshape(b, n, self.hands, 21, c)  # (B, L, H, 21, C)
        rel = hand - hand[:, :, :, :1]  # (B, L, H, 21, C) wrist-relative
        out: list[Tensor] = []
        size = None
        if cfg.hand_size_norm or cfg.hand_shape:
            knuckles = rel[:, :, :, _KNUCKLES]  # (B, L, H, 4, C)
            size = _norm(knuckles).mean(dim=-1).clamp(min=_MIN_HAND)  # (B, L, H)
        if cfg.hand_relative:
            r = rel / size[..., None, None] if (cfg.hand_size_norm and size is not None) else rel
            out.append(r.reshape(b, n, -1) * cfg.hand_scale)  # (B, L, H·21·C)
        if cfg.hand_shape and size is not None:
            tips = rel[:, :, :, _TIPS]  # (B, L, H, 5, C)
            a, z = tips[:, :, :, _PAIR_A], tips[:, :, :, _PAIR_B]
            dist = torch.cat([_norm(a - z), _norm(tips)], dim=-1)  # (B, L, H, 15)
            out.append((dist / size[..., None]).reshape(b, n, -1))  # (B, L, H·15)
        return out

    def forward(self, features: Tensor, mask: Tensor) -> Tensor:
        """Return logits (B, K) for features (B, L, F) and mask (B, L)."""
        self._check_inputs(features, mask)
        valid = valid_mask(mask)  # (B, L)
        x = features
        if self.hands:
            x = torch.cat([x, *self._hand_features(features)], dim=-1)  # (B, L, F')
        cfg = self.config
        assert isinstance(cfg, CNN1DConfig)
        if cfg.time_norm:
            x, valid = _time_normalise(x, valid, self.out_len)  # (B, max_len, F'), (B, max_len)
        keep = valid.unsqueeze(1).to(x.dtype)  # (B, 1, L)
        h = x.transpose(1, 2).contiguous()  # (B, F', L)
        for block in self.blocks:
            h = block(h * keep)  # (B, D, L)
        pooled = masked_mean(h.transpose(1, 2), valid)  # (B, D)
        logits: Tensor = self.classifier(self.head_drop(pooled))  # (B, K)
        return logits
