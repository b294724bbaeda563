"""ONNX export (signrt.train.export, ``signrt export``): parity, metadata, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import onnxruntime as ort  # noqa: E402

import signrt  # noqa: E402
from helpers_models import EXPORT_DATA, EXPORT_LABELS, SMALL_MODELS  # noqa: E402
from signrt.cli import main  # noqa: E402
from signrt.errors import ModelError  # noqa: E402
from signrt.runtime.model import load_model_file  # noqa: E402
from signrt.spec import FeatureSpec  # noqa: E402
from signrt.train import export as ex  # noqa: E402
from signrt.train.checkpoint import Checkpoint, save_checkpoint  # noqa: E402
from signrt.train.data import batch_preprocess, open_dataset  # noqa: E402
from signrt.train.models import ARCHITECTURES, build_model  # noqa: E402

SMALL, LABELS, DATA = SMALL_MODELS, EXPORT_LABELS, EXPORT_DATA


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return FeatureSpec.preset("islr118", max_len=16)


@pytest.fixture(scope="module")
def verify(spec: FeatureSpec) -> tuple:
    return ex.verification_batch(spec, DATA)


def _ort(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_export_matches_torch(arch: str, spec: FeatureSpec, verify: tuple, tmp_path: Path) -> None:
    model = build_model(arch, spec, len(LABELS), SMALL[arch]).eval()
    report = ex.export_model(
        model, spec, LABELS, tmp_path / "m.onnx", info={"architecture": arch},
        batch_range=(1, 4), verify_inputs=verify,
    )  # fmt: skip
    assert report.max_abs_diff <= 1e-4
    assert report.exporter == "dynamo"
    assert report.opset >= 17
    mf = load_model_file(report.path)
    assert mf.precision == "fp32" and mf.architecture == arch
    assert mf.labels == tuple(LABELS) and mf.spec == spec
    assert mf.inputs["features"][1:] == (16, spec.num_features)
    assert isinstance(mf.inputs["features"][0], str)  # dynamic batch
    assert mf.info["export"]["parity_max_abs_diff"] == pytest.approx(report.max_abs_diff)
    # a batch size between the verified ends, with an all-zero mask row
    feats, mask, _ = verify
    f, m = feats[:3].copy(), mask[:3].copy()
    m[2] = 0.0
    got = _ort(report.path).run(["logits"], {"features": f, "mask": m})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(f), torch.from_numpy(m)).numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_torchscript_exporter_also_works(spec: FeatureSpec, verify: tuple, tmp_path: Path) -> None:
    model = build_model("attention_bilstm", spec, len(LABELS), SMALL["attention_bilstm"])
    report = ex.export_model(
        model, spec, LABELS, tmp_path / "m.onnx", info={"architecture": "attention_bilstm"},
        exporter="torchscript", batch_range=(1, 8), verify_inputs=verify,
    )  # fmt: skip
    assert report.exporter == "torchscript"
    assert report.max_abs_diff <= 1e-4
    assert report.nodes < report.nodes_before_simplify  # onnxslim removed shape plumbing


def _checkpoint(path: Path, spec: FeatureSpec, arch: str = "cnn_transformer") -> Path:
    model = build_model(arch, spec, len(LABELS), SMALL[arch])
    ckpt = Checkpoint(
        arch=arch,
        model_config=model.config.to_dict(),
        spec=spec,
        labels=LABELS,
        state_dict=model.state_dict(),
        metrics={"val_top1": 0.5},
        train={"data": DATA, "epochs": 1},
    )
    return save_checkpoint(path, ckpt)


def test_checkpoint_export_load_predict(spec: FeatureSpec, tmp_path: Path, capsys) -> None:
    ckpt = _checkpoint(tmp_path / "run" / "best.pt", spec)
    out = tmp_path / "model.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--batch-range", "1:8"]) == 0
    assert "max |diff|" in capsys.readouterr().out
    mf = load_model_file(out)
    assert mf.info["metrics"] == {"val_top1": 0.5}
    assert mf.info["training"]["data"] == DATA
    assert mf.info["hyperparameters"]["dim"] == 32
    # the runtime: preprocess -> engine -> labels, same answer as the torch model
    clips = open_dataset(DATA).clips
    rec = signrt.load(out, device="cpu")
    try:
        pred = rec.predict(clips[0])
        assert pred.label in LABELS and not pred.no_signer
        preds = rec.predict_batch([clips[i] for i in range(len(clips))])
        empty = rec.predict(np.full((5, 543, 3), np.nan, np.float32))
    finally:
        rec.close()
    assert empty.no_signer and empty.label is None
    from signrt.train.checkpoint import load_checkpoint

    model = load_checkpoint(ckpt).build_model()
    feats, mask = batch_preprocess([clips[i] for i in range(len(clips))], spec)
    with torch.no_grad():
        want = model(torch.from_numpy(feats), torch.from_numpy(mask)).argmax(1).tolist()
    assert [p.label for p in preds] == [LABELS[i] for i in want]


def test_json_report_and_options(spec: FeatureSpec, tmp_path: Path, capsys) -> None:
    import json

    ckpt = _checkpoint(tmp_path / "best.pt", spec, "spoter")
    out = tmp_path / "m.onnx"
    rc = main(["export", str(ckpt), "-o", str(out), "--exporter", "torchscript", "--opset", "17",
               "--verify-data", DATA, "--json", "--no-simplify"])  # fmt: skip
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["opset"] == 17 and doc["exporter"] == "torchscript"
    assert doc["verify_source"].startswith(DATA)
    assert load_model_file(out).info["export"]["opset"] == 17


def test_not_a_checkpoint_is_a_model_error(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "best.pt"
    bogus.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ModelError):
        ex.export_checkpoint(bogus, tmp_path / "m.onnx")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="not a signrt checkpoint"):
        ex.export_checkpoint(tmp_path / "other.pt", tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="does not exist"):
        ex.export_checkpoint(tmp_path / "missing.pt", tmp_path / "m.onnx")
    assert main(["export", str(bogus), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_weights_that_do_not_fit_are_a_model_error(spec: FeatureSpec, tmp_path: Path) -> None:
    model = build_model("signbert", spec, len(LABELS), SMALL["signbert"])
    ckpt = Checkpoint(
        arch="signbert", model_config={**SMALL["signbert"], "dim": 64, "heads": 2}, spec=spec,
        labels=LABELS, state_dict=model.state_dict(),
    )  # fmt: skip
    path = save_checkpoint(tmp_path / "best.pt", ckpt)
    with pytest.raises(ModelError, match="do not fit"):
        ex.export_checkpoint(path, tmp_path / "m.onnx")


def test_verification_fails_when_graph_and_model_disagree(spec: FeatureSpec, verify: tuple) -> None:
    a = build_model("signbert", spec, len(LABELS), SMALL["signbert"]).eval()
    b = build_model("signbert", spec, len(LABELS), SMALL["signbert"]).eval()  # other weights
    proto, _, _ = ex.to_onnx(a, spec, exporter="torchscript", batch_range=(1, 2))
    feats, mask, _ = verify
    assert ex._verify(a, proto.SerializeToString(), feats, mask, (1, 2), 1e-4, 1e-4) < 1e-4
    with pytest.raises(ModelError, match="disagree"):
        ex._verify(b, proto.SerializeToString(), feats, mask, (1, 2), 1e-4, 1e-4)


def test_bad_arguments(spec: FeatureSpec) -> None:
    assert ex.parse_batch_range("1:64") == (1, 64)
    assert ex.parse_batch_range("8") == (8, 8)
    assert ex.parse_batch_range((2, 3)) == (2, 3)
    for bad in ("0:4", "9:3", "a:b", "1:2:3"):
        with pytest.raises(ModelError):
            ex.parse_batch_range(bad)
    model = build_model("spoter", spec, 2, SMALL["spoter"])
    with pytest.raises(ModelError, match="opset"):
        ex.to_onnx(model, spec, opset=13)
    with pytest.raises(ModelError, match="exporter"):
        ex.to_onnx(model, spec, exporter="tf")


def test_export_fits_and_stores_the_calibration_temperature(spec: FeatureSpec, tmp_path: Path,
                                                            capsys) -> None:  # fmt: skip
    from signrt.runtime.calibration import fit_temperature, nll
    from signrt.train.checkpoint import load_checkpoint

    ckpt = _checkpoint(tmp_path / "best.pt", spec)
    out = tmp_path / "cal.onnx"
    assert main(["export", str(ckpt), "-o", str(out), "--batch-range", "1:4",
                 "--calib-data", DATA]) == 0  # fmt: skip
    assert "temperature" in capsys.readouterr().out
    cal = load_model_file(out).info["calibration"]
    # the same fit on the torch model's logits of the same clips
    clips = open_dataset(DATA)
    feats, mask = batch_preprocess([clips.clips[i] for i in range(len(clips))], spec)
    with torch.no_grad():
        z = load_checkpoint(ckpt).build_model().eval()(
            torch.from_numpy(feats), torch.from_numpy(mask)).double().numpy()  # fmt: skip
    y = [LABELS.index(clips.label_names[int(k)]) for k in clips.labels]
    t = fit_temperature(z, y)
    assert cal["temperature"] == pytest.approx(t, rel=1e-4)
    assert cal["clips"] == len(y) and cal["data"] == DATA and cal["method"] == "temperature"
    assert cal["nll_after"] == pytest.approx(nll(z, y, t), abs=1e-4)
    assert cal["nll_after"] <= cal["nll_before"] + 1e-9
    rec = signrt.load(out, device="cpu")
    try:
        assert rec.temperature == pytest.approx(t, rel=1e-4)
    finally:
        rec.close()
    # none: no calibration, T = 1
    plain = tmp_path / "plain.onnx"
    assert main(["export", str(ckpt), "-o", str(plain), "--batch-range", "1:4",
                 "--calib-data", "none"]) == 0  # fmt: skip
    assert "calibration" not in load_model_file(plain).info
    assert load_model_file(plain).temperature == 1.0


def test_export_calibrates_on_the_runs_validation_data_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "val"
    clips = open_dataset(DATA)
    for i in range(len(clips)):
        d = folder / clips.label_names[int(clips.labels[i])]
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / f"{i}.npy", np.asarray(clips.clips[i], dtype=np.float32))
    assert ex.resolve_calib_data("auto", {"val_data": str(folder)}) == str(folder)
    assert ex.resolve_calib_data("auto", {"val_data": str(tmp_path / "gone")}) is None
    assert ex.resolve_calib_data("auto", {}) is None
    assert ex.resolve_calib_data(None, {"val_data": str(folder)}) is None
    assert ex.resolve_calib_data("x", {}) == "x"
    spec = FeatureSpec.preset("islr118", max_len=16)
    model = build_model("cnn_transformer", spec, len(LABELS), SMALL["cnn_transformer"])
    with pytest.raises(signrt.DataError, match="none of its signs"):
        ex.fit_calibration(model, spec, ["x", "y"], str(folder))


def test_cnn1d_with_every_hand_and_time_option_exports_with_parity(tmp_path: Path) -> None:
    spec = FeatureSpec.preset("hands_pose", max_len=16)
    opts = {"dim": 16, "kernels": [3], "hand_size_norm": True, "hand_shape": True,
            "time_norm": True}  # fmt: skip
    model = build_model("cnn1d", spec, len(LABELS), opts).eval()
    report = ex.export_model(
        model, spec, LABELS, tmp_path / "m.onnx", info={"architecture": "cnn1d"},
        batch_range=(1, 4), verify_inputs=ex.verification_batch(spec, DATA),
    )  # fmt: skip
    assert report.max_abs_diff <= 1e-4
