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

from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import NoHostAvailable, Session

from ..core.cql import ident
from ..core.errors import SettingsError
from . import secrets
from .identities import ADMIN, DEFAULT_CASSANDRA_ROLE, account, tenant_principal

log = logging.getLogger(__name__)

# As the yaml of a secure stack says (stack/cassandra.py).
AUTH_OPTIONS = {
    "authenticator": "PasswordAuthenticator",
    "authorizer": "CassandraAuthorizer",
    "role_manager": "CassandraRoleManager",
}
RATE_LIMIT_TRIES, RATE_LIMIT_WAIT_S = 4, 2.0
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


def ensure_tenant_role(session: Session, home: Path, tenant: str, keyspace: str, *, new_password: bool = False) -> str:
    """Create the tenant's role with the store's password (or, with ``new_password``, set the store's
    current password on the existing role), granted SELECT and MODIFY on ``keyspace`` only."""
    principal = tenant_principal(tenant)
    role = account(principal)
    password = _checked(secrets.password(home, principal))
    exists = session.execute("SELECT role FROM system_auth.roles WHERE role = %s", (role,)).one() is not None
    if not exists:
        session.execute(f"CREATE ROLE IF NOT EXISTS {ident(role)} WITH LOGIN = true AND PASSWORD = %s", (password,))
    elif new_password:
        _alter_password(session, role, password)
    for permission in GRANTED:
        session.execute(f"GRANT {permission} ON KEYSPACE {ident(keyspace)} TO {ident(role)}")
    log.info("tenant=%s cassandra role %s: %s on keyspace %s", tenant, role, " and ".join(GRANTED), keyspace)
    return role


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
