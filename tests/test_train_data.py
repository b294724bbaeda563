"""Training data: dataset sources, participant-disjoint splits, the feature cache, WLASL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from signrt import FeatureSpec, preprocess_reference
from signrt.errors import DataError
from signrt.io import read_clip, write_clip
from signrt.synthetic import SyntheticConfig, SyntheticSigner
from signrt.train.data import (
    ClipFiles,
    FeatureCache,
    batch_preprocess,
    open_dataset,
)
from test_io_wlasl import write_wlasl

SAMPLE = Path(__file__).parent / "data" / "asl-signs-sample"
SPEC = FeatureSpec.preset("islr118", max_len=24)


def test_kaggle_sample_index_and_groups() -> None:
    cs = open_dataset(SAMPLE)
    rows = (SAMPLE / "train.csv").read_text().strip().splitlines()[1:]
    assert len(cs) == len(rows) and cs.label_names == ["hello", "thankyou"]
    assert isinstance(cs.clips, ClipFiles)  # lazy: read on access
    first = rows[0].split(",")
    i = next(k for k, p in enumerate(cs.clips.paths) if p.name == Path(first[0]).name)
    assert cs.groups[i] == first[1] and cs.label_names[cs.labels[i]] == first[3]
    clip = cs.clips[i]
    assert clip.dtype == np.float32 and clip.shape[1:] == (543, 3)
    np.testing.assert_array_equal(clip, read_clip(SAMPLE / first[0]))
    assert cs.fingerprint == open_dataset(SAMPLE).fingerprint
    assert len(open_dataset(SAMPLE, limit=2)) == 2


def test_split_is_participant_disjoint() -> None:
    cs = open_dataset(SAMPLE)
    for seed in range(5):
        tr, va = cs.split_by_group(0.3, seed=seed)
        assert len(tr) + len(va) == len(cs) and len(tr) and len(va)
        assert not set(tr.groups) & set(va.groups)
    syn = open_dataset("synthetic:classes=3,signers=6,clips_per_class=1,seed=0")
    folds = syn.group_kfold(3, seed=1)
    seen: list[str] = []
    for tr, va in folds:
        assert not set(tr.groups) & set(va.groups)
        seen += sorted(set(va.groups))
    assert sorted(seen) == sorted(set(syn.groups))
    one = syn.subset([i for i, g in enumerate(syn.groups) if g == "signer00"])
    with pytest.raises(DataError, match="only 1 group"):
        one.split_by_group(0.2)


def test_synthetic_source_and_label_remap() -> None:
    cs = open_dataset("synthetic:classes=4,signers=2,clips_per_class=2,seed=5")
    assert len(cs) == 16 and cs.num_classes == 4 and set(cs.groups) == {"signer00", "signer01"}
    assert cs.class_counts().tolist() == [4, 4, 4, 4]
    remapped = cs.with_label_names(["sign03", "sign02", "sign01", "sign00", "extra"])
    names = [remapped.label_names[y] for y in remapped.labels]
    assert names == [cs.label_names[y] for y in cs.labels]
    with pytest.raises(DataError, match="not among"):
        cs.with_label_names(["sign00"])
    assert len(cs.with_label_names(["sign00"], drop_unknown=True)) == 4


def test_clip_folder_and_labels_file(tmp_path: Path) -> None:
    signer = SyntheticSigner(SyntheticConfig(num_classes=2, seed=0))
    root = tmp_path / "clips"
    for sign in ("a", "b"):
        for person in ("p1", "p2"):
            (root / sign / person).mkdir(parents=True)
            write_clip(root / sign / person / "c0.npy", signer.clip(0 if sign == "a" else 1, 0))
    cs = open_dataset(root)
    assert len(cs) == 4 and cs.label_names == ["a", "b"] and sorted(set(cs.groups)) == ["p1", "p2"]
    flat = tmp_path / "flat"
    flat.mkdir()
    write_clip(flat / "x.npy", signer.clip(0, 0))
    write_clip(flat / "y.npy", signer.clip(1, 1))
    (flat / "labels.csv").write_text("path,sign,signer\nx.npy,a,s1\ny.npy,b,s2\n")
    cs = open_dataset(flat)
    assert cs.label_names == ["a", "b"] and cs.groups == ["s1", "s2"]
    (flat / "labels.csv").write_text("path,sign\nmissing.npy,a\n")
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(flat)
    with pytest.raises(DataError):
        open_dataset(tmp_path / "nothing-here")


def test_feature_cache_roundtrip_and_keys(tmp_path: Path) -> None:
    cs = open_dataset(SAMPLE)
    cache = FeatureCache.build(cs, SPEC, tmp_path, split="val")
    assert isinstance(cache.features, np.memmap)
    assert cache.features.shape == (len(cs), SPEC.max_len, SPEC.num_features)
    assert cache.mask.shape == (len(cs), SPEC.max_len)
    np.testing.assert_array_equal(cache.labels, cs.labels)
    f0, m0 = preprocess_reference(cs.clips[0], SPEC)
    np.testing.assert_allclose(cache.features[0], f0, atol=1e-5)
    np.testing.assert_array_equal(cache.mask[0], m0)
    name = cache.stem.name
    assert name == f"val-{SPEC.fingerprint}-{cs.fingerprint}"
    meta = json.loads(cache.stem.with_name(name + ".json").read_text())
    assert meta["count"] == len(cs) and meta["label_names"] == cs.label_names
    # a second build is a cache hit (files untouched)
    feats_file = cache.stem.with_name(name + ".features.npy")
    mtime = feats_file.stat().st_mtime_ns
    again = FeatureCache.build(cs, SPEC, tmp_path, split="val")
    assert feats_file.stat().st_mtime_ns == mtime and len(again) == len(cs)
    # another spec or other data get their own files
    other = FeatureCache.build(cs, SPEC.replace(max_len=16), tmp_path, split="val")
    assert other.stem != cache.stem and other.features.shape[1] == 16
    sub = FeatureCache.build(cs.subset([0, 1]), SPEC, tmp_path, split="val")
    assert sub.stem != cache.stem and len(sub) == 2
    # an incomplete cache (no sidecar) is rebuilt
    cache.stem.with_name(name + ".json").unlink()
    rebuilt = FeatureCache.build(cs, SPEC, tmp_path, split="val")
    np.testing.assert_allclose(rebuilt.features[0], f0, atol=1e-5)


def test_batches_equal_the_reference() -> None:
    clips = [SyntheticSigner(SyntheticConfig(num_classes=3)).clip(k, 1) for k in range(3)]
    fn, mn = batch_preprocess(clips, SPEC)
    assert fn.shape == (3, SPEC.max_len, SPEC.num_features)
    for i, c in enumerate(clips):
        fr, mr = preprocess_reference(c, SPEC)
        np.testing.assert_allclose(fn[i], fr, atol=1e-4)
        np.testing.assert_array_equal(mn[i], mr)


def test_wlasl_cached_landmarks_and_extraction_once(tmp_path: Path) -> None:
    root = write_wlasl(tmp_path)
    signer = SyntheticSigner(SyntheticConfig(num_classes=2, seed=0))
    cache = root / "landmarks"
    cache.mkdir()
    np.save(cache / "00001.npy", signer.clip(0, 0))
    np.save(cache / "00002.npy", signer.clip(0, 1))
    (root / "videos").mkdir()
    (root / "videos" / "00003.mp4").write_bytes(b"not really a video")
    calls: list[Path] = []

    def fake_extract(video: Path) -> np.ndarray:
        calls.append(video)
        return signer.clip(1, 0)

    cs = open_dataset(root, extractor=fake_extract)
    # 00404 has neither video nor landmarks: skipped; 00003 extracted once and cached
    assert len(cs) == 3 and cs.label_names == ["book", "drink"]
    assert [p.name for p in calls] == ["00003.mp4"] and (cache / "00003.npy").is_file()
    np.testing.assert_array_equal(cs.clips[2], signer.clip(1, 0))
    np.testing.assert_array_equal(cs.clips[1], signer.clip(0, 1)[2:10])  # frame range
    again = open_dataset(root / "WLASL_v0.3.json", extractor=fake_extract)
    assert len(again) == 3 and len(calls) == 1  # the cache is used
    test = open_dataset(root, split="test", extractor=fake_extract)
    assert len(test) == 1 and test.groups == ["2"]
