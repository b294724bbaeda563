"""The `signrt` command: help text everywhere, `signrt features` on real clips, error exits."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from signrt import FeatureSpec
from signrt.cli import build_parser, main

DATA = Path(__file__).parent / "data" / "asl-signs-sample"


def _subcommands() -> list[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("no subcommands registered")


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "features" in out


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: signrt" in out and len(out) > 100


def test_features_on_real_clip(capsys):
    clip = sorted(DATA.glob("train_landmark_files/*/*.parquet"))[0]
    assert main(["features", str(clip), "--repeat", "3"]) == 0
    out = capsys.readouterr().out
    assert "features (64, 708)" in out
    assert "real frames" in out and "µs/clip" in out


def test_features_with_spec_file(tmp_path, capsys):
    spec = FeatureSpec.preset("hands_pose", max_len=16)
    (tmp_path / "spec.json").write_text(spec.to_json())
    clip = np.random.default_rng(0).random((5, 543, 3), dtype=np.float32)
    np.save(tmp_path / "c.npy", clip)
    assert main(["features", str(tmp_path / "c.npy"), "--spec", str(tmp_path / "spec.json"),
                 "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert f"features (16, {spec.num_features})" in out
    assert "mask 5/16" in out


def test_features_bad_spec_file_exits_2(tmp_path, capsys):
    bad = json.loads(FeatureSpec.preset("islr118").to_json())
    bad["max_len"] = 0
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    clip = tmp_path / "c.npy"
    np.save(clip, np.zeros((2, 543, 3), np.float32))
    assert main(["features", str(clip), "--spec", str(tmp_path / "bad.json")]) == 2
    assert "max_len" in capsys.readouterr().err


def test_features_missing_file_exits_2(tmp_path, capsys):
    assert main(["features", str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "signrt.cli", "--version"], capture_output=True, text=True,
        check=True,
    )
    assert out.stdout.startswith("signrt ")
