"""The stream bridge: a tenant's Kafka topic -> validated, quota-checked micro-batches on its queue.

One consumer group per tenant (``mysimbdp.bridge.<tenant>``), auto-commit off, its fetched record
batches read by :mod:`.records` (kafka-python's records, with less Python per record). Per micro-batch
(at most ``max_messages`` or ``max_wait_s`` after its first message):

1. validate each message: UTF-8 JSON object, not naming another tenant, key columns present, values
   convertible to the schema; refused ones go to ``<tenant>.dead`` with the original payload and a
   reason (``bad_json``, ``not_an_object``, ``wrong_tenant``, ``missing_key_column``, ``bad_value``);
2. reserve the daily message quota for the valid ones in one atomic Redis call, as ranges of
   offsets per partition (partial admission when it runs out; the rest are dead-lettered with
   ``daily_messages_exceeded``);
3. enqueue the admitted messages as one Celery task on ``<tenant>.stream``, whose id names the
   offsets it covers (:func:`~mysimbdp_tasks.core.names.stream_task_id`), and wait until Kafka has
   acknowledged the dead letters;
4. keep the batch in flight (:mod:`.inflight`) until a worker marks it written
   (:mod:`~mysimbdp_tasks.services.completions`); commit each partition only up to the end of the
   batches written, asynchronously (:mod:`.commits`). A batch whose task the broker lost is sent
   again with the same id.

So the committed offset is the durable record of what is written: a bridge killed at any point
replays from it, the quota decides each replayed message as the first time without counting it
again, the writes are upserts, and only dead letters may repeat. At most
``MYSIMBDP_STREAM_MAX_PENDING`` batches are in flight; then fetching pauses, so memory stays flat
and the lag (counted from the committed offsets) means messages not yet written.

On an exhausted quota we dead-letter rather than pause the partitions until midnight: a paused
consumer keeps growing lag that hides real problems, messages of the next day would queue behind a
whole day of backlog, and the dead letters tell the tenant exactly which messages were refused and
why, so it can re-send them after buying more quota.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

from ..core import names
from ..core.errors import Stopping
from ..core.reports import Window, send_report
from ..core.rows import converter_for
from ..core.settings import DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_WAIT_MS, Settings
from ..core.tenants import Tenant
from ..security import tls
from ..services import broker, completions, deadletters, telemetry, topics
from ..services.dispatch import Dispatch
from ..services.outages import Waiter
from ..services.quotas import Quotas, expand, offset_ranges
from ..services.registry import Registry
from . import records as fetched
from . import wire
from .commits import Committer
from .inflight import Batch, InFlight
from .messages import validate

log = logging.getLogger(__name__)

TRACK_EVERY_S = 0.2  # how often the completions of the batches in flight are read (one MGET)
IDLE_FETCH_WAIT_MS = 500
PRINCIPAL = "platform:bridge"  # who the bridge is towards Kafka in secure mode
POLL_GAP_S = 0.05  # within a micro-batch, polls at most this often (and at most 4 times per max_wait_s)


@dataclass
class Verdict:
    admitted: list[Any] = field(default_factory=list)  # records
    dead: list[tuple[Any, str, str]] = field(default_factory=list)  # (record, reason, detail)


class Bridge:
    def __init__(self, settings: Settings, tenant: Tenant, quotas: Quotas, dispatch: Dispatch,
                 max_messages: int = DEFAULT_BATCH_MESSAGES,
                 max_wait_s: float = DEFAULT_BATCH_WAIT_MS / 1000, report_every_s: float = 5.0) -> None:
        self.settings = settings
        self.tenant = tenant
        self.quotas = quotas
        self.redis = quotas.redis
        self.dispatch = dispatch
        self.max_messages = max_messages
        self.max_wait_s = max_wait_s
        self.report_every_s = report_every_s
        self.converter = converter_for(tenant)
        self.group = names.bridge_group(tenant.name)
        self.inflight = InFlight()
        self.tracked_at = self.looked_at = 0.0
        self.applied_at = Registry(self.redis).applied_at(tenant.name)
        self.consumer = self._consumer()
        self.commits = Committer(self.consumer, tenant.name, tenant.ingest_topic)
        self.assigned_at = time.monotonic()
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=5,
                                      **tls.kafka_options(settings, PRINCIPAL),
                                      client_id=f"mysimbdp-bridge-{tenant.name}")
        self.counts = {"admitted": 0, "dead": 0, "tasks": 0, "resent": 0}
        # The bridge reports even when idle: its lag is what tells the monitor a tenant falls behind.
        self.window = Window("bridge", tenant.name, report_every_s, start=time.time(), emit_empty=True)

    def _consumer(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_str,
            **tls.kafka_options(self.settings, PRINCIPAL),
            group_id=self.group,
            client_id=f"mysimbdp-bridge-{self.tenant.name}",
            enable_auto_commit=False,  # committed only up to what workers have written, below
            auto_offset_reset="earliest",
            max_poll_records=self.max_messages,
            # The broker answers a fetch as soon as it has a message; the wait only bounds an idle
            # partition's long poll, so it is long: an idle bridge makes a few fetches a second, not ten.
            fetch_max_wait_ms=IDLE_FETCH_WAIT_MS,
            # A bridge that died is noticed in 10 s (not the default 45 s), so its partitions go to
            # the restarted bridge quickly; metadata is refreshed often enough to see new partitions.
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
            metadata_max_age_ms=15000,
        )
        fetched.speed_up(consumer)  # its records read with less Python per record (stream/records.py)
        consumer.subscribe([self.tenant.ingest_topic], listener=_Rebalance(self))
        return consumer

    def check_assignment(self, stall_s: float = 30.0) -> None:
        """Replace a consumer that has held no partition for ``stall_s`` while the topic has some.

        Seen with kafka-python 3.0: a member dropped by the group coordinator after a missed
        heartbeat can keep polling without ever rejoining. Offsets are committed only up to what
        is written, so a fresh consumer starts where nothing can be lost, and replays the rest.
        """
        if self.consumer.assignment():
            self.assigned_at = time.monotonic()
            return
        if time.monotonic() - self.assigned_at < stall_s:
            return
        log.error("tenant=%s bridge holds no partition of %s for %.0f s; reconnecting", self.tenant.name,
                  self.tenant.ingest_topic, stall_s)
        self.consumer.close(autocommit=False)
        self.inflight = InFlight()
        self.consumer = self._consumer()
        self.commits = Committer(self.consumer, self.tenant.name, self.tenant.ingest_topic)
        self.assigned_at = time.monotonic()

    # -- one micro-batch ---------------------------------------------------------------------
    def collect(self) -> list[Any]:
        """Records of at most ``max_messages``, waiting at most ``max_wait_s`` after the first."""
        if not self._room():
            # Paused: the poll fetches nothing but keeps this member in its group.
            self.consumer.poll(timeout_ms=max(1, int(self.max_wait_s * 1000)))
            return []
        records: list[Any] = []
        deadline: float | None = None
        while len(records) < self.max_messages:
            remaining = self.max_wait_s if deadline is None else deadline - time.monotonic()
            if deadline is not None and remaining <= 0:
                break
            polled = self.consumer.poll(timeout_ms=max(1, int(remaining * 1000)),
                                        max_records=self.max_messages - len(records))
            got = [r for batch in polled.values() for r in batch]
            if not got:
                if deadline is None:
                    return records  # nothing at all within max_wait_s
                continue
            records.extend(got)
            deadline = deadline or time.monotonic() + self.max_wait_s
            if len(records) < self.max_messages:
                # The fetcher had no more: let messages gather (never past the deadline) rather than
                # poll for every few of them, each poll costing kafka-python a few hundred µs of CPU.
                time.sleep(max(0.0, min(POLL_GAP_S, self.max_wait_s / 4, deadline - time.monotonic())))
        return records

    def _room(self) -> bool:
        """Whether another batch may be taken; pauses the partitions while too many are in flight."""
        full = len(self.inflight) >= self.settings.stream_max_pending
        if full:
            unpaused = self.consumer.assignment() - self.consumer.paused()
            if unpaused:
                log.info("tenant=%s %d micro-batches in flight; fetching paused", self.tenant.name,
                         len(self.inflight))
                self.consumer.pause(*unpaused)
        elif self.consumer.paused():
            self.consumer.resume(*self.consumer.paused())
        return not full

    def decide(self, records: list[Any]) -> Verdict:
        """Validate each record, then reserve the quota for the valid ones as offset ranges in one call."""
        verdict = Verdict()
        valid: list[Any] = []
        for record in records:
            data, reason, detail = validate(self.tenant, self.converter, record.value)
            if data is None:
                verdict.dead.append((record, reason, detail))
            else:
                valid.append(record)
        limit = self.tenant.stream.max_messages_per_day if self.tenant.stream else 0
        if not limit:
            verdict.dead.extend((r, "stream_not_enabled", "max_messages_per_day = 0") for r in valid)
            return verdict
        ranges = offset_ranges((r.partition, r.offset) for r in valid)
        verdicts = self.quotas.reserve_ranges(self.tenant.name, limit, ranges)
        if all(len(runs) == 1 and runs[0][1] for runs in verdicts):  # the usual case: all admitted
            verdict.admitted = valid
            return verdict
        at = 0
        for (_, first, last), runs in zip(ranges, verdicts, strict=True):
            for record, admitted in zip(valid[at:at + last - first + 1], expand(runs, first, last), strict=True):
                if admitted:
                    verdict.admitted.append(record)
                else:
                    verdict.dead.append((record, "daily_messages_exceeded", f"max_messages_per_day = {limit}"))
            at += last - first + 1
        return verdict

    def handle(self, records: list[Any]) -> Verdict:
        t0 = time.perf_counter()
        verdict = self.decide(records)
        ranges = _ranges(records)
        task_id, payload = None, None
        if verdict.admitted:
            task_id = names.stream_task_id(self.tenant.name, ranges)
            payload = wire.batch(verdict.admitted)
            self.dispatch.send_messages(self.tenant.name, payload, task_id)
            self.counts["tasks"] += 1
        # Raises if Kafka refused a dead letter: then the batch is not taken in, nothing is committed.
        deadletters.send_all(self.producer, self.tenant.name, [
            deadletters.DeadLetter(r.partition, r.offset, r.key, r.value, reason, detail)
            for r, reason, detail in verdict.dead])
        self.inflight.add(Batch(ranges, task_id, payload, sent_at=time.monotonic()))
        self.counts["admitted"] += len(verdict.admitted)
        self.counts["dead"] += len(verdict.dead)
        telemetry.messages_decided(self.tenant.name, len(verdict.admitted), (reason for _, reason, _ in verdict.dead))
        elapsed = (time.perf_counter() - t0) * 1000
        self.window.add(len(verdict.admitted), payload["n"] if payload else 0, elapsed)
        if verdict.dead:
            self.window.add(len(verdict.dead), 0, 0.0, error=True)
        return verdict

    # -- batches in flight -------------------------------------------------------------------
    def track(self, force: bool = False) -> None:
        """Take up the workers' completions, commit what is written, and re-send lost batches.

        At most every :data:`TRACK_EVERY_S`: one MGET for every batch in flight, an asynchronous
        commit when some partition moved (:mod:`.commits`), and, only when a batch is overdue, one
        look at the broker. ``force``: now, and the commit synchronously (before giving partitions up).
        """
        now = time.monotonic()
        if not force and now - self.tracked_at < TRACK_EVERY_S:
            return
        self.tracked_at = now
        waiting = self.inflight.waiting()
        if waiting:
            self.inflight.mark_done(completions.done_among(self.redis, [b.task_id for b in waiting if b.task_id]))
        offsets, released = self.inflight.advance()
        self.commits.written(offsets)
        try:
            self.commits.commit(wait=force)
        except Exception as exc:  # noqa: BLE001 - a later commit covers these offsets; a rebalance drops them
            log.warning("tenant=%s commit of %s failed (%s: %s); retried with the next one", self.tenant.name,
                        self.commits.due(), type(exc).__name__, exc)
        completions.forget(self.redis, [b.task_id for b in released if b.task_id])
        self._resend_lost(now)

    def _resend_lost(self, now: float) -> None:
        stall_s = self.settings.stream_stall_seconds
        stalled = self.inflight.stalled(now, stall_s)
        if not stalled or now - self.looked_at < stall_s / 2:
            return
        self.looked_at = now
        held = broker.held_ids(self.redis, [self.tenant.stream_queue])
        for batch in self.inflight.lost(stalled, held, now):
            assert batch.task_id is not None and batch.payload is not None  # done batches are never stalled
            log.warning("tenant=%s task %s (%d messages) not written after %.0f s and held nowhere by the "
                        "broker; sending it again", self.tenant.name, batch.task_id, batch.size, stall_s)
            self.dispatch.send_messages(self.tenant.name, batch.payload, batch.task_id)
            self.counts["resent"] += 1

    def release(self, partitions: list[int]) -> None:
        """Partitions taken away by a rebalance: commit what is written, forget the rest (the new
        owner replays it from the committed offset)."""
        try:
            self.track(force=True)
        except Exception:  # nothing is lost: the new owner replays from the last commit
            log.exception("tenant=%s could not commit before giving up partitions %s", self.tenant.name, partitions)
        self.inflight.drop(partitions)
        self.commits.forget(partitions)

    # -- the tenant's configuration ----------------------------------------------------------
    def refresh(self) -> bool:
        """Whether the tenant is still active; takes up a re-applied configuration (its daily
        limit, its schema) without a restart. Two small reads; the run loop calls it every 2 s."""
        registry = Registry(self.redis)
        if not registry.is_active(self.tenant.name):
            return False
        applied_at = registry.applied_at(self.tenant.name)
        if applied_at != self.applied_at:
            fresh = registry.get(self.tenant.name)
            if fresh is not None:
                old = self.tenant.stream.max_messages_per_day if self.tenant.stream else 0
                self.tenant, self.converter = fresh, converter_for(fresh)
                log.info("tenant=%s configuration re-applied; max_messages_per_day %s -> %s", fresh.name, old,
                         fresh.stream.max_messages_per_day if fresh.stream else 0)
            self.applied_at = applied_at
        return True

    # -- reporting ---------------------------------------------------------------------------
    def lag(self) -> int:
        """Messages of the tenant's topic not yet written: past the group's committed offsets
        (see :func:`topics.lag`)."""
        lags = topics.partition_lags(self.consumer, self.tenant.ingest_topic)
        telemetry.bridge_lag(self.tenant.name, lags)
        return sum(lags.values())

    def maybe_report(self, force: bool = False) -> None:
        now = time.time()
        if not (force or self.window.due(now)):
            return
        report = self.window.flush(now, lag=self.lag())
        if report is not None:
            send_report(self.producer, report)
            log.info("tenant=%s report messages=%d lag=%s errors=%d in_flight=%d", self.tenant.name,
                     report.messages, report.lag, report.errors, len(self.inflight))

    def run(self, stop: threading.Event, waiter: Waiter | None = None) -> None:
        """Bridge until ``stop`` is set or the tenant is removed.

        Every step that needs Redis or Kafka goes through ``waiter``: while a service is away the
        bridge waits (logged once per outage) and then goes on. A micro-batch interrupted by an
        outage is handled again whole, which is the replay the quota script and upserts make
        harmless (see the module's docstring).
        """
        wait = waiter or Waiter(f"tenant={self.tenant.name} bridge", stop)
        log.info("tenant=%s bridging %s -> queue %s", self.tenant.name, self.tenant.ingest_topic,
                 self.tenant.stream_queue)
        checked = 0.0
        try:
            while not stop.is_set():
                if time.monotonic() - checked > 2.0:
                    checked = time.monotonic()
                    if not wait.call(self.refresh):
                        # Removed from the active set: stop before taking more. What is left in the
                        # topic stays there, uncommitted, for when the tenant is applied again.
                        log.warning("tenant=%s is no longer active; bridge stops", self.tenant.name)
                        break
                records = self.collect()
                if records:
                    wait.call(functools.partial(self.handle, records))
                else:
                    self.check_assignment()
                wait.call(self.track)
                wait.call(self.maybe_report)
        except Stopping:
            log.warning("tenant=%s bridge stopped while waiting; what is not written is not committed and will be "
                        "read again", self.tenant.name)
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self.track(force=True)  # commit what is written; the rest is replayed by the next bridge
            self.maybe_report(force=True)
        except Exception:  # stopping anyway (Kafka or Redis may be away): what is not committed is replayed
            log.exception("tenant=%s bridge could not commit or report while stopping", self.tenant.name)
        finally:
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=10)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            self.bridge.release(sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Positions start at the committed offsets: what is not written yet is fetched again. The
        # line says which host holds which partitions when bridges on several hosts share a group.
        log.info("tenant=%s node=%s partitions assigned %s", self.bridge.tenant.name, self.bridge.settings.node,
                 sorted(tp.partition for tp in assigned))


def _ranges(records: list[Any]) -> dict[int, tuple[int, int]]:
    """partition -> (first, last) offset among ``records`` (in offset order within a partition, as
    the consumer gives them)."""
    last = {r.partition: r.offset for r in records}
    first = {r.partition: r.offset for r in reversed(records)}
    return {p: (first[p], o) for p, o in last.items()}
