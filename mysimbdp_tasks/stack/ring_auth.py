"""Cassandra's logins on a secure local ring (``stack up --secure --nodes N``).

On one node the stack replaces the default superuser as soon as the node answers
(``Cassandra._login``). A ring cannot do that node by node: roles live in ``system_auth``, and a
role written while only the seed runs would be missing from the nodes that join after it (they
join without streaming, ``auto_bootstrap: false``). So on a ring:

1. every node starts with ``system_auth`` replicated to min(3, N) nodes from the first start
   (``cassandra.system_auth.default_rf``), so Cassandra's own default superuser is written to the
   replicas there are, and read at QUORUM once two of them run;
2. the seed is ready when it answers over TLS and asks for a login (alone it cannot serve one:
   QUORUM needs two replicas); a joining node is ready when a login works and it sees its peers;
3. once every node runs, :func:`secure_ring` gives ``system_auth`` NetworkTopologyStrategy with
   min(3, N) replicas in the ring's data centre (what the README advises for any real cluster),
   creates ``platform_admin`` (written to every replica) and retires the default superuser, as on
   one node. It is idempotent: a later ``stack up`` only checks the replication.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..core import procs, replication
from ..core.errors import StackError
from ..core.settings import Settings
from ..security import tls
from ..security.identities import ADMIN, DEFAULT_CASSANDRA_ROLE, account, credentials
from . import nodes as nodes_mod

MAX_AUTH_REPLICAS = 3
RING_TIMEOUT_S = 180.0
RETRY_S = 2.0


def auth_replicas(nodes: int) -> int:
    return min(MAX_AUTH_REPLICAS, nodes)


def jvm_options(nodes: int) -> list[str]:
    """System properties of every node of a secure ring (see the module's docstring); they come after the
    single node's fast-start options, and a later -D option wins."""
    return [
        f"-Dcassandra.system_auth.default_rf={auth_replicas(nodes)}",
        # Cassandra retries its default-role set-up every superuser_setup_delay_ms while QUORUM
        # cannot be reached; at 0 (the single node's fast start) the seed would spin and log it
        # thousands of times a second until a second node joins.
        "-Dcassandra.superuser_setup_delay_ms=1000",
        # A joining node gives up unless the seed answers its first gossip within the ring delay
        # ("Unable to gossip with any peers"). 1 s does for plaintext; a TLS connection to a seed on
        # a loaded 2-core box took 3 s, so a secure ring waits up to 10 s (the first message is
        # sent again after 5).
        "-Dcassandra.ring_delay_ms=10000",
    ]


def auth_refused(exc: BaseException) -> bool:
    """The driver's NoHostAvailable came from a refused or impossible login (not from a dead node)."""
    text = str(exc)
    return "Authentication" in text or "credentials" in text


Connect = Callable[..., tuple[Any, Any]]


def login(connect: Connect, settings: Settings, node: int) -> tuple[Any, Any] | None:
    """Log in to one node of a ring as ``platform_admin``, else (a new ring) as the default
    superuser; None when the node is the seed of a ring whose logins wait for the other nodes."""
    # Imported late (as every client library of the stack): `mysimbdp --help` needs none of it.
    from cassandra.cluster import NoHostAvailable

    from ..security import cassandra_roles as roles

    user, password = credentials(settings, ADMIN) or ("", "")
    try:
        return connect(roles.auth_provider(user, password))
    except NoHostAvailable as exc:
        if not auth_refused(exc):
            raise
    try:
        return connect(roles.auth_provider(DEFAULT_CASSANDRA_ROLE, DEFAULT_CASSANDRA_ROLE))
    except NoHostAvailable as exc:
        if not auth_refused(exc) or node != 1:
            raise
    # It answered over TLS and asked for a login: the seed runs; logins need the other nodes.
    return None


def secure_ring(settings: Settings, nodes: int, echo: Callable[[str], None]) -> None:
    """Once every node runs: system_auth's replication, ``platform_admin``, the default superuser retired."""
    from ..security import cassandra_roles as roles

    hosts = [nodes_mod.node_host(settings.cassandra_hosts[0][0], n) for n in range(1, nodes + 1)]
    replicas = auth_replicas(nodes)
    with procs.quiet_client_logs("cassandra"):
        cluster, session, who = _connect_any(settings, hosts)
        new_ring = who == DEFAULT_CASSANDRA_ROLE
        try:
            dc = session.execute("SELECT data_center FROM system.local").one().data_center
            altered = _replicate_auth(session, dc, replicas)
            if new_ring:
                roles.bootstrap(session, settings.home)
        finally:
            cluster.shutdown()
        if new_ring:
            cluster, session, _ = _connect_any(settings, hosts, default=False)
            try:
                roles.retire_default(session)
            finally:
                cluster.shutdown()
    done = f"{account(ADMIN)} created, the default superuser retired" if new_ring else f"{account(ADMIN)} logs in"
    echo(f"cassandra: ring of {nodes}: system_auth on {replicas} replicas in {dc}"
         f"{' (altered)' if altered else ''}; {done}")


def _replicate_auth(session: Any, dc: str, replicas: int) -> bool:
    """NetworkTopologyStrategy with ``replicas`` in ``dc`` for system_auth; True if it had to change."""
    if replication.factors(f"NetworkTopologyStrategy:{dc}={replicas}") != {dc: replicas}:
        raise StackError(f"cassandra: the ring's data centre {dc!r} is not a name system_auth can be given")
    row = session.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
                          ("system_auth",)).one()
    found = dict(row.replication) if row is not None else {}
    if found.pop("class", "").endswith("NetworkTopologyStrategy") and found == {dc: str(replicas)}:
        return False
    # DDL takes no bind markers: the data centre's name was checked just above. The replicas of a
    # new local ring are its nodes already (system_auth was made with that many): no data moves.
    # On a ring that grows, run `nodetool repair system_auth` on each node after this.
    session.execute("ALTER KEYSPACE system_auth WITH replication = "
                    f"{{'class': 'NetworkTopologyStrategy', '{dc}': {replicas}}}")
    return True


def _connect_any(settings: Settings, hosts: list[str], default: bool = True) -> tuple[Any, Any, str]:
    """A session on the ring as ``platform_admin``, else (``default``) as the default superuser;
    retried while the ring cannot serve a login yet (a node's default-role set-up runs every second)."""
    from cassandra.cluster import Cluster, NoHostAvailable

    from ..security import cassandra_roles as roles

    user, password = credentials(settings, ADMIN) or ("", "")
    choices = [(user, password), *([(DEFAULT_CASSANDRA_ROLE, DEFAULT_CASSANDRA_ROLE)] if default else [])]
    deadline = time.monotonic() + RING_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        for name, secret in choices:
            cluster = Cluster(contact_points=hosts, port=settings.cassandra_port, connect_timeout=10,
                              control_connection_timeout=10, auth_provider=roles.auth_provider(name, secret),
                              ssl_context=tls.ssl_context(settings))
            try:
                return cluster, cluster.connect(), name
            except NoHostAvailable as exc:
                cluster.shutdown()
                if not auth_refused(exc):
                    raise StackError(f"cassandra: the ring at {', '.join(hosts)} does not answer ({exc})") from exc
                last = exc
        time.sleep(RETRY_S)
    raise StackError(f"cassandra: no login on the ring at {', '.join(hosts)} within {RING_TIMEOUT_S:.0f} s "
                     f"(last: {last}); is the secrets store the one this ring was made with?")
