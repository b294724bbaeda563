"""Stream gates from the offline study and tuned stream settings in the model metadata.

* window mode classifies only with a visible hand (``require_hand``);
* segment mode measures hand motion in shoulder widths (``motion_unit``);
* ``signrt.stream`` metadata round trip, defaults precedence in ``Recognizer.stream`` and the
  daemon, and the ``signrt tune-stream`` command.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest

from helpers_models import hand_frame, hand_spec, write_pooling_model
from signrt.cli import main
from signrt.daemon.build import stream_options
from signrt.daemon.config import DaemonConfig
from signrt.errors import ModelError, ShapeError, StreamOptionError
from signrt.recognizer import Recognizer, load
from signrt.runtime.model import STREAM_KEY, load_model_file, save_onnx, stamp_stream_settings
from signrt.stream import DEFAULT_MOTION_SHOULDER, Stream

LABELS = ("a", "b", "c")
POSE_ONLY = np.full((543, 3), np.nan, dtype=np.float32)
POSE_ONLY[489:522, :2] = 0.5  # the body in view, the hands out of view


class Scripted:
    """Always answers (label, p); counts its calls."""

    name, device, providers = "scripted", "cpu", ("scripted",)

    def __init__(self, label: str = "a", p: float = 0.9) -> None:
        self.label, self.p, self.calls = label, p, 0

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        probs = np.full((features.shape[0], len(LABELS)), (1.0 - self.p) / (len(LABELS) - 1))
        probs[:, LABELS.index(self.label)] = self.p
        return np.log(probs).astype(np.float32)  # (B, K)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a spec that selects the pose too, so pose-only frames have "a signer"
    spec = dataclasses.replace(hand_spec(16), landmarks=tuple(range(489, 543)))
    path, _, _ = write_pooling_model(tmp_path_factory.mktemp("m") / "m.onnx", spec,
                                     list(LABELS))  # fmt: skip
    return path


def _rec(path: Path, engine: Scripted | None = None) -> tuple[Recognizer, Scripted]:
    eng = engine or Scripted()
    return Recognizer(load_model_file(path), eng, top_k=2), eng


def _feed(stream: Stream, frames: Sequence[np.ndarray], fps: float = 25.0) -> list[str]:
    out = []
    for i, f in enumerate(frames):
        out += [e.label for e in stream.push(f, timestamp=i / fps)]
    return out + [e.label for e in stream.flush()]


def _body(frame: np.ndarray, shoulder: float) -> np.ndarray:
    f = frame.copy()
    f[489 + 11, :2] = (0.5 - shoulder / 2, 0.6)
    f[489 + 12, :2] = (0.5 + shoulder / 2, 0.6)
    return f


# ------------------------------------------------------------------------ window gate
def test_window_pose_only_frames_are_never_classified(model_file: Path) -> None:
    rec, eng = _rec(model_file)
    st = rec.stream("window", stride=1, confirm=1, min_frames=1)
    assert st.decision.require_hand is True
    assert _feed(st, [POSE_ONLY] * 50) == []
    assert eng.calls == 0
    # the old rule (any selected landmark) classifies them and raises an event
    old = rec.stream("window", stride=1, confirm=1, min_frames=1, require_hand=False)
    assert _feed(old, [POSE_ONLY] * 5) == ["a"]
    assert eng.calls == 5  # every frame classified; the run confirms once


def test_window_hand_frames_still_confirm(model_file: Path) -> None:
    rec, eng = _rec(model_file)
    st = rec.stream("window", stride=2, confirm=2, min_frames=2)
    frames = [POSE_ONLY] * 10 + [_body(hand_frame(0.5), 0.3)] * 6 + [POSE_ONLY] * 10
    assert _feed(st, frames) == ["a"]
    # only the 6 hand frames count as a signer: classifications at hand frames 2, 4 and 6
    assert eng.calls == 3


def test_window_require_hand_is_checked(model_file: Path) -> None:
    rec, _ = _rec(model_file)
    with pytest.raises(StreamOptionError, match="require_hand"):
        rec.stream("window", require_hand="yes")
    with pytest.raises(StreamOptionError, match="require_hand"):
        rec.stream("segment", require_hand=True)
    with pytest.raises(ShapeError):
        rec.stream("window").push(np.zeros((543, 2), dtype=np.float32))


# --------------------------------------------------------------------- segment motion
def _moving(shoulder: float, step: float, n: int) -> list[np.ndarray]:
    return [_body(hand_frame(0.3 + step * k), shoulder) for k in range(n)]


@pytest.mark.parametrize("shoulder", [0.1, 0.4])
def test_segment_motion_is_in_shoulder_widths(model_file: Path, shoulder: float) -> None:
    rec, eng = _rec(model_file)
    st = rec.stream("segment", rest_frames=4, min_frames=3, threshold=0.5)
    assert st.decision.motion_unit == "shoulder"
    assert st.decision.motion_threshold == DEFAULT_MOTION_SHOULDER
    # 0.03 shoulder widths per frame moves, 0.01 does not, whatever the distance
    still = _moving(shoulder, 0.01 * shoulder, 30)
    assert _feed(st, still) == [] and eng.calls == 0
    moving = _moving(shoulder, 0.03 * shoulder, 12)
    rest = [moving[-1]] * 6
    assert _feed(st, moving + rest) == ["a"] and eng.calls == 1


def test_segment_image_units_keep_the_old_rule(model_file: Path) -> None:
    rec, eng = _rec(model_file)
    st = rec.stream("segment", motion_unit="image", rest_frames=4, min_frames=3)
    assert st.decision.motion_threshold == pytest.approx(0.004)
    # a far signer (shoulders 0.1 wide) moving 0.003 image units per frame: moving in
    # shoulder widths (0.03), still in image units
    frames = _moving(0.1, 0.003, 12) + [_moving(0.1, 0.003, 12)[-1]] * 6
    assert _feed(st, frames) == [] and eng.calls == 0
    st2 = rec.stream("segment", rest_frames=4, min_frames=3)
    assert _feed(st2, frames) == ["a"]
    with pytest.raises(StreamOptionError, match="motion_unit"):
        rec.stream("segment", motion_unit="px")


# --------------------------------------------------------------------------- metadata
def _tuned_copy(model_file: Path, tmp_path: Path, settings: dict) -> Path:
    m = onnx.load(str(model_file))
    stamp_stream_settings(m, settings)
    return save_onnx(m, tmp_path / "tuned.onnx")


SETTINGS = {
    "window": {"threshold": 0.45, "stride": 2, "confirm": 3, "require_hand": True},
    "segment": {"threshold": 0.4, "rest_frames": 10, "motion_threshold": 0.025,
                "motion_unit": "shoulder"},
    "tuning": {"data": "val", "window": {"validation": {"f1": 0.5}}},
}  # fmt: skip


def test_stream_settings_round_trip(model_file: Path, tmp_path: Path) -> None:
    assert load_model_file(model_file).stream == {}
    path = _tuned_copy(model_file, tmp_path, SETTINGS)
    mf = load_model_file(path)
    assert mf.stream == SETTINGS
    assert mf.summary()["stream"]["window"]["confirm"] == 3
    assert mf.labels == LABELS  # the other metadata is kept
    # stamping again replaces the entry, never duplicates it
    m = onnx.load(str(path))
    stamp_stream_settings(m, {"window": {"threshold": 0.5}})
    assert [p.key for p in m.metadata_props].count(STREAM_KEY) == 1


@pytest.mark.parametrize("bad", [[1], {"windows": {}}, {"window": 3},
                                 {"window": {"stride": [2]}}])  # fmt: skip
def test_bad_stream_settings_are_refused(model_file: Path, bad: object) -> None:
    m = onnx.load(str(model_file))
    with pytest.raises(ModelError, match=r"signrt\.stream"):
        stamp_stream_settings(m, bad)  # type: ignore[arg-type]


def test_defaults_precedence(model_file: Path, tmp_path: Path) -> None:
    rec, _ = _rec(_tuned_copy(model_file, tmp_path, SETTINGS))
    w = rec.stream("window").decision
    assert (w.threshold, w.stride, w.confirm) == (0.45, 2, 3)
    assert w.cooldown == 1.0  # not tuned: the Stream's default
    w2 = rec.stream("window", threshold=0.7, stride=None).decision
    assert (w2.threshold, w2.stride) == (0.7, 2)  # explicit wins, None is "not given"
    s = rec.stream("segment").decision
    assert (s.threshold, s.rest_frames, s.motion_threshold) == (0.4, 10, 0.025)
    assert rec.stream("segment", rest_frames=5).decision.rest_frames == 5
    assert rec.stream_defaults["window"]["confirm"] == 3
    # a model without settings: the Stream's defaults
    plain, _ = _rec(model_file)
    assert plain.stream("window").decision.threshold == 0.6
    # the daemon passes only what it was told
    assert stream_options(DaemonConfig()) == {"mode": "window"}
    opts = stream_options(DaemonConfig(threshold=0.8))
    assert opts == {"mode": "window", "threshold": 0.8}
    assert rec.stream(**opts).decision.threshold == 0.8
    assert rec.stream(**opts).decision.confirm == 3


# -------------------------------------------------------------------------------- CLI
def test_tune_stream_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import signrt
    from test_evaluate_stream import _synthetic, _write_folder

    clips, labels = _synthetic(3, 1)
    data = _write_folder(tmp_path / "d", clips, labels)
    unk = _write_folder(tmp_path / "u", clips[:2], labels[:2], rename="notaword")
    out = tmp_path / "tuned.onnx"
    demo = signrt.recognizer.default_model_path()
    rc = main(["tune-stream", str(demo), "--data", str(data), "--unknown", str(unk),
               "--idle-seconds", "2", "--thresholds", "0.4,0.6", "--strides", "4",
               "--confirms", "2,3", "--rest-seconds", "0.48", "-o", str(out)])  # fmt: skip
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    mf = load_model_file(out)
    assert mf.stream["window"] == printed["window"]
    assert set(mf.stream["segment"]) == {"motion_unit", "motion_threshold", "rest_frames",
                                         "threshold", "score"}  # fmt: skip
    by_score = mf.stream["tuning"]["window"]["by_score"]
    assert by_score["probability"]["grid_size"] == 4
    assert mf.stream["window"]["score"] == mf.stream["tuning"]["window"]["score"]
    assert load_model_file(demo).stream == {}  # the input model is untouched
    rec = load(out, device="cpu")
    assert rec.stream("window").decision.confirm == mf.stream["window"]["confirm"]
    assert mf.stream["tuning"]["segment"]["by_score"]["probability"]["grid_size"] == 3 * 1 * 2
    assert main(["tune-stream", str(demo), "--data", str(data), "--modes", "fast"]) == 2
    assert main(["tune-stream", str(demo), "--data", str(data), "--strides", "x"]) == 2
    assert main(["tune-stream", str(demo), "--data", str(data), "--scores", "logit"]) == 2


def test_tune_stream_default_thresholds_reach_confident_scores(tmp_path: Path) -> None:
    # a confident model scores unknown signs above 0.7; the default grid must go past it
    import signrt
    from signrt.evaluate.tune import TuneConfig
    from test_evaluate_stream import _synthetic, _write_folder

    grid = TuneConfig().thresholds
    assert max(grid) >= 0.9 and list(grid) == sorted(grid)
    clips, labels = _synthetic(3, 1)
    data = _write_folder(tmp_path / "d", clips, labels)
    out = tmp_path / "tuned.onnx"
    demo = signrt.recognizer.default_model_path()
    assert main(["tune-stream", str(demo), "--data", str(data), "--idle-seconds", "1",
                 "--strides", "4", "--confirms", "2", "--rest-seconds", "0.48",
                 "-o", str(out)]) == 0  # fmt: skip
    tuning = load_model_file(out).stream["tuning"]
    assert tuning["config"]["thresholds"] == list(grid)
    assert tuning["temperature"] == 1.0  # the demo model carries no calibration
    assert tuning["window"]["by_score"]["probability"]["grid_size"] == len(grid)
    assert tuning["segment"]["by_score"]["probability"]["grid_size"] == 3 * len(grid)


@pytest.mark.parametrize("points", [(0,), (9,), (12,), (0, 9, 12)])
@pytest.mark.parametrize("hand", [468, 522])
def test_a_hand_with_its_probe_points_counts_as_visible(model_file: Path, hand: int,
                                                         points: tuple) -> None:
    # the native hand gate: a frame is classified once a probe point of a hand is seen
    rec, eng = _rec(model_file)
    st = rec.stream("window", stride=1, confirm=1, min_frames=1)
    f = POSE_ONLY.copy()
    st.push(f)
    assert eng.calls == 0
    for k in points:
        f[hand + k, :2] = 0.4
    st.push(f)
    assert eng.calls == 1
    f[hand : hand + 21, :2] = 0.4  # a whole hand, the usual case
    st.push(f)
    assert eng.calls == 2


def test_stored_options_of_the_wrong_mode_are_refused(model_file: Path, tmp_path: Path) -> None:
    bad = _tuned_copy(model_file, tmp_path, {"segment": {"stride": 2}})
    rec, _ = _rec(bad)
    with pytest.raises(StreamOptionError, match=r"signrt\.stream.*stride"):
        rec.stream("segment")
    assert rec.stream("window").decision.stride == 4  # the other mode is unaffected
