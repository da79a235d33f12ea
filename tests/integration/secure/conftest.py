"""A secure stack of its own for the tests in this folder (``mysimbdp stack up --secure``).

It runs on another loopback address and MYSIMBDP_HOME than the plain stack the rest of the suite
uses (``SECURE_STACK_HOST``, default 127.0.0.27; ``SECURE_STACK_HOME``, default a folder under the
system's temporary directory), so both can run side by side. The fixture stops the services it
started at the end of the session; a secure stack that was already running is left running.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from cassandra.cluster import Session

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.commands.stack import secure_home
from mysimbdp_tasks.core.errors import StackError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import identities
from mysimbdp_tasks.services import cassandra as db

log = logging.getLogger(__name__)


def _secure_env() -> dict[str, str]:
    host = os.environ.get("SECURE_STACK_HOST", "127.0.0.27")
    home = os.environ.get("SECURE_STACK_HOME", str(Path(tempfile.gettempdir()) / f"mysimbdp-secure-{host}"))
    return {"MYSIMBDP_HOME": home, "MYSIMBDP_REDIS_URL": f"redis://{host}:6379/0",
            "MYSIMBDP_KAFKA_BOOTSTRAP": f"{host}:9092", "MYSIMBDP_CASSANDRA_HOSTS": f"{host}:9042",
            "MYSIMBDP_SECURE": "1"}


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    """The running secure stack (overrides the plain one for this folder)."""
    settings = secure_home(Settings.from_env({**os.environ, **_secure_env()}))
    already = {s.name for s in local_stack.status(settings) if s.pid is not None}
    try:
        local_stack.up(settings, echo=log.info)
    except StackError as exc:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"the secure stack must run in CI:\n{exc}", pytrace=False)
        pytest.skip(f"the secure stack is not available:\n{exc}")
    yield settings
    started = [name for name in local_stack.SERVICES if name not in already]
    if started:
        local_stack.down(settings, echo=log.info, services=started)


@pytest.fixture(scope="session")
def secure_env(stack: Settings) -> dict[str, str]:
    """The environment of a platform process on the secure stack."""
    return _secure_env()


@pytest.fixture(scope="session")
def settings(stack: Settings) -> Settings:
    return stack


@pytest.fixture(scope="session")
def redis_client(stack: Settings) -> Iterator[redis.Redis]:
    """Logged in as the platform's admin."""
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
