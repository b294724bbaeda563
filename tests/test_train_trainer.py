"""The trainer: accuracy on held-out synthetic signers, real data, resume, early stopping, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

import signrt  # noqa: E402
from signrt import FeatureSpec  # noqa: E402
from signrt.train.augment import AugmentConfig  # noqa: E402
from signrt.train.checkpoint import load_checkpoint  # noqa: E402
from signrt.train.config import ConfigError, TrainConfig  # noqa: E402
from signrt.train.data import open_dataset  # noqa: E402
from signrt.train.evaluate import evaluate_checkpoint  # noqa: E402
from signrt.train.trainer import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"dim": 32, "stages": 1, "convs_per_stage": 1, "heads": 2, "kernel_size": 5}
LIGHT_AUGMENT = AugmentConfig(
    resample_p=0.5, dropout_p=0.2, temporal_mask_p=0.2, spatial_mask_p=0.0, affine_p=0.5
)


class _Pool(torch.nn.Module):  # type: ignore[misc]
    """A tiny model for trainer mechanics: masked mean of a projection, then a classifier."""

    def __init__(self, features: int, classes: int, frozen: bool = False) -> None:
        super().__init__()
        self.frozen = frozen
        self.proj = torch.nn.Linear(features, 16)
        self.drop = torch.nn.Dropout(0.2)
        self.out = torch.nn.Linear(16, classes)
        self.bias = torch.nn.Parameter(torch.zeros(classes))

    def forward(self, x: Any, mask: Any) -> Any:
        if self.frozen:  # constant logits: validation never improves
            return self.bias * 0.0 + torch.zeros(x.shape[0], self.bias.shape[0])
        h = torch.relu(self.proj(x)) * mask[..., None]  # (B, L, 16)
        h = h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)  # (B, 16)
        return self.out(self.drop(h)) + self.bias  # (B, K)


def _pool_builder(frozen: bool = False) -> Any:
    def build(arch: str, spec: FeatureSpec, k: int, opts: Mapping[str, Any]) -> Any:
        return _Pool(spec.num_features, k, frozen), dict(opts)

    return build


@pytest.mark.slow
def test_short_run_reaches_90_percent_on_held_out_synthetic_signers(tmp_path: Path) -> None:
    syn = "synthetic:classes=8,seed=0,"
    train_set = open_dataset(syn + "signers=12,clips_per_class=3")
    val_set = open_dataset(syn + "signers=3,clips_per_class=2,signer_offset=12")
    test_set = open_dataset(syn + "signers=4,clips_per_class=2,signer_offset=15")
    cfg = TrainConfig(
        data="synthetic", out=str(tmp_path / "run"), arch="cnn_transformer", max_len=32,
        epochs=25, batch_size=32, lr=3e-3, num_workers=0, patience=0, model=dict(TINY, dim=64),
        augment=LIGHT_AUGMENT, seed=0,
    )  # fmt: skip
    result = train(cfg, train_set=train_set, val_set=val_set)
    run = tmp_path / "run"
    for name in ("best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json"):
        assert (run / name).is_file(), name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 25 and json.loads(lines[-1])["epoch"] == 25
    ckpt = load_checkpoint(run / "best.pt")  # weights_only=True
    assert ckpt.labels == train_set.label_names and ckpt.spec.max_len == 32
    assert ckpt.metrics["val_top1"] == result.best["val_top1"]
    # held-out signers never seen in training or model selection
    report = evaluate_checkpoint(run / "best.pt", test_set)
    assert set(test_set.groups).isdisjoint(train_set.groups + val_set.groups)
    assert report.top1 >= 0.9, (report.top1, result.best)


def _real_sample() -> Path:
    for cand in (
        ROOT / "tests" / "data" / "asl-signs-42",
        Path(os.environ.get("SIGNRT_ASL_SAMPLE", "/nonexistent")),
        ROOT.parent / "shared" / "data" / "asl-signs-sample",
    ):
        csv = cand / "train.csv"
        if (csv.is_file() and len(csv.read_text().splitlines()) > 30) or (
            len(list(cand.glob("*/*/*.npz"))) == 42
        ):
            return cand
    pytest.skip("the 42-clip ASL Signs hello/thankyou sample is not available")


@pytest.mark.slow
def test_real_hello_thankyou_participant_disjoint(tmp_path: Path) -> None:
    """ASL Signs (CC BY 4.0, Google): 3 participant-disjoint folds, well above chance (50%)."""
    full = open_dataset(_real_sample())
    assert full.label_names == ["hello", "thankyou"]
    correct = total = 0
    for f, (tr, va) in enumerate(full.group_kfold(3, seed=0)):
        assert set(tr.groups).isdisjoint(va.groups)
        cfg = TrainConfig(
            data="asl", out=str(tmp_path / f"fold{f}"), arch="cnn_transformer", max_len=32,
            epochs=20, batch_size=8, lr=2e-3, num_workers=0, patience=0, model=TINY,
            augment=LIGHT_AUGMENT, plots=False,
        )  # fmt: skip
        train(cfg, train_set=tr, val_set=va)
        report = evaluate_checkpoint(tmp_path / f"fold{f}" / "last.pt", va)  # no selection on va
        correct += round(report.top1 * len(va))
        total += len(va)
    assert correct / total >= 0.75, correct / total


def _small_sets() -> tuple[Any, Any]:
    data = open_dataset("synthetic:classes=3,signers=4,clips_per_class=2,seed=1")
    return data.split_by_group(0.25, seed=0)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    tr, va = _small_sets()

    def cfg(out: Path, epochs: int, resume: bool = False) -> TrainConfig:
        return TrainConfig(
            data="syn", out=str(out), epochs=epochs, batch_size=8, lr=1e-2, max_len=16,
            num_workers=0, resume=resume, plots=False, seed=3,
        )  # fmt: skip

    straight = train(cfg(tmp_path / "a", 3), model_builder=_pool_builder(), train_set=tr,
                     val_set=va)  # fmt: skip
    interrupted = train(cfg(tmp_path / "b", 3), model_builder=_pool_builder(), train_set=tr,
                        val_set=va, on_epoch_end=lambda m: m["epoch"] == 2)  # fmt: skip
    assert len(interrupted.history) == 2
    assert load_checkpoint(tmp_path / "b" / "last.pt").optimizer is not None
    resumed = train(cfg(tmp_path / "b", 3, resume=True), model_builder=_pool_builder(),
                    train_set=tr, val_set=va)  # fmt: skip
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 3
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a.epoch == b.epoch == 3
    for k, v in a.state_dict.items():
        torch.testing.assert_close(v, b.state_dict[k], rtol=0, atol=0)  # bit-identical
    assert straight.history[-1]["val_loss"] == pytest.approx(resumed.history[-1]["val_loss"])


def test_early_stopping_and_cached_training(tmp_path: Path) -> None:
    tr, va = _small_sets()
    cfg = TrainConfig(
        data="syn", out=str(tmp_path), epochs=10, batch_size=8, max_len=16, num_workers=0,
        patience=2, plots=False, augment=AugmentConfig.off(),  # off: training reads the cache
    )  # fmt: skip
    result = train(cfg, model_builder=_pool_builder(frozen=True), train_set=tr, val_set=va)
    assert result.stopped_early and len(result.history) == 3 and result.best["epoch"] == 1
    caches = sorted(p.name.split("-")[0] for p in (tmp_path / "cache").glob("*.json"))
    assert caches == ["train", "val"]


def test_config_from_toml_and_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        'data = "synthetic:classes=4"\narch = "spoter"\nepochs = 7\nlr = 0.002\n'
        "[model]\ndim = 48\n[augment]\nmirror_p = 0.0\nscale = [0.9, 1.1]\n"
    )
    cfg = TrainConfig.from_toml(toml, epochs=3, batch_size=None, model={"heads": 2})
    assert (cfg.data, cfg.arch, cfg.epochs, cfg.lr) == ("synthetic:classes=4", "spoter", 3, 0.002)
    assert cfg.model == {"dim": 48, "heads": 2} and cfg.batch_size is None  # auto
    assert cfg.augment is not None
    assert cfg.augment.mirror_p == 0.0 and cfg.augment.scale == (0.9, 1.1)
    with pytest.raises(ConfigError, match="chosen from the data"):
        cfg.resolve_spec()
    spec = TrainConfig(spec="islr118", max_len=32, fit="resample").resolve_spec()
    assert spec == FeatureSpec.preset("islr118", max_len=32, fit="resample")
    toml.write_text("epochz = 3\n")
    with pytest.raises(ConfigError, match="epochz"):
        TrainConfig.from_toml(toml)
    with pytest.raises(ConfigError):
        TrainConfig.from_toml(tmp_path / "missing.toml")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(signrt.__file__).parent.parent))
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "signrt.cli", "train", "--data", "synthetic:classes=3,signers=4,clips_per_class=2",
        "--arch", "cnn_transformer", "--max-len", "16", "--epochs", "1", "--batch-size", "4",
        "--workers", "0", "--out", str(out), "--model-opt", "dim=16", "--model-opt", "stages=1",
        "--model-opt", "convs_per_stage=1", "--model-opt", "heads=2", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best epoch 1" in proc.stdout and proc.stdout.count("best epoch") == 1  # rank 0 only
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and 0.0 <= rows[0]["val_top1"] <= 1.0
    ckpt = load_checkpoint(out / "best.pt")
    assert not any(k.startswith("module.") for k in ckpt.state_dict)  # unwrapped from DDP
    assert np.isfinite(rows[0]["train_loss"])


def test_worker_processes_give_the_same_batches() -> None:
    """Augmentation is seeded per (epoch, clip): a worker process yields the same batches as
    the main process, and native preprocessing works in (spawned) workers."""
    from signrt.train.augment import Augmenter
    from signrt.train.trainer import (
        ClipCollate,
        EpochIndexSampler,
        RawClipDataset,
        loader_options,
    )

    tr, _ = _small_sets()
    spec = FeatureSpec.preset("islr118", max_len=16)
    batches = {}
    for workers in (0, 1):
        sampler = EpochIndexSampler(len(tr), shuffle=True, seed=1)
        sampler.set_epoch(2)
        loader = torch.utils.data.DataLoader(
            RawClipDataset(tr, Augmenter(), seed=1), batch_size=4, sampler=sampler,
            collate_fn=ClipCollate(spec), **loader_options(workers),
        )  # fmt: skip
        batches[workers] = list(loader)
    assert len(batches[0]) == len(batches[1]) == -(-len(tr) // 4)
    for (f0, m0, y0), (f1, m1, y1) in zip(batches[0], batches[1], strict=True):
        assert f0.shape[1:] == (16, spec.num_features)
        torch.testing.assert_close(f0, f1, rtol=0, atol=0)
        torch.testing.assert_close(m0, m1, rtol=0, atol=0)
        assert y0.tolist() == y1.tolist()


def test_ema_and_mixup_train_resume_and_store_the_average(tmp_path: Path) -> None:
    tr, va = _small_sets()

    def cfg(out: Path, epochs: int, resume: bool = False) -> TrainConfig:
        return TrainConfig(
            data="syn", out=str(out), epochs=epochs, batch_size=8, lr=1e-2, max_len=16,
            num_workers=0, resume=resume, plots=False, seed=3, ema=0.9, mixup=0.4,
        )  # fmt: skip

    with pytest.raises(ConfigError, match="ema"):
        TrainConfig(ema=1.0)
    with pytest.raises(ConfigError, match="mixup"):
        TrainConfig(mixup=-0.1)
    train(cfg(tmp_path / "a", 3), model_builder=_pool_builder(), train_set=tr, val_set=va)
    ck = load_checkpoint(tmp_path / "a" / "last.pt")
    raw = ck.extra["trainer_state"]["raw_state"]
    assert ck.extra["trainer_state"]["ema_steps"] == 3 * math.ceil(len(tr) / 8)
    # the checkpoint's weights are the average, not the last step's weights
    assert any(not torch.equal(v, raw[k]) for k, v in ck.state_dict.items())
    # an interrupted and resumed run ends with the same average and raw weights
    train(cfg(tmp_path / "b", 3), model_builder=_pool_builder(), train_set=tr, val_set=va,
          on_epoch_end=lambda m: m["epoch"] == 2)  # fmt: skip
    train(cfg(tmp_path / "b", 3, resume=True), model_builder=_pool_builder(), train_set=tr,
          val_set=va)  # fmt: skip
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    for k, v in ck.state_dict.items():
        torch.testing.assert_close(v, b.state_dict[k], rtol=0, atol=0)
        torch.testing.assert_close(raw[k], b.extra["trainer_state"]["raw_state"][k],
                                   rtol=0, atol=0)  # fmt: skip
