"""The scaling benchmark's smoke run: ``mysimbdp bench scale`` on a small size measures each case with
every row and message counted in its table, and CPU per role. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kit import platform_processes_under

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]


def test_small_run_counts_every_row_and_message_and_splits_cpu_by_role(tmp_path: Path) -> None:
    out, plot, work = tmp_path / "scale.json", tmp_path / "scale.png", tmp_path / "work"
    proc = subprocess.run(
        [sys.executable, "-m", "mysimbdp_tasks.cli", "bench", "scale", "--workers", "1,2", "--bridges", "1,2",
         "--mb", "0.5", "--messages", "1000", "--json", str(out), "--plot", str(plot), "--workdir", str(work),
         "--note", "test run"],
        cwd=ROOT, env={**os.environ, "MYSIMBDP_HOME": str(tmp_path / "home")}, capture_output=True, text=True,
        timeout=380, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["note"] == "test run"
    batch = [c for c in doc["cases"] if c["series"] == "batch"]
    stream = [c for c in doc["cases"] if c["series"] == "stream"]
    assert [c["workers"] for c in batch] == [1, 2] and [c["bridges"] for c in stream] == [1, 2]
    for c in batch:
        assert c["rows"] == c["rows_in_cassandra"] > 0 and c["chunks"] > 1, c
        assert c["cpu_us_per_unit"]["workers"] > 0 and c["cpu_us_per_unit"]["cassandra"] > 0
    for c in stream:
        assert c["rows_in_cassandra"] == c["messages"] == 1000, c
        assert c["cpu_us_per_unit"]["bridge"] > 0 and c["cpu_us_per_unit"]["kafka"] > 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert platform_processes_under(tmp_path) == []
    assert not work.exists() or list(work.iterdir()) == []
