"""Batch slot grants against the real Redis: several schedulers granting at once never give out more
slots than there are, and give them in priority order; a lapsed lease's slot goes to the next file,
and the lapsed file, once its tasks ask again, gets its old place back."""

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

SLOT_KEYS = (names.SLOTS_HELD, names.SLOTS_QUEUED, names.SLOTS_QUEUED_JOBS, names.SLOTS_GRANTED, names.SLOTS_RUNNING,
             names.SLOTS_LAPSED)


@pytest.fixture
def tenant(redis_client: redis.Redis) -> Iterator[str]:
    """A tenant name of this test's own, its queue and the slots cleaned before and after."""
    name = "s" + uuid.uuid4().hex[:10]
    redis_client.delete(*SLOT_KEYS)
    yield name
    redis_client.delete(*SLOT_KEYS, names.batch_queue(name), names.slot_lease_key(name), names.slot_wanted_key(name))


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


def _forget(client: redis.Redis, tenant: str, ids: list[str]) -> None:
    client.delete(*(names.job_key(tenant, i) for i in ids))
    client.srem(names.jobs_open_key(tenant), *ids)


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
        _forget(redis_client, tenant, ids)


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
        _forget(redis_client, tenant, ids)


def test_a_lapsed_file_asking_again_gets_its_old_place_and_a_given_back_slot_is_free(
        settings: Settings, tenant: str, redis_client: redis.Redis) -> None:
    """The pool's side goes through its tenant's own keys only: renewing, asking again, giving back."""
    ids = _queue(redis_client, tenant, [5, 5, 5], lease=0.5)
    head = slots.Slots(redis_client, Jobs(redis_client), Dispatch(make_app(settings)), slots=1, lease_s=0.5)
    try:
        assert head.release_due() == ids[:1]
        first = json.loads(redis_client.hget(names.SLOTS_RUNNING, ids[0]) or b"{}")
        assert slots.hold(redis_client, first)  # its task runs, renewing the lease
        time.sleep(0.6)  # its pool died: nobody renews
        assert head.release_due() == ids[1:2]
        assert not slots.hold(redis_client, first)  # its task is back: the slot went to the next file
        assert [q["ingest_id"] for q in slots.queued(redis_client, tenant)] == ids[2:]
        slots.give_back(redis_client, tenant, ids[1])  # the second file is finalized
        assert slots.held(redis_client) == []
        # The first file asked again: it is back in the line at its old place, ahead of the third.
        assert head.release_due() == ids[:1]
        assert slots.held(redis_client) == ids[:1] and slots.hold(redis_client, first)
        assert [q["ingest_id"] for q in slots.queued(redis_client, tenant)] == ids[2:]
        # Granted again, it was not sent again: its own tasks are retrying for it.
        assert _sent(redis_client, tenant) == [names.file_task_id(i) for i in ids[:2]]
    finally:
        _forget(redis_client, tenant, ids)
