"""Calibrated scores: the temperature in the model metadata, applied by the recognizer.

``signrt.model`` → ``calibration.temperature`` T (fitted at export on held-out clips, see
``test_train_export.py``) divides the logits before the softmax, so ``predict`` and the
stream thresholds act on calibrated probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers_models import hand_frame, hand_spec, numpy_logits, softmax, write_pooling_model
from signrt.errors import ModelError
from signrt.recognizer import Recognizer, load
from signrt.runtime.calibration import calibration_report, fit_temperature, nll
from signrt.runtime.model import check_calibration, load_model_file

LABELS = ("a", "b", "c")


def _model(tmp_path: Path, temperature: float | None, name: str = "m.onnx"
           ) -> tuple[Path, np.ndarray, np.ndarray]:  # fmt: skip
    info = {} if temperature is None else {"calibration": {"temperature": temperature}}
    return write_pooling_model(tmp_path / name, hand_spec(16), list(LABELS), info=info)


def _clip(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([hand_frame(float(x)) for x in rng.uniform(0.2, 0.8, 12)])


@pytest.mark.parametrize("temperature", [None, 0.5, 3.0])
def test_predict_reports_softmax_of_logits_over_temperature(tmp_path: Path,
                                                            temperature: float | None) -> None:
    path, W, b = _model(tmp_path, temperature)
    rec = load(path, device="cpu")
    assert rec.temperature == (temperature or 1.0)
    assert load_model_file(path).temperature == (temperature or 1.0)
    for seed in range(3):
        clip = _clip(seed)
        feats, mask = rec.preprocess(clip)
        z = numpy_logits(feats[None], mask[None], W, b)[0]
        want = softmax(z / (temperature or 1.0))
        pred = rec.predict(clip, top_k=3)
        # predict's inline path gives exactly what classify_features gives
        assert pred.topk == rec.classify_features(feats[None], mask[None], top_k=3)[0]
        assert pred.label == LABELS[int(np.argmax(z))]  # T never changes the top-1
        got = {lab: p for lab, p in pred.topk}
        assert [got[lab] for lab in LABELS] == pytest.approx(want, abs=1e-5)


class _Fixed:
    """An engine whose logits are log(0.5), log(0.3), log(0.2): p(a) = 0.5 at T = 1."""

    name, device, providers = "fixed", "cpu", ("fixed",)

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        row = np.log(np.array([0.5, 0.3, 0.2]))
        return np.tile(row, (features.shape[0], 1)).astype(np.float32)  # (B, K)


@pytest.mark.parametrize("mode", ["window", "segment"])
def test_stream_thresholds_act_on_calibrated_probabilities(tmp_path: Path, mode: str) -> None:
    # p(a) = 0.5 uncalibrated; at T = 0.25 it is 0.5^4 / (0.5^4 + 0.3^4 + 0.2^4) = 0.87
    plain, _, _ = _model(tmp_path, None, "plain.onnx")
    sharp, _, _ = _model(tmp_path, 0.25, "sharp.onnx")
    moving = [hand_frame(0.3 + 0.02 * (i % 10)) for i in range(40)]
    still = [hand_frame(0.5)] * 20
    events = {}
    for name, path in (("plain", plain), ("sharp", sharp)):
        rec = Recognizer(load_model_file(path), _Fixed(), top_k=3)
        st = rec.stream(mode, threshold=0.8)
        out = [e for i, f in enumerate(moving + still) for e in st.push(f, i / 25.0)]
        events[name] = out + st.flush()
    assert events["plain"] == []
    assert [e.label for e in events["sharp"]][:1] == ["a"]
    assert events["sharp"][0].score == pytest.approx(0.5**4 / (0.5**4 + 0.3**4 + 0.2**4), abs=1e-5)


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, 25.0, float("nan"), True, "1.0", None])
def test_bad_temperatures_are_refused_at_stamp_and_load(tmp_path: Path, bad: object) -> None:
    with pytest.raises(ModelError, match="calibration"):
        write_pooling_model(tmp_path / "x.onnx", hand_spec(16), list(LABELS),
                            info={"calibration": {"temperature": bad}})  # fmt: skip
    with pytest.raises(ModelError, match="temperature"):
        check_calibration({"scale": 2.0}, "x")
    # a file written by something else is checked when it loads
    import onnx

    path, _, _ = _model(tmp_path, 2.0, "ok.onnx")
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == "signrt.model":
            p.value = p.value.replace('"temperature": 2.0', f'"temperature": {bad!r}'.replace(
                "'", '"').replace("nan", "NaN").replace("True", "true").replace("None", "null"))
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(ModelError, match="calibration"):
        load_model_file(tmp_path / "bad.onnx")


def test_calibration_report_figures() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1, size=(200, 4)) * 4.0
    y = np.array([rng.choice(4, p=softmax(row / 4.0)) for row in z])
    t = fit_temperature(z, y)
    r = calibration_report(z, y, t)
    assert r["clips"] == 200
    assert r["nll_after"] == pytest.approx(nll(z, y, t), abs=1e-5)
    assert r["nll_after"] < r["nll_before"]
    assert r["ece_after"] < r["ece_before"]
