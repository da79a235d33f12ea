"""A chunk or stream micro-batch that kills every pool running it is given up with reason
worker_lost after MYSIMBDP_MAX_REDELIVERIES redeliveries, instead of holding the tenant's pool
forever: the chunk's file gets its receipt, the batch becomes dead letters, and what follows lands."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from kit import Platform, running_platform, table_rows
from streamkit import dead, encoded, send, wait_written

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

MAX_REDELIVERIES = 2
# Small chunks so a 3 MB file is several tasks; a short visibility timeout so a killed pool's task
# comes back within seconds; one process, so the pool holds only the task it runs.
ENV = {"MYSIMBDP_CHUNK_MB": "1", "MYSIMBDP_VISIBILITY_TIMEOUT": "6",
       "MYSIMBDP_MAX_REDELIVERIES": str(MAX_REDELIVERIES)}


def _count(session: Any, tenant: Any) -> int:
    return int(session.execute(f'SELECT COUNT(*) FROM "{tenant.namespace}"."{tenant.table_name}"',
                               timeout=120).one()[0])


def _ingest_id(platform: Platform, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (platform.home / "processing" / platform.tenant.name).glob("*__*"):
            return path.name.split("__", 1)[0]
        time.sleep(0.1)
    raise TimeoutError(f"no file in processing after {timeout} s; logs:\n{platform.logs()}")


def _delivered_at(client: redis.Redis, task_id: str) -> float:
    """When a worker last took the task, if one holds it now (else 0).

    kombu keeps a message's delivery tag across redeliveries, but scores it in the unacknowledged
    index with the time it was handed out (then with each lease renewal of a live worker), so a
    time after the last kill is a new delivery.
    """
    for tag, raw in client.hgetall(names.UNACKED).items():
        if json.loads(raw)[0]["headers"].get("id") == task_id:
            return float(client.zscore(names.UNACKED_INDEX, tag) or 0)
    return 0.0


def _kill_whenever_it_runs(platform: Platform, client: redis.Redis, task_id: str, timeout: float = 180) -> int:
    """SIGKILL the pool each time it runs the task, as an OOM kill would, and restart it as the
    supervisor would, until the task is redelivered once more than allowed; return the kills."""
    kills, killed_at = 0, 0.0
    deadline = time.monotonic() + timeout
    while kills <= MAX_REDELIVERIES and time.monotonic() < deadline:
        # Kill once the task runs: the first time as soon as a worker took it, then once that
        # redelivery was counted (it runs then; a kill before would not be its worker dying).
        counted = int(client.get(names.redeliveries_key(platform.tenant.name, task_id)) or 0)
        if _delivered_at(client, task_id) > killed_at and counted >= kills:
            platform.kill_worker()
            kills, killed_at = kills + 1, time.time()
            platform.start_worker()
        time.sleep(0.02)
    return kills


def _has_receipt(platform: Platform, name: str) -> bool:
    return any(folders.find_receipts(platform.home / stage / platform.tenant.name, name)
               for stage in (folders.DONE, folders.FAILED))


@pytest.mark.timeout(300)
def test_a_chunk_that_kills_its_worker_is_given_up_as_worker_lost(make_tenant: Any, settings: Settings,
                                                                  cassandra_session: Any, redis_client: Any,
                                                                  tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    src = generate("tenant2", 3 * 1024 * 1024, tmp_path / "multi.csv", seed=31)
    good = generate("tenant2", 20 * 1024, tmp_path / "good.csv", seed=32)
    with running_platform(settings, tenant, tmp_path / "h", concurrency=1, extra_env=ENV) as p:
        name = p.stage(src.path, f"{tenant.name}-multi.csv")
        poison = names.chunk_task_id(_ingest_id(p), 1)
        kills = _kill_whenever_it_runs(p, redis_client, poison)
        path, receipt = p.final(name, timeout=120)
        landed = _count(cassandra_session, tenant)
        _, good_receipt = p.final(p.stage(good.path, f"{tenant.name}-good.csv"), timeout=120)
    assert kills == MAX_REDELIVERIES + 1
    assert [e["reason"] for e in receipt["errors"]] == ["worker_lost"], receipt
    assert f"died {MAX_REDELIVERIES + 1} times" in receipt["errors"][0]["detail"]
    # The other chunks' rows landed and are counted; the file is done, partially.
    assert receipt["status"] == "done" and receipt["reason"] == "partial: worker_lost"
    assert receipt["chunks"] > 2
    assert 0 < receipt["rows_ok"] < src.records
    assert 0 < landed < src.distinct_keys
    assert path.parent.parent.name == "done"
    assert good_receipt["status"] == "done" and good_receipt["rows_ok"] == good.records
    assert not list((p.home / "processing" / tenant.name).iterdir())


def _first_stream_task(client: redis.Redis, tenant: str, timeout: float = 120) -> str:
    prefix = names.stream_task_id(tenant, {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for raw in client.hvals(names.UNACKED):
            task_id = str(json.loads(raw)[0]["headers"].get("id"))
            if task_id.startswith(prefix):
                return task_id
        time.sleep(0.01)
    raise TimeoutError(f"no stream task of {tenant} held after {timeout} s")


@pytest.mark.timeout(300)
def test_a_stream_batch_that_kills_its_worker_becomes_worker_lost_dead_letters(
        stream_tenant: Any, stream_platform: Any, settings: Settings, cassandra_session: Any,
        redis_client: Any) -> None:
    tenant = stream_tenant("tenant2")
    msgs = [{"tenant": tenant.name, "created_utc": 1430458939 + i, "subreddit": f"s{i % 7}", "id": f"m{i}",
             "author": f"a{i % 13}", "body": f"body {i}"} for i in range(400)]
    p = stream_platform(tenant, extra_env=ENV)
    send(settings, tenant, encoded(msgs[:300]))
    kills = _kill_whenever_it_runs(p, redis_client, _first_stream_task(redis_client, tenant.name))
    wait_written(settings, tenant, p)  # the bridge committed past the batch given up
    send(settings, tenant, encoded(msgs[300:]))  # and what comes after lands
    wait_written(settings, tenant, p)
    letters = dead(settings, tenant, 1)
    rows = table_rows(cassandra_session, tenant)
    assert kills == MAX_REDELIVERIES + 1
    assert letters and {dict(d.headers)["reason"] for d in letters} == {b"worker_lost"}
    assert len(rows) + len(letters) == len(msgs)  # each message written or dead-lettered, once
    assert {r.id for r in rows} >= {m["id"] for m in msgs[300:]}
