"""Timing harness and reports shared by ``benches/`` and ``signrt bench``.

Latency statistics follow trtexec's report (min, max, mean, median and percentiles, in ms,
plus throughput). Reports are written as JSON (machine-readable) and a Markdown table (for
README and notes) side by side.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._fs import write_text_atomic
from .._version import package_version
from ..errors import OptionError

__all__ = [
    "Timing",
    "instruction_sets",
    "machine_info",
    "markdown_table",
    "measure",
    "summarize",
    "write_report",
]


@dataclass(frozen=True)
class Timing:
    """Latency statistics of repeated calls, in milliseconds (trtexec-style).

    Attributes:
        count: Number of timed calls.
        min_ms, max_ms, mean_ms, median_ms, p90_ms, p95_ms, p99_ms, std_ms: Statistics.
        throughput: Calls per second (count / total time).
    """

    count: int
    min_ms: float
    max_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    std_ms: float
    throughput: float

    @property
    def median_us(self) -> float:
        """Median latency in microseconds."""
        return self.median_ms * 1e3

    def to_dict(self) -> dict[str, float | int]:
        """Return the statistics as a plain dict (for JSON)."""
        return asdict(self)

    def trtexec(self) -> str:
        """Format like trtexec's "Latency:" line."""
        return (
            f"Latency: min = {self.min_ms:.4f} ms, max = {self.max_ms:.4f} ms, "
            f"mean = {self.mean_ms:.4f} ms, median = {self.median_ms:.4f} ms, "
            f"percentile(90%) = {self.p90_ms:.4f} ms, percentile(95%) = {self.p95_ms:.4f} ms, "
            f"percentile(99%) = {self.p99_ms:.4f} ms; Throughput: {self.throughput:.1f} qps"
        )


def summarize(samples_s: Sequence[float] | npt.NDArray[Any]) -> Timing:
    """Summarise per-call durations given in seconds."""
    a = np.asarray(samples_s, dtype=np.float64) * 1e3  # ms
    if a.size == 0:
        raise OptionError("summarize() needs at least one sample")
    total_s = float(a.sum()) / 1e3
    return Timing(
        count=int(a.size),
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        mean_ms=float(a.mean()),
        median_ms=float(np.median(a)),
        p90_ms=float(np.percentile(a, 90)),
        p95_ms=float(np.percentile(a, 95)),
        p99_ms=float(np.percentile(a, 99)),
        std_ms=float(a.std()),
        throughput=float(a.size / total_s) if total_s > 0 else float("inf"),
    )


def measure(
    fn: Callable[[], object],
    *,
    warmup: int = 10,
    repeat: int | None = None,
    min_time: float = 0.5,
    max_repeat: int = 1_000_000,
    inner: int = 1,
) -> Timing:
    """Time ``fn()``: warm up, then call it ``repeat`` times (or until ``min_time`` seconds).

    Args:
        fn: The call to time (no arguments).
        warmup: Untimed calls first.
        repeat: Exact number of timed samples; ``None`` runs until ``min_time`` has passed.
        min_time: Seconds to keep sampling when ``repeat`` is None.
        max_repeat: Upper bound on samples when ``repeat`` is None.
        inner: Calls per sample; each sample is divided by it (use for sub-µs calls).

    Returns:
        The latency statistics of one call.
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    clock = time.perf_counter
    start = clock()
    while True:
        t0 = clock()
        for _ in range(inner):
            fn()
        samples.append((clock() - t0) / inner)
        if repeat is not None:
            if len(samples) >= repeat:
                break
        elif clock() - start >= min_time or len(samples) >= max_repeat:
            break
    return summarize(samples)


def instruction_sets(flags: Iterable[str]) -> str:
    """The widest x86-64 vector extension in a CPU flag list (``avx512``, ``avx2`` or ``none``).

    Args:
        flags: CPU flags as ``/proc/cpuinfo`` lists them (``avx2``, ``avx512f``, ...).

    Returns:
        ``avx512`` when AVX-512 F/BW/VL are all present, else ``avx2`` (AVX2 + FMA), else
        ``none``.
    """
    have = set(flags)
    if {"avx512f", "avx512bw", "avx512vl"} <= have:
        return "avx512"
    if {"avx2", "fma"} <= have:
        return "avx2"
    return "none"


def machine_info() -> dict[str, Any]:
    """Describe the machine a benchmark ran on (CPU, instruction set, cores, versions)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("model name", "flags"):
                    fields.setdefault(key.strip(), value.strip())
                if len(fields) == 2:  # the first processor says it all
                    break
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    flags = fields.get("flags", "").split()
    return {
        "cpu": cpu,
        "instruction_set": instruction_sets(flags),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "signrt": package_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v == 0 or 0.01 <= abs(v) < 1e5:
            return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return f"{v:.3g}"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render rows (dicts) as a Markdown table; columns default to the first row's keys."""
    if not rows:
        return "_no rows_\n"
    cols = list(columns) if columns is not None else list(rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
    columns: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md`` (atomically).

    Args:
        name: File stem.
        rows: One dict per measured configuration.
        out_dir: Destination folder (created if missing).
        title: Markdown heading; defaults to the name.
        notes: Lines printed under the table (targets, ratios, caveats).
        columns: Column order of the table (default: keys of the first row).
        extra: More JSON fields (e.g. ratios, targets).

    Returns:
        The JSON and Markdown paths.
    """
    out = Path(out_dir)
    info = machine_info()
    doc: dict[str, Any] = {"name": name, "machine": info, "rows": list(rows), "notes": list(notes)}
    if extra:
        doc.update(extra)
    json_path, md_path = out / f"{name}.json", out / f"{name}.md"
    write_text_atomic(json_path, json.dumps(doc, indent=2, default=float) + "\n")
    md = [f"# {title or name}", "", f"Machine: {info['cpu']} ({info['instruction_set']}), "
          f"{info['cores']} cores, "
          f"Python {info['python']}, numpy {info['numpy']}, signrt {info['signrt']}, "
          f"{info['date']}", "", markdown_table(rows, columns)]
    md += [f"- {n}" for n in notes]
    write_text_atomic(md_path, "\n".join(md).rstrip() + "\n")
    return json_path, md_path
