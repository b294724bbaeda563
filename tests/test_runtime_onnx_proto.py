"""The protobuf reader of the model file (signrt.runtime.onnx_proto) against onnx itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from helpers_models import hand_spec, pooling_model, write_pooling_model  # noqa: E402
from signrt.errors import ModelError  # noqa: E402
from signrt.runtime import model as model_mod  # noqa: E402
from signrt.runtime.onnx_proto import (  # noqa: E402
    ELEM_FLOAT,
    read_onnx_summary,
    type_name,
)

LABELS = ["a", "b", "c"]


def test_summary_matches_onnx(tmp_path: Path) -> None:
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS, seed=1)
    proto = onnx.load(str(path))
    got = read_onnx_summary(path.read_bytes())
    assert got.metadata == {p.key: p.value for p in proto.metadata_props}
    for mine, theirs in ((got.inputs, proto.graph.input), (got.outputs, proto.graph.output)):
        assert [a.name for a in mine] == [v.name for v in theirs]
        for a, v in zip(mine, theirs, strict=True):
            t = v.type.tensor_type
            assert a.elem_type == t.elem_type
            want = tuple(
                d.dim_value if d.HasField("dim_value") else d.dim_param or None
                for d in t.shape.dim
            )
            assert a.dims == want


def test_initializer_inputs_are_left_out_and_negative_dims_decode() -> None:
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["B", None])],
        initializer=[w],
    )  # fmt: skip
    data = helper.make_model(graph).SerializeToString()
    got = read_onnx_summary(data)
    assert [a.name for a in got.inputs] == ["x"]
    assert got.inputs[0].dims == (-1, 2)
    assert got.outputs[0].dims == ("B", None)
    assert type_name(got.outputs[0].elem_type) == "tensor(int64)"
    assert type_name(ELEM_FLOAT) == "tensor(float)"


@pytest.mark.parametrize("cut", [1, 7, 100, -1])
def test_truncated_bytes_raise(tmp_path: Path, cut: int) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS)
    data = model.SerializeToString()
    with pytest.raises(ModelError):
        read_onnx_summary(data[:cut])


def test_no_graph_raises() -> None:
    model = helper.make_model(helper.make_graph([], "g", [], []))
    model.ClearField("graph")
    helper.set_model_props(model, {"signrt.spec": "{}"})
    with pytest.raises(ModelError, match="no graph"):
        read_onnx_summary(model.SerializeToString())


def test_loading_creates_no_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One session per model load: validation reads the protobuf, the engine makes the session.
    import onnxruntime as ort

    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("load_model_file created an onnxruntime session")

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    mf = model_mod.load_model_file(path)
    assert mf.labels == tuple(LABELS) and mf.inputs["features"][1:] == (16, 42)


def test_graph_onnxruntime_cannot_run_is_a_model_error_of_the_engine(tmp_path: Path) -> None:
    from signrt.runtime.engines import OrtEngine

    model, _, _ = pooling_model(hand_spec(16), LABELS)
    model.graph.node[0].op_type = "NoSuchOp"
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    mf = model_mod.load_model_file(path)  # well-formed protobuf, valid metadata
    with pytest.raises(ModelError, match="onnxruntime cannot load the model"):
        OrtEngine(mf, "cpu")
