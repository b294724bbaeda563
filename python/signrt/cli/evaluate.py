"""The ``signrt eval-stream``, ``tune-stream`` and ``background-data`` commands.

See :mod:`signrt.cli`.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``eval-stream``, ``tune-stream`` and ``background-data``."""
    from ..evaluate.streams import REST_KINDS

    p = sub.add_parser(
        "eval-stream",
        help="live recognition on clips joined into continuous streams: P/R/F1, delay, "
        "false events, unknown signs",
        description=(
            "Join a clip folder's clips into continuous streams with synthetic rest between "
            "the signs, push them frame by frame through both stream modes and match the "
            "events to the true signs. Reports precision, recall, F1, decision delay, false "
            "events per minute of rest, events raised by out-of-vocabulary signs (--unknown) "
            "and the isolated top-1 of the same clips; writes JSON + Markdown (--out) and a "
            "timeline PNG (--timeline)."
        ),
    )
    p.add_argument("model", metavar="MODEL", help="model file (.onnx)")
    p.add_argument("--data", required=True, help="dataset folder of in-vocabulary clips")
    p.add_argument("--unknown", metavar="DIR", help="clips of signs the model was not trained on")
    p.add_argument("--manifest", metavar="CSV",
                   help="CSV (path, session) naming each clip's signer/session: one group per "
                   "stream")  # fmt: skip
    p.add_argument("--modes", default="window,segment", help="comma-separated (default both)")
    p.add_argument("--rest", type=float, default=0.6, help="seconds of rest between signs")
    p.add_argument("--rest-kind", choices=REST_KINDS, default="out_of_view",
                   help="hands out of view, resting low in view, or idle movements")  # fmt: skip
    p.add_argument("--idle-amplitude", type=float, default=0.015,
                   help="idle rest: peak hand drift in image units")  # fmt: skip
    p.add_argument("--signs-per-stream", type=int, default=10)
    p.add_argument("--fps", type=float, default=25.0, help="frame rate of the clips")
    p.add_argument("--idle-seconds", type=float, default=60.0,
                   help="length of an extra rest-only stream (0: none)")  # fmt: skip
    p.add_argument("--tolerance", type=float, default=1.0,
                   help="seconds after a sign's end within which its event counts")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--window-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="window-mode Stream option (repeatable), e.g. threshold=0.5")  # fmt: skip
    p.add_argument("--segment-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="segment-mode Stream option (repeatable)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="cpu, cuda, tensorrt or auto")
    p.add_argument("--out", metavar="STEM", help="write STEM.json and STEM.md")
    p.add_argument("--timeline", metavar="FILE.png", help="write the timeline plot")
    p.add_argument("--json", action="store_true", help="print the JSON report")
    p.set_defaults(func=_cmd_eval_stream)

    t = sub.add_parser(
        "tune-stream",
        help="pick the stream settings on validation streams and store them in the model",
        description=(
            "Join validation clips into continuous streams (every rest kind, plus unknown "
            "signs with --unknown and rest-only time), search threshold, confirmation and "
            "stride (window mode) and threshold, rest and motion (segment mode) through the "
            "real Stream, and write the chosen settings into the model's metadata "
            "('signrt.stream'); Recognizer.stream(), `signrt serve` and `signrt demo` then "
            "use them as defaults (explicit options still win)."
        ),
    )
    t.add_argument("model", metavar="MODEL", help="model file (.onnx), rewritten in place "
                   "unless --output is given")  # fmt: skip
    t.add_argument("--data", required=True, help="validation clips of the model's signs")
    t.add_argument("--unknown", metavar="DIR", help="validation clips of signs it does not know")
    t.add_argument("--manifest", metavar="CSV", help="CSV (path, session): one group per stream")
    t.add_argument("--modes", default="window,segment", help="comma-separated (default both)")
    t.add_argument("--fps", type=float, default=25.0, help="frame rate of the clips")
    t.add_argument("--rest", type=float, default=0.6, help="seconds of rest between signs")
    t.add_argument("--idle-seconds", type=float, default=60.0,
                   help="rest-only seconds per rest kind (0: none)")  # fmt: skip
    t.add_argument("--oov-max", type=float, default=0.1,
                   help="most unknown-sign events per unknown sign (default 0.1)")  # fmt: skip
    t.add_argument("--fpm-max", type=float, default=0.2,
                   help="most false events per minute of rest (default 0.2)")  # fmt: skip
    t.add_argument("--thresholds", help="comma-separated score thresholds to try "
                   "(default 0.4,0.5,...,0.9,0.95,0.98,0.99,0.995,0.999)")  # fmt: skip
    t.add_argument("--scores", help="score kinds to try: probability and/or energy "
                   "(default both; the threshold's scale)")
    t.add_argument("--strides", help="window mode: strides to try (default 2,4)")
    t.add_argument("--confirms", help="window mode: confirmation counts to try (default 2,3,4,6)")
    t.add_argument("--rest-seconds", help="segment mode: rest lengths to try, seconds "
                   "(default 0.32,0.48,0.64)")  # fmt: skip
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu", help="cpu, cuda, tensorrt or auto")
    t.add_argument("-o", "--output", metavar="FILE", help="write the tuned model here")
    t.add_argument("--dry-run", action="store_true", help="print the settings, write nothing")
    t.set_defaults(func=_cmd_tune_stream)

    b = sub.add_parser(
        "background-data",
        help="a training folder with an explicit background class (rest, transitions)",
        description=(
            "Link the clips of a training folder into OUT/<sign>/ and add OUT/__background__/: "
            "windows cut from continuous streams of those clips (hands resting low in view, "
            "idle movements), mostly rest and the transitions into and out of signs. A model "
            "trained on OUT (`signrt train --data OUT --val-data VAL`) answers 'unknown' for "
            "such motion, and its streams never emit it."
        ),
    )
    b.add_argument("--data", required=True, help="training clips (only these are used)")
    b.add_argument("--out", required=True, metavar="DIR", help="the new training folder")
    b.add_argument("--clips", type=int, default=40, help="background clips (default 40)")
    b.add_argument("--other", metavar="DIR", help="clips of other words (outside the "
                   "vocabulary) to add to the background class")  # fmt: skip
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(func=_cmd_background_data)


def _options(items: list[str], flag: str) -> dict[str, Any]:
    from ..errors import SignrtError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SignrtError(f"{flag} expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _cmd_eval_stream(args: argparse.Namespace) -> int:
    from ..evaluate.stream_eval import EvalConfig, evaluate_streams, load_clip_set
    from ..evaluate.streams import StreamConfig
    from ..recognizer import load

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    cfg = EvalConfig(
        streams=StreamConfig(
            rest=args.rest, rest_kind=args.rest_kind, signs_per_stream=args.signs_per_stream,
            fps=args.fps, seed=args.seed, idle_amplitude=args.idle_amplitude,
        ),
        tolerance=args.tolerance,
        idle_seconds=args.idle_seconds,
        modes=modes,
        options={
            "window": _options(args.window_opt, "--window-opt"),
            "segment": _options(args.segment_opt, "--segment-opt"),
        },
    )  # fmt: skip
    rec = load(args.model, device=args.device)
    data = load_clip_set(args.data, manifest=args.manifest)
    unknown = load_clip_set(args.unknown, manifest=args.manifest) if args.unknown else None
    report = evaluate_streams(rec, data, unknown=unknown, config=cfg, model_path=args.model)
    if args.out:
        js, md = report.save(args.out)
        log.info("wrote %s and %s", js, md)
    if args.timeline:
        report.save_timeline_png(args.timeline)
    if args.json:
        print(report.to_json())
    else:
        print(report.to_markdown())
    return 0


def _cmd_background_data(args: argparse.Namespace) -> int:
    from ..evaluate.background import BackgroundConfig, write_background_dataset

    linked, written = write_background_dataset(
        args.data, args.out, BackgroundConfig(clips=args.clips, seed=args.seed), other=args.other
    )
    print(f"{args.out}: {linked} training clips linked, {written} background clips written")
    return 0


def _cmd_tune_stream(args: argparse.Namespace) -> int:
    from ..errors import ModelError, StreamOptionError
    from ..evaluate.stream_eval import load_clip_set
    from ..evaluate.tune import TuneConfig, tune_stream
    from ..recognizer import load
    from ..runtime.model import save_onnx, stamp_stream_settings

    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    grid: dict[str, Any] = {}
    for name, kind in (("thresholds", float), ("strides", int), ("confirms", int),
                       ("rest_seconds", float)):  # fmt: skip
        text = getattr(args, name)
        if text is not None:
            try:
                grid[name] = tuple(kind(v) for v in text.split(",") if v.strip())
            except ValueError as exc:
                raise StreamOptionError(f"--{name.replace('_', '-')} expects comma-separated "
                                        f"numbers, got {text!r}") from exc  # fmt: skip
    if args.scores is not None:
        grid["scores"] = tuple(v.strip() for v in args.scores.split(",") if v.strip())
    cfg = TuneConfig(fps=args.fps, rest=args.rest, idle_seconds=args.idle_seconds,
                     oov_max=args.oov_max, fpm_max=args.fpm_max, seed=args.seed,
                     **grid)  # fmt: skip
    rec = load(args.model, device=args.device)
    data = load_clip_set(args.data, manifest=args.manifest)
    unknown = load_clip_set(args.unknown, manifest=args.manifest) if args.unknown else None
    bad = [m for m in modes if m not in ("window", "segment")]
    if bad or not modes:
        raise StreamOptionError(f"--modes takes window and/or segment, got {args.modes!r}")
    try:
        settings = tune_stream(rec, data, unknown=unknown, config=cfg, modes=modes)
    finally:
        rec.close()
    kept = {m: v for m, v in rec.model.stream.items() if m not in settings}
    settings = {**kept, **settings}
    print(json.dumps({k: v for k, v in settings.items() if k != "tuning"}, indent=2))
    if args.dry_run:
        return 0
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - the train extra brings onnx
        raise ModelError("tune-stream needs the onnx package (pip install signrt[train])") from exc
    model = onnx.load(args.model)
    stamp_stream_settings(model, settings)
    dest = save_onnx(model, args.output or args.model)
    log.info("wrote the stream settings into %s", dest)
    return 0
