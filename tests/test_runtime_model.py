"""The model file: metadata stamping, atomic save, loading and every validation error."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto

import signrt
from helpers_models import hand_spec, pooling_model, write_pooling_model
from signrt.errors import ModelError, SignrtError
from signrt.runtime.model import (
    LABELS_KEY,
    MODEL_KEY,
    SPEC_KEY,
    load_model_file,
    save_onnx,
    stamp_metadata,
)

LABELS = ["hello", "thankyou", "please"]


def _props(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _set_prop(model: onnx.ModelProto, key: str, value: str | None) -> None:
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    for k, v in kept + ([(key, value)] if value is not None else []):
        prop = model.metadata_props.add()
        prop.key, prop.value = k, v


# ---------------------------------------------------------------------- round trip
def test_round_trip(tmp_path: Path) -> None:
    spec = hand_spec(16)
    info = {"architecture": "test_pooling", "precision": "fp32", "metrics": {"top1": 0.9},
            "params": 42}
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", spec, LABELS, info=info)
    mf = load_model_file(path)
    assert mf.spec == spec
    assert mf.labels == tuple(LABELS)
    assert mf.precision == "fp32"
    assert mf.architecture == "test_pooling"
    assert mf.info["metrics"] == {"top1": 0.9}
    assert mf.info["signrt_version"] == signrt.__version__
    assert mf.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert mf.size_bytes == path.stat().st_size
    assert mf.inputs == {"features": ("B", 16, spec.num_features), "mask": ("B", 16)}
    assert mf.outputs == {"logits": ("B", 3)}
    assert (mf.num_classes, mf.max_len, mf.num_features) == (3, 16, spec.num_features)
    assert mf.fixed_batch is None
    json.dumps(mf.summary())  # JSON-ready


def test_stamp_replaces_signrt_keys_and_keeps_others() -> None:
    spec = hand_spec(16)
    model, _, _ = pooling_model(spec, LABELS)
    prop = model.metadata_props.add()
    prop.key, prop.value = "author", "me"
    stamp_metadata(model, spec, ["a", "b", "c"], {"architecture": "x", "precision": "int8"})
    props = _props(model)
    assert [p.key for p in model.metadata_props].count(SPEC_KEY) == 1
    assert props["author"] == "me"
    assert json.loads(props[LABELS_KEY]) == ["a", "b", "c"]
    assert json.loads(props[MODEL_KEY])["precision"] == "int8"
    assert signrt.FeatureSpec.from_json(props[SPEC_KEY]) == spec


def test_stamp_returns_same_object() -> None:
    spec = hand_spec(16)
    model, _, _ = pooling_model(spec, LABELS, stamp=False)
    assert stamp_metadata(model, spec, LABELS, {"architecture": "a", "precision": "fp16"}) is model


@pytest.mark.parametrize(
    ("labels", "info", "match"),
    [
        ([], {"architecture": "a", "precision": "fp32"}, "empty"),
        (["a", "a", "b"], {"architecture": "a", "precision": "fp32"}, "twice"),
        (["a", "", "b"], {"architecture": "a", "precision": "fp32"}, "non-empty"),
        ("abc", {"architecture": "a", "precision": "fp32"}, "list"),
        (LABELS, {"precision": "fp32"}, "architecture"),
        (LABELS, {"architecture": "a", "precision": "bf16"}, "precision"),
        (LABELS, {"architecture": "a"}, "precision"),
        (LABELS, {"architecture": "a", "precision": "fp32", "x": object()}, "JSON"),
        (LABELS, {"architecture": "a", "precision": "fp32", "x": float("nan")}, "JSON"),
    ],
)
def test_stamp_rejects_bad_labels_and_info(labels: object, info: dict[str, object],
                                           match: str) -> None:
    spec = hand_spec(16)
    model, _, _ = pooling_model(spec, LABELS, stamp=False)
    with pytest.raises(ModelError, match=match):
        stamp_metadata(model, spec, labels, info)  # type: ignore[arg-type]


def test_stamp_checks_graph_against_spec_and_labels() -> None:
    spec = hand_spec(16)
    model, _, _ = pooling_model(spec, LABELS, stamp=False)
    with pytest.raises(ModelError, match="K = 3"):
        stamp_metadata(model, spec, ["a", "b"], {"architecture": "a", "precision": "fp32"})
    with pytest.raises(ModelError, match="L = 16"):
        stamp_metadata(model, spec.replace(max_len=32), LABELS,
                       {"architecture": "a", "precision": "fp32"})


def test_save_onnx_is_atomic_and_overwrites(tmp_path: Path) -> None:
    spec = hand_spec(16)
    model, _, _ = pooling_model(spec, LABELS)
    dest = tmp_path / "sub" / "m.onnx"
    dest.parent.mkdir()
    dest.write_bytes(b"old")
    assert save_onnx(model, dest) == dest
    assert dest.read_bytes() == model.SerializeToString()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["m.onnx"]  # no temp file left
    save_onnx(model, tmp_path / "new" / "deeper" / "m.onnx")  # creates parents


def test_reading_needs_no_onnx(tmp_path: Path) -> None:
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS)
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "from signrt.runtime.model import load_model_file\n"
        f"mf = load_model_file({str(path)!r})\n"
        "assert mf.labels == ('hello', 'thankyou', 'please')\n"
        "assert 'tensorrt' not in sys.modules and 'torch' not in sys.modules\n"
    )
    env_path = str(Path(signrt.__file__).parents[1])
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": env_path})


# ------------------------------------------------------------------------ errors
def test_model_error_is_value_error() -> None:
    assert issubclass(ModelError, ValueError) and issubclass(ModelError, SignrtError)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not found.*signrt export"):
        load_model_file(tmp_path / "nope.onnx")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a file"):
        load_model_file(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty.*truncated"):
        load_model_file(p)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "text"])
def test_not_onnx(tmp_path: Path, kind: str) -> None:
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS)
    data = path.read_bytes()
    bad = {
        "truncated": data[: len(data) // 2],
        "garbage": np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "text": b"this is not a model\n" * 10,
    }[kind]
    path.write_bytes(bad)
    with pytest.raises(ModelError, match=r"not a valid ONNX model.*re-export"):
        load_model_file(path)


def _write(tmp_path: Path, model: onnx.ModelProto) -> Path:
    return save_onnx(model, tmp_path / "m.onnx")


def test_no_metadata(tmp_path: Path) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS, stamp=False)
    with pytest.raises(ModelError, match=r"missing.*not a signrt model.*signrt export"):
        load_model_file(_write(tmp_path, model))


@pytest.mark.parametrize("key", [SPEC_KEY, LABELS_KEY, MODEL_KEY])
def test_one_key_missing(tmp_path: Path, key: str) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS)
    _set_prop(model, key, None)
    with pytest.raises(ModelError, match=f"'{key}' missing"):
        load_model_file(_write(tmp_path, model))


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (SPEC_KEY, "{not json", "not a valid FeatureSpec"),
        (SPEC_KEY, json.dumps({**hand_spec(16).to_dict(), "max_len": 0}), "max_len"),
        (SPEC_KEY, json.dumps({**hand_spec(16).to_dict(), "extra": 1}), "unknown key"),
        (LABELS_KEY, "[broken", "not valid JSON"),
        (LABELS_KEY, json.dumps({"a": 1}), "JSON list"),
        (LABELS_KEY, json.dumps(["a", "a", "b"]), "twice"),
        (LABELS_KEY, json.dumps(["a", 3, "b"]), "non-empty string"),
        (MODEL_KEY, "nope", "not valid JSON"),
        (MODEL_KEY, json.dumps([1, 2]), "JSON object"),
        (MODEL_KEY, json.dumps({"architecture": "a", "precision": "fp64"}), "precision"),
        (MODEL_KEY, json.dumps({"precision": "fp32"}), "architecture"),
    ],
)
def test_bad_metadata(tmp_path: Path, key: str, value: str, match: str) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS)
    _set_prop(model, key, value)
    with pytest.raises(ModelError, match=match) as err:
        load_model_file(_write(tmp_path, model))
    assert "signrt export" in str(err.value)


def test_labels_count_disagrees_with_graph(tmp_path: Path) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS)
    _set_prop(model, LABELS_KEY, json.dumps(["a", "b"]))
    with pytest.raises(ModelError, match=r"'logits' has K = 3 .* there are 2 labels"):
        load_model_file(_write(tmp_path, model))


def test_spec_max_len_disagrees_with_graph(tmp_path: Path) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS)
    _set_prop(model, SPEC_KEY, hand_spec(32).to_json())
    with pytest.raises(ModelError, match=r"L = 16 .* max_len is 32"):
        load_model_file(_write(tmp_path, model))


def test_spec_features_disagree_with_graph(tmp_path: Path) -> None:
    spec = hand_spec(16)
    model, _, _ = pooling_model(spec, LABELS)
    _set_prop(model, SPEC_KEY, spec.replace(motion_lags=(1,)).to_json())
    with pytest.raises(ModelError, match=r"F = 42 .* F = 84 features per frame"):
        load_model_file(_write(tmp_path, model))


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (("x", "mask", "logits"), "inputs are"),
        (("features", "m", "logits"), "inputs are"),
        (("features", "mask", "probs"), "outputs are"),
    ],
)
def test_wrong_names(tmp_path: Path, names: tuple[str, str, str], match: str) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS, names=names, stamp=False)
    stamp_free = model  # stamping checks names too; write metadata by hand
    for key, value in (
        (SPEC_KEY, hand_spec(16).to_json()),
        (LABELS_KEY, json.dumps(LABELS)),
        (MODEL_KEY, json.dumps({"architecture": "a", "precision": "fp32"})),
    ):
        _set_prop(stamp_free, key, value)
    with pytest.raises(ModelError, match=match):
        load_model_file(_write(tmp_path, stamp_free))
    with pytest.raises(ModelError, match=match):
        stamp_metadata(model, hand_spec(16), LABELS, {"architecture": "a", "precision": "fp32"})


def test_extra_output(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="outputs are"):
        pooling_model(hand_spec(16), LABELS, extra_output=True)


def test_mask_not_float(tmp_path: Path) -> None:
    model, _, _ = pooling_model(hand_spec(16), LABELS, mask_type=TensorProto.INT64)
    with pytest.raises(ModelError, match=r"'mask' has type tensor\(int64\), expected float32"):
        load_model_file(_write(tmp_path, model))


def test_static_batch_is_recorded(tmp_path: Path) -> None:
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS, batch=1)
    assert load_model_file(path).fixed_batch == 1
