"""The sweeper: re-send the tasks of a batch job whose messages the broker lost.

Celery's Redis transport takes a message off the queue (BRPOP) and only then records it as
unacknowledged; a worker killed with SIGKILL between the two loses that message for good, where
neither the visibility timeout nor the lease (worker/lease.py) can bring it back. The sweeper
therefore looks, every few seconds, at the open jobs without progress for ``stall_s``: each task
such a job still needs (the file's task, a chunk without an outcome, or the finalize of a job whose
chunks all have one) is looked up by its task id among the messages the broker holds. A task found
nowhere on two sweeps in a row is sent again. Tasks are idempotent, so a rare needless re-send
costs a little work and nothing else.

Scale: one sweep reads the stale jobs in pipelined batches and the broker once (every tenant's
queue and the unacknowledged hash in one round trip, :func:`..services.broker.held_ids`), whatever
the backlog; it runs in a thread of its own, never on the intake path.

A task re-sent ``max_resends`` times and lost again is given up: its chunk gets a failed outcome
naming the reason (``task_lost``) and the file finalizes with a receipt.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from ..core import names
from ..core.settings import DEFAULT_MAX_RESENDS
from ..services import broker
from ..services.dispatch import Dispatch
from .jobs import Jobs

log = logging.getLogger(__name__)

_OUTAGES = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclass(frozen=True)
class Need:
    """A task an open job waits for: ``kind`` "file" (plan, and run a one-chunk file), "chunk"
    (``chunk`` says which) or "finalize"."""

    kind: str
    chunk: dict[str, Any] | None = None


def needed(job: dict[str, Any]) -> dict[str, Need]:
    """task id -> what to send again, for the tasks an open job (as :meth:`Jobs.stale_jobs` gives
    it) still waits for."""
    ingest_id, plan, recorded = job["ingest_id"], job["plan"], job["recorded"]
    if plan is None or (not plan and not recorded):
        return {names.file_task_id(ingest_id): Need("file")}
    missing = [c for c in plan if c["index"] not in recorded]
    if not missing:
        return {names.finalize_task_id(ingest_id): Need("finalize")}
    if len(plan) == 1:
        return {names.file_task_id(ingest_id): Need("file")}  # a one-chunk file runs in its file task
    return {names.chunk_task_id(ingest_id, c["index"]): Need("chunk", c) for c in missing}


def lost_outcome(index: int, resends: int) -> dict[str, Any]:
    """The outcome recorded for a chunk whose task the broker lost every time it was sent."""
    return {"index": index, "rows_ok": 0, "rows_refused": 0, "refusals": [],
            "error": {"reason": "task_lost",
                      "detail": f"sent {resends + 1} times and lost each time (a worker died holding it)"}}


class Sweeper:
    def __init__(self, client: redis.Redis, processing: Path, dispatch: Dispatch, stall_s: float = 60.0,
                 max_resends: int = DEFAULT_MAX_RESENDS) -> None:
        self.redis = client
        self.jobs = Jobs(client)
        self.processing = processing
        self.dispatch = dispatch
        self.stall_s = stall_s
        self.max_resends = max_resends
        self.suspects: set[str] = set()

    def sweep(self, now: float | None = None) -> list[str]:
        """One pass; returns the task ids sent again (or given up)."""
        now = time.time() if now is None else now
        own = str(self.processing).rstrip(os.sep) + os.sep  # jobs of another MYSIMBDP_HOME are not ours
        stale = [j for j in self.jobs.stale_jobs(now - self.stall_s) if str(j["job"].get("path", "")).startswith(own)]
        wanted = {task_id: (job, need) for job in stale for task_id, need in needed(job).items()}
        if not wanted:
            self.suspects = set()
            return []
        queues = sorted({names.batch_queue(job["tenant"]) for job in stale})
        lost = set(wanted) - broker.held_ids(self.redis, queues)
        resent = sorted(lost & self.suspects)
        for task_id in resent:
            job, need = wanted[task_id]
            self._resend(job, task_id, need)
        self.suspects = lost - set(resent)
        return resent

    def _resend(self, job: dict[str, Any], task_id: str, need: Need) -> None:
        data, tenant, ingest_id = job["job"], job["tenant"], job["ingest_id"]
        count = self.jobs.count_resend(tenant, ingest_id, task_id)
        if need.kind == "finalize" or count <= self.max_resends:
            log.warning("tenant=%s ingest=%s file=%s task %s was lost by the broker; sending it again (%d/%d)",
                        data["tenant"], ingest_id, data["file"], task_id, count, self.max_resends)
            if need.kind == "file":
                self.dispatch.send_file(data)
            elif need.kind == "chunk":
                assert need.chunk is not None
                self.dispatch.send_chunk(data, need.chunk)
            else:
                self.dispatch.send_finalize(data)
            return
        log.error("tenant=%s ingest=%s file=%s task %s lost %d times; the file fails with reason task_lost",
                  data["tenant"], ingest_id, data["file"], task_id, count)
        index = need.chunk["index"] if need.chunk is not None else 0
        if not job["plan"]:  # lost before planning: the file is one failed chunk
            self.jobs.start(tenant, ingest_id, 1, time.time(), [], data.get("fmt", ""))
        self.jobs.record(tenant, ingest_id, index, lost_outcome(index, count - 1))
        self.dispatch.send_finalize(data)

    def run(self, stop: threading.Event, every: float | None = None) -> None:
        """Sweep every ``every`` seconds (half the stall time, at most 10 s) until ``stop`` is set.

        Nothing a sweep meets stops the thread: a Redis outage is waited out, anything else is
        logged and the next sweep tries again.
        """
        every = every or min(10.0, self.stall_s / 2)
        away = False
        while not stop.wait(every):
            try:
                self.sweep()
                away = False
            except _OUTAGES as exc:
                if not away:
                    log.error("sweeper: redis unavailable, sweeping again when it is back: %s", exc)
                away = True
            except Exception:  # one failed sweep must not end the sweeping
                log.exception("sweeper: sweep failed; trying again in %.0f s", every)
