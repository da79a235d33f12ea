"""streamingestmonitor: performance reports in, scaling decisions out.

Reports come from the platform's bridges and workers on ``mysimbdp.reports`` and from each
tenant's clients on ``<tenant>.reports``. In secure mode Kafka's ACLs let only the platform write
the first and only tenant T write ``T.reports``, so the topic names the authenticated sender: a
report on ``T.reports`` that speaks for another tenant, or claims to come from a bridge or worker,
is refused (``sender``) and logged. Per tenant they are compared with the thresholds of its applied config:

- a worker window whose average ingestion time per micro-batch exceeds ``max_avg_ingestion_ms``
  -> ``grow`` ("slow");
- a bridge report whose lag (messages waiting in the tenant's topic) exceeds ``max_lag_messages``
  -> ``grow`` ("behind");
- no message for ``idle_after_s`` seconds after some activity -> ``shrink`` ("idle").

Batch work is judged from the tenants' queues, not from reports (:mod:`control.backlog`): once a
second, one pipelined Redis read gives every tenant's waiting batch tasks; a backlog above
``max_queued_tasks`` per process -> ``grow`` ("backlog"), the queue empty for a while after one ->
``shrink`` ("drained"). Neither path shrinks a pool the other one keeps busy.

A decision carries its evidence (the reports that triggered it) and goes to the manager on
``mysimbdp.control``. Client reports count as activity and are logged; they decide nothing alone,
because a slow client is the tenant's network, not the platform.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer

from ..core.errors import Stopping
from ..core.reports import Report
from ..core.settings import DEFAULT_BATCH_IDLE_AFTER_S, DEFAULT_IDLE_AFTER_S, Settings
from ..core.tenants import Tenant
from ..security import logins, tls
from ..services import topics
from ..services.outages import ControlPoller, Waiter
from ..services.registry import Registry
from ..stream.records import speed_up
from .backlog import SWEEP_EVERY_S, BacklogRule, read_waiting
from .decision import Decision

log = logging.getLogger(__name__)

CONTROL = topics.CONTROL
REPORTS_PATTERN = r"^[A-Za-z0-9_.-]+\.reports$"  # mysimbdp.reports and every <tenant>.reports


def sender_refusal(topic: str, report: Report) -> str | None:
    """Why ``report``, read from ``topic``, does not come from whom it claims; None if it may."""
    if topic == topics.REPORTS or not topic.endswith(".reports"):
        return None  # the platform's own topic: only its principals may write it
    sender = topic.removesuffix(".reports")
    if report.tenant != sender:
        return f"a report for tenant {report.tenant!r} sent by tenant {sender!r}"
    if report.source != "client":
        return f"tenant {sender!r} sent a {report.source!r} report; tenants send client reports only"
    return None


class Evaluator:
    """Pure: feed it reports and the clock; it answers with decisions."""

    def __init__(self, tenants: Callable[[], dict[str, Tenant]], idle_after_s: float = DEFAULT_IDLE_AFTER_S) -> None:
        self.tenants = tenants
        self.idle_after_s = idle_after_s
        self.last_active: dict[str, float] = {}
        self.idle_reported: dict[str, float] = {}

    def observe(self, report: Report) -> Decision | None:
        tenant = self.tenants().get(report.tenant)
        if tenant is None:
            return None
        if report.messages > 0:
            self.last_active[report.tenant] = report.window_end
            self.idle_reported.pop(report.tenant, None)
        evidence = [asdict(report)]
        if report.source == "worker" and report.messages > 0 and report.avg_ms > tenant.max_avg_ingestion_ms:
            return Decision(tenant.name, "grow", f"slow: average ingestion {report.avg_ms:.0f} ms per batch > "
                            f"max_avg_ingestion_ms {tenant.max_avg_ingestion_ms:.0f}", report.window_end, evidence)
        if report.source == "bridge" and report.lag is not None and report.lag > tenant.max_lag_messages:
            return Decision(tenant.name, "grow", f"behind: {report.lag} messages waiting > max_lag_messages "
                            f"{tenant.max_lag_messages}", report.window_end, evidence)
        return None

    def idle(self, now: float) -> list[Decision]:
        """A shrink for each tenant quiet for ``idle_after_s``, repeated every ``idle_after_s``."""
        out = []
        for name, last in self.last_active.items():
            since = self.idle_reported.get(name, last)
            if now - since >= self.idle_after_s:
                self.idle_reported[name] = now
                out.append(Decision(name, "shrink", f"idle: no message for {now - last:.0f} s", now,
                                    [{"last_active": last}]))
        return out


def run(settings: Settings, scope: set[str] | None, idle_after_s: float, stop: threading.Event,
        waiter: Waiter | None = None, batch_empty_for_s: float = DEFAULT_BATCH_IDLE_AFTER_S) -> None:
    """Consume reports and read the batch queues, send decisions to the manager, log everything.

    Redis (the registry, the queues) and Kafka are reached through ``waiter``: while either is away
    the monitor waits for it (logged once per outage), then goes on where it was.
    """
    wait = waiter or Waiter("monitor", stop)
    client = logins.redis_client(settings)
    registry = Registry(client)
    # The topics it writes and its manager reads: the local Kafka creates no topic by itself.
    wait.call(functools.partial(topics.ensure_platform, settings))
    cache: dict[str, Any] = {"at": 0.0, "tenants": {}}

    def tenants() -> dict[str, Tenant]:
        if time.monotonic() - cache["at"] > 2:
            active = wait.call(registry.active)
            cache["tenants"] = {n: t for n, t in active.items() if scope is None or n in scope}
            cache["at"] = time.monotonic()
        return cache["tenants"]

    evaluator = Evaluator(tenants, idle_after_s)
    backlog = BacklogRule(empty_for_s=batch_empty_for_s)
    next_sweep = 0.0
    group = "mysimbdp.monitor" + ("." + ".".join(sorted(scope)) if scope else "")
    security = tls.kafka_options(settings, "platform:monitor")
    consumer = wait.call(lambda: KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_str, group_id=group, auto_offset_reset="latest",
        enable_auto_commit=True, metadata_max_age_ms=15000, **security))
    # The tenants write their reports topics: their records are read as the bridge reads theirs, so
    # that a header no client library would send cannot stop every later poll.
    speed_up(consumer)
    # Every reports topic, the tenants' ones included as they are created (at the next metadata refresh).
    consumer.subscribe(pattern=REPORTS_PATTERN)
    producer = wait.call(lambda: KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", **security))
    log.info("monitor: watching %s for %s", REPORTS_PATTERN, ", ".join(sorted(scope)) if scope else "all tenants")
    poller = ControlPoller(consumer, wait)
    try:
        while not stop.is_set():
            decisions: list[Decision] = []
            for batch in poller.poll(timeout_ms=1000).values():
                for record in batch:
                    decision = intake(evaluator, record)
                    if decision:
                        decisions.append(decision)
            now = time.time()
            decisions.extend(d for d in evaluator.idle(now) if not backlog.busy(d.tenant))
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_EVERY_S
                decisions.extend(wait.call(functools.partial(sweep, client, backlog, evaluator, tenants(), now)))
            if decisions:
                wait.call(functools.partial(_send, producer, decisions))
    except Stopping:
        log.warning("monitor: stopped while waiting")
    finally:
        consumer.close()
        producer.close(timeout=5)


def sweep(client: redis.Redis, rule: BacklogRule, evaluator: Evaluator, active: dict[str, Tenant],
          now: float) -> list[Decision]:
    """One read of every batch tenant's queue, and the decisions it calls for."""
    batch = {n: t for n, t in active.items() if t.batch is not None}
    waiting = read_waiting(client, sorted(batch)) if batch else {}
    out = []
    for name, count in waiting.items():
        stream_active = now - evaluator.last_active.get(name, float("-inf")) < evaluator.idle_after_s
        decision = rule.observe(batch[name], count, now, stream_active)
        if decision:
            out.append(decision)
    return out


def _send(producer: KafkaProducer, decisions: list[Decision]) -> None:
    for d in decisions:
        log.warning("monitor: tenant=%s decision=%s reason=%s", d.tenant, d.action, d.reason)
        producer.send(CONTROL, value=d.to_json(), key=d.tenant.encode())
    producer.flush()


def intake(evaluator: Evaluator, record: Any) -> Decision | None:
    """One report in: a malformed or hostile one is refused with a logged reason, never a crash."""
    try:
        report = Report.from_json(record.value)
    except ValueError as exc:
        log.warning("monitor: refused report at partition %d offset %d: %s", record.partition, record.offset, exc)
        return None
    refusal = sender_refusal(record.topic, report)
    if refusal:
        log.warning("monitor: refused report at %s partition %d offset %d: %s", record.topic, record.partition,
                    record.offset, refusal)
        return None
    try:
        log.info("monitor: tenant=%s source=%s messages=%d avg_ms=%.1f lag=%s errors=%d", report.tenant,
                 report.source, report.messages, report.avg_ms, report.lag, report.errors)
        return evaluator.observe(report)
    except Stopping:
        raise
    except Exception:  # one report's fault alone: the next ones are still read
        log.exception("monitor: tenant=%s report at partition %d offset %d not evaluated", report.tenant,
                      record.partition, record.offset)
        return None

