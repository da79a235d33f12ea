"""How the platform's clients reach the services in secure mode: TLS verifying the local CA, and
for Kafka the principal's SCRAM-SHA-512 login.

Redis takes TLS from its URL (``Settings.redis_url`` is ``rediss://...`` in secure mode), so only
Kafka and Cassandra need options here. In plain mode every function returns "nothing to add".
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from ..core.settings import Settings
from . import identities, secrets

SCRAM = "SCRAM-SHA-512"
#: How long an operator's command waits for a first Kafka broker before it says Kafka is away
#: (kafka-python's default is 30 s). Long-running processes wait out outages on their own.
COMMAND_BOOTSTRAP_MS = 10_000


def ca_cert(home: Path) -> Path:
    """The local CA's certificate, the one thing a client of the secure stack must trust."""
    return home / "tls" / "ca.crt"


def kafka_user(principal: str) -> str:
    """The SCRAM user name of a principal, its account name everywhere (``identities.account``):
    ``tenant:t1`` -> ``tenant_t1`` (Kafka's ACLs read the first ``:`` of ``User:<name>`` as the
    separator, so the name itself has none)."""
    return identities.account(principal)


def kafka_options(settings: Settings, principal: str) -> dict[str, Any]:
    """Keyword arguments for any kafka-python client acting as ``principal``; {} in plain mode."""
    if not settings.secure:
        return {}
    return {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(ca_cert(settings.home)),
        "ssl_check_hostname": True,
        "sasl_mechanism": SCRAM,
        "sasl_plain_username": kafka_user(principal),
        "sasl_plain_password": secrets.password(settings.home, principal),
    }


def command_kafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for a short-lived kafka-python client of an operator's command (topic
    admin, dead letters, backlog): it acts as ``platform:admin`` and gives up on Kafka after
    ``COMMAND_BOOTSTRAP_MS``."""
    return {"bootstrap_timeout_ms": COMMAND_BOOTSTRAP_MS, **kafka_options(settings, identities.ADMIN)}


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context trusting only the local CA and checking the server's name; None in plain mode."""
    if not settings.secure:
        return None
    context = ssl.create_default_context(cafile=str(ca_cert(settings.home)))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
