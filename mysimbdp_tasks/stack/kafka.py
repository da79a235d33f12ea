"""Kafka 4.x in KRaft: one node, or the nodes of a local cluster, each both broker and controller.

The N nodes of ``stack up --nodes N`` are the N voters of one controller quorum (3 when N is 3),
each on its own address with the same ports, formatted with one cluster id.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import ClassVar

import psutil

from ..core import procs
from ..core.errors import StackError
from ..core.settings import Settings
from ..security import kafka_access, kafka_security, tls
from . import jars
from . import nodes as nodes_mod
from .java import find_java
from .service import Echo, Service, java_command, loopback_host

MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
JVM_OPTIONS = [
    "-Xms256m", "-Xmx512m",
    # Kafka's own launcher defaults (bin/kafka-run-class.sh).
    "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
]


def new_cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage.sh random-uuid`` makes it, without starting a JVM."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # Kafka's own generator skips ids starting with "-": they would read as command-line flags.
        if not text.startswith("-"):
            return text


# A cluster's nodes share the machine with three Cassandra nodes.
CLUSTER_HEAP = "384m"
CLUSTER_ID_FILE = "cluster.id"
LOGIN_WAIT_S = 30.0


class Kafka(Service):
    name = "kafka"
    kind: ClassVar[str] = "kafka"
    ready_timeout: ClassVar[float] = 150.0
    java: str  # set by prepare()

    def __init__(self, settings: Settings, node: int = 1, nodes: int = 1) -> None:
        self.name = nodes_mod.node_name(self.kind, node)
        self.node, self.nodes = node, nodes
        super().__init__(settings)

    @property
    def host(self) -> str:
        return nodes_mod.node_host(self.settings.kafka_bootstrap[0][0], self.node)

    def node_address(self, node: int) -> str:
        return loopback_host(nodes_mod.node_host(self.settings.kafka_bootstrap[0][0], node))

    @property
    def port(self) -> int:
        return self.settings.kafka_bootstrap[0][1]

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def internal_port(self) -> int:
        """Secure mode only: the broker's own TLS listener, where a client must present the stack's
        certificate (the inter-broker traffic, and the stack itself creating the platform's users)."""
        return self.port + 2

    def ports(self) -> dict[str, int]:
        found = {"broker": self.port, "controller": self.controller_port}
        if self.settings.secure:
            found["internal"] = self.internal_port
        return found

    def port_advice(self, role: str) -> str:
        return (", or give MYSIMBDP_KAFKA_BOOTSTRAP another port (the controller takes that port + 1, "
                "and in secure mode the internal listener port + 2)")

    def owns(self, proc: psutil.Process) -> bool:
        text = procs.cmdline(proc)
        return MAIN in text.split() and str(self.paths.conf / "server.properties") in text

    # Configuration ------------------------------------------------------------------------------

    def server_properties(self) -> str:
        voters = ",".join(f"{i}@{self.node_address(i)}:{self.controller_port}" for i in range(1, self.nodes + 1))
        # Internal topics: a replica on each node up to 3, and writes wait for 2 of them.
        replicas, min_isr = str(min(3, self.nodes)), str(min(2, self.nodes))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{self.bind_host}:{self.port},CONTROLLER://{self.bind_host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.bind_host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.paths.data),
            "num.partitions": str(self.settings.kafka_partitions),
            # The platform creates its topics itself; a typo must not create a new one.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            # 50 partitions by default: a long first group join on a 2-core box for no benefit.
            "offsets.topic.num.partitions": "6",
            "group.initial.rebalance.delay.ms": "0",
            # Fewer threads than the defaults, sized for a laptop or a small CI runner.
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }
        if self.settings.secure:
            props.update(kafka_security.server_properties(self.settings.home, self.bind_host, self.port,
                                                          self.controller_port, self.internal_port))
        return "".join(f"{key}={value}\n" for key, value in props.items())

    def log4j2_properties(self) -> str:
        log_file = str(self.paths.log)
        return "\n".join([
            "status = warn",
            "name = mysimbdp-kafka",
            # log4j's own shutdown hook would close the file while the broker's hook still logs its
            # shutdown; the file appender flushes every line, so nothing is lost without it.
            "shutdownHook = disable",
            "appender.file.type = File",
            "appender.file.name = file",
            f"appender.file.fileName = {log_file}",
            "appender.file.append = true",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.file.ref = file",
            # Per-partition state transitions and request traces drown the useful lines.
            "logger.statechange.name = state.change.logger",
            "logger.statechange.level = WARN",
            "logger.request.name = kafka.request.logger",
            "logger.request.level = WARN",
            "logger.requestchannel.name = kafka.network.RequestChannel$",
            "logger.requestchannel.level = WARN",
            "",
        ])

    def _jvm_options(self) -> list[str]:
        heap = [f"-Xms{CLUSTER_HEAP}", f"-Xmx{CLUSTER_HEAP}"] if self.nodes > 1 else []
        return [
            *JVM_OPTIONS,
            *heap,  # the later -Xms/-Xmx win
            f"-Dlog4j2.configurationFile={self.paths.conf / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.paths.log.parent}",
            f"-Djava.io.tmpdir={self.paths.tmp}",
            f"-XX:ErrorFile={self.paths.log.parent / 'kafka-hs_err-%p.log'}",
        ]

    def prepare(self, echo: Echo) -> None:
        # Kafka 4.x brokers need Java 17+; only the LTS releases 17 and 21 are taken, so a JAVA_HOME
        # on a brand-new JDK falls back to one of them.
        self.java = find_java(self.name, lambda major: major in (17, 21), "Java 17 or 21")
        self.paths.make()
        jars.ensure_jars(self.kind, self.paths.jars, echo)
        # Mode 0600: in secure mode it holds the keystore's password.
        procs.write_private(self.paths.conf / "server.properties", self.server_properties())
        (self.paths.conf / "log4j2.properties").write_text(self.log4j2_properties())
        if not (self.paths.data / "meta.properties").is_file():
            self._format(echo)

    def _format(self, echo: Echo) -> None:
        """Format the KRaft log directory once; a formatted one is kept across restarts."""
        cluster_id = self._cluster_id()
        echo(f"kafka: formatting storage in {self.paths.data} (cluster id {cluster_id})")
        cmd = java_command(
            self.java, self._jvm_options(), self.paths.jars, STORAGE_TOOL,
            ["format", "-t", cluster_id, "-c", str(self.paths.conf / "server.properties"), "--ignore-formatted"],
        )
        code = procs.run_logged(cmd, self.paths.log, self.paths.root, timeout=120)
        if code != 0:
            raise StackError(f"kafka: formatting the storage failed (exit {code})")

    def _cluster_id(self) -> str:
        """One id for every node of the home's cluster, kept in node 1's folder."""
        if self.nodes == 1:
            return new_cluster_id()
        path = self.paths.home / self.kind / CLUSTER_ID_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x") as out:  # the nodes prepare concurrently: the first one writes it
                out.write(new_cluster_id())
        except FileExistsError:
            pass
        return path.read_text().strip()

    # Lifecycle ------------------------------------------------------------------------------------

    def launch(self) -> int:
        cmd = java_command(
            self.java, self._jvm_options(), self.paths.jars, MAIN, [str(self.paths.conf / "server.properties")]
        )
        return procs.spawn(cmd, self.paths.log, self.paths.pidfile)

    def probe(self, timeout: float) -> str:
        # Imported late: kafka-python is slow to import and `mysimbdp --help` needs none of it.
        from kafka import KafkaAdminClient

        # Without a listener the client would retry until its bootstrap timeout.
        if not procs.can_connect(self.host, self.port, timeout):
            raise ConnectionRefusedError(f"nothing listens on {self.endpoint} yet")
        millis = int(timeout * 1000)
        secure = self.settings.secure
        endpoint = f"{self.host}:{self.internal_port}" if secure else self.endpoint
        with procs.quiet_client_logs("kafka"):
            admin = KafkaAdminClient(
                bootstrap_servers=endpoint, client_id="mysimbdp-stack",
                request_timeout_ms=millis, bootstrap_timeout_ms=millis,
                **(kafka_security.stack_client_options(self.settings.home) if secure else {}),
            )
            try:
                cluster = admin.describe_cluster()
                brokers = cluster.get("brokers") or []
                # kafka-python names a broker's id "broker_id" (DescribeCluster) or "node_id" (Metadata).
                if not any(b.get("broker_id", b.get("node_id")) == self.node and not b.get("is_fenced")
                           for b in brokers):
                    raise StackError(f"{self.name}: metadata does not list node {self.node} yet")
                topics = admin.list_topics()
            finally:
                admin.close()
        return f"{len(brokers)} broker(s), {len(topics)} topic(s)"

    def after_ready(self, echo: Echo) -> None:
        """Secure mode: the platform's SCRAM users and their ACLs, made through the internal listener."""
        if not self.settings.secure:
            return
        from kafka import KafkaAdminClient

        made = kafka_access.bootstrap(self.settings, f"{self.host}:{self.internal_port}")
        # The clients' listener answers a real login: platform:admin over SASL_SSL (SCRAM, TLS).
        from kafka.errors import KafkaError

        # On a cluster another node may have written the users a moment ago: this broker learns
        # them from the metadata log, so a refused login is tried again for a while.
        deadline = time.monotonic() + LOGIN_WAIT_S
        while True:
            try:
                with procs.quiet_client_logs("kafka"):
                    options = tls.kafka_options(self.settings, "platform:admin")
                    KafkaAdminClient(bootstrap_servers=self.endpoint, client_id="mysimbdp-stack",
                                     request_timeout_ms=30000, **options).close()
                break
            except KafkaError as exc:
                if self.nodes == 1 or time.monotonic() > deadline:
                    raise StackError(f"{self.name}: platform_admin cannot log in over SASL_SSL on {self.endpoint} "
                                     f"({exc}); see {self.paths.log}") from exc
                time.sleep(1)
        echo(f"kafka: SCRAM-SHA-512 users and ACLs of {', '.join(made)} in place; platform_admin logs in "
             f"over SASL_SSL on {self.endpoint}")
