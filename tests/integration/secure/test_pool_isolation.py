"""Secure mode: a tenant's pool user gets NOPERM from Redis itself on another tenant's jobs, on every
batch slot grant, and on Celery's remote-control channel; its own work still runs end to end (a
slotted file of several chunks), the platform's remote control still reaches it, and Redis refuses
it nothing it needs (its ``ACL LOG`` stays empty)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cassandra.cluster import Session
from kit import Platform, table_rows

from mysimbdp_tasks.batch import slots
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import access, identities, redis_acl
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.timeout(900)]

SLOT_KEYS = (names.SLOTS_HELD, names.SLOTS_QUEUED, names.SLOTS_QUEUED_JOBS, names.SLOTS_GRANTED,
             names.SLOTS_RUNNING, names.SLOTS_LAPSED)


@pytest.fixture
def two_tenants(make_tenant: Any, settings: Settings, cassandra_session: Session, redis_client: redis.Redis) -> Any:
    a, b = make_tenant(like="tenant2"), make_tenant(like="tenant2")
    access.grant(settings, cassandra_session, redis_client, [a, b])
    return a, b


@pytest.fixture
def pool_of(settings: Settings) -> Iterator[Callable[[str], redis.Redis]]:
    """Redis clients logged in as tenants' pool users, closed at the end."""
    made: list[redis.Redis] = []

    def login(tenant: str) -> redis.Redis:
        made.append(redis.Redis.from_url(identities.redis_url(identities.as_tenant(settings, tenant))))
        return made[-1]

    yield login
    for client in made:
        client.close()


def _refused(attempts: list[Callable[[], object]]) -> None:
    for attempt in attempts:
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()


def _refusals_of(client: redis.Redis, tenant: str) -> list[dict[str, Any]]:
    """What Redis refused the tenant's pool user, from its ACL LOG."""
    user = identities.account(identities.tenant_principal(tenant))
    return [e for e in client.acl_log(count=128) if e.get("username") == user]


def test_a_pool_user_cannot_reach_another_tenants_jobs_or_any_slot_grant(
        two_tenants: Any, redis_client: redis.Redis, pool_of: Callable[[str], redis.Redis]) -> None:
    a, b = two_tenants
    ingest_id = uuid.uuid4().hex
    b_job, b_chunks = names.job_key(b.name, ingest_id), names.job_chunks_key(b.name, ingest_id)
    redis_client.hset(b_job, "chunks", "2")
    redis_client.hset(b_chunks, "0", "{}")
    redis_client.sadd(names.jobs_open_key(b.name), ingest_id)
    redis_client.zadd(names.slot_lease_key(b.name), {ingest_id: 1e12})
    pool = pool_of(a.name)
    own = uuid.uuid4().hex
    try:
        # Its own: what a pool does for its files (job state, chunk outcomes, finalizing, leases).
        assert pool.hset(names.job_key(a.name, own), "chunks", "1") == 1
        assert pool.hset(names.job_chunks_key(a.name, own), "0", "{}") == 1
        assert pool.set(names.job_finalizing_key(a.name, own), "1", nx=True, ex=60)
        assert pool.srem(names.jobs_open_key(a.name), own) == 0
        assert pool.zadd(names.slot_lease_key(a.name), {own: 1.0}) == 1
        assert pool.sadd(names.slot_wanted_key(a.name), own) == 1
        _refused([
            lambda: pool.hgetall(b_job),
            lambda: pool.hset(b_job, "finalized", "1"),
            lambda: pool.hset(b_chunks, "1", "{}"),
            lambda: pool.set(names.job_finalizing_key(b.name, ingest_id), "1"),
            lambda: pool.smembers(names.jobs_open_key(b.name)),
            lambda: pool.srem(names.jobs_open_key(b.name), ingest_id),
            lambda: pool.sadd(names.JOBS_TENANTS, a.name),  # the sweeper's index is the platform's
            lambda: pool.hset(names.legacy_job_keys(ingest_id)[0], "finalized", "1"),
            lambda: pool.sadd(names.JOBS_OPEN, ingest_id),
            # B's leases and asks, and every grant of the line: the platform's alone.
            lambda: pool.zadd(names.slot_lease_key(b.name), {ingest_id: 1.0}),
            lambda: pool.zrem(names.slot_lease_key(b.name), ingest_id),
            lambda: pool.sadd(names.slot_wanted_key(b.name), ingest_id),
            lambda: pool.zadd(names.SLOTS_HELD, {own: 1e12}),
            lambda: pool.zrem(names.SLOTS_HELD, ingest_id),
            lambda: pool.zadd(names.SLOTS_QUEUED, {own: 0.0}),
            lambda: pool.hset(names.SLOTS_QUEUED_JOBS, own, "{}"),
            lambda: pool.sadd(names.SLOTS_GRANTED, own),
            lambda: pool.hset(names.SLOTS_RUNNING, own, "{}"),
            lambda: pool.hset(names.SLOTS_LAPSED, own, "{}"),
            lambda: pool.set(names.SLOTS_LOCK_PREFIX + ingest_id, "1"),
            # A script is refused the same way for a key it names.
            lambda: pool.eval("return redis.call('ZADD', KEYS[1], 0, ARGV[1])", 1, names.SLOTS_QUEUED, own),
        ])
        assert redis_client.hget(b_job, "finalized") is None
        assert redis_client.zscore(names.slot_lease_key(b.name), ingest_id) == 1e12
        assert redis_client.smembers(names.jobs_open_key(b.name)) == {ingest_id.encode()}
    finally:
        redis_client.delete(b_job, b_chunks, names.jobs_open_key(b.name), names.slot_lease_key(b.name),
                            names.job_key(a.name, own), names.job_chunks_key(a.name, own),
                            names.job_finalizing_key(a.name, own), names.slot_lease_key(a.name),
                            names.slot_wanted_key(a.name))


def test_a_pool_user_publishes_events_but_cannot_broadcast_remote_control(
        two_tenants: Any, redis_client: redis.Redis, pool_of: Callable[[str], redis.Redis]) -> None:
    a, _ = two_tenants
    db = int(redis_client.connection_pool.connection_kwargs.get("db") or 0)
    pidbox = redis_acl.pidbox_channel(db)
    pool = pool_of(a.name)
    shutdown = json.dumps({"method": "shutdown", "arguments": {}, "destination": None})
    assert pool.publish(f"/{db}.celeryev/task.succeeded", "{}") >= 0  # what its workers send
    _refused([
        lambda: pool.publish(pidbox, shutdown),  # would stop every tenant's workers
        lambda: pool.publish(f"{pidbox}/x", shutdown),
        lambda: pool.publish(f"/{db}.celeryev", "{}"),
    ])
    listen = pool.pubsub()
    try:
        listen.psubscribe(pidbox)  # its workers hear the platform's commands
        assert listen.get_message(timeout=5) == {"type": "psubscribe", "pattern": None, "channel": pidbox.encode(),
                                                 "data": 1}
        # ...and nobody's events: without gossip a worker needs none, and they tell of every tenant's tasks.
        listen.psubscribe(f"/{db}.celeryev/*")  # sent; Redis answers with its refusal
        with pytest.raises(redis.exceptions.NoPermissionError):
            listen.get_message(timeout=5)
    finally:
        listen.close()


@pytest.mark.slow
def test_a_secure_pool_runs_a_slotted_file_hears_the_platforms_remote_control_and_is_refused_nothing(
        two_tenants: Any, settings: Settings, redis_client: redis.Redis, cassandra_session: Session,
        secure_env: dict[str, str], tmp_path: Path) -> None:
    from mysimbdp_tasks.worker.celery_app import make_app

    a, _ = two_tenants
    redis_client.delete(*SLOT_KEYS)
    src = generate("tenant2", 3 * 1024 * 1024, tmp_path / "big.csv", seed=41)
    env = {**secure_env, "MYSIMBDP_BATCH_SLOTS": "1", "MYSIMBDP_CHUNK_MB": "1", "MYSIMBDP_SLOT_LEASE_SECONDS": "6"}
    platform = Platform(settings, a, settings.home, concurrency=2, extra_env=env)
    app = make_app(settings)  # the platform's own (platform_admin), as the manager and Flower use it
    try:
        platform.start()
        _, receipt = platform.final(platform.stage(src.path, f"{a.name}-big.csv"), timeout=600)
        # The manager's way to scale a pool: a broadcast the tenant's workers hear and answer.
        nodes = [n for reply in app.control.ping(timeout=5.0) or [] for n in reply if n.startswith(f"{a.name}@")]
        assert nodes, platform.logs()
        grown = app.control.pool_grow(1, destination=nodes[:1], reply=True, timeout=10.0)
        assert grown and next(iter(grown[0].values())) == {"ok": "pool will grow"}
    finally:
        platform.stop()
        app.close()
    assert (receipt["status"], receipt["rows_ok"]) == ("done", src.records)
    assert receipt["chunks"] > 1  # several chunks, each renewing the file's one slot
    assert slots.held(redis_client) == []  # given back by the pool, through its own lease key
    assert len(table_rows(cassandra_session, a)) == src.distinct_keys
    assert _refusals_of(redis_client, a.name) == []
    redis_client.delete(*SLOT_KEYS)
