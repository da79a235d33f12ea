"""Where the CPU went during a step: CPU seconds per role (a process, or a process and its children).

Two snapshots, one before and one after the span, of user + system time of each role and of the
whole machine; the difference over the wall time is the share of one core each role used. What no
role accounts for (other users of the machine, the kernel) is reported as ``other``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

from mysimbdp_tasks.core.settings import Settings

from . import resources

BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


def service_pids(settings: Settings) -> dict[str, int]:
    """The local stack's Kafka, Cassandra and Redis this run talks to, found by the port each listens
    on (by command line, another stack's server on the same machine could be taken for ours)."""
    return {name: pid for name, pid in resources.service_pids(settings).items() if pid is not None}


@dataclass(frozen=True)
class Role:
    pid: int
    family: bool  # include every descendant (a worker pool's processes)


def _cpu(pid: int, family: bool) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)] if family else [root]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


@dataclass(frozen=True)
class Snapshot:
    at: float
    roles: dict[str, float]
    busy: float  # machine: non-idle CPU seconds, all cores


def snapshot(roles: Mapping[str, Role]) -> Snapshot:
    t = psutil.cpu_times()
    busy = sum(getattr(t, f, 0.0) for f in BUSY_FIELDS)  # guest time is already inside user time
    return Snapshot(time.monotonic(), {name: _cpu(r.pid, r.family) for name, r in roles.items()}, busy)


def usage(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """Percent of one core per role over the span, plus ``machine`` (all cores) and ``other``."""
    wall = after.at - before.at
    if wall <= 0:
        return {}
    out = {name: 100 * max(0.0, after.roles.get(name, 0.0) - spent) / wall for name, spent in before.roles.items()}
    machine = 100 * (after.busy - before.busy) / wall
    out["other"] = max(0.0, machine - sum(out.values()))
    out["machine"] = machine
    return {k: round(v, 1) for k, v in out.items()}


def role_kind(name: str) -> str:
    """"bridge", "workers", "producers", or the service's or process's own name, of a role's name
    (``bridge.2 bX``, ``workers bX``, ``producer bX.1``, ``kafka``, ...)."""
    first = name.split(" ")[0].split(".")[0]
    return {"producer": "producers"}.get(first, first)


def per_message(before: Snapshot, after: Snapshot, messages: int) -> dict[str, float]:
    """CPU microseconds per message of each kind of role over the span (every bridge together, every
    pool, every producer), plus ``machine`` (all cores, anyone) and ``other`` (the rest of it)."""
    if messages <= 0:
        return {}
    spent: dict[str, float] = {}
    for name, was in before.roles.items():
        kind = role_kind(name)
        spent[kind] = spent.get(kind, 0.0) + max(0.0, after.roles.get(name, 0.0) - was)
    machine = after.busy - before.busy
    spent["other"] = max(0.0, machine - sum(spent.values()))
    spent["machine"] = machine
    return {k: round(v / messages * 1e6, 1) for k, v in spent.items()}
