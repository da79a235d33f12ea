"""Fixtures for tests against the real Redis, Kafka and Cassandra of the local stack.

The ``stack`` fixture starts the stack itself (``up`` is idempotent and quick when it already
runs), so a single test file also works on its own. In CI (``CI=true``) a service that cannot be
started fails the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from cassandra.cluster import Session

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.errors import StackError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import cassandra as db

log = logging.getLogger(__name__)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session", autouse=True)
def stack() -> Settings:
    """The running local stack; its value is the settings that reach it.

    It builds its own Settings rather than using the ``settings`` fixture, so a test module may
    override ``settings`` (e.g. with a private MYSIMBDP_HOME) at any scope.
    """
    settings = Settings.from_env()
    try:
        local_stack.up(settings, echo=log.info)
    except StackError as exc:
        if _in_ci():
            pytest.fail(f"the local stack must run in CI:\n{exc}", pytrace=False)
        pytest.skip(f"the local stack is not available (try `mysimbdp stack up`):\n{exc}")
    return settings


@pytest.fixture(scope="session")
def redis_client(stack: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def cassandra_session(stack: Settings) -> Iterator[Session]:
    cluster, session = db.connect(stack)
    yield session
    cluster.shutdown()


@pytest.fixture
def make_tenant(redis_client: redis.Redis, cassandra_session: Session, settings: Settings) -> Iterator[Any]:
    """Factory of fresh, registered tenants: ``make_tenant(like="tenant1", provision=True, **settings)``.

    They leave the registry at the end of the test, so no platform process ever serves them later.
    """
    from kit import new_tenant

    from mysimbdp_tasks.services.registry import Registry

    made: list[str] = []

    def make(like: str = "tenant2", provision: bool = True, **overrides: object) -> Any:
        tenant = new_tenant(redis_client, cassandra_session if provision else None, settings, like=like, **overrides)
        made.append(tenant.name)
        return tenant

    yield make
    for name in made:
        Registry(redis_client).forget(name)


@pytest.fixture
def stream_tenant(make_tenant: Any, settings: Settings) -> Any:
    """Factory of fresh stream tenants with their topics: ``stream_tenant(like="tenant2", **settings)``."""
    from mysimbdp_tasks.services import topics

    def make(like: str = "tenant2", **overrides: Any) -> Any:
        tenant = make_tenant(like=like, **overrides)
        topics.ensure(settings, [tenant])
        return tenant

    return make


@pytest.fixture
def stream_platform(settings: Settings, tmp_path: Any) -> Iterator[Any]:
    """Factory of a tenant's stream processes (worker pool and bridge) on a private home, stopped at
    the end: ``stream_platform(tenant, worker=True, extra_env=None)``."""
    from kit import Platform

    started: list[Any] = []

    def start(tenant: Any, worker: bool = True, extra_env: dict[str, str] | None = None) -> Any:
        p = Platform(settings, tenant, tmp_path / f"home-{tenant.name}", extra_env=extra_env)
        if worker:
            p.start_worker()
        p.start_bridge()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


# Secure mode ------------------------------------------------------------------------------------
# Tests marked ``secure`` run against a stack of their own, started in secure mode (TLS, logins,
# ACLs) on another loopback address and MYSIMBDP_HOME, so every other test keeps the plain stack.
# SECURE_STACK_ADDR moves it (default 127.0.0.28); it is stopped at the end of the session. A
# session whose own stack is secure uses that one instead.
SECURE_STACK_ADDR = os.environ.get("SECURE_STACK_ADDR", "127.0.0.28")


@pytest.fixture(scope="session")
def secure_stack(stack: Settings) -> Iterator[Settings]:
    """Settings of the running secure stack (Redis, Kafka, Cassandra), as a platform process sees them.

    When the session's own stack is secure already (MYSIMBDP_SECURE=1, or its home was started with
    ``stack up --secure``), that one is used and left running.
    """
    from mysimbdp_tasks.core.settings import mark_secure

    if stack.secure:
        yield stack
        return
    home = stack.home.parent / f"{stack.home.name}-secure"
    home.mkdir(parents=True, exist_ok=True)
    if (stack.home / "jars").is_dir() and not (home / "jars").exists():
        (home / "jars").symlink_to(stack.home / "jars")  # the jars once, not once per home
    addr = SECURE_STACK_ADDR
    env = {**os.environ, "MYSIMBDP_HOME": str(home), "MYSIMBDP_REDIS_URL": f"redis://{addr}:6379/0",
           "MYSIMBDP_KAFKA_BOOTSTRAP": f"{addr}:9092", "MYSIMBDP_CASSANDRA_HOSTS": f"{addr}:9042"}
    settings = mark_secure(Settings.from_env(env))
    try:
        local_stack.up(settings, echo=log.info)
    except StackError as exc:
        local_stack.down(settings, echo=log.info)
        if _in_ci():
            pytest.fail(f"the secure stack must run in CI:\n{exc}", pytrace=False)
        pytest.skip(f"the secure stack is not available:\n{exc}")
    yield settings
    local_stack.down(settings, echo=log.info)
