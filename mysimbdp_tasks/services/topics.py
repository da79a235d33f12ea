"""Kafka topics of the platform: ``<tenant>.ingest``, ``<tenant>.dead`` and ``mysimbdp.reports``."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from ..core.settings import Settings
from ..core.tenants import Tenant

log = logging.getLogger(__name__)

REPORTS = "mysimbdp.reports"
CONTROL = "mysimbdp.control"


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
    from kafka import KafkaConsumer

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


def delete_tenant_topics(settings: Settings, tenant: Tenant) -> None:
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        names = [n for n in (tenant.ingest_topic, tenant.dead_topic) if n in existing]
        if names:
            try:
                client.delete_topics(names)
            except UnknownTopicOrPartitionError:
                pass
    finally:
        client.close()
