"""Kafka topics of the platform: ``<tenant>.ingest``, ``<tenant>.dead`` and ``mysimbdp.reports``."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from ..core import names
from ..core.settings import Settings
from ..core.tenants import Tenant

log = logging.getLogger(__name__)

REPORTS = names.REPORTS_TOPIC
CONTROL = names.CONTROL_TOPIC


def admin(settings: Settings) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str, client_id="mysimbdp-admin",
                            request_timeout_ms=30000)


def wanted(tenants: Iterable[Tenant]) -> dict[str, int]:
    """topic -> partition count for the given tenants plus the platform topics."""
    topics = {REPORTS: 1, CONTROL: 1}
    for t in tenants:
        topics[t.ingest_topic] = t.partitions
        topics[t.dead_topic] = 1
    return topics


def ensure(settings: Settings, tenants: Iterable[Tenant]) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left as they are."""
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        missing = {name: n for name, n in wanted(tenants).items() if name not in existing}
        created = []
        for name, partitions in missing.items():
            try:
                client.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if created:
            _wait_for_leaders(settings, created)
        return created
    finally:
        client.close()


def _wait_for_leaders(settings: Settings, names: list[str], timeout: float = 30.0) -> None:
    """Return once every partition of the new topics has a leader, so clients can use them at once."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topics = consumer.topics()  # refreshes metadata
            if all(n in topics and consumer.partitions_for_topic(n) for n in names):
                return
            time.sleep(0.2)
        log.warning("topics %s have no leader after %.0f s", ", ".join(names), timeout)
    finally:
        consumer.close()


def lag(consumer: KafkaConsumer, topic: str) -> int:
    """Messages of ``topic`` not yet committed by ``consumer``'s group, over all its partitions.

    Counted from the group's committed offsets, not from this consumer's positions: a bridge that
    holds no partition (stalled, or between rebalances) must not report zero lag, and a consumer
    that never subscribes can read a group's lag without joining it.
    """
    tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not tps:
        return 0
    ends = consumer.end_offsets(tps)
    return sum(max(0, ends[tp] - (consumer.committed(tp) or 0)) for tp in tps)


def delete_tenant_topics(settings: Settings, tenant: Tenant) -> None:
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        names = [n for n in (tenant.ingest_topic, tenant.dead_topic) if n in existing]
        if names:
            with contextlib.suppress(UnknownTopicOrPartitionError):  # deleted meanwhile: the outcome wanted
                client.delete_topics(names)
    finally:
        client.close()
