"""The native decision layer against the previous Python one, on generated streams.

``_stream_previous.py`` is the Python decision layer of commit 300e499, kept only while the
native path is checked against it (deleted with it in the next commit).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _stream_previous as previous
from signrt.recognizer import Recognizer, default_model_path
from signrt.runtime.model import load_model_file
from signrt.stream import Stream

_REC: list[Recognizer] = []


class HashEngine:
    """Logits from a hash of the exact feature and mask bits: any difference in the inputs
    changes the answer."""

    name, device, providers = "hash-engine", "cpu", ("hash-engine",)

    def __init__(self, classes: int) -> None:
        self.k = classes

    def run(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.zeros((features.shape[0], self.k), dtype=np.float32)  # (B, K)
        for b in range(features.shape[0]):
            h = hashlib.sha256(features[b].tobytes() + mask[b].tobytes()).digest()
            out[b, h[0] % self.k] = h[1] / 64.0
            out[b, h[2] % self.k] += h[3] / 128.0
        return out


def _rec() -> Recognizer:
    if not _REC:
        mf = load_model_file(default_model_path())
        _REC.append(Recognizer(mf, HashEngine(len(mf.labels)), top_k=3))  # type: ignore[arg-type]
    return _REC[0]


def _frames(seed: int, n: int, dtype: str) -> list[np.ndarray]:
    """Random streams mixing empty, pose-only and hand frames, moving and still, with NaN
    and inf sprinkled in and shoulders that come and go."""
    rng = np.random.default_rng(seed)
    out = []
    pos = rng.uniform(0.2, 0.8, 4)
    for _ in range(n):
        f = np.full((543, 3), np.nan)
        kind = rng.integers(0, 6)
        if kind:
            f[489:522] = rng.uniform(0.3, 0.7, (33, 3))
            w = rng.choice([0.1, 0.25, 0.4, np.nan])
            f[500, :2] = (0.5 - w / 2, 0.6)
            f[501, :2] = (0.5 + w / 2, 0.6)
        if kind >= 2:
            pos += rng.normal(0, rng.choice([0.001, 0.01, 0.05]), 4)
            for h, start in enumerate((468, 522)):
                if kind in (2, 4) and h == 0 or kind in (3, 4, 5) and h == 1:
                    f[start:start + 21, 0] = pos[2 * h] + rng.normal(0, 0.01, 21)
                    f[start:start + 21, 1] = pos[2 * h + 1] + rng.normal(0, 0.01, 21)
                    f[start:start + 21, 2] = 0.0
        holes = rng.random((543, 3)) < 0.05
        f[holes] = rng.choice([np.nan, np.inf, -np.inf])
        if rng.random() < 0.3:
            f[:468] = rng.uniform(0.3, 0.7, (468, 3))  # a face
        out.append(f.astype(dtype))
    return out


window_opts = st.fixed_dictionaries({}, optional={
    "stride": st.integers(1, 5), "confirm": st.integers(1, 4),
    "cooldown": st.sampled_from([0.0, 0.2, 1.0]), "threshold": st.sampled_from([0.0, 0.2, 0.4]),
    "min_frames": st.integers(-1, 70), "require_hand": st.booleans(),
})  # fmt: skip
segment_opts = st.fixed_dictionaries({}, optional={
    "rest_frames": st.integers(1, 8), "min_frames": st.integers(0, 8),
    "max_frames": st.integers(1, 40), "threshold": st.sampled_from([0.0, 0.2, 0.4]),
    "motion_threshold": st.sampled_from([0.0, 0.002, 0.01, 0.05, 0.2]),
    "motion_unit": st.sampled_from(["shoulder", "image"]),
})  # fmt: skip


def _run(stream: Any, frames: list[np.ndarray], implicit: bool) -> list[Any]:
    out: list[Any] = []
    for i, f in enumerate(frames):
        evs = stream.push(f) if implicit else stream.push(f, timestamp=i / 25.0)
        out += [(i, e.label, e.score, e.start, e.end, e.frames, e.topk) for e in evs]
    out += [(-1, e.label, e.score, e.start, e.end, e.frames, e.topk) for e in stream.flush()]
    return [*out, ("calls", stream.engine_calls, stream.frames, stream.events)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 160),
       dtype=st.sampled_from(["float32", "float64"]), implicit=st.booleans(),
       mode=st.sampled_from(["window", "segment"]), data=st.data())  # fmt: skip
def test_native_decisions_equal_the_previous_python_ones(
    seed: int, n: int, dtype: str, implicit: bool, mode: str, data: st.DataObject
) -> None:
    opts = data.draw(window_opts if mode == "window" else segment_opts)
    frames = _frames(seed, n, dtype)
    rec = _rec()
    new = Stream(rec, mode, fps=25.0, **opts)  # type: ignore[arg-type]
    old = previous.Stream(rec, mode, fps=25.0, **opts)
    assert _run(new, frames, implicit) == _run(old, frames, implicit)
