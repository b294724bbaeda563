"""Evaluation splits and cross-validation folds over labelled clips.

Three kinds, all returning index arrays into the dataset:

* **random** (:func:`random_split`, :func:`random_folds`): stratified per sign; the easy
  measure (clips of the same recording session land on both sides).
* **session** (:func:`session_split`): for every sign recorded in two or more sessions, the
  clips of its last session (in sorted session order) are held out; signs recorded in one
  session stay in training. The test clips then come from a recording the model never saw:
  the realistic measure of a deployed recogniser.
* **leave-one-session-out** (:func:`session_folds`): one fold per session; the held-out
  clips are that session's clips whose sign also appears in another session (a sign with
  no training clip cannot be scored and is left out of that fold's test set).

The session of a clip is its ClipSet group (the ``session`` or ``signer`` column of a
manifest, or the participant of a Kaggle-layout folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import DataError

__all__ = ["Fold", "random_folds", "random_split", "session_folds", "session_split"]

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Fold:
    """One (train, test) split.

    Attributes:
        name: What is held out (``random-3``, ``session 7``, ...).
        train: Indices of the training clips.
        test: Indices of the held-out clips.
    """

    name: str
    train: IntArray
    test: IntArray


def _session_key(s: str) -> tuple[int, int | str]:
    """Sort sessions numerically when they are numbers."""
    try:
        return (0, int(s))
    except ValueError:
        return (1, s)


def random_split(labels: npt.ArrayLike, fraction: float = 0.2, *, seed: int = 0) -> Fold:
    """Stratified random split: ``fraction`` of every sign's clips (at least one) held out.

    A sign with a single clip stays in training.

    Raises:
        DataError: If ``fraction`` is not in (0, 1).
    """
    if not 0.0 < fraction < 1.0:
        raise DataError(f"split fraction must be in (0, 1), got {fraction}")
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    test: list[int] = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) >= 2:
            test.extend(idx[: max(1, round(fraction * len(idx)))].tolist())
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    return Fold(f"random-{seed}", np.flatnonzero(~is_test), np.flatnonzero(is_test))


def random_folds(labels: npt.ArrayLike, k: int = 5, *, seed: int = 0) -> list[Fold]:
    """Stratified k-fold: every clip is held out once (per sign, clips dealt round-robin).

    Raises:
        DataError: If ``k < 2``.
    """
    if k < 2:
        raise DataError(f"random folds: need k >= 2, got {k}")
    y = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(y), dtype=np.int64)
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return [
        Fold(f"random {f + 1}/{k}", np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f))
        for f in range(k)
    ]


def _sessions_per_sign(y: IntArray, sessions: Sequence[str]) -> dict[int, list[str]]:
    out: dict[int, set[str]] = {}
    for c, s in zip(y.tolist(), sessions, strict=True):
        out.setdefault(c, set()).add(s)
    return {c: sorted(v, key=_session_key) for c, v in out.items()}


def session_split(labels: npt.ArrayLike, sessions: Sequence[str]) -> Fold:
    """Hold out every sign's last session (signs with one session stay in training).

    Raises:
        DataError: If no sign has two sessions (nothing can be held out).
    """
    y = np.asarray(labels, dtype=np.int64)
    sess = [str(s) for s in sessions]
    if len(sess) != len(y):
        raise DataError(f"{len(y)} labels but {len(sess)} sessions")
    per = _sessions_per_sign(y, sess)
    last = {c: v[-1] for c, v in per.items() if len(v) >= 2}
    if not last:
        raise DataError(
            "session split: no sign was recorded in two or more sessions; give a manifest "
            "with a session (or signer) column, or use a random split"
        )
    is_test = np.array([last.get(c) == s for c, s in zip(y.tolist(), sess, strict=True)])
    held = sorted(set(last.values()), key=_session_key)
    return Fold(f"sessions {'+'.join(held)}", np.flatnonzero(~is_test), np.flatnonzero(is_test))


def session_folds(labels: npt.ArrayLike, sessions: Sequence[str]) -> list[Fold]:
    """Leave-one-session-out folds (see the module docstring).

    Raises:
        DataError: If fewer than two sessions give a non-empty test set.
    """
    y = np.asarray(labels, dtype=np.int64)
    sess = np.asarray([str(s) for s in sessions])
    if len(sess) != len(y):
        raise DataError(f"{len(y)} labels but {len(sess)} sessions")
    per = _sessions_per_sign(y, sess.tolist())
    folds = []
    for s in sorted(set(sess.tolist()), key=_session_key):
        in_s = sess == s
        scorable = np.array([len(per[c]) >= 2 for c in y.tolist()], dtype=bool)
        test = np.flatnonzero(in_s & scorable)
        if len(test):
            folds.append(Fold(f"session {s}", np.flatnonzero(~in_s), test))
    if len(folds) < 2:
        raise DataError(
            f"leave-one-session-out needs signs recorded in two or more sessions; "
            f"{len(set(sess.tolist()))} session(s) give {len(folds)} usable fold(s)"
        )
    return folds
