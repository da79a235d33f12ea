"""streamingestmanager: act on the monitor's decisions by resizing the tenants' worker pools.

Scaling: a ``grow`` adds one process to the tenant's worker pool (Celery ``pool_grow`` sent to the
tenant's own worker nodes, ``<tenant>@host``), up to ``max_workers``; a ``shrink`` removes one, down
to ``min_workers``. After any change the tenant's pool is left alone for ``cooldown_s`` seconds, so
the pool does not flap while the effect of the last change shows in the next reports.

The manager changes the size of a running pool, never which processes run: starting, stopping and
restarting processes (a tenant applied or removed, a process that died) is the supervisor's alone
(:mod:`control.supervisor`), so the two never fight over a process. While Redis (the registry, the
pools' remote control) or Kafka is away the manager waits for it, logged once per outage.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer

from ..core.errors import Stopping, WorkerUnreachable
from ..core.settings import DEFAULT_COOLDOWN_S, Settings
from ..core.tenants import Tenant
from ..security import logins, tls
from ..services import events as metrics
from ..services import telemetry, topics
from ..services.outages import ControlPoller, Waiter
from ..services.registry import Registry
from .backlog import target_size
from .decision import Decision
from .supervisor import pool_size

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """What the manager does about one decision: ``delta`` processes (+1, -1 or 0) and why."""

    tenant: str
    delta: int
    size_before: int
    reason: str


def plan(decision: Decision, tenant: Tenant, size: int, last_change: float | None, now: float,
         cooldown_s: float) -> Step:
    """Pure: the step for ``decision`` given the pool's size and when it last changed."""
    if last_change is not None and now - last_change < cooldown_s:
        return Step(tenant.name, 0, size, f"{decision.action} ignored: cooling down "
                    f"({now - last_change:.0f} s of {cooldown_s:.0f} s since the last change); {decision.reason}")
    if decision.action == "grow":
        if size >= tenant.max_workers:
            return Step(tenant.name, 0, size, f"grow ignored: pool at max_workers {tenant.max_workers}; "
                        f"{decision.reason}")
        if decision.backlog is not None:
            return _grow_for_backlog(decision, decision.backlog, tenant, size)
        return Step(tenant.name, 1, size, f"grow {size} -> {size + 1}: {decision.reason}")
    if size <= tenant.min_workers:
        return Step(tenant.name, 0, size, f"shrink ignored: pool at min_workers {tenant.min_workers}; "
                    f"{decision.reason}")
    return Step(tenant.name, -1, size, f"shrink {size} -> {size - 1}: {decision.reason}")


def _grow_for_backlog(decision: Decision, backlog: int, tenant: Tenant, size: int) -> Step:
    """Straight to the size that leaves at most ``max_queued_tasks`` waiting per process: a backlog
    says how many processes it needs, so the pool need not climb one cooldown at a time."""
    per_process = backlog / size if size else float(backlog)
    if per_process <= tenant.max_queued_tasks:
        return Step(tenant.name, 0, size, f"grow ignored: {backlog} tasks waiting over {size} processes is "
                    f"{per_process:.1f} per process, within max_queued_tasks {tenant.max_queued_tasks}; "
                    f"{decision.reason}")
    target = max(target_size(tenant, backlog), size + 1)
    return Step(tenant.name, target - size, size, f"grow {size} -> {target} ({per_process:.1f} tasks waiting "
                f"per process > max_queued_tasks {tenant.max_queued_tasks}): {decision.reason}")


class Pools:
    """The tenants' worker pools, reached through Celery's remote control."""

    def __init__(self) -> None:
        from ..worker.celery_app import app

        self.app = app

    def nodes(self, tenant: str) -> list[str]:
        replies = self.app.control.ping(timeout=1.0) or []
        return sorted(name for reply in replies for name in reply if name.startswith(f"{tenant}@"))

    def size(self, tenant: str) -> int:
        """Processes in the tenant's pools; WorkerUnreachable when no node tells (a busy node may not
        answer within the timeout): a pool read as empty would be grown past max_workers."""
        nodes = self.nodes(tenant)
        stats = (self.app.control.inspect(destination=nodes, timeout=2.0).stats() or {}) if nodes else {}
        if not stats:
            raise WorkerUnreachable(f"no worker node of tenant {tenant} told its pool size in time")
        return sum(len(s.get("pool", {}).get("processes", [])) for s in stats.values())

    def resize(self, tenant: str, delta: int) -> None:
        nodes = self.nodes(tenant)
        if not nodes:
            raise WorkerUnreachable(f"no worker node of tenant {tenant} answers")
        # One node is enough: pools are per tenant, and the next decision sees the new size.
        command = self.app.control.pool_grow if delta > 0 else self.app.control.pool_shrink
        command(abs(delta), destination=nodes[:1], reply=True, timeout=5.0)


RESIZED_HOLD_S = 30.0  # how long the size a pool was resized to counts over what its stats say


class Manager:
    def __init__(self, settings: Settings, scope: set[str] | None, cooldown_s: float = DEFAULT_COOLDOWN_S) -> None:
        self.settings = settings
        self.scope = scope
        self.cooldown_s = cooldown_s
        self.registry = Registry(logins.redis_client(settings))
        self.pools = Pools()
        self.last_change: dict[str, float] = {}
        # The size a pool was just resized to, and when. A node's stats list a process being
        # stopped for a few seconds more, so a size read right after a change can be the old one: a
        # shrink planned on it went below min_workers (a grow, past max_workers).
        self.resized: dict[str, tuple[int, float]] = {}

    def tenants(self) -> dict[str, Tenant]:
        return {n: t for n, t in self.registry.active().items() if self.scope is None or n in self.scope}

    def act(self, decision: Decision) -> Step | None:
        tenant = self.tenants().get(decision.tenant)
        if tenant is None:
            return None
        now = time.monotonic()
        size = self.pools.size(tenant.name)
        expected, at = self.resized.get(tenant.name, (size, 0.0))
        step = plan(decision, tenant, expected if now - at < RESIZED_HOLD_S else size,
                    self.last_change.get(tenant.name), now, self.cooldown_s)
        if step.delta:
            self.pools.resize(tenant.name, step.delta)
            self.last_change[tenant.name] = now
            self.resized[tenant.name] = (step.size_before + step.delta, now)
        log.warning("manager: tenant=%s pool=%d delta=%+d %s", step.tenant, step.size_before, step.delta, step.reason)
        metrics.emit(self.settings.logs, tenant.name, "scaling", action=decision.action, delta=step.delta,
                     pool_before=step.size_before, reason=step.reason, evidence=decision.evidence)
        telemetry.scaling(tenant.name, decision.action, step.delta, step.size_before + step.delta)
        return step

    def run(self, stop: threading.Event, waiter: Waiter | None = None) -> None:
        wait = waiter or Waiter("manager", stop)
        # Subscribe to a topic that exists: the local Kafka creates no topic by itself.
        wait.call(functools.partial(topics.ensure_platform, self.settings))
        group = "mysimbdp.manager" + ("." + ".".join(sorted(self.scope)) if self.scope else "")
        consumer = wait.call(lambda: KafkaConsumer(
            topics.CONTROL, bootstrap_servers=self.settings.kafka_bootstrap_str, group_id=group,
            **tls.kafka_options(self.settings, "platform:manager"),
            auto_offset_reset="latest", enable_auto_commit=True, metadata_max_age_ms=15000))
        log.info("manager: acting on %s for %s (cooldown %.0f s)", topics.CONTROL,
                 ", ".join(sorted(self.scope)) if self.scope else "all tenants", self.cooldown_s)
        poller = ControlPoller(consumer, wait)
        try:
            while not stop.is_set():
                for batch in poller.poll(timeout_ms=1000).values():
                    for record in batch:
                        self._handle(record, wait)
        except Stopping:
            log.warning("manager: stopped while waiting")
        finally:
            consumer.close()

    def _handle(self, record: Any, wait: Waiter) -> None:
        try:
            decision = Decision.from_json(record.value)
        except ValueError as exc:
            log.warning("manager: ignoring malformed decision at offset %d: %s", record.offset, exc)
            return
        try:
            wait.call(functools.partial(self.act, decision))
        except Stopping:
            raise
        except WorkerUnreachable as exc:  # no pool to resize now (starting, restarting, busy): retried later
            log.warning("manager: tenant=%s %s not applied: %s", decision.tenant, decision.action, exc)
        except Exception:  # a failed resize must not stop the manager; the next decision retries
            log.exception("manager: tenant=%s could not act on %s", decision.tenant, decision.action)


def pool_processes(worker_pid: int) -> int:
    """Processes in a prefork pool, counted from the operating system (for checks and reports)."""
    return pool_size(worker_pid) or 0
