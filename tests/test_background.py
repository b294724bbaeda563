"""The explicit background class: ``unknown`` predictions, no stream events, training data.

A model may have a class named ``__background__`` (rest, transitions, idle motion; the
clips come from ``signrt background-data``). Its top-1 makes a prediction ``unknown`` and is
never emitted by a stream, whatever its score.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers_models import hand_frame, hand_spec, write_pooling_model
from signrt.cli import main
from signrt.errors import DataError
from signrt.evaluate.background import BackgroundConfig, background_windows
from signrt.evaluate.streams import StreamConfig, build_streams
from signrt.recognizer import Recognizer
from signrt.results import BACKGROUND_LABEL
from signrt.runtime.model import load_model_file
from signrt.synthetic import SyntheticConfig, SyntheticSigner

LABELS = ("a", "b", BACKGROUND_LABEL)


class _Answers:
    """Answers ``label`` with probability 0.95 for every row."""

    name, device, providers = "answers", "cpu", ("answers",)

    def __init__(self, label: str) -> None:
        self.label = label

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        p = np.full((features.shape[0], len(LABELS)), 0.025)
        p[:, LABELS.index(self.label)] = 0.95
        return np.log(p).astype(np.float32)  # (B, K)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, _, _ = write_pooling_model(tmp_path_factory.mktemp("bg") / "m.onnx", hand_spec(16),
                                     list(LABELS))  # fmt: skip
    return path


def _frames() -> list[np.ndarray]:
    return [hand_frame(0.3 + 0.02 * (i % 10)) for i in range(40)] + [hand_frame(0.5)] * 20


@pytest.mark.parametrize("mode", ["window", "segment"])
@pytest.mark.parametrize("label", ["a", BACKGROUND_LABEL])
def test_background_is_never_an_event(model: Path, mode: str, label: str) -> None:
    rec = Recognizer(load_model_file(model), _Answers(label), top_k=3)
    st = rec.stream(mode, threshold=0.5)
    out = [e for i, f in enumerate(_frames()) for e in st.push(f, i / 25.0)] + st.flush()
    assert st.engine_calls > 0
    assert [e.label for e in out][:1] == ([] if label == BACKGROUND_LABEL else ["a"])


def test_background_prediction_is_unknown(model: Path) -> None:
    clip = np.stack(_frames())
    for label, unknown in (("a", False), ("b", False), (BACKGROUND_LABEL, True)):
        rec = Recognizer(load_model_file(model), _Answers(label), top_k=3)
        pred = rec.predict(clip)
        assert pred.label == label and pred.unknown is unknown and not pred.no_signer
        assert pred.to_dict()["unknown"] is unknown
        assert [p.unknown for p in rec.predict_batch([clip, clip[:5]])] == [unknown] * 2


def _clips(n_classes: int = 3) -> tuple[list[np.ndarray], list[str]]:
    cfg = SyntheticConfig(num_classes=n_classes, num_signers=1, clips_per_class=2, seed=0)
    signer = SyntheticSigner(cfg)
    clips = [signer.clip(label=k, signer=0, rep=r) for k in range(n_classes) for r in range(2)]
    return clips, [cfg.label_names[k] for k in range(n_classes) for _ in range(2)]


def test_background_windows_are_mostly_rest_with_a_hand() -> None:
    clips, labels = _clips()
    streams = build_streams(clips, labels, StreamConfig(rest=1.2, rest_kind="low_in_view"))
    cfg = BackgroundConfig(clips=12, max_sign_fraction=0.25, seed=3)
    wins = background_windows(streams, cfg)
    assert len(wins) == 12
    # every window is a slice of a stream with <= 25 % sign frames and a hand in >= half
    for w in wins:
        assert cfg.min_frames <= len(w) <= cfg.max_frames and w.shape[1:] == (543, 3)
        hits = []
        for s in streams:
            for a in range(len(s.frames) - len(w) + 1):
                if np.array_equal(s.frames[a : a + len(w)], w, equal_nan=True):
                    hits.append(float(s.signing[a : a + len(w)].mean()))
        assert hits and min(hits) <= 0.25
        hands = np.isfinite(w[:, [468, 522], 0]).any(axis=1)
        assert hands.mean() >= 0.5
    # out of view rest has no hand: no window qualifies
    dark = build_streams(clips, labels, StreamConfig(rest=1.2, rest_kind="out_of_view"))
    assert background_windows(dark, BackgroundConfig(clips=3, max_sign_fraction=0.0)) == []


def test_background_data_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips, labels = _clips(2)
    src = tmp_path / "train"
    for i, (c, lab) in enumerate(zip(clips, labels, strict=True)):
        (src / lab).mkdir(parents=True, exist_ok=True)
        np.save(src / lab / f"{i}.npy", c)
    out = tmp_path / "with_bg"
    assert main(["background-data", "--data", str(src), "--out", str(out), "--clips", "5"]) == 0
    assert "5 background clips" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted({*labels, BACKGROUND_LABEL})
    assert len(list((out / BACKGROUND_LABEL).glob("*.npy"))) == 5
    assert all((out / lab).is_dir() and any((out / lab).iterdir()) for lab in labels)
    # --other: clips of other words join the background class; words of the vocabulary do not
    cfg = SyntheticConfig(num_classes=4, num_signers=1, clips_per_class=1, seed=1)
    other = tmp_path / "other"
    (other / "zz").mkdir(parents=True)
    np.save(other / "zz" / "0.npy", SyntheticSigner(cfg).clip(label=3, signer=0, rep=0))
    assert main(["background-data", "--data", str(src), "--out", str(tmp_path / "o"),
                 "--clips", "2", "--other", str(other)]) == 0  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "o" / BACKGROUND_LABEL).iterdir()) == [
        "bg_0000.npy", "bg_0001.npy", "other_zz_0.npy"]
    assert main(["background-data", "--data", str(src), "--out", str(tmp_path / "o2"),
                 "--other", str(src)]) == 2
    # a folder that already has one is refused
    with pytest.raises(DataError, match=BACKGROUND_LABEL):
        from signrt.evaluate.background import write_background_dataset

        write_background_dataset(out, tmp_path / "again")
