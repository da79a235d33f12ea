"""A secure local cluster without services: the certificate names every node, Cassandra's nodes
encrypt and authenticate their traffic, Kafka's nodes talk over mutual TLS, system_auth is replicated."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from mysimbdp_tasks.core.settings import Settings, mark_secure
from mysimbdp_tasks.security import ca
from mysimbdp_tasks.stack import lifecycle, nodes, ring_auth
from mysimbdp_tasks.stack.cassandra import Cassandra
from mysimbdp_tasks.stack.kafka import Kafka

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _ring(tmp_path: Path, count: int = 3) -> Settings:
    settings = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_REDIS_URL": "redis://127.0.1.30:6379/0",
                                  "MYSIMBDP_CASSANDRA_HOSTS": "127.0.1.30:9042",
                                  "MYSIMBDP_KAFKA_BOOTSTRAP": "127.0.1.30:9092"})
    nodes.write_count(tmp_path, count)
    secure = mark_secure(settings)
    ca.ensure(tmp_path, lifecycle.stack_hosts(secure))
    return secure


def test_the_certificate_names_every_node_and_the_trust_store_holds_the_ca_alone(tmp_path: Path) -> None:
    settings = _ring(tmp_path)
    files = ca.TlsFiles(tmp_path)
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert {"127.0.1.30", "127.0.1.31", "127.0.1.32"} <= ca.subject_names(cert)
    assert "127.0.1.33" not in ca.subject_names(cert)
    store = pkcs12.load_pkcs12(files.truststore.read_bytes(), files.keystore_password().encode())
    assert store.key is None and store.cert is None
    authority = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    assert [c.certificate for c in store.additional_certs] == [authority]
    before = files.truststore.read_bytes()
    ca.ensure(tmp_path, lifecycle.stack_hosts(settings))
    assert files.truststore.read_bytes() == before  # kept while the CA is the same


def test_one_node_names_its_own_addresses_only(tmp_path: Path) -> None:
    settings = _ring(tmp_path, count=1)
    assert lifecycle.stack_hosts(settings) == ["127.0.1.30"]


def test_cassandra_nodes_of_a_secure_ring_require_mutual_tls_between_them(tmp_path: Path) -> None:
    settings = _ring(tmp_path)
    files = ca.TlsFiles(tmp_path)
    conf = yaml.safe_load(Cassandra(settings, node=2, nodes=3).cassandra_yaml())
    internode = conf["server_encryption_options"]
    assert internode["internode_encryption"] == "all"
    assert (internode["optional"], internode["require_client_auth"], internode["require_endpoint_verification"]) \
        == (False, True, True)
    assert (internode["keystore"], internode["truststore"]) == (str(files.keystore), str(files.truststore))
    assert conf["client_encryption_options"]["optional"] is False
    assert conf["listen_address"] == "127.0.1.31"
    single = yaml.safe_load(Cassandra(settings, node=1, nodes=1).cassandra_yaml())
    assert "server_encryption_options" not in single  # one node: no traffic between nodes


def test_system_auth_is_replicated_from_the_first_start_of_a_secure_ring(tmp_path: Path) -> None:
    settings = _ring(tmp_path)
    node = Cassandra(settings, node=1, nodes=3)
    node.paths.jars.mkdir(parents=True)
    (node.paths.jars / "jamm-0.4.0.jar").touch()  # the agent the options name; nothing is started
    options = node.jvm_options()
    # Later -D options win: the ring's set-up delay replaces the single node's fast start.
    assert options.index("-Dcassandra.superuser_setup_delay_ms=1000") > options.index(
        "-Dcassandra.superuser_setup_delay_ms=0")
    assert "-Dcassandra.system_auth.default_rf=3" in options
    assert ring_auth.auth_replicas(2) == 2 and ring_auth.auth_replicas(5) == 3
    plain = Cassandra(Settings.from_env({"MYSIMBDP_HOME": str(tmp_path), "MYSIMBDP_SECURE": "0"}), node=1, nodes=3)
    assert plain.paths.jars == node.paths.jars
    assert not any(o.startswith("-Dcassandra.system_auth") for o in plain.jvm_options())


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_kafka_nodes_of_a_secure_cluster_vote_and_replicate_over_mutual_tls(tmp_path: Path) -> None:
    settings = _ring(tmp_path)
    props = _properties(Kafka(settings, node=3, nodes=3).server_properties())
    assert props["controller.quorum.voters"] == "1@127.0.1.30:9093,2@127.0.1.31:9093,3@127.0.1.32:9093"
    assert props["listeners"] == ("SASL_SSL://127.0.1.32:9092,CONTROLLER://127.0.1.32:9093,"
                                  "INTERNAL://127.0.1.32:9094")
    assert props["listener.security.protocol.map"] == "CONTROLLER:SSL,INTERNAL:SSL,SASL_SSL:SASL_SSL"
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["listener.name.internal.ssl.client.auth"] == "required"
    assert "ssl.endpoint.identification.algorithm" not in props  # Kafka's default: the peer's name is checked
