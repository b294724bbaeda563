"""The bundled demo model: a dynamic time axis with buckets, and the runtime trims to them."""

from __future__ import annotations

import numpy as np
import pytest

from signrt import load
from signrt.recognizer import default_model_path
from signrt.runtime.model import load_model_file
from signrt.synthetic import SyntheticConfig, SyntheticSigner


@pytest.mark.parametrize("name", ["demo.onnx", "demo.int8.onnx"])
def test_the_bundled_demo_models_list_inert_buckets(name: str) -> None:
    path = default_model_path().with_name(name)
    mf = load_model_file(path)
    assert mf.buckets == (16, 32, 64)
    axis = mf.info["export"]["time_axis"]
    assert axis["buckets"] == [16, 32, 64]
    assert axis["bucket_max_abs_diff"] <= axis["bucket_tolerance"] == 1e-5


def test_a_short_clip_runs_at_its_bucket_and_gives_the_full_window_answer() -> None:
    signer = SyntheticSigner(SyntheticConfig(num_classes=20, num_signers=2, seed=3))
    clip = signer.clip(4, 1)[:20]  # (20, 543, 3): 20 real frames -> bucket 32
    trimmed = load(intra_op_num_threads=1)
    full = load(intra_op_num_threads=1, length_buckets=False)
    try:
        feats, mask = trimmed.preprocess(clip)  # (64, 708), (64,)
        f, m = trimmed.trim(feats[None], mask[None])
        assert f.shape[1] == 32 and m.shape == (1, 32)
        assert full.trim(feats[None], mask[None])[0].shape[1] == 64
        a = trimmed.engine.run(f, m)  # (1, 20)
        b = full.engine.run(feats[None], mask[None])  # (1, 20)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        assert trimmed.predict(clip).label == full.predict(clip).label
    finally:
        trimmed.close()
        full.close()
