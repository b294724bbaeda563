"""Evaluation of live recognition: clips joined into streams, events scored against signs.

Modules (layer: above :mod:`signrt.recognizer`, below the CLI; they use only the public
Recognizer/Stream API):

* :mod:`signrt.evaluate.streams`: continuous streams from isolated clips, with rest frames
  synthesised from the clips' own pose and hand positions;
* :mod:`signrt.evaluate.matching`: events matched to true signs; precision, recall, F1,
  decision delay, false events per minute of rest, out-of-vocabulary events;
* :mod:`signrt.evaluate.calibrate`: temperature scaling and rejection scores from logits;
* :mod:`signrt.evaluate.stream_eval`: the ``signrt eval-stream`` run and its report;
* :mod:`signrt.evaluate.offline`: window and segment decisions replayed offline on
  recorded logits, to compare rejection and boundary methods.
"""

from __future__ import annotations

from .calibrate import fit_temperature, scores
from .matching import EmittedEvent, StreamScore, match_events, score_streams
from .stream_eval import EvalConfig, StreamEvalReport, evaluate_streams, load_clip_set
from .streams import JoinedStream, StreamConfig, TrueSign, build_idle_stream, build_streams

__all__ = [
    "EmittedEvent",
    "EvalConfig",
    "JoinedStream",
    "StreamConfig",
    "StreamEvalReport",
    "StreamScore",
    "TrueSign",
    "build_idle_stream",
    "build_streams",
    "evaluate_streams",
    "fit_temperature",
    "load_clip_set",
    "match_events",
    "score_streams",
    "scores",
]
