"""Building blocks shared by the model zoo: mask helpers, attention, pooling, part gathering.

Every block here is *mask-aware* and *export-friendly*:

* padding frames never influence real frames: attention keys are masked, pooling is masked,
  convolutions see zeros in padded frames (so a padded clip behaves exactly like the same
  clip zero-padded at its end);
* masked attention scores are *replaced* (``torch.where``) by a large finite negative value
  rather than ``-inf``, so that a fully masked row (an all-zero mask: no signer) still gives
  finite, uniform weights instead of NaN, and the constant fits in float16;
* only plain tensor operations that the ONNX exporters translate one to one (MatMul, Gemm,
  Softmax, Where, Gather, Conv, LayerNormalization), so that INT8 Q/DQ and FP16 conversion
  find the operators they know.

Shapes in comments: B batch, L frames, D model width, H heads, G body parts, F features.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ...errors import ModelError
from ...spec import FeatureSpec

__all__ = [
    "MASK_FILL",
    "AttentionPool",
    "DropPath",
    "FeedForward",
    "ModelConfig",
    "MultiHeadAttention",
    "PartSplitter",
    "SignModel",
    "TransformerBlock",
    "init_weights",
    "masked_mean",
    "masked_softmax",
    "valid_mask",
    "zero_padding",
]

#: Score given to masked attention keys: exp() of it underflows to exactly 0 next to any
#: real score, it is finite in float16, and a fully masked row stays uniform (no NaN).
MASK_FILL = -1.0e4

_C = TypeVar("_C", bound="ModelConfig")


# --------------------------------------------------------------------------- configs
@dataclasses.dataclass
class ModelConfig:
    """Base of the architecture configs: a dataclass with a dict round trip."""

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a plain, JSON-compatible dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[_C], data: Mapping[str, Any] | None = None) -> _C:
        """Build a config from a dict; missing keys take their defaults.

        Raises:
            ModelError: On a key the config does not have or an invalid value.
        """
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            raise ModelError(
                f"{cls.__name__}: unknown option(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        try:
            return cls(**data)
        except TypeError as exc:  # pragma: no cover - guarded by the key check above
            raise ModelError(f"{cls.__name__}: {exc}") from exc

    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ModelError(f"{type(self).__name__}: {message}")

    def _check_common(self) -> None:
        """The checks every config shares: rates in [0, 1), sizes >= 1, heads divide dim."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith(("dropout", "drop_path")) or f.name == "drop_path_rate":
                self._require(0.0 <= float(value) < 1.0, f"{f.name} must be in [0, 1)")
            elif isinstance(value, int) and not isinstance(value, bool):
                self._require(value >= 1 or f.name.endswith("depth"), f"{f.name} must be >= 1")
        heads, dim = getattr(self, "heads", None), getattr(self, "dim", None)
        if heads is not None and dim is not None:
            self._require(dim % heads == 0, "dim must be divisible by heads")


class SignModel(nn.Module):
    """Base of the architectures: ``forward(features (B, L, F), mask (B, L)) -> (B, K)``.

    Attributes:
        spec: The FeatureSpec the model reads.
        num_classes: K, the number of logits.
        config: The architecture's config dataclass.
    """

    arch: str = ""

    def __init__(self, spec: FeatureSpec, num_classes: int, config: ModelConfig) -> None:
        super().__init__()
        if num_classes < 1:
            raise ModelError(f"num_classes must be >= 1, got {num_classes}")
        self.spec = spec
        self.num_classes = int(num_classes)
        self.config = config

    def num_parameters(self) -> int:
        """Return the number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check_inputs(self, features: Tensor, mask: Tensor) -> None:
        if torch.jit.is_tracing():  # type: ignore[attr-defined,no-untyped-call,unused-ignore]
            return
        if features.dim() != 3 or features.shape[-1] != self.spec.num_features:
            raise ModelError(
                f"features must be (B, L, {self.spec.num_features}), got {tuple(features.shape)}"
            )
        if features.shape[1] > self.spec.max_len:
            raise ModelError(
                f"features have {features.shape[1]} frames, the model takes at most "
                f"{self.spec.max_len}"
            )
        if mask.shape != features.shape[:2]:
            raise ModelError(
                f"mask must be (B, L) = {tuple(features.shape[:2])}, got {tuple(mask.shape)}"
            )


# ---------------------------------------------------------------------- mask helpers
def valid_mask(mask: Tensor) -> Tensor:
    """Return the boolean frame mask (B, L) of a float mask (B, L) (1 real, 0 padding)."""
    return mask > 0.5


def zero_padding(x: Tensor, valid: Tensor) -> Tensor:
    """Replace padded frames by zeros (NaN and inf included).

    Args:
        x: (B, L, ...) frame values.
        valid: (B, L) boolean frame mask.

    Returns:
        x with every padded frame zero, same shape.
    """
    cond = valid.reshape(valid.shape + (1,) * (x.dim() - 2))  # (B, L, 1, ...)
    return torch.where(cond, x, 0.0)


def masked_mean(x: Tensor, valid: Tensor) -> Tensor:
    """Mean over the real frames; zeros where a clip has no real frame.

    Args:
        x: (B, L, D) frame vectors (padded frames may hold anything finite).
        valid: (B, L) boolean frame mask.

    Returns:
        (B, D) means.
    """
    w = valid.to(x.dtype).unsqueeze(-1)  # (B, L, 1)
    total = torch.where(valid.unsqueeze(-1), x, 0.0).sum(dim=1)  # (B, D)
    count = w.sum(dim=1).clamp(min=1.0)  # (B, 1)
    return total / count


def masked_softmax(scores: Tensor, key_valid: Tensor) -> Tensor:
    """Softmax over the last axis with masked entries replaced by :data:`MASK_FILL`.

    Args:
        scores: (..., Lk) scores.
        key_valid: boolean, broadcastable to ``scores``.

    Returns:
        Weights of the same shape; a fully masked row is uniform (finite).
    """
    filled = torch.where(key_valid, scores, MASK_FILL)
    return torch.softmax(filled, dim=-1)


# --------------------------------------------------------------------------- blocks
class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        """Scale-and-drop the branch ``x`` (B, ...) in training mode; identity otherwise."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * noise / keep


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention with a key mask, written out op by op.

    Written without ``nn.MultiheadAttention``/SDPA so that the exported graph is plain
    MatMul/Softmax (quantisable, no fused kernels that an opset lacks) and so that a fully
    masked row stays finite.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ModelError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor | None = None, key_valid: Tensor | None = None
                ) -> Tensor:
        """Attend from ``x`` to ``context`` (self-attention when it is None).

        Args:
            x: (N, Lq, D) queries.
            context: (N, Lk, D) keys/values, default ``x``.
            key_valid: (N, Lk) boolean key mask, or None for no mask.

        Returns:
            (N, Lq, D).
        """
        ctx = x if context is None else context
        n, lq, d = x.shape
        lk = ctx.shape[1]
        h, hd = self.heads, self.head_dim
        q = self.q(x).reshape(n, lq, h, hd).transpose(1, 2)  # (N, H, Lq, hd)
        kv = self.kv(ctx).reshape(n, lk, 2, h, hd)  # (N, Lk, 2, H, hd)
        k = kv[:, :, 0].transpose(1, 2)  # (N, H, Lk, hd)
        v = kv[:, :, 1].transpose(1, 2)  # (N, H, Lk, hd)
        scores = torch.matmul(q * self.scale, k.transpose(-1, -2))  # (N, H, Lq, Lk)
        if key_valid is None:
            attn = torch.softmax(scores, dim=-1)
        else:
            attn = masked_softmax(scores, key_valid[:, None, None, :])
        attn = self.drop(attn)
        y = torch.matmul(attn, v)  # (N, H, Lq, hd)
        y = y.transpose(1, 2).reshape(n, lq, d)  # (N, Lq, D)
        out: Tensor = self.out(y)
        return out


class FeedForward(nn.Module):
    """Position-wise MLP: Linear → activation → dropout → Linear."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0, act: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act: nn.Module = nn.SiLU() if act == "silu" else nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Map (..., D) to (..., D)."""
        y: Tensor = self.fc2(self.drop(self.act(self.fc1(x))))
        return y


class TransformerBlock(nn.Module):
    """Pre-norm transformer encoder block with drop-path on both residual branches."""

    def __init__(
        self,
        dim: int,
        heads: int,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        act: str = "gelu",
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, int(dim * mlp_ratio), dropout, act)
        self.drop = nn.Dropout(dropout)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor, key_valid: Tensor | None = None) -> Tensor:
        """Map (N, L, D) to (N, L, D); ``key_valid`` (N, L) masks padded frames as keys."""
        x = x + self.drop_path(self.drop(self.attn(self.norm1(x), key_valid=key_valid)))
        x = x + self.drop_path(self.drop(self.ffn(self.norm2(x))))
        return x


class AttentionPool(nn.Module):
    """Additive attention pooling over frames: score_t = w·tanh(W x_t), masked softmax."""

    def __init__(self, dim: int, hidden: int | None = None) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden or dim)
        self.score = nn.Linear(hidden or dim, 1)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Pool (B, L, D) to (B, D) over the frames where ``valid`` (B, L) is true."""
        s = self.score(torch.tanh(self.proj(x))).squeeze(-1)  # (B, L)
        w = masked_softmax(s, valid).unsqueeze(-1)  # (B, L, 1)
        x = torch.where(valid.unsqueeze(-1), x, 0.0)  # no NaN*0 leaks
        return (w * x).sum(dim=1)  # (B, D)


class PartSplitter(nn.Module):
    """Split a feature row into body-part blocks (FeatureSpec.part_groups order).

    Columns are first reordered into part order with one Gather (skipped when the spec
    already lists its points part by part), then sliced per part.

    Attributes:
        parts: Part names, in order.
        widths: Feature columns of each part (points × channels).
    """

    def __init__(self, spec: FeatureSpec) -> None:
        super().__init__()
        groups = spec.part_groups()
        c = spec.channels
        cols: list[int] = []
        self.parts: list[str] = list(groups)
        self.widths: list[int] = []
        for positions in groups.values():
            for p in positions:
                cols.extend(range(p * c, (p + 1) * c))
            self.widths.append(len(positions) * c)
        self.reorder = cols != list(range(spec.num_features))
        self.columns: Tensor
        self.register_buffer("columns", torch.tensor(cols, dtype=torch.long), persistent=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Split (..., F) into one (..., width_g) tensor per part."""
        if self.reorder:
            x = torch.index_select(x, -1, self.columns)  # (..., F) in part order
        return list(torch.split(x, self.widths, dim=-1))


def init_weights(module: nn.Module) -> None:
    """Truncated-normal Linear/Conv weights, zero biases, unit LayerNorm (ViT-style)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
