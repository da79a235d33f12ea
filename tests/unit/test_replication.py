"""A tenant's replication section: parsed with errors naming the tenant and the field, defaults from
the platform's settings, nothing unchecked on its way to CQL; and the cluster's node layout."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core import replication, tenants
from mysimbdp_tasks.core.errors import ConfigError, SettingsError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services.cassandra import replication_map
from mysimbdp_tasks.stack import nodes
from mysimbdp_tasks.stack.cassandra import Cassandra
from mysimbdp_tasks.stack.kafka import Kafka

pytestmark = pytest.mark.unit

SHIPPED = json.loads((Path(__file__).resolve().parents[2] / "tenants" / "tenants.json").read_text())


def tenant(section: Any) -> Tenant:
    raw = copy.deepcopy(SHIPPED["tenant1"])
    raw["replication"] = section
    return tenants.parse({"acme": raw})["acme"]


def refusal(section: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        tenant(section)
    return str(caught.value)


def test_a_tenant_gets_its_keyspace_strategy_consistency_and_topic_copies() -> None:
    got = tenant({"keyspace": "NetworkTopologyStrategy:dc1=3,dc2=2", "write_consistency": "local_quorum",
                  "replication_factor": 3, "min_insync_replicas": 2}).replication
    assert got == replication.Replication("NetworkTopologyStrategy:dc1=3,dc2=2", "LOCAL_QUORUM", 3, 2)
    assert replication_map(got.keyspace_spec("SimpleStrategy:1")) == \
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
    assert replication.factors("NetworkTopologyStrategy:dc1=3,dc2=2") == {"dc1": 3, "dc2": 2}


def test_without_the_section_the_platform_settings_apply() -> None:
    got = tenants.parse({"acme": copy.deepcopy(SHIPPED["tenant1"])})["acme"].replication
    assert got.keyspace_spec("SimpleStrategy:1") == "SimpleStrategy:1"
    assert got.write_consistency == "LOCAL_QUORUM"
    assert (got.topic_replicas(3), got.topic_min_insync(2)) == (3, 2)
    assert tenant({"replication_factor": 1}).replication.topic_min_insync(2) == 1  # never above the replicas


@pytest.mark.parametrize(("section", "says"), [
    ({"keyspace": "SimpleStrategy:3'; DROP KEYSPACE x; --"}, "acme.replication.keyspace"),
    ({"keyspace": "NetworkTopologyStrategy:dc'1=3"}, "acme.replication.keyspace"),
    ({"keyspace": "SimpleStrategy:0"}, "RF 1 to 32"),
    ({"write_consistency": "SERIAL"}, "acme.replication.write_consistency: expected one of"),
    ({"keyspace": "SimpleStrategy:1", "write_consistency": "THREE"}, "THREE needs 3 replicas"),
    ({"replication_factor": 2, "min_insync_replicas": 3}, "no write could be acknowledged"),
    ({"replication_factor": "3"}, "acme.replication.replication_factor: expected a whole number"),
    ({"replicas": 3}, "acme.replication.replicas: unknown setting"),
    ("SimpleStrategy:3", "acme.replication: expected an object"),
])
def test_a_bad_section_is_refused_naming_the_tenant_and_the_field(section: Any, says: str) -> None:
    assert says in refusal(section)


def test_a_clusters_nodes_take_the_next_addresses_and_split_the_ring() -> None:
    settings = Settings.from_env({"MYSIMBDP_HOME": "/tmp/x", "MYSIMBDP_CASSANDRA_HOSTS": "127.0.1.1:9042",
                                  "MYSIMBDP_KAFKA_BOOTSTRAP": "127.0.1.1:9092"})
    third = Cassandra(settings, node=3, nodes=3)
    assert (third.name, third.endpoint, third.paths.jars.name) == ("cassandra3", "127.0.1.3:9042", "cassandra")
    assert 'seeds: "127.0.1.1:7000"' in third.cassandra_yaml() and "auto_bootstrap: false" in third.cassandra_yaml()
    tokens = sorted(nodes.cassandra_token(i, 3) for i in (1, 2, 3))
    assert tokens[0] >= -2**63 and tokens[-1] < 2**63 and len(set(tokens)) == 3
    assert nodes.cassandra_token(1, 1) == 0  # the single node keeps its token
    props = Kafka(settings, node=2, nodes=3).server_properties()
    assert "node.id=2\n" in props and "listeners=PLAINTEXT://127.0.1.2:9092," in props
    assert "controller.quorum.voters=1@127.0.1.1:9093,2@127.0.1.2:9093,3@127.0.1.3:9093\n" in props
    assert "offsets.topic.replication.factor=3\n" in props
    assert nodes.parse("kafka3") == ("kafka", 3) and nodes.parse("redis") == ("redis", 1)
    assert nodes.parse("redis2") == ("redis2", 1)  # only Kafka and Cassandra have nodes


def test_the_local_data_centre_setting_is_a_checked_name() -> None:
    assert Settings.from_env({"MYSIMBDP_CASSANDRA_LOCAL_DC": "dc-1"}).cassandra_local_dc == "dc-1"
    assert Settings.from_env({}).cassandra_local_dc == ""
    with pytest.raises(SettingsError, match="MYSIMBDP_CASSANDRA_LOCAL_DC"):
        Settings.from_env({"MYSIMBDP_CASSANDRA_LOCAL_DC": "dc'; DROP"})
