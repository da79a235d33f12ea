"""The batch benchmark's smoke run: ``mysimbdp bench batch --quick`` measures all three cases, and
each case's table holds exactly the distinct keys it was given. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit import platform_processes_under

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_measures_pipeline_baseline_and_raw_with_every_row_counted(tmp_path: Path) -> None:
    out, plot, work = tmp_path / "batch.json", tmp_path / "batch.png", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "mysimbdp_tasks.cli", "bench", "batch", "--quick", "--json", str(out),
         "--plot", str(plot), "--workdir", str(work)],
        cwd=ROOT, env={**os.environ, "MYSIMBDP_HOME": str(tmp_path / "home")}, capture_output=True, text=True,
        timeout=110, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rows/s" in proc.stdout and "PREFIX" in proc.stdout  # the table, and the baseline says what it is

    doc = json.loads(out.read_text())
    kinds = [m["kind"] for m in doc["measurements"]]
    assert kinds.count("baseline") == 1 and kinds.count("raw") == 1 and kinds.count("pipeline") >= 1
    keys = {i["label"]: i["distinct_keys"] for i in doc["inputs"]}
    for m in doc["measurements"]:
        assert m["rows"] == m["rows_in_cassandra"] == m["expected_rows"] > 0, m
        assert m["verified"] and m["seconds"] > 0 and m["peak_rss_mb"] > 0
        if m["kind"] != "baseline":  # the baseline runs on a prefix: every row of it, no more
            assert m["rows"] == keys[m["details"]["input"]], (m["case"], keys)
    assert doc["verified"] is True
    assert doc["ratios"]["pipeline_vs_baseline"] and doc["ratios"]["pipeline_vs_raw"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    # Nothing left behind: no platform process, nothing in the work folder.
    assert platform_processes_under(tmp_path) == []
    assert list(work.iterdir()) == []
