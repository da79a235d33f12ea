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
from pathlib import Path
from typing import Any

import redis

from ..core import names
from ..services import broker
from ..services.dispatch import Dispatch
from .jobs import Jobs

log = logging.getLogger(__name__)


def needed(job: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """task id -> the chunk to send again (None: the file's planning task), for the tasks an open
    job (as :meth:`Jobs.open_jobs` gives it) still waits for."""
    ingest_id = job["ingest_id"]
    if job["plan"] is None:
        return {names.file_task_id(ingest_id): None}
    missing = [c for c in job["plan"] if c["index"] not in job["recorded"]]
    if not missing and job["plan"]:
        missing = job["plan"][:1]  # all chunks done, not finalized: re-running one finalizes
    return {names.chunk_task_id(ingest_id, c["index"]): c for c in missing}


class Sweeper:
    def __init__(self, client: redis.Redis, processing: Path, dispatch: Dispatch, stall_s: float = 60.0) -> None:
        self.redis = client
        self.jobs = Jobs(client)
        self.processing = processing
        self.dispatch = dispatch
        self.stall_s = stall_s
        self.suspects: set[str] = set()

    def present(self, queue: str, task_ids: set[str]) -> set[str]:
        return task_ids & broker.held_ids(self.redis, [queue])

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
            wanted = needed(job)
            lost = set(wanted) - self.present(names.batch_queue(data["tenant"]), set(wanted))
            for task_id in sorted(lost):
                if task_id in self.suspects:
                    log.warning("tenant=%s ingest=%s file=%s task %s was lost by the broker; sending it again",
                                data["tenant"], job["ingest_id"], data["file"], task_id)
                    self._resend(data, wanted[task_id])
                    resent.append(task_id)
                else:
                    suspects.add(task_id)
        self.suspects = suspects
        return resent

    def _resend(self, job: dict[str, Any], chunk: dict[str, Any] | None) -> None:
        if chunk is None:
            self.dispatch.send_file(job)
        else:
            self.dispatch.send_chunk(job, chunk)
