"""State of one file's ingestion ("job") in Redis, shared by the tasks of its chunks.

Each chunk stores its outcome under its own index, so a chunk that runs twice (redelivery after a
crash) overwrites rather than adds. The chunk that completes the set finalizes the job; a short
lock keeps two finalizers from racing, and ``finalized`` makes finalizing idempotent.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from ..core import names
from ..services.scripts import source

TTL = 7 * 24 * 3600

OPEN = names.JOBS_OPEN  # ids of jobs admitted and not finalized yet
RESENDS = "resends:"  # job field prefix: task id -> times the sweeper sent it again


class Jobs:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        # Registered once per instance; a process keeps one Jobs (the worker in its context).
        self._record = client.register_script(source("record_chunk"))

    def open(self, job: dict[str, Any], now: float) -> None:
        """Remember an admitted job before its first task is sent (see :mod:`sweeper`)."""
        key = names.job_key(job["ingest_id"])
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"job": json.dumps(job), "updated_at": now})
        pipe.expire(key, TTL)
        pipe.sadd(OPEN, job["ingest_id"])
        pipe.execute()

    def start(self, ingest_id: str, chunks: int | None, started_at: float, plan: list[dict[str, Any]] | None = None,
              fmt: str = "") -> None:
        """Mark the job started; with ``chunks`` (and its ``plan``) planned too. A job started
        without them is being planned: its chunks may run and record outcomes, but none of them
        can complete it until the count is recorded (see :meth:`complete`)."""
        key = names.job_key(ingest_id)
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, "started_at", started_at)
        pipe.hset(key, mapping={"updated_at": started_at, "fmt": fmt})
        if chunks is not None:
            pipe.hset(key, mapping={"chunks": chunks, "plan": json.dumps(plan or [])})
        pipe.expire(key, TTL)
        pipe.execute()

    def complete(self, ingest_id: str) -> bool:
        """Whether the job is planned and every chunk of it has an outcome."""
        chunks = self.chunk_count(ingest_id)
        return chunks is not None and self.redis.hlen(names.job_chunks_key(ingest_id)) >= chunks

    def stale_jobs(self, before: float, batch: int = 1000) -> list[dict[str, Any]]:
        """Every open job without progress since ``before``: its fields, its plan and which chunks
        have an outcome.

        Read in pipelined batches (one command per open job, plus one per stale planned job for
        its chunk outcomes), so a sweep costs a few round trips whatever the backlog.
        """
        ids = sorted(_text(i) for i in self.redis.smembers(OPEN))
        found: list[dict[str, Any]] = []
        for at in range(0, len(ids), batch):
            some = ids[at:at + batch]
            pipe = self.redis.pipeline(transaction=False)
            for ingest_id in some:
                pipe.hmget(names.job_key(ingest_id), "updated_at", "finalized", "job", "plan", "fmt")
            stale: list[dict[str, Any]] = []
            for ingest_id, (updated, final, job, plan, fmt) in zip(some, pipe.execute(), strict=True):
                if updated is None or job is None:
                    self.redis.srem(OPEN, ingest_id)  # expired, or finalized and forgotten
                elif final is None and float(updated) < before:
                    stale.append({"ingest_id": ingest_id, "job": {**json.loads(job), "fmt": _text(fmt or b"")},
                                  "plan": json.loads(plan) if plan is not None else None,
                                  "updated_at": float(updated), "finalized": False, "recorded": set()})
            found.extend(self._with_outcomes(stale))
        return found

    def _with_outcomes(self, stale: list[dict[str, Any]]) -> list[dict[str, Any]]:
        planned = [job for job in stale if job["plan"] is not None]
        pipe = self.redis.pipeline(transaction=False)
        for job in planned:
            pipe.hkeys(names.job_chunks_key(job["ingest_id"]))
        for job, recorded in zip(planned, pipe.execute() if planned else [], strict=True):
            job["recorded"] = {int(i) for i in recorded}
        return stale

    def count_resend(self, ingest_id: str, task_id: str) -> int:
        """Count one more re-send of ``task_id`` by the sweeper; returns how many there were."""
        return int(self.redis.hincrby(names.job_key(ingest_id), RESENDS + task_id, 1))

    def chunk_count(self, ingest_id: str) -> int | None:
        """How many chunks the job was planned into; None before planning."""
        raw = self.redis.hget(names.job_key(ingest_id), "chunks")
        return int(raw) if raw is not None else None

    def started_at(self, ingest_id: str) -> float | None:
        raw = self.redis.hget(names.job_key(ingest_id), "started_at")
        return float(raw) if raw is not None else None

    def record(self, ingest_id: str, index: int, result: dict[str, Any], now: float | None = None) -> bool:
        """Store one chunk's outcome (progress at ``now``); True when every chunk of the job has one."""
        have, total = self._record(keys=[names.job_chunks_key(ingest_id), names.job_key(ingest_id)],
                                   args=[index, json.dumps(result), TTL, time.time() if now is None else now])
        return total >= 0 and int(have) >= int(total)

    def results(self, ingest_id: str) -> list[dict[str, Any]]:
        return [json.loads(v) for v in self.redis.hvals(names.job_chunks_key(ingest_id))]

    def claim_finalize(self, ingest_id: str) -> bool:
        if self.redis.hget(names.job_key(ingest_id), "finalized"):
            return False
        return bool(self.redis.set(names.job_finalizing_key(ingest_id), "1", nx=True, ex=120))

    def release_finalize(self, ingest_id: str) -> None:
        self.redis.delete(names.job_finalizing_key(ingest_id))

    def final_path(self, ingest_id: str, proposal: str) -> str:
        """The file's final path, chosen once: a retried finalize reuses it."""
        key = names.job_key(ingest_id)
        self.redis.hsetnx(key, "final_path", proposal)
        stored = self.redis.hget(key, "final_path")
        return stored.decode() if isinstance(stored, bytes) else proposal

    def is_finalized(self, ingest_id: str) -> bool:
        return bool(self.redis.hget(names.job_key(ingest_id), "finalized"))

    def finalized(self, ingest_id: str) -> None:
        self.redis.hset(names.job_key(ingest_id), "finalized", "1")
        self.redis.srem(OPEN, ingest_id)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
