"""The sweeper at scale and at its limit, against the real Redis, Cassandra and worker pools."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from kit import Platform, table_rows

from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.batch.sweeper import Sweeper
from mysimbdp_tasks.core import filenames, names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HEADER = b"created_utc,subreddit,id,author,body\n"
BACKLOG = 3000


def _forget_jobs(client: redis.Redis, folder: Path) -> None:
    """Close the test's open jobs (``folder``: processing/<tenant>), so later sweeps (of any home) do
    not read them."""
    ids = [p.name.split("__", 1)[0] for p in folder.glob("*__*")] if folder.is_dir() else []
    pipe = client.pipeline(transaction=False)
    for ingest_id in ids:
        pipe.srem(names.jobs_open_key(folder.name), ingest_id)
        pipe.delete(names.job_key(folder.name, ingest_id))
    pipe.execute()


def _wait_until(what: str, check: Any, platform: Platform, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise TimeoutError(f"{what} not reached in {timeout} s; logs:\n{platform.logs()}")


@pytest.mark.timeout(900)
def test_with_3000_files_queued_a_new_file_of_another_tenant_still_lands(
        make_tenant: Any, settings: Settings, redis_client: Any, cassandra_session: Any, tmp_path: Path) -> None:
    idle = make_tenant(provision=False, max_number_of_files=BACKLOG + 10)  # no worker: its files queue
    busy = make_tenant(like="tenant2")
    # A short stall time: the sweeper looks at all 3,000 stale jobs every second while intake goes on.
    platform = Platform(settings, busy, tmp_path / "h", extra_env={"MYSIMBDP_STALL_SECONDS": "2"})
    staging = platform.home / "staging"
    for i in range(BACKLOG):
        (staging / f"{idle.name}-{i}.csv").write_bytes(HEADER + b"1420070400,s,id%d,a,b\n" % i)
    queued = platform.home / "processing" / idle.name
    try:
        platform.start()
        _wait_until(f"{BACKLOG} files queued", lambda: redis_client.llen(idle.batch_queue) >= BACKLOG, platform, 600)
        time.sleep(5)  # several sweeps of the whole backlog
        staged_at = time.time()
        name = platform.stage(_file(tmp_path, b"1420070400,s,fresh,a,b\n"), f"{busy.name}-fresh.csv")
        _, receipt = platform.final(name, timeout=120)
        print(f"\nwith {BACKLOG} files queued: admitted {receipt['admitted_at'] - staged_at:.2f} s and landed "
              f"{receipt['finished_at'] - staged_at:.2f} s after staging")  # reported, not asserted
        assert redis_client.llen(idle.batch_queue) == BACKLOG  # nothing was sent twice
        watcher_log = (platform.home / "logs" / "watcher.log").read_text()
    finally:
        platform.stop()
        redis_client.delete(idle.batch_queue)
        _forget_jobs(redis_client, queued)
    assert receipt["status"] == "done" and receipt["rows_ok"] == 1
    assert [r.id for r in table_rows(cassandra_session, busy)] == ["fresh"]
    assert len(list(queued.glob("*__*.csv"))) == BACKLOG  # every queued file admitted, none lost
    assert "lost by the broker" not in watcher_log


def _file(tmp_path: Path, rows: bytes) -> Path:
    src = tmp_path / f"src-{time.monotonic_ns()}.csv"
    src.write_bytes(HEADER + rows)
    return src


@pytest.mark.timeout(300)
def test_a_task_lost_more_often_than_the_cap_fails_its_file_with_a_receipt(
        make_tenant: Any, settings: Settings, redis_client: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    platform = Platform(settings, tenant, tmp_path / "h")
    ingest_id = uuid.uuid4().hex
    data = HEADER + b"1420070400,s,one,a,b\n" + b"1420070400,s,two,a,b\n"
    path = platform.home / "processing" / tenant.name / filenames.disk_name(ingest_id, "lost.csv")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    st = path.stat()
    job = {"ingest_id": ingest_id, "tenant": tenant.name, "file": "lost.csv", "bytes": len(data),
           "inode": st.st_ino, "mtime_ns": st.st_mtime_ns, "day": "2026-01-01", "admitted_at": 0.0,
           "path": str(path)}
    split = len(HEADER) + len(data[len(HEADER):]) // 2
    plan = [{"index": 0, "start_offset": 0, "end_offset": split, "first_number": 2},
            {"index": 1, "start_offset": split, "end_offset": len(data), "first_number": 3}]
    jobs = Jobs(redis_client)
    jobs.open(job, now=0.0)
    jobs.start(tenant.name, ingest_id, 2, started_at=0.0, plan=plan, fmt="csv")
    jobs.record(tenant.name, ingest_id, 0, {"index": 0, "rows_ok": 0, "rows_refused": 0, "refusals": []}, now=0.0)
    # Chunk 1's task is nowhere: lost. With a cap of one re-send, the first sweeps send it once
    # (and it is "lost" again: nothing consumes it), the next ones give it up.
    sweeper = Sweeper(redis_client, (platform.home / "processing").resolve(), Dispatch(make_app(settings)),
                      stall_s=5, max_resends=1)
    task = names.chunk_task_id(ingest_id, 1)
    try:
        assert sweeper.sweep() == [] and sweeper.sweep() == [task]
        redis_client.delete(tenant.batch_queue)  # the re-sent message is lost too
        assert sweeper.sweep() == [] and sweeper.sweep() == [task]  # given up: the file is finalized
        platform.start_worker()
        final, receipt = platform.final("lost.csv")
        _wait_until("the job closed", lambda: not redis_client.sismember(names.jobs_open_key(tenant.name), ingest_id),
                    platform, 60)
    finally:
        platform.stop()
    assert final.parent.parent.name == "failed"
    assert receipt["status"] == "failed" and receipt["reason"] == "task_lost"
    assert "2 times" in receipt["errors"][0]["detail"]
    assert os.path.exists(final)
