"""Rotating a tenant's password while its pool ingests: no restart, nothing lost or doubled.

The pool reads the secrets store at every login, so after ``tenants credentials T --rotate`` each
reconnect uses the new password: the test forces them (Redis drops every connection of the pool's
user, every prefork child is killed and replaced) while a file is half ingested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import SimpleStatement
from kit import Platform

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import access, identities, secrets, tls
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.timeout(900)]

# Small chunks: a file of a few MB is many tasks, so the rotation falls in the middle of one.
ENV = {"MYSIMBDP_CHUNK_MB": "1", "MYSIMBDP_VISIBILITY_TIMEOUT": "15", "MYSIMBDP_STALL_SECONDS": "10"}


def _count(session: Session, tenant: Any) -> int:
    """Rows in the tenant's table, read page by page (one COUNT(*) over the whole table can outlast
    Cassandra's range timeout on a busy machine)."""
    statement = SimpleStatement(f'SELECT id FROM "{tenant.namespace}"."{tenant.table_name}"', fetch_size=2000)
    return sum(1 for _ in session.execute(statement, timeout=120))


def _pool_users(client: redis.Redis, user: str) -> list[dict[str, Any]]:
    return [c for c in client.client_list() if c.get("user") == user]


def _wait_for_pool_connections(client: redis.Redis, user: str, timeout: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _pool_users(client, user)
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"the pool did not log in to Redis again as {user} within {timeout} s")


def _kill_pool_children(platform: Platform) -> list[int]:
    """SIGKILL every prefork child of the pool; the pool's main process starts fresh ones."""
    children = psutil.Process(platform.procs["worker"].pid).children()
    assert children, platform.logs()
    for child in children:
        os.kill(child.pid, signal.SIGKILL)
    return [c.pid for c in children]


def _cassandra_login(settings: Settings, user: str, password: str) -> None:
    cluster = Cluster(settings.cassandra_contact_points, port=settings.cassandra_port,
                      ssl_context=tls.ssl_context(settings), auth_provider=PlainTextAuthProvider(user, password))
    try:
        cluster.connect().execute("SELECT release_version FROM system.local")
    finally:
        cluster.shutdown()


def test_a_pool_ingests_through_a_rotation_and_logs_in_again_with_the_new_password(
        make_tenant: Any, settings: Settings, cassandra_session: Session, redis_client: redis.Redis,
        secure_env: dict[str, str], tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    access.grant(settings, cassandra_session, redis_client, [tenant])
    principal = identities.tenant_principal(tenant.name)
    user = identities.account(principal)
    old = secrets.password(settings.home, principal)
    during = generate("tenant2", 4 * 1024 * 1024, tmp_path / "during.csv", seed=31)
    after = generate("tenant2", 1024 * 1024, tmp_path / "after.csv", seed=32)
    platform = Platform(settings, tenant, settings.home, concurrency=2, extra_env={**secure_env, **ENV})
    platform.start()
    try:
        name = platform.stage(during.path, f"{tenant.name}-during.csv")
        platform.wait_for_a_chunk(redis_client, timeout=240)
        before = _pool_users(redis_client, user)
        assert before, platform.logs()  # the pool is logged in as its tenant
        done = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "tenants", "credentials", tenant.name,
                               "--rotate", "--json"], env={**os.environ, **secure_env}, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        new = json.loads(done.stdout)["password"]
        assert new != old and new == secrets.password(settings.home, principal)
        # Every connection the pool had logged in with is dropped, and every pool process replaced.
        assert redis_client.execute_command("CLIENT", "KILL", "USER", user) > 0
        killed = _kill_pool_children(platform)
        again = _wait_for_pool_connections(redis_client, user)
        assert {c["id"] for c in again}.isdisjoint({c["id"] for c in before})
        _, receipt = platform.final(name, timeout=300)
        assert (receipt["status"], receipt["rows_ok"], receipt["rows_refused"]) == ("done", during.records, 0)
        # A file staged after the rotation is ingested by the fresh children, logged in anew.
        _, receipt = platform.final(platform.stage(after.path, f"{tenant.name}-after.csv"), timeout=300)
        assert (receipt["status"], receipt["rows_ok"], receipt["rows_refused"]) == ("done", after.records, 0)
        assert not set(killed) & {c.pid for c in psutil.Process(platform.procs["worker"].pid).children()}
        platform.check_alive()  # the pool was never restarted
        logs = [*(settings.home / "logs").glob("*.log")]
    finally:
        platform.stop()
    # Every row landed once: the table holds exactly the distinct keys of both files.
    assert _count(cassandra_session, tenant) == during.distinct_keys + after.distinct_keys
    # The old password is refused by Redis and Cassandra; the new one logs in.
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(settings.redis_url, username=user, password=old).ping()
    assert redis.Redis.from_url(settings.redis_url, username=user, password=new).ping()
    with pytest.raises(NoHostAvailable, match=r"(?i)authentication|credentials|password"):
        _cassandra_login(settings, user, old)
    _cassandra_login(settings, user, new)
    assert not secrets.next_path(settings.home, principal).exists()
    for log in logs:  # no password in any log
        text = log.read_text(errors="replace")
        assert old not in text and new not in text, log
