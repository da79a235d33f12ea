"""Who may do what in Kafka in secure mode: one SCRAM-SHA-512 user per principal, and its ACLs.

Users are the principals of the secrets store with ``:`` made ``_`` (``tenant:t1`` -> ``tenant_t1``);
their passwords are the store's. Only ``platform_admin`` and the stack's certificate are super
users; every other principal gets exactly these grants (``StandardAuthorizer`` refuses the rest):

| principal | may |
|---|---|
| ``tenant:<t>`` | write ``<t>.ingest``, ``<t>.reports``; read ``<t>.dead``, ``<t>.out.*`` (groups ``<t>.*``) |
| ``platform:bridge`` | read ``<t>.ingest`` (group ``mysimbdp.bridge.<t>``); write ``<t>.dead``, ``mysimbdp.reports`` |
| ``platform:worker`` | write ``<t>.dead``, ``<t>.out.*`` (sinks) and ``mysimbdp.reports`` |
| ``platform:monitor`` | read ``mysimbdp.reports`` and every ``<t>.reports``; the only writer of ``mysimbdp.control`` |
| ``platform:manager`` | read ``mysimbdp.control`` |

``plan`` is pure (tested without Kafka); ``bootstrap`` and ``grant`` apply it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..core import names, sinks
from ..core.errors import ServiceUnavailable
from ..core.settings import Settings
from . import kafka_security, secrets, tls

PLATFORM_ROLES = ("admin", "bridge", "worker", "monitor", "manager")
READ, WRITE = "READ", "WRITE"


@dataclass(frozen=True)
class Grant:
    """One allowed operation: ``user`` may ``operation`` the topic or group ``name``
    (every group whose name starts with ``name`` when ``prefixed``)."""

    user: str
    operation: str  # READ or WRITE (each comes with DESCRIBE)
    resource: str  # "topic" or "group"
    name: str
    prefixed: bool = False


def platform_principals() -> list[str]:
    return [f"platform:{role}" for role in PLATFORM_ROLES]


def platform_plan() -> list[Grant]:
    bridge, worker, monitor, manager = (tls.kafka_user(f"platform:{r}") for r in PLATFORM_ROLES[1:])
    return [
        Grant(bridge, WRITE, "topic", names.REPORTS_TOPIC),
        Grant(worker, WRITE, "topic", names.REPORTS_TOPIC),
        Grant(monitor, READ, "topic", names.REPORTS_TOPIC),
        Grant(monitor, WRITE, "topic", names.CONTROL_TOPIC),
        Grant(monitor, READ, "group", "mysimbdp.monitor", prefixed=True),
        Grant(manager, READ, "topic", names.CONTROL_TOPIC),
        Grant(manager, READ, "group", "mysimbdp.manager", prefixed=True),
    ]


def tenant_plan(tenant: str) -> list[Grant]:
    user = tls.kafka_user(f"tenant:{tenant}")
    bridge, worker, monitor = (tls.kafka_user(f"platform:{r}") for r in ("bridge", "worker", "monitor"))
    ingest, dead, reports = names.ingest_topic(tenant), names.dead_topic(tenant), names.reports_topic(tenant)
    return [
        Grant(user, WRITE, "topic", ingest),
        Grant(user, WRITE, "topic", reports),
        Grant(user, READ, "topic", dead),
        Grant(user, READ, "group", f"{tenant}.", prefixed=True),
        Grant(bridge, READ, "topic", ingest),
        Grant(bridge, READ, "group", names.bridge_group(tenant)),
        Grant(bridge, WRITE, "topic", dead),
        Grant(worker, WRITE, "topic", dead),
        Grant(monitor, READ, "topic", reports),
        # The topics of the tenant's kafka sinks (core/sinks.py): the worker writes, the tenant reads.
        Grant(worker, WRITE, "topic", sinks.topic(tenant, ""), prefixed=True),
        Grant(user, READ, "topic", sinks.topic(tenant, ""), prefixed=True),
    ]


# Applying the plan ---------------------------------------------------------------------------------


def bootstrap(settings: Settings, internal_endpoint: str) -> list[str]:
    """The platform's users and grants, made by the stack through the broker's mutual-TLS listener."""
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=internal_endpoint, client_id="mysimbdp-stack",
                              request_timeout_ms=30000, **kafka_security.stack_client_options(settings.home))
    try:
        principals = platform_principals()
        _upsert_users(client, settings, principals)
        _create(client, platform_plan())
    finally:
        client.close()
    return principals


def grant(settings: Settings, tenants: Iterable[str]) -> None:
    """Users and grants of ``tenants`` (idempotent), made as ``platform:admin``; nothing in plain mode."""
    if not settings.secure:
        return
    chosen = sorted(tenants)
    with admin_client(settings) as client:
        _upsert_users(client, settings, [f"tenant:{t}" for t in chosen])
        _create(client, [g for t in chosen for g in tenant_plan(t)])


def set_password(settings: Settings, principal: str, password: str) -> None:
    """``password`` becomes ``principal``'s SCRAM credential (a rotation). Kafka keeps connections
    that logged in with the old one (the broker sets no ``connections.max.reauth.ms``)."""
    with admin_client(settings) as client:
        _upsert(client, {tls.kafka_user(principal): password})


def revoke(settings: Settings, tenant: str) -> None:
    """The tenant's SCRAM user and every grant of its plan are removed (``tenants remove --drop-data``);
    nothing in plain mode. A user that was never made is not an error."""
    from kafka.admin import ScramMechanism, UserScramCredentialDeletion

    if not settings.secure:
        return
    user = tls.kafka_user(f"tenant:{tenant}")
    with admin_client(settings) as client:
        failed = {name: error for name, error in client.alter_user_scram_credentials(
            [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)]).items()
            if error and not any(word in str(error).lower() for word in ("unknown", "not found", "no such"))}
        if failed:
            raise ServiceUnavailable(f"Kafka refused to delete the SCRAM user {user}: {failed}")
        results = client.delete_acls(_acls(tenant_plan(tenant)))
        errors = [str(error) for _, _, error in results if error is not None and error.errno != 0]
        if errors:
            raise ServiceUnavailable(f"Kafka refused to delete the ACLs of tenant {tenant}: {errors[0]}")


class admin_client:  # noqa: N801 - used as a context manager, named like one
    def __init__(self, settings: Settings) -> None:
        from kafka.admin import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            self.client = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str,
                                           client_id="mysimbdp-admin", request_timeout_ms=30000,
                                           **tls.kafka_options(settings, "platform:admin"))
        except KafkaError as exc:
            raise ServiceUnavailable(f"cannot reach Kafka at {settings.kafka_bootstrap_str} as platform:admin "
                                     f"({exc}); is the secure stack up? (`mysimbdp stack up --secure`)") from exc

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def _upsert_users(client: Any, settings: Settings, principals: list[str]) -> None:
    _upsert(client, {tls.kafka_user(p): secrets.password(settings.home, p) for p in principals})


def _upsert(client: Any, passwords: dict[str, str]) -> None:
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

    alterations = [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password)
                   for user, password in passwords.items()]
    if not alterations:
        return
    failed = {user: error for user, error in client.alter_user_scram_credentials(alterations).items() if error}
    if failed:
        raise ServiceUnavailable(f"Kafka refused the SCRAM credentials of {', '.join(sorted(failed))}: {failed}")


def _acls(grants: list[Grant]) -> list[Any]:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    acls = []
    for g in grants:
        kind = ResourceType.TOPIC if g.resource == "topic" else ResourceType.GROUP
        pattern = ResourcePattern(kind, g.name, ACLResourcePatternType.PREFIXED if g.prefixed
                                  else ACLResourcePatternType.LITERAL)
        for op in (ACLOperation[g.operation], ACLOperation.DESCRIBE):
            acls.append(ACL(f"User:{g.user}", "*", op, ACLPermissionType.ALLOW, pattern))
    return acls


def _create(client: Any, grants: list[Grant]) -> None:
    acls = _acls(grants)
    if not acls:
        return
    result = client.create_acls(acls)
    failed = result.get("failed") or []
    if failed:
        raise ServiceUnavailable(f"Kafka refused {len(failed)} ACL(s), e.g. {failed[0]}")
