"""Dead-letter replay: read a tenant's dead letters and send the chosen ones back to its ingest topic, once.

A replayed message is the original key and payload, byte for byte, with the header ``replay_of``
naming the dead letter (``<tenant>.dead:<partition>:<offset>``). It goes through validation and the
daily quota like any message; refused again, it becomes a new dead letter, whose source (the ingest
partition and offset) the replay log links back to the letter it replayed (:func:`lineage`).

Each dead letter is replayed at most once. The replay log (a Redis hash per tenant, field = the dead
letter's ``<partition>:<offset>``) is claimed with HSETNX before the send, so two replays running at
once never both send a letter; it is marked ``sent`` with the ingest partition and offset once Kafka
acknowledged the send, and released if Kafka refused it. A replay killed between the claim and the
acknowledgement leaves the letter ``sending``: it is not sent again on its own (it may have reached
Kafka), and ``dead list`` shows it so, for a user to look at.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from ..core import names
from ..core.deadletters import Letter, letter
from ..core.settings import Settings
from ..security import tls

log = logging.getLogger(__name__)

POLL_MS = 500
READ_TIMEOUT_S = 60.0
ACK_TIMEOUT_S = 30.0
SENDING, SENT = "sending", "sent"


def _consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, enable_auto_commit=False,
                         group_id=None, **tls.command_kafka_options(settings))


def read(settings: Settings, tenant: str, timeout_s: float = READ_TIMEOUT_S) -> Iterator[Letter]:
    """Every dead letter of ``tenant`` present when the read starts, partition by partition, oldest first.

    No consumer group: reading does not move any offset, and never waits for letters yet to come.
    """
    topic = names.dead_topic(tenant)
    consumer = _consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            return
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        left = {tp for tp in parts if consumer.position(tp) < ends[tp]}
        deadline = time.monotonic() + timeout_s
        while left and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=POLL_MS).items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield letter(record)
                if consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        if left:
            raise TimeoutError(f"{topic}: could not read to the end of partitions "
                               f"{sorted(tp.partition for tp in left)} within {timeout_s:.0f} s")
    finally:
        consumer.close()


class ReplayLog:
    """Which dead letters of a tenant were replayed, when, and where they went."""

    def __init__(self, client: redis.Redis, tenant: str) -> None:
        self.client, self.key = client, names.replayed_key(tenant)

    def all(self) -> dict[str, dict[str, Any]]:
        raw = self.client.hgetall(self.key)
        return {(k.decode() if isinstance(k, bytes) else k): json.loads(v) for k, v in raw.items()}

    def claim(self, ref: str) -> bool:
        return bool(self.client.hsetnx(self.key, ref, json.dumps({"state": SENDING, "at": time.time()})))

    def sent(self, ref: str, partition: int, offset: int) -> None:
        self.client.hset(self.key, ref, json.dumps({"state": SENT, "at": time.time(), "ingest_partition": partition,
                                                    "ingest_offset": offset}))

    def release(self, ref: str) -> None:
        self.client.hdel(self.key, ref)


def lineage(log_entries: dict[str, dict[str, Any]], tenant: str) -> dict[str, str]:
    """``"<ingest topic>:<partition>:<offset>"`` a replay sent -> the ref of the dead letter it replayed."""
    topic = names.ingest_topic(tenant)
    return {f"{topic}:{e['ingest_partition']}:{e['ingest_offset']}": ref
            for ref, e in log_entries.items() if e.get("state") == SENT and "ingest_offset" in e}


@dataclass
class Outcome:
    """What a replay did: letters sent (with where they went), skipped as already replayed, failed."""

    chosen: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "sent": self.sent, "already_replayed": self.already, "failed": self.failed,
                "dry_run": self.dry_run}


def replay_headers(tenant: str, item: Letter) -> list[tuple[str, bytes]]:
    return [("replay_of", f"{names.dead_topic(tenant)}:{item.ref}".encode()),
            ("replay_reason", item.reason.encode())]


def replay(settings: Settings, client: redis.Redis, tenant: str, letters: Sequence[Letter],
           dry_run: bool = False) -> Outcome:
    """Send each letter not replayed before to the tenant's ingest topic; see the module's doc."""
    book = ReplayLog(client, tenant)
    done = book.all()
    out = Outcome(chosen=len(letters), dry_run=dry_run)
    out.already = [x.ref for x in letters if x.ref in done]
    out.failed = [{"ref": x.ref, "error": f"its message ({x.cut_from} bytes) was kept cut to fit the dead topic; "
                   "only the original can be sent again"} for x in letters if x.cut_from and x.ref not in done]
    fresh = [x for x in letters if x.ref not in done and not x.cut_from]
    if dry_run or not fresh:
        out.sent = [{"ref": x.ref, "reason": x.reason} for x in fresh] if dry_run else []
        return out
    topic = names.ingest_topic(tenant)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=5,
                             max_request_size=8 * 1024 * 1024, **tls.command_kafka_options(settings))
    try:
        pending = []
        for item in fresh:
            if not book.claim(item.ref):  # another replay took it meanwhile
                out.already.append(item.ref)
                continue
            value = item.value if item.value is not None else b""
            pending.append((item, producer.send(topic, key=item.key, value=value,
                                                headers=replay_headers(tenant, item))))
        producer.flush(timeout=ACK_TIMEOUT_S)
        for item, future in pending:
            try:
                meta = future.get(timeout=ACK_TIMEOUT_S)
            except KafkaError as exc:  # Kafka refused it or timed out: it may be replayed again later
                book.release(item.ref)
                out.failed.append({"ref": item.ref, "error": f"{type(exc).__name__}: {exc}"})
                log.warning("tenant=%s dead letter %s not replayed: %s", tenant, item.ref, exc)
                continue
            book.sent(item.ref, meta.partition, meta.offset)
            out.sent.append({"ref": item.ref, "reason": item.reason, "to": f"{topic}:{meta.partition}:{meta.offset}"})
            log.info("tenant=%s dead letter %s (reason=%s) replayed to %s:%d:%d", tenant, item.ref, item.reason,
                     topic, meta.partition, meta.offset)
    finally:
        producer.close(timeout=ACK_TIMEOUT_S)
    return out
