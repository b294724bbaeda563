"""Training subpackage (``pip install signrt[train]``); the only part of signrt that imports torch.

Datasets and the synthetic signer, augmentation, the model zoo, the trainer, evaluation,
ONNX export and quantisation.
"""

from __future__ import annotations

__all__: list[str] = []
