"""Cassandra 5.0 as a single node or as one node of a local ring, sized for a 2-core development box."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any, ClassVar
from xml.sax.saxutils import escape

import psutil

from ..core import procs
from ..core.settings import Settings
from ..security import cassandra_tls, tls
from . import jars, ring_auth
from . import nodes as nodes_mod
from .java import find_java
from .service import Echo, Service, java_command, loopback_host
from .tuning import DEFAULTS, Tuning

MAIN = "org.apache.cassandra.service.CassandraDaemon"
# Inter-node (gossip/streaming) port, bound on the node's own loopback address.
STORAGE_PORT = 7000

# From Cassandra's conf/jvm17-server.options (cassandra-5.0 branch): the JDK internals Cassandra,
# Netty, jamm and Chronicle reach into. Without them the daemon fails with IllegalAccessError.
JPMS_OPTIONS = [
    "-Djdk.attach.allowAttachSelf=true",
    *(f"--add-exports={m}=ALL-UNNAMED" for m in (
        "java.base/jdk.internal.misc",
        "java.management.rmi/com.sun.jmx.remote.internal.rmi",
        "java.rmi/sun.rmi.registry",
        "java.rmi/sun.rmi.server",
        "java.sql/java.sql",
        "java.base/java.lang.ref",
        "jdk.unsupported/sun.misc",
        "jdk.compiler/com.sun.tools.javac.file",
        "jdk.attach/sun.tools.attach",
    )),
    *(f"--add-opens={m}=ALL-UNNAMED" for m in (
        "java.base/java.lang.module",
        "java.base/jdk.internal.loader",
        "java.base/jdk.internal.ref",
        "java.base/jdk.internal.reflect",
        "java.base/jdk.internal.math",
        "java.base/jdk.internal.module",
        "java.base/jdk.internal.util.jar",
        "jdk.management/com.sun.management.internal",
        "java.base/sun.nio.ch",
        "java.base/java.io",
        "java.base/java.lang.reflect",
        "jdk.compiler/com.sun.tools.javac",
        "java.base/java.lang",
        "java.base/java.util",
        "java.base/java.nio",
    )),
]
JVM_SAFETY_OPTIONS = [
    # No hsperfdata mmap: it can stall the JVM on slow disks.
    "-XX:+PerfDisableSharedMem",
    # Cassandra's start-up check warns that running on after an OutOfMemoryError risks corrupt data.
    "-XX:+ExitOnOutOfMemoryError",
]
NETTY_OPTIONS = [
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]
# A lone seed node has nobody to gossip with: skip the waits meant for joining a ring.
FAST_START_OPTIONS = [
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=1000",
    "-Dcassandra.superuser_setup_delay_ms=0",
]


# A cluster's nodes share the machine: 3 nodes of 1 GiB heap each would crowd out everything else.
CLUSTER_HEAP = "768M"


class Cassandra(Service):
    name = "cassandra"
    kind: ClassVar[str] = "cassandra"
    # The first start creates every system keyspace; on a busy 2-core box that takes a while.
    ready_timeout: ClassVar[float] = 240.0
    stop_timeout: ClassVar[float] = 60.0
    java: str  # set by prepare()

    def __init__(self, settings: Settings, tuning: Tuning = DEFAULTS, node: int = 1, nodes: int = 1) -> None:
        self.name = nodes_mod.node_name(self.kind, node)
        self.node, self.nodes = node, nodes
        super().__init__(settings)
        self.tuning = tuning

    @property
    def seed(self) -> str:
        """Node 1's address: the ring's one seed."""
        return loopback_host(self.settings.cassandra_hosts[0][0])

    @property
    def host(self) -> str:
        return nodes_mod.node_host(self.settings.cassandra_hosts[0][0], self.node)

    @property
    def port(self) -> int:
        return self.settings.cassandra_port

    def ports(self) -> dict[str, int]:
        return {"native": self.port, "storage": STORAGE_PORT}

    def port_advice(self, role: str) -> str:
        if role == "storage":
            return (f" (the storage port {STORAGE_PORT} is the same for every node: run another node on another"
                    " loopback address, e.g. MYSIMBDP_CASSANDRA_HOSTS=127.0.0.2:9042)")
        return ", or give MYSIMBDP_CASSANDRA_HOSTS another port"

    def owns(self, proc: psutil.Process) -> bool:
        text = procs.cmdline(proc)
        return MAIN in text.split() and str(self.paths.conf / "cassandra.yaml") in text

    # Configuration ------------------------------------------------------------------------------

    def cassandra_yaml(self) -> str:
        data = self.paths.data

        def q(value: object) -> str:
            # JSON strings are valid YAML scalars and quote any path safely.
            return json.dumps(str(value))

        return f"""\
# Written by `mysimbdp stack up` on every start; change mysimbdp_tasks/stack/cassandra.py instead.
cluster_name: mysimbdp
num_tokens: 1
initial_token: {nodes_mod.cassandra_token(self.node, self.nodes)}
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{self.seed}:{STORAGE_PORT}"
listen_address: {self.bind_host}
rpc_address: {self.bind_host}
storage_port: {STORAGE_PORT}
native_transport_port: {self.port}
start_native_transport: true

data_file_directories:
  - {q(data / "data")}
commitlog_directory: {q(data / "commitlog")}
saved_caches_directory: {q(data / "saved_caches")}
hints_directory: {q(data / "hints")}
cdc_raw_directory: {q(data / "cdc_raw")}

{self._ring_yaml()}
# Development data: no snapshot on TRUNCATE/DROP, no snapshot before compaction.
auto_snapshot: false
snapshot_before_compaction: false
disk_failure_policy: stop
commit_failure_policy: stop

# Reads and caches, sized for 2 cores and a 1 GiB heap.
concurrent_reads: 8
concurrent_counter_writes: 4
concurrent_materialized_view_writes: 4
key_cache_size: 16MiB
counter_cache_size: 8MiB
file_cache_size: 128MiB

# A loaded 2-core box (ingest workers, Kafka and Cassandra at once) answers slowly at times; the
# defaults (2 s writes, 5 s reads) turn those moments into client errors and retries.
read_request_timeout: 10000ms
range_request_timeout: 20000ms
write_request_timeout: 5000ms
counter_write_request_timeout: 10000ms
cas_contention_timeout: 5000ms
truncate_request_timeout: 60000ms
request_timeout: 20000ms

# The ingestion sink sends unlogged batches of up to 48 KiB grouped by replica (one node here, so
# across partitions); the defaults (warn at 5 KiB and at 10 partitions) would log every batch.
batch_size_warn_threshold: 64KiB
batch_size_fail_threshold: 640KiB
unlogged_batch_across_partitions_warn_threshold: 1000

# Ingest settings ({self.tuning.name}): see mysimbdp_tasks/stack/tuning.py for the measurements.
{self.tuning.yaml_text()}{self._encryption()}""" + (self.auth_yaml() if self.settings.secure else "")

    def _ring_yaml(self) -> str:
        if self.nodes == 1:
            return ""
        # A new ring: every node owns its token range from the start (as ccm's fresh clusters), so
        # the nodes join without streaming and may start together once the seed is up.
        return f"# Node {self.node} of a {self.nodes}-node ring.\nauto_bootstrap: false\n"

    def _encryption(self) -> str:
        if not self.settings.secure:
            return ""
        # TLS on the native port; on a ring, between the nodes too (security/cassandra_tls.py).
        return cassandra_tls.encryption_yaml(self.settings.home, internode=self.nodes > 1)

    def auth_yaml(self) -> str:
        """Secure mode: every client logs in with a role, and roles are granted per keyspace."""
        from ..security.cassandra_roles import AUTH_OPTIONS

        return "\n# Secure mode (`mysimbdp stack up --secure`).\n" + "".join(
            f"{option}: {value}\n" for option, value in AUTH_OPTIONS.items())

    def logback_xml(self) -> str:
        return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by `mysimbdp stack up` on every start: INFO to one file (Cassandra's own default is a
     noisy DEBUG log plus a rolling system log). -->
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>{escape(str(self.paths.log))}</file>
    <append>true</append>
    <encoder>
      <pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="FILE"/>
  </root>
</configuration>
"""

    def jvm_options(self) -> list[str]:
        """The daemon's JVM options; where a system property appears twice, the later one wins."""
        conf = self.paths.conf
        return [
            *self._heap_options(),
            "-Xss256k",
            f"-XX:ErrorFile={self.paths.log.parent / 'cassandra-hs_err-%p.log'}",
            *self.tuning.gc_options(),
            *JVM_SAFETY_OPTIONS,
            *JPMS_OPTIONS,
            *NETTY_OPTIONS,
            # As Cassandra's own launcher does: jamm measures object sizes for memtable accounting.
            f"-javaagent:{jars.find_jar(self.paths.jars, 'jamm')}",
            "-Djava.net.preferIPv4Stack=true",
            "-Djava.awt.headless=true",
            # JNA and Netty unpack native libraries here: it must be writable and executable,
            # which a shared /tmp mounted noexec is not.
            f"-Djava.io.tmpdir={self.paths.tmp}",
            f"-Djna.tmpdir={self.paths.tmp}",
            # Cassandra reads this property as a URL, not a path.
            f"-Dcassandra.config={(conf / 'cassandra.yaml').as_uri()}",
            "-Dcassandra-foreground=yes",
            f"-Dcassandra.storagedir={self.paths.data}",
            f"-Dcassandra.logdir={self.paths.log.parent}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            # Cassandra polls this folder for trigger jars and warns every minute when it is missing.
            f"-Dcassandra.triggers_dir={conf / 'triggers'}",
            # Chronicle (audit and query logs) otherwise reports usage to a remote server.
            "-Dchronicle.analytics.disable=true",
            *FAST_START_OPTIONS,
            # A secure ring: system_auth's replicas, set-up and gossip waits (later -D options win).
            *(ring_auth.jvm_options(self.nodes) if self.settings.secure and self.nodes > 1 else []),
        ]

    def _heap_options(self) -> list[str]:
        if self.nodes > 1 and self.tuning.heap is None:
            return [f"-Xms{CLUSTER_HEAP}", f"-Xmx{CLUSTER_HEAP}"]
        return self.tuning.heap_options()

    def prepare(self, echo: Echo) -> None:
        self.java = find_java(
            self.name, lambda major: major in (11, 17), "Java 11 or 17 (Cassandra 5.0 does not run on 21+)"
        )
        self.paths.make()
        (self.paths.conf / "triggers").mkdir(exist_ok=True)
        jars.ensure_jars(self.kind, self.paths.jars, echo)
        # Mode 0600: in secure mode it holds the keystore's password.
        procs.write_private(self.paths.conf / "cassandra.yaml", self.cassandra_yaml())
        (self.paths.conf / "logback.xml").write_text(self.logback_xml())

    # Lifecycle ------------------------------------------------------------------------------------

    def launch(self) -> int:
        cmd = java_command(self.java, self.jvm_options(), self.paths.jars, MAIN)
        setpriv = shutil.which("setpriv")
        if os.geteuid() == 0 and setpriv:
            # Cassandra always calls mlockall(); as root (CAP_IPC_LOCK) that succeeds and pins the
            # whole 1 GiB heap in RAM and makes the start about twice as slow. Without the
            # capability it fails harmlessly with one warning, as for any other user.
            cmd = [setpriv, "--bounding-set", "-ipc_lock", *cmd]
        return procs.spawn(cmd, self.paths.log, self.paths.pidfile)

    def probe(self, timeout: float) -> str:
        # The driver is imported late: it is slow to import and `mysimbdp --help` needs none of it.
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import WhiteListRoundRobinPolicy

        # The native port opens last in Cassandra's start-up; until then the driver would only
        # log connection errors.
        if not procs.can_connect(self.host, self.port, timeout):
            raise ConnectionRefusedError(f"nothing listens on {self.endpoint} yet")
        # This node answers, not another one of the ring the driver discovers.
        only_this = WhiteListRoundRobinPolicy([self.host])
        profile = ExecutionProfile(load_balancing_policy=only_this, request_timeout=timeout)

        def connect(auth: object = None) -> tuple[Cluster, Any]:
            # Secure mode: TLS verifying the local CA and the node's name, then a role's login.
            cluster = Cluster(
                contact_points=[self.host], port=self.port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                connect_timeout=timeout, control_connection_timeout=timeout, auth_provider=auth,
                ssl_context=tls.ssl_context(self.settings),
            )
            try:
                return cluster, cluster.connect()
            except BaseException:
                cluster.shutdown()
                raise

        with procs.quiet_client_logs("cassandra"):
            if not self.settings.secure:
                cluster, session = connect()
            elif self.nodes == 1:
                cluster, session = self._login(connect)
            elif (logged_in := ring_auth.login(connect, self.settings, self.node)) is not None:
                cluster, session = logged_in
            else:
                return "Cassandra answers over TLS (logins wait for the ring's other nodes)"
            try:
                row = session.execute("SELECT release_version FROM system.local").one()
                peers = len(list(session.execute("SELECT peer FROM system.peers_v2"))) if self.nodes > 1 else 0
            finally:
                cluster.shutdown()
        if self.node > 1 and peers == 0:
            # Joined: it knows the seed (the seed itself starts first, alone).
            raise ConnectionRefusedError(f"{self.name} has not joined the ring yet")
        ring = f", ring of {peers + 1}" if self.nodes > 1 else ""
        return f"Cassandra {row.release_version}{ring}" + (" (authentication on)" if self.settings.secure else "")

    def _login(self, connect: Callable[..., tuple[Any, Any]]) -> tuple[Any, Any]:
        """Log in as ``platform_admin``; on the first secure start, create it as the default superuser
        (cassandra/cassandra) and retire that one."""
        from cassandra.cluster import NoHostAvailable

        from ..security import cassandra_roles as roles
        from ..security.identities import ADMIN, DEFAULT_CASSANDRA_ROLE, account, credentials

        user, password = credentials(self.settings, ADMIN) or ("", "")
        try:
            return connect(roles.auth_provider(user, password))
        except NoHostAvailable as exc:
            if not ring_auth.auth_refused(exc):
                raise
        # Not created yet: only the default superuser exists (it appears shortly after the native
        # port opens; until then this fails too and the probe is simply tried again).
        cluster, session = connect(roles.auth_provider(DEFAULT_CASSANDRA_ROLE, DEFAULT_CASSANDRA_ROLE))
        try:
            roles.bootstrap(session, self.settings.home)
        finally:
            cluster.shutdown()
        cluster, session = connect(roles.auth_provider(account(ADMIN), password))
        roles.retire_default(session)
        return cluster, session
