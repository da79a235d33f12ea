"""The stream benchmark's smoke run against the real services: every message it sent is in Cassandra."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from cassandra.cluster import Session
from kafka.admin import KafkaAdminClient
from kafka.errors import UnknownTopicOrPartitionError

from benchmarks import stream
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]  # two steps: one per producer


def _count(session: Session, keyspace: str, table: str) -> int:
    return int(session.execute(f'SELECT COUNT(*) FROM "{keyspace}"."{table}"', timeout=120).one()[0])


def _forget(settings: Settings, client: redis.Redis, session: Session, tenants: list[dict[str, Any]]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        for t in tenants:
            Registry(client).forget(t["tenant"])
            session.execute(f'DROP KEYSPACE IF EXISTS "{t["keyspace"]}"', timeout=60)
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics([names.ingest_topic(t["tenant"]), names.dead_topic(t["tenant"])])
    finally:
        admin.close()


def test_quick_run_lands_every_message_it_sent(settings: Settings, redis_client: redis.Redis,
                                                cassandra_session: Session, tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    doc: dict[str, Any] = {}
    try:
        # Both load generators, one step each: the pre-built batches and kafka-python's producer.
        assert stream.main(settings, ["--quick", "--json", str(out), "--no-plot", "--keep",
                                      "--producer", "prebuilt,kafka-python", "--workdir", str(tmp_path / "work")]) == 0
        doc = json.loads(out.read_text())
        assert doc["benchmark"] == "stream" and doc["verified"] is True
        assert [s["producer"] for s in doc["steps"]] == ["prebuilt", "kafka-python"]
        for step in [doc["warmup"], *doc["steps"]]:
            assert step["sent"] > 0
            assert step["landed"] == step["acked"] == step["sent"]
            assert step["dead_letters"] == 0 and step["errors"] == 0
            assert step["p99_ms"] is not None and step["p99_ms"] > 0
            assert step["details"]["cpu_us_per_message"]["producers"] > 0  # the producers found and measured
            assert step["cpu_bound_per_s"] > 0
        # Counted again, independently: each tenant's table holds exactly what it was sent.
        for t in doc["tenants"]:
            sent = sum(s["per_tenant"][t["tenant"]]["acked"] for s in [doc["warmup"], *doc["steps"]])
            assert _count(cassandra_session, t["keyspace"], t["table"]) == sent
        # The quick naive run stops after 2,000 messages or 5 s, whichever comes first: how many it
        # got through depends on the machine, but each one it consumed is in Cassandra.
        naive = doc["naive"]
        assert naive["details"]["pre_sent"] == 2000
        assert 0 < naive["messages"] <= 2000
        landed = sum(_count(cassandra_session, t["keyspace"], t["table"]) for t in naive["details"]["tenants"])
        assert landed == naive["messages"]
    finally:
        made = doc.get("tenants", []) + ((doc.get("naive") or {}).get("details", {}).get("tenants", []))
        _forget(settings, redis_client, cassandra_session, made)
