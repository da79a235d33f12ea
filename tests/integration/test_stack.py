"""The local stack: every service is up and answers the requests the platform makes of it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from cassandra.cluster import Session
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.settings import Settings

pytestmark = pytest.mark.integration


def test_status_reports_every_service_up(stack: Settings) -> None:
    states = local_stack.status(stack)
    assert [s.name for s in states] == ["redis", "kafka", "cassandra"]
    assert local_stack.all_up(states), states


def test_up_again_reuses_the_running_services(stack: Settings) -> None:
    before = {s.name: s.pid for s in local_stack.status(stack)}
    lines: list[str] = []
    local_stack.up(stack, echo=lines.append)
    after = {s.name: s.pid for s in local_stack.status(stack)}
    assert after == before
    assert not any("starting" in line for line in lines), lines


def test_redis_answers_ping(redis_client: redis.Redis) -> None:
    assert redis_client.ping() is True


def test_cassandra_is_release_5_0(cassandra_session: Session) -> None:
    row = cassandra_session.execute("SELECT release_version FROM system.local").one()
    assert row.release_version.startswith("5.0")


def test_kafka_round_trip_on_a_fresh_topic(stack: Settings) -> None:
    bootstrap = stack.kafka_bootstrap_str
    topic = f"stack-test-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="test-stack")
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], wait_for_metadata=True)
    try:
        payload = f"hello {topic}".encode()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send(topic, key=b"k", value=payload).get(timeout=30)
        producer.close()

        # A consumer group, as the bridge uses: this also needs the internal offsets topic, which
        # a single broker can only create with replication factor 1.
        consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=f"{topic}-group", auto_offset_reset="earliest",
            enable_auto_commit=False, consumer_timeout_ms=30_000,
        )
        try:
            received = next((msg for msg in consumer if msg.value == payload), None)
            assert received is not None, f"the message sent to {topic} did not come back within 30 s"
            consumer.commit()
            committed = consumer.committed(TopicPartition(topic, received.partition))
        finally:
            consumer.close()
        assert received.key == b"k"
        assert committed == received.offset + 1
    finally:
        admin.delete_topics([topic])
        admin.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_new_home_joining_the_plain_stack_stays_plain_and_says_so(stack: Settings, tmp_path: Path) -> None:
    """`stack up` on a new home whose addresses already answer in plaintext (here: the test stack,
    started from another home) follows them instead of making the home secure, and records it."""
    env = {k: v for k, v in os.environ.items() if k != "MYSIMBDP_SECURE"} | {"MYSIMBDP_HOME": str(tmp_path)}
    up = _cli(env, "stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "stack: plain: services not started from this home already answer at its addresses in plaintext" \
        in up.stdout, up.stdout
    assert (tmp_path / "plain").exists() and not (tmp_path / "secure").exists()
    status = _cli(env, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.startswith(f"mode: plain (no TLS, no logins); recorded in {tmp_path / 'plain'}")
    assert "mode: plain" in _cli(env, "status").stdout
