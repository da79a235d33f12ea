"""Batch ingestion survives a worker killed with SIGKILL and a Cassandra restart, losing nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from kit import Platform, running_platform, wait_until_answering

from mysimbdp_tasks import stack
from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Small chunks so a file of a few MB is many tasks; a short visibility timeout so the tasks of a
# killed worker are handed out again within the test's patience.
FAULT_ENV = {"MYSIMBDP_CHUNK_MB": "1", "MYSIMBDP_VISIBILITY_TIMEOUT": "15", "MYSIMBDP_STALL_SECONDS": "10"}


def _count(session: Any, tenant: Any) -> int:
    return int(session.execute(f'SELECT COUNT(*) FROM "{tenant.namespace}"."{tenant.table_name}"',
                               timeout=120).one()[0])


def _wait_for_chunks(client: redis.Redis, platform: Platform, at_least: int, timeout: float = 120) -> None:
    """Wait until some (not all) chunks of the file in processing have finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (platform.home / "processing" / platform.tenant.name).glob("*__*"):
            ingest_id = path.name.split("__", 1)[0]
            if len(Jobs(client).results(platform.tenant.name, ingest_id)) >= at_least:
                return
        time.sleep(0.1)
    raise TimeoutError(f"no chunk finished in {timeout} s; logs:\n{platform.logs()}")


def test_worker_killed_mid_file_then_restarted_lands_every_row_once(make_tenant: Any, settings: Settings,
                                                                    cassandra_session: Any, redis_client: Any,
                                                                    tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    src = generate("tenant2", 6 * 1024 * 1024, tmp_path / "big.csv", seed=11)
    with running_platform(settings, tenant, tmp_path / "h", extra_env=FAULT_ENV) as p:
        name = p.stage(src.path, f"{tenant.name}-big.csv")
        _wait_for_chunks(redis_client, p, at_least=1)
        p.kill_worker()
        landed_at_kill = _count(cassandra_session, tenant)
        time.sleep(2)
        p.start_worker()
        path, receipt = p.final(name, timeout=240)
    assert 0 < landed_at_kill < src.distinct_keys  # it really died in the middle
    assert path.parent.parent.name == "done"
    assert receipt["status"] == "done"
    assert receipt["rows_ok"] == src.records and receipt["rows_refused"] == 0
    assert receipt["chunks"] > 1
    assert _count(cassandra_session, tenant) == src.distinct_keys
    assert not list((p.home / "processing" / tenant.name).iterdir())


def test_cassandra_restart_during_ingestion_loses_nothing(make_tenant: Any, settings: Settings,
                                                          cassandra_session: Any, redis_client: Any,
                                                          tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    src = generate("tenant2", 6 * 1024 * 1024, tmp_path / "big.csv", seed=12)
    with running_platform(settings, tenant, tmp_path / "h", extra_env=FAULT_ENV) as p:
        name = p.stage(src.path, f"{tenant.name}-big.csv")
        _wait_for_chunks(redis_client, p, at_least=1)
        stack.down(settings, services=("cassandra",), echo=lambda _: None)
        time.sleep(5)  # tasks now fail against a dead Cassandra and go into retry with backoff
        stack.up(settings, services=("cassandra",), echo=lambda _: None)
        path, receipt = p.final(name, timeout=300)
    assert receipt["status"] == "done", receipt
    assert receipt["rows_ok"] == src.records and receipt["rows_refused"] == 0
    assert path.parent.parent.name == "done"
    wait_until_answering(cassandra_session)  # this test's own session, back from the restart too
    assert _count(cassandra_session, tenant) == src.distinct_keys


def test_sweeper_resends_only_a_chunk_that_the_broker_lost(make_tenant: Any, settings: Settings,
                                                           redis_client: Any, tmp_path: Path) -> None:
    from mysimbdp_tasks.batch.sweeper import Sweeper
    from mysimbdp_tasks.services.dispatch import Dispatch
    from mysimbdp_tasks.worker.celery_app import make_app

    tenant = make_tenant(like="tenant2", provision=False)
    processing = tmp_path / "processing"
    ingest_id = "sweep" + tenant.name
    job = {"ingest_id": ingest_id, "tenant": tenant.name, "file": "x.csv", "bytes": 10, "day": "2026-01-01",
           "admitted_at": 0.0, "path": str(processing / tenant.name / f"{ingest_id}__x.csv")}
    plan = [{"index": i, "start_offset": i, "end_offset": i + 1, "first_number": i + 2} for i in range(3)]
    jobs = Jobs(redis_client)
    jobs.open(job, now=0.0)
    jobs.start(tenant.name, ingest_id, 3, started_at=0.0, plan=plan, fmt="csv")
    jobs.record(tenant.name, ingest_id, 0, {"index": 0, "rows_ok": 1, "rows_refused": 0, "refusals": []}, now=0.0)
    queue = tenant.batch_queue
    dispatch = Dispatch(make_app(settings))
    dispatch.send_chunk({**job, "fmt": "csv"}, plan[2])  # chunk 2 is still queued; chunk 1 was lost
    sweeper = Sweeper(redis_client, processing, dispatch, stall_s=5)
    try:
        assert sweeper.sweep() == []  # first sighting: only a suspect
        assert sweeper.sweep() == [names.chunk_task_id(ingest_id, 1)]
        assert redis_client.llen(queue) == 2
        assert sweeper.sweep() == []  # now it is queued again
    finally:
        redis_client.delete(queue)
        jobs.finalized(tenant.name, ingest_id)
