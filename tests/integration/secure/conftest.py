"""The tests in this folder run against the one secure stack (the ``secure_stack`` fixture of
tests/integration/conftest.py): here ``stack``, ``settings``, ``redis_client`` and
``cassandra_session`` are that stack's, so the plain stack is not started for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from cassandra.cluster import Session

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import identities
from mysimbdp_tasks.services import cassandra as db


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


# Every session-scoped fixture of the parent conftest that depends on ``stack`` is overridden here:
# pytest caches a session fixture once per run, whatever ``stack`` it was first built with, so a
# parent fixture first used by these tests would hand the secure stack to every plain test after them.
@pytest.fixture(scope="session")
def cassandra_session(stack: Settings) -> Iterator[Session]:
    """Logged in as the platform's admin."""
    cluster, session = db.connect(stack)
    yield session
    cluster.shutdown()
