"""Logins that read the secrets store at every connect, so a rotated password needs no restart.

A process holds no password: it holds a principal, and each new connection asks the store for that
principal's password at the moment it logs in.

- **Redis** (redis-py and kombu, the Celery broker): :class:`StoreCredentials`, redis-py's
  ``CredentialProvider``. redis-py calls ``get_credentials`` in every connection's ``on_connect``;
  kombu 5.7 hands a ``credential_provider`` given to its ``Connection`` to every pool it makes and
  keeps it across ``clone()`` (Celery does not pass one through, see ``worker/celery_app.py``).
  URLs then carry no password at all: what Celery prints is ``rediss://tenant_t1@host:port/0``.
- **Cassandra**: :class:`StoreAuthProvider`, whose ``new_authenticator`` the driver calls for every
  new connection (``Cluster._make_connection_kwargs``), reconnections to a restarted node included.
- **Kafka**: kafka-python takes a SCRAM password once per client (``sasl_plain_password``, handed to
  each connection's SCRAM exchange); it has a provider hook for OAUTHBEARER tokens only. A client
  made after a rotation reads the new password (``tls.kafka_options``); an older client keeps its
  open connections, and must be made again to open new ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse, urlunparse

import redis
from cassandra.auth import Authenticator, AuthProvider, PlainTextAuthenticator
from redis.credentials import CredentialProvider

from ..core.settings import Settings
from . import secrets
from .identities import account


class StoreCredentials(CredentialProvider):
    """redis-py's credentials of ``principal``: its account and its password as the store has it now."""

    def __init__(self, home: Path, principal: str) -> None:
        self.home = home
        self.principal = principal
        self.user = account(principal)

    def get_credentials(self) -> tuple[str, str]:
        return self.user, secrets.password(self.home, self.principal)

    async def get_credentials_async(self) -> tuple[str, str]:
        return self.get_credentials()

    def __repr__(self) -> str:  # never the password
        return f"StoreCredentials({self.user})"


class StoreAuthProvider(AuthProvider):
    """The Cassandra driver's login of ``principal``, with the store's password at each new connection."""

    def __init__(self, home: Path, principal: str) -> None:
        self.home = home
        self.principal = principal
        self.user = account(principal)

    def new_authenticator(self, host: Any) -> Authenticator:
        return PlainTextAuthenticator(self.user, secrets.password(self.home, self.principal))


def principal_of(settings: Settings, principal: str | None = None) -> str | None:
    """The principal a client of ``settings`` logs in as (default: the process's own); None in plain mode."""
    return (principal or settings.principal) if settings.secure else None


def redis_credentials(settings: Settings, principal: str | None = None) -> StoreCredentials | None:
    who = principal_of(settings, principal)
    return None if who is None else StoreCredentials(settings.home, who)


def redis_client(settings: Settings, principal: str | None = None, **options: Any) -> redis.Redis:
    """A Redis client of ``principal`` (default: the process's own): in secure mode every connection
    it opens logs in with the store's password of that moment."""
    provider = redis_credentials(settings, principal)
    if provider is not None:
        options["credential_provider"] = provider
    return redis.Redis.from_url(settings.redis_url, **options)


def broker_url(settings: Settings, principal: str | None = None) -> str:
    """The broker URL Celery is given: in secure mode it names the account (for its logs) but holds
    no password; the password comes from :func:`redis_credentials` at each connect."""
    who = principal_of(settings, principal)
    if who is None:
        return settings.redis_url
    parts = urlparse(settings.redis_url)
    return urlunparse(parts._replace(netloc=f"{quote(account(who), safe='')}@{parts.netloc.rpartition('@')[2]}"))


def cassandra_auth(settings: Settings, principal: str | None = None) -> StoreAuthProvider | None:
    who = principal_of(settings, principal)
    return None if who is None else StoreAuthProvider(settings.home, who)
