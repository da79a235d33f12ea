"""The anchors benchmark's smoke run: ``mysimbdp bench anchors --quick`` loads one generated file with the
pipeline, cqlsh (both settings) and dsbulk (both settings), and every table holds exactly the generated
rows, checked row by row. cqlsh comes from PyPI and dsbulk from Maven Central on first use (cached
after). No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cassandra.cluster import Session
from kit import platform_processes_under

# Slow on a busy machine: the first run also installs cqlsh and resolves dsbulk's jars.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
CASES = ["pipeline", "cqlsh defaults", "cqlsh tuned", "dsbulk defaults", "dsbulk tuned"]


def _anchor_keyspaces(session: Session) -> set[str]:
    rows = session.execute("SELECT keyspace_name FROM system_schema.keyspaces")
    return {r.keyspace_name for r in rows if r.keyspace_name.startswith("anchor_")}


def test_quick_run_loads_and_verifies_every_row_with_each_loader(tmp_path: Path, cassandra_session: Session) -> None:
    before = _anchor_keyspaces(cassandra_session)
    out, plot, work = tmp_path / "anchors.json", tmp_path / "anchors.png", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "mysimbdp_tasks.cli", "bench", "anchors", "--quick", "--json", str(out),
         "--plot", str(plot), "--workdir", str(work)],
        cwd=ROOT, env={**os.environ, "MYSIMBDP_HOME": str(tmp_path / "home")}, capture_output=True, text=True,
        timeout=1700, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "rows/s" in proc.stdout and "converted copy" in proc.stdout  # the table, and cqlsh's input is named

    doc = json.loads(out.read_text())
    assert [r["case"] for r in doc["runs"]] == CASES
    keys = doc["input"]["distinct_keys"]
    for run in doc["runs"]:
        check = run["verification"]
        assert run["verified"] and check["ok"], run
        assert check["found"] == check["expected"] == keys > 0 and check["different"] == 0, run["case"]
        assert run["rows_per_s"] > 0 and run["peak_rss_mb"] > 0
        cpu = run["cpu_us_per_row"]
        assert {"loader", "cassandra", "kafka", "rest"} <= cpu.keys(), run["case"]
        assert cpu["loader"] > 0 and cpu["cassandra"] > 0, run["case"]
    assert doc["verified"] is True
    assert doc["ratios"]["pipeline_vs_best_cqlsh"] and doc["ratios"]["pipeline_vs_best_dsbulk"]
    assert plot.read_bytes()[:4] == b"\x89PNG"
    # Nothing left behind: no platform process, nothing in the work folder, no loaded table.
    assert platform_processes_under(tmp_path) == []
    assert list(work.iterdir()) == []
    assert _anchor_keyspaces(cassandra_session) <= before


def test_json_lines_run_loads_the_same_rows_with_the_pipeline_and_dsbulk(tmp_path: Path,
                                                                         cassandra_session: Session) -> None:
    out, work = tmp_path / "anchors-json.json", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "mysimbdp_tasks.cli", "bench", "anchors", "--quick", "--format", "json",
         "--json", str(out), "--no-plot", "--workdir", str(work)],
        cwd=ROOT, env={**os.environ, "MYSIMBDP_HOME": str(tmp_path / "home")}, capture_output=True, text=True,
        timeout=1700, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    doc = json.loads(out.read_text())
    assert doc["format"] == "json" and doc["input"]["format"] == "jsonl"
    assert [r["case"] for r in doc["runs"]] == ["pipeline", "dsbulk defaults", "dsbulk tuned"]
    keys = doc["input"]["distinct_keys"]
    for run in doc["runs"]:
        check = run["verification"]
        assert run["verified"] and check["found"] == check["expected"] == keys > 0, run["case"]
    assert doc["ratios"]["pipeline_vs_best_dsbulk"] and doc["ratios"]["pipeline_vs_best_cqlsh"] is None
    assert platform_processes_under(tmp_path) == []
