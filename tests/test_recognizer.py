"""Recognizer: predictions against a NumPy oracle, no-signer, batching, threads, loading, CLI."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import signrt
from helpers_models import (
    hand_frame,
    hand_spec,
    numpy_logits,
    side_model,
    softmax,
    write_pooling_model,
)
from signrt import recognizer as rec_mod
from signrt.cli import main
from signrt.errors import EngineOptionError, ModelError, OptionError, ShapeError
from signrt.recognizer import Prediction, Recognizer, default_model_path, load

LABELS = [f"sign{i}" for i in range(7)]


class CountingEngine:
    """Wraps an engine and counts calls and rows."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.device, self.providers = inner.name, inner.device, inner.providers
        self.calls: list[int] = []

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls.append(features.shape[0])
        return self.inner.run(features, mask)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    return write_pooling_model(tmp_path_factory.mktemp("m") / "m.onnx", hand_spec(16), LABELS,
                               seed=7)


@pytest.fixture(scope="module")
def rec(model_path: tuple[Path, np.ndarray, np.ndarray]) -> Recognizer:
    return load(model_path[0], device="cpu", top_k=3, batch_sizes=(1, 8))


def _clip(seed: int, frames: int = 12, missing: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    clip = np.stack([hand_frame(float(x), float(y)) for x, y in
                     rng.uniform(0.1, 0.9, size=(frames, 2))])
    clip[:, 522:543] += rng.normal(0, 0.05, size=(frames, 21, 3)).astype(np.float32)
    clip[rng.random(frames) < missing] = np.nan
    return clip


def _oracle(rec: Recognizer, clip: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    f, m = signrt.preprocess_reference(clip, rec.spec)
    return softmax(numpy_logits(f[None], m[None], W, b))[0]


def test_predict_matches_numpy(rec: Recognizer,
                               model_path: tuple[Path, np.ndarray, np.ndarray]) -> None:
    _, W, b = model_path
    assert rec.labels == tuple(LABELS) and rec.spec == hand_spec(16)
    assert rec.info["architecture"] == "test_pooling"
    for seed in range(5):
        clip = _clip(seed)
        pred = rec.predict(clip)
        probs = _oracle(rec, clip, W, b)
        order = np.argsort(-probs)
        assert isinstance(pred, Prediction) and not pred.no_signer
        assert pred.label == LABELS[order[0]]
        assert pred.score == pytest.approx(probs[order[0]], abs=1e-5)
        assert [lab for lab, _ in pred.topk] == [LABELS[i] for i in order[:3]]
        np.testing.assert_allclose([s for _, s in pred.topk], probs[order[:3]], atol=1e-5)
        assert pred.latency.preprocess_ms >= 0 and pred.latency.inference_ms > 0
        assert pred.latency.total_ms == pytest.approx(
            pred.latency.preprocess_ms + pred.latency.inference_ms)
    assert len(rec.predict(_clip(0), top_k=100).topk) == len(LABELS)
    assert len(rec.predict(_clip(0), top_k=1).topk) == 1


def test_side_model_end_to_end(tmp_path: Path) -> None:
    r = load(side_model(tmp_path / "side.onnx"), device="cpu")
    right = np.stack([hand_frame(0.8)] * 5)
    left = np.stack([hand_frame(0.2)] * 5)
    assert r.predict(right).label == "right" and r.predict(right).score > 0.99
    assert r.predict(left).label == "left"


@pytest.mark.parametrize("clip", [np.zeros((0, 543, 3), np.float32),
                                  np.full((9, 543, 3), np.nan, np.float32)])
def test_no_signer_makes_no_engine_call(model_path: tuple[Path, np.ndarray, np.ndarray],
                                        clip: np.ndarray) -> None:
    r = load(model_path[0], device="cpu")
    r.engine = counting = CountingEngine(r.engine)
    # face present, hand (the only selected part) absent: still no signer for this spec
    clip = clip.copy()
    if clip.shape[0]:
        clip[:, :468] = 0.5
    pred = r.predict(clip)
    assert pred.no_signer and pred.label is None and pred.score == 0.0 and pred.topk == ()
    assert counting.calls == []
    json.dumps(pred.to_dict())


class ConstantEngine:
    """An engine that returns the same logits for every row."""

    def __init__(self, inner: Any, logits: np.ndarray) -> None:
        self.name, self.device, self.providers = inner.name, inner.device, inner.providers
        self.logits = logits.astype(np.float32)

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.repeat(self.logits[None], features.shape[0], axis=0)


def _numpy_topk(logits: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """The oracle: float64 softmax, then the k best, ties to the lower class."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    out = []
    for p in probs:
        idx = np.argsort(-p, kind="stable")[: min(k, p.shape[0])]
        out.append([(LABELS[i], float(p[i])) for i in idx])
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_native_scores_equal_numpy(model_path: tuple[Path, np.ndarray, np.ndarray],
                                   k: int, seed: int) -> None:
    r = load(model_path[0], device="cpu")
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(5, len(LABELS))).astype(np.float32)
    logits[1, 2] = logits[1, 5]  # a tie: the lower class comes first on both paths
    logits[2] += 500.0  # large values: no overflow
    feats = np.zeros((5, r.spec.max_len, r.spec.num_features), np.float32)
    mask = np.ones((5, r.spec.max_len), np.float32)
    r.engine = ConstantEngine(r.engine, logits[0])
    for row in logits:
        r.engine.logits = row
        native = r.classify_features(feats, mask, top_k=k)
        numpy = _numpy_topk(row[None].repeat(5, 0), k)
        assert len(native) == 5 and len(native[0]) == min(k, len(LABELS))
        for a, b in zip(native, numpy, strict=True):
            assert [x[0] for x in a] == [x[0] for x in b]
            np.testing.assert_allclose([x[1] for x in a], [x[1] for x in b], rtol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_logits_are_a_model_error(model_path: tuple[Path, np.ndarray, np.ndarray],
                                             bad: float) -> None:
    r = load(model_path[0], device="cpu")
    logits = np.zeros(len(LABELS), np.float32)
    logits[4] = bad
    r.engine = ConstantEngine(r.engine, logits)
    with pytest.raises(ModelError, match=r"non-finite logit .* class 4"):
        r.predict(_clip(3))


def test_predict_rejects_bad_shapes(rec: Recognizer) -> None:
    with pytest.raises(ShapeError):
        rec.predict(np.zeros((5, 75, 3), np.float32))


def test_predict_batch_one_engine_call(model_path: tuple[Path, np.ndarray, np.ndarray]) -> None:
    r = load(model_path[0], device="cpu", batch_sizes=(1, 8))
    singles = [r.predict(_clip(s, frames=4 + s)) for s in range(8)]
    r.engine = counting = CountingEngine(r.engine)
    clips = [_clip(s, frames=4 + s) for s in range(8)]
    clips.insert(3, np.full((6, 543, 3), np.nan, np.float32))  # no signer
    preds = r.predict_batch(clips)
    assert counting.calls == [8]
    assert preds[3].no_signer and preds[3].label is None
    others = preds[:3] + preds[4:]
    for a, b in zip(others, singles, strict=True):
        assert a.label == b.label and a.score == pytest.approx(b.score, abs=1e-6)
        assert [x for x, _ in a.topk] == [x for x, _ in b.topk]
    assert r.predict_batch([]) == []
    counting.calls.clear()
    assert all(p.no_signer for p in r.predict_batch([clips[3], clips[3]]))
    assert counting.calls == []


def test_concurrent_predict_equals_sequential(rec: Recognizer) -> None:
    clips = [_clip(s, frames=3 + s % 14) for s in range(24)]
    expected = [rec.predict(c) for c in clips]
    results: dict[int, list[Prediction]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(tid: int) -> None:
        try:
            barrier.wait()
            order = clips[tid:] + clips[:tid]
            out = [rec.predict(c) for _ in range(3) for c in order]
            results[tid] = out
            batch = rec.predict_batch(clips[:8])
            assert [p.label for p in batch] == [p.label for p in expected[:8]]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for tid, out in results.items():
        exp = (expected[tid:] + expected[:tid]) * 3
        assert [(p.label, round(p.score, 6)) for p in out] == [
            (p.label, round(p.score, 6)) for p in exp]


def test_load_options(model_path: tuple[Path, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(EngineOptionError, match="unknown engine option"):
        load(model_path[0], device="cpu", bogus=1)
    with pytest.raises(OptionError, match="top_k"):
        load(model_path[0], device="cpu", top_k=0)
    r = load(model_path[0], device="cpu", intra_op_num_threads=1, warmup=0)
    assert "Recognizer(m.onnx" in repr(r)
    with r:
        assert r.predict(_clip(1)).label in LABELS


# ----------------------------------------------------------------------- default model
def test_default_model_from_env(model_path: tuple[Path, np.ndarray, np.ndarray],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNRT_MODEL", str(model_path[0]))
    assert default_model_path() == model_path[0]
    assert load(device="cpu").labels == tuple(LABELS)


def _fake_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pkg = tmp_path / "python" / "signrt"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(rec_mod, "__file__", str(pkg / "recognizer.py"))
    monkeypatch.delenv("SIGNRT_MODEL", raising=False)
    return pkg


def test_default_model_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    model_path: tuple[Path, np.ndarray, np.ndarray]) -> None:
    pkg = _fake_checkout(tmp_path, monkeypatch)
    demo = pkg / "_models" / "demo"
    demo.mkdir(parents=True)
    data = model_path[0].read_bytes()
    for name in ("demo.int8.onnx", "demo.onnx", "demo.fp16.onnx"):
        (demo / name).write_bytes(data)
    assert default_model_path() == demo / "demo.onnx"  # fp32 first
    other = tmp_path / "mine.onnx"
    other.write_bytes(data)
    monkeypatch.setenv("SIGNRT_MODEL", str(other))
    assert default_model_path() == other  # the environment wins


def test_no_default_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_checkout(tmp_path, monkeypatch)
    with pytest.raises(ModelError, match=r"no bundled demo model.*SIGNRT_MODEL.*signrt export"):
        load()


# ---------------------------------------------------------------------------- CLI
def _run(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_info(model_path: tuple[Path, np.ndarray, np.ndarray],
                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["info", str(model_path[0])], capsys)
    assert code == 0
    for text in ("test_pooling", "fp32", "sha256", "K=7: sign0", "features (B, 16, 42)",
                 "logits (B, 7)", "cpu       available"):
        assert text in out
    code, out, _ = _run(["info", str(model_path[0]), "--json"], capsys)
    doc = json.loads(out)
    assert doc["labels"] == LABELS and doc["devices"]["cpu"] == "available"


def test_cli_info_bad_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    code, _, err = _run(["info", str(bad)], capsys)
    assert code == 2 and "not a valid ONNX model" in err


def test_cli_predict(model_path: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str], rec: Recognizer) -> None:
    clip = _clip(3)
    np.save(tmp_path / "a.npy", clip)
    np.save(tmp_path / "empty.npy", np.full((4, 543, 3), np.nan, np.float32))
    expected = rec.predict(clip)
    code, out, _ = _run(["predict", str(model_path[0]), str(tmp_path / "a.npy"),
                         str(tmp_path / "empty.npy"), "--device", "cpu", "--top-k", "2"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{tmp_path / 'a.npy'}: {expected.label} {expected.score:.3f}")
    assert "no signer" in lines[1]
    code, out, _ = _run(["predict", str(model_path[0]), str(tmp_path / "a.npy"), "--json",
                         "--top-k", "2"], capsys)
    doc = json.loads(out)
    (p,) = doc["predictions"]
    assert p["label"] == expected.label and len(p["topk"]) == 2 and p["frames"] == 12
    code, _, err = _run(["predict", str(model_path[0]), str(tmp_path / "missing.npy")], capsys)
    assert code == 2 and "missing.npy" in err


def test_cli_bench_inference(model_path: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "res" / "inference.json"
    code, out, _ = _run(["bench", "inference", str(model_path[0]), "--batch", "1", "4",
                         "--device", "cpu", "--warmup", "0.01", "--duration", "0.05",
                         "--json", str(out_json)], capsys)
    assert code == 0
    assert "Latency: min = " in out and "percentile(99%)" in out
    doc = json.loads(out_json.read_text())
    cases = {(r["case"], r["batch"]) for r in doc["rows"]}
    assert ("engine.run", 1) in cases and ("engine.run", 4) in cases
    assert ("predict (landmarks->label)", 1) in cases
    assert ("Stream.push window stride 1 (landmarks->event)", 1) in cases
    assert "cpu" in doc["overhead"]
    assert (tmp_path / "res" / "inference.md").read_text().startswith("# signrt inference")
