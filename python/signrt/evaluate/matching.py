"""Match stream events to the true signs of a stream and score them.

An event is raised at its *emission time*: the timestamp of the frame whose ``push``
returned it (or the stream's last timestamp for events from ``flush``). Rules:

* an event **matches** a true in-vocabulary sign when the labels are equal and the emission
  time lies in ``[sign.start, sign.end + tolerance]``; each sign and each event match at
  most once; events are taken in emission order and each takes the earliest such sign
  still unmatched;
* an unmatched event is **attributed** to the sign (in-vocabulary or not) whose window
  ``[start, end + tolerance]`` contains its emission time (the one whose end is nearest, on
  overlap); an event attributed to an out-of-vocabulary sign is an *OOV event*, one
  attributed to an in-vocabulary sign a *wrong or duplicate* event, and one outside every
  window a *rest event*;
* **non-signing time** is the time outside every sign window, over all streams;
* **decision delay** of a match: emission time minus the sign's end (negative when the
  decision came before the sign ended).

Precision counts every event of the streams that hold in-vocabulary signs
(matched / all of them, rest events included); recall is matched signs / in-vocabulary
signs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import OptionError
from .streams import TrueSign

__all__ = ["EmittedEvent", "MatchResult", "StreamScore", "match_events", "score_streams"]


@dataclass(frozen=True)
class EmittedEvent:
    """An event as the evaluation sees it.

    Attributes:
        label: The recognised sign.
        emit: Emission time (seconds, the stream's clock).
        score: The event's score.
        start: The event's own start timestamp (``Event.start``).
        end: The event's own end timestamp (``Event.end``).
    """

    label: str
    emit: float
    score: float = 1.0
    start: float = float("nan")
    end: float = float("nan")


@dataclass
class MatchResult:
    """The outcome of matching one stream's events.

    Attributes:
        matched: (event index, sign index) pairs.
        kind: Per event: ``match``, ``wrong`` (attributed to an in-vocabulary sign of
            another label, or a duplicate), ``oov`` (attributed to an out-of-vocabulary
            sign) or ``rest``.
        attributed: Per event, the index of the sign it is attributed to, or -1.
        delays: Decision delay of each match, in ``matched`` order.
    """

    matched: list[tuple[int, int]] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    attributed: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)


def match_events(
    signs: Sequence[TrueSign], events: Sequence[EmittedEvent], tolerance: float
) -> MatchResult:
    """Match one stream's events to its true signs (see the module docs for the rules).

    Args:
        signs: The stream's signs.
        events: The stream's events (any order; handled in emission order).
        tolerance: Seconds after a sign's end within which its event may come.

    Returns:
        The matches, the kind of every event (in the given order) and the delays.

    Raises:
        OptionError: If ``tolerance`` is negative.
    """
    if tolerance < 0:
        raise OptionError(f"tolerance must be >= 0, got {tolerance}")
    res = MatchResult(kind=[""] * len(events), attributed=[-1] * len(events))
    taken = [False] * len(signs)
    order = sorted(range(len(events)), key=lambda i: (events[i].emit, i))
    for i in order:
        ev = events[i]
        best = -1
        for j, s in enumerate(signs):
            if (
                not taken[j]
                and s.known
                and s.label == ev.label
                and s.start <= ev.emit <= s.end + tolerance
                and (best < 0 or s.start < signs[best].start)
            ):
                best = j
        if best >= 0:
            taken[best] = True
            res.matched.append((i, best))
            res.kind[i] = "match"
            res.attributed[i] = best
            res.delays.append(ev.emit - signs[best].end)
            continue
        owner, gap = -1, np.inf
        for j, s in enumerate(signs):
            if s.start <= ev.emit <= s.end + tolerance and abs(ev.emit - s.end) < gap:
                owner, gap = j, abs(ev.emit - s.end)
        res.attributed[i] = owner
        if owner < 0:
            res.kind[i] = "rest"
        else:
            res.kind[i] = "wrong" if signs[owner].known else "oov"
    return res


def _covered(signs: Sequence[TrueSign], tolerance: float, lo: float, hi: float) -> float:
    """Seconds of [lo, hi] covered by the union of the signs' windows."""
    spans = sorted((max(lo, s.start), min(hi, s.end + tolerance)) for s in signs)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
        if b <= a:
            continue
        if cur_b is None or a > cur_b:
            if cur_a is not None and cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_a is not None and cur_b is not None:
        total += cur_b - cur_a
    return total


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


@dataclass
class StreamScore:
    """Scores of one stream mode over many streams.

    Attributes:
        signs: In-vocabulary signs.
        events: Events in the streams holding in-vocabulary signs.
        matched: Matched signs.
        wrong: Unmatched events attributed to an in-vocabulary sign.
        rest_events: Events outside every sign window (all streams).
        oov_signs: Out-of-vocabulary signs.
        oov_events: Events attributed to out-of-vocabulary signs.
        oov_signs_with_event: Out-of-vocabulary signs that raised at least one event.
        non_signing_s: Seconds outside every sign window (all streams).
        delays: Decision delays of the matches (seconds).
    """

    signs: int = 0
    events: int = 0
    matched: int = 0
    wrong: int = 0
    rest_events: int = 0
    oov_signs: int = 0
    oov_events: int = 0
    oov_signs_with_event: int = 0
    non_signing_s: float = 0.0
    delays: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """Matched events / events (1.0 when there is no event)."""
        return self.matched / self.events if self.events else 1.0

    @property
    def recall(self) -> float:
        """Matched signs / signs (0.0 when there is no sign)."""
        return self.matched / self.signs if self.signs else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def false_per_minute(self) -> float | None:
        """Rest events per minute of non-signing (None without non-signing time)."""
        return self.rest_events / (self.non_signing_s / 60.0) if self.non_signing_s > 0 else None

    @property
    def oov_per_sign(self) -> float | None:
        """OOV events per out-of-vocabulary sign (None without such signs)."""
        return self.oov_events / self.oov_signs if self.oov_signs else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the counts and the derived figures."""
        return {
            "signs": self.signs,
            "events": self.events,
            "matched": self.matched,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "wrong_or_duplicate_events": self.wrong,
            "rest_events": self.rest_events,
            "non_signing_s": self.non_signing_s,
            "false_events_per_minute": self.false_per_minute,
            "oov_signs": self.oov_signs,
            "oov_events": self.oov_events,
            "oov_events_per_sign": self.oov_per_sign,
            "oov_signs_with_event": self.oov_signs_with_event,
            "delay_p50_s": _percentile(self.delays, 50),
            "delay_p95_s": _percentile(self.delays, 95),
            "delay_mean_s": float(np.mean(self.delays)) if self.delays else None,
        }


def score_streams(
    items: Iterable[tuple[Sequence[TrueSign], Sequence[EmittedEvent], float, float]],
    tolerance: float,
) -> tuple[StreamScore, list[MatchResult]]:
    """Match and score many streams.

    Args:
        items: Per stream: its signs, its events, its first and its last timestamp.
        tolerance: See :func:`match_events`.

    Returns:
        The summed score and each stream's match result.
    """
    total = StreamScore()
    results: list[MatchResult] = []
    for signs, events, t0, t1 in items:
        m = match_events(signs, events, tolerance)
        results.append(m)
        has_known = any(s.known for s in signs)
        total.signs += sum(s.known for s in signs)
        total.oov_signs += sum(not s.known for s in signs)
        if has_known:
            total.events += len(events)
        total.matched += len(m.matched)
        total.delays += m.delays
        total.wrong += m.kind.count("wrong")
        total.rest_events += m.kind.count("rest")
        total.oov_events += m.kind.count("oov")
        total.oov_signs_with_event += len(
            {a for a, k in zip(m.attributed, m.kind, strict=True) if k == "oov"}
        )
        total.non_signing_s += max(0.0, (t1 - t0) - _covered(signs, tolerance, t0, t1))
    return total, results

