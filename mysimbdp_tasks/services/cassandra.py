"""Cassandra connections: one Cluster per process, created where it is used (never across fork)."""

from __future__ import annotations

import logging

from cassandra import AuthenticationFailed, OperationTimedOut, RequestExecutionException, Unauthorized
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy

from ..core.backoff import OUTAGE_BACKOFF
from ..core.envvalues import REPLICATION
from ..core.errors import PermanentIngestError, ServiceUnavailable, SettingsError, TransientIngestError
from ..core.settings import Settings
from ..security import logins, tls

log = logging.getLogger(__name__)

RECONNECT_MAX_S = OUTAGE_BACKOFF.cap

#: Cassandra being away, slow or restarting: the same request may well succeed later.
#: ``RequestExecutionException`` covers Unavailable, WriteTimeout, ReadTimeout, Overloaded and
#: IsBootstrapping; the sink's own TransientIngestError is what it raises after its retries.
TRANSIENT: tuple[type[BaseException], ...] = (
    NoHostAvailable, OperationTimedOut, ConnectionException, RequestExecutionException, ServiceUnavailable,
    TransientIngestError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is Cassandra being unavailable (retry later) rather than about the data."""
    return isinstance(exc, TRANSIENT)




def as_refusal(exc: BaseException) -> BaseException:
    """Cassandra refusing this process's role (secure mode: another tenant's keyspace) becomes a
    permanent failure with reason ``unauthorized``, for the receipt or the dead letters."""
    if isinstance(exc, Unauthorized):
        return PermanentIngestError("unauthorized", f"Cassandra refused this pool's role: {str(exc)[:300]}")
    return exc


class _Connection(Cluster.connection_class):
    """The driver's connection (libev when it was built with it) sending a request in one piece.

    The driver cuts every outgoing frame into pieces of ``out_buffer_size`` (4 KiB) and sends each
    with a system call of its own: a sink batch of 48 KiB took 12 calls and 12 copies. A frame up to
    this size goes in one call; larger ones are still cut (the socket takes what it can at a time).
    """

    out_buffer_size = 256 * 1024


def connect(settings: Settings, request_timeout: float = 30.0) -> tuple[Cluster, Session]:
    """Open a token-aware session to the configured Cassandra hosts (in secure mode, logged in as
    the process's principal: a tenant's pool as its tenant's role)."""
    # Secure mode: the store's password is read at each new connection (a rotation needs no restart).
    auth = logins.cassandra_auth(settings)
    profile = ExecutionProfile(
        # Token-aware: each write goes to a replica of its partition, in the local data centre (the
        # setting's, else the one of the first contact point the driver reaches).
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc)),
        request_timeout=request_timeout,
    )
    cluster = Cluster(
        # Every contact point with its own port; ``port`` is for the nodes the driver discovers.
        contact_points=list(settings.cassandra_hosts),
        port=settings.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        # v4 rather than v5: v5's checksummed framing costs ~1.7 us of client CPU per row in bulk
        # writes (measured with benchmarks/probe.py) and buys nothing on a trusted local link.
        protocol_version=4,
        connection_class=_Connection,
        connect_timeout=10,
        max_schema_agreement_wait=30,
        control_connection_timeout=10,
        # The driver's default backs off up to 10 minutes between reconnection attempts: after a
        # two-minute outage a process would wait minutes more for a Cassandra that is back. Capped
        # at 10 s, as the platform's own waits are (core.backoff.OUTAGE_BACKOFF).
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=1.0, max_delay=RECONNECT_MAX_S),
        # Secure mode: TLS verifying the local CA and the node's name; None (plaintext) otherwise.
        ssl_context=tls.ssl_context(settings),
        auth_provider=auth,
    )
    try:
        session = cluster.connect()
    except NoHostAvailable as exc:
        cluster.shutdown()
        hosts = ", ".join(f"{h}:{p}" for h, p in settings.cassandra_hosts)
        errors = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
        if auth is not None and any(isinstance(e, AuthenticationFailed) for e in errors.values()):
            # Still "unavailable" (work waits, nothing is given up) until the credentials are fixed.
            raise ServiceUnavailable(
                f"Cassandra at {hosts} refused the login of role {auth.user} (secure mode): its password in "
                f"{settings.home / 'secrets'} does not match; `mysimbdp tenants credentials <tenant> --rotate` "
                "sets a new one in both"
            ) from exc
        raise ServiceUnavailable(
            f"cannot reach Cassandra at {hosts} ({exc.args[0] if exc.args else exc}); "
            "start the local stack with `mysimbdp stack up` or set MYSIMBDP_CASSANDRA_HOSTS"
        ) from exc
    return cluster, session


def replication_map(spec: str) -> str:
    """Turn ``SimpleStrategy:1`` or ``NetworkTopologyStrategy:dc1=3,dc2=2`` into a CQL map literal.

    DDL takes no bind markers, so the spec is validated against a strict pattern before it is
    formatted; nothing else from outside ever reaches the text.
    """
    m = REPLICATION.match(spec.strip())
    if not m:
        raise SettingsError(
            f"MYSIMBDP_REPLICATION: expected 'SimpleStrategy:RF' or 'NetworkTopologyStrategy:dc=RF,...', got {spec!r}"
        )
    if m.group(1):
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {int(m.group(2))}}}"
    pairs = [p.split("=") for p in m.group(4).strip(",").split(",")]
    body = ", ".join(f"'{dc}': {int(rf)}" for dc, rf in pairs)
    return f"{{'class': 'NetworkTopologyStrategy', {body}}}"
