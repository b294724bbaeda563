"""Quantisation (signrt.runtime.quantize, `signrt quantize`): files, logits, the gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import signrt  # noqa: E402
from signrt.cli import main  # noqa: E402
from signrt.errors import ModelError  # noqa: E402
from signrt.runtime import quantize as q  # noqa: E402
from signrt.runtime.model import load_model_file  # noqa: E402
from signrt.spec import FeatureSpec  # noqa: E402
from signrt.train.data import open_dataset  # noqa: E402
from signrt.train.export import export_model, verification_batch  # noqa: E402
from signrt.train.models import build_model  # noqa: E402

CALIB = "synthetic:classes=4,signers=2,clips_per_class=2,seed=5"
VAL = "synthetic:classes=4,signers=1,clips_per_class=3,seed=5,signer_offset=4"
LABELS = ["sign00", "sign01", "sign02", "sign03"]
#: Largest logit difference to fp32 allowed, as a fraction of the fp32 logits' range.
TOL = {"int8": 0.05, "int8-dynamic": 0.05, "fp16": 0.005}


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = FeatureSpec.preset("islr118", max_len=16)
    cfg = {"dim": 32, "stages": 1, "convs_per_stage": 1, "heads": 2, "kernel_size": 5}
    model = build_model("cnn_transformer", spec, len(LABELS), cfg)
    out = tmp_path_factory.mktemp("q") / "model.onnx"
    export_model(
        model, spec, LABELS, out, info={"architecture": "cnn_transformer", "metrics": {"a": 1}},
        exporter="torchscript", batch_range=(1, 4), verify_inputs=verification_batch(spec, VAL),
    )  # fmt: skip
    return out


def _ops(path: Path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _logits(path: Path, feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rec = signrt.load(path, device="cpu")
    try:
        return rec.engine.run(feats, mask)
    finally:
        rec.close()


def _follows_fp32(fp32: Path, quantised: Path, *, rel_tol: float) -> None:
    """The quantised model's logits follow the fp32 ones on the same validation features."""
    spec = load_model_file(fp32).spec
    feats, mask, _ = q.compare.labelled_features(open_dataset(VAL), spec)
    ref, got = _logits(fp32, feats, mask), _logits(quantised, feats, mask)
    assert got.shape == ref.shape == (12, len(LABELS)) and np.isfinite(got).all()
    spread = float(ref.max() - ref.min())
    agree = q.compare.logit_agreement(ref, got)
    assert agree["max_logit_diff"] <= rel_tol * spread, (agree, spread)
    assert agree["top1_agreement"] >= 11 / 12, agree  # at most one of 12 clips differs
    # the logits are not just close by accident of scale: they are correlated per clip
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.95


def test_static_int8_is_symmetric_qdq_per_channel(fp32: Path, tmp_path: Path) -> None:
    spec = load_model_file(fp32).spec
    batches = q.calibration_batches(open_dataset(CALIB), spec, max_clips=6, batch_size=4)
    assert [b[0].shape[0] for b in batches] == [4, 2]
    out = q.quantize_int8(fp32, tmp_path / "m.int8.onnx", batches)
    mf = load_model_file(out)
    assert mf.precision == "int8"
    info = mf.info["quantization"]
    assert info["mode"] == "int8" and info["format"] == "QDQ"
    assert info["calibration_clips"] == 6
    assert mf.info["metrics"] == {"a": 1}  # original info kept
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(out)
    model = onnx.load(str(out))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    per_channel = False
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zp = inits.get(node.input[2])
            if zp is not None:
                assert zp.dtype == np.int8 and not zp.any()  # symmetric: zero point 0
                per_channel |= zp.size > 1
    assert per_channel
    assert mf.size_bytes < 0.6 * load_model_file(fp32).size_bytes
    _follows_fp32(fp32, out, rel_tol=TOL["int8"])


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_histogram_calibration_with_uneven_batches(
    fp32: Path, tmp_path: Path, method: str
) -> None:
    spec = load_model_file(fp32).spec
    batches = q.calibration_batches(open_dataset(CALIB), spec, max_clips=6, batch_size=4)
    assert [b[0].shape[0] for b in batches] == [4, 2]  # what failed in onnxruntime
    out = q.quantize_int8(fp32, tmp_path / "m.int8.onnx", batches, method=method)
    info = load_model_file(out).info["quantization"]
    assert info["calibration"] == method and info["calibration_clips"] == 6
    _follows_fp32(fp32, out, rel_tol=TOL["int8"])


def test_dynamic_int8_and_fp16(fp32: Path, tmp_path: Path) -> None:
    dyn = q.quantize_int8_dynamic(fp32, tmp_path / "m.dyn.onnx")
    assert load_model_file(dyn).precision == "int8"
    assert load_model_file(dyn).info["quantization"]["mode"] == "int8-dynamic"
    assert "DynamicQuantizeLinear" in _ops(dyn) or "MatMulInteger" in _ops(dyn)
    _follows_fp32(fp32, dyn, rel_tol=TOL["int8-dynamic"])
    half = q.convert_fp16(fp32, tmp_path / "m.fp16.onnx")
    mf = load_model_file(half)  # checks float32 inputs and outputs
    assert mf.precision == "fp16"
    model = onnx.load(str(half))
    types = {t.data_type for t in model.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types
    onnx.checker.check_model(model)
    _follows_fp32(fp32, half, rel_tol=TOL["fp16"])


@pytest.mark.parametrize("mode", ["int8", "int8-dynamic", "fp16"])
def test_quantize_compares_with_fp32(fp32: Path, tmp_path: Path, mode: str) -> None:
    res = q.quantize(
        fp32, mode, out=tmp_path / f"m.{mode}.onnx", calib=open_dataset(CALIB),
        val=open_dataset(VAL), calib_clips=8, timing_s=0.05,
    )  # fmt: skip
    assert res.path.is_file()
    assert res.val_clips == 12
    assert res.fp32_top1 is not None and res.top1 is not None
    assert res.drop_points == pytest.approx((res.fp32_top1 - res.top1) * 100)
    # the gate is the default one (1 point): it passes exactly when the drop is within it
    assert res.passed == (res.drop_points <= 1.0)
    assert res.top1_agreement is not None and res.top1_agreement >= 0.75
    assert res.max_logit_diff is not None and res.max_logit_diff >= 0.0
    assert res.speedup is not None and res.speedup > 0
    info = load_model_file(res.path).info["quantization"]
    assert info["top1"] == pytest.approx(res.top1)
    assert "top-1 fp32" in res.summary()


def test_cli_accuracy_gate(fp32: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "gate.onnx"
    args = ["quantize", str(fp32), "--int8-dynamic", "--val-data", VAL, "-o", str(out),
            "--timing", "0.05"]  # fmt: skip
    assert main([*args, "--max-drop", "-1"]) == 1  # a drop of >= 0 points exceeds -1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "exceeds --max-drop" in captured.err
    assert main([*args, "--max-drop", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] and doc["precision"] == "int8" and doc["mode"] == "int8-dynamic"
    # default output name beside the input
    assert main(["quantize", str(fp32), "--fp16", "--val-data", VAL, "--timing", "0.05"]) == 0
    assert fp32.with_name("model.fp16.onnx").is_file()


def test_errors(fp32: Path, tmp_path: Path, capsys) -> None:
    # --int8 without calibration data
    assert main(["quantize", str(fp32), "--int8", "--val-data", VAL]) == 2
    assert "--calib" in capsys.readouterr().err
    with pytest.raises(ModelError, match="mode"):
        q.quantize(fp32, "int4")
    with pytest.raises(ModelError, match="overwrite"):
        q.quantize(fp32, "fp16", out=fp32)
    half = q.convert_fp16(fp32, tmp_path / "h.onnx")
    with pytest.raises(ModelError, match="already fp16"):
        q.quantize_int8_dynamic(half, tmp_path / "x.onnx")
    with pytest.raises(ModelError):
        q.quantize_int8_dynamic(tmp_path / "missing.onnx", tmp_path / "x.onnx")


def test_tuned_stream_settings_survive_quantisation(fp32: Path, tmp_path: Path) -> None:
    from signrt.runtime.model import save_onnx, stamp_stream_settings

    settings = {"window": {"threshold": 0.45, "confirm": 3}, "tuning": {"data": "val"}}
    proto = onnx.load(str(fp32))
    tuned = save_onnx(stamp_stream_settings(proto, settings), tmp_path / "tuned.onnx")
    dyn = q.quantize_int8_dynamic(tuned, tmp_path / "t.dyn.onnx")
    half = q.convert_fp16(tuned, tmp_path / "t.fp16.onnx")
    for path in (dyn, half):
        assert load_model_file(path).stream == settings
    assert load_model_file(q.convert_fp16(fp32, tmp_path / "p.fp16.onnx")).stream == {}
