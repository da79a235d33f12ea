"""Batch slots: a platform-wide limit on files running at once, given out by tenant priority.

Worker pools are per tenant, so without a limit every tenant's files run side by side. With
``MYSIMBDP_BATCH_SLOTS=N`` at most N files run at once across all tenants, and an admitted file
(in its window, see :mod:`.schedule`) waits, ``queued`` in ``status``, until a slot is free. Free
slots go to the waiting files by their tenant's ``priority`` (:mod:`..core.priorities`), then by
admission time: a high-priority tenant's small file is not stuck behind a low-priority tenant's
large one. A granted file runs as any other: planned, cut into parallel chunks on its tenant's
pool, finalized; its chunks share its one slot. Unset (the default), nothing waits.

Why a slot scheduler and not Celery priorities: kombu's Redis transport emulates priorities per
queue, as sub-lists (``priority_steps``, by default 0, 3, 6, 9) that a consumer polls in order.
Every tenant has its own queue and its own pool, so a priority only reorders one tenant's own
tasks; it cannot hold one tenant's work back for another's, and it bounds nothing platform-wide.
Prefetched messages are not reordered either. Only a shared count of running work gives the
guarantee, so the slots are that count, kept in Redis.

How: holders are a sorted set (ingest id -> end of its lease, in Redis time); a Lua script
(``grant_slots.lua``) drops lapsed leases and grants the free slots to the best-ranked queued
files in one step, so two watchers never over-grant. The granting watcher then opens the job and
sends its file task (a watcher that dies in between leaves the grant in a set its successor
finishes). Every task of a granted file renews the slot while it runs (``hold_slot.lua`` at start,
then a heartbeat every third of the lease); finalizing gives it back. A worker killed mid-file
stops renewing and the slot is free again one lease later; its file's tasks, when they come back,
find the slot gone and ask for it again, the watcher queues the file again at its old rank, and
the tasks retry until it is granted again.

Who writes what: every slot key is the platform's (the watcher's), except two per tenant that its
pool writes: its files' leases (``slot_lease_key``: the grant puts a file's lease there, the pool
renews it and, finalizing, removes it) and its files that ask for a slot again (``slot_wanted_key``).
The grant reads a holder's lease from its tenant's key, so in secure mode a pool cannot renew,
give back or queue another tenant's file, nor move anyone's place in the line
(security/redis_acl.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from ..core import names, priorities
from ..core.errors import WaitingForSlot
from ..core.tenants import Tenant
from ..services.dispatch import Dispatch
from ..services.scripts import source
from .jobs import Jobs

log = logging.getLogger(__name__)

LOCK_S = 60
LEASE_KEY = "slot_lease"  # job field: the lease (s) of a file that runs in a slot; absent: no slot
WANTED_TTL_S = 7 * 24 * 3600  # a tenant's asks for a slot are forgotten after a week without one


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def queued(client: redis.Redis, tenant: str | None = None) -> list[dict[str, Any]]:
    """Files waiting for a slot (of ``tenant``, or all), next first, each with its ``position``."""
    ids = [_text(i) for i in client.zrange(names.SLOTS_QUEUED, 0, -1)]
    raw = client.hmget(names.SLOTS_QUEUED_JOBS, ids) if ids else []
    jobs = [{**json.loads(r), "position": at + 1} for at, r in enumerate(raw) if r is not None]
    return [j for j in jobs if tenant is None or j["tenant"] == tenant]


def held(client: redis.Redis) -> list[str]:
    """Ingest ids of the files holding a slot now (a slot its pool gave back is not held, even
    before the next grant frees it)."""
    ids = [_text(i) for i in client.zrange(names.SLOTS_HELD, 0, -1)]
    jobs = client.hmget(names.SLOTS_RUNNING, ids) if ids else []
    owned = [(i, json.loads(raw)["tenant"]) for i, raw in zip(ids, jobs, strict=True) if raw is not None]
    pipe = client.pipeline(transaction=False)
    for ingest_id, tenant in owned:
        pipe.zscore(names.slot_lease_key(tenant), ingest_id)
    given_back = {i for (i, _), lease in zip(owned, pipe.execute() if owned else [], strict=True) if lease is None}
    return [i for i in ids if i not in given_back]


def rank(job: dict[str, Any]) -> float:
    """A queued file's place in the line: its tenant's priority, then its admission time."""
    return priorities.rank(int(job.get("priority", priorities.DEFAULT.level)), float(job["admitted_at"]))


class Slots:
    """The watcher's side: queue admitted files, grant free slots, start the granted files."""

    def __init__(self, client: redis.Redis, jobs: Jobs, dispatch: Dispatch, slots: int, lease_s: float) -> None:
        self.redis, self.jobs, self.dispatch = client, jobs, dispatch
        self.slots, self.lease_s = slots, lease_s
        self._grant = client.register_script(source("grant_slots"))

    def submit(self, job: dict[str, Any], tenant: Tenant | None) -> None:
        """Queue an admitted file for a slot at its tenant's priority; granted at once if one is free."""
        level = (tenant.priority if tenant else priorities.DEFAULT).level
        job = {**job, "priority": level, LEASE_KEY: self.lease_s}
        pipe = self.redis.pipeline()
        pipe.hset(names.SLOTS_QUEUED_JOBS, job["ingest_id"], json.dumps(job))
        pipe.zadd(names.SLOTS_QUEUED, {job["ingest_id"]: rank(job)})
        pipe.execute()
        log.info("tenant=%s file=%s ingest=%s queued for a batch slot, priority %d", job["tenant"], job["file"],
                 job["ingest_id"], level)
        self.release_due()

    def release_due(self, now: float | None = None) -> list[str]:
        """Grant the free slots, then start every granted file not started yet; their ingest ids."""
        self._queue_again()
        granted, lapsed = self._grant(keys=[names.SLOTS_HELD, names.SLOTS_QUEUED, names.SLOTS_GRANTED,
                                            names.SLOTS_QUEUED_JOBS, names.SLOTS_RUNNING, names.SLOTS_LAPSED],
                                      args=[self.slots, self.lease_s, names.SLOTS_LEASE_PREFIX])
        for ingest_id in lapsed:
            log.warning("ingest=%s batch slot given back: its lease lapsed (no worker renewed it for %.0f s)",
                        _text(ingest_id), self.lease_s)
        started = []
        pending = {_text(i) for i in granted} | {_text(i) for i in self.redis.smembers(names.SLOTS_GRANTED)}
        for ingest_id in sorted(pending):
            if self._start(ingest_id, time.time() if now is None else now):
                started.append(ingest_id)
        return started

    def _queue_again(self) -> None:
        """Queue again, at its old place, each file whose lease lapsed and whose tasks came back asking
        for a slot; forget one that was finalized (or expired) meanwhile."""
        for key, raw in self.redis.hgetall(names.SLOTS_LAPSED).items():
            ingest_id, job = _text(key), json.loads(raw)
            if self.redis.srem(names.slot_wanted_key(job["tenant"]), ingest_id):
                pipe = self.redis.pipeline()
                pipe.hset(names.SLOTS_QUEUED_JOBS, ingest_id, raw)
                pipe.zadd(names.SLOTS_QUEUED, {ingest_id: rank(job)})
                pipe.hdel(names.SLOTS_LAPSED, ingest_id)
                pipe.execute()
                log.info("tenant=%s file=%s ingest=%s queued again for a batch slot: its tasks are back",
                         job["tenant"], job["file"], ingest_id)
            elif (not self.jobs.is_open(job["tenant"], ingest_id)
                  or self.jobs.is_finalized(job["tenant"], ingest_id)):
                self.redis.hdel(names.SLOTS_LAPSED, ingest_id)

    def _start(self, ingest_id: str, now: float) -> bool:
        if not self.redis.set(names.SLOTS_LOCK_PREFIX + ingest_id, "1", nx=True, ex=LOCK_S):
            return False  # another watcher is starting it
        raw = self.redis.hget(names.SLOTS_QUEUED_JOBS, ingest_id)
        job = json.loads(raw) if raw is not None else None
        # A job already open was started before (by a watcher that died before cleaning up), or is
        # a running file granted its slot again: its own tasks are retrying for it.
        if job is not None and not self.jobs.is_open(job["tenant"], ingest_id):
            self.jobs.open(job, now)
            self.dispatch.send_file(job)
            log.info("tenant=%s file=%s ingest=%s batch slot granted: started after %.1f s queued (priority %d)",
                     job["tenant"], job["file"], ingest_id, now - float(job["admitted_at"]), job["priority"])
        pipe = self.redis.pipeline()
        pipe.hdel(names.SLOTS_QUEUED_JOBS, ingest_id)
        pipe.srem(names.SLOTS_GRANTED, ingest_id)
        pipe.delete(names.SLOTS_LOCK_PREFIX + ingest_id)
        pipe.execute()
        return raw is not None


# -- the workers' side -------------------------------------------------------------------------
def hold(client: redis.Redis, job: dict[str, Any], renew_only: bool = False) -> bool:
    """Renew the file's slot; if it was given back, ask for one again (unless ``renew_only``)."""
    tenant, ingest_id = job["tenant"], job["ingest_id"]
    script = client.register_script(source("hold_slot"))
    return bool(script(keys=[names.slot_lease_key(tenant), names.slot_wanted_key(tenant),
                             names.job_key(tenant, ingest_id)],
                       args=[ingest_id, float(job[LEASE_KEY]), "1" if renew_only else "0", WANTED_TTL_S]))


def give_back(client: redis.Redis, tenant: str, ingest_id: str) -> None:
    """The file is finalized: its slot is free for the next queued file (at the next grant)."""
    client.zrem(names.slot_lease_key(tenant), ingest_id)


@contextmanager
def holding(client: redis.Redis, job: dict[str, Any]) -> Iterator[None]:
    """Run a task of a slotted file while renewing its slot; raises :class:`WaitingForSlot` (the task
    retries) if the slot was given back meanwhile. A file without a slot runs as it is."""
    if LEASE_KEY not in job:
        yield
        return
    lease = float(job[LEASE_KEY])
    if not hold(client, job):
        raise WaitingForSlot(f"tenant {job['tenant']}: file {job['file']} lost its batch slot (lease lapsed); "
                             "queued again", delay=max(0.5, lease / 3))
    stop = threading.Event()
    beat = threading.Thread(target=_renew, args=(client, job, lease / 3, stop), daemon=True,
                            name=f"slot-{job['ingest_id'][:8]}")
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join(timeout=5)


def _renew(client: redis.Redis, job: dict[str, Any], every: float, stop: threading.Event) -> None:
    failing = False
    while not stop.wait(every):
        try:
            kept = hold(client, job, renew_only=True)
        except redis.exceptions.RedisError as exc:  # the heartbeat must never stop the task
            if not failing:
                log.warning("tenant=%s ingest=%s cannot renew its batch slot, retrying: %s", job["tenant"],
                            job["ingest_id"], exc)
            failing = True
            continue
        failing = False
        if not kept:
            log.warning("tenant=%s ingest=%s file=%s its batch slot was given back while it ran (lease %.0f s)",
                        job["tenant"], job["ingest_id"], job["file"], float(job[LEASE_KEY]))
            return
