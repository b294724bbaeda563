"""signrt: sign-language recognition runtime for edge devices.

Landmark frames (MediaPipe Holistic, holistic-543 layout) become model features through a
Rust core that executes a :class:`FeatureSpec`; an ONNX Runtime or TensorRT engine turns
features into a sign label.

Example:
    >>> import signrt
    >>> spec = signrt.FeatureSpec.preset("islr118")
    >>> feats, mask = signrt.preprocess(clip, spec)      # (64, 708), (64,)
    >>> rec = signrt.load("model.onnx", device="auto")
    >>> rec.predict(clip).label

Heavy dependencies (onnxruntime, torch, mediapipe, tensorrt) are imported only by the parts
that need them, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import layouts
from ._lazy import lazy_module
from ._version import package_version
from .errors import (
    AllocationError,
    DataError,
    DeviceError,
    ModelError,
    ShapeError,
    SignrtError,
    SourceError,
    SpecError,
)
from .features import Preprocessor, preprocess, preprocess_batch, preprocess_reference
from .spec import FeatureSpec, Normalize

if TYPE_CHECKING:
    from .features import FeatureStream
    from .io import read_clip, write_clip
    from .recognizer import Recognizer, load
    from .results import Event, Prediction
    from .stream import Stream

__version__ = package_version()

__all__ = [
    "AllocationError",
    "DataError",
    "DeviceError",
    "Event",
    "FeatureSpec",
    "FeatureStream",
    "ModelError",
    "Normalize",
    "Prediction",
    "Preprocessor",
    "Recognizer",
    "ShapeError",
    "SignrtError",
    "SourceError",
    "SpecError",
    "Stream",
    "__version__",
    "layouts",
    "load",
    "preprocess",
    "preprocess_batch",
    "preprocess_reference",
    "read_clip",
    "write_clip",
]

# Names resolved on first access, so that `import signrt` stays light.
_LAZY: dict[str, str] = {
    "FeatureStream": ".features",
    "read_clip": ".io",
    "write_clip": ".io",
    "load": ".recognizer",
    "Recognizer": ".recognizer",
    "Prediction": ".results",
    "Event": ".results",
    "Stream": ".stream",
}


__getattr__, __dir__ = lazy_module(__name__, _LAZY, __all__)
