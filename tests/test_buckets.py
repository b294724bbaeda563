"""Window-length buckets: the engine runs on the real frames rounded up to a bucket.

Metadata (``buckets`` in ``signrt.model``), its validation and round trip; the Recognizer
and the Stream trimming to the bucket; the fallback for models without buckets; engine
profiles over the buckets; and the export check (every architecture gives the same logits
at each bucket as at max_len, a model whose padding is not inert keeps a fixed L).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers_models import hand_frame, hand_spec, numpy_logits, pooling_model
from signrt.errors import ModelError, ShapeError
from signrt.recognizer import Recognizer, load
from signrt.runtime import engines as eng_mod
from signrt.runtime.engines import OrtEngine, create_engine, tensorrt_ep_options
from signrt.runtime.model import bucket_length, load_model_file, save_onnx
from signrt.runtime.options import EngineOptions, check_inputs, profile_shapes

LABELS = ["a", "b", "c"]
BUCKETS = [4, 8, 16]


def _write(path: Path, *, buckets: list[int] | None = BUCKETS, dynamic: bool = True,
           seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    spec = hand_spec(16)
    info: dict[str, Any] = {} if buckets is None else {"buckets": buckets}
    dims = ("length", None, None) if dynamic else (None, None, None)
    model, W, b = pooling_model(spec, LABELS, seed=seed, info=info, dims=dims)  # type: ignore[arg-type]
    save_onnx(model, path)
    return path, W, b


class Recording:
    """An engine wrapper that records the window length of every call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.device, self.providers = inner.name, inner.device, inner.providers
        self.lengths = inner.lengths
        self.seen: list[tuple[int, int]] = []

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.seen.append((features.shape[0], features.shape[1]))
        out: np.ndarray = self.inner.run(features, mask)
        return out


def _clip(frames: int, x: float = 0.3) -> np.ndarray:
    return np.stack([hand_frame(x + 0.01 * t) for t in range(frames)])


# ------------------------------------------------------------------------- metadata
def test_bucket_length() -> None:
    assert [bucket_length(n, (4, 8, 16)) for n in (0, 1, 4, 5, 8, 9, 16, 40)] == [
        4, 4, 4, 8, 8, 16, 16, 16]  # fmt: skip


def test_metadata_round_trip(tmp_path: Path) -> None:
    path, _, _ = _write(tmp_path / "m.onnx")
    mf = load_model_file(path)
    assert mf.buckets == (4, 8, 16)
    assert mf.info["buckets"] == [4, 8, 16]
    assert mf.inputs["features"][1] == "length" and mf.inputs["mask"][1] == "length"
    assert mf.summary()["info"]["buckets"] == [4, 8, 16]


def test_info_names_the_window_lengths(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    from signrt.cli import main

    assert main(["info", str(_write(tmp_path / "b.onnx")[0])]) == 0
    assert "window        L in [4, 8, 16]" in capsys.readouterr().out
    assert main(["info", str(_write(tmp_path / "f.onnx", buckets=None, dynamic=False)[0])]) == 0
    assert "window        L = 16 always (no buckets)" in capsys.readouterr().out


def test_model_without_buckets_keeps_max_len(tmp_path: Path) -> None:
    for i, (buckets, dynamic) in enumerate([(None, False), (None, True)]):
        mf = load_model_file(_write(tmp_path / f"m{i}.onnx", buckets=buckets, dynamic=dynamic)[0])
        assert mf.buckets == (16,)
        engine = OrtEngine(mf, "cpu", EngineOptions(warmup=0))
        assert engine.lengths == (16,)
        rec = Recognizer(mf, Recording(engine))
        rec.predict(_clip(3))
        rec.predict_batch([_clip(2), _clip(5)])
        assert rec.engine.seen == [(1, 16), (2, 16)]  # type: ignore[attr-defined]
        with pytest.raises(ShapeError, match=r"features must be \(B, 16, 42\)"):
            engine.run(np.zeros((1, 8, 42), np.float32), np.ones((1, 8), np.float32))


@pytest.mark.parametrize(
    "bad",
    [[8, 4, 16], [4, 8], [0, 16], [4, 4, 16], [4, 32], "16", [4.0, 16], [], [True, 16]],
)
def test_invalid_buckets_are_model_errors(bad: Any) -> None:
    with pytest.raises(ModelError, match="buckets"):
        pooling_model(hand_spec(16), LABELS, info={"buckets": bad},
                      dims=("length", None, None))  # type: ignore[arg-type]


def test_buckets_need_a_dynamic_time_axis() -> None:
    with pytest.raises(ModelError, match=r"buckets \[4, 8, 16\] but 'features' fixes L = 16"):
        pooling_model(hand_spec(16), LABELS, info={"buckets": BUCKETS})


def test_a_file_whose_buckets_contradict_the_graph_is_rejected(tmp_path: Path) -> None:
    import json

    model, _, _ = pooling_model(hand_spec(16), LABELS)  # fixed L, no buckets
    for p in model.metadata_props:
        if p.key == "signrt.model":
            p.value = json.dumps({**json.loads(p.value), "buckets": BUCKETS})
    save_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="fixes L = 16"):
        load_model_file(tmp_path / "m.onnx")


# ------------------------------------------------------------------------- runtime
def test_engine_accepts_the_buckets_only(tmp_path: Path) -> None:
    path, W, b = _write(tmp_path / "m.onnx")
    engine = OrtEngine(load_model_file(path), "cpu", EngineOptions(warmup=1, batch_sizes=(1, 2)))
    assert engine.lengths == (4, 8, 16)
    rng = np.random.default_rng(1)
    for length in (4, 8, 16, 4):
        f = rng.standard_normal((2, length, 42)).astype(np.float32)
        m = np.ones((2, length), np.float32)
        np.testing.assert_allclose(engine.run(f, m), numpy_logits(f, m, W, b),
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ShapeError, match=r"L in \[4, 8, 16\]"):
        engine.run(np.zeros((1, 5, 42), np.float32), np.ones((1, 5), np.float32))
    f, m = check_inputs(np.zeros((1, 8, 42)), np.ones((1, 8)), 16, 42, (4, 8, 16))
    assert f.shape == (1, 8, 42) and f.dtype == np.float32


def test_recognizer_and_stream_run_on_the_bucket(tmp_path: Path) -> None:
    path, W, b = _write(tmp_path / "m.onnx")
    bucketed = load(path, device="cpu", warmup=0)
    full = load(path, device="cpu", warmup=0, length_buckets=False)
    assert bucketed.lengths == (4, 8, 16) and full.lengths == (16,)
    rec = Recognizer(bucketed.model, Recording(bucketed.engine))
    for frames, want in [(1, 4), (4, 4), (5, 8), (9, 16), (30, 16)]:
        clip = _clip(frames)
        got, ref = rec.predict(clip), full.predict(clip)
        assert rec.engine.seen[-1] == (1, want)  # type: ignore[attr-defined]
        assert [lab for lab, _ in got.topk] == [lab for lab, _ in ref.topk]
        assert [p for _, p in got.topk] == pytest.approx([p for _, p in ref.topk], abs=1e-6)
        feats, mask = full.preprocess(clip)
        logits = bucketed.engine.run(*bucketed.trim(feats[None], mask[None]))
        np.testing.assert_allclose(logits, numpy_logits(feats[None], mask[None], W, b),
                                   rtol=1e-5, atol=1e-5)
    # a batch runs at the bucket of its longest clip; a clip without a signer is left out
    empty = np.full((6, 543, 3), np.nan, np.float32)
    preds = rec.predict_batch([_clip(3), empty, _clip(6)])
    assert rec.engine.seen[-1] == (2, 8)  # type: ignore[attr-defined]
    assert preds[1].no_signer and [p.label for p in preds] == [
        p.label for p in full.predict_batch([_clip(3), empty, _clip(6)])]
    # the stream: the window holds 3, then 7, then 16 real frames
    rec.engine.seen.clear()  # type: ignore[attr-defined]
    stream = rec.stream("window", stride=1, min_frames=3, confirm=1, threshold=0.0)
    for t in range(20):
        stream.push(hand_frame(0.3 + 0.01 * t), t / 10)
    lengths = [n for _, n in rec.engine.seen]  # type: ignore[attr-defined]
    assert lengths[:2] == [4, 4] and lengths[2:6] == [8] * 4 and set(lengths[6:]) == {16}


def test_engine_profiles_cover_the_buckets(tmp_path: Path) -> None:
    mf = load_model_file(_write(tmp_path / "m.onnx")[0])
    shapes = profile_shapes(mf, 1, 2, 8, (4, 8, 16))
    assert shapes["features"] == ((1, 4, 42), (2, 16, 42), (8, 16, 42))
    assert shapes["mask"] == ((1, 4), (2, 16), (8, 16))
    ep = tensorrt_ep_options(mf, EngineOptions(cache_dir=tmp_path, opt_batch=2, max_batch=8))
    assert ep["trt_profile_min_shapes"] == "features:1x4x42,mask:1x4"
    assert ep["trt_profile_opt_shapes"] == "features:2x16x42,mask:2x16"
    assert ep["trt_profile_max_shapes"] == "features:8x16x42,mask:8x16"
    off = tensorrt_ep_options(mf, EngineOptions(cache_dir=tmp_path, length_buckets=False))
    assert off["trt_profile_min_shapes"] == "features:1x16x42,mask:1x16"


_GPU = [d for d in ("cuda", "tensorrt", "trt") if eng_mod.available_devices()[d] is None]


@pytest.mark.gpu
@pytest.mark.skipif(not _GPU or importlib.util.find_spec("onnxruntime") is None,
                    reason="needs onnxruntime-gpu (CUDA / TensorRT EP) or tensorrt")
@pytest.mark.parametrize("device", _GPU or ["none"])
def test_gpu_engines_run_every_bucket(device: str, tmp_path: Path) -> None:
    path, W, b = _write(tmp_path / "m.onnx")
    engine = create_engine(load_model_file(path), device,
                           EngineOptions(cache_dir=tmp_path, batch_sizes=(1,), max_batch=8))
    assert tuple(engine.lengths) == (4, 8, 16)  # type: ignore[attr-defined]
    rng = np.random.default_rng(2)
    for length in (16, 4, 8, 16):
        f = rng.standard_normal((3, length, 42)).astype(np.float32)
        m = np.ones((3, length), np.float32)
        np.testing.assert_allclose(engine.run(f, m), numpy_logits(f, m, W, b),
                                   rtol=2e-3, atol=2e-3)


def test_predict_fast_path_equals_classify_features(tmp_path: Path) -> None:
    """predict (run_prepared, no input re-check) gives classify_features' answer exactly."""
    path, _, _ = _write(tmp_path / "m.onnx")
    rec = load(path, device="cpu", warmup=0)
    engine = rec.engine
    assert isinstance(engine, OrtEngine) and rec._run1 == engine.run_prepared
    rng = np.random.default_rng(2)
    for length in (4, 8, 16):
        f = rng.standard_normal((1, length, 42)).astype(np.float32)
        m = np.ones((1, length), np.float32)
        np.testing.assert_array_equal(engine.run_prepared(f, m), engine.run(f, m))
    for frames in (1, 4, 5, 9, 16, 30):
        clip = _clip(frames)
        feats, mask = rec.preprocess(clip)
        want = rec.classify_features(feats[None], mask[None])[0]
        got = rec.predict(clip)
        assert got.topk == want and got.label == want[0][0] and got.score == want[0][1]
    # an engine swapped in afterwards (a wrapper without run_prepared) gets run()
    rec.engine = Recording(engine)
    assert rec._run1 == rec.engine.run
    rec.predict(_clip(5))
    assert rec.engine.seen == [(1, 8)]  # type: ignore[attr-defined]
    assert rec.predict(np.full((3, 543, 3), np.nan, np.float32)).no_signer
