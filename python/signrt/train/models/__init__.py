"""The model zoo: six mask-aware, ONNX-exportable sign classifiers (DESIGN §4).

Every model maps ``features`` (B, L, F) float32 and ``mask`` (B, L) float32 (1 for a real
frame, 0 for padding; real frames first) to ``logits`` (B, K). Padding never changes the
logits, an all-zero mask gives finite logits, and each model exports to ONNX with a fixed L
and a dynamic batch.

Example:
    >>> from signrt import FeatureSpec
    >>> from signrt.train.models import build_model
    >>> model = build_model("cnn_transformer", FeatureSpec.preset("islr118"), 250)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ...errors import ModelError
from ...spec import FeatureSpec
from .attention_bilstm import AttentionBiLSTM, AttentionBiLSTMConfig
from .cnn1d import CNN1D, CNN1DConfig
from .cnn_transformer import CNNTransformer, CNNTransformerConfig
from .layers import ModelConfig, SignModel
from .signbert import SignBERT, SignBERTConfig
from .spoter import Spoter, SpoterConfig
from .st_transformer import STTransformer, STTransformerConfig

__all__ = [
    "ARCHITECTURES",
    "CNN1D",
    "AttentionBiLSTM",
    "AttentionBiLSTMConfig",
    "CNN1DConfig",
    "CNNTransformer",
    "CNNTransformerConfig",
    "ModelConfig",
    "STTransformer",
    "STTransformerConfig",
    "SignBERT",
    "SignBERTConfig",
    "SignModel",
    "Spoter",
    "SpoterConfig",
    "build_model",
    "make_config",
]

#: Architecture name → (config dataclass, module class).
ARCHITECTURES: dict[str, tuple[type[ModelConfig], type[SignModel]]] = {
    "cnn_transformer": (CNNTransformerConfig, CNNTransformer),
    "st_transformer": (STTransformerConfig, STTransformer),
    "attention_bilstm": (AttentionBiLSTMConfig, AttentionBiLSTM),
    "signbert": (SignBERTConfig, SignBERT),
    "spoter": (SpoterConfig, Spoter),
    "cnn1d": (CNN1DConfig, CNN1D),
}


def _entry(arch: str) -> tuple[type[ModelConfig], type[SignModel]]:
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ModelError(
            f"unknown architecture {arch!r}; available: {', '.join(sorted(ARCHITECTURES))}"
        ) from None


def make_config(arch: str, config: Mapping[str, Any] | ModelConfig | None = None) -> ModelConfig:
    """Return the config dataclass of ``arch`` built from a dict (defaults for missing keys).

    Raises:
        ModelError: For an unknown architecture, an unknown option or an invalid value.
    """
    config_cls, _ = _entry(arch)
    if isinstance(config, ModelConfig):
        if not isinstance(config, config_cls):
            raise ModelError(
                f"{arch} takes a {config_cls.__name__}, got a {type(config).__name__}"
            )
        return dataclasses.replace(config)
    return config_cls.from_dict(config)


def build_model(
    arch: str,
    spec: FeatureSpec,
    num_classes: int,
    config: Mapping[str, Any] | ModelConfig | None = None,
) -> SignModel:
    """Build an untrained model.

    Args:
        arch: A key of :data:`ARCHITECTURES`.
        spec: The FeatureSpec the model reads (F, L and the body-part groups come from it).
        num_classes: K, the number of logits.
        config: Options of the architecture (a dict as stored in checkpoints, or its config
            dataclass); missing options take their defaults.

    Returns:
        The model (``forward(features (B, L, F), mask (B, L)) -> logits (B, K)``).

    Raises:
        ModelError: For an unknown architecture or invalid options.
    """
    cfg = make_config(arch, config)
    _, module_cls = _entry(arch)
    return module_cls(spec, num_classes, cfg)
