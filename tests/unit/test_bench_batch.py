"""The batch benchmark's pure parts: result math, targets, the JSON document, options and the plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import batch, results
from benchmarks.resources import ResourceSampler
from benchmarks.results import BASELINE, PIPELINE, RAW, Measurement
from mysimbdp_tasks.cli import build_parser

pytestmark = pytest.mark.unit

MIB = 1024 * 1024


def m(kind: str, rows: int, seconds: float, size_mb: float = 50, fmt: str = "csv", rss_mb: float = 90,
      in_table: int | None = None, **kwargs: Any) -> Measurement:
    return Measurement(case=f"{kind} {fmt} {size_mb:g} MB", kind=kind, fmt=fmt, size_mb=size_mb, rows=rows,
                       bytes=int(size_mb * MIB), seconds=seconds, peak_rss_bytes=int(rss_mb * MIB),
                       peak_sum_rss_bytes=int(3 * rss_mb * MIB), expected_rows=rows,
                       rows_in_cassandra=rows if in_table is None else in_table, **kwargs)


RUN = [
    m(PIPELINE, 4_000, 0.2, size_mb=1),
    m(PIPELINE, 200_000, 5.0),  # 40,000 rows/s
    m(PIPELINE, 80_000, 4.0, size_mb=10, fmt="json"),
    m(BASELINE, 20_000, 20.0, note="rate on a PREFIX"),  # 1,000 rows/s
    m(RAW, 200_000, 50.0),  # 4,000 rows/s
]


def test_rates_are_rows_and_mebibytes_per_second() -> None:
    one = m(PIPELINE, 10_000, 2.0, size_mb=8)
    assert one.rows_per_s == 5_000
    assert one.mb_per_s == 4.0
    assert m(PIPELINE, 10, 0.0).rows_per_s == 0.0  # no division by zero


def test_ratios_compare_csv_cases_with_the_baseline_and_the_largest_with_raw() -> None:
    r = results.ratios(RUN)
    assert r["largest_case"] == "pipeline csv 50 MB"
    assert r["pipeline_vs_baseline"] == pytest.approx(40.0)
    assert r["pipeline_vs_raw"] == pytest.approx(10.0)
    assert r["per_size_vs_baseline"] == {"pipeline csv 1 MB": pytest.approx(20.0),
                                         "pipeline csv 50 MB": pytest.approx(40.0)}  # not the JSON case


def test_targets_say_met_not_met_or_not_measured() -> None:
    met = {t.name: t.met for t in results.targets(RUN)}
    assert list(met.values()) == [True, True, True]
    slow = [m(PIPELINE, 200_000, 10.0, rss_mb=350), *RUN[3:]]  # 20,000 rows/s: 20x baseline, 5x raw
    assert [t.met for t in results.targets(slow)] == [False, True, False]
    assert [t.met for t in results.targets(RUN[:3])] == [None, None, True]  # no baseline, no raw


def test_a_row_count_mismatch_is_not_verified_and_shows_in_the_table() -> None:
    short = m(PIPELINE, 1_000, 1.0, in_table=999)
    assert not short.verified
    assert "MISMATCH (999 in table, 1,000 expected)" in results.table([short])
    doc = results.report([short], {})
    assert doc["verified"] is False


def test_the_json_document_has_every_measurement_ratio_and_target() -> None:
    doc = results.report(RUN, {"started_at": "2026-01-01T00:00:00+00:00"})
    json.dumps(doc)  # JSON-able as it is
    assert doc["benchmark"] == "batch" and doc["started_at"].startswith("2026")
    assert [x["kind"] for x in doc["measurements"]] == [PIPELINE, PIPELINE, PIPELINE, BASELINE, RAW]
    first = doc["measurements"][1]
    assert {"rows", "mb", "seconds", "rows_per_s", "mb_per_s", "peak_rss_mb", "rows_in_cassandra",
            "expected_rows", "verified"} <= set(first)
    assert first["rows_per_s"] == 40_000.0 and first["peak_rss_mb"] == 90.0
    assert doc["ratios"]["pipeline_vs_baseline"] == 40.0
    assert len(doc["targets"]) == 3 and doc["verified"] is True


def test_summary_says_the_baseline_is_a_prefix_rate() -> None:
    text = results.summary(RUN)
    assert "pipeline csv 50 MB / raw driver: 10.0x" in text
    assert "rate on a PREFIX" in text


def test_a_case_that_shared_the_machine_is_flagged_as_noisy() -> None:
    quiet = m(PIPELINE, 1_000, 1.0, details={"usage": {"machine_cpu_s": 10.0, "elsewhere_cpu_s": 0.5}})
    busy = m(RAW, 1_000, 1.0, details={"usage": {"machine_cpu_s": 10.0, "elsewhere_cpu_s": 6.0}})
    assert results.contention(quiet) == pytest.approx(0.05)
    text = results.summary([quiet, busy])
    assert "warning (raw csv 50 MB): other work on the machine used 60% of its CPU time" in text
    assert "warning (pipeline" not in text


def test_measurement_kind_is_checked() -> None:
    with pytest.raises(ValueError, match="kind 'fast'"):
        m("fast", 1, 1.0)


def test_options_quick_shrinks_defaults_but_explicit_options_win() -> None:
    full = batch.parse_options([])
    assert full.sizes == (1, 10, 50) and full.json_mb == 10 and full.baseline_rows == 20_000
    quick = batch.parse_options(["--quick"])
    assert quick.sizes == (1.0,) and quick.json_mb == 1.0 and quick.baseline_rows == 2_000
    mixed = batch.parse_options(["--quick", "--sizes", "2,1,2", "--json-mb", "0", "--no-plot"])
    assert mixed.sizes == (1.0, 2.0) and mixed.json_mb == 0 and mixed.plot_out is None


@pytest.mark.parametrize("bad", ["", "0", "1,-2", "ten"])
def test_bad_sizes_are_refused_with_an_example(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        batch.parse_options(["--sizes", bad])
    assert "e.g. 1,10,50" in capsys.readouterr().err


def test_the_cli_hands_the_options_to_the_benchmark() -> None:
    args = build_parser().parse_args(["bench", "batch", "--quick", "--json", "out.json"])
    assert args.kind == "batch" and args.options == ["--quick", "--json", "out.json"]
    assert batch.parse_options(args.options).json_out == Path("out.json")


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    from benchmarks import plot

    out = plot.render(results.report(RUN, {"started_at": "2026-01-01T00:00:00+00:00", "host": {"cpus": 2}}),
                      tmp_path / "plot.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_sampler_sees_a_child_and_its_memory() -> None:
    code = "import time; x = bytearray(64 * 1024 * 1024); time.sleep(1.0)"
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ})
    with ResourceSampler(proc.pid, interval=0.05) as sampler:
        proc.wait(10)
    usage = sampler.report()
    assert usage.samples >= 2
    assert usage.peak_bytes >= 64 * MIB
    assert usage.processes[0].role == "main" and usage.processes[0].pid == proc.pid
