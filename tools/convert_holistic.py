r"""Convert MediaPipe's legacy Holistic TFLite models to ONNX (a developer tool).

The models are the ones bundled in the ``mediapipe==0.10.21`` wheel (Apache-2.0). The
converter is tf2onnx with TensorFlow, which conflict with the project's own environment, so
run this script from a separate virtual environment::

    python3 -m venv /tmp/conv && /tmp/conv/bin/pip install "tensorflow-cpu==2.15.1" \\
        "tf2onnx==1.16.1" "onnx==1.16.2" "numpy<2" onnxruntime opencv-python-headless
    /tmp/conv/bin/python tools/convert_holistic.py \\
        --mediapipe /path/to/site-packages/mediapipe --images ../shared/data/media

It writes the ONNX files to ``python/signrt/extract/_models/holistic/`` with ``MANIFEST.json``
(sha256 of every input and output file, tool versions, tensor names and shapes, and the
largest absolute difference between the TFLite interpreter and ONNX Runtime on real images)
and ``CONVERSION.md`` (the same as a table). Conversion is deterministic for fixed tool
versions up to tf2onnx's node naming (reruns differ by a few bytes, never in the
results, which the check records).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger("convert_holistic")

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "python" / "signrt" / "extract" / "_models" / "holistic"


@dataclass(frozen=True)
class ModelSpec:
    """One TFLite model of the legacy Holistic graph."""

    name: str  #: ONNX file stem
    source: str  #: path below mediapipe/modules
    value_range: tuple[float, float]  #: input range the graph feeds the model
    dynamic_batch: bool = False  #: make the batch axis symbolic (both hands in one call)
    drop_outputs: tuple[int, ...] = ()  #: TFLite outputs the graph never reads, pruned
    #: rewrite PRelu and channel padding for ONNX Runtime's CPU layout (where it pays:
    #: face_landmark 4x, hand_recrop 3x faster; face_detection_short_range's eleven channel
    #: pads cost as much as 1x1 convs as they save, so it keeps its graph)
    layout_rewrites: bool = False


MODELS = (
    ModelSpec("pose_detection", "pose_detection/pose_detection.tflite", (-1.0, 1.0)),
    # output 2 is the segmentation mask; the landmark graph never reads it, and its
    # decoder is half of the model's compute
    ModelSpec(
        "pose_landmark_full",
        "pose_landmark/pose_landmark_full.tflite",
        (0.0, 1.0),
        drop_outputs=(2,),
    ),
    ModelSpec(
        "hand_recrop",
        "holistic_landmark/hand_recrop.tflite",
        (0.0, 1.0),
        True,
        layout_rewrites=True,
    ),
    ModelSpec("hand_landmark_full", "hand_landmark/hand_landmark_full.tflite", (0.0, 1.0), True),
    ModelSpec(
        "face_detection_short_range",
        "face_detection/face_detection_short_range.tflite",
        (-1.0, 1.0),
    ),
    ModelSpec(
        "face_landmark", "face_landmark/face_landmark.tflite", (0.0, 1.0), layout_rewrites=True
    ),
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
VIDEO_SUFFIXES = (".mp4",)
#: An (H, W, 3) uint8 RGB image (OpenCV's stubs type its arrays as integer | floating).
Image = npt.NDArray[Any]


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shapes_from_flatbuffer(tf: Any) -> Any:
    """An Interpreter class for tf2onnx that reports no tensor details.

    tf2onnx asks the interpreter for every tensor's shape; on these MediaPipe models
    ``get_tensor_details`` crashes the process (TF 2.15, with or without XNNPACK). With no
    details tf2onnx takes the shapes stored in the flatbuffer, which are static and exact
    for all six models (the check below compares every output with the interpreter).
    """
    base = tf.lite.Interpreter

    class Interpreter(base):  # type: ignore[misc,valid-type]
        def get_tensor_details(self) -> list[dict[str, Any]]:
            return []

    return Interpreter


def _densify(values: npt.NDArray[Any], sparsity: Any, shape: list[int]) -> npt.NDArray[Any]:
    """Expand a TFLite sparse constant (TACO format, as the DENSIFY op does) to dense.

    Args:
        values: The stored non-zero values, in traversal order.
        sparsity: The tensor's ``SparsityParametersT``.
        shape: The dense shape.

    Returns:
        The dense array of ``shape``.
    """
    order = list(sparsity.traversalOrder)
    block_map = list(sparsity.blockMap) if sparsity.blockMap is not None else []
    rank = len(shape)
    blocks = {int(d): 1 for d in range(rank)}
    for k, d in enumerate(block_map):
        meta = sparsity.dimMetadata[order.index(rank + k)]
        blocks[int(d)] = int(meta.denseSize)
    dense = np.zeros(shape, dtype=values.dtype)
    idx = [0] * len(order)
    pos = 0

    def put() -> None:
        nonlocal pos
        expanded = [0] * len(order)
        for level, dim in enumerate(order):
            expanded[dim] = idx[level]
        orig = [expanded[d] * blocks[d] for d in range(rank)]
        for k, d in enumerate(block_map):
            orig[int(d)] += expanded[rank + k]
        dense[tuple(orig)] = values[pos]
        pos += 1

    def walk(level: int, prev: int) -> None:
        if level == len(order):
            put()
            return
        meta = sparsity.dimMetadata[level]
        if meta.format == 0:  # DENSE
            for i in range(int(meta.denseSize)):
                idx[level] = i
                walk(level + 1, prev * int(meta.denseSize) + i)
        else:  # SPARSE_CSR
            segments = meta.arraySegments.values
            indices = meta.arrayIndices.values
            for j in range(int(segments[prev]), int(segments[prev + 1])):
                idx[level] = int(indices[j])
                walk(level + 1, j)

    walk(0, 0)
    if pos != values.size:
        raise ValueError(f"sparse tensor: used {pos} of {values.size} stored values")
    return dense


def densified_copy(src: Path, dst: Path) -> int:
    """Write ``src`` with every DENSIFY op folded into a dense constant; return how many.

    tf2onnx cannot read sparse constants (``pose_detection.tflite`` stores 38 of its fp16
    weights sparse); the dense copy computes the same function.
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.read_model(str(src))
    graph = model.subgraphs[0]
    dtypes = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16}
    keep = []
    folded = 0
    for op in graph.operators:
        if model.operatorCodes[op.opcodeIndex].builtinCode != schema.BuiltinOperator.DENSIFY:
            keep.append(op)
            continue
        s_t = graph.tensors[op.inputs[0]]
        d_t = graph.tensors[op.outputs[0]]
        stored = np.frombuffer(bytes(model.buffers[s_t.buffer].data), dtype=dtypes[s_t.type])
        dense = _densify(stored, s_t.sparsity, [int(v) for v in s_t.shape])
        model.buffers[s_t.buffer].data = np.frombuffer(dense.tobytes(), dtype=np.uint8)
        s_t.sparsity = None
        d_t.buffer = s_t.buffer
        folded += 1
    graph.operators = keep
    fu.write_model(model, str(dst))
    return folded


def make_batch_dynamic(model: Any) -> int:
    """Give a converted batch-1 model a symbolic batch axis; return the nodes changed.

    tf2onnx writes the TFLite shapes, batch 1, into the graph's inputs, outputs, Reshape
    constants and Slice ends; a leading 1 in a Reshape shape becomes -1, a Slice end of 1
    on the batch axis becomes unbounded. :func:`check` verifies
    that a batch of two equals two single runs.
    """
    from onnx import numpy_helper

    for v in list(model.graph.input) + list(model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "batch"
    inits = {i.name: i for i in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            init = inits[node.input[1]]
            arr = numpy_helper.to_array(init).copy()
            if arr.size and arr[0] == 1:
                arr[0] = -1
                init.CopyFrom(numpy_helper.from_array(arr, init.name))
                changed += 1
        elif node.op_type == "Slice" and len(node.input) > 3 and node.input[3] in inits:
            # tf2onnx's channel padding slices every axis, the batch axis to end 1
            ends = inits[node.input[2]]
            axes = numpy_helper.to_array(inits[node.input[3]])
            arr = numpy_helper.to_array(ends).copy()
            hit = np.nonzero(axes == 0)[0]
            if hit.size and arr[hit[0]] == 1:
                arr[hit[0]] = np.iinfo(np.int64).max
                ends.CopyFrom(numpy_helper.from_array(arr, ends.name))
                changed += 1
    return changed


def _channels(model: Any) -> dict[str, int]:
    """Axis-1 size of every 4-D tensor of ``model`` whose shape ONNX shape inference knows."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    out = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            out[v.name] = int(dims[1].dim_value)
    return out


def _drop_unused_initializers(model: Any) -> None:
    used = {i for node in model.graph.node for i in node.input}
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)


def rewrite_prelu(model: Any) -> int:
    """Replace each per-channel PRelu by two depthwise 1x1 convs and an Add; return how many.

    ``PRelu(x, s) = x + (1 - s) * Relu(-x)``, exactly: ``x`` where ``x >= 0``, ``s x``
    elsewhere. ONNX Runtime's CPU layout pass (NCHWc) has no PRelu, so each one leaves the
    blocked layout and back (two reorders) and runs as a generic broadcast op: in
    ``face_landmark`` and ``hand_recrop`` the 23 and 13 PRelus took half of the time. The
    depthwise convs (weights -1, then 1 - s; the Relu fuses into the first, the Add into
    the second) stay in NCHWc. Only a PRelu over a 4-D tensor with a constant slope of one
    value per axis-1 channel is rewritten.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    channels = _channels(model)
    nodes = []
    done = 0
    for node in graph.node:
        slope = inits.get(node.input[1]) if node.op_type == "PRelu" else None
        c = channels.get(node.input[0]) if slope is not None else None
        if slope is None or c is None:
            nodes.append(node)
            continue
        s = numpy_helper.to_array(slope).astype(np.float32)
        if s.size != c or s.ndim not in (3, 4) or s.shape[-3] != c:
            nodes.append(node)
            continue
        x, y, tag = node.input[0], node.output[0], f"{node.name}__prelu{done}"
        neg = numpy_helper.from_array(np.full((c, 1, 1, 1), -1.0, np.float32), f"{tag}_neg_w")
        scale = numpy_helper.from_array((1.0 - s.reshape(c, 1, 1, 1)), f"{tag}_scale_w")
        graph.initializer.extend([neg, scale])
        dw: dict[str, Any] = {"group": c, "kernel_shape": [1, 1]}
        nodes += [
            helper.make_node("Conv", [x, neg.name], [f"{tag}_negx"], name=f"{tag}_neg", **dw),
            helper.make_node("Relu", [f"{tag}_negx"], [f"{tag}_relu"], name=f"{tag}_relu"),
            helper.make_node(
                "Conv", [f"{tag}_relu", scale.name], [f"{tag}_scaled"], name=f"{tag}_scale", **dw
            ),
            helper.make_node("Add", [x, f"{tag}_scaled"], [y], name=f"{tag}_add"),
        ]
        done += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return done


def rewrite_channel_pad(model: Any) -> int:
    """Replace each zero padding of axis 1 alone by a 1x1 conv; return how many.

    BlazeFace-style residual blocks pad the skip path's channels with zeros (tf2onnx: a
    ``Pad`` of axis 1 of the NCHW tensor). ONNX Runtime's NCHWc pass keeps no ``Pad``, so
    every residual ``Add`` after one, and every block downstream of it, leaves the blocked
    layout. A 1x1 conv with weights ``[I; 0]`` (C -> C + extra) computes the same tensor
    exactly (products with 1 and 0) and stays in NCHWc.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    channels = _channels(model)
    nodes = []
    done = 0
    for node in graph.node:
        c = channels.get(node.input[0]) if node.op_type == "Pad" else None
        pads = inits.get(node.input[1]) if c is not None and len(node.input) > 1 else None
        value = node.input[2] if len(node.input) > 2 else ""
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        zero = value == "" or (
            value in inits and float(numpy_helper.to_array(inits[value]).reshape(-1)[0]) == 0.0
        )
        p = numpy_helper.to_array(pads).tolist() if pads is not None else []
        if (
            c is None
            or len(p) != 8
            or mode != b"constant"
            or not zero
            or len(node.input) > 3
            or p[5] <= 0
            or any(v != 0 for k, v in enumerate(p) if k != 5)
        ):
            nodes.append(node)
            continue
        w = np.zeros((c + p[5], c, 1, 1), np.float32)  # (C + extra, C, 1, 1)
        w[np.arange(c), np.arange(c)] = 1.0
        init = numpy_helper.from_array(w, f"{node.name}__chpad{done}_w")
        graph.initializer.append(init)
        conv = helper.make_node("Conv", [node.input[0], init.name], [node.output[0]])
        conv.name = f"{node.name}__chpad"
        conv.attribute.append(helper.make_attribute("kernel_shape", [1, 1]))
        nodes.append(conv)
        done += 1
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(model)
    return done


def prune_outputs(model: Any, keep: list[str]) -> Any:
    """Remove the graph outputs not in ``keep`` and every node only they need."""
    import onnx

    graph = model.graph
    needed = set(keep)
    nodes = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            nodes.append(node)
            needed.update(i for i in node.input if i)
    nodes.reverse()
    outputs = [o for o in graph.output if o.name in keep]
    inits = [i for i in graph.initializer if i.name in needed]
    infos = [v for v in graph.value_info if v.name in needed]
    new_graph = onnx.helper.make_graph(
        nodes, graph.name, list(graph.input), outputs, initializer=inits, value_info=infos
    )
    pruned = onnx.helper.make_model(
        new_graph, opset_imports=list(model.opset_import), producer_name=model.producer_name
    )
    pruned.ir_version = model.ir_version
    pruned.doc_string = model.doc_string
    pruned.metadata_props.extend(model.metadata_props)
    return pruned


def load_images(folder: Path, per_video: int = 4) -> list[tuple[str, Image]]:
    """Real RGB images for the checks: the stills and a few frames of each video."""
    import cv2

    out: list[tuple[str, Image]] = []
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is not None:
                out.append((path.name, bgr[:, :, ::-1].copy()))
        elif suffix in VIDEO_SUFFIXES:
            cap = cv2.VideoCapture(str(path))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 1
            for k in range(per_video):
                cap.set(cv2.CAP_PROP_POS_FRAMES, (k * n) // per_video)
                ok, bgr = cap.read()
                if ok:
                    out.append((f"{path.name}#{(k * n) // per_video}", bgr[:, :, ::-1].copy()))
            cap.release()
    if not out:
        raise SystemExit(f"no images or videos found in {folder}")
    return out


def crops(rgb: Image, size: tuple[int, int]) -> list[Image]:
    """The whole image, letterboxed, and two square crops (centre and upper half), resized."""
    import cv2

    h, w = rgb.shape[:2]
    side = min(h, w)
    views = [
        rgb,
        rgb[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2],
        rgb[: side // 2, (w - side // 2) // 2 : (w + side // 2) // 2],
    ]
    out: list[Image] = []
    for v in views:
        out.append(cv2.resize(v, size, interpolation=cv2.INTER_AREA))
    return out


def to_tensor(rgb: Image, value_range: tuple[float, float]) -> npt.NDArray[np.float32]:
    """(H, W, 3) uint8 -> (1, H, W, 3) float32 in ``value_range`` (MediaPipe's transform)."""
    lo, hi = value_range
    x = rgb.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    return x[None]


def convert(spec: ModelSpec, mp_dir: Path, out_dir: Path, opset: int) -> dict[str, Any]:
    """Convert one model; return its manifest entry (without the check)."""
    import onnx
    import tensorflow as tf
    from tf2onnx import convert as tfconvert
    from tf2onnx import tflite_utils

    src = mp_dir / "modules" / spec.source
    if not src.is_file():
        raise SystemExit(f"{src} not found: pass --mediapipe pointing to mediapipe==0.10.21")
    original = tflite_utils.tf.lite.Interpreter
    work = out_dir / f".{spec.name}.dense.tflite"
    folded = densified_copy(src, work)
    if folded:
        log.info("  folded %d sparse constants (DENSIFY) into dense ones", folded)
    tflite_utils.tf.lite.Interpreter = _shapes_from_flatbuffer(tf)
    try:
        model, _ = tfconvert.from_tflite(str(work), opset=opset)
    finally:
        tflite_utils.tf.lite.Interpreter = original
        work.unlink(missing_ok=True)
    model.producer_name = "signrt tools/convert_holistic.py (tf2onnx)"
    model.doc_string = (
        f"MediaPipe {spec.source} (mediapipe==0.10.21, Apache-2.0), converted with tf2onnx"
    )
    meta = {
        "source": f"mediapipe==0.10.21:mediapipe/modules/{spec.source}",
        "source_sha256": sha256(src),
        "license": "Apache-2.0 (Copyright The MediaPipe Authors)",
    }
    for key, value in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = f"signrt.{key}", value
    if spec.dynamic_batch:
        log.info("  batch axis made symbolic (%d Reshapes)", make_batch_dynamic(model))
    if spec.drop_outputs:
        keep = [o.name for k, o in enumerate(model.graph.output) if k not in spec.drop_outputs]
        model = prune_outputs(model, keep)
        log.info("  pruned outputs %s (kept %s)", list(spec.drop_outputs), keep)
    rewrites = {"prelu": 0, "channel_pad": 0}
    if spec.layout_rewrites:
        rewrites = {"prelu": rewrite_prelu(model), "channel_pad": rewrite_channel_pad(model)}
        log.info("  rewritten for ONNX Runtime's CPU layout: %s", rewrites)
    onnx.checker.check_model(model)
    dst = out_dir / f"{spec.name}.onnx"
    dst.write_bytes(model.SerializeToString())

    def info(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            dims = [
                d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in v.type.tensor_type.shape.dim
            ]
            out.append({"name": v.name, "shape": dims})
        return out

    return {
        "name": spec.name,
        "source": meta["source"],
        "source_sha256": meta["source_sha256"],
        "source_bytes": src.stat().st_size,
        "onnx": dst.name,
        "onnx_sha256": sha256(dst),
        "onnx_bytes": dst.stat().st_size,
        "sparse_constants_folded": folded,
        "layout_rewrites": rewrites,
        "precision": "fp32 compute (weights as stored in the TFLite file)",
        "input_range": list(spec.value_range),
        "inputs": info(model.graph.input),
        "outputs": info(model.graph.output),
    }


def check(
    spec: ModelSpec, mp_dir: Path, onnx_path: Path, images: list[tuple[str, Image]]
) -> dict[str, Any]:
    """Run TFLite and ONNX Runtime on the same real inputs; report the largest differences."""
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(str(mp_dir / "modules" / spec.source))
    interp.allocate_tensors()
    in_det = interp.get_input_details()[0]
    out_det = [d for k, d in enumerate(interp.get_output_details()) if k not in spec.drop_outputs]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    _, h, w, _ = in_det["shape"]
    batch = sess.get_inputs()[0].shape[0]
    batch_diff = 0.0
    max_abs = [0.0] * len(out_det)
    max_ref = [0.0] * len(out_det)
    n = 0
    for _, rgb in images:
        for view in crops(rgb, (int(w), int(h))):
            x = to_tensor(view, spec.value_range)
            interp.set_tensor(in_det["index"], x)
            interp.invoke()
            ref = [interp.get_tensor(d["index"]) for d in out_det]
            got = sess.run(out_names, {in_name: x})
            for k, (r, g) in enumerate(zip(ref, got, strict=True)):
                g = g.reshape(r.shape)
                max_abs[k] = max(max_abs[k], float(np.max(np.abs(r - g))))
                max_ref[k] = max(max_ref[k], float(np.max(np.abs(r))))
            n += 1
        if not isinstance(batch, int):  # symbolic batch: two at once == one by one
            pair = np.concatenate([x, x[:, ::-1]])
            both = sess.run(out_names, {in_name: pair})
            singles = [sess.run(out_names, {in_name: pair[i : i + 1]}) for i in range(2)]
            for k, b in enumerate(both):
                for i in range(2):
                    batch_diff = max(batch_diff, float(np.max(np.abs(b[i] - singles[i][k][0]))))
    return {
        "inputs_checked": n,
        "batch2_vs_single_max_abs_diff": batch_diff if not isinstance(batch, int) else None,
        "outputs": [
            {
                "tflite_name": d["name"],
                "onnx_name": o,
                "shape": [int(s) for s in d["shape"]],
                "max_abs_diff": a,
                "max_abs_value": m,
            }
            for d, o, a, m in zip(out_det, out_names, max_abs, max_ref, strict=True)
        ],
    }


def write_markdown(manifest: dict[str, Any], path: Path) -> None:
    """Write CONVERSION.md: sizes, checksums and the TFLite-vs-ONNX check."""
    lines = [
        "# Holistic models: TFLite to ONNX conversion record",
        "",
        "Written by `tools/convert_holistic.py`; do not edit by hand. Sources: the TFLite",
        "models bundled in `mediapipe==0.10.21` (Apache-2.0, see `LICENSE`). Every model",
        "computes in fp32; the TensorRT execution provider builds fp16 engines from them.",
        "",
        f"Tools: {', '.join(f'{k} {v}' for k, v in manifest['tools'].items())}.",
        f"Check inputs: {manifest['check_images']} real images/frames, each as 3 views.",
        "",
        "Changes to the graphs (none to the weights): `pose_detection` stores sparse fp16",
        "constants, expanded to dense before conversion; `pose_landmark_full` loses its",
        "segmentation output and the decoder only it needs (half of the model's compute);",
        "`hand_recrop` and `hand_landmark_full` get a symbolic batch axis (both hands in one",
        "call; a batch of two is checked against two single runs). For ONNX Runtime's CPU",
        "layout pass (NCHWc), in `hand_recrop` and `face_landmark` each per-channel `PRelu`",
        "becomes `x + (1 - s) * Relu(-x)` (two",
        "depthwise 1x1 convs and an `Add`) and each zero padding of the channel axis a 1x1",
        "conv with `[I; 0]` weights: the same function, no layout round trips",
        "(`layout_rewrites` in the manifest; the check below covers the rewritten graphs).",
        "",
        "| model | TFLite bytes | ONNX bytes | output | shape | max abs diff | max abs value |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for m in manifest["models"]:
        for k, o in enumerate(m["check"]["outputs"]):
            first = k == 0
            lines.append(
                f"| {m['name'] if first else ''} | {m['source_bytes'] if first else ''} "
                f"| {m['onnx_bytes'] if first else ''} | {o['onnx_name']} | {o['shape']} "
                f"| {o['max_abs_diff']:.3g} | {o['max_abs_value']:.3g} |"
            )
    lines += ["", "| file | sha256 |", "|---|---|"]
    for m in manifest["models"]:
        lines.append(f"| {m['source']} | `{m['source_sha256']}` |")
        lines.append(f"| {m['onnx']} | `{m['onnx_sha256']}` |")
    batch = [
        f"{m['name']} {m['check']['batch2_vs_single_max_abs_diff']:.3g}"
        for m in manifest["models"]
        if m["check"].get("batch2_vs_single_max_abs_diff") is not None
    ]
    if batch:
        lines += ["", f"Batch of two vs single runs, max abs diff: {', '.join(batch)}."]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--mediapipe",
        type=Path,
        default=None,
        help="the mediapipe package folder of an installed mediapipe==0.10.21",
    )
    ap.add_argument(
        "--images",
        type=Path,
        default=None,
        help="folder of real images/videos for the TFLite-vs-ONNX check",
    )
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="NAME",
        help="convert only these models; the others keep their manifest entries",
    )
    ap.add_argument(
        "--markdown-only",
        action="store_true",
        help="only rewrite CONVERSION.md from an existing MANIFEST.json",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.markdown_only:
        manifest = json.loads((args.out / "MANIFEST.json").read_text())
        write_markdown(manifest, args.out / "CONVERSION.md")
        return 0
    if args.mediapipe is None or args.images is None:
        ap.error("--mediapipe and --images are required to convert")

    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    args.out.mkdir(parents=True, exist_ok=True)
    images = load_images(args.images)
    models = []
    previous: dict[str, Any] = {}
    if args.only:
        unknown = set(args.only) - {m.name for m in MODELS}
        if unknown:
            ap.error(f"unknown model(s) {sorted(unknown)}; choose from {[m.name for m in MODELS]}")
        old = json.loads((args.out / "MANIFEST.json").read_text())
        previous = {m["name"]: m for m in old["models"]}
    for spec in MODELS:
        if args.only and spec.name not in args.only:
            models.append(previous[spec.name])
            continue
        log.info("converting %s", spec.source)
        entry = convert(spec, args.mediapipe, args.out, args.opset)
        entry["check"] = check(spec, args.mediapipe, args.out / entry["onnx"], images)
        for o in entry["check"]["outputs"]:
            log.info(
                "  %-24s max abs diff %.3g (max |value| %.3g)",
                o["onnx_name"],
                o["max_abs_diff"],
                o["max_abs_value"],
            )
        models.append(entry)
    manifest = {
        "mediapipe": "0.10.21",
        "opset": args.opset,
        "tools": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "tf2onnx": tf2onnx.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__,
        },
        "check_images": len(images),
        "check_image_names": [name for name, _ in images],
        "models": models,
    }
    (args.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_markdown(manifest, args.out / "CONVERSION.md")
    log.info("wrote %d models to %s", len(models), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
