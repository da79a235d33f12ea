"""A tenant's replication on the 3-node cluster: `tenants apply` creates its keyspace and topics
with the copies it asks for, and applies a change of them (RF 1 → 3, min.insync.replicas 1 → 2)."""

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
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kit import ROOT

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import provisioning
from mysimbdp_tasks.services.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(600)]

BATCH = json.loads((ROOT / "tenants" / "tenants.json").read_text())["tenant1"]


def cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYSIMBDP_HOME": str(settings.home)}
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=240)


@pytest.fixture
def name(stack: Settings, redis_client: redis.Redis, cassandra_session: Session) -> Iterator[str]:
    if len(local_stack.node_names(stack)) != 7:
        pytest.skip("needs the 3-node local cluster: `mysimbdp stack up --nodes 3`")
    made = "t" + uuid.uuid4().hex[:10]
    yield made
    if Registry(redis_client).get(made) is not None:
        cli(stack, "tenants", "remove", made, "--drop-data")


def tenant_file(tmp_path: Path, name: str, section: dict[str, Any]) -> Path:
    raw = copy.deepcopy(BATCH)
    raw.update(namespace=f"test_{name}", replication=section)
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({name: raw}))
    return path


def topic_copies(settings: Settings, topic: str) -> tuple[int, str]:
    client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        described = client.describe_topics([topic])[0]
        configs = client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                          configs=["min.insync.replicas"])])
    finally:
        client.close()
    return len(described["partitions"][0]["replica_nodes"]), configs["topic"][topic]["min.insync.replicas"]["value"]


def test_apply_creates_the_tenants_copies_and_applies_a_change_of_them(
        stack: Settings, cassandra_session: Session, name: str, tmp_path: Path) -> None:
    one = tenant_file(tmp_path, name, {"keyspace": "SimpleStrategy:1", "replication_factor": 3,
                                       "min_insync_replicas": 1})
    done = cli(stack, "tenants", "apply", str(one))
    assert done.returncode == 0, done.stderr
    assert provisioning.keyspace_factors(cassandra_session, f"test_{name}") == {"": 1}
    assert topic_copies(stack, f"{name}.ingest") == (3, "1")

    three = tenant_file(tmp_path, name, {"keyspace": "SimpleStrategy:3", "write_consistency": "LOCAL_QUORUM",
                                         "replication_factor": 3, "min_insync_replicas": 2})
    dry = cli(stack, "tenants", "apply", str(three), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)["tenants"][name]
    assert f"alter keyspace test_{name} replication to SimpleStrategy:3" in plan["cassandra"]
    assert f"topic {name}.ingest: min.insync.replicas 2" in plan["kafka"]
    assert provisioning.keyspace_factors(cassandra_session, f"test_{name}") == {"": 1}  # a dry run changes nothing

    done = cli(stack, "tenants", "apply", str(three))
    assert done.returncode == 0, done.stderr
    assert "nodetool repair -full" in done.stdout + done.stderr  # the existing rows need a repair
    assert provisioning.keyspace_factors(cassandra_session, f"test_{name}") == {"": 3}
    assert topic_copies(stack, f"{name}.ingest") == (3, "2")
