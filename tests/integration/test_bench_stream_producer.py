"""The stream benchmark's load generator against the real Kafka of the local stack.

The pre-built producer must put on Kafka exactly what the tenant client (kafka-python's producer)
puts there for the same step: the same payloads under the same keys on the same partitions, each
message once, acknowledged with acks=all by an idempotent producer, with the CreateTime it reports.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from benchmarks import harness
from benchmarks.stream_producer import (
    Command,
    KafkaPythonSender,
    Messages,
    PrebuiltSender,
    ProducerProcess,
    StepSent,
    read_times,
)
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import topics
from producers import samples
from producers.stream import producer_config

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PARTITIONS = 3
COUNT = 1500
UNPACED = 10_000  # per producer, as the naive baseline pre-sends


@pytest.fixture
def two_tenants(settings: Settings) -> Iterator[tuple[str, str]]:
    """Two fresh tenants' ingest topics of three partitions each."""
    made = (f"lg{uuid.uuid4().hex[:8]}", f"lg{uuid.uuid4().hex[:8]}")
    admin = topics.admin(settings)
    try:
        admin.create_topics([NewTopic(names.ingest_topic(t), num_partitions=PARTITIONS, replication_factor=1)
                             for t in made])
        yield made
        admin.delete_topics([names.ingest_topic(t) for t in made])
    finally:
        admin.close()


def _records(settings: Settings, tenant: str, want: int) -> list[tuple[int, bytes, bytes, int]]:
    """(partition, key, value, timestamp) of every record of the tenant's topic."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, enable_auto_commit=False)
    try:
        topic = names.ingest_topic(tenant)
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[tuple[int, bytes, bytes, int]] = []
        deadline = time.monotonic() + 60
        while len(out) < want and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                out += [(r.partition, r.key, r.value, r.timestamp) for r in batch]
        out += [(r.partition, r.key, r.value, r.timestamp) for b in consumer.poll(timeout_ms=1000).values() for r in b]
        return out
    finally:
        consumer.close()


def _send(sender: PrebuiltSender | KafkaPythonSender, cmd: Command) -> StepSent:
    try:
        sender.prepare(cmd)
        return sender.run(time.time())
    finally:
        sender.close()


def test_prebuilt_batches_land_as_the_tenant_clients_messages(settings: Settings, two_tenants: tuple[str, str],
                                                               tmp_path: Path) -> None:
    client_tenant, prebuilt_tenant = two_tenants
    inputs = [samples.default_dir() / "1000rows.csv"]  # COUNT > its rows: the samples cycle
    config = producer_config(settings.kafka_bootstrap_str, "bx")
    assert config.get("enable_idempotence"), "the tenant client is idempotent: so is the pre-built producer"
    # The same step of the same messages (their "tenant" field: bx) through each producer to its own topic.
    step = Command(5, 3000.0, None, COUNT)
    by_client = _send(KafkaPythonSender(client_tenant, Messages("tenant2", "bx", inputs), tmp_path, config), step)
    prebuilt = _send(PrebuiltSender(prebuilt_tenant, Messages("tenant2", "bx", inputs), tmp_path, config), step)

    for sent in (by_client, prebuilt):
        assert (sent.sent, sent.acked, sent.errors) == (COUNT, COUNT, 0)
    client_records = _records(settings, client_tenant, COUNT)
    prebuilt_records = _records(settings, prebuilt_tenant, COUNT)
    assert len(prebuilt_records) == COUNT  # each message once
    assert sorted(r[:3] for r in prebuilt_records) == sorted(r[:3] for r in client_records)
    assert len({r[2] for r in prebuilt_records}) == COUNT  # every payload is new (a fresh id)
    assert len({r[0] for r in prebuilt_records}) == PARTITIONS

    # The CreateTime the producer reports for each message is the one Kafka keeps: when the earliest
    # message of its request was due, so never after the request was sent.
    created, sent_at = read_times(Path(prebuilt.times))
    by_seq = {value: ts for _, _, value, ts in prebuilt_records}
    values = [v for v, _ in _take(Messages("tenant2", "bx", inputs), 5, COUNT)]  # by seq
    assert [by_seq[v] for v in values] == list(created)
    assert all(c <= t * 1000 + 1 for c, t in zip(created, sent_at, strict=True))


def _take(messages: Messages, step: int, n: int) -> list[tuple[bytes, bytes]]:
    fresh = messages.fresh(step)
    return [next(fresh) for _ in range(n)]


def test_unpaced_prebuilt_producers_both_answer(settings: Settings, two_tenants: tuple[str, str],
                                                tmp_path: Path) -> None:
    # The naive baseline's pre-send: two producer processes, each told to send its count as fast as it
    # goes, their results read one after the other. The second has answered "prepared" and its result
    # long before it is read: both answers must still be read.
    inputs = [samples.default_dir() / "1000rows.csv"]
    procs = [ProducerProcess("tenant2", tenant, settings.kafka_bootstrap_str, tmp_path, inputs,
                             tmp_path / f"producer-{tenant}.log", harness.ROOT) for tenant in two_tenants]
    try:
        for proc in procs:
            proc.send(Command(0, 0.0, None, UNPACED, time.time()))
        sent = [proc.result(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.close()
    assert [(s.sent, s.acked, s.errors) for s in sent] == [(UNPACED, UNPACED, 0)] * 2
    assert [len(_records(settings, tenant, UNPACED)) for tenant in two_tenants] == [UNPACED] * 2


def test_prebuilt_sender_wakes_once_per_request(settings: Settings, two_tenants: tuple[str, str],
                                                tmp_path: Path) -> None:
    # Its CPU goes in event-loop turns: between ticks it sleeps, and each tick takes the answers that
    # came and writes its request at once, one select per request (not one per answer, write or wake-up).
    inputs = [samples.default_dir() / "1000rows.csv"]
    sender = PrebuiltSender(two_tenants[0], Messages("tenant2", "bx", inputs), tmp_path,
                            producer_config(settings.kafka_bootstrap_str, "bx"))
    client = sender.sender.client
    counts = {"select": 0, "request": 0}
    selector = client._net._selector  # noqa: SLF001 - kafka-python's epoll of this client
    select, send = selector.select, client.send

    def counted_select(timeout: float | None = None) -> Any:
        counts["select"] += 1
        return select(timeout)

    def counted_send(node: int, request: Any, **kwargs: Any) -> Any:
        counts["request"] += 1
        return send(node, request, **kwargs)

    selector.select, client.send = counted_select, counted_send
    sent = _send(sender, Command(1, 4000.0, None, 4000))
    assert (sent.sent, sent.acked, sent.errors) == (4000, 4000, 0)
    assert counts["request"] >= 20  # paced: many ticks
    assert counts["select"] <= 1.5 * counts["request"] + 10
