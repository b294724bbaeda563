"""Native preprocessing (signrt._native) against the NumPy reference, and its bindings.

Covers: parity native vs reference (hypothesis: random NaN patterns, missing hands, lengths
0 … 3·max_len, every preset, both fit modes, coords 2 and 3, nan_fill values), batch vs
per-clip, stream vs batch at every step across wrap-around, dtype/layout conversions, bad
input (shapes, dtypes, spec documents with the same field on both sides), ±inf, finiteness,
and several Python threads at once.
"""

from __future__ import annotations

import json
import threading
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import signrt
from signrt import FeatureSpec, ShapeError, SignrtError, SpecError, _native
from signrt.features import (
    FeatureStream,
    Preprocessor,
    preprocess,
    preprocess_batch,
    preprocess_reference,
)

PRESETS = FeatureSpec.presets()
TOL = 1e-5
LEFT_HAND = slice(468, 489)
RIGHT_HAND = slice(522, 543)


# ----------------------------------------------------------------------------- helpers
def make_clip(
    t: int,
    seed: int,
    p_missing: float = 0.2,
    *,
    offset: float = 0.0,
    empty_frames: float = 0.1,
    no_hands: float = 0.2,
    p_inf: float = 0.0,
) -> np.ndarray:
    """A (t, 543, 3) float32 clip around 0.5 with missing landmarks, empty frames, no hands."""
    rng = np.random.default_rng(seed)
    x = (offset + 0.5 + (rng.random((t, 543, 3)) - 0.5) * 0.6).astype(np.float32)
    x[rng.random((t, 543)) < p_missing] = np.nan
    x[rng.random(t) < empty_frames] = np.nan
    hands = rng.random(t) < no_hands
    x[hands, LEFT_HAND] = np.nan
    x[hands, RIGHT_HAND] = np.nan
    if p_inf:
        bad = rng.random((t, 543, 3)) < p_inf
        x[bad] = np.where(rng.random(bad.sum()) < 0.5, np.inf, -np.inf)
    return x


def native_spec(spec: FeatureSpec) -> Any:
    return _native.Spec(spec.to_json())


def non_empty_frames(clip: np.ndarray, spec: FeatureSpec) -> int:
    sel = clip[:, list(spec.landmarks), : spec.coords]
    return int(np.isfinite(sel).any(axis=(1, 2)).sum())


def assert_parity(clip: np.ndarray, spec: FeatureSpec) -> None:
    feats, mask = preprocess(clip, spec)
    ref_feats, ref_mask = preprocess_reference(clip, spec)
    assert feats.dtype == np.float32 and mask.dtype == np.float32
    assert feats.shape == ref_feats.shape == (spec.max_len, spec.num_features)
    assert mask.shape == ref_mask.shape == (spec.max_len,)
    np.testing.assert_array_equal(mask, ref_mask)
    assert np.isfinite(feats).all()
    if feats.size:
        assert float(np.abs(feats - ref_feats).max()) <= TOL


@st.composite
def specs(draw: st.DrawFn) -> FeatureSpec:
    base = FeatureSpec.preset(draw(st.sampled_from(PRESETS)))
    max_len = draw(st.sampled_from([1, 2, 3, 8, 17, 32]))
    lags = tuple(k for k in base.motion_lags if k < max_len)
    return base.replace(
        max_len=max_len,
        motion_lags=lags,
        fit=draw(st.sampled_from(["truncate", "resample"])),
        coords=draw(st.sampled_from([2, 3])),
        drop_empty_frames=draw(st.booleans()),
        nan_fill=draw(st.sampled_from([0.0, -1.0, 0.5, 3])),
    )


# ----------------------------------------------------------------------------- parity
@settings(max_examples=80, deadline=None)
@given(
    spec=specs(),
    t_frac=st.floats(0.0, 3.0),
    seed=st.integers(0, 2**32 - 1),
    p_missing=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    no_hands=st.sampled_from([0.0, 0.5, 1.0]),
    offset=st.sampled_from([0.0, -2.0, 5.0]),
)
def test_parity_with_reference(spec, t_frac, seed, p_missing, no_hands, offset):
    t = int(t_frac * spec.max_len)
    clip = make_clip(t, seed, p_missing, offset=offset, no_hands=no_hands, p_inf=0.01)
    assert_parity(clip, spec)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("fit", ["truncate", "resample"])
@pytest.mark.parametrize("t", [0, 1, 2, 63, 64, 65, 192])
def test_parity_presets_at_edges(name, fit, t):
    spec = FeatureSpec.preset(name, fit=fit)
    assert_parity(make_clip(t, seed=t), spec)


@pytest.mark.parametrize("name", PRESETS)
def test_all_missing_clip_has_no_real_frame(name):
    spec = FeatureSpec.preset(name)
    feats, mask = preprocess(np.full((20, 543, 3), np.nan, np.float32), spec)
    assert not mask.any() and not feats.any()


def test_spec_of_a_wrong_type_is_a_spec_error():
    message = "preset name or JSON text, got int"
    with pytest.raises(SpecError, match=message):
        preprocess(np.zeros((4, 543, 3), np.float32), 3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=message):
        Preprocessor(3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=message):
        FeatureStream(3)  # type: ignore[arg-type]


def test_mask_counts_non_empty_frames():
    spec = FeatureSpec.preset("islr118")
    clip = make_clip(50, seed=3, empty_frames=0.3)
    _, mask = preprocess(clip, spec)
    assert mask.sum() == non_empty_frames(clip, spec)
    assert (mask[: int(mask.sum())] == 1).all()


def test_infinity_is_missing():
    spec = FeatureSpec.preset("islr118")
    clip = make_clip(30, seed=5)
    with_inf = clip.copy()
    with_inf[::3, ::7, 0] = np.inf
    with_inf[1::3, ::5, 1] = -np.inf
    with_nan = np.where(np.isfinite(with_inf), with_inf, np.nan)
    a, ma = preprocess(with_inf, spec)
    b, mb = preprocess(with_nan, spec)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    assert np.isfinite(a).all()


@pytest.mark.parametrize("kind", ["none", "shoulders", "reference_rms"])
def test_output_finite_for_extreme_values(kind):
    base = FeatureSpec.preset("hands_pose" if kind == "shoulders" else "islr118")
    spec = base if kind != "none" else base.replace(normalize={"kind": "none"})
    clip = make_clip(10, seed=1)
    clip[:, 468:489, 0] = np.float32(3e38)
    clip[::2, 468:489, 1] = np.float32(-3e38)
    clip[:, 500] = 0.5  # shoulders on top of each other: scale falls back
    clip[:, 501] = 0.5
    feats, _ = preprocess(clip, spec)
    assert np.isfinite(feats).all()


def test_nan_fill_replaces_missing_values():
    spec = FeatureSpec.preset("islr118", nan_fill=-7.0)
    clip = make_clip(5, seed=2, p_missing=0.0, empty_frames=0.0, no_hands=0.0)
    clip[:, LEFT_HAND] = np.nan
    feats, _ = preprocess(clip, spec)
    pos = spec.landmarks.index(468)
    block = feats[:5].reshape(5, spec.num_points, spec.channels)[:, pos]
    assert (block[:, :2] == -7.0).all()  # x, y of a missing point
    assert (block[:3, 2:4] == -7.0).all() and (block[4, 2:4] == 0.0).all()  # motion, then 0


# ----------------------------------------------------------------------------- batch
@settings(max_examples=30, deadline=None)
@given(
    spec=specs(),
    lengths=st.lists(st.integers(0, 100), min_size=0, max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_equals_per_clip(spec, lengths, seed):
    clips = [make_clip(t, seed + i) for i, t in enumerate(lengths)]
    feats, mask = preprocess_batch(clips, spec)
    assert feats.shape == (len(clips), spec.max_len, spec.num_features)
    assert mask.shape == (len(clips), spec.max_len)
    for i, clip in enumerate(clips):
        f, m = preprocess(clip, spec)
        np.testing.assert_array_equal(feats[i], f)
        np.testing.assert_array_equal(mask[i], m)


def test_batch_accepts_mixed_dtypes_and_a_4d_array():
    spec = FeatureSpec.preset("islr118")
    clips = [make_clip(t, t) for t in (10, 70, 0)]
    mixed = [clips[0].astype(np.float64), clips[1], clips[2].astype(np.float16)]
    a, _ = preprocess_batch(clips, spec)
    b, _ = preprocess_batch(mixed, spec)
    np.testing.assert_array_equal(a, b)
    stacked = np.stack([make_clip(12, s) for s in range(3)])
    f4, _ = _native.preprocess_batch(stacked, native_spec(spec))
    f3, _ = preprocess_batch(list(stacked), spec)
    np.testing.assert_array_equal(f4, f3)


def test_preprocessor_binds_a_spec():
    pre = Preprocessor("islr118")
    clip = make_clip(40, 9)
    np.testing.assert_array_equal(pre(clip)[0], preprocess(clip)[0])
    np.testing.assert_array_equal(pre.batch([clip, clip])[0][1], preprocess(clip)[0])


# ----------------------------------------------------------------------------- stream
@settings(max_examples=30, deadline=None)
@given(
    spec=specs(),
    n_frac=st.floats(0.1, 3.0),
    seed=st.integers(0, 2**32 - 1),
    p_missing=st.sampled_from([0.0, 0.3, 0.95]),
)
def test_stream_equals_batch_at_every_step(spec, n_frac, seed, p_missing):
    w = spec.max_len
    n = max(1, int(n_frac * w))
    frames = make_clip(n, seed, p_missing, empty_frames=0.2)
    stream = FeatureStream(spec)
    for i in range(n):
        stream.push(frames[i])
        window = frames[max(0, i + 1 - w) : i + 1]
        feats, mask = stream.features()
        ref, ref_mask = preprocess(window, spec)
        np.testing.assert_array_equal(mask, ref_mask)
        if feats.size:
            assert float(np.abs(feats - ref).max()) <= TOL, f"step {i}"
        assert len(stream) == len(window)
        assert stream.num_valid == non_empty_frames(window, spec)


@pytest.mark.parametrize("name", PRESETS)
def test_stream_parity_islr_window_across_wrap_around(name):
    spec = FeatureSpec.preset(name)  # W = 64
    frames = make_clip(3 * spec.max_len + 5, seed=11, empty_frames=0.15)
    stream = FeatureStream(spec)
    assert stream.capacity == spec.max_len and len(stream) == 0
    for i, frame in enumerate(frames):
        stream.push(frame)
        feats, mask = stream.features()
        ref, ref_mask = preprocess_reference(frames[max(0, i + 1 - spec.max_len) : i + 1], spec)
        np.testing.assert_array_equal(mask, ref_mask)
        assert float(np.abs(feats - ref).max()) <= TOL, f"step {i}"


def test_stream_reset_len_and_repr():
    spec = FeatureSpec.preset("islr118", max_len=8)
    stream = FeatureStream(spec)
    frames = make_clip(12, seed=4, empty_frames=0.0)
    frames[3] = np.nan
    for f in frames[:5]:
        stream.push(f)
    assert len(stream) == 5 and stream.num_valid == 4
    for f in frames[5:]:
        stream.push(f)
    assert len(stream) == 8 and stream.num_valid == 8
    assert "capacity=8" in repr(stream)
    stream.reset()
    assert len(stream) == 0 and stream.num_valid == 0
    feats, mask = stream.features()
    assert not feats.any() and not mask.any()
    stream.push(frames[0].astype(np.float64))
    np.testing.assert_allclose(stream.features()[0], preprocess(frames[:1], spec)[0], atol=TOL)
    assert stream.spec is spec


def test_stream_outputs_are_fresh_arrays():
    stream = FeatureStream("islr118")
    stream.push(make_clip(1, 0)[0])
    a, _ = stream.features()
    b, _ = stream.features()
    a[:] = 123.0
    assert not np.shares_memory(a, b) and (b != 123.0).any()


def test_stream_rejects_bad_frames():
    stream = FeatureStream("islr118")
    with pytest.raises(ShapeError, match=r"expected a frame of shape \(543, 3\).*\(1, 543, 3\)"):
        stream.push(np.zeros((1, 543, 3), np.float32))
    with pytest.raises(ShapeError, match=r"got \(542, 3\)"):
        stream.push(np.zeros((542, 3), np.float32))
    with pytest.raises(ShapeError, match="dtype complex64"):
        stream.push(np.zeros((543, 3), np.complex64))
    assert len(stream) == 0


# ----------------------------------------------------------------------------- conversions
@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda x: x.astype(np.float64), id="float64"),
        pytest.param(lambda x: x.astype(np.float16), id="float16"),
        pytest.param(lambda x: x.astype(">f4"), id="big-endian"),
        pytest.param(np.asfortranarray, id="fortran"),
        pytest.param(lambda x: np.repeat(x, 2, axis=0)[::2], id="strided"),
        pytest.param(lambda x: x.transpose(1, 0, 2).copy().transpose(1, 0, 2), id="transposed"),
        pytest.param(lambda x: x.tolist(), id="list"),
    ],
)
def test_dtype_and_layout_conversions_give_the_same_result(convert):
    spec = FeatureSpec.preset("islr118")
    # Values representable in float16, so every conversion is exact.
    clip = make_clip(40, seed=8).astype(np.float16).astype(np.float32)
    want, want_mask = _native.preprocess(clip, native_spec(spec))
    got, got_mask = _native.preprocess(convert(clip), native_spec(spec))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_mask, want_mask)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint16, np.float16])
def test_integer_and_half_inputs(dtype):
    spec = FeatureSpec.preset("hands_pose")
    rng = np.random.default_rng(0)
    clip = rng.integers(0, 100, size=(20, 543, 3)).astype(dtype)
    feats, mask = preprocess(clip, spec)
    ref, ref_mask = preprocess_reference(clip.astype(np.float64), spec)
    np.testing.assert_array_equal(mask, ref_mask)
    np.testing.assert_allclose(feats, ref, atol=TOL)


def test_read_only_and_unaligned_inputs():
    spec = FeatureSpec.preset("islr118")
    clip = make_clip(16, seed=6)
    want, _ = preprocess(clip, spec)
    ro = clip.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(preprocess(ro, spec)[0], want)
    buf = np.zeros(clip.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(buf.data, dtype=np.float32, count=clip.size, offset=1)
    unaligned = unaligned.reshape(clip.shape)
    assert not unaligned.flags.aligned
    unaligned[...] = clip
    np.testing.assert_array_equal(preprocess(unaligned, spec)[0], want)


def test_input_is_not_modified_and_outputs_are_owned():
    spec = FeatureSpec.preset("islr118")
    clip = make_clip(30, seed=7, p_inf=0.01)
    before = clip.copy()
    feats, _ = preprocess(clip, spec)
    np.testing.assert_array_equal(clip, before)
    assert feats.flags.c_contiguous and feats.flags.writeable
    assert not np.shares_memory(feats, clip)
    # each call returns fresh arrays: writing into one result changes no other result
    again, _ = preprocess(clip, spec)
    assert not np.shares_memory(feats, again)
    expected = again.copy()
    feats[...] = 7.0
    np.testing.assert_array_equal(again, expected)
    np.testing.assert_array_equal(preprocess(clip, spec)[0], expected)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((543, 3), np.float32), r"expected a clip of shape \(T, 543, 3\).*got \(543, 3\)"),
        (np.zeros((4, 542, 3), np.float32), r"got \(4, 542, 3\)"),
        (np.zeros((4, 543, 2), np.float32), r"got \(4, 543, 2\)"),
        (np.zeros((2, 4, 543, 3), np.float32), r"got \(2, 4, 543, 3\)"),
        (np.zeros(5, np.float32), r"got \(5,\)"),
        (np.zeros((4, 543, 3), np.complex128), "dtype complex128"),
        (np.zeros((4, 543, 3), bool), "dtype bool"),
        (np.full((4, 543, 3), "a"), "dtype <U1"),
        (np.empty((4, 543, 3), object), "dtype object"),
    ],
)
def test_bad_clips_raise_shape_error(array, match):
    spec = FeatureSpec.preset("islr118")
    for call in (
        lambda: _native.preprocess(array, native_spec(spec)),
        lambda: preprocess(array, spec),
    ):
        with pytest.raises(ShapeError, match=match) as err:
            call()
        assert isinstance(err.value, ValueError) and isinstance(err.value, SignrtError)


def test_native_rejects_unreadable_objects():
    with pytest.raises(ShapeError, match="expected a clip"):
        _native.preprocess([[1, 2], [3]], native_spec(FeatureSpec.preset("islr118")))


def test_batch_names_the_bad_clip():
    spec = FeatureSpec.preset("islr118")
    good = make_clip(3, 0)
    for call in (
        lambda c: _native.preprocess_batch(c, native_spec(spec)),
        lambda c: preprocess_batch(c, spec),
    ):
        with pytest.raises(ShapeError, match=r"^clip 1: expected a clip .*got \(3, 543\)"):
            call([good, np.zeros((3, 543))])
        with pytest.raises(ShapeError, match=r"^clip 2: .*dtype complex64"):
            call([good, good, np.zeros((3, 543, 3), np.complex64)])
    feats, mask = preprocess_batch([], spec)
    assert feats.shape == (0, 64, 708) and mask.shape == (0, 64)


def test_version_string():
    assert isinstance(_native.__version__, str) and _native.__version__.count(".") == 2


def test_public_names():
    assert signrt.FeatureStream is FeatureStream


def test_baseline_instruction_set_gives_the_same_bits(tmp_path):
    """SIGNRT_DISABLE_SIMD=1 (read at import) runs the baseline path: same bits as this one."""
    import os
    import subprocess
    import sys

    assert _native.simd in ("baseline", "avx2", "avx512")
    clips = {f"c{t}": make_clip(t, seed=t, p_inf=0.05) for t in (1, 17, 64, 150)}
    np.savez(tmp_path / "clips.npz", **clips)
    code = (
        "import sys, numpy as np, signrt; from signrt import _native; "
        "assert _native.simd == 'baseline', _native.simd; "
        "d = np.load(sys.argv[1]); "
        "np.savez(sys.argv[2], **{k: signrt.preprocess(d[k], 'islr118')[0] for k in d.files})"
    )
    env = {**os.environ, "SIGNRT_DISABLE_SIMD": "1"}
    out = tmp_path / "out.npz"
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "clips.npz"), str(out)],
        env=env, check=True, timeout=120,
    )
    base = np.load(out)
    for k, clip in clips.items():
        here = signrt.preprocess(clip, "islr118")[0]
        assert np.array_equal(here.view(np.uint32), base[k].view(np.uint32)), k


@pytest.mark.parametrize("wanted", ["baseline", "avx2"])
def test_simd_override_gives_the_same_bits(tmp_path, wanted):
    """SIGNRT_SIMD picks a narrower instruction set (capped at the CPU's): same bits for
    preprocess, every layout, and FeatureStream.features()."""
    import os
    import subprocess
    import sys

    clip = make_clip(70, seed=11, p_inf=0.05)
    np.save(tmp_path / "clip.npy", clip)
    code = (
        "import sys, numpy as np, signrt; from signrt import _native; "
        "x = np.load(sys.argv[1]); s = signrt.FeatureStream('islr118'); "
        "[s.push(f) for f in x]; "
        "np.savez(sys.argv[2], simd=np.array(_native.simd), c=signrt.preprocess(x)[0], "
        "f=signrt.preprocess(np.asfortranarray(x, dtype=np.float64))[0], "
        "s=s.features()[0])"
    )
    env = {k: v for k, v in os.environ.items() if k != "SIGNRT_DISABLE_SIMD"}
    env["SIGNRT_SIMD"] = wanted
    out = tmp_path / "out.npz"
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "clip.npy"), str(out)],
        env=env, check=True, timeout=120,
    )
    got = np.load(out)
    order = ["baseline", "avx2", "avx512"]
    # the set asked for, or the CPU's widest if it lacks that one
    assert order.index(str(got["simd"])) <= order.index(wanted)
    if wanted == "baseline" or _native.simd != "baseline":
        assert str(got["simd"]) == min(wanted, _native.simd, key=order.index)
    stream = FeatureStream("islr118")
    for f in clip:
        stream.push(f)
    here = {"c": preprocess(clip)[0], "f": preprocess(np.asfortranarray(clip, np.float64))[0],
            "s": stream.features()[0]}
    for k, v in here.items():
        assert np.array_equal(v.view(np.uint32), got[k].view(np.uint32)), k


# ----------------------------------------------------------------------------- threads
def test_several_threads_preprocess_at_once():
    spec = FeatureSpec.preset("islr118")
    clips = [make_clip(t, t) for t in (5, 40, 64, 100, 200, 0)]
    want = [preprocess(c, spec) for c in clips]
    want_batch = preprocess_batch(clips, spec)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(30):
                j = (i + k) % len(clips)
                f, m = preprocess(clips[j], spec)
                np.testing.assert_array_equal(f, want[j][0])
                np.testing.assert_array_equal(m, want[j][1])
                if i % 10 == 0:
                    fb, _ = preprocess_batch(clips, spec)
                    np.testing.assert_array_equal(fb, want_batch[0])
        except BaseException as exc:  # collected, reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_one_stream_shared_by_threads():
    spec = FeatureSpec.preset("islr118", max_len=16)
    stream = FeatureStream(spec)
    frames = make_clip(50, seed=12, empty_frames=0.0, p_missing=0.0)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for f in frames:
                stream.push(f)
                feats, _ = stream.features()
                assert np.isfinite(feats).all()
        except BaseException as exc:  # collected, reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(stream) == 16 and stream.num_valid == 16


def _batch_in_child(queue: Any) -> None:
    clips = [np.full((5 + i, 543, 3), 0.5, np.float32) for i in range(8)]
    feats, _ = preprocess_batch(clips, FeatureSpec.preset("islr118"))
    queue.put(feats.shape)


def test_batch_works_in_a_forked_child():
    """A fork()ed child (e.g. a DataLoader worker) gets its own thread pool instead of hanging."""
    import multiprocessing as mp

    clips = [np.full((5, 543, 3), 0.5, np.float32)] * 8
    preprocess_batch(clips, FeatureSpec.preset("islr118"))  # the parent's pool exists now
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_batch_in_child, args=(queue,))
    with warnings.catch_warnings():
        # Python >= 3.12 warns that fork() in a multi-threaded process may deadlock: that
        # is exactly the situation under test.
        warnings.simplefilter("ignore", DeprecationWarning)
        child.start()
    child.join(timeout=60)
    if child.is_alive():
        child.kill()
        pytest.fail("preprocess_batch hung in a forked child")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == (8, 64, 708)


# ----------------------------------------------------------------------------- layouts
# Every layout a clip arrives in, as a function of a C-order float32 clip giving the same
# values: the native core reads float32/float64 views of any strides in place.
LAYOUTS: dict[str, Any] = {
    "c-float32": lambda x: x,
    "c-float64": lambda x: x.astype(np.float64),
    "fortran": np.asfortranarray,
    "fortran-float64": lambda x: np.asfortranarray(x, dtype=np.float64),
    # pandas' df[["x", "y", "z"]].values: a Fortran-order (T·543, 3) float64 array reshaped
    "pandas": lambda x: np.asfortranarray(x.reshape(-1, 3), dtype=np.float64).reshape(-1, 543, 3),
    "frames-reversed": lambda x: x[::-1].copy()[::-1],
    "all-axes-reversed": lambda x: x[::-1, ::-1, ::-1].copy()[::-1, ::-1, ::-1],
    "sliced": lambda x: np.repeat(np.repeat(x, 2, axis=0), 2, axis=2)[::2, :, ::2],
    "landmark-major": lambda x: x.transpose(1, 0, 2).copy().transpose(1, 0, 2),
    "byte-swapped": lambda x: x.astype(">f4"),
    "byte-swapped-float64": lambda x: np.asfortranarray(x, dtype=">f8"),
}
# The layouts read in place (no conversion of the clip).
IN_PLACE = [k for k in LAYOUTS if not k.startswith("byte-swapped")]


@settings(max_examples=40, deadline=None)
@given(
    spec=specs(),
    t_frac=st.floats(0.0, 2.5),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(sorted(LAYOUTS)),
    p_missing=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_every_layout_same_bits_and_parity(spec, t_frac, seed, layout, p_missing):
    clip = make_clip(int(t_frac * spec.max_len), seed, p_missing, p_inf=0.01)
    x = LAYOUTS[layout](clip)
    np.testing.assert_array_equal(x, clip)
    want, want_mask = preprocess(clip, spec)
    got, got_mask = preprocess(x, spec)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(got_mask, want_mask)
    assert_parity(x, spec)
    # batch and stream read the same views
    bf, bm = preprocess_batch([x, LAYOUTS[layout](clip[: len(clip) // 2])], spec)
    assert np.array_equal(bf[0].view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(bm[0], want_mask)
    packed, strided = FeatureStream(spec), FeatureStream(spec)
    for i in range(min(len(clip), spec.max_len + 3)):
        packed.push(clip[i])
        strided.push(x[i])
    for a, b in zip(packed.features(), strided.features(), strict=True):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("layout", IN_PLACE)
def test_layouts_are_read_in_place(layout):
    """No full-clip conversion: the call allocates (numpy, traced) far less than the clip."""
    import tracemalloc

    spec = FeatureSpec.preset("islr118")
    x = LAYOUTS[layout](make_clip(1500, seed=3))  # 9.8 MB as float32
    batch = [x, x[::-1]]
    preprocess(x, spec)  # warm up (caches, the thread pool)
    preprocess_batch(batch, spec)
    stream = FeatureStream(spec)
    tracemalloc.start()
    try:
        preprocess(x, spec)
        preprocess_batch(batch, spec)
        for frame in x[:100]:
            stream.push(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # outputs: 2 × 181 KB features; a conversion would be ≥ 9.8 MB
    assert peak < 1_000_000, f"{layout}: {peak} bytes allocated"


def test_the_in_place_check_sees_a_conversion():
    """The check above can fail: a byte-swapped clip takes one conversion."""
    import tracemalloc

    x = LAYOUTS["byte-swapped"](make_clip(1500, seed=3))
    preprocess(x)
    tracemalloc.start()
    try:
        preprocess(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak > x.size * 8


def test_pandas_and_polars_loaded_clips_match(tmp_path):
    """Clips loaded the way users load Kaggle parquet files, read in place."""
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    clip = make_clip(30, seed=4).astype(np.float64)
    flat = clip.reshape(-1, 3)
    df = pd.DataFrame({"x": flat[:, 0], "y": flat[:, 1], "z": flat[:, 2]})
    from_pandas = df[["x", "y", "z"]].values.reshape(-1, 543, 3)
    from_polars = pl.DataFrame(df).select(["x", "y", "z"]).to_numpy().reshape(-1, 543, 3)
    want = preprocess(clip)
    for x in (from_pandas, from_polars):
        np.testing.assert_array_equal(x, clip)
        got = preprocess(x)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


# ----------------------------------------------------------------------------- contract edges
@pytest.mark.parametrize("kind", ["none", "reference_rms"])
def test_float32_overflow_becomes_nan_fill_in_both(kind):
    """DESIGN §3 step 7: a value that would overflow float32 becomes nan_fill (both sides)."""
    base = FeatureSpec.preset("islr118", nan_fill=-1.0)
    spec = base if kind != "none" else base.replace(normalize={"kind": "none"})
    clip = make_clip(6, seed=5, p_missing=0.0, empty_frames=0.0, no_hands=0.0)
    clip[::2, 468:489, 0] = np.float32(3e38)
    clip[1::2, 468:489, 0] = np.float32(-3e38)  # motion 6e38: over float32's range
    ref, _ = preprocess_reference(clip, spec)
    assert np.isfinite(ref).all()
    if kind == "none":
        assert (ref == -1.0).sum() > 0
    assert_parity(clip, spec)
    nat, _ = preprocess(clip, spec)
    np.testing.assert_array_equal(nat, ref)


# ----------------------------------------------------------------------------- stream precision
@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(PRESETS),
    seed=st.integers(0, 2**32 - 1),
    at=st.integers(0, 40),
    factor=st.sampled_from([1e4, 1e8, -1e8, 1e12]),
)
def test_stream_after_an_outlier_frame_equals_preprocess(name, seed, at, factor):
    spec = FeatureSpec.preset(name, max_len=16)
    frames = make_clip(60, seed, p_missing=0.1, empty_frames=0.0)
    frames[at] *= np.float32(factor)
    stream = FeatureStream(spec)
    for i, frame in enumerate(frames):
        stream.push(frame)
        window = frames[max(0, i + 1 - spec.max_len) : i + 1]
        want, want_mask = preprocess(window, spec)
        got, got_mask = stream.features()
        np.testing.assert_array_equal(got_mask, want_mask)
        assert float(np.abs(got - want).max()) <= 1e-4, (i, float(np.abs(got - want).max()))


# ----------------------------------------------------------------------------- allocation
@pytest.fixture
def alloc_limit():
    """A 64 MiB allocation limit in the native core for one test (restored after)."""
    previous = _native._set_alloc_limit(1 << 26)
    yield
    _native._set_alloc_limit(previous)


def huge_spec() -> FeatureSpec:
    """The largest spec validation accepts: 543 landmarks, xyz, 16 lags, max_len 1211.

    134 MB of features per clip, over the 64 MiB limit of ``alloc_limit``.
    """
    return FeatureSpec.from_json(
        json.dumps(
            {
                "version": 1,
                "layout": "holistic-543",
                "landmarks": list(range(543)),
                "coords": 3,
                "normalize": {"kind": "none"},
                "max_len": 1211,
                "fit": "truncate",
                "motion_lags": list(range(1, 17)),
                "drop_empty_frames": True,
                "nan_fill": 0.0,
            }
        )
    )


@pytest.mark.usefixtures("alloc_limit")
def test_huge_spec_is_an_allocation_error():
    spec = huge_spec()
    clip = make_clip(2, seed=1)
    with pytest.raises(signrt.AllocationError, match="features") as info:
        preprocess(clip, spec)
    assert isinstance(info.value, MemoryError) and isinstance(info.value, SignrtError)
    with pytest.raises(signrt.AllocationError):
        preprocess_batch([clip], spec)
    stream = FeatureStream(spec)  # the window itself fits under the limit
    stream.push(clip[0])
    with pytest.raises(signrt.AllocationError):
        stream.features()


@pytest.mark.usefixtures("alloc_limit")
def test_batch_of_40000_empty_clips_is_an_allocation_error():
    empty = np.zeros((0, 543, 3), np.float32)
    with pytest.raises(signrt.AllocationError, match="features"):
        preprocess_batch([empty] * 40_000, "islr118")  # 7.3 GB of features
    # below the limit the same call works
    feats, mask = preprocess_batch([empty] * 100, "islr118")
    assert feats.shape == (100, 64, 708) and not mask.any()
