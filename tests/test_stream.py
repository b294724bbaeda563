"""Stream: window and segment modes on scripted frame sequences, with exact expected events.

Most tests drive the stream with a scripted engine (each classification returns the next
scripted (label, probability)), so that decisions can be checked exactly; the end-to-end
tests use a real ONNX model that tells where the right hand is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from helpers_models import hand_frame, hand_spec, side_model, write_pooling_model
from signrt.errors import ShapeError, SignrtError, StreamOptionError
from signrt.recognizer import Recognizer, load
from signrt.results import Event
from signrt.runtime.model import load_model_file
from signrt.stream import Stream

LABELS = ("a", "b", "c")
NO_SIGNER = np.full((543, 3), np.nan, dtype=np.float32)


class ScriptedEngine:
    """Returns scripted (label, probability) answers in order and records its inputs."""

    name, device, providers = "scripted", "cpu", ("scripted",)

    def __init__(self, script: Sequence[tuple[str, float]]) -> None:
        self.script = list(script)
        self.inputs: list[tuple[np.ndarray, np.ndarray]] = []

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        label, p = self.script[len(self.inputs)]
        self.inputs.append((features.copy(), mask.copy()))
        probs = np.full(len(LABELS), (1.0 - p) / (len(LABELS) - 1))
        probs[LABELS.index(label)] = p
        return np.log(probs)[None].astype(np.float32)

    @property
    def calls(self) -> int:
        return len(self.inputs)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _, _ = write_pooling_model(tmp_path_factory.mktemp("m") / "m.onnx", hand_spec(16),
                                     list(LABELS))
    return path


def _scripted(model_file: Path, script: Sequence[tuple[str, float]]
              ) -> tuple[Recognizer, ScriptedEngine]:
    engine = ScriptedEngine(script)
    return Recognizer(load_model_file(model_file), engine, top_k=2), engine


def _feed(stream: Stream, frames: Sequence[np.ndarray], fps: float = 10.0
          ) -> list[tuple[int, Event]]:
    out = []
    for i, frame in enumerate(frames):
        for ev in stream.push(frame, timestamp=i / fps):
            out.append((i, ev))
    return out


def _summary(events: list[tuple[int, Event]]) -> list[tuple[int, str, float, float, float, int]]:
    return [(i, e.label, round(e.score, 6), round(e.start, 6), round(e.end, 6), e.frames)
            for i, e in events]


SIGNER = hand_frame(0.5)


# ----------------------------------------------------------------------- window mode
def test_window_jittery_confidence(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .9), ("a", .5), ("a", .9), ("a", .8), ("a", .9)])
    stream = rec.stream("window", stride=2, threshold=0.6, confirm=2, cooldown=1.0,
                        min_frames=1)
    events = _feed(stream, [SIGNER] * 10)
    # classifications at frames 1, 3, 5, 7, 9: 0.9 | 0.5 resets | 0.9, 0.8 -> emit at frame 7
    assert _summary(events) == [(7, "a", 0.85, 0.0, 0.7, 8)]
    assert engine.calls == 5
    ev = events[0][1]
    assert ev.kind == "sign" and ev.topk[0] == ("a", pytest.approx(0.8))
    assert len(ev.topk) == 2
    assert ev.latency.preprocess_ms >= 0 and ev.latency.inference_ms >= 0
    json.dumps(ev.to_dict())
    assert (stream.frames, stream.engine_calls, stream.events) == (10, 5, 1)


def test_window_sign_rest_another_sign(model_file: Path) -> None:
    script = [("a", .9), ("a", .8), ("a", .9), ("a", .9),
              ("b", .9), ("c", .95), ("b", .8), ("b", .75)]
    rec, engine = _scripted(model_file, script)
    stream = rec.stream("window", stride=1, threshold=0.7, confirm=2, cooldown=1.0,
                        min_frames=1)
    frames = [SIGNER] * 4 + [NO_SIGNER] * 20 + [SIGNER] * 4
    events = _feed(stream, frames)
    assert _summary(events) == [
        (1, "a", 0.85, 0.0, 0.1, 2),
        # b at 24, c at 25 breaks the run, b at 26 and 27 confirm; the window then holds the
        # signer frames 24-27 only, the first of which starts the event
        (27, "b", 0.775, 2.4, 2.7, 4),
    ]
    assert engine.calls == 8  # no engine call for the 20 frames without a signer


def test_window_per_label_cooldown(model_file: Path) -> None:
    script = [("a", .9), ("c", .4), ("a", .9), ("b", .9), ("a", .9),
              ("c", .4), ("c", .4), ("c", .4), ("c", .4), ("a", .9), ("c", .4), ("a", .9)]
    rec, _ = _scripted(model_file, script)
    stream = rec.stream("window", stride=1, threshold=0.5, confirm=1, cooldown=1.0,
                        min_frames=1)
    events = _feed(stream, [SIGNER] * 12)
    # a at 0; a at 2, 4 and 9 fall inside a's cooldown; b has its own; a again at 11
    assert [(i, e.label) for i, e in events] == [(0, "a"), (3, "b"), (11, "a")]


def test_window_alternating_labels_never_confirm(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .9), ("b", .9)] * 5)
    stream = rec.stream("window", stride=1, threshold=0.5, confirm=2, min_frames=1)
    assert _feed(stream, [SIGNER] * 10) == []
    assert engine.calls == 10


def test_window_no_signer_costs_no_engine_call_and_resets(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .9)] * 3)
    stream = rec.stream("window", stride=1, threshold=0.5, confirm=2, min_frames=1)
    assert _feed(stream, [NO_SIGNER] * 50) == []
    assert engine.calls == 0
    stream.reset()
    events = _feed(stream, [SIGNER, NO_SIGNER, SIGNER, SIGNER])
    assert [(i, e.label) for i, e in events] == [(3, "a")]  # frame 1 broke the first run
    assert engine.calls == 3


def test_window_stride_and_min_frames(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .3)] * 10)
    stream = rec.stream("window", stride=4, min_frames=6)
    assert _feed(stream, [SIGNER] * 12) == []
    assert engine.calls == 2  # frames 7 and 11; frame 3 had only 4 frames with a signer


def test_window_features_equal_preprocess_of_last_frames(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .1)] * 10)
    stream = rec.stream("window", stride=5, min_frames=1)
    rng = np.random.default_rng(0)
    frames = [hand_frame(float(x), float(y)) for x, y in rng.uniform(0.2, 0.8, (30, 2))]
    frames[7] = NO_SIGNER
    _feed(stream, frames)
    assert engine.calls == 6
    for k, (feats, mask) in enumerate(engine.inputs):
        end = 5 * (k + 1)
        want_f, want_m = rec.preprocess(np.stack(frames[max(0, end - 16): end]))
        np.testing.assert_allclose(feats[0], want_f, atol=1e-5)
        np.testing.assert_array_equal(mask[0], want_m)


def test_window_implicit_timestamps(model_file: Path) -> None:
    rec, _ = _scripted(model_file, [("a", .9)] * 4)
    stream = rec.stream("window", stride=2, confirm=2, min_frames=1, fps=20)
    events = [e for _ in range(4) for e in stream.push(SIGNER)]
    (ev,) = events
    assert ev.start == 0.0 and ev.end == pytest.approx(3 / 20)


def test_window_real_model_end_to_end(tmp_path: Path) -> None:
    rec = load(side_model(tmp_path / "side.onnx"), device="cpu")
    stream = rec.stream("window", stride=2, threshold=0.9, confirm=2, cooldown=0.5)
    frames = [hand_frame(0.8)] * 12 + [NO_SIGNER] * 20 + [hand_frame(0.2)] * 12
    events = _feed(stream, frames)
    assert [e.label for _, e in events] == ["right", "left"]
    assert all(e.score > 0.99 for _, e in events)
    # every 2nd frame once 8 signer frames are in the window: frames 7, 9, 11, 39, 41, 43
    assert stream.engine_calls == 3 + 3


# ---------------------------------------------------------------------- segment mode
def _still(x: float) -> np.ndarray:
    return hand_frame(x)


def test_segment_sign_rest_sign(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .9), ("b", .8)])
    stream = rec.stream("segment", rest_frames=4, min_frames=3, motion_threshold=0.004,
                        threshold=0.5)
    frames = [NO_SIGNER] * 3 + [_still(0.3)] * 3                       # 0-5: idle
    frames += [hand_frame(0.3 + 0.02 * k) for k in range(1, 9)]         # 6-13: moving
    frames += [_still(0.46)] * 6                                        # 14-19: rest
    frames += [hand_frame(0.46 - 0.03 * k) for k in range(1, 7)]        # 20-25: moving
    frames += [NO_SIGNER] * 4                                           # 26-29: hands gone
    frames += [hand_frame(0.5), hand_frame(0.55), hand_frame(0.6)]      # 30-32: too short
    frames += [NO_SIGNER] * 6                                           # 33-38
    events = _feed(stream, frames)
    assert _summary(events) == [
        (17, "a", 0.9, 0.6, 1.3, 8),   # rest for 4 frames (14-17) ends it; trimmed
        (29, "b", 0.8, 2.0, 2.5, 6),   # hands gone for 4 frames ends it
    ]
    assert engine.calls == 2  # the 2-frame segment (31-32) is below min_frames
    assert [int(m.sum()) for _, m in engine.inputs] == [8, 6]
    assert stream.flush() == []


def test_segment_features_are_the_segment_clip(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .9)])
    stream = rec.stream("segment", rest_frames=2, min_frames=1)
    moving = [hand_frame(0.3 + 0.05 * k, 0.4 + 0.01 * k) for k in range(6)]
    _feed(stream, [moving[0], *moving[1:], moving[-1], moving[-1]])
    want_f, want_m = rec.preprocess(np.stack(moving[1:]))
    # bit for bit: the core keeps the segment's float32 frames as they came
    np.testing.assert_array_equal(engine.inputs[0][0][0], want_f)
    np.testing.assert_array_equal(engine.inputs[0][1][0], want_m)


def test_segment_max_frames_and_flush(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .9), ("b", .9), ("c", .9)])
    stream = rec.stream("segment", rest_frames=3, min_frames=2, max_frames=5)
    frames = [hand_frame(0.2)] + [hand_frame(0.2 + 0.01 * k) for k in range(1, 13)]
    events = _feed(stream, frames)
    # motion starts at frame 1; 5-frame segments 1-5 and 6-10, then 11-12 stay open
    assert _summary(events) == [(5, "a", 0.9, 0.1, 0.5, 5), (10, "b", 0.9, 0.6, 1.0, 5)]
    flushed = stream.flush()
    assert [(e.label, e.frames, round(e.start, 6), round(e.end, 6)) for e in flushed] == [
        ("c", 2, 1.1, 1.2)]
    assert engine.calls == 3 and stream.events == 3


def test_segment_below_threshold_is_dropped(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [("a", .45)])
    stream = rec.stream("segment", rest_frames=2, min_frames=2, threshold=0.5)
    frames = [hand_frame(0.2 + 0.02 * k) for k in range(6)] + [NO_SIGNER] * 2
    assert _feed(stream, frames) == []
    assert engine.calls == 1


def test_segment_idle_frames_cost_no_engine_call(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [])
    stream = rec.stream("segment")
    frames = [NO_SIGNER] * 100 + [_still(0.4)] * 100
    frames += [hand_frame(0.4 + 0.001 * (k % 2)) for k in range(50)]  # jitter below threshold
    assert _feed(stream, frames) == []
    assert engine.calls == 0


def test_segment_without_selected_landmarks_is_not_classified(model_file: Path) -> None:
    rec, engine = _scripted(model_file, [])
    stream = rec.stream("segment", rest_frames=2, min_frames=2)
    # only the left hand moves; the model's spec selects the right hand only
    frames = [hand_frame(None, left_x=0.3 + 0.02 * k) for k in range(8)] + [NO_SIGNER] * 2
    assert _feed(stream, frames) == []
    assert engine.calls == 0


def test_segment_real_model_end_to_end(tmp_path: Path) -> None:
    rec = load(side_model(tmp_path / "side.onnx"), device="cpu")
    stream = rec.stream("segment", rest_frames=3, min_frames=3)
    frames = [hand_frame(0.7 + 0.01 * k) for k in range(8)] + [NO_SIGNER] * 5
    frames += [hand_frame(0.3 - 0.01 * k) for k in range(8)] + [_still(0.23)] * 5
    assert [e.label for _, e in _feed(stream, frames)] == ["right", "left"]


# --------------------------------------------------------------------------- options
def test_stream_options_are_checked(model_file: Path) -> None:
    rec, _ = _scripted(model_file, [])
    # Stream option errors are StreamOptionErrors: SignrtErrors that are also ValueErrors.
    assert issubclass(StreamOptionError, SignrtError) and issubclass(StreamOptionError, ValueError)
    with pytest.raises(StreamOptionError, match="mode"):
        rec.stream("sliding")  # type: ignore[arg-type]
    with pytest.raises(StreamOptionError, match="stride"):
        rec.stream(stride=0)
    with pytest.raises(StreamOptionError, match="threshold"):
        rec.stream(threshold=1.5)
    with pytest.raises(StreamOptionError, match="threshold"):
        rec.stream("segment", threshold=-0.1)
    with pytest.raises(StreamOptionError, match="fps"):
        rec.stream(fps=0)
    with pytest.raises(StreamOptionError, match="rest_frames"):
        rec.stream("segment", rest_frames=0)
    with pytest.raises(TypeError):
        rec.stream(bogus=1)
    stream = rec.stream()
    with pytest.raises(ShapeError, match=r"\(543, 3\)"):
        stream.push(np.zeros((75, 3), np.float32))
    assert "Stream(mode='window'" in repr(stream)


@pytest.mark.parametrize("mode", ["window", "segment"])
def test_bad_frames_are_refused_and_change_nothing(model_file: Path, mode: str) -> None:
    rec, engine = _scripted(model_file, [("a", .9)] * 4)
    stream = rec.stream(mode, min_frames=1)  # type: ignore[arg-type]
    stream.push(SIGNER)
    for bad in (np.zeros((75, 3), np.float32), np.zeros((543, 2)), np.zeros((1, 543, 3)),
                np.zeros((543, 3), np.complex64), np.zeros((543, 3), bool), "frame"):
        with pytest.raises(ShapeError, match=r"\(543, 3\)|real-valued"):
            stream.push(bad)
    assert stream.frames == 1 and engine.calls == 0
    # integer frames are real: read as float64
    stream.push(np.zeros((543, 3), np.int16))
    assert stream.frames == 2


def test_option_types_are_checked(model_file: Path) -> None:
    rec, _ = _scripted(model_file, [])
    with pytest.raises(StreamOptionError, match="stride must be an integer"):
        rec.stream(stride="2")  # type: ignore[arg-type]
    with pytest.raises(StreamOptionError, match="max_frames must be an integer"):
        rec.stream("segment", max_frames=2.5)
    with pytest.raises(StreamOptionError, match="threshold must be a number"):
        rec.stream(threshold="high")  # type: ignore[arg-type]
    with pytest.raises(StreamOptionError, match="cooldown must be >= 0"):
        rec.stream(cooldown=float("nan"))
    assert rec.stream(stride=2.0).decision.stride == 2  # type: ignore[union-attr]
    assert rec.stream(stride=10**30).decision.stride == 2**63 - 1  # type: ignore[union-attr]


@pytest.mark.parametrize(("mode", "option", "value"), [
    ("segment", "stride", 2), ("segment", "confirm", 3), ("segment", "cooldown", 0.5),
    ("window", "rest_frames", 4), ("window", "motion_threshold", 0.01),
    ("window", "max_frames", 40),
])  # fmt: skip
def test_an_option_of_the_other_mode_is_rejected(model_file: Path, mode: str, option: str,
                                                 value: float) -> None:
    rec, _ = _scripted(model_file, [])
    other = "window" if mode == "segment" else "segment"
    with pytest.raises(StreamOptionError, match=rf"{option}: is a {other}-mode option"):
        rec.stream(mode, **{option: value})  # type: ignore[arg-type]
    stream = rec.stream(other, **{option: value})  # type: ignore[arg-type]
    assert getattr(stream.decision, option) == value


@pytest.mark.parametrize("mode", ["window", "segment"])
def test_one_stream_pushed_from_threads_stays_consistent(model_file: Path, mode: str) -> None:
    # misuse (one stream, several frame sources): the lock serialises push + engine call +
    # decision, so every frame is counted and no decision lacks its classification
    rec, engine = _scripted(model_file, [("a", .9)] * 10_000)
    opts = {"stride": 1} if mode == "window" else {"rest_frames": 2, "max_frames": 5}
    stream = rec.stream(mode, min_frames=1, **opts)  # type: ignore[arg-type]
    moving = [hand_frame(0.3 + 0.02 * (k % 7)) for k in range(50)]
    errors: list[BaseException] = []

    def feed() -> None:
        try:
            for f in moving:
                stream.push(f)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert stream.frames == 4 * len(moving)
    assert stream.engine_calls == engine.calls > 0
