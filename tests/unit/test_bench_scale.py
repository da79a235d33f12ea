"""`mysimbdp bench scale`: its options, table and plot, from a result document (no services)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.scale import Options, parse_options
from benchmarks.scale_plot import render, table

pytestmark = pytest.mark.unit

REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "reference" / "scale.json"


def test_quick_shrinks_the_run_and_explicit_sizes_win() -> None:
    quick = parse_options(["--quick"])
    assert (quick.mb, quick.messages) == (1.0, 4_000)
    assert parse_options(["--quick", "--mb", "2"]).mb == 2.0
    assert parse_options([]).workers == Options.workers == (1, 2, 4)
    assert parse_options(["--bridges", "3,1"]).bridges == (1, 3)
    with pytest.raises(SystemExit):
        parse_options(["--messages", "0"])


def test_reference_run_has_every_case_with_its_cpu_per_unit_and_says_the_machine_was_busy(tmp_path: Path) -> None:
    doc = json.loads(REFERENCE.read_text())
    assert "shared" in doc["note"]
    assert [c["workers"] for c in doc["cases"] if c["series"] == "batch"] == [1, 2, 4]
    assert [c["bridges"] for c in doc["cases"] if c["series"] == "stream"] == [1, 3]
    for case in doc["cases"]:
        assert case["cpu_us_per_unit"]["workers"] > 0 and case["cpu_us_per_unit"]["cassandra"] > 0
    text = table(doc["cases"])
    assert "batch, 4 proc" in text and "stream, 3 part+bridge" in text
    out = render(doc, tmp_path / "scale.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
