"""Window and segment decisions replayed offline on recorded logits.

To compare rejection scores and boundary methods without running a ``Stream`` once per
setting, the classifications a stream would make are computed once (their logits kept),
and the decision rules are replayed on them:

* :func:`window_logits`: the windows a window-mode ``Stream`` classifies (every
  ``stride`` frames, the last ``max_len`` frames, only when the newest frame has a signer
  and the window holds ``min_frames`` frames with one), with their logits;
* :func:`window_decide`: the window-mode rule (``confirm`` consecutive classifications of
  one label with score >= threshold, a per-label ``cooldown``, a frame without a signer
  resets) on any per-window score; with the softmax score it gives the events of
  ``Stream(mode="window")`` (tested);
* :func:`hand_motion`: per-frame hand displacement (image units, or shoulder widths with
  ``normalise=True``), and :func:`motion_segments`: the segment-mode rule (a moving frame
  opens a segment, ``rest_frames`` still frames close it) on it;
* :func:`motion_threshold`: the motion threshold derived from labelled frames (the one
  that best separates signing from rest frames, by balanced accuracy);
* :func:`trajectory_decide`: boundaries from the classifier's score trajectory: a run of
  windows whose score is >= ``on`` opens, it stays open while the score is >= ``off``, and
  when it closes the label with the highest summed probability over the run is emitted if
  its peak score reaches ``on`` and the run has ``min_windows`` windows.

The logits come from ``rec.preprocess`` and ``rec.engine.run`` (the Recognizer's public
building blocks), so the numbers are those of the deployed model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .. import layouts
from ..errors import DataError, ShapeError
from .matching import EmittedEvent
from .streams import JoinedStream

__all__ = [
    "WindowLogits",
    "classify_clips",
    "hand_motion",
    "motion_segments",
    "motion_threshold",
    "trajectory_decide",
    "window_decide",
    "window_logits",
]

F64 = npt.NDArray[np.float64]
_BATCH = 32


def classify_clips(rec: Any, clips: Sequence[npt.NDArray[Any]]) -> F64:
    """Logits (N, K) of clips: ``rec.preprocess`` each, ``rec.engine.run`` in batches.

    A clip without a selected landmark gets all-zero logits.
    """
    k = len(rec.labels)
    out = np.zeros((len(clips), k), dtype=np.float64)
    feats, masks, rows = [], [], []
    for i, c in enumerate(clips):
        f, m = rec.preprocess(c)
        if m.any():
            feats.append(f)
            masks.append(m)
            rows.append(i)
    for a in range(0, len(rows), _BATCH):
        f = np.stack(feats[a : a + _BATCH]).astype(np.float32)  # (B, L, F)
        m = np.stack(masks[a : a + _BATCH]).astype(np.float32)  # (B, L)
        out[rows[a : a + _BATCH]] = rec.engine.run(f, m)
    return out


@dataclass
class WindowLogits:
    """The classifications of one stream in window mode.

    Attributes:
        frame: (n,) index of the newest frame of each classified window.
        time: (n,) its timestamp.
        logits: (n, K).
        reset: (n,) True when a frame without a signer came since the previous
            classification (the window rule's run of confirmations restarts).
    """

    frame: npt.NDArray[np.intp]
    time: F64
    logits: F64
    reset: npt.NDArray[np.bool_]


def has_signer(frames: npt.NDArray[Any], landmarks: Sequence[int], coords: int
               ) -> npt.NDArray[np.bool_]:  # fmt: skip
    """(T,) True where a frame has a finite selected landmark (the Stream's signer test)."""
    sel = frames[:, np.asarray(landmarks, dtype=np.intp), :coords]
    return np.isfinite(sel).any(axis=(1, 2))  # type: ignore[no-any-return]


def window_logits(
    rec: Any, stream: JoinedStream, *, stride: int = 4, min_frames: int = 8
) -> WindowLogits:
    """The windows a window-mode Stream with these settings classifies, with logits."""
    spec = rec.spec
    L = spec.max_len
    valid = has_signer(stream.frames, spec.landmarks, spec.coords)
    cum = np.concatenate([[0], np.cumsum(valid)])
    idx: list[int] = []
    resets: list[bool] = []
    pending_reset = False
    min_frames = min(max(1, min_frames), L)
    for i in range(len(stream.frames)):
        if not valid[i]:
            pending_reset = True
            continue
        if (i + 1) % stride:
            continue
        a = max(0, i - L + 1)
        if cum[i + 1] - cum[a] < min_frames:
            continue
        idx.append(i)
        resets.append(pending_reset)
        pending_reset = False
    clips = [stream.frames[max(0, i - L + 1) : i + 1] for i in idx]
    logits = classify_clips(rec, clips) if clips else np.zeros((0, len(rec.labels)))
    return WindowLogits(
        np.asarray(idx, dtype=np.intp),
        stream.timestamps[np.asarray(idx, dtype=np.intp)] if idx else np.zeros(0),
        logits,
        np.asarray(resets, dtype=bool),
    )


def window_decide(
    labels: Sequence[str],
    wl: WindowLogits,
    top: npt.NDArray[Any],
    score: F64,
    *,
    threshold: float,
    confirm: int = 2,
    cooldown: float = 1.0,
) -> list[EmittedEvent]:
    """The window-mode rule on per-window scores (see the module docs).

    Args:
        labels: The model's labels.
        wl: The classifications.
        top: (n,) top-1 class of each window.
        score: (n,) the score compared with the threshold.
        threshold: Minimum score.
        confirm: Consecutive confirming windows.
        cooldown: Seconds before the same label may be emitted again.

    Returns:
        The events (emission time = the confirming window's time).
    """
    out: list[EmittedEvent] = []
    cand: int | None = None
    streak = 0
    scores_: list[float] = []
    last: dict[int, float] = {}
    for j in range(len(wl.frame)):
        if wl.reset[j]:
            cand, streak = None, 0
        lab, sc, ts = int(top[j]), float(score[j]), float(wl.time[j])
        if sc < threshold:
            cand, streak = None, 0
            continue
        if lab != cand:
            cand, streak, scores_ = lab, 0, []
        streak += 1
        scores_.append(sc)
        if streak != confirm:
            continue
        prev = last.get(lab)
        if prev is not None and ts - prev < cooldown:
            continue
        last[lab] = ts
        out.append(EmittedEvent(labels[lab], ts, float(np.mean(scores_))))
    return out


def hand_motion(frames: npt.NDArray[Any], *, normalise: bool = False) -> F64:
    """(T,) largest hand-centre displacement since the previous frame (0 where unseen).

    Args:
        frames: (T, 543, 3).
        normalise: Divide by the shoulder width of the frame (pose 11-12), so the motion
            does not depend on how far the signer stands from the camera.
    """
    out = np.zeros(len(frames), dtype=np.float64)
    for part in (layouts.LEFT_HAND, layouts.RIGHT_HAND):
        xy = frames[:, part.start : part.stop, :2].astype(np.float64)
        ok = np.isfinite(xy).all(axis=-1)  # (T, 21)
        cnt = ok.sum(axis=1)
        c = np.where(ok[..., None], xy, 0.0).sum(axis=1) / np.maximum(cnt, 1)[:, None]
        c[cnt == 0] = np.nan
        d = np.hypot(*(c[1:] - c[:-1]).T)
        d = np.concatenate([[np.nan], d])
        out = np.fmax(out, np.where(np.isfinite(d), d, 0.0))
    if normalise:
        sh = frames[:, layouts.POSE.start + 11, :2].astype(np.float64) - frames[
            :, layouts.POSE.start + 12, :2
        ].astype(np.float64)
        w = np.hypot(sh[:, 0], sh[:, 1])
        med = np.nanmedian(w) if np.isfinite(w).any() else 1.0
        w = np.where(np.isfinite(w) & (w > 1e-6), w, med if med > 1e-6 else 1.0)
        out = out / w
    return out


def motion_threshold(motion: npt.ArrayLike, signing: npt.ArrayLike) -> tuple[float, float]:
    """The motion threshold that best separates signing frames from rest frames.

    Frames whose motion is 0 (no hand seen in this or the previous frame) are left out.
    Every distinct motion value is a candidate; the one with the highest balanced accuracy
    of ``motion > threshold`` against ``signing`` wins (the lowest on ties). Exact, in
    O(T log T).

    Args:
        motion: (T,) per-frame motion (:func:`hand_motion`), any number of streams joined.
        signing: (T,) True on frames that belong to a sign.

    Returns:
        (threshold, balanced accuracy).

    Raises:
        ShapeError: If the shapes differ or are not 1-D.
        DataError: If there are no moving signing or no moving rest frames.
    """
    m = np.asarray(motion, dtype=np.float64)
    y = np.asarray(signing, dtype=bool)
    if m.shape != y.shape or m.ndim != 1:
        raise ShapeError(f"motion and signing must be equal 1-D shapes, got {m.shape}, {y.shape}")
    seen = m > 0
    m, y = m[seen], y[seen]
    if not y.any() or y.all():
        raise DataError("motion_threshold needs frames of both signing and rest with a hand seen")
    order = np.argsort(m, kind="stable")
    ms, ys = m[order], y[order]
    # frames at or below ms[k] are inactive: rest frames there are right, sign frames wrong
    rest_le = np.cumsum(~ys)
    sign_le = np.cumsum(ys)
    last = np.r_[ms[1:] != ms[:-1], True]  # the last index of each distinct value
    n_rest, n_sign = rest_le[-1], sign_le[-1]
    bacc = 0.5 * (rest_le / n_rest + (n_sign - sign_le) / n_sign)
    bacc = np.where(last, bacc, -1.0)
    k = int(np.argmax(bacc))
    return float(ms[k]), float(bacc[k])


def motion_segments(
    motion: F64, threshold: float, *, rest_frames: int = 8, min_frames: int = 6,
    max_frames: int = 256,
) -> list[tuple[int, int, int]]:  # fmt: skip
    """The segment-mode rule on per-frame motion.

    Returns:
        (first frame, end frame exclusive, closing frame) of every segment of at least
        ``min_frames`` frames; a segment still open at the end closes on the last frame.
    """
    out: list[tuple[int, int, int]] = []
    start: int | None = None
    quiet = 0
    n = len(motion)
    for i in range(n):
        moving = bool(motion[i] > threshold)
        if start is None:
            if moving:
                start, quiet = i, 0
            continue
        quiet = 0 if moving else quiet + 1
        length = i - start + 1
        if quiet >= rest_frames:
            if length - quiet >= min_frames:
                out.append((start, i + 1 - quiet, i))
            start = None
        elif length >= max_frames:
            out.append((start, i + 1, i))
            start = None
    if start is not None and n - quiet - start >= min_frames:
        out.append((start, n - quiet, n - 1))
    return out


def trajectory_decide(
    labels: Sequence[str],
    wl: WindowLogits,
    probs: F64,
    *,
    on: float,
    off: float,
    min_windows: int = 2,
    split_on_label: bool = True,
) -> list[EmittedEvent]:
    """Boundaries from the score trajectory (see the module docs).

    Args:
        labels: The model's labels.
        wl: The classifications.
        probs: (n, K) per-window probabilities (calibrated or not).
        on: Score that opens a run, and the peak an emitted run must reach.
        off: Score below which an open run closes (``off <= on``).
        min_windows: Windows a run needs.
        split_on_label: Also close a run when a window's top-1 label differs from the
            run's leading label with a score >= ``on`` (two signs back to back).

    Returns:
        One event per accepted run, emitted when the run closes.
    """
    out: list[EmittedEvent] = []
    top = probs.max(axis=1) if len(probs) else np.zeros(0)
    run: list[int] = []

    def close(ts: float) -> None:
        if len(run) >= min_windows:
            total = probs[run].sum(axis=0)
            lab = int(total.argmax())
            peak = float(probs[run, lab].max())
            if peak >= on:
                out.append(EmittedEvent(labels[lab], ts, peak))
        run.clear()

    for j in range(len(wl.frame)):
        ts = float(wl.time[j])
        switch = (
            split_on_label
            and top[j] >= on
            and bool(run)
            and int(probs[j].argmax()) != int(probs[run].sum(axis=0).argmax())
        )
        if run and (wl.reset[j] or top[j] < off or switch):
            close(ts)
        if (run or top[j] >= on) and top[j] >= off:
            run.append(j)
    if run:
        close(float(wl.time[-1]))
    return out
