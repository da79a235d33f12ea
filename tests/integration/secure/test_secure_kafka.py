"""The secure stack: TLS on every listener, a Kafka login per principal, and Kafka's own ACLs.

Every refusal asserted here comes from the service itself: Kafka's StandardAuthorizer answers
TOPIC_AUTHORIZATION_FAILED, and a client without TLS (or the login) is never served.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from cassandra.cluster import Cluster, NoHostAvailable
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import identities, kafka_access, tls
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import topics

pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def two_tenants(secure_stack: Settings) -> tuple[str, str]:
    """Two fresh tenants A and B with their topics, users and ACLs on the secure stack."""
    a, b = (f"t{uuid.uuid4().hex[:8]}" for _ in range(2))
    topics.ensure(secure_stack, [])
    admin = topics.admin(secure_stack)
    try:
        admin.create_topics([NewTopic(f(t), 1, 1) for t in (a, b)
                             for f in (names.ingest_topic, names.dead_topic, names.reports_topic)])
    finally:
        admin.close()
    kafka_access.grant(secure_stack, [a, b])
    return a, b


def _producer(settings: Settings, principal: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", max_block_ms=20000,
                         **tls.kafka_options(settings, principal))


def _send_once(settings: Settings, topic: str, **options: Any) -> None:
    """Connect with exactly ``options`` and send one message; raises what the client meets."""
    # Short waits: a refused client would otherwise retry its bootstrap for 30 s.
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, max_block_ms=5000,
                             bootstrap_timeout_ms=5000, request_timeout_ms=5000, **options)
    try:
        producer.send(topic, b"{}").get(timeout=20)
    finally:
        producer.close(timeout=5)


def _read(settings: Settings, principal: str, topic: str) -> int:
    """Read ``topic`` from its beginning as ``principal``; the number of records found."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str, enable_auto_commit=False,
                             **tls.kafka_options(settings, principal))
    try:
        tp = TopicPartition(topic, 0)
        # Asking where the partition begins is a read: Kafka refuses it without READ on the topic
        # (a refused poll would only come back empty).
        consumer.beginning_offsets([tp])
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        return sum(len(batch) for batch in consumer.poll(timeout_ms=3000).values())
    finally:
        consumer.close()


def test_a_tenant_writes_only_its_own_topics(secure_stack: Settings, two_tenants: tuple[str, str]) -> None:
    a, b = two_tenants
    producer = _producer(secure_stack, f"tenant:{a}")
    try:
        assert producer.send(names.ingest_topic(a), b"{}").get(timeout=30).offset >= 0
        assert producer.send(names.reports_topic(a), b"{}").get(timeout=30).offset >= 0
        for foreign in (names.ingest_topic(b), names.reports_topic(b), names.CONTROL_TOPIC, names.REPORTS_TOPIC):
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(foreign, b"{}").get(timeout=30)
    finally:
        producer.close()


def test_a_tenant_reads_only_its_own_dead_letters(secure_stack: Settings, two_tenants: tuple[str, str]) -> None:
    a, b = two_tenants
    bridge = _producer(secure_stack, "platform:bridge")  # the bridge writes dead letters
    try:
        bridge.send(names.dead_topic(a), b"a's letter").get(timeout=30)
        bridge.send(names.dead_topic(b), b"b's letter").get(timeout=30)
    finally:
        bridge.close()
    assert _read(secure_stack, f"tenant:{a}", names.dead_topic(a)) == 1
    with pytest.raises(TopicAuthorizationFailedError):
        _read(secure_stack, f"tenant:{a}", names.dead_topic(b))
    with pytest.raises(TopicAuthorizationFailedError):
        _read(secure_stack, f"tenant:{a}", names.ingest_topic(b))


def test_only_the_monitor_writes_control(secure_stack: Settings, two_tenants: tuple[str, str]) -> None:
    monitor = _producer(secure_stack, "platform:monitor")
    bridge = _producer(secure_stack, "platform:bridge")
    try:
        assert monitor.send(names.CONTROL_TOPIC, b"{}").get(timeout=30).offset >= 0
        with pytest.raises(TopicAuthorizationFailedError):
            bridge.send(names.CONTROL_TOPIC, b"{}").get(timeout=30)
    finally:
        monitor.close()
        bridge.close()


def test_a_wrong_password_is_refused(secure_stack: Settings, two_tenants: tuple[str, str]) -> None:
    options = {**tls.kafka_options(secure_stack, f"tenant:{two_tenants[0]}"), "sasl_plain_password": "not-it"}
    with pytest.raises(KafkaError):
        _send_once(secure_stack, names.ingest_topic(two_tenants[0]), **options)


def test_plaintext_clients_are_refused_by_every_service(secure_stack: Settings) -> None:
    host = secure_stack.redis_host
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host=host, port=secure_stack.redis_port, socket_timeout=5, socket_connect_timeout=5).ping()
    with pytest.raises(KafkaError):
        _send_once(secure_stack, names.REPORTS_TOPIC)
    cluster = Cluster([secure_stack.cassandra_contact_points[0]], port=secure_stack.cassandra_port,
                      connect_timeout=5, control_connection_timeout=5)
    try:
        with pytest.raises(NoHostAvailable):
            cluster.connect()
    finally:
        cluster.shutdown()


def test_platform_clients_connect_with_tls(secure_stack: Settings) -> None:
    assert secure_stack.redis_url.startswith("rediss://")
    assert redis.Redis.from_url(identities.redis_url(secure_stack)).ping()
    cluster, session = db.connect(secure_stack)
    try:
        assert session.execute("SELECT release_version FROM system.local").one().release_version.startswith("5.")
    finally:
        cluster.shutdown()
