"""`mysimbdp tenants apply` against the real services: the dry run changes nothing, partitions grow,
batch and stream files of one tenant merge, Kafka being away refuses before anything is created, and
a .ndjson file is taken as .jsonl."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cassandra.cluster import Session
from kafka import KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kit import ROOT

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import provisioning
from mysimbdp_tasks.services.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

BATCH = json.loads((ROOT / "tenants" / "original-batch.json").read_text())["tenant1"]
STREAM = json.loads((ROOT / "tenants" / "original-stream.json").read_text())["tenant1"]


def cli(settings: Settings, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MYSIMBDP_HOME": str(settings.home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *argv], capture_output=True, text=True,
                          env=full, cwd=ROOT, timeout=240)


@pytest.fixture
def name(settings: Settings, redis_client: redis.Redis, cassandra_session: Session) -> Iterator[str]:
    """A fresh tenant name; the tenant, its keyspace and its topics are dropped at the end."""
    made = "t" + uuid.uuid4().hex[:10]
    yield made
    if Registry(redis_client).get(made) is not None:
        cli(settings, "tenants", "remove", made, "--drop-data")


def tenant_file(tmp_path: Path, name: str, like: dict[str, Any], **overrides: Any) -> Path:
    raw = copy.deepcopy(like)
    raw.update(namespace=f"test_{name}", **overrides)
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({name: raw}))
    return path


def partitions(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        return len(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def topic_settings(settings: Settings, topic: str) -> tuple[int, dict[str, Any]]:
    """(replicas of partition 0, the topic's min.insync.replicas entry) as Kafka describes them."""
    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        described = client.describe_topics([topic])[0]
        configs = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                          configs=["min.insync.replicas"])])
    finally:
        client.close()
    return len(described["partitions"][0]["replica_nodes"]), configs["topic"][topic]["min.insync.replicas"]


def test_dry_run_changes_nothing_and_apply_grows_partitions(settings: Settings, redis_client: redis.Redis,
                                                            cassandra_session: Session, name: str,
                                                            tmp_path: Path) -> None:
    first = tenant_file(tmp_path, name, BATCH, partitions=2)
    dry = cli(settings, "tenants", "apply", str(first), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["applied"] is False and plan["problems"] == []
    assert plan["tenants"][name]["settings"] == ["new tenant"]
    assert f"create keyspace test_{name} ({settings.replication})" in plan["tenants"][name]["cassandra"]
    assert f"create topic {name}.ingest (2 partitions)" in plan["tenants"][name]["kafka"]
    # nothing was changed
    assert Registry(redis_client).get(name) is None
    assert not provisioning.keyspace_exists(cassandra_session, f"test_{name}")
    assert partitions(settings, f"{name}.ingest") == 0

    done = cli(settings, "tenants", "apply", str(first))
    assert done.returncode == 0, done.stderr
    assert provisioning.keyspace_exists(cassandra_session, f"test_{name}")
    assert partitions(settings, f"{name}.ingest") == 2
    replicas, min_insync = topic_settings(settings, f"{name}.ingest")
    assert replicas == settings.topic_replication
    assert (min_insync["value"], min_insync["config_source"]) == (str(settings.topic_min_insync),
                                                                   "DYNAMIC_TOPIC_CONFIG")  # set by apply

    more = tenant_file(tmp_path, name, BATCH, partitions=4)
    dry = cli(settings, "tenants", "apply", str(more), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "registry: partitions: 2 -> 4" in dry.stdout
    assert f"kafka: topic {name}.ingest: 2 -> 4 partitions" in dry.stdout
    assert partitions(settings, f"{name}.ingest") == 2
    done = cli(settings, "tenants", "apply", str(more))
    assert done.returncode == 0, done.stderr
    assert partitions(settings, f"{name}.ingest") == 4

    fewer = tenant_file(tmp_path, name, BATCH, partitions=3)
    refused = cli(settings, "tenants", "apply", str(fewer))
    assert refused.returncode == 1 and "cannot take partitions away" in refused.stderr, refused.stderr
    applied = Registry(redis_client).get(name)
    assert applied is not None and applied.partitions == 4


def test_stream_file_after_batch_file_keeps_both_paths(settings: Settings, redis_client: redis.Redis,
                                                       name: str, tmp_path: Path) -> None:
    assert cli(settings, "tenants", "apply", str(tenant_file(tmp_path, name, BATCH))).returncode == 0
    done = cli(settings, "tenants", "apply", str(tenant_file(tmp_path, name, STREAM)))
    assert done.returncode == 0, done.stderr
    assert "kept its applied batch settings" in done.stdout
    applied = Registry(redis_client).get(name)
    assert applied is not None and applied.batch is not None and applied.stream is not None
    assert applied.stream.max_messages_per_day == STREAM["max_messages_per_day"]
    # --replace takes the file as it is: stream only
    done = cli(settings, "tenants", "apply", "--replace", str(tenant_file(tmp_path, name, STREAM)))
    assert done.returncode == 0, done.stderr
    applied = Registry(redis_client).get(name)
    assert applied is not None and applied.batch is None and applied.stream is not None


def test_kafka_away_refuses_before_anything_is_created(settings: Settings, redis_client: redis.Redis,
                                                        cassandra_session: Session, name: str,
                                                        tmp_path: Path) -> None:
    host = settings.kafka_bootstrap[0][0]
    away = cli(settings, "tenants", "apply", str(tenant_file(tmp_path, name, STREAM)),
               env={"MYSIMBDP_KAFKA_BOOTSTRAP": f"{host}:1"})  # nothing listens on port 1
    assert away.returncode == 1
    assert "cannot reach Kafka" in away.stderr and "nothing was changed" in away.stderr
    assert "Traceback" not in away.stderr
    assert Registry(redis_client).get(name) is None
    assert Registry(redis_client).namespace_owner(f"test_{name}") is None
    assert not provisioning.keyspace_exists(cassandra_session, f"test_{name}")


def test_an_ndjson_file_lands_for_a_tenant_that_takes_jsonl(make_tenant: Any, settings: Settings,
                                                            cassandra_session: Session, tmp_path: Path) -> None:
    from kit import running_platform, table_rows

    tenant = make_tenant(like="tenant1", file_type=".jsonl")
    src = tmp_path / "votes.ndjson"
    src.write_text("".join(json.dumps({"created_utc": 1430458939 + i, "ups": i, "subreddit": "s", "id": f"id{i}",
                                       "author": "a", "score": i}) + "\n" for i in range(50)))
    with running_platform(settings, tenant, tmp_path / "h") as p:
        _, receipt = p.final(p.stage(src, f"{tenant.name}-votes.ndjson"))
    assert receipt["status"] == "done" and receipt["rows_ok"] == 50
    assert len(table_rows(cassandra_session, tenant)) == 50


def test_an_applied_configuration_that_no_longer_validates_stops_only_its_own_tenant(
        make_tenant: Any, settings: Settings, redis_client: redis.Redis, cassandra_session: Session,
        tmp_path: Path) -> None:
    """A configuration applied before a rule was tightened (here: a pool of 10,000 workers) is left
    out of the registry with its reason; the other tenants' files still land, and the operator can
    still list it and take it out."""
    from kit import running_platform, table_rows

    from mysimbdp_tasks.core import names

    tenant = make_tenant(like="tenant1", file_type=".jsonl")
    stale = "t" + uuid.uuid4().hex[:10]
    raw = {**copy.deepcopy(STREAM), "namespace": f"test_{stale}", "max_workers": 10_000}
    redis_client.hset(names.TENANTS, stale, json.dumps({stale: raw}))
    redis_client.sadd(names.TENANTS_ACTIVE, stale)
    try:
        registry = Registry(redis_client)
        assert tenant.name in registry.all() and stale not in registry.all()
        assert "max_workers" in registry.unreadable()[stale]

        src = tmp_path / "votes.jsonl"
        src.write_text("".join(json.dumps({"created_utc": 1430458939 + i, "ups": i, "subreddit": "s",
                                           "id": f"id{i}", "author": "a", "score": i}) + "\n" for i in range(50)))
        with running_platform(settings, tenant, tmp_path / "h") as p:
            _, receipt = p.final(p.stage(src, f"{tenant.name}-votes.jsonl"))
        assert receipt["status"] == "done" and receipt["rows_ok"] == 50
        assert len(table_rows(cassandra_session, tenant)) == 50

        listed = cli(settings, "tenants", "list")
        assert listed.returncode == 0, listed.stderr
        assert any(line.startswith(stale) and "no longer validates" in line and "max_workers" in line
                   for line in listed.stdout.splitlines()), listed.stdout
        dropped = cli(settings, "tenants", "remove", stale, "--drop-data")
        assert dropped.returncode != 0 and "data kept" in dropped.stderr and "Traceback" not in dropped.stderr
        assert not registry.is_active(stale)
        removed = cli(settings, "tenants", "remove", stale)
        assert removed.returncode == 0 and "deactivated" in removed.stdout, removed.stderr
    finally:
        redis_client.hdel(names.TENANTS, stale)
        redis_client.srem(names.TENANTS_ACTIVE, stale)
