"""The timing statistics and reports of signrt.bench (trtexec-style numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signrt.bench import (
    instruction_sets,
    machine_info,
    markdown_table,
    measure,
    summarize,
    write_report,
)
from signrt.errors import OptionError


def test_summarize_known_samples() -> None:
    # 1..10 ms: every statistic can be worked out by hand
    t = summarize([k / 1e3 for k in range(1, 11)])
    assert t.count == 10
    assert (t.min_ms, t.max_ms) == pytest.approx((1.0, 10.0))
    assert t.mean_ms == pytest.approx(5.5) and t.median_ms == pytest.approx(5.5)
    # linear interpolation between order statistics: rank 0.9 * 9 = 8.1 -> 9.1 ms
    assert t.p90_ms == pytest.approx(9.1) and t.p95_ms == pytest.approx(9.55)
    assert t.p99_ms == pytest.approx(9.91)
    assert t.std_ms == pytest.approx(np.sqrt(8.25))
    assert t.throughput == pytest.approx(10 / 0.055)  # calls / total seconds
    assert t.median_us == pytest.approx(5500.0)
    assert t.to_dict()["p99_ms"] == t.p99_ms


def test_summarize_needs_a_sample() -> None:
    with pytest.raises(OptionError, match="at least one sample"):
        summarize([])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-7, 1.0, allow_nan=False), min_size=1, max_size=200))
def test_summarize_orders_its_statistics(samples: list[float]) -> None:
    t = summarize(samples)
    eps = 1e-9
    assert t.min_ms - eps <= t.median_ms <= t.p90_ms + eps
    assert t.p90_ms <= t.p95_ms + eps <= t.p99_ms + 2 * eps <= t.max_ms + 3 * eps
    assert t.min_ms - eps <= t.mean_ms <= t.max_ms + eps
    assert t.throughput == pytest.approx(len(samples) / sum(samples))


def test_measure_counts_calls_and_divides_by_inner() -> None:
    calls = []
    t = measure(lambda: calls.append(1), warmup=3, repeat=7, inner=4)
    assert t.count == 7 and len(calls) == 3 + 7 * 4
    calls.clear()
    t = measure(lambda: calls.append(1), warmup=0, min_time=0.02, max_repeat=5)
    assert t.count == len(calls) <= 5


def test_measure_times_what_it_calls() -> None:
    import time

    t = measure(lambda: time.sleep(0.002), warmup=0, repeat=5)
    assert t.min_ms >= 1.9 and t.median_ms < 50  # a sleep lasts at least its time


def test_trtexec_line() -> None:
    line = summarize([0.001, 0.002]).trtexec()
    assert line.startswith("Latency: min = 1.0000 ms, max = 2.0000 ms, mean = 1.5000 ms")
    assert "percentile(99%)" in line and line.endswith("qps")


def test_markdown_table_and_report(tmp_path: Path) -> None:
    rows = [{"case": "a", "median_ms": 0.123456, "n": 3}, {"case": "b", "median_ms": 12.5}]
    md = markdown_table(rows, ["case", "median_ms", "n"])
    assert md.splitlines() == ["| case | median_ms | n |", "|---|---|---|",
                               "| a | 0.123 | 3 |", "| b | 12.5 |  |"]  # fmt: skip
    assert markdown_table([]) == "_no rows_\n"
    js, mdp = write_report("x", rows, tmp_path / "out", title="T", notes=["n1"],
                           columns=["case", "median_ms"], extra={"k": 1})  # fmt: skip
    doc = json.loads(js.read_text())
    assert doc["rows"] == rows and doc["notes"] == ["n1"] and doc["k"] == 1
    assert doc["machine"]["instruction_set"] in ("avx512", "avx2", "none")
    text = mdp.read_text()
    assert text.startswith("# T\n") and "| a | 0.123 |" in text and text.endswith("- n1\n")


def test_instruction_sets() -> None:
    assert instruction_sets(["sse2", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"]) == "avx512"
    assert instruction_sets(["avx2", "fma", "avx512f"]) == "avx2"  # F alone is not enough
    assert instruction_sets(["avx2"]) == "none"
    assert instruction_sets([]) == "none"
    info = machine_info()
    assert info["cores"] and info["instruction_set"] in ("avx512", "avx2", "none")
