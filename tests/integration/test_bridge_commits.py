"""The bridge's asynchronous commits against a real Kafka: what is written gets committed, never
more, and a partition given away is no longer committed by this member."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.stream.commits import Committer

pytestmark = [pytest.mark.integration]


@pytest.fixture
def consumer(settings: Settings) -> Iterator[KafkaConsumer]:
    topic = "commits-" + uuid.uuid4().hex[:10]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, group_id=topic,
                             enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    try:
        yield consumer
    finally:
        consumer.close(autocommit=False)
        admin.delete_topics([topic])
        admin.close()


def _answered(committer: Committer, consumer: KafkaConsumer, timeout: float = 60) -> None:
    """Poll (kafka-python runs commit callbacks inside poll) until the commit in flight is answered."""
    deadline = time.monotonic() + timeout
    while committer.pending is not None and committer.pending.answer is None and time.monotonic() < deadline:
        consumer.poll(timeout_ms=100)
    committer.commit()  # takes up the answer (and sends what is due by then)


def _committed(consumer: KafkaConsumer, partition: int) -> int | None:
    topic = next(iter(consumer.assignment())).topic
    return consumer.committed(TopicPartition(topic, partition))


@pytest.mark.timeout(120)
def test_written_offsets_are_committed_asynchronously_and_never_more(consumer: KafkaConsumer) -> None:
    topic = next(iter(consumer.assignment())).topic
    committer = Committer(consumer, "t", topic)
    committer.written({0: 5})
    committer.commit()
    assert committer.pending is not None  # sent, not waited for
    committer.written({1: 7})  # written meanwhile: goes with the next commit, not beside the one in flight
    committer.commit()
    _answered(committer, consumer)
    _answered(committer, consumer)
    assert (_committed(consumer, 0), _committed(consumer, 1)) == (5, 7)
    assert committer.due() == {}
    committer.written({0: 3})  # an older report never moves a partition back
    assert committer.due() == {}
    committer.written({0: 9})
    committer.forget([0])  # given away by a rebalance: its new owner commits it
    committer.commit(wait=True)
    assert _committed(consumer, 0) == 5
