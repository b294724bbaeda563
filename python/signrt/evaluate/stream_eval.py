"""Live-recognition evaluation: isolated clips joined into streams, run through ``Stream``.

The clips of a dataset folder are joined into continuous streams with synthetic rest
between the signs (:mod:`signrt.evaluate.streams`); every stream is pushed frame by frame
through the public API (``rec.stream(mode=..., **options)``, ``stream.push(frame,
timestamp)``, ``stream.flush()``) in each mode; the events are matched to the true signs
(:mod:`signrt.evaluate.matching`). Clips of words outside the model's vocabulary
(``unknown``) are joined into streams of their own and measure how often unknown signs
become events; an extra stream of rest only (``idle_seconds``) measures false events while
nobody signs. The isolated top-1 of ``rec.predict`` on the same in-vocabulary clips is
reported beside the stream figures.

Example:
    >>> rec = signrt.load("model.onnx")
    >>> data = load_clip_set("clips/")                         # ClipSetOnDisk
    >>> report = evaluate_streams(rec, data, unknown=load_clip_set("oov/"))
    >>> report.save("benches/results/stream")                  # .json + .md
    >>> report.save_timeline_png("timeline.png")
"""

from __future__ import annotations

import csv
import json
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from .._fs import atomic_write
from ..errors import DataError, OptionError
from .matching import EmittedEvent, MatchResult, StreamScore, score_streams
from .streams import FloatArray, JoinedStream, StreamConfig, build_idle_stream, build_streams

__all__ = [
    "MODES",
    "ClipSetOnDisk",
    "EvalConfig",
    "StreamEvalReport",
    "evaluate_streams",
    "load_clip_set",
    "run_stream",
]

log = logging.getLogger(__name__)

MODES: Final[tuple[str, ...]] = ("window", "segment")


# --------------------------------------------------------------------------------- data
@dataclass
class ClipSetOnDisk:
    """Clips read from a dataset folder.

    Attributes:
        root: The folder.
        clips: (T_i, 543, 3) float32 clips.
        labels: The sign of each clip.
        groups: Signer/session of each clip (None where unknown).
        paths: The clip files.
    """

    root: str
    clips: list[FloatArray]
    labels: list[str]
    groups: list[object] | None
    paths: list[str]

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, keep: Sequence[bool]) -> ClipSetOnDisk:
        """The clips where ``keep`` is True."""
        idx = [i for i, k in enumerate(keep) if k]
        return ClipSetOnDisk(
            self.root,
            [self.clips[i] for i in idx],
            [self.labels[i] for i in idx],
            None if self.groups is None else [self.groups[i] for i in idx],
            [self.paths[i] for i in idx],
        )


def _manifest_groups(manifest: Path) -> dict[Path, str]:
    """Resolved clip path -> group, from a CSV with ``path`` and ``session`` (or group)."""
    out: dict[Path, str] = {}
    with open(manifest, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        key = next((c for c in ("session", "group", "participant_id", "signer") if c in cols), None)
        if "path" not in cols or key is None:
            raise DataError(
                f"{manifest}: a manifest needs a 'path' column and one of session, group, "
                f"participant_id, signer; it has {', '.join(cols) or 'none'}"
            )
        for row in reader:
            out[(manifest.parent / row["path"]).resolve()] = str(row[key])
    return out


def load_clip_set(root: str | Path, *, manifest: str | Path | None = None) -> ClipSetOnDisk:
    """Read every clip of a dataset folder (Kaggle layout or clip folder).

    Args:
        root: The folder (see :func:`signrt.io.index_dataset`).
        manifest: Optional CSV (columns ``path`` relative to the CSV's folder, and
            ``session``/``group``/``participant_id``/``signer``) naming each clip's group;
            clips are matched by their resolved path (symbolic links are followed). Kaggle
            folders give the participant as the group without a manifest.

    Returns:
        The clips, labels and groups.

    Raises:
        DataError: If the folder is not a dataset, a clip is unreadable, or a manifest is
            given and does not name some clip.
    """
    from ..io import index_dataset

    records = index_dataset(root)
    clips = [r.read() for r in records]
    groups: list[object] | None = None
    if manifest is not None:
        table = _manifest_groups(Path(manifest))
        missing = [r.path for r in records if r.path.resolve() not in table]
        if missing:
            raise DataError(
                f"{manifest}: names no group for {len(missing)} clip(s), e.g. {missing[0]}"
            )
        groups = [table[r.path.resolve()] for r in records]
    elif all(r.participant_id is not None for r in records):
        groups = [r.participant_id for r in records]
    return ClipSetOnDisk(
        str(root), clips, [r.sign for r in records], groups, [str(r.path) for r in records]
    )


# ------------------------------------------------------------------------------ running
def run_stream(rec: Any, stream: JoinedStream, mode: str, options: Mapping[str, Any]
               ) -> tuple[list[EmittedEvent], dict[str, Any]]:  # fmt: skip
    """Push one stream through a fresh ``rec.stream(mode, **options)``.

    Args:
        rec: A :class:`signrt.Recognizer` (only ``stream`` is used).
        stream: The joined stream.
        mode: ``window`` or ``segment``.
        options: Stream options.

    Returns:
        The events (emission time = timestamp of the frame that returned them; flush events
        at the last timestamp) and counters (frames, engine calls, seconds spent).
    """
    st = rec.stream(mode=mode, **dict(options))
    out: list[EmittedEvent] = []
    t0 = time.perf_counter()
    ts = 0.0
    for frame, ts_ in zip(stream.frames, stream.timestamps.tolist(), strict=True):
        ts = float(ts_)
        for ev in st.push(frame, ts):
            out.append(EmittedEvent(ev.label, ts, float(ev.score), float(ev.start), float(ev.end)))
    for ev in st.flush():
        out.append(EmittedEvent(ev.label, ts, float(ev.score), float(ev.start), float(ev.end)))
    wall = time.perf_counter() - t0
    return out, {
        "frames": len(stream.frames),
        "engine_calls": int(getattr(st, "engine_calls", -1)),
        "wall_s": wall,
    }


@dataclass
class EvalConfig:
    """What :func:`evaluate_streams` runs.

    Attributes:
        streams: How clips are joined (rest length and kind, stream length, fps, seed).
        tolerance: Seconds after a sign's end within which its event counts.
        idle_seconds: Length of the extra rest-only stream (0: none).
        modes: Stream modes to run.
        options: Per mode, the ``rec.stream`` options (empty: the Stream's defaults).
    """

    streams: StreamConfig = field(default_factory=StreamConfig)
    tolerance: float = 1.0
    idle_seconds: float = 60.0
    modes: tuple[str, ...] = MODES
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise OptionError(f"modes must be a non-empty subset of {MODES}, got {self.modes}")
        if self.tolerance < 0 or self.idle_seconds < 0:
            raise OptionError("tolerance and idle_seconds must be >= 0")


@dataclass
class _ModeRun:
    score: StreamScore
    matches: list[MatchResult]
    events: list[list[EmittedEvent]]
    counters: dict[str, float]


@dataclass
class StreamEvalReport:
    """The figures of one evaluation, per mode, and what they were measured on.

    Attributes:
        config: The evaluation settings.
        model: Model path, architecture, labels count, spec fingerprint.
        data: Dataset folders and clip counts.
        isolated: ``rec.predict`` top-1 on the in-vocabulary clips.
        modes: Per mode, :meth:`StreamScore.to_dict` plus counters.
        streams: The joined streams (kept for the timeline; not written to JSON).
        runs: Per mode, the events and matches of every stream.
        environment: Python, platform, numpy, the native SIMD path.
    """

    config: dict[str, Any]
    model: dict[str, Any]
    data: dict[str, Any]
    isolated: dict[str, Any]
    modes: dict[str, dict[str, Any]]
    streams: list[JoinedStream] = field(default_factory=list, repr=False)
    runs: dict[str, _ModeRun] = field(default_factory=dict, repr=False)
    environment: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report (figures, settings, environment; no frames)."""
        return {
            "kind": "signrt.eval-stream",
            "config": self.config,
            "model": self.model,
            "data": self.data,
            "isolated": self.isolated,
            "modes": self.modes,
            "environment": self.environment,
        }

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def to_markdown(self) -> str:
        """A Markdown summary: one row per mode, the isolated top-1 beside it."""
        c, d = self.config, self.data
        sc = c["streams"]
        lines = [
            "# Live recognition on joined streams (`signrt eval-stream`)",
            "",
            f"Model `{self.model['path']}` ({self.model.get('architecture')}, "
            f"{self.model['num_labels']} signs). Data `{d['data']}`: {d['known_clips']} "
            f"in-vocabulary clips in {d['known_streams']} streams"
            + (
                f"; `{d['unknown']}`: {d['unknown_clips']} out-of-vocabulary clips"
                if d.get("unknown")
                else ""
            )
            + (f"; {c['idle_seconds']:.0f} s of rest only" if c["idle_seconds"] else "")
            + ".",
            f"Rest {sc['rest']} s `{sc['rest_kind']}` between signs, {sc['fps']} fps, "
            f"tolerance {c['tolerance']} s after the sign's end, seed {sc['seed']}.",
            "",
            "| mode | options | precision | recall | F1 | isolated top-1 | delay p50 / p95 (s) "
            "| false events / min rest | OOV events / sign |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        iso = self.isolated.get("top1")
        for mode, m in self.modes.items():
            opts = c["options"].get(mode) or {}
            stored = (c.get("model_settings") or {}).get(mode) or {}
            shown = _fmt_opts(opts) if opts or not stored else f"model's: {_fmt_opts(stored)}"
            if opts and stored:
                shown += f" (over the model's: {_fmt_opts(stored)})"
            lines.append(
                f"| {mode} | {shown} | {m['precision']:.3f} | {m['recall']:.3f} | "
                f"**{m['f1']:.3f}** | {_fmt(iso)} | {_fmt(m['delay_p50_s'], 2)} / "
                f"{_fmt(m['delay_p95_s'], 2)} | {_fmt(m['false_events_per_minute'], 2)} | "
                f"{_fmt(m['oov_events_per_sign'], 2)} |"
            )
        lines += [
            "",
            "Events: matched / wrong or duplicate / rest / OOV — "
            + "; ".join(
                f"{mode}: {m['matched']} / {m['wrong_or_duplicate_events']} / "
                f"{m['rest_events']} / {m['oov_events']} (of {m['signs']} signs, "
                f"{m['oov_signs']} OOV signs, {m['non_signing_s']:.0f} s non-signing)"
                for mode, m in self.modes.items()
            )
            + ".",
            "",
        ]
        return "\n".join(lines)

    def save(self, stem: str | Path) -> tuple[Path, Path]:
        """Write ``stem.json`` and ``stem.md``; returns both paths."""
        s = Path(stem)
        js, md = s.with_suffix(".json"), s.with_suffix(".md")
        with atomic_write(js, make_parents=True) as fh:
            fh.write((self.to_json() + "\n").encode())
        with atomic_write(md, make_parents=True) as fh:
            fh.write(self.to_markdown().encode())
        return js, md

    def save_timeline_png(
        self, path: str | Path, *, streams: int = 3, seconds: float = 40.0
    ) -> Path:
        """Plot true signs against each mode's events for the first few streams.

        One panel per stream (the first in-vocabulary streams, then the first unknown and
        idle ones): true signs as spans (grey for out-of-vocabulary), one row of event
        markers per mode at their emission times (green: matched; red: wrong/duplicate;
        orange: raised by an unknown sign; purple: in rest).

        Args:
            path: The PNG file.
            streams: Panels to draw.
            seconds: Seconds shown per panel (from the stream's start).

        Returns:
            The path written.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        picks = _timeline_picks(self.streams, streams)
        modes = list(self.runs)
        fig, axes = plt.subplots(len(picks), 1, figsize=(14, 1.2 + 1.3 * len(picks)),
                                 squeeze=False)  # fmt: skip
        colors = {"match": "tab:green", "wrong": "tab:red", "oov": "tab:orange",
                  "rest": "tab:purple"}  # fmt: skip
        for ax, si in zip(axes[:, 0], picks, strict=True):
            st = self.streams[si]
            for s in st.signs:
                if s.start > seconds:
                    break
                ax.axvspan(s.start, s.end, ymin=0.0, ymax=1.0,
                           color="tab:blue" if s.known else "0.6", alpha=0.18)  # fmt: skip
                ax.text((s.start + s.end) / 2, len(modes) + 0.15, s.label, ha="center",
                        va="bottom", fontsize=7, rotation=30)  # fmt: skip
            for r, mode in enumerate(modes):
                run = self.runs[mode]
                for ev, kind in zip(run.events[si], run.matches[si].kind, strict=True):
                    if ev.emit > seconds:
                        continue
                    ax.plot([ev.emit], [r + 0.5], marker="v", ms=7, color=colors[kind])
                    ax.text(ev.emit, r + 0.15, ev.label, fontsize=6, ha="center",
                            color=colors[kind])  # fmt: skip
            ax.set_xlim(0, min(seconds, st.duration))
            ax.set_ylim(0, len(modes) + 1.2)
            ax.set_yticks([r + 0.5 for r in range(len(modes))], modes)
            ax.set_title(st.name, fontsize=8, loc="left")
        axes[-1, 0].set_xlabel("time (s); spans: true signs (grey: unknown); markers: events")
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
        plt.close(fig)
        return out


def _timeline_picks(streams: Sequence[JoinedStream], n: int) -> list[int]:
    known = [i for i, s in enumerate(streams) if s.signs and s.signs[0].known]
    other = [i for i, s in enumerate(streams) if i not in known]
    picks = known[: max(1, n - min(2, len(other)))]
    picks += other[: n - len(picks)]
    return picks[:n] or [0]


def _fmt(x: float | None, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _fmt_opts(opts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) or "defaults"


def evaluate_streams(
    rec: Any,
    data: ClipSetOnDisk,
    *,
    unknown: ClipSetOnDisk | None = None,
    config: EvalConfig | None = None,
    model_path: str | None = None,
) -> StreamEvalReport:
    """Run the whole evaluation (see the module docs).

    Clips of ``data`` whose sign is not among the model's labels are treated as unknown
    signs (with a warning), like the clips of ``unknown``.

    Args:
        rec: A :class:`signrt.Recognizer`.
        data: In-vocabulary clips.
        unknown: Out-of-vocabulary clips, or None.
        config: Settings (default :class:`EvalConfig`).
        model_path: The model's path, for the report.

    Returns:
        The report.

    Raises:
        DataError: If ``data`` holds no clip of a sign the model knows.
    """
    cfg = config or EvalConfig()
    vocab = set(rec.labels)
    in_vocab = [lab in vocab for lab in data.labels]
    known = data.subset(in_vocab)
    if len(known) == 0:
        raise DataError(
            f"{data.root}: none of its signs is among the model's {len(vocab)} labels "
            f"(e.g. {', '.join(sorted(vocab)[:5])})"
        )
    strays = data.subset([not k for k in in_vocab])
    if len(strays):
        log.warning(
            "%d clip(s) of %s are of signs the model does not know (%s); treated as unknown",
            len(strays), data.root, ", ".join(sorted(set(strays.labels))[:5]),
        )  # fmt: skip
    oov_sets = [s for s in (strays, unknown) if s is not None and len(s)]
    oov_clips = [c for s in oov_sets for c in s.clips]
    oov_labels = [lab for s in oov_sets for lab in s.labels]
    oov_groups: list[object] | None = None
    if oov_sets and all(s.groups is not None for s in oov_sets):
        oov_groups = [g for s in oov_sets for g in (s.groups or [])]

    # isolated top-1 of the same clips
    t0 = time.perf_counter()
    preds = [rec.predict(c) for c in known.clips]
    correct = sum(p.label == lab for p, lab in zip(preds, known.labels, strict=True))
    oov_preds = [rec.predict(c) for c in oov_clips]
    isolated = {
        "clips": len(known),
        "top1": correct / len(known),
        "no_signer": sum(p.no_signer for p in preds),
        "mean_top1_score_known": float(np.mean([p.score for p in preds])),
        "mean_top1_score_unknown": (
            float(np.mean([p.score for p in oov_preds])) if oov_preds else None
        ),
        "wall_s": time.perf_counter() - t0,
    }

    sc = cfg.streams
    streams = build_streams(known.clips, known.labels, sc, groups=known.groups, name="known")
    if oov_clips:
        streams += build_streams(
            oov_clips, oov_labels, sc, known=[False] * len(oov_clips), groups=oov_groups,
            name="unknown",
        )  # fmt: skip
    if cfg.idle_seconds > 0:
        streams.append(build_idle_stream(known.clips + oov_clips, sc, cfg.idle_seconds))

    runs: dict[str, _ModeRun] = {}
    modes: dict[str, dict[str, Any]] = {}
    for mode in cfg.modes:
        opts = cfg.options.get(mode, {})
        events: list[list[EmittedEvent]] = []
        frames = calls = 0
        wall = 0.0
        for st in streams:
            ev, cnt = run_stream(rec, st, mode, opts)
            events.append(ev)
            frames += int(cnt["frames"])
            calls += int(cnt["engine_calls"])
            wall += float(cnt["wall_s"])
        score, matches = score_streams(
            (
                (st.signs, ev, float(st.timestamps[0]), float(st.timestamps[-1]))
                for st, ev in zip(streams, events, strict=True)
            ),
            cfg.tolerance,
        )
        runs[mode] = _ModeRun(score, matches, events, {"frames": frames, "engine_calls": calls})
        modes[mode] = {
            **score.to_dict(),
            "frames": frames,
            "engine_calls": calls,
            "wall_s": wall,
        }
        log.info("%s: F1 %.3f (P %.3f R %.3f)", mode, score.f1, score.precision, score.recall)

    info = dict(getattr(rec, "info", {}) or {})
    spec = getattr(rec, "spec", None)
    model = {
        "path": model_path or "",
        "architecture": info.get("architecture"),
        "num_labels": len(rec.labels),
        "spec_fingerprint": getattr(spec, "fingerprint", None),
        "max_len": getattr(spec, "max_len", None),
    }
    data_info = {
        "data": data.root,
        "known_clips": len(known),
        "known_signs": len(set(known.labels)),
        "known_streams": sum(1 for s in streams if s.signs and s.signs[0].known),
        "unknown": unknown.root if unknown is not None else None,
        "unknown_clips": len(oov_clips),
        "unknown_signs": len(set(oov_labels)),
        "grouped_by": "group" if known.groups is not None else None,
        "stream_seconds": float(sum(s.duration for s in streams)),
    }
    return StreamEvalReport(
        config={
            "streams": asdict(sc),
            "tolerance": cfg.tolerance,
            "idle_seconds": cfg.idle_seconds,
            "modes": list(cfg.modes),
            "options": {m: dict(cfg.options.get(m, {})) for m in cfg.modes},
            # the model's tuned settings (signrt.stream): the defaults under the options
            "model_settings": {m: dict(v) for m, v in
                               (getattr(rec, "stream_defaults", None) or {}).items()
                               if m in cfg.modes},
        },
        model=model,
        data=data_info,
        isolated=isolated,
        modes=modes,
        streams=streams,
        runs=runs,
        environment=_environment(),
    )


def _environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
    }
    from .. import _native

    env["simd"] = _native.simd
    return env
