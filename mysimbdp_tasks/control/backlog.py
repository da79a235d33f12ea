"""Batch backlog: how many tasks wait in each tenant's batch queue, and what the pool should do about it.

A large file is cut into chunks, each one task on ``<tenant>.batch``; a burst of files is one task
per file. Tasks that wait there are work the tenant's pool has not started: the monitor reads that
count for every tenant once per sweep and turns it into decisions:

- more than ``max_queued_tasks`` waiting -> ``grow`` ("backlog"), carrying the count; the manager,
  which knows the pool's size, grows the pool to ``ceil(waiting / max_queued_tasks)`` processes
  (within ``max_workers``) only if the backlog per process is above ``max_queued_tasks``;
- after a backlog, the queue empty for ``empty_for_s`` -> ``shrink`` ("drained"), again every
  ``empty_for_s`` while it stays empty, at most twice the pool's range (``max_workers -
  min_workers``) per backlog: enough for the pool to get back to ``min_workers`` even if the manager
  ignored some while cooling down, without deciding anything forever about an idle tenant.

Counting what waits: kombu's Redis transport keeps one queue as several lists when priorities are
in use: ``<queue>`` for priority 0 and ``<queue>\\x06\\x16<step>`` for the other steps of
``PRIORITY_STEPS`` (``Channel._q_for_pri``); ``Channel._size`` is the sum of their lengths. A
delivered task leaves the lists (BRPOP) and sits in the ``unacked`` hash until acknowledged: it is
running (or about to), not waiting, so it is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from ..core import names
from ..core.settings import DEFAULT_BATCH_IDLE_AFTER_S
from ..core.tenants import Tenant
from .decision import Decision

SWEEP_EVERY_S = 1.0  # the monitor reads every tenant's queue this often
GROW_EVERY_S = 10.0  # while a backlog lasts, a grow is sent again this often (a cooling manager ignored the last)


def queue_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps ``queue`` in, one per priority step (as ``Channel._q_for_pri``)."""
    return [f"{queue}{Channel.sep}{step}" if step else queue for step in PRIORITY_STEPS]


def read_waiting(client: redis.Redis, tenants: Iterable[str]) -> dict[str, int]:
    """Tasks waiting in each tenant's batch queue, in one pipelined round trip for all tenants."""
    chosen = list(tenants)
    pipe = client.pipeline(transaction=False)
    for tenant in chosen:
        for key in queue_keys(names.batch_queue(tenant)):
            pipe.llen(key)
    lengths = pipe.execute()
    steps = len(PRIORITY_STEPS)
    return {tenant: sum(int(n) for n in lengths[i * steps:(i + 1) * steps]) for i, tenant in enumerate(chosen)}


def target_size(tenant: Tenant, waiting: int) -> int:
    """Pool size at which the backlog is at most ``max_queued_tasks`` per process, within the bounds."""
    wanted = math.ceil(waiting / tenant.max_queued_tasks)
    return max(tenant.min_workers, min(tenant.max_workers, wanted))


@dataclass
class _State:
    last_busy: float | None = None  # last sweep that found tasks waiting
    last_grow: float | None = None
    last_shrink: float | None = None
    shrinks_left: int = 0
    waiting: int = 0  # at the last reading


@dataclass
class BacklogRule:
    """Pure: feed it each sweep's counts and the clock; it answers with decisions."""

    empty_for_s: float = DEFAULT_BATCH_IDLE_AFTER_S
    grow_every_s: float = GROW_EVERY_S
    states: dict[str, _State] = field(default_factory=dict)

    def observe(self, tenant: Tenant, waiting: int, now: float, stream_active: bool = False) -> Decision | None:
        """The decision for one tenant's reading, if any.

        ``stream_active``: the tenant's stream path had messages lately; its pool then shrinks by the
        stream rule, not because the batch queue is empty.
        """
        state = self.states.setdefault(tenant.name, _State())
        state.waiting = waiting
        queue = names.batch_queue(tenant.name)
        evidence = [{"source": "batch_queue", "queue": queue, "waiting": waiting,
                     "max_queued_tasks": tenant.max_queued_tasks, "at": now}]
        if waiting > 0:
            state.last_busy = now
            state.shrinks_left = 2 * (tenant.max_workers - tenant.min_workers)
            state.last_shrink = None
        if waiting > tenant.max_queued_tasks:
            if state.last_grow is not None and now - state.last_grow < self.grow_every_s:
                return None
            state.last_grow = now
            return Decision(tenant.name, "grow", f"backlog: {waiting} tasks waiting in {queue}, more than "
                            f"max_queued_tasks {tenant.max_queued_tasks} per process", now, evidence, backlog=waiting)
        if waiting > 0 or state.last_busy is None or state.shrinks_left <= 0 or stream_active:
            return None
        since = state.last_shrink if state.last_shrink is not None else state.last_busy
        if now - since < self.empty_for_s:
            return None
        state.last_shrink = now
        state.shrinks_left -= 1
        return Decision(tenant.name, "shrink", f"drained: {queue} empty for {now - state.last_busy:.0f} s",
                        now, evidence)

    def busy(self, tenant: str) -> bool:
        """Tasks were waiting at the tenant's last reading (the stream rule's idle shrink then waits)."""
        state = self.states.get(tenant)
        return state is not None and state.waiting > 0
