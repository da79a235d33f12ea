"""Fixtures for tests against the real Redis, Kafka and Cassandra of the local stack.

The ``stack`` fixture starts the stack itself (``up`` is idempotent and quick when it already
runs), so a single test file also works on its own. In CI (``CI=true``) a service that cannot be
started fails the tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
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
    if settings.secure and settings.secure_from != "environment":
        # A new home is secure by default; these tests reach the services with plain clients. A
        # secure stack asked for by MYSIMBDP_SECURE=1 is meant: the secure cluster stage runs on one.
        why = (f"{settings.home} is a secure home; the tests outside tests/integration/secure/ need a plain stack: "
               "`make test`, or MYSIMBDP_SECURE=0 with a home of their own")
        if _in_ci():
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
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
def shared_cassandra_session(stack: Settings) -> Iterator[Session]:
    cluster, session = db.connect(stack)
    yield session
    cluster.shutdown()


@pytest.fixture
def cassandra_session(shared_cassandra_session: Session) -> Session:
    """The shared session, answering: a test that restarted Cassandra may leave it waiting for the
    driver's next reconnection attempt."""
    from kit import wait_until_answering

    wait_until_answering(shared_cassandra_session)
    return shared_cassandra_session


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
# One secure stack (`mysimbdp stack up --secure`: TLS on every listener, logins and per-tenant
# authorization in Redis, Kafka and Cassandra) serves every secure test (tests/integration/secure/).
# It runs on another loopback address and MYSIMBDP_HOME than the plain stack, so both run side by
# side: SECURE_STACK_HOST (default 127.0.0.27) and SECURE_STACK_HOME (default a folder under the
# system's temporary directory). The services it started are stopped at the end of the session; a
# secure stack that was already running is left running.


def _secure_stack_env() -> dict[str, str]:
    """The environment of a platform process on the secure stack."""
    host = os.environ.get("SECURE_STACK_HOST", "127.0.0.27")
    home = os.environ.get("SECURE_STACK_HOME", str(Path(tempfile.gettempdir()) / f"mysimbdp-secure-{host}"))
    return {"MYSIMBDP_HOME": home, "MYSIMBDP_REDIS_URL": f"redis://{host}:6379/0",
            "MYSIMBDP_KAFKA_BOOTSTRAP": f"{host}:9092", "MYSIMBDP_CASSANDRA_HOSTS": f"{host}:9042",
            "MYSIMBDP_SECURE": "1"}


@pytest.fixture(scope="session")
def secure_stack() -> Iterator[Settings]:
    """Settings of the running secure stack, as a platform process (``platform:admin``) sees them."""
    from mysimbdp_tasks.core.settings import mark_secure

    plain = Settings.from_env()
    settings = mark_secure(Settings.from_env({**os.environ, **_secure_stack_env()}))
    jars = settings.home / "jars"
    if (plain.home / "jars").is_dir() and not jars.exists() and not jars.is_symlink():
        jars.symlink_to(plain.home / "jars")  # the jars once, not once per home
    already = {s.name for s in local_stack.status(settings) if s.pid is not None}
    try:
        local_stack.up(settings, echo=log.info)
    except StackError as exc:
        if _in_ci():
            pytest.fail(f"the secure stack must run in CI:\n{exc}", pytrace=False)
        pytest.skip(f"the secure stack is not available:\n{exc}")
    yield settings
    started = [name for name in local_stack.SERVICES if name not in already]
    if started:
        local_stack.down(settings, echo=log.info, services=started)


@pytest.fixture(scope="session")
def secure_env(secure_stack: Settings) -> dict[str, str]:
    """The environment of a platform process on the secure stack."""
    return _secure_stack_env()
