r"""Give an exported model with a fixed time axis a dynamic one, with window-length buckets.

Developer tool. The bundled demo model (``python/signrt/_models/demo/``) was exported before
``signrt export`` learnt dynamic time axes and its checkpoint is not kept; its graph is the
dynamo exporter's, whose only dependence on L = max_len is the target shapes of its Reshape
nodes (``[-1, L, ...]``). This script, for each given file:

1. renames the fixed L of the ``features`` and ``mask`` inputs to the dynamic ``length``;
2. in every Reshape whose data input is (B, L, ...) with B dynamic (by ONNX shape
   inference on the original graph) and whose target shape is ``[-1, L, ...]``, writes
   ``[0, 0, ...]`` instead ("copy these dims of the input"); any other use of L (a
   constant of that length, a Reshape that moves L elsewhere) stops the script;
3. checks with ONNX Runtime, on the export's verification batch (synthetic-signer clips of
   the model's spec, one without a signer), that the new graph at L = max_len gives the old
   graph's logits bit for bit, and runs the export's own bucket check
   (:func:`signrt.train.export.check_buckets_inert`: clips that fit in several buckets give
   logits within 1e-5 at each of them and at max_len);
4. only then records the buckets (``buckets`` and ``export.time_axis`` in ``signrt.model``,
   as ``signrt export`` does) and writes the file in place, atomically.

Usage:
    python tools/demo_time_axis.py python/signrt/_models/demo/demo.onnx \
        python/signrt/_models/demo/demo.int8.onnx
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("demo_time_axis")

LENGTH = "length"


def _dims(vi: Any) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in vi.type.tensor_type.shape.dim]


def make_dynamic(model: Any, max_len: int) -> tuple[Any, int]:
    """A copy of ``model`` with a dynamic time axis; returns it and the Reshapes changed."""
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {vi.name: _dims(vi) for vi in
              [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    new = onnx.ModelProto()
    new.CopyFrom(model)
    g = new.graph
    for inp in g.input:
        if inp.name in ("features", "mask"):
            d = inp.type.tensor_type.shape.dim[1]
            if d.dim_value != max_len:
                raise SystemExit(f"input {inp.name} has dim 1 {_dims(inp)[1]}, expected {max_len}")
            d.Clear()
            d.dim_param = LENGTH
    inits = {t.name: t for t in g.initializer}
    changed = 0
    done: dict[str, Any] = {}  # shape constant -> its old value (shared by several Reshapes)
    for n in g.node:
        if n.op_type != "Reshape":
            continue
        target = inits.get(n.input[1])
        if target is None:
            raise SystemExit(f"Reshape {n.name}: its shape is computed, not a constant")
        a = numpy_helper.to_array(target)
        if n.input[1] in done:
            a = done[n.input[1]]
        elif max_len not in a.tolist():
            continue
        src = shapes.get(n.input[0])
        if (src is None or len(src) < 2 or not isinstance(src[0], str) or src[1] != max_len
                or a.tolist().count(max_len) != 1 or a[0] != -1 or a[1] != max_len):
            raise SystemExit(f"Reshape {n.name}: shape {a.tolist()} of input {src} does not keep "
                             f"a dynamic batch at dim 0 and L = {max_len} at dim 1")
        done[n.input[1]] = a
        b = a.copy()
        b[:2] = 0  # copy B and L from the input (ONNX Runtime refuses 0 together with -1)
        # 0 means "copy" only without allowzero (the old shape has no 0, so this changes
        # nothing else)
        for at in n.attribute:
            if at.name == "allowzero":
                at.i = 0
        target.CopyFrom(numpy_helper.from_array(b, target.name))
        changed += 1
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        if a.size <= 16 and a.dtype.kind in "iu" and max_len in a.reshape(-1).tolist():
            raise SystemExit(f"constant {t.name} = {a.tolist()} still holds L = {max_len}")
    for vi in list(g.value_info):  # stale fixed shapes would contradict the dynamic axis
        g.value_info.remove(vi)
    return new, changed


def run(path: Path) -> dict[str, Any]:
    """Convert one model file in place (module docstring); returns what was done."""
    import onnx
    import onnxruntime as ort

    from signrt.runtime.model import MODEL_KEY, load_model_file, save_onnx
    from signrt.train.export import (
        BUCKET_ATOL,
        check_buckets_inert,
        default_buckets,
        verification_batch,
    )

    mf = load_model_file(path)
    spec, L = mf.spec, mf.max_len
    if len(mf.buckets) > 1:
        log.info("%s already has buckets %s", path, list(mf.buckets))
        return {"path": str(path), "buckets": list(mf.buckets), "changed": 0}
    model = onnx.load(str(path))
    new, changed = make_dynamic(model, L)
    onnx.checker.check_model(new)
    feats, mask, source = verification_batch(spec)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1

    def logits(m: Any, rows: int | None = None) -> Any:
        sess = ort.InferenceSession(m.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        return sess.run(["logits"], {"features": feats[:rows], "mask": mask[:rows]})[0]

    old_l, new_l = logits(model), logits(new)
    if not np.array_equal(logits(model, 1), logits(new, 1)):
        raise SystemExit(f"{path}: logits at batch 1 changed")
    if not np.array_equal(old_l, new_l):
        raise SystemExit(f"{path}: logits at L = {L} changed by "
                         f"{float(np.abs(old_l - new_l).max()):.3g}")
    buckets = default_buckets(L)
    diff, clips, problem = check_buckets_inert(new.SerializeToString(), feats, mask, buckets)
    if problem is not None:
        raise SystemExit(f"{path}: padding is not inert: {problem}")
    meta = {p.key: p for p in new.metadata_props}
    info = json.loads(meta[MODEL_KEY].value)
    info["buckets"] = list(buckets)
    info.setdefault("export", {})["time_axis"] = {
        "buckets": list(buckets), "bucket_max_abs_diff": diff, "bucket_clips": clips,
        "bucket_tolerance": BUCKET_ATOL,
        "note": (f"made dynamic after export by tools/demo_time_axis.py ({changed} Reshape "
                 f"shapes [-1, {L}, ...] -> [0, 0, ...], copy the input's B and L); logits "
                 f"at L = {L} unchanged bit for bit on {source}"),
    }
    meta[MODEL_KEY].value = json.dumps(info, sort_keys=True, allow_nan=False)
    save_onnx(new, path)
    back = load_model_file(path)
    if tuple(back.buckets) != tuple(buckets):
        raise SystemExit(f"{path}: the written file lists buckets {back.buckets}")
    return {"path": str(path), "buckets": list(buckets), "changed": changed,
            "bucket_max_abs_diff": diff, "bucket_clips": clips}


def main(argv: list[str] | None = None) -> int:
    """Command line: convert every model file given."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for p in args.models:
        log.info("%s", run(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
