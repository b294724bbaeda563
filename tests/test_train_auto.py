"""Data-aware defaults, evaluation splits, unreadable clips and interrupted checkpoints."""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from signrt.errors import DataError
from signrt.train.auto import auto_config, profile
from signrt.train.config import TrainConfig
from signrt.train.data import ClipSet, check_clips, open_dataset
from signrt.train.splits import (
    random_folds,
    random_split,
    session_folds,
    session_split,
)

_ROOT = Path(__file__).resolve().parents[1]
INCLUDE = next(
    (p for p in (Path(os.environ.get("SIGNRT_INCLUDE_DEV", "/nonexistent")),
                 _ROOT.parent / "shared" / "data" / "include-dev",
                 _ROOT.parent.parent / "shared" / "data" / "include-dev") if p.is_dir()),
    _ROOT.parent / "shared" / "data" / "include-dev",
)  # fmt: skip


def _pose_hands_clip(rng: np.random.Generator, t: int) -> np.ndarray:
    clip = rng.uniform(0.2, 0.8, size=(t, 75, 3)).astype(np.float32)
    clip[: t // 3, 33:54] = np.nan  # the left hand is missing for a while
    return clip


def _clip_folder(root: Path, lengths: dict[str, list[int]], sessions: bool = True) -> Path:
    rng = np.random.default_rng(0)
    rows = ["path,sign,session"]
    for sign, lens in lengths.items():
        (root / "clips" / sign).mkdir(parents=True)
        for k, t in enumerate(lens):
            rel = f"clips/{sign}/c{k}.npy"
            np.save(root / rel, _pose_hands_clip(rng, t))
            rows.append(f"{rel},{sign},{k % 2 + 1}")
    if sessions:
        (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_manifest_sessions_and_auto_choices(tmp_path: Path) -> None:
    root = _clip_folder(tmp_path, {"a": [40, 50, 60, 100], "b": [45, 55, 65, 70]})
    data = open_dataset(root)
    assert data.label_names == ["a", "b"] and sorted(set(data.groups)) == ["1", "2"]
    prof = profile(data)
    assert prof.presence["face"] == 0.0 and prof.presence["pose"] == 1.0
    assert prof.presence["left_hand"] == pytest.approx(np.mean([40 - 13, 50 - 16, 60 - 20,
        100 - 33, 45 - 15, 55 - 18, 65 - 21, 70 - 23]) / np.mean(prof.lengths))  # fmt: skip
    cfg, choices, _ = auto_config(TrainConfig(data=str(root)), data)
    assert cfg.spec == "hands_pose" and cfg.max_len == 64 and cfg.fit == "resample"
    assert cfg.arch == "cnn1d" and cfg.epochs == 100 and cfg.class_weights is False
    assert cfg.mixup == 0.0 and cfg.ema == 0.0  # measured: neither helps on held-out sessions
    assert cfg.resolve_spec().fit == "resample" and cfg.resolve_spec().max_len == 64
    assert {c.key for c in choices} >= {"spec", "max_len", "fit", "arch", "epochs"}
    # every choice stays overridable
    given = TrainConfig(spec="islr118", fit="truncate", arch="spoter", max_len=128, epochs=3,
                        mixup=0.3)  # fmt: skip
    fixed, choices2, _ = auto_config(given, data)
    assert (fixed.spec, fixed.fit, fixed.arch, fixed.max_len, fixed.epochs, fixed.mixup) == (
        "islr118", "truncate", "spoter", 128, 3, 0.3)  # fmt: skip
    assert not {"spec", "fit", "arch", "max_len", "epochs", "mixup"} & {c.key for c in choices2}


def test_one_class_and_empty_class_are_errors(tmp_path: Path) -> None:
    clips = [np.zeros((5, 543, 3), np.float32)] * 3
    one = ClipSet(clips, [0, 0, 0], ["a"], ["g"] * 3)
    with pytest.raises(DataError, match="at least two"):
        auto_config(TrainConfig(), one)
    gap = ClipSet(clips, [0, 0, 2], ["a", "b", "c"], ["g"] * 3)
    with pytest.raises(DataError, match="no training clip: b"):
        auto_config(TrainConfig(), gap)


def test_corrupt_clip_is_skipped_by_path_or_stops_with_strict(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _clip_folder(tmp_path, {"a": [20, 20], "b": [20, 20]})
    bad = root / "clips" / "b" / "c1.npy"
    bad.write_bytes(b"not a numpy file")
    data = open_dataset(root)
    with caplog.at_level(logging.WARNING, logger="signrt.train.data"):
        good = check_clips(data)
    assert len(good) == 3 and bad not in good.clips.paths  # type: ignore[attr-defined]
    lines = [r.getMessage() for r in caplog.records if str(bad) in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    with pytest.raises(DataError, match=r"c1\.npy"):
        check_clips(data, strict=True)


def test_splits() -> None:
    # sign 0: sessions 1, 2, 3; sign 1: sessions 1, 2; sign 2: session 4 only
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    sessions = ["1", "2", "3", "3", "1", "2", "2", "4", "4"]
    held = session_split(labels, sessions)
    assert held.test.tolist() == [2, 3, 5, 6] and held.name == "sessions 2+3"
    folds = session_folds(labels, sessions)
    assert [f.name for f in folds] == ["session 1", "session 2", "session 3"]  # 4: unscorable
    for f in folds:
        assert not set(f.train) & set(f.test)
        assert {sessions[i] for i in f.test} == {f.name.split()[1]}
    rnd = random_split(np.repeat(np.arange(3), 5), 0.2, seed=1)
    assert np.bincount(np.repeat(np.arange(3), 5)[rnd.test]).tolist() == [1, 1, 1]
    kf = random_folds(np.repeat(np.arange(3), 5), 5)
    assert sorted(np.concatenate([f.test for f in kf]).tolist()) == list(range(15))
    with pytest.raises(DataError, match="two or more sessions"):
        session_split([0, 1], ["1", "2"])


def test_interrupt_during_checkpoint_write_is_a_keyboard_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from signrt import FeatureSpec
    from signrt.train.checkpoint import Checkpoint, save_checkpoint

    def interrupted_save(obj: object, f: object) -> None:
        try:
            raise KeyboardInterrupt
        finally:  # what torch's zip writer does on the way out
            raise RuntimeError("[enforce fail at inline_container.cc] file write failed")

    path = tmp_path / "last.pt"
    path.write_bytes(b"previous")
    monkeypatch.setattr(torch, "save", interrupted_save)
    ck = Checkpoint(arch="cnn1d", model_config={}, spec=FeatureSpec.preset("hands_pose"),
                    labels=["a", "b"], state_dict={})  # fmt: skip
    with pytest.raises(KeyboardInterrupt) as info:
        save_checkpoint(path, ck)
    shown = "".join(traceback.format_exception(info.value))
    assert "RuntimeError" not in shown and "file write failed" not in shown
    assert path.read_bytes() == b"previous" and list(tmp_path.iterdir()) == [path]


@pytest.mark.skipif(not INCLUDE.is_dir(), reason="include-dev (INCLUDE clips) not available")
def test_include_dev_opens_with_sessions_and_pose_hands_spec() -> None:
    """INCLUDE (Sridhar et al., ACM MM 2020): the manifest gives 21 signs and 10 sessions."""
    data = open_dataset(INCLUDE)
    assert data.num_classes == 21 and len(set(data.groups)) == 10
    cfg, _, _ = auto_config(TrainConfig(data=str(INCLUDE)), data)
    assert cfg.spec == "hands_pose" and cfg.fit == "resample" and cfg.max_len == 64
    assert session_split(data.labels, data.groups).name == "sessions 6+7+9"


def test_fold_without_a_sign_keeps_the_other_signs(tmp_path: Path) -> None:
    from signrt.train.cv import fold_sets

    root = _clip_folder(tmp_path, {"a": [20, 20, 20], "b": [20, 20, 20]})
    rows = (root / "manifest.csv").read_text().splitlines()
    rows.append("clips/c/only.npy,c,1")  # sign c: in session 1 only
    (root / "clips" / "c").mkdir()
    np.save(root / "clips" / "c" / "only.npy", _pose_hands_clip(np.random.default_rng(1), 20))
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    data = open_dataset(root / "manifest.csv")  # the CSV file itself works too
    folds = {f.name: f for f in session_folds(data.labels, data.groups)}
    assert sorted(folds) == ["session 1", "session 2"]
    tr, te = fold_sets(data, folds["session 1"])
    assert tr.label_names == ["a", "b"] and set(te.label_names) == {"a", "b"}
    assert len(te) == 4 and len(tr) == 2  # sign c's only clip is not a training clip here


def test_cli_cv_sessions_reports_mean_and_std(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from signrt.cli import main

    out = tmp_path / "cv"
    code = main(["train", "--data", "synthetic:classes=3,signers=3,clips_per_class=1,seed=0",
                 "--out", str(out), "--cv", "sessions", "--epochs", "1", "--workers", "0",
                 "--max-len", "16", "--no-progress"])  # fmt: skip
    assert code == 0
    doc = json.loads((out / "cv.json").read_text())
    assert doc["kind"] == "sessions" and len(doc["folds"]) == 3
    assert doc["top1_mean"] == pytest.approx(np.mean([f["top1"] for f in doc["folds"]]))
    assert "cv sessions: top-1" in capsys.readouterr().out
    choices = json.loads(sorted((out / "cv").glob("*/choices.json"))[0].read_text())
    assert {c["key"] for c in choices["choices"]} >= {"spec", "arch", "fit"}
