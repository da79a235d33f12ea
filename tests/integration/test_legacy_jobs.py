"""Files in flight across an upgrade: the open jobs of a platform that named job keys by ingest id
only are adopted under their tenant's names when the watcher starts, keep the chunk outcomes
recorded on either side of the upgrade, and are swept and finished like any other."""

from __future__ import annotations

import json
import uuid

import pytest
import redis

from mysimbdp_tasks.batch import legacy, slots
from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.batch.sweeper import Need, needed
from mysimbdp_tasks.core import names

pytestmark = pytest.mark.integration


def test_an_open_job_of_an_older_platform_is_adopted_under_its_tenants_names(redis_client: redis.Redis) -> None:
    tenant, ingest_id = "legacy" + uuid.uuid4().hex[:8], uuid.uuid4().hex
    job = {"ingest_id": ingest_id, "tenant": tenant, "file": "x.csv", "bytes": 10, "day": "2026-01-01",
           "admitted_at": 0.0, "path": "/nowhere/x.csv", "priority": 5, slots.LEASE_KEY: 30.0}
    plan = [{"index": i, "start_offset": i, "end_offset": i + 1, "first_number": i + 2} for i in range(2)]
    old_job, old_chunks = names.legacy_job_keys(ingest_id)
    outcome = {"rows_ok": 1, "rows_refused": 0, "refusals": []}
    # As the older platform left it: chunk 0 recorded, the file holding a batch slot.
    redis_client.hset(old_job, mapping={"job": json.dumps(job), "updated_at": 0.0, "started_at": 0.0,
                                        "chunks": 2, "plan": json.dumps(plan), "fmt": "csv"})
    redis_client.hset(old_chunks, "0", json.dumps({"index": 0, **outcome}))
    redis_client.sadd(names.JOBS_OPEN, ingest_id)
    redis_client.zadd(names.SLOTS_HELD, {ingest_id: 1e12})
    jobs = Jobs(redis_client)
    # A pool on the new code ran chunk 1 before the watcher started: it recorded under the new name.
    assert not jobs.record(tenant, ingest_id, 1, {"index": 1, **outcome}, now=0.0)
    try:
        assert legacy.adopt(redis_client) >= 1
        assert not redis_client.exists(old_job, old_chunks)
        assert not redis_client.sismember(names.JOBS_OPEN, ingest_id)
        assert jobs.complete(tenant, ingest_id)  # both outcomes, under the tenant's names
        [stale] = [j for j in jobs.stale_jobs(before=1.0) if j["ingest_id"] == ingest_id]
        assert (stale["tenant"], stale["recorded"], stale["job"]["file"]) == (tenant, {0, 1}, "x.csv")
        # The sweeper sends its finalize, as for any job whose every chunk has an outcome.
        assert needed(stale) == {names.finalize_task_id(ingest_id): Need("finalize")}
        # Its slot's lease is now in the tenant's own key, where its pool renews it.
        assert slots.hold(redis_client, job, renew_only=True)
        assert slots.held(redis_client).count(ingest_id) == 1
    finally:
        jobs.finalized(tenant, ingest_id)
        redis_client.delete(names.job_key(tenant, ingest_id), names.job_chunks_key(tenant, ingest_id),
                            names.slot_lease_key(tenant))
        redis_client.zrem(names.SLOTS_HELD, ingest_id)
        redis_client.hdel(names.SLOTS_RUNNING, ingest_id)
