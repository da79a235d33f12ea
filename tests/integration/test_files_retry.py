"""`mysimbdp files retry` against the real services: a file refused for the daily limit lands once the
limit is raised, its new receipt names the old, and nothing is deleted or retried twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kit import DATA, running_platform, table_rows

from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.registry import Registry

pytestmark = pytest.mark.integration


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)


def test_a_file_refused_for_the_daily_limit_lands_after_a_retry_with_a_receipt_chain(
        make_tenant: Any, settings: Settings, cassandra_session: Any, redis_client: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2", max_number_of_files=1)
    src = DATA / "1000rows.csv"
    with running_platform(settings, tenant, tmp_path / "home") as platform:
        first, second = f"{tenant.name}-a.csv", f"{tenant.name}-b.csv"
        platform.stage(src, first)
        assert platform.final(first)[1]["status"] == "done"
        platform.stage(src, second)
        rejected, old = platform.final(second)
        assert (old["status"], old["reason"]) == ("rejected", "daily_files_exceeded")

        raw = {**dict(tenant.raw), "max_number_of_files": 10}
        Registry(redis_client).save(tenants.parse({tenant.name: raw})[tenant.name])
        done = cli(platform.env, "files", "retry", "--tenant", tenant.name, rejected.name, "--json")
        assert done.returncode == 0, done.stderr
        said = json.loads(done.stdout)[0]
        assert said["retry_of"] == old["ingest_id"] and said["previous_reason"] == "daily_files_exceeded"

        receipts: list[dict[str, Any]] = []

        def landed() -> bool:
            receipts[:] = [json.loads(p.read_text()) for p in (platform.home / "done" / tenant.name).glob(
                "*.receipt.json")]
            return len(receipts) == 2

        platform_wait(landed, platform)
        new = next(r for r in receipts if r.get("retry_of"))
        assert new["retry_of"] == old["ingest_id"] and new["status"] == "done" and new["rows_ok"] == 1000
        # The old receipt stays where it was, with a note of where its file went; nothing deleted.
        assert (rejected.parent / (rejected.name + ".receipt.json")).exists()
        marker = json.loads((rejected.parent / (rejected.name + ".retried.json")).read_text())
        assert marker["retry_of"] == old["ingest_id"]
        assert not rejected.exists()

        again = cli(platform.env, "files", "retry", "--tenant", tenant.name, rejected.name)
        assert again.returncode == 1 and "not a rejected or failed file" in again.stderr
        other = cli(platform.env, "files", "retry", "--tenant", tenant.name, str(src))
        assert other.returncode == 1 and "not a rejected or failed file" in other.stderr
    assert len(table_rows(cassandra_session, tenant)) == 1000  # the same rows twice: upserts, no duplicates


def platform_wait(check: Any, platform: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not after {timeout} s; logs:\n{platform.logs()}")
        platform.check_alive()
        time.sleep(0.3)
