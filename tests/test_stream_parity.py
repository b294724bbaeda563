"""Stream decisions on real landmark streams against recorded events.

The events under ``tests/data/stream_parity/`` were recorded with the Python decision layer
of commit 300e499 (hand gate, shoulder-width motion, stride / confirmation / threshold /
cooldown / rest logic in Python), before it moved into the native core: the native path
must raise the same events at the same frames, with the same times, scores and top-k.

The streams join real clips (``tests/data/asl-signs-42`` and ``asl-signs-sample``, and the
INCLUDE development clips when ``../shared/data/include-dev`` is there) with rests of two
kinds between them: the hands out of view with the body in view, and the hands held still.
The engine is deterministic and depends on the window only through its mask and the sign of
one feature, so that the recorded events do not move with last-bit changes of the
preprocessing.

Re-record (only when the decision rules change on purpose)::

    python tests/test_stream_parity.py --record
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from signrt.io import index_dataset
from signrt.recognizer import Recognizer, default_model_path
from signrt.runtime.model import load_model_file

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "data" / "stream_parity"
SOURCES = {
    "asl42": ROOT / "tests" / "data" / "asl-signs-42",
    "sample": ROOT / "tests" / "data" / "asl-signs-sample",
    "include": ROOT.parent / "shared" / "data" / "include-dev",
}
INCLUDE_ALT = ROOT.parents[1] / "shared" / "data" / "include-dev"
_HANDS = np.r_[468:489, 522:543]

SETTINGS: dict[str, list[dict[str, Any]]] = {
    "window": [
        {},
        {"stride": 1, "confirm": 1, "cooldown": 0.5, "threshold": 0.3},
        {"stride": 2, "confirm": 3, "require_hand": False, "min_frames": 4, "threshold": 0.2},
        {"stride": 3, "confirm": 2, "cooldown": 0.0, "threshold": 0.25, "min_frames": 30},
    ],
    "segment": [
        {},
        {"motion_unit": "image", "threshold": 0.2},
        {"rest_frames": 4, "min_frames": 3, "threshold": 0.3, "motion_threshold": 0.01},
        {"max_frames": 20, "rest_frames": 6, "threshold": 0.0, "motion_threshold": 0.05},
    ],
}  # fmt: skip


class MaskEngine:
    """Logits that depend on the window's valid-frame count and one feature's sign."""

    name, device, providers = "mask-engine", "cpu", ("mask-engine",)

    def __init__(self, classes: int) -> None:
        self.k = classes

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        # features (B, L, F), mask (B, L) -> logits (B, K)
        out = np.zeros((features.shape[0], self.k), dtype=np.float32)
        for b in range(features.shape[0]):
            n = int(mask[b].sum())
            c = (n // 3 + (1 if features[b, 0, 0] > 0 else 0)) % self.k
            out[b, c] = 1.0 + (n % 5)
            out[b, (c + 1) % self.k] = 0.5 * (n % 3)
        return out


def _source(name: str) -> Path | None:
    path = SOURCES[name]
    if name == "include" and not path.is_dir():
        path = INCLUDE_ALT
    return path if path.is_dir() else None


def joined_stream(root: Path, clips: int = 24) -> np.ndarray:
    """(T, 543, 3) float32: real clips with alternating rest kinds between them."""
    records = sorted(index_dataset(root), key=lambda r: str(r.path))[:clips]
    parts: list[np.ndarray] = []
    for i, rec in enumerate(records):
        clip = np.asarray(rec.read(), dtype=np.float32)
        parts.append(clip)
        rest = np.repeat(clip[-1:], 15, axis=0)
        if i % 2 == 0:
            rest[:, _HANDS] = np.nan  # the hands out of view, the body in view
        parts.append(rest)
    return np.concatenate(parts)


def run_stream(rec: Recognizer, frames: np.ndarray, mode: str, opts: dict[str, Any]
               ) -> dict[str, Any]:
    """Push every frame (timestamps i / 25) and flush; the events and the engine calls."""
    st = rec.stream(mode, **opts)  # type: ignore[arg-type]
    events: list[dict[str, Any]] = []
    for i, f in enumerate(frames):
        events += [_event(i, e) for e in st.push(f, timestamp=i / 25.0)]
    events += [_event(-1, e) for e in st.flush()]
    return {"mode": mode, "options": opts, "engine_calls": st.engine_calls, "events": events,
            "frames": st.frames}  # fmt: skip


def _event(i: int, e: Any) -> dict[str, Any]:
    return {"frame": i, "label": e.label, "score": e.score, "start": e.start, "end": e.end,
            "frames": e.frames, "topk": [[lab, p] for lab, p in e.topk]}  # fmt: skip


def _recognizer() -> Recognizer:
    mf = load_model_file(default_model_path())
    return Recognizer(mf, MaskEngine(len(mf.labels)), top_k=3)  # type: ignore[arg-type]


def _cases(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(m, o) for m, opts in SETTINGS.items() for o in opts]


@pytest.mark.parametrize("source", ["asl42", "sample", "include"])
def test_events_equal_the_recorded_ones(source: str) -> None:
    root = _source(source)
    if root is None:
        pytest.skip(f"{SOURCES[source]} is not available")
    golden = json.loads((GOLDEN / f"{source}.json").read_text())
    frames = joined_stream(root)
    assert frames.shape[0] == golden["frames"]
    rec = _recognizer()
    for want in golden["runs"]:
        got = run_stream(rec, frames, want["mode"], want["options"])
        assert got == want, (want["mode"], want["options"])


def record() -> None:
    """Write the recorded events of every source that is available."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    rec = _recognizer()
    for source in SOURCES:
        root = _source(source)
        if root is None:
            continue
        frames = joined_stream(root)
        runs = [run_stream(rec, frames, m, o) for m, o in _cases(source)]
        out = {"source": source, "frames": int(frames.shape[0]), "runs": runs}
        (GOLDEN / f"{source}.json").write_text(json.dumps(out, indent=1) + "\n")
        print(source, frames.shape[0], [(r["engine_calls"], len(r["events"])) for r in runs])


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
