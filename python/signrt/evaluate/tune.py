"""Stream settings from data: the ``signrt tune-stream`` search.

Validation clips are joined into continuous streams (:mod:`.streams`) with every rest kind
(hands out of view, resting low in view, idle movements), plus the validation unknown
signs and a rest-only stream; each candidate setting is pushed through a real
:class:`~signrt.stream.Stream` and scored with the harness's matching
(:func:`~signrt.evaluate.matching.score_streams`). The engine's answers are cached by the
exact features of the window or segment, so a grid costs one engine call per distinct
input; the decisions are the Stream's own.

The chosen setting of a mode is the best F1 among those that keep out-of-vocabulary
events at or below ``oov_max`` per unknown sign and false events at or below ``fpm_max``
per minute of rest; when none does, the best F1 penalised by the excess.

The score kind is searched too (``TuneConfig.scores``): thresholds on calibrated
probabilities (``TuneConfig.thresholds``) and on energies (``T * logsumexp(logits / T)``;
the candidates are quantiles of the energies of the mode's validation classifications,
whose top-1 is not the background class, so they are on the model's own scale). A tie goes
to ``probability``. The chosen ``score`` is stored with the mode's options; the provenance
keeps the best setting of each kind. The segment
motion threshold is the one that best separates signing from rest frames
(:func:`~signrt.evaluate.offline.motion_threshold`, shoulder widths), and two neighbours.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import DataError, OptionError, StreamOptionError
from ..results import BACKGROUND_LABEL, TopK
from ..spec import FeatureSpec
from ..stream import SCORE_KINDS, Stream
from .matching import StreamScore, score_streams
from .offline import hand_motion, motion_threshold
from .stream_eval import ClipSetOnDisk, run_stream
from .streams import REST_KINDS, JoinedStream, StreamConfig, build_idle_stream, build_streams

__all__ = ["TuneConfig", "tune_stream"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]


@dataclass
class TuneConfig:
    """What :func:`tune_stream` searches.

    Attributes:
        fps: Frame rate of the clips.
        rest: Seconds of rest between signs in the validation streams.
        rest_kinds: Rest kinds pooled in the validation streams.
        idle_seconds: Length of the rest-only stream per rest kind.
        tolerance: Seconds after a sign's end within which its event counts.
        seed: Seed of the stream building.
        thresholds: Candidate score thresholds (both modes), on the recognizer's calibrated
            probabilities. Up to 0.999: a well-trained model gives unknown signs scores
            above 0.7 (include-dev cnn1d: segment mode raised 0.17 unknown-sign events per
            sign at 0.7), and a temperature below 1 (an under-confident model, e.g. trained
            with label smoothing; include-dev cnn1d: T = 0.32) moves every probability
            towards 1.
        strides: Window mode: candidate strides.
        confirms: Window mode: candidate confirmation counts.
        rest_seconds: Segment mode: candidate rest lengths (seconds; frames = round(s x fps)).
        motion_factors: Segment mode: multiples of the data-derived motion threshold tried.
        oov_max: Most out-of-vocabulary events per unknown sign a chosen setting may raise.
        fpm_max: Most false events per minute of rest a chosen setting may raise.
        scores: Score kinds searched (``probability``, ``energy``).
        energy_quantiles: Energy thresholds tried per mode: this many quantiles, 5 % to
            95 %, of the mode's validation energies.
    """

    fps: float = 25.0
    rest: float = 0.6
    rest_kinds: tuple[str, ...] = REST_KINDS
    idle_seconds: float = 60.0
    tolerance: float = 1.0
    seed: int = 0
    thresholds: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995,
                                     0.999)
    strides: tuple[int, ...] = (2, 4)
    confirms: tuple[int, ...] = (2, 3, 4, 6)
    rest_seconds: tuple[float, ...] = (0.32, 0.48, 0.64)
    motion_factors: tuple[float, ...] = (0.7, 1.0, 1.4)
    oov_max: float = 0.1
    fpm_max: float = 0.2
    scores: tuple[str, ...] = ("probability", "energy")
    energy_quantiles: int = 12

    def __post_init__(self) -> None:
        grids = {"thresholds": self.thresholds, "strides": self.strides,
                 "confirms": self.confirms, "rest_seconds": self.rest_seconds,
                 "motion_factors": self.motion_factors, "rest_kinds": self.rest_kinds}
        empty = [k for k, v in grids.items() if not v]
        if empty:
            raise StreamOptionError(f"tune-stream: {', '.join(empty)} must not be empty")
        if self.fps <= 0 or self.rest < 0 or self.idle_seconds < 0:
            raise StreamOptionError("tune-stream: fps must be > 0, rest and idle_seconds >= 0")
        bad = [k for k in self.scores if k not in SCORE_KINDS]
        if bad or not self.scores:
            raise StreamOptionError(f"tune-stream: scores must be a non-empty subset of "
                                    f"{', '.join(SCORE_KINDS)}, got {self.scores}")  # fmt: skip
        if self.energy_quantiles < 1:
            raise StreamOptionError(
                f"tune-stream: energy_quantiles must be >= 1, got {self.energy_quantiles}")


class _Cached:
    """A classifier that answers a repeated window or segment from memory."""

    def __init__(self, rec: Any) -> None:
        self._rec = rec
        self.top_k: int = rec.top_k
        self.labels: tuple[str, ...] = tuple(rec.labels)
        self._memo: dict[bytes, tuple[list[TopK], npt.NDArray[np.float64]]] = {}
        self.calls = 0
        #: Energy of every distinct input classified since :meth:`forget` whose top-1 is
        #: not the background class.
        self.seen: dict[bytes, float] = {}

    def forget(self) -> None:
        """Start a new record of the energies seen (the cache stays)."""
        self.seen = {}

    @property
    def spec(self) -> FeatureSpec:
        s: FeatureSpec = self._rec.spec
        return s

    def preprocess(self, clip: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        out: tuple[FloatArray, FloatArray] = self._rec.preprocess(clip)
        return out

    def classify_features_energy(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> tuple[list[TopK], npt.NDArray[np.float64]]:
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(features).tobytes())
        h.update(np.ascontiguousarray(mask).tobytes())
        h.update(str(top_k).encode())
        key = h.digest()
        hit = self._memo.get(key)
        if hit is None:
            self.calls += 1
            rows, energy = self._rec.classify_features_energy(features, mask, top_k=top_k)
            hit = (list(rows), np.asarray(energy, dtype=np.float64))
            self._memo[key] = hit
        rows, energy = hit
        if len(rows) == 1 and rows[0] and rows[0][0][0] != BACKGROUND_LABEL:
            self.seen[key] = float(energy[0])
        return hit

    def classify_features(
        self, features: FloatArray, mask: FloatArray, *, top_k: int | None = None
    ) -> list[TopK]:
        return self.classify_features_energy(features, mask, top_k=top_k)[0]

    def stream(self, mode: str = "window", **options: Any) -> Stream:
        # the tuned setting is explicit: the model's stored defaults play no part
        return Stream(self, mode, **options)  # type: ignore[arg-type]


def _objective(sc: StreamScore, oov_max: float, fpm_max: float) -> tuple[int, float]:
    oov = sc.oov_per_sign or 0.0
    fpm = sc.false_per_minute or 0.0
    ok = oov <= oov_max and fpm <= fpm_max
    pen = sc.f1 - 0.5 * max(0.0, oov - oov_max) - 0.1 * max(0.0, fpm - fpm_max)
    return (1 if ok else 0, sc.f1 if ok else pen)


def _summary(sc: StreamScore) -> dict[str, Any]:
    d = sc.to_dict()
    keys = ("precision", "recall", "f1", "delay_p50_s", "delay_p95_s",
            "false_events_per_minute", "oov_events_per_sign")  # fmt: skip
    return {k: d.get(k) for k in keys}


def _streams(data: ClipSetOnDisk, unknown: ClipSetOnDisk | None, cfg: TuneConfig
             ) -> list[JoinedStream]:  # fmt: skip
    out: list[JoinedStream] = []
    for kind in cfg.rest_kinds:
        sc = StreamConfig(rest=cfg.rest, rest_kind=kind, fps=cfg.fps,  # type: ignore[arg-type]
                          seed=cfg.seed)  # fmt: skip
        out += build_streams(data.clips, data.labels, sc, groups=data.groups, name=f"{kind}-k")
        extra: list[FloatArray] = []
        if unknown is not None and len(unknown):
            out += build_streams(unknown.clips, unknown.labels, sc, known=[False] * len(unknown),
                                 groups=unknown.groups, name=f"{kind}-u")  # fmt: skip
            extra = list(unknown.clips)
        if cfg.idle_seconds > 0:
            out.append(build_idle_stream(list(data.clips) + extra, sc, cfg.idle_seconds,
                                         name=f"{kind}-idle"))  # fmt: skip
    return out


def _energy_thresholds(rec: _Cached, n: int) -> list[float]:
    """``n`` quantiles (5 % to 95 %) of the energies ``rec`` saw, rounded, distinct."""
    if not rec.seen:
        return []
    e = np.fromiter(rec.seen.values(), dtype=np.float64)
    q = np.quantile(e, np.linspace(0.05, 0.95, n)) if n > 1 else np.quantile(e, [0.5])
    return sorted({round(float(x), 4) for x in q})


def _search_scores(
    rec: _Cached, streams: Sequence[JoinedStream], mode: str, grid: list[dict[str, Any]],
    cfg: TuneConfig,
) -> dict[str, Any]:  # fmt: skip
    """:func:`_search` over ``grid`` per score kind; the best of all (a tie: probability).

    ``grid`` holds the options without ``threshold``; probability thresholds come from
    ``cfg.thresholds``, energy thresholds from the energies of the probability pass (which
    classifies every input the energy pass will see: classifications do not depend on the
    threshold).
    """
    rec.forget()
    prob = [{**g, "score": "probability", "threshold": t}
            for g in grid for t in cfg.thresholds]  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    res = _search(rec, streams, mode, prob, cfg)
    if "probability" in cfg.scores:
        found["probability"] = res
    if "energy" in cfg.scores:
        thr = _energy_thresholds(rec, cfg.energy_quantiles)
        if thr:
            en = [{**g, "score": "energy", "threshold": t} for g in grid for t in thr]
            found["energy"] = _search(rec, streams, mode, en, cfg)
            found["energy"]["thresholds"] = thr
        else:
            log.warning("%s: no classification to take energy thresholds from", mode)
    if not found:  # energy alone and nothing classified: the probability result stands
        found["probability"] = res
    kind = max(found, key=lambda k: (found[k]["objective"], k == "probability"))
    out = dict(found[kind])
    out["score"] = kind
    out["by_score"] = {k: {"options": v["options"], "meets_targets": v["meets_targets"],
                           "validation": v["validation"], "grid_size": v["grid_size"],
                           **({"thresholds": v["thresholds"]} if "thresholds" in v else {})}
                       for k, v in found.items()}  # fmt: skip
    out.pop("objective")
    out.pop("thresholds", None)
    log.info("%s: chose score %s, %s (validation F1 %.3f; %s)", mode, kind, out["options"],
             out["validation"]["f1"],
             ", ".join(f"{k} best F1 {v['validation']['f1']:.3f}" for k, v in found.items()))
    return out


def _search(
    rec: _Cached, streams: Sequence[JoinedStream], mode: str, grid: list[dict[str, Any]],
    cfg: TuneConfig,
) -> dict[str, Any]:  # fmt: skip
    best: tuple[tuple[int, float], dict[str, Any], StreamScore] | None = None
    for opts in grid:
        events = [run_stream(rec, st, mode, opts)[0] for st in streams]
        sc, _ = score_streams(
            ((st.signs, ev, float(st.timestamps[0]), float(st.timestamps[-1]))
             for st, ev in zip(streams, events, strict=True)),
            cfg.tolerance,
        )  # fmt: skip
        obj = _objective(sc, cfg.oov_max, cfg.fpm_max)
        log.debug("%s %s: F1 %.3f", mode, opts, sc.f1)
        if best is None or obj > best[0]:
            best = (obj, opts, sc)
    assert best is not None
    log.info("%s: best %s (validation F1 %.3f)", mode, best[1], best[2].f1)
    return {"options": dict(best[1]), "meets_targets": bool(best[0][0]),
            "validation": _summary(best[2]), "grid_size": len(grid),
            "objective": best[0]}  # fmt: skip


def tune_stream(
    rec: Any,
    data: ClipSetOnDisk,
    *,
    unknown: ClipSetOnDisk | None = None,
    config: TuneConfig | None = None,
    modes: Sequence[str] = ("window", "segment"),
) -> dict[str, Any]:
    """Pick Stream settings on validation streams.

    Args:
        rec: A :class:`signrt.Recognizer`.
        data: Validation clips of signs the model knows (others are ignored with a warning).
        unknown: Validation clips of signs the model does not know, or None.
        config: The search (default :class:`TuneConfig`).
        modes: Modes to tune.

    Returns:
        The ``signrt.stream`` object: ``{"window": options, "segment": options, "tuning":
        provenance and validation figures}``.

    Raises:
        DataError: If ``data`` holds no clip of a sign the model knows.
        ValueError: If a mode is unknown.
    """
    cfg = config or TuneConfig()
    bad = [m for m in modes if m not in ("window", "segment")]
    if bad or not modes:
        raise OptionError(f"modes must be a non-empty subset of window, segment, got {modes}")
    vocab = set(rec.labels)
    keep = [lab in vocab for lab in data.labels]
    if not any(keep):
        raise DataError(f"{data.root}: none of its signs is among the model's labels")
    if not all(keep):
        log.warning("%d clip(s) of %s are not of the model's signs; left out",
                    keep.count(False), data.root)  # fmt: skip
    known = data.subset(keep)
    t0 = time.perf_counter()
    streams = _streams(known, unknown, cfg)
    cached = _Cached(rec)
    out: dict[str, Any] = {}
    tuning: dict[str, Any] = {
        "data": data.root,
        "unknown": unknown.root if unknown is not None else None,
        "clips": len(known),
        "unknown_clips": len(unknown) if unknown is not None else 0,
        # probabilities and energies are at this temperature (the model's calibration)
        "temperature": float(getattr(rec, "temperature", 1.0)),
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
    }
    if "window" in modes:
        grid: list[dict[str, Any]] = [
            {"stride": s, "confirm": c, "require_hand": True}
            for s, c in itertools.product(cfg.strides, cfg.confirms)
        ]
        res = _search_scores(cached, streams, "window", grid, cfg)
        out["window"] = res.pop("options")
        tuning["window"] = res
    if "segment" in modes:
        motion = np.concatenate([hand_motion(s.frames, normalise=True) for s in streams])
        signing = np.concatenate([s.signing for s in streams])
        base, bacc = motion_threshold(motion, signing)
        tuning["motion_threshold_from_frames"] = {"threshold": base, "balanced_accuracy": bacc}
        rests = sorted({max(1, round(r * cfg.fps)) for r in cfg.rest_seconds})
        grid = [
            {"motion_unit": "shoulder", "motion_threshold": round(base * f, 5),
             "rest_frames": r}
            for f, r in itertools.product(cfg.motion_factors, rests)
        ]  # fmt: skip
        res = _search_scores(cached, streams, "segment", grid, cfg)
        out["segment"] = res.pop("options")
        tuning["segment"] = res
    tuning["engine_calls"] = cached.calls
    tuning["wall_s"] = round(time.perf_counter() - t0, 1)
    out["tuning"] = tuning
    return out
