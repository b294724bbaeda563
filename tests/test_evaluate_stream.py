"""signrt.evaluate: joined streams, event matching, calibration and ``signrt eval-stream``.

Fast tests on synthetic clips and the bundled demo model; the real-data tests read the
INCLUDE development clips (Indian Sign Language, AI4Bharat) from ../shared/data/include-dev
and skip when they are absent.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import signrt
from helpers_models import write_pooling_model
from signrt import layouts
from signrt.cli import main
from signrt.errors import DataError, OptionError, ShapeError
from signrt.evaluate.calibrate import (
    expected_calibration_error,
    fit_temperature,
    nll,
    scores,
)
from signrt.evaluate.matching import EmittedEvent, match_events, score_streams
from signrt.evaluate.stream_eval import EvalConfig, evaluate_streams, load_clip_set
from signrt.evaluate.streams import (
    StreamConfig,
    TrueSign,
    build_idle_stream,
    build_streams,
    rest_frames,
)
from signrt.synthetic import SyntheticConfig, SyntheticSigner

ROOT = Path(__file__).resolve().parents[1]
LH = slice(layouts.LEFT_HAND.start, layouts.LEFT_HAND.stop)
RH = slice(layouts.RIGHT_HAND.start, layouts.RIGHT_HAND.stop)
POSE = slice(layouts.POSE.start, layouts.POSE.stop)


def _include_dev() -> Path:
    for cand in (
        Path(os.environ.get("SIGNRT_INCLUDE_DEV", "/nonexistent")),
        ROOT.parent / "shared" / "data" / "include-dev",
        ROOT.parents[1] / "shared" / "data" / "include-dev",
    ):
        if (cand / "manifest.csv").is_file():
            return cand
    pytest.skip("the INCLUDE development clips (../shared/data/include-dev) are not available")


# ------------------------------------------------------------------------------- matching
@st.composite
def _signs(draw: st.DrawFn) -> list[TrueSign]:
    n = draw(st.integers(1, 8))
    t, out = 0.5, []
    for i in range(n):
        dur = draw(st.floats(0.5, 3.0))
        gap = draw(st.floats(0.0, 2.0))
        out.append(TrueSign(f"s{i}", t, t + dur))
        t += dur + gap
    return out


@settings(max_examples=60, deadline=None)
@given(_signs(), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_perfect_events_give_f1_one(signs: list[TrueSign], frac: float, tol: float) -> None:
    # one event per sign, right label, anywhere from the sign's start to end + tolerance
    events = [EmittedEvent(s.label, s.start + frac * (s.end + tol - s.start)) for s in signs]
    score, (res,) = score_streams([(signs, events, 0.0, signs[-1].end + 2.0)], tol)
    assert score.f1 == pytest.approx(1.0)
    assert res.kind == ["match"] * len(signs)
    assert score.rest_events == score.wrong == score.oov_events == 0


@settings(max_examples=60, deadline=None)
@given(_signs(), st.floats(0.0, 1.0), st.floats(0.01, 2.0))
def test_events_shifted_beyond_tolerance_are_not_matched(
    signs: list[TrueSign], tol: float, extra: float
) -> None:
    on_time = [EmittedEvent(s.label, s.end) for s in signs]
    late = [EmittedEvent(s.label, s.end + tol + extra) for s in signs]
    good, _ = score_streams([(signs, on_time, 0.0, 100.0)], tol)
    bad, (res,) = score_streams([(signs, late, 0.0, 100.0)], tol)
    assert good.recall == 1.0
    assert bad.recall == 0.0 < good.recall  # labels are distinct: nothing else can match
    assert bad.precision == 0.0
    assert set(res.kind) <= {"wrong", "rest"}
    assert good.delays == pytest.approx([0.0] * len(signs))


@settings(max_examples=60, deadline=None)
@given(
    _signs(),
    st.lists(st.tuples(st.integers(0, 9), st.floats(0.0, 30.0)), max_size=20),
    st.floats(0.0, 1.5),
)
def test_match_counts_are_consistent(
    signs: list[TrueSign], raw: list[tuple[int, float]], tol: float
) -> None:
    events = [EmittedEvent(f"s{k}", t) for k, t in raw]
    score, (res,) = score_streams([(signs, events, 0.0, 40.0)], tol)
    assert score.matched == len(res.matched) <= min(len(signs), len(events))
    assert len({j for _, j in res.matched}) == len(res.matched)  # a sign matches once
    assert 0.0 <= score.precision <= 1.0 and 0.0 <= score.recall <= 1.0
    assert score.matched + score.wrong + score.rest_events == len(events)
    for (i, j), d in zip(res.matched, res.delays, strict=True):
        s, e = signs[j], events[i]
        assert s.label == e.label and s.start <= e.emit <= s.end + tol
        assert d == pytest.approx(e.emit - s.end)
    # adding one more on-time event for an unmatched sign never lowers recall
    free = [j for j in range(len(signs)) if j not in {jj for _, jj in res.matched}]
    if free:
        extra = [*events, EmittedEvent(signs[free[0]].label, signs[free[0]].end)]
        more, _ = score_streams([(signs, extra, 0.0, 40.0)], tol)
        assert more.recall >= score.recall


def test_attribution_of_unmatched_events() -> None:
    signs = [TrueSign("a", 1.0, 2.0), TrueSign("x", 4.0, 5.0, known=False), TrueSign("b", 8, 9)]
    events = [
        EmittedEvent("a", 2.5),  # match (0.5 s late)
        EmittedEvent("a", 2.6),  # duplicate -> wrong
        EmittedEvent("b", 4.5),  # during the unknown sign -> oov
        EmittedEvent("b", 7.0),  # in rest
        EmittedEvent("c", 8.5),  # wrong label during b
    ]
    score, (res,) = score_streams([(signs, events, 0.0, 12.0)], tolerance=1.0)
    assert res.kind == ["match", "wrong", "oov", "rest", "wrong"]
    assert (score.signs, score.oov_signs, score.oov_events, score.oov_signs_with_event) == (
        2, 1, 1, 1,
    )  # fmt: skip
    # windows [1, 3], [4, 6], [8, 10] cover 6 of the 12 seconds
    assert score.non_signing_s == pytest.approx(6.0)
    assert score.false_per_minute == pytest.approx(1 / 0.1)
    assert score.delays == [pytest.approx(0.5)]
    with pytest.raises(OptionError, match="tolerance"):
        match_events(signs, events, -1.0)


# ---------------------------------------------------------------------------- calibration
def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 2.0, size=(4000, 6))  # calibrated logits
    p = np.exp(base - base.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(6, p=row) for row in p])
    t_true = 2.5
    over = base * t_true  # an over-confident model: logits scaled up by T
    t = fit_temperature(over, labels)
    assert t == pytest.approx(t_true, rel=0.08)
    assert nll(over, labels, t) <= min(nll(over, labels, x) for x in (1.0, t * 0.8, t * 1.25))
    assert expected_calibration_error(over, labels, t) < expected_calibration_error(over, labels)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(3, 40), st.integers(0, 2**31 - 1))
def test_fit_temperature_is_a_minimum(k: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, k))
    labels = rng.integers(0, k, size=n)
    t = fit_temperature(logits, labels)
    assert 0.05 <= t <= 20.0
    for x in (0.05, 0.3, 1.0, 3.0, 20.0):
        assert nll(logits, labels, t) <= nll(logits, labels, x) + 1e-6


def test_scores_and_bad_input() -> None:
    z = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    s = scores(z, temperature=2.0)
    p0 = np.exp(2.0) / (np.exp(2.0) + 2)
    assert s["top"].tolist() == [0.0, 0.0]
    assert s["softmax"] == pytest.approx([p0, 1 / 3])
    assert s["margin"] == pytest.approx([p0 - (1 - p0) / 2, 0.0])
    assert s["calibrated"] == pytest.approx([np.exp(1) / (np.exp(1) + 2), 1 / 3])
    assert s["energy"] == pytest.approx(2.0 * np.log(np.exp(z / 2.0).sum(1)))
    with pytest.raises(DataError, match="finite"):
        scores([[np.nan, 1.0]])
    with pytest.raises(ShapeError, match="class indices"):
        fit_temperature(z, [0, 3])


# -------------------------------------------------------------------------------- streams
def _synthetic(n_classes: int = 4, signers: int = 2, reps: int = 1) -> tuple[list, list]:
    cfg = SyntheticConfig(num_classes=20, num_signers=signers, clips_per_class=reps, seed=0)
    signer = SyntheticSigner(cfg)
    clips, labels = [], []
    for k in range(n_classes):
        for s in range(signers):
            for r in range(reps):
                clips.append(signer.clip(label=k, signer=s, rep=r))
                labels.append(cfg.label_names[k])
    return clips, labels


@pytest.mark.parametrize("kind", ["out_of_view", "low_in_view", "idle"])
def test_streams_carry_the_clips_and_synthesise_rest(kind: str) -> None:
    clips, labels = _synthetic()
    cfg = StreamConfig(rest=0.8, rest_kind=kind, signs_per_stream=3, fps=25.0, seed=1)
    streams = build_streams(clips, labels, cfg)
    assert [len(s.signs) for s in streams] == [3, 3, 2]
    assert sorted(s.clip for st_ in streams for s in st_.signs) == list(range(len(clips)))
    for st_ in streams:
        assert st_.frames.shape[1:] == (543, 3) and st_.frames.dtype == np.float32
        assert st_.timestamps == pytest.approx(np.arange(len(st_.frames)) / 25.0)
        for s in st_.signs:
            a, b = round(s.start * 25), round(s.end * 25)
            np.testing.assert_array_equal(st_.frames[a : b + 1], clips[s.clip])
            assert st_.signing[a : b + 1].all()
        rest = st_.frames[~st_.signing]
        assert (~st_.signing).sum() == round(1.0 * 25) + round(2.0 * 25) + round(0.8 * 25) * (
            len(st_.signs) - 1
        )
        assert np.isfinite(rest[:, POSE, :2]).all()  # the body stays in view
        if kind == "out_of_view":
            assert np.isnan(rest[:, LH]).all() and np.isnan(rest[:, RH]).all()
        else:
            # a hand seen in the clip rests in view (one-handed signs never show the other)
            seen = np.isfinite(rest[:, [LH.start, RH.start], :2]).all(-1).any(-1)
            assert seen.mean() > 0.9


def test_rest_positions_come_from_the_clip() -> None:
    clips, _ = _synthetic(1, 1)
    clip = clips[0]
    rng = np.random.default_rng(0)
    low = rest_frames(clip, None, 50, "low_in_view", rng, noise=0.0, transition=0.2)
    wy = clip[:, RH.start, 1]
    hold = low[10:]  # after the 5-frame transition the hand holds its lowest clip position
    assert np.nanmax(hold[:, RH.start, 1]) == pytest.approx(np.nanmax(wy), abs=1e-5)
    assert np.ptp(hold[:, RH, :2], axis=0).max() < 1e-6
    idle = rest_frames(clip, None, 200, "idle", rng, noise=0.0, idle_amplitude=0.02)
    move = np.ptp(idle[10:, RH.start, :2], axis=0)
    assert 0.002 < move.max() <= 2 * 0.02 + 1e-6  # moving, but only a little
    with pytest.raises(OptionError, match="before or the clip after"):
        rest_frames(None, None, 3, "idle", rng)
    with pytest.raises(OptionError, match="rest_kind"):
        StreamConfig(rest_kind="asleep")  # type: ignore[arg-type]


def test_idle_stream_has_no_signs_and_no_jumps() -> None:
    clips, _ = _synthetic(3, 2)
    cfg = StreamConfig(rest_kind="idle", noise=0.0)
    idle = build_idle_stream(clips, cfg, seconds=12.0, hold=3.0)
    assert idle.frames.shape == (300, 543, 3) and not idle.signs and not idle.signing.any()
    step = np.abs(np.diff(idle.frames[:, POSE, :2], axis=0))
    assert np.nanmax(step) < 0.05  # the person shifts between rest poses, never jumps


# ----------------------------------------------------------------------------- end to end
def _write_folder(root: Path, clips: list, labels: list, rename: str | None = None) -> Path:
    for i, (c, lab) in enumerate(zip(clips, labels, strict=True)):
        d = root / (rename or lab)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / f"{i:03d}.npy", c)
    return root


def test_eval_stream_on_the_demo_model(tmp_path: Path) -> None:
    rec = signrt.load()
    clips, labels = _synthetic(4, 2)
    data = load_clip_set(_write_folder(tmp_path / "d", clips, labels))
    cfg = EvalConfig(streams=StreamConfig(rest=0.6, signs_per_stream=4), idle_seconds=4.0)
    report = evaluate_streams(rec, data, config=cfg, model_path="demo")
    iso = report.isolated["top1"]
    assert iso >= 0.75  # the demo model knows these synthetic signs
    for mode in ("window", "segment"):
        m = report.modes[mode]
        assert m["signs"] == 8 and 0.0 <= m["f1"] <= 1.0
        assert m["events"] == m["matched"] + m["wrong_or_duplicate_events"] + sum(
            k == "rest" for res in report.runs[mode].matches[:2] for k in res.kind
        )
    assert report.modes["window"]["matched"] >= 2  # real detections, not an empty list


def test_eval_stream_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips, labels = _synthetic(3, 1)
    data = _write_folder(tmp_path / "d", clips, labels)
    unk = _write_folder(tmp_path / "u", clips[:2], labels[:2], rename="notaword")
    out = tmp_path / "res" / "stream"
    rc = main([
        "eval-stream", str(signrt.recognizer.default_model_path()), "--data", str(data),
        "--unknown", str(unk), "--idle-seconds", "3", "--rest-kind", "idle",
        "--window-opt", "threshold=0.5", "--out", str(out), "--timeline",
        str(tmp_path / "t.png"),
    ])  # fmt: skip
    assert rc == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["config"]["options"]["window"] == {"threshold": 0.5}
    assert rep["config"]["streams"]["rest_kind"] == "idle"
    assert rep["data"]["unknown_clips"] == 2 and rep["modes"]["segment"]["oov_signs"] == 2
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| window | threshold=0.5 |" in out.with_suffix(".md").read_text()
    assert "isolated top-1" in capsys.readouterr().out
    assert main(["eval-stream", "nope.onnx", "--data", str(data)]) == 2
    assert main(["eval-stream", str(signrt.recognizer.default_model_path()), "--data",
                 str(data), "--window-opt", "threshold"]) == 2  # fmt: skip


# ------------------------------------------------------------------------------ real data
def test_real_clips_join_into_streams() -> None:
    root = _include_dev()
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[::25]  # 11 clips of several signs and sessions
    clips = [signrt.read_clip(root / r["path"]) for r in rows]
    labels = [r["sign"] for r in rows]
    for kind in ("out_of_view", "low_in_view", "idle"):
        streams = build_streams(
            clips, labels, StreamConfig(rest_kind=kind, signs_per_stream=4),  # type: ignore[arg-type]
            groups=[r["session"] for r in rows],
        )
        assert sum(len(s.signs) for s in streams) == len(clips)
        for st_ in streams:
            rest = st_.frames[~st_.signing]
            assert np.isfinite(rest[:, POSE, :2]).mean() > 0.99  # body in view
            hands = np.isfinite(rest[:, [LH.start, RH.start], :2]).all(-1).any(-1)
            if kind == "out_of_view":
                assert not hands.any()
            else:
                assert hands.mean() > 0.9
                y = rest[:, [LH.start, RH.start], 1]
                assert np.nanmax(y) <= 1.0  # resting hands stay in the image


def test_real_clips_through_both_modes(tmp_path: Path) -> None:
    root = _include_dev()
    signs = sorted(p.name for p in (root / "clips").iterdir())[:3]
    for s in signs:
        (tmp_path / s).mkdir()
        for f in sorted((root / "clips" / s).glob("*.npy"))[:2]:
            (tmp_path / s / f.name).symlink_to(f)
    data = load_clip_set(tmp_path, manifest=root / "manifest.csv")
    assert data.groups is not None and len(data) == 6
    # a real ONNX model on the hands_pose spec (random weights) that knows two of the words:
    # the third word's clips become unknown signs
    model, _, _ = write_pooling_model(
        tmp_path / "m.onnx", signrt.FeatureSpec.preset("hands_pose"), signs[:2]
    )
    rec = signrt.load(model)
    cfg = EvalConfig(streams=StreamConfig(signs_per_stream=4), idle_seconds=5.0)
    report = evaluate_streams(rec, data, config=cfg)
    assert report.data["known_clips"] == 4 and report.data["unknown_clips"] == 2
    for mode in ("window", "segment"):
        m = report.modes[mode]
        assert (m["signs"], m["oov_signs"]) == (4, 2)
        assert m["frames"] == sum(len(s.frames) for s in report.streams)
        assert m["non_signing_s"] >= 5.0
    assert report.modes["window"]["engine_calls"] > 0
    wrong = load_clip_set(tmp_path).subset([lab == signs[2] for lab in data.labels])
    with pytest.raises(signrt.DataError, match="none of its signs"):
        evaluate_streams(rec, wrong, config=cfg)


# ------------------------------------------------------------------------ offline replay
def test_offline_replay_equals_the_stream(tmp_path: Path) -> None:
    from signrt.evaluate.offline import (
        hand_motion,
        motion_segments,
        window_decide,
        window_logits,
    )
    from signrt.evaluate.stream_eval import run_stream

    rec = signrt.load()
    clips, labels = _synthetic(4, 1)
    (stream,) = build_streams(clips, labels, StreamConfig(rest=0.6, signs_per_stream=4))
    real, _ = run_stream(rec, stream, "window", {"threshold": 0.5, "require_hand": False})
    wl = window_logits(rec, stream, stride=4, min_frames=8)
    s = scores(wl.logits)
    replay = window_decide(rec.labels, wl, s["top"], s["softmax"], threshold=0.5)
    assert len(real) >= 2
    assert [(e.label, e.emit) for e in replay] == [(e.label, e.emit) for e in real]
    assert [e.score for e in replay] == pytest.approx([e.score for e in real], abs=1e-5)
    ts = stream.timestamps
    seg, _ = run_stream(rec, stream, "segment", {"threshold": 0.0, "motion_unit": "image",
                                                 "motion_threshold": 0.004, "rest_frames": 8})
    spans = motion_segments(hand_motion(stream.frames), 0.004, rest_frames=8, min_frames=6)
    assert [(e.start, e.end, e.emit) for e in seg] == [
        (ts[a], ts[b - 1], ts[c]) for a, b, c in spans
    ]
    # today's default: motion in shoulder widths (0.020, rest 12)
    seg, _ = run_stream(rec, stream, "segment", {"threshold": 0.0})
    spans = motion_segments(hand_motion(stream.frames, normalise=True), 0.020, rest_frames=12,
                            min_frames=6)  # fmt: skip
    assert len(spans) >= 2
    assert [(e.start, e.end, e.emit) for e in seg] == [
        (ts[a], ts[b - 1], ts[c]) for a, b, c in spans
    ]


def test_motion_threshold_separates_signing_from_rest() -> None:
    from signrt.evaluate.offline import motion_threshold

    rng = np.random.default_rng(0)
    rest = rng.uniform(0.001, 0.01, 400)
    sign = rng.uniform(0.02, 0.2, 300)
    unseen = np.zeros(50)  # no hand: left out
    m = np.concatenate([rest, sign, unseen])
    y = np.concatenate([np.zeros(400, bool), np.ones(300, bool), np.ones(50, bool)])
    t, bacc = motion_threshold(m, y)
    assert rest.max() <= t < sign.min() and bacc == 1.0
    with pytest.raises(DataError, match="both signing and rest"):
        motion_threshold(sign, np.ones(300, bool))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=2, max_size=40))
def test_motion_threshold_is_the_best_split(rows: list[tuple[float, bool]]) -> None:
    from signrt.evaluate.offline import motion_threshold

    m = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    seen = m > 0
    if not (y[seen].any() and (~y[seen]).any()):
        with pytest.raises(DataError):
            motion_threshold(m, y)
        return
    t, bacc = motion_threshold(m, y)

    def bal(th: float) -> float:
        act = m[seen] > th
        return 0.5 * (act[y[seen]].mean() + (~act[~y[seen]]).mean())

    assert bal(t) == pytest.approx(bacc)
    assert all(bacc >= bal(c) - 1e-12 for c in m[seen])
