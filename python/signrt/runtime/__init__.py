"""Inference runtime: the model file and the engines that run it.

* :mod:`signrt.runtime.model`: the ONNX model file with its signrt metadata (FeatureSpec,
  labels, model info): :func:`load_model_file` reads and validates one,
  :func:`stamp_metadata` and :func:`save_onnx` write one.
* :mod:`signrt.runtime.engines`: ONNX Runtime engines (CPU, CUDA, TensorRT execution
  provider) behind one small protocol, ``run(features, mask) -> logits``, and
  :func:`create_engine` which picks one from ``device=``.
* :mod:`signrt.runtime.tensorrt`: native TensorRT engines (serialized engine cache,
  ``execute_async_v3``).

Nothing here imports onnxruntime, onnx or tensorrt at import time.
"""

from __future__ import annotations

from .model import ModelFile, load_model_file, save_onnx, stamp_metadata

__all__ = ["ModelFile", "load_model_file", "save_onnx", "stamp_metadata"]
