"""Tiny real ONNX models for tests, built with onnx.helper (no torch, no files committed).

The main model is a masked-mean-pooling linear classifier:

    pooled[b] = sum_t mask[b, t] * features[b, t] / max(sum_t mask[b, t], 1)
    logits[b] = pooled[b] @ W + bias

:func:`numpy_logits` computes the same thing in NumPy, the oracle of the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from signrt.runtime.model import save_onnx, stamp_metadata
from signrt.spec import FeatureSpec, Normalize

OPSET = 17


def hand_spec(max_len: int = 16) -> FeatureSpec:
    """A small spec: the 21 right-hand points, raw x/y (no normalisation, no motion)."""
    return FeatureSpec(
        landmarks=tuple(range(522, 543)),
        coords=2,
        normalize=Normalize(kind="none", reference=None),
        max_len=max_len,
        motion_lags=(),
    )


def pooling_model(
    spec: FeatureSpec,
    labels: Sequence[str],
    weights: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    seed: int = 0,
    info: dict[str, Any] | None = None,
    stamp: bool = True,
    names: tuple[str, str, str] = ("features", "mask", "logits"),
    batch: int | str = "B",
    dims: tuple[int | None, int | None, int | None] = (None, None, None),
    mask_type: int = TensorProto.FLOAT,
    extra_output: bool = False,
) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """Build the pooling classifier; returns (model, W (F, K), bias (K,)).

    ``dims`` overrides the declared (L, F, K) of the graph's inputs/outputs (to build
    inconsistent files); ``names`` renames features/mask/logits; ``mask_type`` changes the
    mask's element type (a cast to float is inserted so the graph stays valid).
    """
    L, F, K = spec.max_len, spec.num_features, len(labels)
    rng = np.random.default_rng(seed)
    W = (rng.standard_normal((F, K)) if weights is None else weights).astype(np.float32)
    b = (rng.standard_normal(K) * 0.1 if bias is None else bias).astype(np.float32)
    dl, df, dk = (d if d is not None else v for d, v in zip(dims, (L, F, K), strict=True))
    fname, mname, oname = names

    nodes = []
    mask_f = mname
    if mask_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [mname], ["mask_f"], to=TensorProto.FLOAT))
        mask_f = "mask_f"
    nodes += [
        helper.make_node("Unsqueeze", [mask_f, "axis2"], ["m3"]),
        helper.make_node("Mul", [fname, "m3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["total"], keepdims=0),
        helper.make_node("ReduceSum", [mask_f, "axis1"], ["count"], keepdims=1),
        helper.make_node("Max", ["count", "one"], ["count1"]),
        helper.make_node("Div", ["total", "count1"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "W"], ["proj"]),
        helper.make_node("Add", ["proj", "bias"], [oname]),
    ]
    outputs = [helper.make_tensor_value_info(oname, TensorProto.FLOAT, [batch, dk])]
    if extra_output:
        nodes.append(helper.make_node("Identity", ["pooled"], ["pooled_out"]))
        outputs.append(helper.make_tensor_value_info("pooled_out", TensorProto.FLOAT, [batch, df]))
    graph = helper.make_graph(
        nodes,
        "signrt_test_pooling",
        [
            helper.make_tensor_value_info(fname, TensorProto.FLOAT, [batch, dl, df]),
            helper.make_tensor_value_info(mname, mask_type, [batch, dl]),
        ],
        outputs,
        initializer=[
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
            numpy_helper.from_array(W, "W"),
            numpy_helper.from_array(b, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    if stamp:
        meta = {"architecture": "test_pooling", "precision": "fp32"}
        meta.update(info or {})
        stamp_metadata(model, spec, labels, meta)
    return model, W, b


def write_pooling_model(path: Path, spec: FeatureSpec, labels: Sequence[str], **kw: Any
                        ) -> tuple[Path, np.ndarray, np.ndarray]:
    model, W, b = pooling_model(spec, labels, **kw)
    save_onnx(model, path)
    return path, W, b


def numpy_logits(features: np.ndarray, mask: np.ndarray, W: np.ndarray, b: np.ndarray
                 ) -> np.ndarray:
    f = features.astype(np.float64)
    m = mask.astype(np.float64)
    pooled = (f * m[..., None]).sum(axis=1) / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    return pooled @ W.astype(np.float64) + b.astype(np.float64)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def side_model(path: Path, max_len: int = 16, gain: float = 40.0) -> Path:
    """A classifier of where the right hand is: labels ("left", "right") by mean x < or > 0.5.

    With :func:`hand_spec` the features are raw x, y of the 21 right-hand points; the logit
    difference is ``2 * gain * (mean x - 0.5)`` in favour of "right".
    """
    spec = hand_spec(max_len)
    F = spec.num_features
    W = np.zeros((F, 2), dtype=np.float32)
    W[0::2, 1] = gain / 21.0  # x columns -> "right"
    W[0::2, 0] = -gain / 21.0
    bias = np.array([gain * 0.5, -gain * 0.5], dtype=np.float32)
    write_pooling_model(path, spec, ["left", "right"], weights=W, bias=bias)
    return path


def hand_frame(x: float | None, y: float = 0.5, *, left_x: float | None = None) -> np.ndarray:
    """A (543, 3) frame with the right hand centred at (x, y) (None: no right hand)."""
    frame = np.full((543, 3), np.nan, dtype=np.float32)
    offsets = np.linspace(-0.02, 0.02, 21, dtype=np.float32)
    if x is not None:
        frame[522:543, 0] = x + offsets
        frame[522:543, 1] = y + offsets
        frame[522:543, 2] = 0.0
    if left_x is not None:
        frame[468:489, 0] = left_x + offsets
        frame[468:489, 1] = y + offsets
        frame[468:489, 2] = 0.0
    return frame


# Small configurations of every architecture (export and bucket tests), their labels and data.
SMALL_MODELS: dict[str, dict[str, object]] = {
    "cnn_transformer": {"dim": 32, "stages": 1, "convs_per_stage": 1, "heads": 2,
                        "kernel_size": 5},
    "st_transformer": {"dim": 32, "depth": 1, "heads": 2},
    "attention_bilstm": {"part_dim": 16, "dim": 32, "depth": 1},
    "signbert": {"dim": 32, "depth": 1, "heads": 2},
    "spoter": {"dim": 32, "encoder_depth": 1, "decoder_depth": 1, "heads": 2},
    "cnn1d": {"dim": 32, "kernels": [5, 3]},
}  # fmt: skip
EXPORT_LABELS = ["sign00", "sign01", "sign02", "sign03"]
EXPORT_DATA = "synthetic:classes=4,signers=1,clips_per_class=2,seed=3"
