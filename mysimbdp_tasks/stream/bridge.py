"""The stream bridge: a tenant's Kafka topic -> validated, quota-checked micro-batches on its queue.

One consumer group per tenant (``mysimbdp.bridge.<tenant>``), auto-commit off. Per micro-batch
(at most ``max_messages`` or ``max_wait_s`` after its first message):

1. validate each message: UTF-8 JSON object, not naming another tenant, key columns present, values
   convertible to the schema; refused ones go to ``<tenant>.dead`` with the original payload and a
   reason (``bad_json``, ``not_an_object``, ``wrong_tenant``, ``missing_key_column``, ``bad_value``);
2. reserve the daily message quota for the valid ones in one atomic Redis call (partial admission
   when it runs out; the rest are dead-lettered with ``daily_messages_exceeded``);
3. enqueue the admitted messages as Celery tasks on ``<tenant>.stream``;
4. wait until the dead letters are acknowledged by Kafka; only then commit the offsets.

A crash between 3 and 4 replays the batch: tasks are enqueued again (upserts: harmless), the quota
decides each replayed message as before without counting it again, and dead letters may repeat.
That window is the only at-least-once part of the path.

On an exhausted quota we dead-letter rather than pause the partitions until midnight: a paused
consumer keeps growing lag that hides real problems, messages of the next day would queue behind a
whole day of backlog, and the dead letters tell the tenant exactly which messages were refused and
why, so it can re-send them after buying more quota.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ..core import names
from ..core.convert import RowConverter
from ..core.errors import RowError, Stopping
from ..core.reports import Window, send_report
from ..core.rows import converter_for
from ..core.settings import DEFAULT_BATCH_MESSAGES, DEFAULT_BATCH_WAIT_MS, Settings
from ..core.tenants import Tenant
from ..services import topics
from ..services.dispatch import Dispatch
from ..services.outages import Waiter
from ..services.quotas import Quotas

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    admitted: list[dict[str, Any]] = field(default_factory=list)
    dead: list[tuple[Any, str, str]] = field(default_factory=list)  # (record, reason, detail)


def validate(tenant: Tenant, converter: RowConverter, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    """(data, "", "") for a good message, or (None, reason, detail). Never raises for any payload."""
    try:
        return _validate(tenant, converter, value)
    except Exception as exc:  # noqa: BLE001 - whatever a payload triggers is that message's fault alone
        return None, "unusable_message", f"{type(exc).__name__}: {str(exc)[:200]}"


def _validate(tenant: Tenant, converter: RowConverter, value: bytes | None) -> tuple[dict[str, Any] | None, str, str]:
    if value is None:
        return None, "bad_json", "empty message"
    try:
        data = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, "bad_json", str(exc)[:200]
    except RecursionError:
        return None, "bad_json", "nested too deeply"
    except ValueError as exc:  # e.g. an integer of more digits than int() accepts
        return None, "bad_json", str(exc)[:200]
    if not isinstance(data, dict):
        return None, "not_an_object", f"expected a JSON object, got {type(data).__name__}"
    claimed = data.get("tenant")
    if claimed is not None and claimed != tenant.name:
        shown = repr(claimed)[:40] if isinstance(claimed, str) else type(claimed).__name__
        return None, "wrong_tenant", f"message names tenant {shown} on the topic of {tenant.name!r}"
    try:
        converter.convert(data)
    except RowError as exc:
        return None, exc.reason, exc.detail
    return data, "", ""


class Bridge:
    def __init__(self, settings: Settings, tenant: Tenant, quotas: Quotas, dispatch: Dispatch,
                 max_messages: int = DEFAULT_BATCH_MESSAGES,
                 max_wait_s: float = DEFAULT_BATCH_WAIT_MS / 1000, report_every_s: float = 5.0) -> None:
        self.settings = settings
        self.tenant = tenant
        self.quotas = quotas
        self.dispatch = dispatch
        self.max_messages = max_messages
        self.max_wait_s = max_wait_s
        self.report_every_s = report_every_s
        self.converter = converter_for(tenant)
        self.group = names.bridge_group(tenant.name)
        self.consumer = self._consumer()
        self.assigned_at = time.monotonic()
        self.producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=5,
                                      client_id=f"mysimbdp-bridge-{tenant.name}")
        self.counts = {"admitted": 0, "dead": 0, "tasks": 0}
        # The bridge reports even when idle: its lag is what tells the monitor a tenant falls behind.
        self.window = Window("bridge", tenant.name, report_every_s, start=time.time(), emit_empty=True)

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            self.tenant.ingest_topic,
            bootstrap_servers=self.settings.kafka_bootstrap_str,
            group_id=self.group,
            client_id=f"mysimbdp-bridge-{self.tenant.name}",
            enable_auto_commit=False,  # committed only after enqueueing, below
            auto_offset_reset="earliest",
            max_poll_records=self.max_messages,
            fetch_max_wait_ms=int(self.max_wait_s * 1000),
            # A bridge that died is noticed in 10 s (not the default 45 s), so its partitions go to
            # the restarted bridge quickly; metadata is refreshed often enough to see new partitions.
            session_timeout_ms=10000,
            heartbeat_interval_ms=3000,
            metadata_max_age_ms=15000,
        )

    def check_assignment(self, stall_s: float = 30.0) -> None:
        """Replace a consumer that has held no partition for ``stall_s`` while the topic has some.

        Seen with kafka-python 3.0: a member dropped by the group coordinator after a missed
        heartbeat can keep polling without ever rejoining. Offsets are committed only after
        enqueueing, so a fresh consumer starts exactly where this one stopped.
        """
        if self.consumer.assignment():
            self.assigned_at = time.monotonic()
            return
        if time.monotonic() - self.assigned_at < stall_s:
            return
        log.error("tenant=%s bridge holds no partition of %s for %.0f s; reconnecting", self.tenant.name,
                  self.tenant.ingest_topic, stall_s)
        self.consumer.close(autocommit=False)
        self.consumer = self._consumer()
        self.assigned_at = time.monotonic()

    # -- one micro-batch ---------------------------------------------------------------------
    def collect(self) -> list[Any]:
        """Records of at most ``max_messages``, waiting at most ``max_wait_s`` after the first."""
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
        return records

    def decide(self, records: list[Any]) -> Verdict:
        verdict = Verdict()
        valid: list[tuple[Any, dict[str, Any]]] = []
        for record in records:
            data, reason, detail = validate(self.tenant, self.converter, record.value)
            if data is None:
                verdict.dead.append((record, reason, detail))
            else:
                valid.append((record, data))
        limit = self.tenant.stream.max_messages_per_day if self.tenant.stream else 0
        decisions = self.quotas.reserve_messages(self.tenant.name, limit,
                                                 [(r.partition, r.offset) for r, _ in valid]) if limit else []
        for i, (record, data) in enumerate(valid):
            if limit and decisions[i]:
                verdict.admitted.append({"data": data, "ts": record.timestamp, "p": record.partition,
                                         "o": record.offset, "n": len(record.value)})
            else:
                reason = "daily_messages_exceeded" if limit else "stream_not_enabled"
                verdict.dead.append((record, reason, f"max_messages_per_day = {limit}"))
        return verdict

    def handle(self, records: list[Any]) -> Verdict:
        t0 = time.perf_counter()
        verdict = self.decide(records)
        for start in range(0, len(verdict.admitted), self.max_messages):
            part = verdict.admitted[start:start + self.max_messages]
            self.dispatch.send_messages(self.tenant.name, {"messages": part, "bridged_at": time.time()})
            self.counts["tasks"] += 1
        futures = [self._dead_letter(record, reason, detail) for record, reason, detail in verdict.dead]
        if futures:
            self.producer.flush()
            for f in futures:
                f.get(timeout=30)  # raises if Kafka refused it: then nothing is committed
        self._commit(records)
        self.counts["admitted"] += len(verdict.admitted)
        self.counts["dead"] += len(verdict.dead)
        elapsed = (time.perf_counter() - t0) * 1000
        self.window.add(len(verdict.admitted), sum(m["n"] for m in verdict.admitted), elapsed)
        if verdict.dead:
            self.window.add(len(verdict.dead), 0, 0.0, error=True)
        return verdict

    def _dead_letter(self, record: Any, reason: str, detail: str) -> Any:
        log.info("tenant=%s partition=%d offset=%d dead-lettered reason=%s detail=%s", self.tenant.name,
                 record.partition, record.offset, reason, detail)
        headers = [("reason", reason.encode()), ("detail", detail.encode("utf-8", "backslashreplace")),
                   ("tenant", self.tenant.name.encode()), ("source_topic", record.topic.encode()),
                   ("source_partition", str(record.partition).encode()),
                   ("source_offset", str(record.offset).encode())]
        return self.producer.send(self.tenant.dead_topic, value=record.value, key=record.key, headers=headers)

    def _commit(self, records: list[Any]) -> None:
        last: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            last[tp] = max(last.get(tp, -1), r.offset)
        if last:
            self.consumer.commit({tp: OffsetAndMetadata(o + 1, "", -1) for tp, o in last.items()})

    # -- reporting ---------------------------------------------------------------------------
    def lag(self) -> int:
        """Messages of the tenant's topic not yet committed by the bridges' group (see :func:`topics.lag`)."""
        return topics.lag(self.consumer, self.tenant.ingest_topic)

    def maybe_report(self, force: bool = False) -> None:
        now = time.time()
        if not (force or self.window.due(now)):
            return
        report = self.window.flush(now, lag=self.lag())
        if report is not None:
            send_report(self.producer, report)
            log.info("tenant=%s report messages=%d lag=%s errors=%d", self.tenant.name, report.messages,
                     report.lag, report.errors)

    def active(self) -> bool:
        return bool(self.quotas.redis.sismember(names.TENANTS_ACTIVE, self.tenant.name))

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
                    if not wait.call(self.active):
                        # Removed from the active set: stop before taking more. What is left in the
                        # topic stays there, uncommitted, for when the tenant is applied again.
                        log.warning("tenant=%s is no longer active; bridge stops", self.tenant.name)
                        break
                records = self.collect()
                if records:
                    wait.call(functools.partial(self.handle, records))
                else:
                    self.check_assignment()
                wait.call(self.maybe_report)
        except Stopping:
            log.warning("tenant=%s bridge stopped while waiting; the batch in hand is not committed and will be "
                        "read again", self.tenant.name)
        finally:
            with contextlib.suppress(Exception):  # Kafka may be away: closing must not hide why we stop
                self.maybe_report(force=True)
            self.consumer.close(autocommit=False)
            self.producer.close(timeout=10)
