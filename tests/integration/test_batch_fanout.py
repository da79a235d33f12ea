"""A file of many chunks fans out while it is planned, and finalizes once, whichever ends last:
its chunks or its plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kit import running_platform

from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from producers.generate import generate

pytestmark = [pytest.mark.integration]

OUTCOME = {"rows_ok": 1, "rows_refused": 0, "refusals": []}


def test_chunks_done_before_the_plan_is_recorded_complete_the_job_only_then(redis_client: Any) -> None:
    jobs = Jobs(redis_client)
    tenant, ingest_id = "fanout", "fanout-early-chunks"
    try:
        jobs.start(tenant, ingest_id, None, started_at=0.0, fmt="json")  # being planned: no chunk count yet
        assert not jobs.record(tenant, ingest_id, 0, {"index": 0, **OUTCOME})
        assert not jobs.record(tenant, ingest_id, 1, {"index": 1, **OUTCOME})
        assert not jobs.complete(tenant, ingest_id)
        plan = [{"index": i, "start_offset": i, "end_offset": i + 1, "first_number": i + 1} for i in range(3)]
        jobs.start(tenant, ingest_id, 3, started_at=1.0, plan=plan, fmt="json")
        assert not jobs.complete(tenant, ingest_id)
        assert jobs.record(tenant, ingest_id, 2, {"index": 2, **OUTCOME})  # the last chunk sees the count
        assert jobs.complete(tenant, ingest_id)
        assert jobs.started_at(tenant, ingest_id) == 0.0  # the first start counts
    finally:
        redis_client.delete(names.job_key(tenant, ingest_id), names.job_chunks_key(tenant, ingest_id))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_json_array_of_many_chunks_lands_whole_with_one_receipt(make_tenant: Any, settings: Settings,
                                                                  cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant1")
    src = generate("tenant1", 3 * 1024 * 1024, tmp_path / "big.json", seed=31, fmt="json")
    with running_platform(settings, tenant, tmp_path / "h", extra_env={"MYSIMBDP_CHUNK_MB": "0.25"}) as p:
        name = p.stage(src.path, f"{tenant.name}-big.json")
        path, receipt = p.final(name, timeout=400)
    assert receipt["status"] == "done", receipt
    assert receipt["rows_ok"] == src.records and receipt["rows_refused"] == 0
    assert receipt["chunks"] >= 10
    assert path.parent.parent.name == "done"
    rows = cassandra_session.execute(f'SELECT COUNT(*) FROM "{tenant.namespace}"."{tenant.table_name}"',
                                     timeout=120).one()[0]
    assert rows == src.distinct_keys
