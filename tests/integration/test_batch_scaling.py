"""Batch work scales the tenant's pool: the queue reading on the real broker, and a large file growing the
pool to max_workers and shrinking it back once the backlog is gone, with every row landed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis
from cassandra.query import SimpleStatement
from kit import Platform, supervised

from mysimbdp_tasks.control.backlog import read_waiting
from mysimbdp_tasks.control.manager import pool_processes
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.events import read_events
from mysimbdp_tasks.worker.celery_app import make_app
from producers.generate import generate

pytestmark = pytest.mark.integration

PRIORITIES = (None, 0, 3, 5, 6, 9, 9)


def test_waiting_count_follows_enqueue_delivery_and_ack_back_to_zero(make_tenant: Any, settings: Settings,
                                                                       redis_client: redis.Redis) -> None:
    tenant, other = make_tenant(provision=False), make_tenant(provision=False)
    app = make_app(settings)
    for i, priority in enumerate(PRIORITIES):  # priorities put messages in kombu's other lists of the queue
        app.send_task(names.INGEST_FILE, args=({"probe": i},), queue=tenant.batch_queue, priority=priority)
    app.send_task(names.INGEST_FILE, args=({"probe": "other"},), queue=other.batch_queue)
    assert read_waiting(redis_client, [tenant.name, other.name]) == {tenant.name: len(PRIORITIES), other.name: 1}

    with app.connection_for_read() as conn:
        channel = conn.default_channel
        delivered = [channel.basic_get(tenant.batch_queue, no_ack=False) for _ in range(3)]
        assert all(delivered)
        # Delivered, not acknowledged: running, no longer waiting (they sit in kombu's unacked hash).
        assert redis_client.hlen(names.UNACKED) >= 3
        assert read_waiting(redis_client, [tenant.name])[tenant.name] == len(PRIORITIES) - 3
        while (message := channel.basic_get(tenant.batch_queue, no_ack=False)) is not None:
            delivered.append(message)
        assert len(delivered) == len(PRIORITIES)
        assert read_waiting(redis_client, [tenant.name])[tenant.name] == 0
        for message in delivered:
            message.ack()
        assert read_waiting(redis_client, [tenant.name, other.name]) == {tenant.name: 0, other.name: 1}
        assert channel.basic_get(other.batch_queue, no_ack=True) is not None
    assert read_waiting(redis_client, [other.name]) == {other.name: 0}


@pytest.mark.slow
def test_large_file_grows_the_pool_to_max_workers_then_it_shrinks_back_and_every_row_lands(
        make_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2", min_workers=1, max_workers=3, max_queued_tasks=2)
    src = generate("tenant2", 16 * 1024 * 1024, tmp_path / "large.csv", seed=31)
    # Quarter-MB chunks: the file is about 64 tasks, a backlog one process works through for a while.
    p = Platform(settings, tenant, tmp_path / "h", concurrency=1, extra_env={"MYSIMBDP_CHUNK_MB": "0.25"})
    try:
        p.start()
        p.start_process("monitor", "monitor", "--tenant", tenant.name, "--batch-idle-after", "5")
        p.start_process("manager", "manager", "--tenant", tenant.name, "--cooldown", "3")

        def size() -> int:
            return pool_processes(p.procs["worker"].pid)

        _until(lambda: size() == 1, p, "the pool to start with 1 process")
        name = p.stage(src.path, f"{tenant.name}-large.csv")
        seen: list[int] = []

        def grown() -> bool:
            seen.append(size())
            return max(seen) >= 3
        _until(grown, p, "the pool to grow to max_workers 3", timeout=300)
        path, receipt = p.final(name, timeout=600)
        _until(lambda: size() == 1, p, "the pool to shrink back to min_workers 1", timeout=180)
    finally:
        p.stop()

    assert receipt["status"] == "done", receipt
    assert receipt["chunks"] > 10
    assert receipt["rows_ok"] == src.records and receipt["rows_refused"] == 0
    # Paged, not COUNT(*): one aggregate over the whole table can outlast Cassandra's read timeout here.
    keys = ", ".join(f'"{c}"' for c in tenant.key.columns)
    statement = SimpleStatement(f'SELECT {keys} FROM "{tenant.namespace}"."{tenant.table_name}"', fetch_size=5000)
    assert sum(1 for _ in cassandra_session.execute(statement, timeout=120)) == src.distinct_keys
    assert path.parent.parent.name == "done"
    events = [e for e in read_events(p.home / "logs", tenant.name) if e["event"] == "scaling" and e["delta"]]
    grows = [e for e in events if e["delta"] > 0]
    shrinks = [e for e in events if e["delta"] < 0]
    assert grows and all("backlog" in e["reason"] for e in grows), events
    assert sum(e["delta"] for e in grows) == 2 and all(e["pool_before"] + e["delta"] <= 3 for e in grows)
    assert len(shrinks) == 2 and all("drained" in e["reason"] for e in shrinks), events


@pytest.mark.slow
def test_with_mysimbdp_up_the_status_shows_the_pool_grow_for_a_large_file_and_shrink_after(
        make_tenant: Any, settings: Settings, tmp_path: Path) -> None:
    """The deployed path: `mysimbdp up` runs the monitor and manager with their defaults (they create
    the platform topics they need), and `mysimbdp status --json` shows the pool's size."""
    tenant = make_tenant(like="tenant2", min_workers=1, max_workers=3, max_queued_tasks=2)
    src = generate("tenant2", 16 * 1024 * 1024, tmp_path / "large.csv", seed=32)
    worker = f"worker-{tenant.name}"
    with supervised(settings, [tenant], tmp_path / "home", extra_env={"MYSIMBDP_CHUNK_MB": "0.25"}) as platform:
        platform.wait_for("the pool started at the default concurrency 2", lambda ps: ps[worker]["pool"] == 2)
        name = platform.files.stage(src.path, f"{tenant.name}-large.csv")
        platform.wait_for("the pool grown to max_workers 3", lambda ps: ps[worker]["pool"] == 3, timeout=300)
        _, receipt = platform.files.final(name, timeout=600)
        platform.wait_for("the pool shrunk to min_workers 1", lambda ps: ps[worker]["pool"] == 1, timeout=300)
    assert receipt["status"] == "done" and receipt["rows_ok"] == src.records, receipt


def _until(check: Any, platform: Platform, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        platform.check_alive()
        time.sleep(0.2)
    raise TimeoutError(f"not within {timeout} s: {what}; logs:\n{platform.logs()}")
