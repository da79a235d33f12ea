"""Helpers for stream tests: messages to send, the tenant's dead letters, rows and the bridges' lag."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kit import Platform, table_rows

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.security import tls
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import topics
from mysimbdp_tasks.services.quotas import Quotas
from producers.stream import key_for, message_for, records_for


def _admin(settings: Settings) -> dict[str, Any]:
    """The test's Kafka login on a secure stack (the platform's admin; nothing on a plain one)."""
    return tls.kafka_options(settings, "platform:admin")


def messages(like: str, tenant: Tenant, inputs: list[Path]) -> list[dict[str, Any]]:
    return [{**message_for(like, r), "tenant": tenant.name} for r in records_for(like, inputs)]


def send(settings: Settings, tenant: Tenant, payloads: list[tuple[bytes | None, bytes]],
         per_second: float | None = None) -> None:
    """Send to the tenant's topic, acknowledged by Kafka; paced at ``per_second`` if given."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=5,
                             max_request_size=4 * 1024 * 1024, **_admin(settings))
    step = 100
    for start in range(0, len(payloads), step):
        for key, value in payloads[start:start + step]:
            producer.send(tenant.ingest_topic, key=key, value=value)
        if per_second:
            time.sleep(step / per_second)
    producer.flush()
    producer.close()


def send_in_background(settings: Settings, tenant: Tenant, payloads: list[tuple[bytes | None, bytes]],
                       per_second: float | None = None) -> threading.Thread:
    sender = threading.Thread(target=send, args=(settings, tenant, payloads), kwargs={"per_second": per_second})
    sender.start()
    return sender


def wait_counted(client: redis.Redis, tenant: Tenant, at_least: int, timeout: float = 120) -> int:
    """Wait until the quota has admitted ``at_least`` of the tenant's messages today; returns the count."""
    quotas = Quotas(client)
    deadline = time.monotonic() + timeout
    while (counted := quotas.usage(tenant.name)["messages"]) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return counted


def encoded(msgs: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(key_for(m), json.dumps(m, ensure_ascii=False).encode()) for m in msgs]


def dead(settings: Settings, tenant: Tenant, expect: int, timeout: float = 60) -> list[Any]:
    """At least ``expect`` dead letters of the tenant (all there are once that many came)."""
    consumer = KafkaConsumer(tenant.dead_topic, bootstrap_servers=settings.kafka_bootstrap_str,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000,
                             **_admin(settings))
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            got.extend(consumer)
    finally:
        consumer.close()
    return got


def dead_count(settings: Settings, tenant: Tenant) -> int:
    """Every dead letter the tenant's dead topic holds."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, enable_auto_commit=False,
                             **_admin(settings))
    try:
        parts = [TopicPartition(tenant.dead_topic, p) for p in consumer.partitions_for_topic(tenant.dead_topic) or ()]
        return sum(consumer.end_offsets(parts).values()) if parts else 0
    finally:
        consumer.close()


def bridge_lag(settings: Settings, tenant: Tenant) -> int:
    """Messages of the tenant's topic past the bridges' committed offsets: not yet written."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, group_id=names.bridge_group(tenant.name),
                             enable_auto_commit=False, **_admin(settings))
    try:
        return topics.lag(consumer, tenant.ingest_topic)
    finally:
        consumer.close(autocommit=False)


def wait_rows(session: Any, tenant: Tenant, expect: int, platform: Platform, timeout: float = 180) -> list[Any]:
    deadline = time.monotonic() + timeout
    rows: list[Any] = []
    while time.monotonic() < deadline:
        try:
            rows = table_rows(session, tenant)
        except db.TRANSIENT:  # Cassandra just restarted: its first reads may fail
            time.sleep(1)
            continue
        if len(rows) >= expect:
            time.sleep(1)  # anything beyond the expected would show up now
            return table_rows(session, tenant)
        time.sleep(0.5)
    raise TimeoutError(f"{len(rows)} of {expect} rows after {timeout} s; logs:\n{platform.logs()}")


def wait_written(settings: Settings, tenant: Tenant, platform: Platform, timeout: float = 180) -> None:
    """Wait until the bridge has committed every message of the topic: each one is written or a dead letter."""
    deadline = time.monotonic() + timeout
    lag = -1
    while time.monotonic() < deadline:
        lag = bridge_lag(settings, tenant)
        if lag == 0:
            return
        time.sleep(1)
    raise TimeoutError(f"lag {lag} after {timeout} s; logs:\n{platform.logs()}")
