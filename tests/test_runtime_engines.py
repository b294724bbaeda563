"""Engines: onnxruntime CPU against a NumPy oracle, device selection, TensorRT helpers.

GPU tests (CUDA EP, TensorRT EP, native TensorRT, engine cache reuse) are marked ``gpu``
and skip when the provider or package is missing.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers_models import hand_spec, numpy_logits, write_pooling_model
from signrt.errors import DeviceError, EngineOptionError, ModelError, ShapeError, SignrtError
from signrt.runtime import engines as eng_mod
from signrt.runtime import tensorrt as trt_mod
from signrt.runtime.engines import (
    Engine,
    EngineOptions,
    OrtEngine,
    available_devices,
    create_engine,
    default_cache_dir,
    resolve_cache_dir,
    tensorrt_ep_options,
)
from signrt.runtime.model import ModelFile, load_model_file

LABELS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelFile, np.ndarray, np.ndarray]:
    path, W, b = write_pooling_model(
        tmp_path_factory.mktemp("m") / "m.onnx", hand_spec(16), LABELS, seed=3
    )
    return load_model_file(path), W, b


def _inputs(batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f = rng.standard_normal((batch, 16, 42)).astype(np.float32)
    lengths = rng.integers(0, 17, batch)
    m = (np.arange(16)[None, :] < lengths[:, None]).astype(np.float32)
    return f, m


# ------------------------------------------------------------------------ CPU engine
@pytest.mark.parametrize("batch", [1, 3, 32])
def test_cpu_matches_numpy(model: tuple[ModelFile, np.ndarray, np.ndarray], batch: int) -> None:
    mf, W, b = model
    engine = OrtEngine(mf, "cpu", EngineOptions(batch_sizes=(1, 32), intra_op_num_threads=1))
    assert isinstance(engine, Engine)
    assert (engine.name, engine.device, engine.providers) == (
        "onnxruntime-cpu", "cpu", ("CPUExecutionProvider",))
    f, m = _inputs(batch, seed=batch)
    out = engine.run(f, m)
    assert out.dtype == np.float32 and out.shape == (batch, 4)
    np.testing.assert_allclose(out, numpy_logits(f, m, W, b), rtol=1e-5, atol=1e-5)
    # the session.run fallback (binding busy) gives the same numbers
    assert engine._lock.acquire()
    try:
        np.testing.assert_allclose(engine.run(f, m), out, rtol=1e-6, atol=1e-6)
    finally:
        engine._lock.release()


def test_outputs_are_owned_by_caller(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    engine = OrtEngine(model[0], "cpu")
    f1, m1 = _inputs(1, 1)
    f2, m2 = _inputs(1, 2)
    a = engine.run(f1, m1)
    a_copy = a.copy()
    engine.run(f2, m2)
    np.testing.assert_array_equal(a, a_copy)


def test_converts_dtype_and_layout(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    mf, W, b = model
    engine = OrtEngine(mf, "cpu", EngineOptions(warmup=0))
    f, m = _inputs(2, 5)
    f64 = np.asfortranarray(f.astype(np.float64))
    np.testing.assert_allclose(engine.run(f64, m.astype(np.float64)),
                               numpy_logits(f, m, W, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("fshape", "mshape", "match"),
    [
        ((1, 16, 40), (1, 16), r"features must be \(B, 16, 42\)"),
        ((1, 8, 42), (1, 8), r"features must be \(B, 16, 42\)"),
        ((16, 42), (16,), r"features must be"),
        ((2, 16, 42), (1, 16), r"mask must be"),
        ((0, 16, 42), (0, 16), "empty batch"),
    ],
)
def test_shape_errors(model: tuple[ModelFile, np.ndarray, np.ndarray], fshape: tuple[int, ...],
                      mshape: tuple[int, ...], match: str) -> None:
    engine = OrtEngine(model[0], "cpu", EngineOptions(warmup=0))
    with pytest.raises(ShapeError, match=match):
        engine.run(np.zeros(fshape, np.float32), np.zeros(mshape, np.float32))


def test_fixed_batch_model_is_chunked(tmp_path: Path) -> None:
    path, W, b = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS, batch=2)
    mf = load_model_file(path)
    engine = OrtEngine(mf, "cpu", EngineOptions(batch_sizes=(2,)))
    for batch in (1, 2, 5):
        f, m = _inputs(batch, batch)
        np.testing.assert_allclose(engine.run(f, m), numpy_logits(f, m, W, b),
                                   rtol=1e-5, atol=1e-5)


def test_unusual_batch_sizes_still_work(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    mf, W, b = model
    engine = OrtEngine(mf, "cpu", EngineOptions(warmup=0))
    for batch in range(1, 12):  # more sizes than preallocated slots
        f, m = _inputs(batch, batch)
        np.testing.assert_allclose(engine.run(f, m), numpy_logits(f, m, W, b),
                                   rtol=1e-5, atol=1e-5)
    assert len(engine._slots) <= eng_mod._MAX_SLOTS


def test_dynamic_output_width_checked_at_warmup(tmp_path: Path) -> None:
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS,
                                     dims=(None, None, "K"))  # type: ignore[arg-type]
    mf = load_model_file(path)
    broken = ModelFile(**{**mf.__dict__, "labels": ("a", "b")})
    with pytest.raises(ModelError, match=r"logits of shape \(1, 4\).*expected \(1, 2\)"):
        OrtEngine(broken, "cpu")


def test_engine_options() -> None:
    # Every option error is an EngineOptionError, a SignrtError that is also a ValueError.
    assert issubclass(EngineOptionError, SignrtError) and issubclass(EngineOptionError, ValueError)
    with pytest.raises(EngineOptionError, match=r"unknown engine option.*threads"):
        EngineOptions.from_kwargs({"threads": 2})
    with pytest.raises(EngineOptionError, match="batch range"):
        EngineOptions(min_batch=4, opt_batch=2)
    with pytest.raises(EngineOptionError, match="intra_op_num_threads"):
        EngineOptions(intra_op_num_threads=0)
    with pytest.raises(EngineOptionError, match="graph_optimization"):
        EngineOptions(graph_optimization="max")
    assert EngineOptions.from_kwargs({"batch_sizes": [1, 8]}).batch_sizes == (1, 8)


def test_thread_count_is_applied(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    engine = OrtEngine(model[0], "cpu", EngineOptions(intra_op_num_threads=1, warmup=0,
                                                      allow_spinning=False))
    so = engine.session.get_session_options()
    assert so.intra_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


# ---------------------------------------------------------------------- device choice
_HAS_CUDA = available_devices()["cuda"] is None
_HAS_TRT_EP = available_devices()["tensorrt"] is None
_HAS_TRT = available_devices()["trt"] is None


def test_available_devices_shape() -> None:
    devs = available_devices()
    assert set(devs) == {"cpu", "cuda", "tensorrt", "trt"}
    assert devs["cpu"] is None


def test_devices_are_probed_once(model: tuple[ModelFile, np.ndarray, np.ndarray],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    eng_mod._probe_devices.cache_clear()
    calls: list[int] = []
    real = trt_mod.tensorrt_unavailable_reason

    def counted() -> str | None:
        calls.append(1)
        return real()

    monkeypatch.setattr(eng_mod, "tensorrt_unavailable_reason", counted)
    try:
        available_devices()["cpu"] = "edited"  # a copy: the cached probe is not changed
        create_engine(model[0], "cpu", EngineOptions(warmup=0))
        create_engine(model[0], "auto", EngineOptions(warmup=0))
        assert available_devices()["cpu"] is None
        assert len(calls) == 1
    finally:
        eng_mod._probe_devices.cache_clear()


def test_unknown_device(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(EngineOptionError, match="unknown device 'gpu'"):
        create_engine(model[0], "gpu")


@pytest.mark.skipif(_HAS_CUDA, reason="CUDA provider present")
def test_explicit_cuda_unavailable(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(DeviceError, match=r"CUDAExecutionProvider.*onnxruntime-gpu"):
        create_engine(model[0], "cuda")


@pytest.mark.skipif(_HAS_TRT_EP, reason="TensorRT provider present")
def test_explicit_tensorrt_unavailable(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(DeviceError, match="TensorrtExecutionProvider"):
        create_engine(model[0], "tensorrt")


@pytest.mark.skipif(_HAS_TRT, reason="tensorrt installed")
def test_explicit_trt_unavailable(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(DeviceError, match="'tensorrt' Python package is not installed"):
        create_engine(model[0], "TRT")
    with pytest.raises(DeviceError, match="tensorrt"):
        trt_mod.TensorRTEngine(model[0])


@pytest.mark.skipif(_HAS_CUDA or _HAS_TRT_EP or _HAS_TRT, reason="a GPU backend is present")
def test_auto_on_cpu_logs_one_line(model: tuple[ModelFile, np.ndarray, np.ndarray],
                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="signrt.runtime.engines"):
        engine = create_engine(model[0], "auto")
    assert engine.device == "cpu"
    records = [r for r in caplog.records if r.name == "signrt.runtime.engines"]
    assert len(records) == 1
    msg = records[0].getMessage()
    assert msg.startswith("device auto -> cpu (CPUExecutionProvider)")
    assert "tensorrt:" in msg and "cuda:" in msg and "trt:" in msg


def test_provider_that_fails_to_start_is_an_error_not_a_fallback(
    model: tuple[ModelFile, np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if _HAS_CUDA:
        pytest.skip("CUDA provider present")
    # Pretend onnxruntime lists CUDA: the session then silently falls back to CPU, which
    # the engine must refuse for an explicit request, and auto must skip.
    real = available_devices()
    monkeypatch.setattr(eng_mod, "available_devices", lambda: {**real, "cuda": None})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DeviceError, match="CUDAExecutionProvider failed to start"):
            create_engine(model[0], "cuda")
        with caplog.at_level(logging.INFO, logger="signrt.runtime.engines"):
            engine = create_engine(model[0], "auto")
    assert engine.device == "cpu"
    assert "cuda: device 'cuda': CUDAExecutionProvider failed" in caplog.records[-1].getMessage()


def test_auto_with_nothing_usable(model: tuple[ModelFile, np.ndarray, np.ndarray],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eng_mod, "available_devices",
                        lambda: dict.fromkeys(("cpu", "cuda", "tensorrt", "trt"), "missing"))
    with pytest.raises(DeviceError, match="no usable backend"):
        create_engine(model[0], "auto")


# --------------------------------------------------------------------- cache and EP
def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SIGNRT_CACHE_DIR", raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "signrt"
    monkeypatch.setenv("SIGNRT_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(None) == tmp_path / "env"
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.parametrize(("precision", "fp16", "int8"),
                         [("fp32", "False", "False"), ("fp16", "True", "False"),
                          ("int8", "True", "True")])
def test_tensorrt_ep_options(model: tuple[ModelFile, np.ndarray, np.ndarray], tmp_path: Path,
                             precision: str, fp16: str, int8: str) -> None:
    mf = ModelFile(**{**model[0].__dict__, "precision": precision})
    opts = tensorrt_ep_options(mf, EngineOptions(cache_dir=tmp_path, max_batch=8,
                                                 workspace_bytes=1 << 28))
    assert opts["trt_fp16_enable"] == fp16 and opts["trt_int8_enable"] == int8
    assert opts["trt_engine_cache_enable"] == "True" and opts["trt_timing_cache_enable"] == "True"
    assert Path(opts["trt_engine_cache_path"]) == tmp_path / "ort-trt" / mf.sha256[:16]
    assert Path(opts["trt_timing_cache_path"]) == tmp_path / "timing"
    assert Path(opts["trt_engine_cache_path"]).is_dir()
    assert opts["trt_profile_min_shapes"] == "features:1x16x42,mask:1x16"
    assert opts["trt_profile_opt_shapes"] == "features:1x16x42,mask:1x16"
    assert opts["trt_profile_max_shapes"] == "features:8x16x42,mask:8x16"
    assert opts["trt_max_workspace_size"] == str(1 << 28)


def test_tensorrt_ep_profile_of_fixed_batch(tmp_path: Path) -> None:
    path, _, _ = write_pooling_model(tmp_path / "m.onnx", hand_spec(16), LABELS, batch=4)
    opts = tensorrt_ep_options(load_model_file(path), EngineOptions(cache_dir=tmp_path))
    assert {opts[f"trt_profile_{k}_shapes"] for k in ("min", "opt", "max")} == {
        "features:4x16x42,mask:4x16"}


# -------------------------------------------------------------- native TensorRT helpers
def test_engine_cache_key() -> None:
    shapes = {"features": ((1, 16, 42), (1, 16, 42), (32, 16, 42)),
              "mask": ((1, 16), (1, 16), (32, 16))}
    base = ("ab" * 32, "10.3.0", "NVIDIA H100", "fp16", shapes)
    key = trt_mod.engine_cache_key(*base)
    assert len(key) == 32 and key == trt_mod.engine_cache_key(*base)
    variants = [
        ("cd" * 32, *base[1:]),
        (base[0], "10.4.0", *base[2:]),
        (*base[:2], "Orin", *base[3:]),
        (*base[:3], "int8", shapes),
        (*base[:4], {**shapes, "mask": ((1, 16), (2, 16), (32, 16))}),
    ]
    keys = {trt_mod.engine_cache_key(*v) for v in variants}
    assert len(keys) == len(variants) and key not in keys


def test_profile_shapes(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    shapes = trt_mod.profile_shapes(model[0], 1, 4, 32)
    assert shapes == {"features": ((1, 16, 42), (4, 16, 42), (32, 16, 42)),
                      "mask": ((1, 16), (4, 16), (32, 16))}


def test_sidecar_round_trip(model: tuple[ModelFile, np.ndarray, np.ndarray],
                            tmp_path: Path) -> None:
    mf = model[0]
    engine_path, sidecar = trt_mod.engine_paths(tmp_path, "k" * 32)
    assert engine_path == tmp_path / "trt" / f"{'k' * 32}.engine"
    key = {"onnx_sha256": mf.sha256, "tensorrt": "10.3.0", "gpu": "Orin", "precision": "fp32",
           "shapes": {"features": [[1, 16, 42]] * 3}}
    trt_mod.write_sidecar(sidecar, mf, key)
    spec, labels, doc = trt_mod.read_sidecar(sidecar)
    assert spec == mf.spec and labels == mf.labels
    assert doc["onnx_sha256"] == mf.sha256 and doc["gpu"] == "Orin"


@pytest.mark.parametrize("content", [None, "{", '{"version": 99}', '{"version": 1, "spec": {}}',
                                     "LABELS"])
def test_sidecar_errors(model: tuple[ModelFile, np.ndarray, np.ndarray], tmp_path: Path,
                        content: str | None) -> None:
    p = tmp_path / "x.json"
    if content == "LABELS":
        content = json.dumps({"version": 1, "spec": model[0].spec.to_dict(), "labels": []})
    if content is not None:
        p.write_text(content)
    with pytest.raises(ModelError, match=r"sidecar.*rebuilt"):
        trt_mod.read_sidecar(p)


def test_trt_reason_names_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    present = {"tensorrt"}
    monkeypatch.setattr(trt_mod, "_has_module", lambda name: name in present)
    assert "cuda-python" in (trt_mod.tensorrt_unavailable_reason() or "")
    present.clear()
    assert "'tensorrt' Python package" in (trt_mod.tensorrt_unavailable_reason() or "")
    present.update({"tensorrt", "cuda.bindings"})
    assert trt_mod.tensorrt_unavailable_reason() is None


# ----------------------------------------------------------------------------- GPU
def _gpu_check(engine: Engine, mf: ModelFile, W: np.ndarray, b: np.ndarray) -> None:
    for batch in (1, 5, 32, 40):
        f, m = _inputs(batch, batch)
        np.testing.assert_allclose(engine.run(f, m), numpy_logits(f, m, W, b),
                                   rtol=2e-3, atol=2e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not _HAS_CUDA, reason="needs onnxruntime-gpu with CUDA")
def test_gpu_cuda_engine(model: tuple[ModelFile, np.ndarray, np.ndarray]) -> None:
    mf, W, b = model
    engine = create_engine(mf, "cuda", EngineOptions(batch_sizes=(1, 32)))
    assert engine.providers[0] == "CUDAExecutionProvider"
    _gpu_check(engine, mf, W, b)


@pytest.mark.gpu
@pytest.mark.skipif(not _HAS_TRT_EP, reason="needs onnxruntime-gpu with TensorRT")
def test_gpu_tensorrt_ep_engine_cache(model: tuple[ModelFile, np.ndarray, np.ndarray],
                                      tmp_path: Path) -> None:
    mf, W, b = model
    opts = EngineOptions(cache_dir=tmp_path, batch_sizes=(1, 32), max_batch=32)
    engine = create_engine(mf, "tensorrt", opts)
    assert engine.providers[0] == "TensorrtExecutionProvider"
    _gpu_check(engine, mf, W, b)
    assert any((tmp_path / "ort-trt").rglob("*")), "engine cache is empty"
    create_engine(mf, "tensorrt", opts)  # reuses the cache


@pytest.mark.gpu
@pytest.mark.skipif(not _HAS_TRT or importlib.util.find_spec("tensorrt") is None,
                    reason="needs tensorrt and cuda-python")
def test_gpu_native_tensorrt_cache_reuse(model: tuple[ModelFile, np.ndarray, np.ndarray],
                                         tmp_path: Path) -> None:
    mf, W, b = model
    opts = EngineOptions(cache_dir=tmp_path, batch_sizes=(1,), max_batch=32)
    first = trt_mod.TensorRTEngine(mf, opts)
    assert first.built and first.engine_path.is_file() and first.sidecar_path.is_file()
    _gpu_check(first, mf, W, b)
    second = trt_mod.TensorRTEngine(mf, opts)
    assert not second.built and second.cache_key == first.cache_key
    _gpu_check(second, mf, W, b)
    spec, labels, _ = trt_mod.read_sidecar(first.sidecar_path)
    assert spec == mf.spec and labels == mf.labels
