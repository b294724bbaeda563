"""The model zoo: shapes, mask-awareness, configs, checkpoints (signrt.train.models)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from signrt.errors import ModelError  # noqa: E402
from signrt.spec import FeatureSpec  # noqa: E402
from signrt.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from signrt.train.models import ARCHITECTURES, build_model, make_config  # noqa: E402
from signrt.train.models.attention_bilstm import reverse_index  # noqa: E402
from signrt.train.models.layers import PartSplitter  # noqa: E402

ARCHS = sorted(ARCHITECTURES)
#: Small configs: every architecture in a few tens of thousands of parameters.
SMALL = {
    "cnn_transformer": {"dim": 32, "stages": 1, "convs_per_stage": 1, "heads": 2,
                        "kernel_size": 5},
    "st_transformer": {"dim": 32, "depth": 1, "heads": 2},
    "attention_bilstm": {"part_dim": 16, "dim": 32, "depth": 2},
    "signbert": {"dim": 32, "depth": 2, "heads": 2},
    "spoter": {"dim": 32, "encoder_depth": 1, "decoder_depth": 1, "heads": 2},
    "cnn1d": {"dim": 32, "kernels": [5, 3]},
}  # fmt: skip
K = 7
L = 20


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="module", params=["islr118", "parts4"])
def spec(request: pytest.FixtureRequest) -> FeatureSpec:
    return FeatureSpec.preset(request.param, max_len=L)


def _model(arch: str, spec: FeatureSpec) -> torch.nn.Module:
    return build_model(arch, spec, K, SMALL[arch]).eval()


def _inputs(spec: FeatureSpec, lengths: list[int], seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    b = len(lengths)
    feats = torch.randn(b, spec.max_len, spec.num_features, generator=g)
    mask = torch.zeros(b, spec.max_len)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1.0
        feats[i, n:] = 0.0  # what preprocessing produces
    return feats, mask


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shape_and_dtype(arch: str, spec: FeatureSpec) -> None:
    model = _model(arch, spec)
    feats, mask = _inputs(spec, [L, 5, 1])
    with torch.no_grad():
        out = model(feats, mask)
    assert out.shape == (3, K)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_padded_frames_do_not_change_logits(arch: str, spec: FeatureSpec) -> None:
    model = _model(arch, spec)
    feats, mask = _inputs(spec, [L, 12, 3, 1])
    noisy = feats.clone()
    pad = mask == 0
    noisy[pad] = torch.randn(int(pad.sum()), spec.num_features) * 50.0
    noisy[1, -1] = float("nan")  # even NaN or inf in padding must not leak
    noisy[2, -1] = float("inf")
    with torch.no_grad():
        a, b = model(feats, mask), model(noisy, mask)
    assert torch.isfinite(b).all()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_padded_clip_equals_unpadded_clip(arch: str, spec: FeatureSpec) -> None:
    """Padding is invisible: a clip padded to L gives the logits of the same clip alone."""
    model = _model(arch, spec)
    n = 9
    feats, mask = _inputs(spec, [n])
    with torch.no_grad():
        padded = model(feats, mask)
        alone = model(feats[:, :n], mask[:, :n])
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_all_zero_mask_gives_finite_logits(arch: str, spec: FeatureSpec) -> None:
    model = _model(arch, spec)
    feats = torch.randn(2, L, spec.num_features)
    with torch.no_grad():
        out = model(feats, torch.zeros(2, L))
    assert torch.isfinite(out).all()
    # and the features of an empty clip do not matter
    with torch.no_grad():
        other = model(torch.randn(2, L, spec.num_features) * 9, torch.zeros(2, L))
    torch.testing.assert_close(out, other, atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_samples_in_a_batch_are_independent(arch: str) -> None:
    spec = FeatureSpec.preset("islr118", max_len=L)
    model = _model(arch, spec)
    feats, mask = _inputs(spec, [L, 7, 0])
    with torch.no_grad():
        batch = model(feats, mask)
        single = torch.cat([model(feats[i : i + 1], mask[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_trains_backward_with_dropout_and_drop_path(arch: str) -> None:
    spec = FeatureSpec.preset("islr118", max_len=L)
    cfg = dict(SMALL[arch])
    if "drop_path" in {f.name for f in dataclasses.fields(ARCHITECTURES[arch][0])}:
        cfg["drop_path"] = 0.5
    model = build_model(arch, spec, K, cfg).train()
    feats, mask = _inputs(spec, [L, 6, 0, 2])
    loss = torch.nn.functional.cross_entropy(model(feats, mask), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("arch", ARCHS)
def test_default_config_size_and_round_trip(arch: str) -> None:
    spec = FeatureSpec.preset("islr118")
    model = build_model(arch, spec, 250)
    n = sum(p.numel() for p in model.parameters())
    assert 0.5e6 <= n <= 3.0e6, f"{arch}: {n} parameters"
    cfg = make_config(arch)
    again = make_config(arch, cfg.to_dict())
    assert again == cfg
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    assert make_config(arch, {}) == cfg


def test_config_errors() -> None:
    spec = FeatureSpec.preset("islr118", max_len=L)
    with pytest.raises(ModelError, match="unknown architecture"):
        build_model("resnet", spec, K)
    with pytest.raises(ModelError, match="unknown option"):
        build_model("signbert", spec, K, {"dimension": 64})
    for arch in ("signbert", "st_transformer", "spoter", "cnn_transformer"):
        with pytest.raises(ModelError, match="dim must be divisible by heads"):
            build_model(arch, spec, K, {"dim": 30, "heads": 4})
    with pytest.raises(ModelError, match="odd"):
        build_model("cnn_transformer", spec, K, {"kernel_size": 4})
    with pytest.raises(ModelError, match="dropout"):
        build_model("spoter", spec, K, {"dropout": 1.5})
    with pytest.raises(ModelError, match="num_classes"):
        build_model("spoter", spec, 0)
    with pytest.raises(ModelError, match="takes a"):
        make_config("spoter", make_config("signbert"))


def test_wrong_input_shapes_raise() -> None:
    spec = FeatureSpec.preset("islr118", max_len=L)
    model = _model("signbert", spec)
    with pytest.raises(ModelError, match="features must be"):
        model(torch.zeros(1, L, 5), torch.ones(1, L))
    with pytest.raises(ModelError, match="at most"):
        model(torch.zeros(1, L + 1, spec.num_features), torch.ones(1, L + 1))
    with pytest.raises(ModelError, match="mask must be"):
        model(torch.zeros(1, L, spec.num_features), torch.ones(2, L))


def test_part_splitter_follows_part_groups() -> None:
    spec = FeatureSpec.preset("islr118", max_len=L)
    groups = spec.part_groups()
    split = PartSplitter(spec)
    assert split.parts == list(groups)
    c = spec.channels
    x = torch.arange(spec.num_features, dtype=torch.float32).reshape(1, 1, -1)
    for part, block in zip(split.parts, split(x), strict=True):
        want = [p * c + j for p in groups[part] for j in range(c)]
        assert block.flatten().tolist() == want


def test_reverse_index_reverses_real_frames_only() -> None:
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    idx = reverse_index(valid)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]]
    assert torch.equal(torch.gather(idx, 1, idx), torch.arange(5).expand(3, 5))


def test_checkpoint_build_model_round_trip(tmp_path) -> None:
    spec = FeatureSpec.preset("islr118", max_len=L)
    model = _model("cnn_transformer", spec)
    ckpt = Checkpoint(
        arch="cnn_transformer",
        model_config=model.config.to_dict(),
        spec=spec,
        labels=[f"s{i}" for i in range(K)],
        state_dict=model.state_dict(),
    )
    path = save_checkpoint(tmp_path / "best.pt", ckpt)
    rebuilt = load_checkpoint(path).build_model()
    feats, mask = _inputs(spec, [L, 4])
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(feats, mask).numpy(), model(feats, mask).numpy())


def _hands_pose_features(rng: np.random.Generator, spec: FeatureSpec) -> np.ndarray:
    """(1, L, F) features of random frames, with the right hand missing (zeros) throughout."""
    x = rng.normal(size=(1, L, len(spec.landmarks), spec.num_features // len(spec.landmarks)))
    x[:, :, -21:] = 0.0  # the right hand: missing points are nan_fill = 0
    return x.reshape(1, L, -1).astype(np.float32)


def test_cnn1d_hand_shape_features_are_rotation_and_scale_invariant() -> None:
    spec = FeatureSpec.preset("hands_pose")
    model = build_model("cnn1d", spec, K, make_config(
        "cnn1d", {"dim": 16, "kernels": [3], "hand_size_norm": True, "hand_shape": True}))
    assert model.hands == 2  # type: ignore[attr-defined]
    feats = _hands_pose_features(np.random.default_rng(0), spec)
    out = model._hand_features(torch.from_numpy(feats))  # type: ignore[operator]
    rel, shape = out  # (1, L, 2·21·2), (1, L, 2·15)
    assert rel.shape == (1, L, 84) and shape.shape == (1, L, 30)
    assert torch.isfinite(rel).all() and torch.isfinite(shape).all()
    assert float(shape[..., 15:].abs().max()) < 0.01  # the missing hand gives ~0, not NaN
    # rotate and scale the left hand's points about an arbitrary point: shape unchanged
    x = feats.reshape(1, L, len(spec.landmarks), -1).copy()
    c, s = np.cos(0.7), np.sin(0.7)
    left = slice(25, 46)
    xy = x[:, :, left, :2]
    x[:, :, left, :2] = 1.7 * (xy @ np.array([[c, -s], [s, c]], np.float32).T) + 0.3
    moved = model._hand_features(torch.from_numpy(x.reshape(1, L, -1)))  # type: ignore[operator]
    torch.testing.assert_close(moved[1], shape, rtol=1e-4, atol=1e-4)
    # the size-normalised wrist-relative points keep their length, not their direction
    n0 = rel[..., :42].reshape(1, L, 21, 2).norm(dim=-1)
    n1 = moved[0][..., :42].reshape(1, L, 21, 2).norm(dim=-1)
    torch.testing.assert_close(n0, n1, rtol=1e-4, atol=1e-4)
    # without the options the model has no hand features and fewer inputs
    plain = build_model("cnn1d", spec, K, make_config("cnn1d", {"hand_relative": False}))
    assert plain.hands == 0  # type: ignore[attr-defined]
    logits = model(torch.from_numpy(feats), torch.ones(1, L))
    assert logits.shape == (1, K) and torch.isfinite(logits).all()


def test_cnn1d_time_norm_stretches_real_frames_only() -> None:
    from signrt.train.models.cnn1d import _time_normalise

    x = torch.randn(3, 12, 4)
    valid = torch.zeros(3, 12, dtype=torch.bool)
    valid[0, :12], valid[1, :5] = True, True  # clip 2: no real frame
    x[1, 5:] = float("nan")  # padding is never read
    out, keep = _time_normalise(x, valid, 12)
    torch.testing.assert_close(out[0], x[0])  # n == out_len: unchanged
    assert keep[:2].all() and not keep[2].any() and (out[2] == 0).all()
    torch.testing.assert_close(out[1, 0], x[1, 0])
    torch.testing.assert_close(out[1, -1], x[1, 4])  # first and last real frames kept
    w = 3 * 4 / 11 - 1  # output 3 reads position 3 · (5 − 1) / (12 − 1) of the real frames
    torch.testing.assert_close(out[1, 3], x[1, 1] * (1 - w) + x[1, 2] * w)
    # in the model: a clip padded to any length gives the logits of the clip alone
    spec = FeatureSpec.preset("hands_pose").replace(max_len=16)
    model = build_model("cnn1d", spec, K, make_config(
        "cnn1d", {"dim": 16, "kernels": [3], "time_norm": True})).eval()
    feats = torch.randn(1, 16, spec.num_features)
    mask = torch.zeros(1, 16)
    mask[0, :7] = 1.0
    with torch.no_grad():
        torch.testing.assert_close(model(feats, mask), model(feats[:, :7], mask[:, :7]),
                                   atol=1e-5, rtol=1e-5)  # fmt: skip
