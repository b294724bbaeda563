"""Faults below the daemon: allocation, stream precision, hostile spec JSON, bad training data.

Issue 14 items 5, 6 and 8 (spec and training parts). Each case used to escape as a
PanicException, a silently wrong answer, a RecursionError/OverflowError/UnicodeDecodeError
or a 20-line DataLoader traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import signrt
from signrt import FeatureSpec, SpecError, _native
from signrt.features import FeatureStream, preprocess, preprocess_batch


@pytest.fixture
def small_alloc_limit() -> Iterator[None]:
    previous = _native._set_alloc_limit(1 << 26)  # 64 MiB
    yield
    _native._set_alloc_limit(previous)


def _spec(**fields: object) -> str:
    doc: dict[str, object] = {
        "version": 1, "layout": "holistic-543", "landmarks": list(range(543)), "coords": 3,
        "normalize": {"kind": "none"}, "max_len": 1211, "fit": "truncate",
        "motion_lags": list(range(1, 17)), "drop_empty_frames": True, "nan_fill": 0.0,
    }  # fmt: skip
    doc.update(fields)
    return json.dumps(doc)


# ---------------------------------------------------------------- item 5: allocation
def test_the_issue_spec_is_refused_at_validation() -> None:
    # 543 landmarks, xyz, many lags, max_len 4096: accepted by from_json before, then a panic
    with pytest.raises(SpecError, match="lags"):
        FeatureSpec.from_json(_spec(max_len=4096, motion_lags=list(range(1, 200))))


@pytest.mark.usefixtures("small_alloc_limit")
def test_allocation_failure_is_an_allocation_error_not_a_panic() -> None:
    spec = FeatureSpec.from_json(_spec())  # the largest valid spec: 134 MB a clip
    clip = np.random.default_rng(0).random((3, 543, 3), dtype=np.float32)
    for call in (lambda: preprocess(clip, spec), lambda: preprocess_batch([clip], spec)):
        with pytest.raises(signrt.AllocationError) as info:
            call()
        assert isinstance(info.value, MemoryError) and "\n" not in str(info.value)
    empty = np.zeros((0, 543, 3), np.float32)
    with pytest.raises(signrt.AllocationError):
        preprocess_batch([empty] * 40_000, "islr118")


# ---------------------------------------------------------------- item 6: stream precision
def test_stream_after_an_outlier_equals_batch() -> None:
    spec = FeatureSpec.preset("islr118")
    rng = np.random.default_rng(3)
    frames = rng.random((spec.max_len * 2, 543, 3), dtype=np.float32)
    frames[5] *= 1e8  # one outlier frame
    stream = FeatureStream(spec)
    worst = 0.0
    for i, frame in enumerate(frames):
        stream.push(frame)
        if i < 5 + spec.max_len:
            continue  # the outlier is in the window: both sides see it
        got, _ = stream.features()
        want, _ = preprocess(frames[i + 1 - spec.max_len : i + 1], spec)
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst <= 1e-4, worst  # was up to 167 for the next 63 pushes


# ---------------------------------------------------------------- item 8: hostile spec JSON
@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"version": 1, "max_len": ' + "9" * 400 + "}",
        b'{"version": 1, "layout": "\xff\xfe"}',
        '{"version": 1e400}',
    ],
    ids=["nested", "400-digit", "invalid-utf8", "huge-float"],
)
def test_hostile_spec_json_is_a_spec_error(text: str | bytes) -> None:
    with pytest.raises(SpecError) as info:
        FeatureSpec.from_json(text)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- item 8: bad training data
def test_corrupt_clip_in_training_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    for sign in ("a", "b"):
        (tmp_path / sign).mkdir()
        for k in range(3):
            np.save(tmp_path / sign / f"{k}.npy", rng.random((12, 75, 3), dtype=np.float32))
    bad = tmp_path / "b" / "corrupt.npy"
    bad.write_bytes(b"\x93NUMPY not really")
    cmd = [sys.executable, "-m", "signrt.cli", "train", "--data", str(tmp_path), "--arch",
           "cnn1d", "--epochs", "1", "--batch-size", "4", "--workers", "1", "--no-progress",
           "--out", str(tmp_path / "run")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if "corrupt.npy" in ln]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "DataLoader worker" not in proc.stderr
    strict = subprocess.run([*cmd[:-1], str(tmp_path / "run2"), "--strict"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert strict.returncode == 2 and "corrupt.npy" in strict.stderr
    assert "Traceback" not in strict.stderr
    assert not (tmp_path / "run2" / "last.pt").exists()
