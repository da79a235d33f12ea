"""A tenant's access in secure mode: its Cassandra role, Redis user and Kafka user, made, checked
and rotated.

``tenants apply`` calls :func:`grant` after the keyspaces exist (and ``kafka_access.grant`` after
the topics); ``tenants credentials --rotate`` calls :func:`rotate`. The one password of the
principal ``tenant:<name>`` (secrets store) is the password of all three accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from cassandra.cluster import Session

from ..core import names
from ..core.cql import ident
from ..core.settings import Settings
from ..core.tenants import Tenant
from . import cassandra_roles, kafka_access, redis_acl, secrets, tls
from .identities import account, tenant_principal

log = logging.getLogger(__name__)


def grant(settings: Settings, session: Session, client: Any, tenants: Iterable[Tenant]) -> list[str]:
    """Give each tenant its role (SELECT and MODIFY on its own keyspace) and its Redis user."""
    done = []
    for t in tenants:
        role = cassandra_roles.ensure_tenant_role(session, settings.home, t.name, t.namespace)
        user = redis_acl.ensure_tenant_user(client, settings.home, t.name)
        done.append(f"{t.name}: cassandra role {role} (SELECT, MODIFY on {t.namespace} only), redis user {user}")
    return done


def rotate(settings: Settings, session: Session, client: Any, tenant: Tenant) -> None:
    """A new password for the tenant, while its pool goes on ingesting.

    The platform's processes read the store at every login (``security/logins.py``) and the services
    keep connections that logged in before a change, so only new logins matter. In order:

    1. the new password is kept aside in the store (``<principal>.password.next``): a rotation cut
       short is finished by the next one, with the same password (one rotation at a time);
    2. Redis: the pool user gets it as a second password (both log in);
    3. Cassandra: ``ALTER ROLE`` (one password per role), then a login with the new password until
       Cassandra takes it (its credentials cache keeps the old one up to ``credentials_validity``);
    4. the store: the new password becomes the current one (one rename), read by every later login;
    5. Kafka: the SCRAM credential becomes the new one (only the tenant's own clients log in as the
       tenant there: the pool produces as ``platform:worker``);
    6. Redis: the new password becomes the user's only one.

    Windows: in step 3, from the moment Cassandra's cache lets the old password go until the rename
    (one poll of ``cassandra_roles.wait_for_login`` at most), a new Cassandra connection offers the
    old password, is refused, and is made again (the driver's reconnection, or the task's retry), as
    during any outage; between 4 and 5 (one admin request) a Kafka client made then offers the new
    password too early. Open connections are never touched.
    """
    principal = tenant_principal(tenant.name)
    with secrets.rotating(settings.home, principal):
        new = secrets.pending(settings.home, principal)
        redis_acl.add_password(client, tenant.name, new)
        cassandra_roles.set_password(session, tenant.name, new)
        cassandra_roles.wait_for_login(settings, tenant.name, new)
        secrets.promote(settings.home, principal)
        kafka_access.set_password(settings, principal, new)
        redis_acl.keep_only_password(client, tenant.name, new)
    log.info("tenant=%s password rotated: store, Redis, Cassandra and Kafka (account %s)", tenant.name,
             account(principal))


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
