"""A tenant's access in secure mode: its Cassandra role, Redis user and Kafka user, made, checked
and rotated.

``tenants apply`` calls :func:`grant` after the keyspaces exist (and ``kafka_access.grant`` after
the topics); ``tenants credentials --rotate`` calls :func:`rotate`. The one password of the
principal ``tenant:<name>`` (secrets store) is the password of all three accounts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cassandra.cluster import Session

from ..core import names
from ..core.cql import ident
from ..core.settings import Settings
from ..core.tenants import Tenant
from . import cassandra_roles, kafka_access, redis_acl, secrets, tls
from .identities import account, tenant_principal


def grant(settings: Settings, session: Session, client: Any, tenants: Iterable[Tenant]) -> list[str]:
    """Give each tenant its role (SELECT and MODIFY on its own keyspace) and its Redis user."""
    done = []
    for t in tenants:
        role = cassandra_roles.ensure_tenant_role(session, settings.home, t.name, t.namespace)
        user = redis_acl.ensure_tenant_user(client, settings.home, t.name)
        done.append(f"{t.name}: cassandra role {role} (SELECT, MODIFY on {t.namespace} only), redis user {user}")
    return done


def rotate(settings: Settings, session: Session, client: Any, tenant: Tenant) -> None:
    """A new password for the tenant: in the store first, then in Cassandra, Redis and Kafka."""
    principal = tenant_principal(tenant.name)
    secrets.password(settings.home, principal, rotate=True)
    cassandra_roles.ensure_tenant_role(session, settings.home, tenant.name, tenant.namespace, new_password=True)
    redis_acl.ensure_tenant_user(client, settings.home, tenant.name)
    kafka_access.set_password(settings, principal)


def revoke(settings: Settings, session: Session, client: Any, tenant: Tenant) -> None:
    """The tenant's role, Redis user, and Kafka user and ACLs are dropped (with its keyspace:
    ``tenants remove --drop-data``)."""
    user = account(tenant_principal(tenant.name))
    session.execute(f"DROP ROLE IF EXISTS {ident(user)}")
    client.execute_command("ACL", "DELUSER", user)
    client.execute_command("ACL", "SAVE")
    kafka_access.revoke(settings, tenant.name)


def client_credentials(settings: Settings, tenant: Tenant) -> dict[str, Any]:
    """What the tenant's own clients need: accounts, the password, endpoints (it holds a secret)."""
    principal = tenant_principal(tenant.name)
    name = account(principal)
    return {
        "tenant": tenant.name,
        "principal": principal,
        "password": secrets.password(settings.home, principal),
        "password_file": str(secrets.path(settings.home, principal)),
        "kafka": {"bootstrap": settings.kafka_bootstrap_str, "username": name, "sasl_mechanism": "SCRAM-SHA-512",
                  "security_protocol": "SASL_SSL", "ssl_cafile": str(tls.ca_cert(settings.home)),
                  "ingest_topic": tenant.ingest_topic, "dead_topic": tenant.dead_topic,
                  "reports_topic": names.reports_topic(tenant.name)},
        "cassandra": {"hosts": [f"{h}:{p}" for h, p in settings.cassandra_hosts], "role": name,
                      "keyspace": tenant.namespace, "table": tenant.table_name,
                      "permissions": list(cassandra_roles.GRANTED)},
        "redis": {"url": settings.redis_url, "username": name},
    }
