"""The 3-node compose file (compose/cluster.yml) is the deployment docs/deploy.md describes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mysimbdp_tasks.cli import build_parser
from mysimbdp_tasks.core.settings import Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "compose" / "cluster.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    # Compose's ${VAR:-default}, as compose reads it with VAR unset.
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", CLUSTER.read_text())
    found: dict[str, Any] = yaml.safe_load(text)["services"]
    return found


def _platform(services: dict[str, Any]) -> dict[str, Any]:
    return {name: s for name, s in services.items() if s.get("build")}


def test_three_cassandra_nodes_form_one_ring(services: dict[str, Any]) -> None:
    nodes = {name: s for name, s in services.items() if name.startswith("cassandra")}
    assert sorted(nodes) == ["cassandra1", "cassandra2", "cassandra3"]
    seeds = {s["environment"]["CASSANDRA_SEEDS"] for s in nodes.values()}
    assert len(seeds) == 1 and set(seeds.pop().split(",")) <= set(nodes)
    assert len({s["ports"][0] for s in nodes.values()}) == 3
    assert len({s["volumes"][0].split(":")[0] for s in nodes.values()}) == 3  # a disk each


def test_three_kafka_nodes_are_the_controller_quorum(services: dict[str, Any]) -> None:
    nodes = {name: s["environment"] for name, s in services.items() if name.startswith("kafka")}
    assert sorted(nodes) == ["kafka1", "kafka2", "kafka3"]
    ids = {env["KAFKA_NODE_ID"] for env in nodes.values()}
    assert ids == {1, 2, 3}
    for name, env in nodes.items():
        voters = dict(v.split("@") for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert {int(k) for k in voters} == ids and {h.split(":")[0] for h in voters.values()} == set(nodes)
        assert f"INTERNAL://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2


def test_platform_processes_run_commands_the_cli_takes_with_valid_settings(services: dict[str, Any]) -> None:
    platform = _platform(services)
    assert len(platform) >= 10
    for name, s in platform.items():
        try:
            build_parser().parse_args(s["command"])
        except SystemExit as exc:
            raise AssertionError(f"service {name}: `mysimbdp {' '.join(s['command'])}` is refused") from exc
        env = {k: str(v) for k, v in s["environment"].items()}
        settings = Settings.from_env(env)  # raises on any bad value
        assert len(settings.cassandra_hosts) == 3 and len(settings.kafka_bootstrap) == 3, name
        assert settings.replication == "NetworkTopologyStrategy:dc1=3" and settings.topic_replication == 3


def test_nodes_share_the_data_folders_and_nothing_else(services: dict[str, Any]) -> None:
    homes: dict[str, set[str]] = {}
    for name, s in _platform(services).items():
        env = s["environment"]
        volumes = dict(v.split(":") for v in s["volumes"])
        assert volumes["shared-data"] == env["MYSIMBDP_DATA_DIR"], name
        home = next(vol for vol, path in volumes.items() if path == env["MYSIMBDP_HOME"])
        homes.setdefault(env["MYSIMBDP_NODE_NAME"], set()).add(home)
    assert sorted(homes) == ["node1", "node2", "node3"]
    assert all(len(h) == 1 for h in homes.values())  # one home per node
    assert len(set().union(*homes.values())) == 3  # and no node's home is another's


def test_both_ingest_nodes_run_a_watcher_a_bridge_and_every_tenants_pool(services: dict[str, Any]) -> None:
    for node in ("node1", "node2"):
        commands = [s["command"] for s in _platform(services).values()
                    if s["environment"]["MYSIMBDP_NODE_NAME"] == node]
        assert ["watch"] in commands and ["bridge"] in commands
        pools = {c[2] for c in commands if c[0] == "worker"}
        assert pools == {"tenant1", "tenant2"}
