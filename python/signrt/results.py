"""Recognition results: Prediction (a clip), Event (a stream), Latency (time per stage).

Plain frozen dataclasses with ``to_dict()`` for JSON; no dependency beyond the standard
library, so every layer above (recognizer, stream, daemon, CLI) shares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["BACKGROUND_LABEL", "Event", "Latency", "Prediction", "TopK"]

#: The reserved label of a model's explicit background class: rest, transitions between
#: signs, idle movement (see ``signrt background-data``). A prediction whose top-1 it is is
#: ``unknown``, and a stream never emits it as an event.
BACKGROUND_LABEL: Final = "__background__"

#: ``(label, probability)`` pairs, best first.
TopK = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Latency:
    """Time spent per stage, in milliseconds.

    Attributes:
        preprocess_ms: Landmarks -> features (native preprocessing).
        inference_ms: The engine call plus softmax and top-k.
    """

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        """Sum of the stages."""
        return self.preprocess_ms + self.inference_ms

    def to_dict(self) -> dict[str, float]:
        """Return the stages (and total) as a dict."""
        return {
            "preprocess_ms": self.preprocess_ms,
            "inference_ms": self.inference_ms,
            "total_ms": self.total_ms,
        }


@dataclass(frozen=True)
class Prediction:
    """The answer for one clip.

    Attributes:
        label: The most probable sign, or None when ``no_signer``.
        score: Its softmax probability (0.0 when ``no_signer``).
        topk: The k most probable ``(label, probability)`` pairs, best first.
        no_signer: True when the clip has no frame with a selected landmark (nobody in
            view); no engine call is made and ``label`` is None.
        latency: Time per stage.
        unknown: True when the top-1 is the model's background class
            (:data:`BACKGROUND_LABEL`): the clip is none of the model's signs (``label`` is
            then the background label and ``score`` its probability).
    """

    label: str | None
    score: float
    topk: tuple[tuple[str, float], ...] = ()
    no_signer: bool = False
    latency: Latency = field(default_factory=Latency)
    unknown: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "label": self.label,
            "score": self.score,
            "topk": [[lab, s] for lab, s in self.topk],
            "no_signer": self.no_signer,
            "unknown": self.unknown,
            "latency": self.latency.to_dict(),
        }


@dataclass(frozen=True)
class Event:
    """A sign recognised in a stream.

    Attributes:
        kind: ``"sign"``.
        label: The recognised sign.
        score: Its probability (window mode: mean over the confirming windows).
        start: Timestamp of the first frame of the sign (seconds, the stream's clock).
        end: Timestamp of the last frame that confirmed it.
        latency: Preprocessing and inference time of the deciding classification.
        topk: The k most probable ``(label, probability)`` pairs of that classification.
        frames: Number of frames in the classified window or segment.
    """

    kind: str
    label: str
    score: float
    start: float
    end: float
    latency: Latency = field(default_factory=Latency)
    topk: tuple[tuple[str, float], ...] = ()
    frames: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "kind": self.kind,
            "label": self.label,
            "score": self.score,
            "start": self.start,
            "end": self.end,
            "latency": self.latency.to_dict(),
            "topk": [[lab, s] for lab, s in self.topk],
            "frames": self.frames,
        }
