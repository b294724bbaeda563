"""The stream's score kind: thresholds on the calibrated probability or on the energy.

The engines here shift every logit of a row by a constant: the softmax (so the top-1 and
its probability) does not move, the energy ``T * logsumexp(z / T)`` moves by the shift. So
only the energy threshold can tell such rows apart, which is what these tests check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest

from helpers_models import hand_frame, hand_spec, numpy_logits, write_pooling_model
from signrt.errors import StreamOptionError
from signrt.evaluate.stream_eval import ClipSetOnDisk
from signrt.recognizer import Recognizer, energy_scores, load
from signrt.results import BACKGROUND_LABEL
from signrt.runtime.model import load_model_file, save_onnx, stamp_stream_settings
from signrt.stream import Stream

LABELS = ("left", "right", BACKGROUND_LABEL)


def _row(label: str, p: float, shift: float) -> np.ndarray:
    probs = np.full(len(LABELS), (1.0 - p) / (len(LABELS) - 1))
    probs[LABELS.index(label)] = p
    return (np.log(probs) + shift).astype(np.float32)  # (K,)


class Shifted:
    """Answers the scripted (label, p, shift) rows in turn (cycling)."""

    name, device, providers = "shifted", "cpu", ("shifted",)

    def __init__(self, script: Sequence[tuple[str, float, float]]) -> None:
        self.script, self.calls = list(script), 0

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rows = []
        for _ in range(features.shape[0]):
            rows.append(_row(*self.script[self.calls % len(self.script)]))
            self.calls += 1
        return np.stack(rows)  # (B, K)


class ByPlace:
    """A still hand is the background; else the label from the mean hand x (right of 0.5:
    "right"), p 0.95, and the energy from the mean hand y: about +3 at y > 0.4 (the known
    signs), about -3 below (the unknown ones)."""

    name, device, providers = "byplace", "cpu", ("byplace",)

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rows = []
        for f, m in zip(features, mask, strict=True):  # (L, F), (L,)
            hx = f[m > 0, 0::2].mean(axis=1)  # (n,) mean hand x per real frame
            hy = f[m > 0, 1::2].mean(axis=1)
            if len(hx) < 2 or hx.std() < 0.01:
                rows.append(_row(BACKGROUND_LABEL, 0.95, 0.0))
                continue
            shift = (3.0 if hy.mean() > 0.4 else -3.0) + 0.2 * hx.mean()  # spread a little
            rows.append(_row("right" if hx.mean() > 0.5 else "left", 0.95, shift))
        return np.stack(rows)  # (B, K)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _, _ = write_pooling_model(tmp_path_factory.mktemp("m") / "m.onnx", hand_spec(16),
                                     list(LABELS))  # fmt: skip
    return path


def _rec(path: Path, engine: object) -> Recognizer:
    return Recognizer(load_model_file(path), engine, top_k=2)  # type: ignore[arg-type]


def _feed(stream: Stream, frames: Sequence[np.ndarray]) -> list[tuple[str, float]]:
    out = []
    for i, f in enumerate(frames):
        out += [(e.label, e.score) for e in stream.push(f, timestamp=i / 25.0)]
    return out + [(e.label, e.score) for e in stream.flush()]


def _moving(n: int, x0: float = 0.6, y: float = 0.5) -> list[np.ndarray]:
    return [hand_frame(x0 + 0.01 * k, y) for k in range(n)]


REST = [hand_frame(None)] * 15


# ---------------------------------------------------------------------- the decisions
@pytest.mark.parametrize("mode", ["window", "segment"])
def test_the_energy_threshold_decides_what_the_probability_cannot(model_file: Path,
                                                                  mode: str) -> None:
    frames = _moving(20) + REST
    opts: dict[str, object] = (
        {"stride": 2, "confirm": 2, "min_frames": 2} if mode == "window" else
        {"rest_frames": 4, "min_frames": 3})  # fmt: skip
    fired = {}
    for shift in (2.0, -2.0):
        script = [("right", 0.9, shift)]
        prob = _rec(model_file, Shifted(script)).stream(mode, threshold=0.6, **opts)
        assert prob.score == "probability"
        energy = _rec(model_file, Shifted(script)).stream(mode, score="energy", threshold=0.0,
                                                          **opts)  # fmt: skip
        assert (energy.score, energy.threshold) == ("energy", 0.0)
        fired[shift] = (_feed(prob, frames), _feed(energy, frames))
    # the probability is 0.9 either way: both fire; the energy is the shift: one fires
    assert [lab for lab, _ in fired[2.0][0]] == ["right"] == [lab for lab, _ in fired[-2.0][0]]
    assert [lab for lab, _ in fired[2.0][1]] == ["right"]
    assert fired[-2.0][1] == []
    # the event reports the calibrated probability, not the energy
    assert fired[2.0][1][0][1] == pytest.approx(0.9, abs=1e-6)


def test_window_energy_event_reports_the_mean_probability(model_file: Path) -> None:
    # energies 1, 1: confirmed on the second; probabilities 0.9 and 0.7 -> 0.8
    rec = _rec(model_file, Shifted([("right", 0.9, 1.0), ("right", 0.7, 1.0)]))
    st = rec.stream("window", score="energy", threshold=0.5, stride=1, confirm=2,
                    min_frames=1)  # fmt: skip
    got = _feed(st, _moving(2))
    assert [lab for lab, _ in got] == ["right"]
    assert got[0][1] == pytest.approx(0.8, abs=1e-6)
    # an energy below the threshold breaks the run like a low probability
    rec = _rec(model_file, Shifted([("right", 0.9, 1.0), ("right", 0.99, -1.0)]))
    st = rec.stream("window", score="energy", threshold=0.5, stride=1, confirm=2,
                    min_frames=1)  # fmt: skip
    assert _feed(st, _moving(8)) == []


@pytest.mark.parametrize("mode", ["window", "segment"])
def test_the_background_class_never_fires_whatever_its_energy(model_file: Path,
                                                              mode: str) -> None:
    opts: dict[str, object] = (
        {"stride": 1, "confirm": 1, "min_frames": 1} if mode == "window" else
        {"rest_frames": 4, "min_frames": 3})  # fmt: skip
    rec = _rec(model_file, Shifted([(BACKGROUND_LABEL, 0.99, 50.0)]))
    st = rec.stream(mode, score="energy", threshold=-100.0, **opts)
    assert _feed(st, _moving(20) + REST) == []
    assert st.engine_calls > 0


def test_energy_is_temperature_scaled_logsumexp_of_the_engine_logits(tmp_path: Path) -> None:
    spec = hand_spec(16)
    path, W, b = write_pooling_model(tmp_path / "cal.onnx", spec, ["a", "b", "c"],
                                     info={"calibration": {"temperature": 0.5}})  # fmt: skip
    rec = load(path, device="cpu")
    assert rec.temperature == 0.5
    clips = [np.stack(_moving(n, x0)) for n, x0 in ((6, 0.2), (16, 0.5), (9, 0.7))]
    feats, mask = rec.preprocess_batch(clips)
    rows, energy = rec.classify_features_energy(feats, mask)
    z = numpy_logits(feats, mask, W, b)  # (B, K) float64
    want = [0.5 * math.log(np.exp(r / 0.5).sum()) for r in z]
    np.testing.assert_allclose(energy, want, rtol=1e-5)
    assert energy.dtype == np.float64 and energy.shape == (3,)
    assert rows == rec.classify_features(feats, mask)  # the same top-k as without energy
    # stable for large logits (no overflow) and equal to the max logit plus log K at ties
    big = np.full((1, 4), 1000.0, dtype=np.float32)
    assert energy_scores(big, 1.0)[0] == pytest.approx(1000.0 + math.log(4.0))


# ------------------------------------------------------------------- options, metadata
def _tuned(model_file: Path, tmp_path: Path, settings: dict[str, object]) -> Path:
    m = onnx.load(str(model_file))
    stamp_stream_settings(m, settings)
    return save_onnx(m, tmp_path / "tuned.onnx")


def test_stored_score_round_trip_and_precedence(model_file: Path, tmp_path: Path) -> None:
    settings = {"window": {"score": "energy", "threshold": 2.5, "confirm": 3},
                "segment": {"score": "probability", "threshold": 0.8}}  # fmt: skip
    path = _tuned(model_file, tmp_path, settings)
    assert load_model_file(path).stream == settings
    rec = _rec(path, Shifted([("right", 0.9, 0.0)]))
    w = rec.stream("window")
    assert (w.score, w.threshold, w.decision.confirm) == ("energy", 2.5, 3)
    # the same score given: the stored threshold stays
    assert rec.stream("window", score="energy").threshold == 2.5
    # an explicit threshold with the stored score kind
    assert rec.stream("window", score="energy", threshold=-1.0).threshold == -1.0
    # a threshold given without a score is a probability, whatever the model stores
    w = rec.stream("window", threshold=0.7)
    assert (w.score, w.threshold, w.decision.confirm) == ("probability", 0.7, 3)
    # the other score kind: the stored threshold (another scale) is dropped
    w = rec.stream("window", score="probability")
    assert (w.score, w.threshold) == ("probability", 0.6)
    s = rec.stream("segment")
    assert (s.score, s.threshold) == ("probability", 0.8)
    with pytest.raises(StreamOptionError, match=r"energy.*threshold"):
        rec.stream("segment", score="energy")  # no energy threshold stored, none given
    assert rec.stream("segment", score="energy", threshold=1.0).score == "energy"


@pytest.mark.parametrize("options, match", [
    ({"score": "logit"}, "score must be 'probability' or 'energy'"),
    ({"score": 1}, "score must be"),
    ({"score": "energy"}, "needs a threshold"),
    ({"score": "energy", "threshold": float("nan")}, "finite"),
    ({"score": "energy", "threshold": float("inf")}, "finite"),
    ({"score": "energy", "threshold": "high"}, "threshold must be a number"),
    ({"threshold": 1.5}, r"\[0, 1\]"),
    ({"score": "probability", "threshold": -0.1}, r"\[0, 1\]"),
])  # fmt: skip
@pytest.mark.parametrize("mode", ["window", "segment"])
def test_bad_scores_are_refused(model_file: Path, mode: str, options: dict[str, object],
                                match: str) -> None:  # fmt: skip
    rec = _rec(model_file, Shifted([("right", 0.9, 0.0)]))
    with pytest.raises(StreamOptionError, match=match):
        rec.stream(mode, **options)


def test_a_bad_stored_score_is_refused_when_the_stream_opens(model_file: Path,
                                                             tmp_path: Path) -> None:
    path = _tuned(model_file, tmp_path, {"window": {"score": "softmax", "threshold": 0.5}})
    rec = _rec(path, Shifted([("right", 0.9, 0.0)]))
    with pytest.raises(StreamOptionError, match="'softmax'"):
        rec.stream("window")
    assert rec.stream("segment").score == "probability"  # the other mode is unaffected


def test_energy_needs_a_classifier_that_gives_it(model_file: Path) -> None:
    class Plain:
        def __init__(self, rec: Recognizer) -> None:
            self.spec, self.top_k = rec.spec, rec.top_k
            self.preprocess: Callable[..., object] = rec.preprocess
            self.classify_features: Callable[..., object] = rec.classify_features

    plain = Plain(_rec(model_file, Shifted([("right", 0.9, 0.0)])))
    with pytest.raises(StreamOptionError, match="classify_features_energy"):
        Stream(plain, "window", score="energy", threshold=1.0)  # type: ignore[arg-type]
    assert Stream(plain, "window").score == "probability"  # type: ignore[arg-type]


def test_daemon_passes_the_score(model_file: Path) -> None:
    from signrt.daemon.build import stream_options
    from signrt.daemon.config import DaemonConfig

    opts = stream_options(DaemonConfig(score="energy", threshold=1.5))
    assert opts == {"mode": "window", "threshold": 1.5, "score": "energy"}
    st = _rec(model_file, Shifted([("right", 0.9, 0.0)])).stream(**opts)
    assert (st.score, st.threshold) == ("energy", 1.5)


# ---------------------------------------------------------------------------- tuning
def _clips(n: int, y: float) -> tuple[list[np.ndarray], list[str]]:
    clips, labels = [], []
    for i in range(n):
        right = i % 2 == 0
        x0 = 0.6 if right else 0.2
        clips.append(np.stack(_moving(20, x0, y)))
        labels.append("right" if right else "left")
    return clips, labels


def test_tune_stream_chooses_the_energy_when_only_it_rejects_unknown_signs(
    model_file: Path,
) -> None:
    from signrt.evaluate.tune import TuneConfig, tune_stream

    known, labels = _clips(6, 0.5)
    unknown, _ = _clips(4, 0.3)  # same places and probabilities, lower energy
    data = ClipSetOnDisk("known", known, labels, None, [f"k{i}" for i in range(6)])
    unk = ClipSetOnDisk("unknown", unknown, ["other"] * 4, None, [f"u{i}" for i in range(4)])
    cfg = TuneConfig(rest_kinds=("low_in_view",), idle_seconds=2.0, thresholds=(0.5, 0.9),
                     strides=(2,), confirms=(2,), rest_seconds=(0.32,),
                     motion_factors=(1.0,), energy_quantiles=5)  # fmt: skip
    rec = _rec(model_file, ByPlace())
    out = tune_stream(rec, data, unknown=unk, config=cfg)
    for mode in ("window", "segment"):
        t = out["tuning"][mode]
        prob, en = t["by_score"]["probability"], t["by_score"]["energy"]
        # a probability threshold lets every unknown sign through; the energy keeps them out
        assert prob["meets_targets"] is False and prob["validation"]["oov_events_per_sign"] > 0.1
        assert en["meets_targets"] is True and en["validation"]["oov_events_per_sign"] == 0.0
        assert out[mode]["score"] == t["score"] == "energy"
        assert -2.5 < out[mode]["threshold"] <= 3.2  # on the energy scale (the shifts)
        assert any(abs(v) > 1.0 for v in en["thresholds"])
        # the chosen setting opens a stream that rejects the unknown signs
        st = rec.stream(mode, **out[mode])
        assert st.score == "energy"
        assert _feed(st, _moving(20, 0.6, 0.3) + REST) == []
        assert [lab for lab, _ in _feed(rec.stream(mode, **out[mode]),
                                        _moving(20, 0.6, 0.5) + REST)] == ["right"]  # fmt: skip


# ------------------------------------------------------------------------ eval-stream
def test_eval_stream_reports_the_models_stored_settings(tmp_path: Path) -> None:
    import signrt
    from signrt.evaluate.stream_eval import EvalConfig, evaluate_streams, load_clip_set
    from signrt.evaluate.streams import StreamConfig
    from test_evaluate_stream import _synthetic, _write_folder

    stored = {"score": "energy", "threshold": -50.0, "rest_frames": 10}
    path = _tuned(signrt.recognizer.default_model_path(), tmp_path, {"segment": stored})
    rec = load(path, device="cpu")
    clips, labels = _synthetic(2, 1)
    data = load_clip_set(_write_folder(tmp_path / "d", clips, labels))
    cfg = EvalConfig(streams=StreamConfig(signs_per_stream=2), idle_seconds=0.0,
                     modes=("segment",))  # fmt: skip
    report = evaluate_streams(rec, data, config=cfg)
    assert report.config["model_settings"] == {"segment": stored}
    assert "model's: rest_frames=10, score=energy, threshold=-50.0" in report.to_markdown()
    # an energy threshold far below every energy: every segment becomes an event
    assert report.modes["segment"]["events"] >= 2
    cfg.options = {"segment": {"score": "probability", "threshold": 1.0}}
    md = evaluate_streams(rec, data, config=cfg).to_markdown()
    assert "score=probability, threshold=1.0 (over the model's:" in md
