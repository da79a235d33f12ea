"""Ingestion windows against the real services: a file admitted outside its tenant's window waits as
``scheduled`` (shown by `status`) and runs, every row landing, when the window opens."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kit import DATA, running_platform, table_rows

from mysimbdp_tasks.core.settings import Settings

pytestmark = pytest.mark.integration


def status(env: dict[str, str], tenant: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "status", "--tenant", tenant, "--json"],
                          env=env, text=True, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_file_outside_its_window_waits_scheduled_and_runs_when_the_window_opens(
        make_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path) -> None:
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    window = f"{opens:%H:%M:%S}-{opens + timedelta(hours=1):%H:%M:%S}"
    tenant = make_tenant(like="tenant2", windows=[window])
    with running_platform(settings, tenant, tmp_path / "home") as platform:
        name = platform.stage(DATA / "1000rows.csv", f"{tenant.name}-night.csv")
        deadline = time.monotonic() + 60
        while not (seen := status(platform.env, tenant.name))["scheduled"]:
            assert time.monotonic() < deadline, platform.logs()
            time.sleep(0.5)
        assert seen["windows"] == [window]
        assert [s["file"] for s in seen["scheduled"]] == [name]
        assert seen["scheduled"][0]["starts_at"] == opens.isoformat()
        if datetime.now(UTC) < opens - timedelta(seconds=3):  # well before the window: nothing written yet
            assert table_rows(cassandra_session, tenant) == []
        _, receipt = platform.final(name, timeout=180)
        assert receipt["status"] == "done" and receipt["rows_ok"] == 1000
        assert receipt["started_at"] >= opens.timestamp()
        assert status(platform.env, tenant.name)["scheduled"] == []
    assert len(table_rows(cassandra_session, tenant)) == 1000
