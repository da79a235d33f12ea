"""The tenants' stream client app against the real Kafka of the local stack.

Each test sends to a topic of its own, so it never sees another test's messages; client reports
go to the tenant's own ``tenant2.reports`` topic and are told apart by this process's host and pid.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.reports import Report
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import topics
from producers import samples, stream

pytestmark = pytest.mark.integration

COUNT = 500
PARTITIONS = 3
REPORTS = names.reports_topic("tenant2")


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    name = names.ingest_topic(f"t{uuid.uuid4().hex[:10]}")
    topics.ensure(settings, [])  # the platform topics
    admin = topics.admin(settings)
    try:
        if REPORTS not in admin.list_topics():  # the client reports of tenant2
            admin.create_topics([NewTopic(REPORTS, num_partitions=1, replication_factor=1)])
        admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
        yield name
        admin.delete_topics([name])
    finally:
        admin.close()


def _consume(settings: Settings, topic: str, start: dict[int, int] | None, want: int,
             timeout: float = 60.0) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of the records of ``topic`` from ``start`` offsets (default: the beginning)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, enable_auto_commit=False,
                             consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(parts)
        for tp in parts:
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start.get(tp.partition, 0))
        out: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                out.extend((r.partition, r.key, r.value) for r in batch)
        return out
    finally:
        consumer.close()


def _end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def _reports(settings: Settings, start: dict[int, int]) -> list[Report]:
    """The client reports this process sent since ``start``."""
    found: list[Report] = []
    for _, _, value in _consume(settings, REPORTS, start, 1_000_000, timeout=5.0):
        report = Report.from_json(value)
        if report.source == "client" and report.pid == os.getpid() and report.host == socket.gethostname():
            found.append(report)
    return found


def test_tenant2_messages_arrive_whole_keyed_and_reported(settings: Settings, topic: str) -> None:
    data = samples.default_dir()
    records = list(stream.records_for("tenant2", [data / "1000rows.csv"], count=COUNT))
    reports_from = _end_offsets(settings, REPORTS)

    stats = stream.send("tenant2", records, settings.kafka_bootstrap_str, report_every=60, topic=topic)

    assert (stats.sent, stats.acked, stats.errors) == (COUNT, COUNT, 0)
    assert stats.avg_latency_ms > 0
    got = _consume(settings, topic, None, COUNT)
    assert len(got) == COUNT
    by_id = {json.loads(value)["id"]: (partition, key, json.loads(value.decode("utf-8")))
             for partition, key, value in got}
    assert len(by_id) == COUNT
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        partition, key, message = by_id[record["id"]]
        assert message == stream.message_for("tenant2", record)
        assert message["body"].encode("utf-8") == record["body"].encode("utf-8")
        assert key == f"{record['subreddit']}/{record['id']}".encode()
        partitions_of_key[key].add(partition)
    assert all(len(p) == 1 for p in partitions_of_key.values())
    assert len({p for p, _, _ in got}) == PARTITIONS  # the keys spread over the partitions
    assert stats.bytes == sum(len(value) for _, _, value in got)

    mine = _reports(settings, reports_from)
    assert [r.tenant for r in mine] == ["tenant2"] * len(mine)
    assert sum(r.messages for r in mine) == COUNT
    assert sum(r.bytes for r in mine) == stats.bytes
    assert all(r.errors == 0 and r.max_ms >= r.avg_ms > 0 for r in mine)


def test_messages_of_one_key_keep_their_order(settings: Settings, topic: str) -> None:
    # Three versions of each of 50 rows, sent interleaved: each row's versions must arrive in order.
    base = list(stream.records_for("tenant2", [samples.default_dir() / "1000rows.csv"], count=50))
    records = [{**r, "body": f"version {v}"} for v in range(3) for r in base]

    stats = stream.send("tenant2", records, settings.kafka_bootstrap_str, topic=topic)

    assert stats.acked == len(records)
    versions: dict[str, list[str]] = defaultdict(list)
    for _, _, value in _consume(settings, topic, None, len(records)):
        message = json.loads(value)
        versions[message["id"]].append(message["body"])
    assert len(versions) == 50
    assert all(v == ["version 0", "version 1", "version 2"] for v in versions.values())


def test_a_missing_topic_is_reported_with_what_to_do(settings: Settings) -> None:
    missing = names.ingest_topic(f"nosuch{uuid.uuid4().hex[:6]}")
    with pytest.raises(stream.StreamError, match=r"topic nosuch\w+\.ingest does not exist.*tenants apply"):
        stream.send("tenant2", [], settings.kafka_bootstrap_str, topic=missing)
