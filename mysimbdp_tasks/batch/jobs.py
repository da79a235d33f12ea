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

    def start(self, ingest_id: str, chunks: int, started_at: float, plan: list[dict[str, Any]] | None = None,
              fmt: str = "") -> None:
        key = names.job_key(ingest_id)
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, "started_at", started_at)
        pipe.hset(key, mapping={"chunks": chunks, "updated_at": started_at, "plan": json.dumps(plan or []),
                                "fmt": fmt})
        pipe.expire(key, TTL)
        pipe.execute()

    def open_jobs(self) -> list[dict[str, Any]]:
        """Every open job: its fields, its plan and which chunks have an outcome."""
        found = []
        for raw_id in self.redis.smembers(OPEN):
            ingest_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            fields = {_text(k): _text(v) for k, v in self.redis.hgetall(names.job_key(ingest_id)).items()}
            if "job" not in fields:
                self.redis.srem(OPEN, ingest_id)  # expired
                continue
            found.append({
                "ingest_id": ingest_id, "job": {**json.loads(fields["job"]), "fmt": fields.get("fmt", "")},
                "plan": json.loads(fields["plan"]) if "plan" in fields else None,
                "updated_at": float(fields.get("updated_at", 0)), "finalized": "finalized" in fields,
                "recorded": {int(i) for i in self.redis.hkeys(names.job_chunks_key(ingest_id))},
            })
        return found

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
