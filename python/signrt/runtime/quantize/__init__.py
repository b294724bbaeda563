"""Quantisation of model files (ONNX only): see :mod:`.graph`."""

from .graph import *  # noqa: F403
