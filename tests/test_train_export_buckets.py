"""Export with window-length buckets: a dynamic time axis, checked to be inert per bucket.

For each architecture: the exported graph has a dynamic L, lists its buckets, and the
Recognizer's bucketed logits equal the full-length ones (and PyTorch's) on clips that fit
in several buckets. A model whose padding changes the logits keeps a fixed L and a note.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from helpers_models import EXPORT_DATA, EXPORT_LABELS, SMALL_MODELS  # noqa: E402
from signrt.cli import main  # noqa: E402
from signrt.errors import ModelError  # noqa: E402
from signrt.recognizer import Recognizer, load  # noqa: E402
from signrt.runtime.model import load_model_file  # noqa: E402
from signrt.spec import FeatureSpec  # noqa: E402
from signrt.train import export as ex  # noqa: E402
from signrt.train.models import ARCHITECTURES, build_model  # noqa: E402

SMALL, LABELS, DATA = SMALL_MODELS, EXPORT_LABELS, EXPORT_DATA
MAX_LEN = 32


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return FeatureSpec.preset("islr118", max_len=MAX_LEN)


@pytest.fixture(scope="module")
def verify(spec: FeatureSpec) -> tuple:
    return ex.verification_batch(spec, DATA)


def test_default_buckets_and_parsing() -> None:
    assert ex.default_buckets(64) == (16, 32, 64)
    assert ex.default_buckets(384) == (16, 32, 64, 128, 256, 384)
    assert ex.default_buckets(100) == (16, 32, 64, 100)
    assert ex.default_buckets(16) == (16,)
    assert ex.parse_buckets("auto") is True and ex.parse_buckets("none") is False
    assert ex.parse_buckets("8,16") == (8, 16)
    with pytest.raises(ModelError, match="--buckets"):
        ex.parse_buckets("eight")


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_bucketed_logits_equal_full_length(arch: str, spec: FeatureSpec, verify: tuple,
                                           tmp_path: Path) -> None:
    model = build_model(arch, spec, len(LABELS), SMALL[arch]).eval()
    report = ex.export_model(
        model, spec, LABELS, tmp_path / "m.onnx", info={"architecture": arch},
        batch_range=(1, 4), verify_inputs=verify, length_buckets=(8, 16),
    )  # fmt: skip
    mf = load_model_file(report.path)
    axis = mf.info["export"]["time_axis"]
    assert mf.buckets == (8, 16, 32), axis
    assert axis["bucket_max_abs_diff"] <= ex.BUCKET_ATOL and axis["bucket_clips"] > 0
    assert isinstance(mf.inputs["features"][1], str)  # dynamic time axis
    assert "L in buckets [8, 16, 32]" in report.summary()

    bucketed = load(report.path, device="cpu", warmup=0, intra_op_num_threads=1)
    full = load(report.path, device="cpu", warmup=0, intra_op_num_threads=1,
                length_buckets=False)
    feats, mask, _ = verify
    rng = np.random.default_rng(0)
    for n in (3, 8, 9, 16, 17, 32):
        f, m = feats[:-1].copy(), mask[:-1].copy()  # (N, 32, F); the last row is empty
        lengths = rng.integers(1, n + 1, size=f.shape[0])
        lengths[0] = n
        for i, k in enumerate(lengths):
            f[i, k:], m[i, k:] = 0.0, 0.0
        tf, tm = bucketed.trim(f, m)
        assert tf.shape[1] == {3: 8, 8: 8, 9: 16, 16: 16, 17: 32, 32: 32}[n]
        got = bucketed.engine.run(tf, tm)
        want = full.engine.run(f, m)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        with torch.no_grad():
            ref = model(torch.from_numpy(np.ascontiguousarray(tf)),
                        torch.from_numpy(np.ascontiguousarray(tm))).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


class MeanOverWindow(torch.nn.Module):
    """Mean over all L frames, padding included: the logits depend on L."""

    def __init__(self, num_features: int, k: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(num_features, k)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=1)) + 0.0 * mask.sum(dim=1, keepdim=True)


def test_model_with_live_padding_keeps_a_fixed_length(spec: FeatureSpec, verify: tuple,
                                                      tmp_path: Path) -> None:
    model = MeanOverWindow(spec.num_features, len(LABELS))
    report = ex.export_model(
        model, spec, LABELS, tmp_path / "m.onnx", info={"architecture": "mean_over_window"},
        batch_range=(1, 4), verify_inputs=verify, length_buckets=True,
    )  # fmt: skip
    mf = load_model_file(report.path)
    assert "buckets" not in mf.info and mf.buckets == (MAX_LEN,)
    note = mf.info["export"]["time_axis"]["note"]
    assert note.startswith(f"fixed L = {MAX_LEN}") and "padding is not inert" in note
    assert mf.inputs["features"][1] == MAX_LEN  # the graph fixes L again
    assert f"L fixed (fixed L = {MAX_LEN}" in report.summary()
    rec = load(report.path, device="cpu", warmup=0)
    assert isinstance(rec, Recognizer) and rec.lengths == (MAX_LEN,)


def test_fixed_length_on_request_and_cli(spec: FeatureSpec, verify: tuple,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    model = build_model("spoter", spec, len(LABELS), SMALL["spoter"]).eval()
    report = ex.export_model(
        model, spec, LABELS, tmp_path / "m.onnx", info={"architecture": "spoter"},
        batch_range=(1, 2), verify_inputs=verify, length_buckets=False,
    )  # fmt: skip
    mf = load_model_file(report.path)
    assert mf.buckets == (MAX_LEN,) and mf.inputs["features"][1] == MAX_LEN
    assert mf.info["export"]["time_axis"] == {"buckets": []}
    assert main(["export", "x.pt", "-o", str(tmp_path / "y.onnx"), "--buckets", "big"]) == 2
    assert "--buckets" in capsys.readouterr().err
