"""``signrt extract``: two small videos and a corrupt one, several processes, resumable."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(240)


def _astronaut_video(path: Path, n: int, shift: int) -> Path:
    cv2 = pytest.importorskip("cv2")
    data = pytest.importorskip("skimage.data")
    img = cv2.resize(np.asarray(data.astronaut())[:, :, ::-1], (256, 256))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (256, 256))
    for i in range(n):
        writer.write(np.ascontiguousarray(np.roll(img, shift * i, axis=1)))
    writer.release()
    return path


def test_extract_cli_processes_corrupt_and_resume(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mediapipe")
    from signrt.cli import main
    from signrt.io.kaggle import read_parquet

    videos = tmp_path / "videos" / "hello"
    videos.mkdir(parents=True)
    a = _astronaut_video(videos / "a.avi", 4, 3)
    b = _astronaut_video(videos / "b.avi", 3, -3)
    bad = videos / "broken.mp4"
    bad.write_bytes(b"\x1a\x45\xdf\xa3 truncated garbage" * 50)
    out = tmp_path / "dataset"

    rc = main(["extract", str(a), str(b), str(bad), "-o", str(out), "-j", "2", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 1, captured
    assert "FAILED" in captured.err and "broken.mp4" in captured.err

    with open(out / "train.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["sign"] for r in rows) == ["hello", "hello"]
    assert {r["participant_id"] for r in rows} == {"0"}
    lengths = {}
    for r in rows:
        clip = read_parquet(out / r["path"])
        lengths[int(clip.shape[0])] = clip
        assert np.isfinite(clip[:, 0:468]).all()  # face found in every frame
    assert sorted(lengths) == [3, 4]
    with open(out / "failed.csv", newline="") as fh:
        failed = list(csv.DictReader(fh))
    assert [Path(f["video"]).name for f in failed] == ["broken.mp4"]
    # No temporary files left behind (atomic writes).
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.suffix == ".tmp"]

    # Second run: finished videos are skipped; only the corrupt one is tried again.
    rc = main(["extract", str(tmp_path / "videos"), "-o", str(out), "-j", "1",
               "--no-progress", "--sign", "ignored-for-existing"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "skipped 2 already done" in captured.out
    with open(out / "train.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2

    # Without the corrupt video the run succeeds and failed.csv disappears.
    bad.unlink()
    rc = main(["extract", str(a), str(b), "-o", str(out), "--no-progress"])
    assert rc == 0
    assert not (out / "failed.csv").exists()
