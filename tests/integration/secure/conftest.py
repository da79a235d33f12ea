"""The tests in this folder run against the one secure stack (the ``secure_stack`` fixture of
tests/integration/conftest.py): here ``stack``, ``settings`` and ``redis_client`` are that stack's,
so the plain stack is not started for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import identities


@pytest.fixture(scope="session", autouse=True)
def stack(secure_stack: Settings) -> Settings:
    """The running secure stack (overrides the plain one for this folder)."""
    return secure_stack


@pytest.fixture(scope="session")
def settings(stack: Settings) -> Settings:
    return stack


@pytest.fixture(scope="session")
def redis_client(stack: Settings) -> Iterator[redis.Redis]:
    """Logged in as the platform's admin, over TLS."""
    client = redis.Redis.from_url(identities.redis_url(stack))
    yield client
    client.close()
