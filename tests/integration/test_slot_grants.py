"""Batch slot grants against the real Redis: several schedulers granting at once never give out more
slots than there are, and give them in priority order; a lapsed lease's slot goes to the next file."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from mysimbdp_tasks.batch import slots
from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.core import names, priorities
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = pytest.mark.integration

SLOT_KEYS = (names.SLOTS_HELD, names.SLOTS_QUEUED, names.SLOTS_QUEUED_JOBS, names.SLOTS_GRANTED)


@pytest.fixture
def tenant(redis_client: redis.Redis) -> Iterator[str]:
    """A tenant name of this test's own, its queue and the slots cleaned before and after."""
    name = "s" + uuid.uuid4().hex[:10]
    redis_client.delete(*SLOT_KEYS)
    yield name
    redis_client.delete(*SLOT_KEYS, names.batch_queue(name))


def _queue(client: redis.Redis, tenant: str, levels: list[int], lease: float) -> list[str]:
    """Queue one file per level, admitted in that order; their ingest ids."""
    ids = []
    pipe = client.pipeline()
    for at, level in enumerate(levels):
        ingest_id, admitted = uuid.uuid4().hex, 1e9 + at
        job = {"ingest_id": ingest_id, "tenant": tenant, "file": f"{tenant}-{at}.csv", "bytes": 1,
               "admitted_at": admitted, "priority": level, slots.LEASE_KEY: lease}
        pipe.hset(names.SLOTS_QUEUED_JOBS, ingest_id, json.dumps(job))
        pipe.zadd(names.SLOTS_QUEUED, {ingest_id: priorities.rank(level, admitted)})
        ids.append(ingest_id)
    pipe.execute()
    return ids


def _sent(client: redis.Redis, tenant: str) -> list[str]:
    """Ingest ids of the file tasks on the tenant's queue, first sent first."""
    bodies = [json.loads(m) for m in reversed(client.lrange(names.batch_queue(tenant), 0, -1))]
    return [b["headers"]["id"] for b in bodies]


def _forget(client: redis.Redis, ids: list[str]) -> None:
    client.delete(*(names.job_key(i) for i in ids))
    client.srem(names.JOBS_OPEN, *ids)


def test_concurrent_schedulers_never_over_grant_and_grant_the_highest_priorities(
        settings: Settings, tenant: str, redis_client: redis.Redis) -> None:
    levels = [9 if i % 10 == 5 else 1 for i in range(200)]  # 20 urgent files among 200
    ids = _queue(redis_client, tenant, levels, lease=600)
    app = make_app(settings)
    clients = [redis.Redis.from_url(settings.redis_url) for _ in range(8)]
    heads = [slots.Slots(c, Jobs(c), Dispatch(app), slots=3, lease_s=600) for c in clients]
    barrier = threading.Barrier(len(heads))

    def grant(head: slots.Slots) -> None:
        barrier.wait()
        for _ in range(20):
            head.release_due()

    threads = [threading.Thread(target=grant, args=(h,)) for h in heads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        held = slots.held(redis_client)
        urgent = [i for i, level in zip(ids, levels, strict=True) if level == 9]
        assert sorted(held) == sorted(urgent[:3])  # three slots, to the first three urgent files
        assert sorted(_sent(redis_client, tenant)) == sorted(names.file_task_id(i) for i in urgent[:3])  # once each
        assert len(slots.queued(redis_client, tenant)) == 197
    finally:
        _forget(redis_client, ids)


def test_a_lapsed_lease_gives_its_slot_to_the_next_file(
        settings: Settings, tenant: str, redis_client: redis.Redis) -> None:
    ids = _queue(redis_client, tenant, [5, 5, 5, 5], lease=0.5)
    head = slots.Slots(redis_client, Jobs(redis_client), Dispatch(make_app(settings)), slots=3, lease_s=0.5)
    try:
        assert sorted(head.release_due()) == sorted(ids[:3])
        time.sleep(0.6)  # nobody renews: every lease lapses
        assert head.release_due() == ids[3:]
        assert slots.held(redis_client) == ids[3:]
    finally:
        _forget(redis_client, ids)
