"""WLASL reading (signrt.io.wlasl): the index, the landmark cache, frame ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from signrt.errors import DataError
from signrt.io.wlasl import index_wlasl, wlasl_clips
from signrt.synthetic import SyntheticConfig, SyntheticSigner


def write_wlasl(tmp_path: Path) -> Path:
    """A WLASL folder with a 4-instance index (no videos, no landmarks)."""
    def inst(video: str, signer: int, split: str, start: int, end: int) -> dict[str, object]:
        return {"video_id": video, "signer_id": signer, "split": split,
                "frame_start": start, "frame_end": end, "fps": 25}  # fmt: skip

    doc = [
        {"gloss": "book", "instances": [inst("00001", 1, "train", 1, -1),
                                        inst("00002", 2, "test", 3, 10)]},
        {"gloss": "drink", "instances": [inst("00003", 1, "train", 1, -1),
                                         inst("00404", 3, "val", 1, -1)]},
    ]  # fmt: skip
    root = tmp_path / "wlasl"
    root.mkdir()
    (root / "WLASL_v0.3.json").write_text(json.dumps(doc))
    return root


def test_wlasl_json_parsing(tmp_path: Path) -> None:
    insts = index_wlasl(write_wlasl(tmp_path) / "WLASL_v0.3.json")
    assert [(i.gloss, i.video_id, i.signer_id, i.split) for i in insts] == [
        ("book", "00001", "1", "train"), ("book", "00002", "2", "test"),
        ("drink", "00003", "1", "train"), ("drink", "00404", "3", "val"),
    ]  # fmt: skip
    assert (insts[0].frame_start, insts[0].frame_stop) == (0, None)
    assert (insts[1].frame_start, insts[1].frame_stop) == (2, 10)  # 1-based inclusive -> [2, 10)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"gloss": "x"}]')
    with pytest.raises(DataError, match="malformed"):
        index_wlasl(bad)


def test_wlasl_clips_extract_missing_videos_once(tmp_path: Path) -> None:
    root = write_wlasl(tmp_path)
    signer = SyntheticSigner(SyntheticConfig(num_classes=2, seed=0))
    (root / "videos").mkdir()
    for vid in ("00001", "00002"):
        (root / "videos" / f"{vid}.mp4").write_bytes(b"not a real video")
    calls: list[str] = []

    def extract(video: Path) -> np.ndarray:
        calls.append(video.stem)
        return signer.clip(0, len(calls))

    clips = wlasl_clips(root, extract, landmark_cache=tmp_path / "lm")
    assert [(c.gloss, c.signer_id, c.frames) for c in clips] == [
        ("book", "1", (0, None)), ("book", "2", (2, 10)),
    ]  # fmt: skip
    assert calls == ["00001", "00002"]
    np.testing.assert_array_equal(np.load(clips[1].path), signer.clip(0, 2))
    assert [c.gloss for c in wlasl_clips(root, extract, landmark_cache=tmp_path / "lm",
                                         split="test")] == ["book"]
    assert calls == ["00001", "00002"]  # cached: no second extraction
    with pytest.raises(DataError, match="no usable instance"):
        wlasl_clips(root, extract, split="val", landmark_cache=tmp_path / "lm")
