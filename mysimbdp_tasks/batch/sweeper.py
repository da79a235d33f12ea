"""The sweeper: re-send the tasks of a batch job whose messages the broker lost.

Celery's Redis transport takes a message off the queue (BRPOP) and only then records it as
unacknowledged; a worker killed with SIGKILL between the two loses that message for good, where
the visibility timeout cannot bring it back. The watcher therefore sweeps open jobs: for a job
without progress for ``stall_s``, each task it still needs (the file's planning task, or the chunks
without an outcome) is looked up by its task id in the tenant's queue and in the transport's
unacknowledged messages. A task found nowhere on two sweeps in a row is sent again. Tasks are
idempotent, so a rare needless re-send costs a little work and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import redis

from .jobs import Jobs

log = logging.getLogger(__name__)

UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages

SendFile = Callable[[dict[str, Any]], None]
SendChunk = Callable[[dict[str, Any], dict[str, Any]], None]


class Sweeper:
    def __init__(self, client: redis.Redis, processing: Path, send_file: SendFile, send_chunk: SendChunk,
                 stall_s: float = 60.0) -> None:
        self.redis = client
        self.jobs = Jobs(client)
        self.processing = processing
        self.send_file = send_file
        self.send_chunk = send_chunk
        self.stall_s = stall_s
        self.suspects: set[str] = set()

    def needed(self, job: dict[str, Any]) -> dict[str, Callable[[], None]]:
        """task id -> how to send it again, for the tasks the job still waits for."""
        ingest_id, data = job["ingest_id"], job["job"]
        if job["plan"] is None:
            return {f"{ingest_id}-file": partial(self.send_file, data)}
        missing = [c for c in job["plan"] if c["index"] not in job["recorded"]]
        if not missing and job["plan"]:
            missing = job["plan"][:1]  # all chunks done, not finalized: re-running one finalizes
        return {f"{ingest_id}-chunk-{c['index']}": partial(self.send_chunk, data, c) for c in missing}

    def present(self, queue: str, task_ids: set[str]) -> set[str]:
        messages = self.redis.lrange(queue, 0, -1) + self.redis.hvals(UNACKED)
        return {t for t in task_ids if any(t.encode() in m for m in messages)}

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass; returns the task ids sent again."""
        now = time.time() if now is None else now
        resent: list[str] = []
        suspects: set[str] = set()
        for job in self.jobs.open_jobs():
            data = job["job"]
            if job["finalized"] or now - job["updated_at"] < self.stall_s:
                continue
            if not Path(data.get("path", "")).is_relative_to(self.processing):
                continue  # another MYSIMBDP_HOME's job
            needed = self.needed(job)
            lost = set(needed) - self.present(f"{data['tenant']}.batch", set(needed))
            for task_id in sorted(lost):
                if task_id in self.suspects:
                    log.warning("tenant=%s ingest=%s file=%s task %s was lost by the broker; sending it again",
                                data["tenant"], job["ingest_id"], data["file"], task_id)
                    needed[task_id]()
                    resent.append(task_id)
                else:
                    suspects.add(task_id)
        self.suspects = suspects
        return resent
