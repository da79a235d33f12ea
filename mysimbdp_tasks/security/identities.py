"""Who is who towards the services in secure mode: principals, and the accounts they log in with.

A principal (``tenant:<name>`` or ``platform:<role>``) has one password in the secrets store and
the same account name in Cassandra (a role) and Redis (an ACL user): ``tenant_<name>`` or
``platform_<role>``. A tenant's worker pool is ``tenant:<name>``; every other platform process,
and provisioning, is ``platform:admin``.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote, urlparse, urlunparse

from ..core.settings import Settings
from .secrets import check_principal, password

ADMIN = "platform:admin"
# Cassandra's built-in superuser, replaced by ``platform_admin`` on the first secure start.
DEFAULT_CASSANDRA_ROLE = "cassandra"


def tenant_principal(tenant: str) -> str:
    return check_principal(f"tenant:{tenant}")


def account(principal: str) -> str:
    """The role / user name of a principal: ``tenant:t1`` -> ``tenant_t1`` (a plain CQL identifier)."""
    return check_principal(principal).replace(":", "_")


def credentials(settings: Settings, principal: str | None = None) -> tuple[str, str] | None:
    """(account, password) of ``principal`` (default: the process's own) in secure mode, else None."""
    if not settings.secure:
        return None
    who = principal or settings.principal
    return account(who), password(settings.home, who)


def redis_url(settings: Settings, principal: str | None = None) -> str:
    """The Redis URL of ``principal`` (default: the process's own), with its credentials in secure
    mode. Hand it only to clients: it holds a password, so it is never logged or printed."""
    found = credentials(settings, principal)
    if found is None:
        return settings.redis_url
    user, secret = found
    parts = urlparse(settings.redis_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(secret, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunparse(parts._replace(netloc=netloc))


def pool_tenant(settings: Settings) -> str | None:
    """The tenant whose pool this process is, in secure mode; None for the platform's processes."""
    kind, _, name = settings.principal.partition(":")
    return name if settings.secure and kind == "tenant" else None


def as_tenant(settings: Settings, tenant: str) -> Settings:
    """The settings of a process acting for ``tenant`` (its worker pool)."""
    return dataclasses.replace(settings, principal=tenant_principal(tenant))
