"""The lease on held tasks: a killed pool's tasks come back in about the visibility timeout (not
30 minutes), and a task running longer than the timeout is never handed out a second time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kit import running_platform

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import DEFAULT_VISIBILITY_TIMEOUT, Settings
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _count(session: Any, tenant: Any) -> int:
    return int(session.execute(f'SELECT COUNT(*) FROM "{tenant.namespace}"."{tenant.table_name}"',
                               timeout=120).one()[0])


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_a_killed_pools_tasks_come_back_within_the_lease_with_default_settings(
        make_tenant: Any, settings: Settings, cassandra_session: Any, redis_client: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    src = generate("tenant2", 6 * 1024 * 1024, tmp_path / "big.csv", seed=21)
    # Default visibility timeout and stall time; small chunks so the pool holds tasks when killed.
    with running_platform(settings, tenant, tmp_path / "h", extra_env={"MYSIMBDP_CHUNK_MB": "1"}) as p:
        name = p.stage(src.path, f"{tenant.name}-big.csv")
        p.wait_for_a_chunk(redis_client)
        held = set(redis_client.zrange(names.UNACKED_INDEX, 0, -1))
        p.kill_worker()
        killed_at = time.time()
        p.start_worker()
        while held & set(redis_client.zrange(names.UNACKED_INDEX, 0, -1)) and time.time() - killed_at < 300:
            time.sleep(0.2)
        restored_s = time.time() - killed_at
        path, receipt = p.final(name, timeout=300)
    landed_s = receipt["finished_at"] - killed_at
    print(f"\nSIGKILLed pool (visibility timeout {DEFAULT_VISIBILITY_TIMEOUT} s): its {len(held)} held tasks "
          f"back on the queue {restored_s:.1f} s after the kill; file done {landed_s:.1f} s after it")
    (tmp_path / "recovery.json").write_text(json.dumps({"held": len(held), "restored_s": restored_s,
                                                       "landed_s": landed_s}))
    assert held  # the pool really held tasks when it died
    assert restored_s < 300  # not the 30 minutes of the stock timeout
    assert receipt["status"] == "done" and receipt["rows_ok"] == src.records and receipt["rows_refused"] == 0
    assert path.parent.parent.name == "done"
    assert _count(cassandra_session, tenant) == src.distinct_keys


@pytest.mark.timeout(600)
def test_a_task_running_longer_than_the_visibility_timeout_runs_once(
        make_tenant: Any, settings: Settings, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    src = generate("tenant2", 16 * 1024 * 1024, tmp_path / "long.csv", seed=22)
    # One chunk, a 2 s timeout: without the lease, a second pool process would take the same task
    # 2 s after the first one started it, and again every 2 s.
    env = {"MYSIMBDP_CHUNK_MB": "64", "MYSIMBDP_VISIBILITY_TIMEOUT": "2"}
    with running_platform(settings, tenant, tmp_path / "h", concurrency=2, extra_env=env) as p:
        name = p.stage(src.path, f"{tenant.name}-long.csv")
        _, receipt = p.final(name, timeout=480)
        worker_log = (p.home / "logs" / "worker.log").read_text(errors="replace")
    assert receipt["timings"]["total_ms"] > 2000  # the premise: the task outlived the timeout
    assert receipt["status"] == "done" and receipt["rows_ok"] == src.records and receipt["chunks"] == 1
    task_id = names.file_task_id(receipt["ingest_id"])
    assert worker_log.count(f"[{task_id}] received") == 1  # delivered once, never handed out again
