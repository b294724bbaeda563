"""Training data: labelled clip sets, participant-disjoint splits and a preprocessed cache.

Sources (:func:`open_dataset`):

* a **Kaggle-layout** folder (``train.csv`` + parquet files, Google ASL Signs; groups are
  the participants) or a **clip folder** (one subfolder per sign with ``.npy``/``.npz``/
  ``.parquet``/``.pose`` clips; a clip in ``SIGN/SIGNER/clip.npy`` belongs to group
  ``SIGNER``, otherwise each clip is its own group), both indexed by
  :func:`signrt.io.index_dataset`;
* a folder with a **manifest** ``labels.csv`` or ``manifest.csv`` (or the CSV file itself;
  columns ``path``, ``sign`` and optionally ``session``, ``signer`` or ``participant_id``,
  the clip's group; paths relative to the manifest's folder);
* **WLASL** (a folder holding ``WLASL_v0.3.json`` and ``videos/<video_id>.mp4``): landmarks
  are extracted once per video through :mod:`signrt.extract` and cached as
  ``landmarks/<video_id>.npy``; each instance is its frame range of the video;
* the **synthetic signer**, ``synthetic:classes=20,signers=8,clips_per_class=5,seed=0``
  (:mod:`signrt.synthetic`).

Clips from files are read lazily (``ClipSet.clips[i]`` reads the file), so a large dataset
is not held in memory; the trainer reads them in DataLoader workers.

Preprocessed cache (:class:`FeatureCache`): the FeatureSpec applied to every clip of a
split, stored as three ``.npy`` files (features (N, L, F), mask (N, L), labels (N,)) plus a
JSON sidecar, opened memory-mapped. The file names carry the split name, the spec
fingerprint and the data fingerprint, so a changed spec or changed data never reuses a
stale cache. **Cache and augmentation:** augmentation works on raw clips, before
preprocessing, so augmented training cannot read features from the cache; the trainer uses
the cache for validation always and for training only when augmentation is off. With
augmentation on, training clips are read (or, for the synthetic signer, held in memory),
augmented in the workers and preprocessed in the collate function.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt

from .._fs import write_text_atomic
from ..errors import DataError, ShapeError, SignrtError
from ..io.wlasl import WLASL_INDEX
from ..spec import FeatureSpec
from ..synthetic import SyntheticSigner, parse_synthetic_source

__all__ = [
    "ClipFiles",
    "ClipSet",
    "FeatureCache",
    "batch_preprocess",
    "check_clips",
    "open_dataset",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
PathLike = str | os.PathLike[str]
LABELS_FILE: Final = "labels.csv"
#: Manifest names recognised in a dataset folder, in order of preference.
MANIFEST_FILES: Final = ("labels.csv", "manifest.csv")
#: Manifest columns naming the group (recording session or signer) of a clip.
GROUP_COLUMNS: Final = ("session", "signer", "participant_id")
_CACHE_FORMAT: Final = 1


# ------------------------------------------------------------------------- clip access
class ClipFiles(Sequence[FloatArray]):
    """A lazy sequence of clips read from files on access (picklable for workers).

    Args:
        paths: Clip files readable by :func:`signrt.io.read_clip`.
        frames: Optional ``(start, stop)`` frame range per file (``stop`` may be None).
    """

    def __init__(
        self, paths: Sequence[PathLike], frames: Sequence[tuple[int, int | None]] | None = None
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.frames = list(frames) if frames is not None else None
        if self.frames is not None and len(self.frames) != len(self.paths):
            raise ShapeError("frames must have one entry per path")

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, i: int) -> FloatArray: ...

    @overload
    def __getitem__(self, i: slice) -> list[FloatArray]: ...

    def __getitem__(self, i: int | slice) -> FloatArray | list[FloatArray]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        from ..io import read_clip

        clip = read_clip(self.paths[i])
        if self.frames is not None:
            start, stop = self.frames[i]
            clip = clip[start:stop]
        return clip

    def take(self, indices: Sequence[int]) -> ClipFiles:
        """The sub-sequence at ``indices`` (still lazy)."""
        frames = [self.frames[i] for i in indices] if self.frames is not None else None
        return ClipFiles([self.paths[i] for i in indices], frames)

    def fingerprint_parts(self) -> Iterator[str]:
        """Path, size, mtime and frame range of every file (for the data fingerprint)."""
        for k, p in enumerate(self.paths):
            try:
                st = p.stat()
                meta = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                meta = "missing"
            rng = self.frames[k] if self.frames is not None else None
            yield f"{p}|{meta}|{rng}"


# ------------------------------------------------------------------------------ ClipSet
@dataclass
class ClipSet:
    """A labelled set of raw clips.

    Attributes:
        clips: (T_i, 543, 3) float32 clips; a list, or a lazy :class:`ClipFiles`.
        labels: int64 (N,) class indices into ``label_names``.
        label_names: Class names, index = label.
        groups: Participant/signer id of every clip (splits keep groups disjoint).
        source: Where the clips came from (a path or a ``synthetic:...`` string).
    """

    clips: Sequence[FloatArray]
    labels: npt.NDArray[np.int64]
    label_names: list[str]
    groups: list[str]
    source: str = ""
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.groups = [str(g) for g in self.groups]
        n = len(self.clips)
        if self.labels.shape != (n,) or len(self.groups) != n:
            raise DataError(
                f"ClipSet: {n} clips but {self.labels.shape[0]} labels and "
                f"{len(self.groups)} groups"
            )
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.label_names)):
            raise DataError("ClipSet: a label is outside label_names")

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        return (
            f"ClipSet({len(self)} clips, {self.num_classes} classes, "
            f"{len(set(self.groups))} groups, source={self.source!r})"
        )

    @property
    def num_classes(self) -> int:
        """K, the number of classes."""
        return len(self.label_names)

    def class_counts(self) -> npt.NDArray[np.int64]:
        """Clips per class, (K,)."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)

    @property
    def fingerprint(self) -> str:
        """A 16-hex-digit hash of the data (files: path, size, mtime; memory: contents)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(json.dumps(self.label_names).encode())
            h.update(self.labels.tobytes())
            h.update("\n".join(self.groups).encode())
            if isinstance(self.clips, ClipFiles):
                for part in self.clips.fingerprint_parts():
                    h.update(part.encode())
            else:
                for c in self.clips:
                    a = np.ascontiguousarray(c, dtype=np.float32)
                    h.update(str(a.shape).encode())
                    h.update(a.tobytes())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    # ---------------------------------------------------------------------- subsets
    def subset(self, indices: Sequence[int] | npt.NDArray[np.integer[Any]]) -> ClipSet:
        """The clips at ``indices`` (same label names)."""
        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        clips: Sequence[FloatArray]
        if isinstance(self.clips, ClipFiles):
            clips = self.clips.take(idx)
        else:
            clips = [self.clips[i] for i in idx]
        return ClipSet(
            clips=clips,
            labels=self.labels[idx] if idx else np.zeros(0, np.int64),
            label_names=list(self.label_names),
            groups=[self.groups[i] for i in idx],
            source=self.source,
        )

    def split_by_group(
        self, val_fraction: float = 0.2, *, seed: int = 0
    ) -> tuple[ClipSet, ClipSet]:
        """Split into train and validation sets with no group (participant) in both.

        Groups are shuffled with ``seed`` and moved to validation until it holds at least
        ``val_fraction`` of the clips; both sides keep at least one group.

        Raises:
            DataError: If there are fewer than two groups.
        """
        tr, va = self.group_split_indices(val_fraction, seed=seed)
        return self.subset(tr), self.subset(va)

    def group_split_indices(
        self, val_fraction: float = 0.2, *, seed: int = 0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Indices of a participant-disjoint split; see :meth:`split_by_group`."""
        if not 0.0 < val_fraction < 1.0:
            raise DataError(f"val_fraction must be in (0, 1), got {val_fraction}")
        uniq = sorted(set(self.groups))
        if len(uniq) < 2:
            raise DataError(
                f"cannot split {self.source or 'the data'} by participant: only "
                f"{len(uniq)} group; give a separate validation set (--val-data)"
            )
        order = np.random.default_rng(seed).permutation(len(uniq))
        sizes = {g: 0 for g in uniq}
        for g in self.groups:
            sizes[g] += 1
        target = val_fraction * len(self)
        val_groups: set[str] = set()
        count = 0
        for k in order:
            if count >= target or len(val_groups) == len(uniq) - 1:
                break
            g = uniq[int(k)]
            val_groups.add(g)
            count += sizes[g]
        is_val = np.array([g in val_groups for g in self.groups], dtype=bool)
        return np.flatnonzero(~is_val).astype(np.int64), np.flatnonzero(is_val).astype(np.int64)

    def group_kfold(self, k: int, *, seed: int = 0) -> list[tuple[ClipSet, ClipSet]]:
        """K participant-disjoint (train, validation) folds covering every group once."""
        uniq = sorted(set(self.groups))
        if not 2 <= k <= len(uniq):
            raise DataError(f"group_kfold: need 2 <= k <= {len(uniq)} groups, got k={k}")
        order = np.random.default_rng(seed).permutation(len(uniq))
        fold_of = {uniq[int(g)]: i % k for i, g in enumerate(order)}
        folds = []
        for f in range(k):
            is_val = np.array([fold_of[g] == f for g in self.groups])
            tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
            folds.append((self.subset(tr), self.subset(va)))
        return folds

    def with_label_names(self, names: Sequence[str], *, drop_unknown: bool = False) -> ClipSet:
        """Re-index the labels onto another class list (e.g. a model's labels).

        Args:
            names: The new class names, index = label.
            drop_unknown: Drop clips whose sign is not in ``names`` instead of failing.

        Raises:
            DataError: If a sign is not in ``names`` and ``drop_unknown`` is false.
        """
        pos = {n: i for i, n in enumerate(names)}
        mine = [pos.get(n, -1) for n in self.label_names]
        unknown = sorted({self.label_names[i] for i in set(self.labels.tolist()) if mine[i] < 0})
        if unknown and not drop_unknown:
            raise DataError(
                f"{len(unknown)} sign(s) of {self.source or 'the data'} are not among the "
                f"{len(names)} labels: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}"
            )
        mapped = np.asarray(mine, dtype=np.int64)[self.labels] if len(self) else self.labels
        keep = np.flatnonzero(mapped >= 0)
        out = self.subset(keep)
        out.labels = mapped[keep]
        out.label_names = list(names)
        return out


# ------------------------------------------------------------------------ preprocessing
def batch_preprocess(
    clips: Sequence[npt.ArrayLike], spec: FeatureSpec
) -> tuple[FloatArray, FloatArray]:
    """Preprocess clips into a batch with the native core (:func:`signrt.preprocess_batch`).

    Args:
        clips: (T_i, 543, 3) clips.
        spec: The FeatureSpec.

    Returns:
        ``(features, mask)``: float32 (B, L, F) and (B, L).
    """
    from ..features import preprocess_batch

    return preprocess_batch(clips, spec)


# --------------------------------------------------------------------------- the cache
@dataclass
class FeatureCache:
    """Preprocessed features of one split, memory-mapped from ``.npy`` files.

    Attributes:
        features: (N, L, F) float32 (a read-only memmap).
        mask: (N, L) float32.
        labels: (N,) int64.
        label_names: Class names.
        stem: The common path prefix of the cache files.
    """

    features: FloatArray
    mask: FloatArray
    labels: npt.NDArray[np.int64]
    label_names: list[str]
    stem: Path

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @staticmethod
    def stem_for(cache_dir: PathLike, split: str, spec: FeatureSpec, clipset: ClipSet) -> Path:
        """``<cache_dir>/<split>-<spec fingerprint>-<data fingerprint>``."""
        return Path(cache_dir) / f"{split}-{spec.fingerprint}-{clipset.fingerprint}"

    @classmethod
    def open(cls, stem: PathLike) -> FeatureCache:
        """Open an existing cache (memory-mapped).

        Raises:
            DataError: If the cache is incomplete or unreadable.
        """
        s = Path(stem)
        meta_path = s.with_name(s.name + ".json")
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != _CACHE_FORMAT:
                raise DataError(f"{meta_path}: unknown cache format {meta.get('format')}")
            feats = np.load(s.with_name(s.name + ".features.npy"), mmap_mode="r")
            mask = np.load(s.with_name(s.name + ".mask.npy"), mmap_mode="r")
            labels = np.load(s.with_name(s.name + ".labels.npy"))
        except (OSError, ValueError) as exc:
            raise DataError(f"feature cache {s} is missing or unreadable: {exc}") from exc
        if feats.shape[0] != labels.shape[0] or mask.shape != feats.shape[:2]:
            raise DataError(f"feature cache {s}: inconsistent shapes")
        return cls(feats, mask, labels.astype(np.int64), list(meta["label_names"]), s)

    @classmethod
    def build(
        cls,
        clipset: ClipSet,
        spec: FeatureSpec,
        cache_dir: PathLike,
        *,
        split: str = "data",
        chunk: int = 256,
    ) -> FeatureCache:
        """Open the cache of ``(clipset, spec)``, preprocessing and writing it if missing.

        The features are written chunk by chunk into a memory-mapped ``.npy`` (so the
        whole split never has to fit in memory) and the JSON sidecar is written last,
        atomically: a cache without its sidecar is incomplete and is rebuilt.

        Args:
            clipset: The clips.
            spec: The FeatureSpec to apply.
            cache_dir: Folder of the cache files (created if missing).
            split: Name of the split (part of the file names).
            chunk: Clips preprocessed per batch call.
        """
        stem = cls.stem_for(cache_dir, split, spec, clipset)
        if stem.with_name(stem.name + ".json").is_file():
            try:
                cache = cls.open(stem)
                log.info("feature cache hit: %s (%d clips)", stem, len(cache))
                return cache
            except DataError as exc:
                log.warning("rebuilding feature cache: %s", exc)
        stem.parent.mkdir(parents=True, exist_ok=True)
        n, L, F = len(clipset), spec.max_len, spec.num_features
        log.info("building feature cache %s: %d clips, spec %s", stem, n, spec.fingerprint)
        feats_path = stem.with_name(stem.name + ".features.npy")
        mask_path = stem.with_name(stem.name + ".mask.npy")
        # numpy 1.26's stubs leave open_memmap untyped; numpy 2's type it.
        open_memmap = np.lib.format.open_memmap
        feats = open_memmap(feats_path, mode="w+", dtype=np.float32, shape=(n, L, F))  # type: ignore[no-untyped-call]
        mask = open_memmap(mask_path, mode="w+", dtype=np.float32, shape=(n, L))  # type: ignore[no-untyped-call]
        for a in range(0, n, chunk):
            b = min(n, a + chunk)
            f, m = batch_preprocess([clipset.clips[i] for i in range(a, b)], spec)
            feats[a:b], mask[a:b] = f, m
        feats.flush()
        mask.flush()
        del feats, mask
        np.save(stem.with_name(stem.name + ".labels.npy"), clipset.labels)
        meta = {
            "format": _CACHE_FORMAT,
            "split": split,
            "spec": spec.to_dict(),
            "spec_fingerprint": spec.fingerprint,
            "data_fingerprint": clipset.fingerprint,
            "source": clipset.source,
            "label_names": clipset.label_names,
            "count": n,
        }
        write_text_atomic(stem.with_name(stem.name + ".json"), json.dumps(meta, indent=1))
        return cls.open(stem)




# ------------------------------------------------------------------------ clip checks
def check_clips(data: ClipSet, *, strict: bool = False) -> ClipSet:
    """Read every clip once; skip (or, with ``strict``, reject) the unreadable ones.

    Each bad clip is logged as one warning line naming its path and what is wrong with it,
    so that one corrupt file among thousands does not surface later as a traceback from a
    DataLoader worker.

    Args:
        data: The clips (clips in memory are checked for shape only).
        strict: Raise instead of skipping.

    Returns:
        ``data`` itself when every clip reads, else the subset of readable clips.

    Raises:
        DataError: With ``strict``, naming the bad clips; or when no clip is readable.
    """
    bad: list[tuple[int, str]] = []
    for i in range(len(data)):
        name = str(data.clips.paths[i]) if isinstance(data.clips, ClipFiles) else f"clip {i}"
        try:
            clip = data.clips[i]
            if clip.ndim != 3 or clip.shape[1:] != (543, 3):
                raise DataError(f"shape {clip.shape}, expected (T, 543, 3)")
            if clip.shape[0] == 0:
                raise DataError("no frame")
        except (SignrtError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            bad.append((i, f"{name}: {reason}"))
            if not strict:
                log.warning("skipping unreadable clip %s", bad[-1][1])
    if not bad:
        return data
    if strict:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise DataError(
            f"{len(bad)} unreadable clip(s) in {data.source or 'the data'} (--strict): "
            + "; ".join(b for _, b in bad[:3]) + more
        )
    if len(bad) == len(data):
        raise DataError(f"no readable clip in {data.source or 'the data'}: {bad[0][1]}")
    skip = {i for i, _ in bad}
    log.warning("skipped %d of %d clips of %s", len(bad), len(data), data.source or "the data")
    return data.subset([i for i in range(len(data)) if i not in skip])


# ---------------------------------------------------------------------------- sources
def open_dataset(
    source: PathLike,
    *,
    spec: FeatureSpec | None = None,
    split: str | None = None,
    limit: int | None = None,
    landmark_cache: PathLike | None = None,
    extractor: Callable[[Path], FloatArray] | None = None,
) -> ClipSet:
    """Open a labelled dataset.

    Args:
        source: A Kaggle-layout folder, a clip folder, a folder with ``labels.csv``, a WLASL
            folder (or its ``WLASL_v0.3.json``), or ``synthetic:key=value,...``.
        spec: Unused for reading; accepted so that callers can pass their spec along
            (the cache is built separately by :meth:`FeatureCache.build`).
        split: For WLASL, keep only the instances of this split (train, val, test).
        limit: Keep only the first ``limit`` clips (quick experiments).
        landmark_cache: For WLASL, where extracted landmarks are cached (default
            ``<folder>/landmarks``).
        extractor: For WLASL, ``video path -> (T, 543, 3)`` landmarks; default: MediaPipe
            Holistic through :mod:`signrt.extract`.

    Returns:
        The ClipSet; label names sorted alphabetically (synthetic: ``sign00`` ...).

    Raises:
        DataError: If the source is not a dataset of a known kind or is malformed.
    """
    del spec
    text = os.fspath(source)
    if text.startswith("synthetic"):
        cfg = parse_synthetic_source(text)
        clips, labels, groups = SyntheticSigner(cfg).dataset()
        cs = ClipSet(list(clips), labels, cfg.label_names, groups, source=cfg.describe())
    else:
        path = Path(text)
        if path.name == WLASL_INDEX or (path.is_dir() and (path / WLASL_INDEX).is_file()):
            cs = open_wlasl(path, split=split, landmark_cache=landmark_cache, extractor=extractor)
        elif path.is_file() and path.suffix == ".csv" and path.name != "train.csv":
            cs = _open_labels_file(path)
        elif path.is_dir() and (manifest := _manifest(path)) is not None:
            cs = _open_labels_file(manifest)
        else:
            cs = _open_indexed(path)
    if limit is not None and limit < len(cs):
        cs = cs.subset(range(limit))
    log.info("opened %r", cs)
    return cs


def _from_records(
    paths: list[Path], signs: list[str], groups: list[str], source: str,
    frames: list[tuple[int, int | None]] | None = None,
) -> ClipSet:  # fmt: skip
    names = sorted(set(signs))
    pos = {n: i for i, n in enumerate(names)}
    labels = np.asarray([pos[s] for s in signs], dtype=np.int64)
    return ClipSet(ClipFiles(paths, frames), labels, names, groups, source=source)


def _open_indexed(root: Path) -> ClipSet:
    from ..io import index_dataset

    records = index_dataset(root)
    if not records:
        raise DataError(f"{root}: the dataset lists no clip")
    groups = []
    for r in records:
        if r.participant_id is not None:
            groups.append(str(r.participant_id))
        else:
            # clip folder: SIGN/SIGNER/clip -> SIGNER, else the clip is its own group
            rel_parent = r.path.parent.name
            groups.append(rel_parent if rel_parent != r.sign else f"{r.sign}/{r.path.stem}")
    return _from_records(
        [r.path for r in records], [r.sign for r in records], groups, source=str(root)
    )


def _manifest(folder: Path) -> Path | None:
    if (folder / "train.csv").exists():
        return None
    for name in MANIFEST_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _open_labels_file(index: Path) -> ClipSet:
    base = index.parent
    paths, signs, groups = [], [], []
    with open(index, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        if "path" not in cols or "sign" not in cols:
            raise DataError(f"{index}: needs columns path and sign (found {', '.join(cols)})")
        reader.fieldnames = cols
        for row in reader:
            rel, sign = (row.get("path") or "").strip(), (row.get("sign") or "").strip()
            if not rel or not sign:
                raise DataError(f"{index}: line {reader.line_num}: empty path or sign")
            p = base / rel
            if not p.is_file():
                raise DataError(f"{index}: line {reader.line_num}: {p} does not exist")
            paths.append(p)
            signs.append(sign)
            group = next((row[c].strip() for c in GROUP_COLUMNS if (row.get(c) or "").strip()), "")
            groups.append(group or rel)
    if not paths:
        raise DataError(f"{index}: lists no clip")
    return _from_records(paths, signs, groups, source=str(base))


def open_wlasl(
    root: PathLike,
    *,
    split: str | None = None,
    landmark_cache: PathLike | None = None,
    extractor: Callable[[Path], FloatArray] | None = None,
) -> ClipSet:
    """Open WLASL (:func:`signrt.io.wlasl.wlasl_clips`) as a ClipSet.

    Args:
        root: The WLASL folder or its ``WLASL_v0.3.json``.
        split: Keep only this split.
        landmark_cache: Cache folder (default ``<root>/landmarks``).
        extractor: ``video path -> (T, 543, 3)``; default
            :func:`signrt.extract.extract_video` (MediaPipe Holistic).

    Raises:
        DataError: If the index is malformed or nothing is usable.
        ExtractorError: If a video needs extracting and MediaPipe is not installed.
    """
    from ..extract import extract_video
    from ..io.wlasl import wlasl_clips

    clips = wlasl_clips(root, extractor or extract_video, split=split,
                        landmark_cache=landmark_cache)
    base = Path(root) if Path(root).is_dir() else Path(root).parent
    return _from_records(
        [c.path for c in clips], [c.gloss for c in clips], [c.signer_id for c in clips],
        source=str(base), frames=[c.frames for c in clips],
    )  # fmt: skip
