"""Rejection and boundary methods for live recognition, compared by the numbers, offline.

For one model, validation and test clip folders (in-vocabulary words), and validation and
test folders of out-of-vocabulary words, the clips are joined into streams (the three rest
kinds of :mod:`signrt.evaluate.streams`, plus a rest-only stream per kind), the
classifications a Stream would make are computed once (:mod:`signrt.evaluate.offline`),
and the decision rules are replayed with:

* window mode, four rejection scores: softmax top-1, top-1 minus top-2 probability
  (margin), temperature-scaled top-1 (T fitted on the validation clips' isolated logits)
  and the energy score ``T logsumexp(z / T)``; threshold and ``confirm`` swept; each also
  with a hand required in the newest frame (``_hand_required``: a frame without a visible
  hand is treated like a frame without a signer);
* segment mode: hand-motion activity in image units with today's threshold (0.004), hand
  motion in shoulder widths with a threshold derived from data (tuned on the validation
  streams; and, untuned, the threshold that best separates signing from rest frames), and
  boundaries from the classifier's score trajectory (hysteresis on the calibrated score);
  and, as an upper bound, the true sign boundaries (the isolated clips, decided 8 frames
  after each sign's end, with a calibrated-score threshold).

Every setting is chosen on the validation streams only (best F1 among the settings with
at most 0.1 OOV events per unknown sign and 0.2 false events per minute of rest, else the
best penalised F1) and then reported on the test streams.

Writes ``OUT/NAME.json`` and ``.md`` (NAME: ``stream_rejection`` by default).

Usage:
    python benches/stream_rejection.py --model M.onnx --val-data DIR --val-unknown DIR \
        --test-data DIR --test-unknown DIR [--manifest CSV] [--out benches/results]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import signrt
from signrt.evaluate.calibrate import expected_calibration_error, fit_temperature, nll, scores
from signrt.evaluate.matching import EmittedEvent, StreamScore, score_streams
from signrt.evaluate.offline import (
    WindowLogits,
    classify_clips,
    hand_motion,
    motion_segments,
    motion_threshold,
    trajectory_decide,
    window_decide,
    window_logits,
)
from signrt.evaluate.stream_eval import ClipSetOnDisk, load_clip_set
from signrt.evaluate.streams import (
    REST_KINDS,
    JoinedStream,
    StreamConfig,
    build_idle_stream,
    build_streams,
)

log = logging.getLogger("stream_rejection")
TOL = 1.0
OOV_MAX = 0.1
FPM_MAX = 0.2


# ---------------------------------------------------------------------------- streams
def make_streams(
    known: ClipSetOnDisk, unknown: ClipSetOnDisk, kind: str, seed: int, idle_s: float
) -> list[JoinedStream]:
    cfg = StreamConfig(rest=0.6, rest_kind=kind, seed=seed)  # type: ignore[arg-type]
    out = build_streams(known.clips, known.labels, cfg, groups=known.groups, name=f"{kind}-k")
    out += build_streams(
        unknown.clips, unknown.labels, cfg, known=[False] * len(unknown), groups=unknown.groups,
        name=f"{kind}-u",
    )  # fmt: skip
    out.append(build_idle_stream(known.clips + unknown.clips, cfg, idle_s, name=f"{kind}-idle"))
    return out


LH0, RH0 = 468, 522  # wrist rows of the two hand blocks
BACKGROUND = "__background__"  # the explicit background class (benches/background_data.py)


def _with_hands(wl: WindowLogits, hands: npt.NDArray[np.bool_]) -> WindowLogits:
    """The windows whose newest frame shows a hand; a hand-less frame resets the rule."""
    keep, reset = [], []
    prev = -1
    for j, f in enumerate(wl.frame.tolist()):
        gap = not hands[prev + 1 : f + 1].all() if f > prev else False
        if hands[f]:
            keep.append(j)
            reset.append(bool(wl.reset[j]) or gap)
        prev = f
    k = np.asarray(keep, dtype=np.intp)
    return WindowLogits(wl.frame[k], wl.time[k], wl.logits[k], np.asarray(reset, dtype=bool))


class Prepared:
    """Streams of one split (all rest kinds) with their window logits and motion."""

    def __init__(self, rec: Any, streams: list[JoinedStream]) -> None:
        self.rec = rec
        self.streams = streams
        self.kinds = [s.name.split("-")[0] for s in streams]
        t0 = time.perf_counter()
        self.windows: list[WindowLogits] = [window_logits(rec, s) for s in streams]
        self.motion_px = [hand_motion(s.frames) for s in streams]
        self.hands = [
            np.isfinite(s.frames[:, [LH0, RH0], :2]).all(axis=-1).any(axis=-1) for s in streams
        ]
        self.windows_hands = [_with_hands(w, h) for w, h in zip(self.windows, self.hands,
                                                                strict=True)]  # fmt: skip
        self.motion_sw = [hand_motion(s.frames, normalise=True) for s in streams]
        self._seg_cache: dict[tuple[int, int, int], npt.NDArray[np.float64]] = {}
        self._span_cache: dict[tuple[str, float, int, int], list[tuple[int, int, int]]] = {}
        log.info("prepared %d streams (%d windows) in %.1f s", len(streams),
                 sum(len(w.frame) for w in self.windows), time.perf_counter() - t0)  # fmt: skip

    def spans(self, units: str, motion: float, rest_frames: int, si: int
              ) -> list[tuple[int, int, int]]:  # fmt: skip
        key = (units, motion, rest_frames, si)
        if key not in self._span_cache:
            m = self.motion_px[si] if units == "px" else self.motion_sw[si]
            self._span_cache[key] = motion_segments(
                m, motion, rest_frames=rest_frames, min_frames=6,
                max_frames=4 * self.rec.spec.max_len,
            )  # fmt: skip
        return self._span_cache[key]

    def segment_logits(self, si: int, spans: Sequence[tuple[int, int, int]]
                       ) -> npt.NDArray[np.float64]:  # fmt: skip
        need = [(si, a, b) for a, b, _ in spans if (si, a, b) not in self._seg_cache]
        if need:
            fr = self.streams[si].frames
            lg = classify_clips(self.rec, [fr[a:b] for _, a, b in need])
            for key, row in zip(need, lg, strict=True):
                self._seg_cache[key] = row
        k = len(self.rec.labels)
        return np.stack([self._seg_cache[(si, a, b)] for a, b, _ in spans]) if spans else (
            np.zeros((0, k))
        )

    def score(self, events: list[list[EmittedEvent]], kind: str | None = None) -> StreamScore:
        items = [
            (s.signs, ev, float(s.timestamps[0]), float(s.timestamps[-1]))
            for s, ev, k in zip(self.streams, events, self.kinds, strict=True)
            if kind is None or k == kind
        ]
        return score_streams(items, TOL)[0]


def summary(sc: StreamScore) -> dict[str, Any]:
    d = sc.to_dict()
    keys = ("precision", "recall", "f1", "delay_p50_s", "delay_p95_s",
            "false_events_per_minute", "oov_events_per_sign", "signs", "matched", "events",
            "rest_events", "oov_events", "non_signing_s")  # fmt: skip
    return {k: d[k] for k in keys}


def objective(sc: StreamScore) -> tuple[int, float]:
    oov = sc.oov_per_sign or 0.0
    fpm = sc.false_per_minute or 0.0
    ok = oov <= OOV_MAX and fpm <= FPM_MAX
    pen = sc.f1 - 0.5 * max(0.0, oov - OOV_MAX) - 0.1 * max(0.0, fpm - FPM_MAX)
    return (1 if ok else 0, sc.f1 if ok else pen)


Decider = Callable[[Prepared, int], list[EmittedEvent]]


def run(p: Prepared, decide: Decider) -> list[list[EmittedEvent]]:
    return [decide(p, i) for i in range(len(p.streams))]


def sweep(
    val: Prepared, test: Prepared, grid: list[dict[str, Any]],
    make: Callable[[dict[str, Any]], Decider],
) -> dict[str, Any]:  # fmt: skip
    best: tuple[tuple[int, float], dict[str, Any], StreamScore] | None = None
    best_free: tuple[float, dict[str, Any]] | None = None
    for params in grid:
        sc = val.score(run(val, make(params)))
        obj = objective(sc)
        if best is None or obj > best[0]:
            best = (obj, params, sc)
        if best_free is None or sc.f1 > best_free[0]:
            best_free = (sc.f1, params)
    assert best is not None and best_free is not None
    params = best[1]
    ev = run(test, make(params))
    return {
        "chosen": params,
        "meets_targets_on_val": bool(best[0][0]),
        "val": summary(best[2]),
        "test": summary(test.score(ev)),
        "test_by_rest_kind": {k: summary(test.score(ev, k)) for k in REST_KINDS},
        "val_best_f1_unconstrained": {"f1": best_free[0], "params": best_free[1]},
        "grid_size": len(grid),
    }


# ---------------------------------------------------------------------------- methods
def window_method(score_kind: str, temperature: float, *, hands: bool = False
                  ) -> Callable[[dict[str, Any]], Decider]:  # fmt: skip
    def make(params: dict[str, Any]) -> Decider:
        def decide(p: Prepared, i: int) -> list[EmittedEvent]:
            wl = p.windows_hands[i] if hands else p.windows[i]
            if not len(wl.frame):
                return []
            s = all_scores(wl.logits, temperature)
            # a background top-1 scores -inf: it breaks the run like a low score
            sc = np.where(_not_background(p, s["top"]), s[score_kind], -np.inf)
            return window_decide(
                p.rec.labels, wl, s["top"], sc,
                threshold=params["threshold"], confirm=params["confirm"],
            )  # fmt: skip
        return decide
    return make


def all_scores(logits: npt.NDArray[np.float64], temperature: float
               ) -> dict[str, npt.NDArray[np.float64]]:  # fmt: skip
    """:func:`scores` plus the margin of the calibrated probabilities."""
    s = scores(logits, temperature)
    if len(logits):
        z = logits / temperature
        pc = np.exp(z - z.max(axis=1, keepdims=True))
        pc /= pc.sum(axis=1, keepdims=True)
        srt = np.sort(pc, axis=1)
        s["margin_calibrated"] = srt[:, -1] - (srt[:, -2] if pc.shape[1] > 1 else 0.0)
    else:
        s["margin_calibrated"] = np.zeros(0)
    return s


def _not_background(p: Prepared, top: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    labels = p.rec.labels
    return np.array([labels[int(t)] != BACKGROUND for t in top], dtype=bool)


def segment_method(units: str, temperature: float, score_kind: str = "calibrated"
                   ) -> Callable[[dict[str, Any]], Decider]:  # fmt: skip
    def make(params: dict[str, Any]) -> Decider:
        def decide(p: Prepared, i: int) -> list[EmittedEvent]:
            spans = p.spans(units, params["motion"], params["rest_frames"], i)
            if not spans:
                return []
            lg = p.segment_logits(i, spans)
            s = all_scores(lg, temperature)
            keep = _not_background(p, s["top"])
            ts = p.streams[i].timestamps
            return [
                EmittedEvent(p.rec.labels[int(s["top"][j])], float(ts[c]), float(s[score_kind][j]))
                for j, (_, _, c) in enumerate(spans)
                if s[score_kind][j] >= params["threshold"] and keep[j]
            ]
        return decide
    return make


def trajectory_method(temperature: float) -> Callable[[dict[str, Any]], Decider]:
    def make(params: dict[str, Any]) -> Decider:
        def decide(p: Prepared, i: int) -> list[EmittedEvent]:
            wl = p.windows[i]
            if not len(wl.frame):
                return []
            z = wl.logits / temperature
            pr = np.exp(z - z.max(axis=1, keepdims=True))
            pr /= pr.sum(axis=1, keepdims=True)
            return trajectory_decide(p.rec.labels, wl, pr, on=params["on"], off=params["off"],
                                     min_windows=params["min_windows"])  # fmt: skip
        return decide
    return make


def oracle_method(temperature: float) -> Callable[[dict[str, Any]], Decider]:
    def make(params: dict[str, Any]) -> Decider:
        def decide(p: Prepared, i: int) -> list[EmittedEvent]:
            st = p.streams[i]
            fps = 1.0 / float(st.timestamps[1] - st.timestamps[0])
            n = len(st.frames)
            spans = [(round(s.start * fps), round(s.end * fps) + 1,
                      min(n - 1, round(s.end * fps) + 8)) for s in st.signs]  # fmt: skip
            if not spans:
                return []
            s = scores(p.segment_logits(i, spans), temperature)
            return [
                EmittedEvent(p.rec.labels[int(s["top"][j])], float(st.timestamps[c]),
                             float(s["calibrated"][j]))
                for j, (_, _, c) in enumerate(spans)
                if s["calibrated"][j] >= params["threshold"]
            ]  # fmt: skip
        return decide
    return make


def diagnose_segments(p: Prepared, temperature: float, params: dict[str, Any], kind: str
                      ) -> dict[str, Any]:  # fmt: skip
    """Why in-vocabulary signs are missed in segment mode with these settings.

    Per sign: ``no_segment`` (no segment overlaps the sign), ``merged`` (the overlapping
    segment also overlaps another sign), ``wrong_label`` (the best-overlapping segment's
    top-1 is another sign), ``below_threshold`` (right label, score under the threshold),
    ``found``; plus the mean share of the sign's frames the segment covers and the extra
    frames it holds outside the sign.
    """
    counts = {"no_segment": 0, "merged": 0, "wrong_label": 0, "below_threshold": 0, "found": 0}
    cover, extra = [], []
    for si, st in enumerate(p.streams):
        known = [s for s in st.signs if s.known]
        if not known:
            continue
        fps = 1.0 / float(st.timestamps[1] - st.timestamps[0])
        spans = p.spans("sw", params["motion"], params["rest_frames"], si)
        sc = all_scores(p.segment_logits(si, spans), temperature) if spans else None
        for sign in known:
            a, b = round(sign.start * fps), round(sign.end * fps) + 1
            ov = [(min(b, e) - max(a, s0), j) for j, (s0, e, _) in enumerate(spans)
                  if min(b, e) > max(a, s0)]  # fmt: skip
            if not ov or sc is None:
                counts["no_segment"] += 1
                continue
            _, j = max(ov)
            s0, e, _ = spans[j]
            cover.append((min(b, e) - max(a, s0)) / (b - a))
            extra.append((e - s0) - (min(b, e) - max(a, s0)))
            others = [x for x in st.signs if x is not sign and min(round(x.end * fps) + 1, e)
                      > max(round(x.start * fps), s0)]  # fmt: skip
            if p.rec.labels[int(sc["top"][j])] != sign.label:
                counts["merged" if others else "wrong_label"] += 1
            elif sc[kind][j] < params["threshold"]:
                counts["below_threshold"] += 1
            else:
                counts["found"] += 1
    return {"params": params, "score": kind, "signs": sum(counts.values()), **counts,
            "mean_cover": float(np.mean(cover)) if cover else None,
            "mean_extra_frames": float(np.mean(extra)) if extra else None}


def frame_threshold(p: Prepared) -> float:
    """Shoulder-width motion threshold best separating signing from rest frames."""
    m = np.concatenate(p.motion_sw)
    y = np.concatenate([s.signing for s in p.streams])
    return motion_threshold(m, y)[0]


# ------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    for name in ("val-data", "val-unknown", "test-data", "test-unknown"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--manifest")
    ap.add_argument("--idle-seconds", type=float, default=120.0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--note", default="", help="free text for the report (training recipe)")
    ap.add_argument("--name", default="stream_rejection", help="file stem of the report")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t_start = time.perf_counter()
    rec = signrt.load(args.model, device="cpu")
    sets = {k: load_clip_set(getattr(args, k), manifest=args.manifest)
            for k in ("val_data", "val_unknown", "test_data", "test_unknown")}  # fmt: skip
    labels = list(rec.labels)

    # ---- temperature from the validation clips' isolated logits
    iso: dict[str, Any] = {}
    vz = classify_clips(rec, sets["val_data"].clips)
    vy = np.array([labels.index(s) for s in sets["val_data"].labels])
    # the model's own calibration when it carries one (signrt export --calib-data)
    T = rec.temperature if rec.temperature != 1.0 else fit_temperature(vz, vy)
    t_source = "model metadata" if rec.temperature != 1.0 else "fitted on the validation clips"
    tz = classify_clips(rec, sets["test_data"].clips)
    ty = np.array([labels.index(s) for s in sets["test_data"].labels])
    for name, z, y in (("val", vz, vy), ("test", tz, ty)):
        iso[name] = {
            "clips": len(y),
            "top1": float((z.argmax(1) == y).mean()),
            "nll_T1": nll(z, y), "nll_T": nll(z, y, T),
            "ece_T1": expected_calibration_error(z, y),
            "ece_T": expected_calibration_error(z, y, T),
        }  # fmt: skip
    for name in ("val_unknown", "test_unknown"):
        z = classify_clips(rec, sets[name].clips)
        iso[name] = {
            "clips": len(z),
            "mean_top1_softmax": float(scores(z)["softmax"].mean()),
            "mean_top1_calibrated": float(scores(z, T)["calibrated"].mean()),
        }
    log.info("temperature %.3f; isolated %s", T, json.dumps(iso))

    val = Prepared(rec, [s for k in REST_KINDS for s in make_streams(
        sets["val_data"], sets["val_unknown"], k, 100, args.idle_seconds)])  # fmt: skip
    test = Prepared(rec, [s for k in REST_KINDS for s in make_streams(
        sets["test_data"], sets["test_unknown"], k, 0, args.idle_seconds)])  # fmt: skip

    results: dict[str, Any] = {}
    # ---- the Stream's defaults (replayed; equal to Stream's output by the parity test)
    today_wh = window_method("calibrated", T, hands=True)({"threshold": 0.6, "confirm": 2})
    today_s = segment_method("sw", T, "calibrated")(
        {"motion": 0.020, "rest_frames": 12, "threshold": 0.6}
    )
    for name, dec in (("window_today", today_wh), ("segment_today", today_s)):
        ev = run(test, dec)
        results[name] = {
            "val": summary(val.score(run(val, dec))),
            "test": summary(test.score(ev)),
            "test_by_rest_kind": {k: summary(test.score(ev, k)) for k in REST_KINDS},
        }
        log.info("%s: test F1 %.3f", name, results[name]["test"]["f1"])

    # ---- window-mode rejection scores (a hand required, as the Stream does by default)
    for kind in ("softmax", "calibrated", "margin_calibrated", "energy"):
        if kind == "energy":
            allv = np.concatenate([scores(w.logits, T)["energy"] for w in val.windows_hands
                                   if len(w.frame)])  # fmt: skip
            thr = [float(x) for x in np.quantile(allv, np.linspace(0.05, 0.97, 24))]
        else:
            thr = [round(float(x), 3) for x in np.linspace(0.05, 0.95, 19)]
        grid = [{"threshold": t, "confirm": c}
                for t, c in itertools.product(thr, (1, 2, 3, 4, 6, 8))]  # fmt: skip
        results[f"window_{kind}"] = sweep(val, test, grid, window_method(kind, T, hands=True))
        log.info("window %s: %s", kind, results[f"window_{kind}"]["test"])

    # ---- segment mode: motion in shoulder widths (the Stream's default unit), four scores
    ft = frame_threshold(val)
    rest_fr = [4, 6, 8, 12, 16]
    motions = [round(ft * f, 5) for f in (0.7, 1.0, 1.4)]
    for kind in ("softmax", "calibrated", "margin_calibrated", "energy"):
        if kind == "energy":
            spans = [(si, sp) for si in range(len(val.streams))
                     for sp in [val.spans("sw", ft, 8, si)] if sp]  # fmt: skip
            allv = np.concatenate([scores(val.segment_logits(si, sp), T)["energy"]
                                   for si, sp in spans])  # fmt: skip
            thr = [float(x) for x in np.quantile(allv, np.linspace(0.05, 0.95, 19))]
        else:
            thr = [round(float(x), 3) for x in np.linspace(0.05, 0.95, 19)]
        grid = [{"motion": m, "rest_frames": r, "threshold": t}
                for m, r, t in itertools.product(motions, rest_fr, thr)]  # fmt: skip
        results[f"segment_{kind}"] = sweep(val, test, grid, segment_method("sw", T, kind))
        results[f"segment_{kind}"]["frame_threshold"] = ft
        log.info("segment %s: %s", kind, results[f"segment_{kind}"]["test"])
    # upper bound of segment mode: the true sign boundaries, decided 8 frames after the end
    grid = [{"threshold": t} for t in [round(float(x), 3) for x in np.linspace(0.05, 0.95, 19)]]
    results["segment_oracle_boundaries"] = sweep(val, test, grid, oracle_method(T))
    diagnosis = {
        name: diagnose_segments(test, T, results[name]["chosen"], kind)
        for name, kind in (("segment_calibrated", "calibrated"),
                           ("segment_margin_calibrated", "margin_calibrated"))
    }  # fmt: skip
    diagnosis["segment_calibrated_no_threshold"] = diagnose_segments(
        test, T, {**results["segment_calibrated"]["chosen"], "threshold": 0.0}, "calibrated")
    log.info("diagnosis: %s", json.dumps(diagnosis))

    from signrt import _native

    simd = _native.simd
    report = {
        "kind": "signrt.bench.stream_rejection",
        "model": args.model,
        "model_info": {k: rec.info.get(k) for k in ("architecture", "num_parameters")},
        "labels": labels,
        "data": {k: {"root": v.root, "clips": len(v), "signs": sorted(set(v.labels))}
                 for k, v in sets.items()},
        "note": args.note,
        "temperature": T,
        "temperature_source": t_source,
        "isolated": iso,
        "segment_diagnosis": diagnosis,
        "targets": {"oov_events_per_sign_max": OOV_MAX, "false_events_per_minute_max": FPM_MAX},
        "tolerance_s": TOL,
        "results": results,
        "environment": {"python": platform.python_version(), "machine": platform.machine(),
                        "simd": simd, "numpy": np.__version__},
        "wall_s": time.perf_counter() - t_start,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(report))
    log.info("wrote %s", out / f"{args.name}.md")
    return 0


def _f(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def markdown(r: dict[str, Any]) -> str:
    iso = r["isolated"]
    lines = [
        "# Rejection and boundary methods for live recognition (offline replay)",
        "",
        f"Model `{Path(r['model']).name}` ({r['model_info']['architecture']}, "
        f"{len(r['labels'])} signs). {r['note']}",
        "",
        f"Temperature ({r.get('temperature_source', 'fitted on the validation clips')}, "
        f"fitted on the validation clips): **T = {r['temperature']:.3f}** "
        f"(validation NLL {iso['val']['nll_T1']:.3f} → {iso['val']['nll_T']:.3f}, ECE "
        f"{iso['val']['ece_T1']:.3f} → {iso['val']['ece_T']:.3f}; test NLL "
        f"{iso['test']['nll_T1']:.3f} → {iso['test']['nll_T']:.3f}, ECE "
        f"{iso['test']['ece_T1']:.3f} → {iso['test']['ece_T']:.3f}). Isolated top-1: "
        f"validation {iso['val']['top1']:.3f}, test {iso['test']['top1']:.3f}. Mean top-1 "
        f"probability of unknown words (test): {iso['test_unknown']['mean_top1_softmax']:.3f} "
        f"softmax, {iso['test_unknown']['mean_top1_calibrated']:.3f} calibrated.",
        "",
        "Settings chosen on the validation streams (best F1 with ≤ "
        f"{r['targets']['oov_events_per_sign_max']} OOV events per unknown sign and ≤ "
        f"{r['targets']['false_events_per_minute_max']} false events per minute of rest, "
        "else best penalised F1); figures on the test streams (all three rest kinds pooled, "
        f"0.6 s rest, plus {int(r['results']['window_today']['test']['non_signing_s'])} s "
        "of non-signing time), tolerance "
        f"{r['tolerance_s']} s.",
        "",
        "| method | settings (chosen on val) | meets targets on val | test P | test R | "
        "test F1 | delay p50 / p95 (s) | false / min rest | OOV events / sign |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, res in r["results"].items():
        t = res["test"]
        chosen = res.get("chosen")
        settings = ", ".join(
            f"{k}={_f(v) if isinstance(v, float) else v}" for k, v in chosen.items()
        ) if chosen else "today's defaults"
        meets = {True: "yes", False: "no"}.get(res.get("meets_targets_on_val"), "—")
        lines.append(
            f"| {name} | {settings} | {meets} | {_f(t['precision'])} | {_f(t['recall'])} | "
            f"**{_f(t['f1'])}** | {_f(t['delay_p50_s'], 2)} / {_f(t['delay_p95_s'], 2)} | "
            f"{_f(t['false_events_per_minute'], 2)} | {_f(t['oov_events_per_sign'], 2)} |"
        )
    lines += ["", "Test F1 by rest kind:", "",
              "| method | " + " | ".join(REST_KINDS) + " |",
              "|---|" + "---|" * len(REST_KINDS)]  # fmt: skip
    for name, res in r["results"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{_f(res['test_by_rest_kind'][k]['f1'])}" for k in REST_KINDS) + " |")  # fmt: skip
    diag = r.get("segment_diagnosis") or {}
    if diag:
        lines += ["", "Segment mode, why in-vocabulary test signs are missed (per sign: no "
                  "segment overlaps it; the best-overlapping segment's top-1 is another sign, "
                  "alone or merged with a neighbour; right label below the threshold; found), "
                  "and the share of the sign the segment covers:", "",
                  "| settings | score | signs | no segment | wrong label | merged | below "
                  "threshold | found | mean cover | extra frames |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, d in diag.items():
            settings = ", ".join(f"{k}={v}" for k, v in d["params"].items())
            lines.append(
                f"| {name}: {settings} | {d['score']} | {d['signs']} | {d['no_segment']} | "
                f"{d['wrong_label']} | {d['merged']} | {d['below_threshold']} | {d['found']} | "
                f"{_f(d['mean_cover'], 2)} | {_f(d['mean_extra_frames'], 1)} |"
            )
    lines += ["", f"Instruction set of the preprocessing: {r['environment']['simd']} "
              f"({r['environment']['machine']}). Wall time {r['wall_s']:.0f} s.", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
