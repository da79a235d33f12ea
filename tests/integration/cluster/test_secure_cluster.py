"""The secure 3-node cluster (`mysimbdp stack up --secure --nodes 3`): TLS between the nodes too.

Every Cassandra node and Kafka broker refuses a plaintext client; the ports the nodes use among
themselves (Cassandra's storage port, Kafka's controller and inter-broker listeners) speak only
mutual TLS: a plaintext peer speaking the service's own first message gets no answer, a TLS client
trusting the local CA completes the handshake with the stack's certificate (which names that
node's address) and is refused without one. `tenants apply` works on the ring, and with one
Cassandra node and one broker stopped a tenant's file and messages land, through its own logins.

Run in CI's secure cluster stage (compose/run-tests.sh), on a secure cluster of its own home.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import os
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import SimpleStatement
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError
from kit import DATA, ROOT, SHIPPED, Platform, joining_env
from streamkit import encoded, messages

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.security import ca, tls
from mysimbdp_tasks.security.identities import account, tenant_principal
from mysimbdp_tasks.stack import nodes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.cluster, pytest.mark.secure,
              pytest.mark.timeout(900)]

log = logging.getLogger(__name__)
NODES = 3
STORAGE_PORT = 7000  # Cassandra's port between nodes
STOPPED = ["cassandra3", "kafka3"]


@pytest.fixture(scope="module")
def ring(stack: Settings) -> Settings:
    if not stack.secure or len(local_stack.node_names(stack)) != 1 + 2 * NODES:
        pytest.skip(f"needs the secure {NODES}-node local cluster: `mysimbdp stack up --secure --nodes {NODES}`")
    return stack


def _addresses(first: str) -> list[str]:
    return [nodes.node_host(first, n) for n in range(1, NODES + 1)]


# What a plaintext peer would send first: Kafka's ApiVersions request (v0, correlation id 1), and
# Cassandra's internode handshake (net/HandshakeProtocol.Initiate of 4.0+: magic, flags with the
# messaging versions 12-13, the sender's address, a CRC32 seeded with the magic's bytes).
KAFKA_HELLO = struct.pack(">ihhih", 10, 18, 0, 1, -1)


def _cassandra_hello(host: str) -> bytes:
    flags = 2 | (1 << 2) | (12 << 8) | (12 << 16) | (13 << 24)  # small messages, CRC framing
    body = struct.pack(">Ii", 0xCA552DFA, flags) + bytes([6]) + socket.inet_aton(host) + struct.pack(">H", STORAGE_PORT)
    return body + struct.pack(">I", zlib.crc32(b"\xfa\x2d\x55\xca" + body))


def _plaintext_refused(host: str, port: int, hello: bytes) -> bool:
    """The server closes a connection whose first message is plaintext without answering it (at most
    a TLS alert). A plaintext server answers and keeps the connection open: Cassandra with its
    handshake's Accept, Kafka with its ApiVersions (checked against the plain cluster)."""
    got = b""
    with socket.create_connection((host, port), timeout=20) as raw:
        raw.sendall(hello)
        try:
            while chunk := raw.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            log.info("%s:%s kept a plaintext connection open after %r", host, port, got[:16])
            return False
    return got == b"" or got[0] == 0x15  # nothing, or a TLS alert record


def _handshake(files: ca.TlsFiles, host: str, port: int) -> set[str]:
    """A mutual-TLS handshake trusting only the local CA, checking the node's address; the names of
    the certificate the node presented."""
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    context.load_cert_chain(files.server_cert, files.server_key)
    with socket.create_connection((host, port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=host) as conn:
        peer = conn.getpeercert() or {}
    names = cast("tuple[tuple[str, str], ...]", peer.get("subjectAltName", ()))
    return {value for _, value in names}


def _refused_without_a_certificate(files: ca.TlsFiles, host: str, port: int) -> bool:
    context = ssl.create_default_context(cafile=str(files.ca_cert))
    try:
        with socket.create_connection((host, port), timeout=30) as raw, \
                context.wrap_socket(raw, server_hostname=host) as conn:
            # TLS 1.3: the client's half of the handshake ends before the server has checked its
            # certificate; the refusal (an alert, or the end of the connection) comes next.
            return conn.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True


def test_every_node_refuses_plaintext_and_speaks_only_mutual_tls_to_its_peers(ring: Settings) -> None:
    files = ca.TlsFiles(ring.home)
    kafka_port = ring.kafka_bootstrap[0][1]
    for host in _addresses(ring.cassandra_hosts[0][0]):
        client = Cluster([host], port=ring.cassandra_port, connect_timeout=5, control_connection_timeout=5)
        try:
            with pytest.raises(NoHostAvailable):
                client.connect()
        finally:
            client.shutdown()
        assert _plaintext_refused(host, STORAGE_PORT, _cassandra_hello(host))
        assert host in _handshake(files, host, STORAGE_PORT)
        assert _refused_without_a_certificate(files, host, STORAGE_PORT)
    for host in _addresses(ring.kafka_bootstrap[0][0]):
        with pytest.raises(KafkaError):
            KafkaAdminClient(bootstrap_servers=f"{host}:{kafka_port}", bootstrap_timeout_ms=5000,
                             request_timeout_ms=5000).close()
        for port in (kafka_port + 1, kafka_port + 2):  # the controller and inter-broker listeners
            assert _plaintext_refused(host, port, KAFKA_HELLO)
            assert host in _handshake(files, host, port)
            assert _refused_without_a_certificate(files, host, port)


def _cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYSIMBDP_HOME": str(settings.home)}
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *argv], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


@pytest.fixture
def applied(ring: Settings, tmp_path: Path) -> Iterator[Tenant]:
    """A fresh CSV tenant applied with `tenants apply` (RF 3, topics on 3 replicas, 2 in sync); removed
    with its data, role and users at the end (after the stopped nodes are back)."""
    name = "t" + uuid.uuid4().hex[:10]
    raw = copy.deepcopy(SHIPPED["tenant2"])
    raw.pop("quality", None)
    raw.update(namespace=f"test_{name}", replication={"keyspace": f"SimpleStrategy:{NODES}",
                                                      "write_consistency": "LOCAL_QUORUM",
                                                      "replication_factor": NODES, "min_insync_replicas": 2})
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({name: raw}))
    done = _cli(ring, "tenants", "apply", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    yield tenants.parse({name: raw})[name]
    _cli(ring, "tenants", "remove", name, "--drop-data")


def _keys(session: Session, tenant: Tenant) -> set[tuple[str, str, str]]:
    query = SimpleStatement(f'SELECT subreddit, id, author FROM "{tenant.namespace}"."{tenant.table_name}"',
                            consistency_level=ConsistencyLevel.QUORUM, fetch_size=5000)
    return {(r.subreddit, r.id, r.author) for r in session.execute(query, timeout=120)}


def _file_keys(path: Path) -> set[tuple[str, str, str]]:
    with path.open(newline="", encoding="utf-8") as src:
        return {(r["subreddit"], r["id"], r["author"]) for r in csv.DictReader(src)}


def _wait_keys(session: Session, tenant: Tenant, want: set[tuple[str, str, str]], platform: Platform,
               timeout: float = 300) -> set[tuple[str, str, str]]:
    deadline = time.monotonic() + timeout
    found: set[tuple[str, str, str]] = set()
    while time.monotonic() < deadline:
        found = _keys(session, tenant)
        if found >= want:
            return found
        platform.check_alive()
        time.sleep(1)
    raise TimeoutError(f"{len(want - found)} of {len(want)} rows missing after {timeout} s\n{platform.logs()}")


def test_a_tenant_applied_on_the_ring_lands_a_file_and_messages_with_a_node_of_each_kind_stopped(
        ring: Settings, applied: Tenant, cassandra_session: Session, node_back: list[str], tmp_path: Path) -> None:
    roles = {r.role for r in cassandra_session.execute("SELECT role FROM system_auth.roles")}
    assert account(tenant_principal(applied.name)) in roles
    node_back.extend(STOPPED)
    local_stack.down(ring, services=STOPPED, echo=log.info)
    assert {s.name for s in local_stack.status(ring) if s.pid is None} == set(STOPPED)

    home = tmp_path / "home"
    home.mkdir()
    platform = Platform(ring, applied, home, concurrency=1, extra_env=joining_env(ring, home))
    platform.start()
    platform.start_bridge()
    try:
        source = DATA / "1000rows.csv"
        _, receipt = platform.final(platform.stage(source, f"{applied.name}-one.csv"), timeout=400)
        assert receipt["status"] == "done", receipt
        sent = messages("tenant2", applied, [DATA / "1000rows2.csv"])[:300]
        # The tenant's own login (SCRAM over TLS), acks from 2 of the 3 replicas' brokers.
        producer = KafkaProducer(bootstrap_servers=ring.kafka_bootstrap_str, acks="all", enable_idempotence=True,
                                 **tls.kafka_options(ring, f"tenant:{applied.name}"))
        for key, value in encoded(sent):
            producer.send(applied.ingest_topic, key=key, value=value)
        producer.flush(timeout=120)
        producer.close()
        want = _file_keys(source) | {(m["subreddit"], m["id"], m["author"]) for m in sent}
        assert _wait_keys(cassandra_session, applied, want, platform) == want
    finally:
        platform.stop()
    # The stopped nodes rejoin over TLS: `up` returns once each answers again (or raises).
    local_stack.up(ring, services=STOPPED, echo=log.info)
    node_back.clear()
