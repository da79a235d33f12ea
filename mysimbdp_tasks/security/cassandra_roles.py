"""Cassandra roles in secure mode: the admin role that replaces the default superuser, and one
role per tenant allowed to read and write its own keyspace only.

Role DDL takes no bind markers for a password (Cassandra's grammar wants a string literal), so a
password reaches the statement through the driver's quoting, and only after it matched the
secrets store's strict pattern (URL-safe characters: nothing to escape). Role and keyspace names
are validated identifiers. Statements with a password are never logged.
"""

from __future__ import annotations

import logging
import secrets as stdlib_secrets
import time
from pathlib import Path

from cassandra import AuthenticationFailed
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable, Session

from ..core.cql import ident
from ..core.errors import ServiceUnavailable, SettingsError
from ..core.settings import Settings
from . import secrets, tls
from .identities import ADMIN, DEFAULT_CASSANDRA_ROLE, account, tenant_principal

log = logging.getLogger(__name__)

# As the yaml of a secure stack says (stack/cassandra.py).
AUTH_OPTIONS = {
    "authenticator": "PasswordAuthenticator",
    "authorizer": "CassandraAuthorizer",
    "role_manager": "CassandraRoleManager",
}
RATE_LIMIT_TRIES, RATE_LIMIT_WAIT_S = 4, 2.0
# A rotation waits this long at most for Cassandra to take the new password (see wait_for_login).
LOGIN_WAIT_S, LOGIN_POLL_S = 30.0, 0.25
GRANTED = ("SELECT", "MODIFY")  # what a tenant's role may do on its own keyspace, and nothing else


def _checked(password: str) -> str:
    if not secrets.PASSWORD.match(password):
        raise SettingsError("a password from the secrets store has unexpected characters; rotate it")
    return password


def auth_provider(user: str, password: str) -> PlainTextAuthProvider:
    return PlainTextAuthProvider(username=user, password=password)


def bootstrap(session: Session, home: Path) -> None:
    """As the default superuser: create ``platform_admin`` (a superuser with a generated password)."""
    admin = account(ADMIN)
    session.execute(f"CREATE ROLE IF NOT EXISTS {ident(admin)} WITH SUPERUSER = true AND LOGIN = true "
                    "AND PASSWORD = %s", (_checked(secrets.password(home, ADMIN)),))


def retire_default(session: Session) -> None:
    """As ``platform_admin``: the default superuser can no longer log in, nor do anything if it could."""
    session.execute(f"ALTER ROLE {ident(DEFAULT_CASSANDRA_ROLE)} WITH SUPERUSER = false AND LOGIN = false "
                    "AND PASSWORD = %s", (stdlib_secrets.token_urlsafe(24),))


def ensure_tenant_role(session: Session, home: Path, tenant: str, keyspace: str) -> str:
    """Create the tenant's role with the store's password, granted SELECT and MODIFY on ``keyspace`` only."""
    principal = tenant_principal(tenant)
    role = account(principal)
    password = _checked(secrets.password(home, principal))
    exists = session.execute("SELECT role FROM system_auth.roles WHERE role = %s", (role,)).one() is not None
    if not exists:
        session.execute(f"CREATE ROLE IF NOT EXISTS {ident(role)} WITH LOGIN = true AND PASSWORD = %s", (password,))
    for permission in GRANTED:
        session.execute(f"GRANT {permission} ON KEYSPACE {ident(keyspace)} TO {ident(role)}")
    log.info("tenant=%s cassandra role %s: %s on keyspace %s", tenant, role, " and ".join(GRANTED), keyspace)
    return role


def set_password(session: Session, tenant: str, password: str) -> None:
    """``password`` becomes the tenant role's one password. Open connections stay logged in."""
    _alter_password(session, account(tenant_principal(tenant)), _checked(password))


def _alter_password(session: Session, role: str, password: str) -> None:
    # Cassandra 5 refuses to change a role's password twice within 5 s (counting its creation):
    # wait it out rather than leave the store and the role with different passwords.
    for attempt in range(RATE_LIMIT_TRIES):
        try:
            session.execute(f"ALTER ROLE {ident(role)} WITH PASSWORD = %s", (password,))
            return
        except NoHostAvailable as exc:
            if "can only be changed every" not in str(exc) or attempt == RATE_LIMIT_TRIES - 1:
                raise
            time.sleep(RATE_LIMIT_WAIT_S)


def wait_for_login(settings: Settings, tenant: str, password: str, timeout: float = LOGIN_WAIT_S) -> None:
    """Return once Cassandra lets the tenant's role log in with ``password``.

    Cassandra 5.0 does not drop a role's cached credentials on ``ALTER ROLE``
    (``PasswordAuthenticator.authenticate`` checks the cached hash): until the entry expires
    (``credentials_validity``, 2 s by default) a node still takes the old password and refuses the
    new one. A rotation waits here before the store hands the new password to new logins.
    """
    role = account(tenant_principal(tenant))
    deadline = time.monotonic() + timeout
    while True:
        cluster = Cluster(contact_points=list(settings.cassandra_hosts), port=settings.cassandra_port,
                          protocol_version=4, connect_timeout=10, control_connection_timeout=10,
                          ssl_context=tls.ssl_context(settings), auth_provider=PlainTextAuthProvider(role, password))
        try:
            cluster.connect().execute("SELECT release_version FROM system.local")
            return
        except NoHostAvailable as exc:
            errors = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
            if not any(isinstance(e, AuthenticationFailed) for e in errors.values()):
                raise
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"tenant={tenant}: Cassandra still refuses the new password of role {role} "
                                         f"after {timeout:.0f} s; run the rotation again (it keeps the same "
                                         "password until it completes)") from exc
        finally:
            cluster.shutdown()
        time.sleep(LOGIN_POLL_S)
