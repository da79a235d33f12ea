"""State of one file's ingestion ("job") in Redis, shared by the tasks of its chunks.

Each chunk stores its outcome under its own index, so a chunk that runs twice (redelivery after a
crash) overwrites rather than adds. The chunk that completes the set finalizes the job; a short
lock keeps two finalizers from racing, and ``finalized`` makes finalizing idempotent.

Every key of a job is named by its tenant first (``mysimbdp:job:<tenant>:<ingest id>``), and so is
the set of the tenant's open jobs, so in secure mode a tenant's pool reaches its own jobs only
(security/redis_acl.py). The sweeper finds the tenants with open jobs in one index set that only
the platform writes (the watcher adds a tenant when it opens a job; the sweeper drops a tenant
whose set is empty).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis

from ..core import names
from ..services.scripts import source

log = logging.getLogger(__name__)

TTL = 7 * 24 * 3600

TENANTS = names.JOBS_TENANTS  # tenants that may have open jobs
RESENDS = "resends:"  # job field prefix: task id -> times the sweeper sent it again


class Jobs:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        # Registered once per instance; a process keeps one Jobs (the worker in its context).
        self._record = client.register_script(source("record_chunk"))
        self._forget_tenant = client.register_script(source("forget_tenant_jobs"))

    def open(self, job: dict[str, Any], now: float) -> None:
        """Remember an admitted job before its first task is sent (see :mod:`sweeper`)."""
        tenant = job["tenant"]
        key = names.job_key(tenant, job["ingest_id"])
        pipe = self.redis.pipeline()  # one transaction: the sweeper never sees the job without its tenant
        pipe.hset(key, mapping={"job": json.dumps(job), "updated_at": now})
        pipe.expire(key, TTL)
        pipe.sadd(names.jobs_open_key(tenant), job["ingest_id"])
        pipe.sadd(TENANTS, tenant)
        pipe.execute()

    def start(self, tenant: str, ingest_id: str, chunks: int | None, started_at: float,
              plan: list[dict[str, Any]] | None = None, fmt: str = "") -> None:
        """Mark the job started; with ``chunks`` (and its ``plan``) planned too. A job started
        without them is being planned: its chunks may run and record outcomes, but none of them
        can complete it until the count is recorded (see :meth:`complete`)."""
        key = names.job_key(tenant, ingest_id)
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, "started_at", started_at)
        pipe.hset(key, mapping={"updated_at": started_at, "fmt": fmt})
        if chunks is not None:
            pipe.hset(key, mapping={"chunks": chunks, "plan": json.dumps(plan or [])})
        pipe.expire(key, TTL)
        pipe.execute()

    def complete(self, tenant: str, ingest_id: str) -> bool:
        """Whether the job is planned and every chunk of it has an outcome."""
        chunks = self.chunk_count(tenant, ingest_id)
        return chunks is not None and self.redis.hlen(names.job_chunks_key(tenant, ingest_id)) >= chunks

    def open_ids(self) -> list[tuple[str, str]]:
        """(tenant, ingest id) of every open job, in one pipelined read of the tenants' open sets;
        a tenant without open jobs leaves the index."""
        tenants = sorted(_text(t) for t in self.redis.smembers(TENANTS))
        pipe = self.redis.pipeline(transaction=False)
        for tenant in tenants:
            pipe.smembers(names.jobs_open_key(tenant))
        found: list[tuple[str, str]] = []
        for tenant, ids in zip(tenants, pipe.execute() if tenants else [], strict=True):
            if not ids:  # atomically: a job opened meanwhile keeps its tenant in the index
                self._forget_tenant(keys=[names.jobs_open_key(tenant), TENANTS], args=[tenant])
            found.extend((tenant, _text(i)) for i in ids)
        return sorted(found)

    def stale_jobs(self, before: float, batch: int = 1000) -> list[dict[str, Any]]:
        """Every open job without progress since ``before``: its fields, its plan and which chunks
        have an outcome.

        Read in pipelined batches (one command per open job, plus one per stale planned job for
        its chunk outcomes), so a sweep costs a few round trips whatever the backlog.
        """
        ids = self.open_ids()
        found: list[dict[str, Any]] = []
        for at in range(0, len(ids), batch):
            some = ids[at:at + batch]
            pipe = self.redis.pipeline(transaction=False)
            for tenant, ingest_id in some:
                pipe.hmget(names.job_key(tenant, ingest_id), "updated_at", "finalized", "job", "plan", "fmt")
            stale: list[dict[str, Any]] = []
            for (tenant, ingest_id), (updated, final, job, plan, fmt) in zip(some, pipe.execute(), strict=True):
                if updated is None or job is None:
                    self.redis.srem(names.jobs_open_key(tenant), ingest_id)  # expired, or finalized and forgotten
                elif final is None and float(updated) < before:
                    data = json.loads(job)
                    if (data.get("tenant"), data.get("ingest_id")) != (tenant, ingest_id):
                        # Its key names it (the platform's word): a job that claims another is not sent on.
                        log.error("tenant=%s ingest=%s open job claims to be tenant=%s ingest=%s; not swept",
                                  tenant, ingest_id, data.get("tenant"), data.get("ingest_id"))
                        continue
                    stale.append({"ingest_id": ingest_id, "tenant": tenant, "job": {**data, "fmt": _text(fmt or b"")},
                                  "plan": json.loads(plan) if plan is not None else None,
                                  "updated_at": float(updated), "finalized": False, "recorded": set()})
            found.extend(self._with_outcomes(stale))
        return found

    def _with_outcomes(self, stale: list[dict[str, Any]]) -> list[dict[str, Any]]:
        planned = [job for job in stale if job["plan"] is not None]
        pipe = self.redis.pipeline(transaction=False)
        for job in planned:
            pipe.hkeys(names.job_chunks_key(job["tenant"], job["ingest_id"]))
        for job, recorded in zip(planned, pipe.execute() if planned else [], strict=True):
            job["recorded"] = {int(i) for i in recorded}
        return stale

    def count_resend(self, tenant: str, ingest_id: str, task_id: str) -> int:
        """Count one more re-send of ``task_id`` by the sweeper; returns how many there were."""
        return int(self.redis.hincrby(names.job_key(tenant, ingest_id), RESENDS + task_id, 1))

    def chunk_count(self, tenant: str, ingest_id: str) -> int | None:
        """How many chunks the job was planned into; None before planning."""
        raw = self.redis.hget(names.job_key(tenant, ingest_id), "chunks")
        return int(raw) if raw is not None else None

    def started_at(self, tenant: str, ingest_id: str) -> float | None:
        raw = self.redis.hget(names.job_key(tenant, ingest_id), "started_at")
        return float(raw) if raw is not None else None

    def record(self, tenant: str, ingest_id: str, index: int, result: dict[str, Any],
               now: float | None = None) -> bool:
        """Store one chunk's outcome (progress at ``now``); True when every chunk of the job has one."""
        have, total = self._record(keys=[names.job_chunks_key(tenant, ingest_id), names.job_key(tenant, ingest_id)],
                                   args=[index, json.dumps(result), TTL, time.time() if now is None else now])
        return total >= 0 and int(have) >= int(total)

    def results(self, tenant: str, ingest_id: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.redis.hvals(names.job_chunks_key(tenant, ingest_id))]

    def claim_finalize(self, tenant: str, ingest_id: str) -> bool:
        if self.redis.hget(names.job_key(tenant, ingest_id), "finalized"):
            return False
        return bool(self.redis.set(names.job_finalizing_key(tenant, ingest_id), "1", nx=True, ex=120))

    def release_finalize(self, tenant: str, ingest_id: str) -> None:
        self.redis.delete(names.job_finalizing_key(tenant, ingest_id))

    def final_path(self, tenant: str, ingest_id: str, proposal: str) -> str:
        """The file's final path, chosen once: a retried finalize reuses it."""
        key = names.job_key(tenant, ingest_id)
        self.redis.hsetnx(key, "final_path", proposal)
        stored = self.redis.hget(key, "final_path")
        return stored.decode() if isinstance(stored, bytes) else proposal

    def is_open(self, tenant: str, ingest_id: str) -> bool:
        """Whether the job was opened (its tasks sent), finalized or not."""
        return bool(self.redis.hexists(names.job_key(tenant, ingest_id), "job"))

    def is_finalized(self, tenant: str, ingest_id: str) -> bool:
        return bool(self.redis.hget(names.job_key(tenant, ingest_id), "finalized"))

    def finalized(self, tenant: str, ingest_id: str) -> None:
        self.redis.hset(names.job_key(tenant, ingest_id), "finalized", "1")
        self.redis.srem(names.jobs_open_key(tenant), ingest_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
