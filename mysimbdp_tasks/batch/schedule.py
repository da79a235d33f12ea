"""Files admitted outside their tenant's ingestion window: held, ``scheduled``, until a window opens.

Admission (and the quota) is decided when the file arrives, as for any file; only its start waits.
A held file sits in ``processing/<tenant>/`` like a queued one, and its job in Redis: a sorted set
(ingest id -> when its window opens, as first computed, for ``status``) and a hash (ingest id ->
the job). The watcher looks about once a second: a held file whose tenant's window is open now (the
tenant's current windows, so a re-applied configuration counts at once) is started exactly as an
admitted file is, by opening its job and sending its task. A file already running when its window
closes runs to its end; its chunks are not held.

Releasing is safe with several watchers and across crashes: a short lock per file decides who
starts it, and a job already open (started by a release that died before cleaning up) is only
cleaned up, never sent twice; the sweeper looks after a started job's lost task as for any other.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import redis

from ..core import names, windows
from ..core.tenants import Tenant
from ..services.dispatch import Dispatch
from .jobs import Jobs
from .slots import Slots

log = logging.getLogger(__name__)

SCHEDULED = names.PREFIX + "scheduled"  # sorted set: ingest id -> when its window opens (epoch s)
SCHEDULED_JOBS = names.PREFIX + "scheduled:jobs"  # hash: ingest id -> job JSON
LOCK_PREFIX = names.PREFIX + "scheduled:lock:"
LOCK_S = 60
EVERY_S = 1.0


def waiting(client: redis.Redis, tenant: str | None = None) -> list[dict[str, Any]]:
    """Held jobs (of ``tenant``, or all), earliest first, each with ``opens_at`` (epoch seconds)."""
    ids: list[str] = [i.decode() if isinstance(i, bytes) else str(i) for i in client.zrange(SCHEDULED, 0, -1)]
    raw = client.hmget(SCHEDULED_JOBS, ids) if ids else []
    held = [json.loads(r) for r in raw if r is not None]
    return [j for j in held if tenant is None or j["tenant"] == tenant]


class Schedule:
    def __init__(self, client: redis.Redis, jobs: Jobs, dispatch: Dispatch, slots: Slots | None = None) -> None:
        self.redis, self.jobs, self.dispatch, self.slots = client, jobs, dispatch, slots
        self._looked = 0.0

    def _go(self, job: dict[str, Any], tenant: Tenant | None, now: float) -> None:
        """Start the file now, or queue it for a batch slot when the platform limits them."""
        if self.slots is not None:
            self.slots.submit(job, tenant)
            return
        self.jobs.open(job, now)
        self.dispatch.send_file(job)

    def start(self, job: dict[str, Any], tenant: Tenant | None, now: float | None = None) -> bool:
        """Start the admitted file now, or hold it until its tenant's window opens; True if held."""
        now = time.time() if now is None else now
        wins = tenant.windows if tenant else ()
        at = datetime.fromtimestamp(now, UTC)
        if windows.is_open(wins, at):
            self._go(job, tenant, now)
            return False
        opens = windows.next_open(wins, at).timestamp()
        pipe = self.redis.pipeline()
        pipe.hset(SCHEDULED_JOBS, job["ingest_id"], json.dumps({**job, "opens_at": opens}))
        pipe.zadd(SCHEDULED, {job["ingest_id"]: opens})
        pipe.execute()
        log.info("tenant=%s file=%s ingest=%s scheduled: outside its ingestion windows (%s), starts at %s",
                 job["tenant"], job["file"], job["ingest_id"], ", ".join(w.text for w in wins),
                 datetime.fromtimestamp(opens, UTC).isoformat(timespec="seconds"))
        return True

    def waiting(self) -> list[dict[str, Any]]:
        return waiting(self.redis)

    def release_due(self, tenants: dict[str, Tenant], now: float | None = None) -> list[str]:
        """Start every held file whose tenant's window is open now; at most once a second."""
        now = time.time() if now is None else now
        if now - self._looked < EVERY_S:
            return []
        self._looked = now
        at = datetime.fromtimestamp(now, UTC)
        started = []
        for job in self.waiting():
            tenant = tenants.get(job["tenant"])
            if tenant is not None and windows.is_open(tenant.windows, at) and self._release(job, tenant, now):
                started.append(job["ingest_id"])
        return started

    def _release(self, job: dict[str, Any], tenant: Tenant, now: float) -> bool:
        ingest_id = job["ingest_id"]
        if not self.redis.set(LOCK_PREFIX + ingest_id, "1", nx=True, ex=LOCK_S):
            return False  # another watcher is starting it
        if not self.jobs.is_open(job["tenant"], ingest_id):  # else started by a release that died
            job = {k: v for k, v in job.items() if k != "opens_at"}
            self._go(job, tenant, now)
            log.info("tenant=%s file=%s ingest=%s window open: started after %.0f s scheduled", job["tenant"],
                     job["file"], ingest_id, now - float(job.get("admitted_at", now)))
        pipe = self.redis.pipeline()
        pipe.zrem(SCHEDULED, ingest_id)
        pipe.hdel(SCHEDULED_JOBS, ingest_id)
        pipe.delete(LOCK_PREFIX + ingest_id)
        pipe.execute()
        return True
