"""The `signrt` command: help text everywhere, `signrt features` on real clips, error exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from signrt import FeatureSpec
from signrt.cli import command_names, main

DATA = Path(__file__).parent / "data" / "asl-signs-sample"


def _subcommands() -> list[str]:
    names = command_names()
    assert names, "no subcommands registered"
    return names


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


def test_bench_offers_what_design_lists(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("preprocess", "inference", "pipeline"))


@pytest.mark.parametrize("argv", [
    ["bench", "inference", "--batch", "0"],
    ["bench", "preprocess", "--duration", "-1"],
    ["features", "x.npy", "--repeat", "zero"],
    ["no-such-command"],
])  # fmt: skip
def test_argument_errors_are_one_line(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "error:" in err and "Traceback" not in err


def test_signrt_error_is_one_line_and_a_bug_is_a_traceback(monkeypatch, capsys):
    from signrt import cli
    from signrt.errors import OptionError

    def deliberate(args):
        raise OptionError("--spec: expected a preset name")

    def bug(args):
        raise KeyError("oops")

    parser = cli.build_parser()
    args = parser.parse_args(["features", "x.npy"])
    args.func = deliberate
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    assert main(["features", "x.npy"]) == 2
    err = capsys.readouterr().err
    assert err == "signrt features: error: --spec: expected a preset name\n"
    args.func = bug
    with pytest.raises(KeyError, match="oops"):
        main(["features", "x.npy"])


def test_bench_preprocess_on_real_clips(tmp_path, capsys):
    out_json = tmp_path / "pre.json"
    assert main(["bench", "preprocess", "--data", str(DATA), "--clips", "3", "--batch", "4",
                 "--duration", "0.02", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "Latency: min = " in out and "3 real clips" in out
    doc = json.loads(out_json.read_text())
    cases = {r["case"] for r in doc["rows"]}
    assert {"preprocess", "preprocess_batch", "preprocess_reference (NumPy)"} <= cases
    assert doc["machine"]["instruction_set"] in ("avx512", "avx2", "none")
    batch = next(r for r in doc["rows"] if r["case"] == "preprocess_batch")
    assert batch["batch"] == 4 and batch["clips_per_s"] == pytest.approx(4 * batch["throughput"])


def test_bench_pipeline_on_landmarks(tmp_path, capsys):
    clip = sorted(DATA.glob("train_landmark_files/*/*.parquet"))[0]
    out_json = tmp_path / "pipe.json"
    assert main(["bench", "pipeline", str(clip), "--frames", "20", "--stride", "2",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    rows = {(r["device"], r["stage"]): r for r in doc["rows"]}
    n = doc["frames"]
    assert 1 <= n <= 20
    # landmarks given: read per file, no extractor stage; every device stage on cpu
    assert set(rows) == {("any", "read")} | {
        ("cpu", s) for s in ("features", "engine", "decision", "publish", "total")}
    assert rows["any", "read"]["count"] == 1
    cpu = doc["devices"]["cpu"]
    assert rows["cpu", "engine"]["count"] == rows["cpu", "decision"]["count"]
    assert rows["cpu", "engine"]["count"] == cpu["engine_calls"] >= 1
    assert rows["cpu", "features"]["count"] == rows["cpu", "total"]["count"] == n
    for r in doc["rows"]:
        assert 0 <= r["min_ms"] <= r["median_ms"] <= r["p99_ms"] <= r["max_ms"]
        assert r["trtexec"].startswith(f"Latency: min = {r['min_ms']:.4f} ms")
    # a frame's total includes its publish
    assert rows["cpu", "total"]["max_ms"] >= rows["cpu", "publish"]["max_ms"]
    assert "percentile(99%)" in out
    # devices that this machine lacks are skipped with the reason, one line each
    for device, reason in doc["skipped"].items():
        assert f"- {device}: skipped ({reason})" in out
    assert set(doc["skipped"]) | set(doc["devices"]) == {"cpu", "cuda", "tensorrt", "trt"}


def test_bench_pipeline_two_landmarkers_side_by_side(tmp_path, capsys):
    pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("mediapipe")
    video = Path(__file__).parent / "data" / "media" / "signing_16f.mp4"
    out_json = tmp_path / "pipe.json"
    assert main(["bench", "pipeline", str(video), "--frames", "3", "--device", "cpu",
                 "--threads", "1", "--landmarker", "onnx,legacy",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    rows = {(r["landmarker"], r["device"], r["stage"]): r for r in doc["rows"]}
    # one decode per frame, each extractor on every frame, later stages per landmarker
    assert rows["-", "any", "read"]["count"] == doc["frames"] == 3
    for name in ("onnx", "legacy"):
        assert rows[name, "any", "extract"]["count"] == 3
        assert rows[name, "cpu", "total"]["count"] == 3
        # a frame's total holds its read and extract
        assert rows[name, "cpu", "total"]["min_ms"] >= rows[name, "any", "extract"]["min_ms"]
        assert doc["landmarkers"][name]["extract_median_ms"] > 0
        assert f"{name}/cpu" in doc["devices"]
    assert "extract median onnx / legacy:" in out


def test_bench_pipeline_rejects_repeated_landmarker(capsys):
    assert main(["bench", "pipeline", "--landmarker", "onnx,onnx"]) == 2
    assert "--landmarker" in capsys.readouterr().err


def test_bench_pipeline_only_unavailable_devices(capsys):
    from signrt.runtime.engines import available_devices

    missing = [d for d, r in available_devices().items() if r is not None and d != "cpu"]
    if not missing:
        pytest.skip("every device is available here")
    assert main(["bench", "pipeline", "--frames", "8", "--device", *missing]) == 2
    assert "no device could run" in capsys.readouterr().err
