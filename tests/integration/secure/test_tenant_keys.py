"""Secure mode: the Redis keys of one ingestion or task are named by tenant, so a pool's Redis user
gets NOPERM from Redis itself on another tenant's (refund markers, redelivery counters) and on every
admission verdict (the watcher's alone)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from cassandra.cluster import Session

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import access, identities

pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.timeout(900)]


def test_a_pool_user_cannot_reach_another_tenants_ingestion_keys(make_tenant: Any, settings: Settings,
                                                                  cassandra_session: Session,
                                                                  redis_client: redis.Redis) -> None:
    a, b = make_tenant(like="tenant2"), make_tenant(like="tenant2")
    access.grant(settings, cassandra_session, redis_client, [a, b])
    ingest_id, task_id = uuid.uuid4().hex, f"{uuid.uuid4().hex}-file"
    redis_client.set(names.refund_key(b.name, ingest_id), "1")
    redis_client.set(names.redeliveries_key(b.name, task_id), "2")
    redis_client.hset(names.admission_key(b.name, ingest_id), "ok", "1")
    pool = redis.Redis.from_url(identities.redis_url(identities.as_tenant(settings, a.name)))
    try:
        # Its own: allowed (what a pool does when it refunds a file and counts a redelivery).
        assert pool.set(names.refund_key(a.name, ingest_id), "1", nx=True)
        assert pool.incr(names.redeliveries_key(a.name, task_id)) == 1
        for attempt in (lambda: pool.get(names.refund_key(b.name, ingest_id)),
                        lambda: pool.delete(names.refund_key(b.name, ingest_id)),
                        lambda: pool.incr(names.redeliveries_key(b.name, task_id)),
                        lambda: pool.delete(names.redeliveries_key(b.name, task_id)),
                        lambda: pool.hgetall(names.admission_key(b.name, ingest_id)),
                        lambda: pool.hset(names.admission_key(a.name, ingest_id), "ok", "1")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
    finally:
        pool.close()
    assert redis_client.get(names.refund_key(b.name, ingest_id)) == b"1"
    assert redis_client.get(names.redeliveries_key(b.name, task_id)) == b"2"
