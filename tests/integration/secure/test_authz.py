"""Secure mode: each tenant's identity is authorized by the services themselves, not by our code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import psutil
import pytest
import redis
from cassandra import Unauthorized
from cassandra.cluster import NoHostAvailable, Session
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import KafkaError
from kit import DATA, Platform, table_rows

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.errors import ServiceUnavailable
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.security import access, identities, kafka_access, secrets, tls
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services.registry import Registry

# The first test also waits for the secure stack to start (Cassandra alone takes minutes on a busy box).
pytestmark = [pytest.mark.integration, pytest.mark.secure, pytest.mark.timeout(900)]


@pytest.fixture
def two_tenants(make_tenant: Any, settings: Settings, cassandra_session: Session, redis_client: redis.Redis) -> Any:
    a, b = make_tenant(like="tenant2"), make_tenant(like="tenant2")
    access.grant(settings, cassandra_session, redis_client, [a, b])
    return a, b


def _as(settings: Settings, tenant: str) -> Settings:
    return identities.as_tenant(settings, tenant)


def _kafka_login(settings: Settings, tenant: str, password: str | None = None) -> None:
    """Log in to Kafka (SASL_SSL, SCRAM) as the tenant, with its stored password or ``password``;
    raises what the client meets when Kafka refuses."""
    options = tls.kafka_options(settings, identities.tenant_principal(tenant))
    if password is not None:
        options["sasl_plain_password"] = password
    KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str, request_timeout_ms=10000, **options).close()


def test_cassandra_refuses_a_tenant_role_on_another_keyspace(two_tenants: Any, settings: Settings) -> None:
    a, b = two_tenants
    cluster, session = db.connect(_as(settings, a.name))
    try:
        assert table_rows(session, a) == []  # its own keyspace: allowed
        with pytest.raises(Unauthorized):
            session.execute(f'SELECT * FROM "{b.namespace}"."{b.table_name}"')
        with pytest.raises(Unauthorized):
            session.execute(f'INSERT INTO "{b.namespace}"."{b.table_name}" (subreddit, id, author) '
                            "VALUES ('x', 'y', 'z')")
        with pytest.raises(Unauthorized):
            session.execute(f'DROP KEYSPACE "{b.namespace}"')
    finally:
        cluster.shutdown()


def test_cassandra_refuses_the_default_superuser_and_anonymous_clients(settings: Settings) -> None:
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    for auth in (PlainTextAuthProvider("cassandra", "cassandra"), None):
        cluster = Cluster(settings.cassandra_contact_points, port=settings.cassandra_port, auth_provider=auth)
        with pytest.raises(NoHostAvailable):
            cluster.connect()
        cluster.shutdown()


def test_redis_refuses_a_pool_user_on_another_tenants_quota_keys(two_tenants: Any, settings: Settings,
                                                                  redis_client: redis.Redis) -> None:
    a, b = two_tenants
    day = "2026-01-01"
    redis_client.hset(names.usage_key(b.name, day), "files", 3)
    pool = redis.Redis.from_url(identities.redis_url(_as(settings, a.name)))
    try:
        pool.hincrby(names.usage_key(a.name, day), "files", 1)  # its own counters: allowed
        for attempt in (lambda: pool.hget(names.usage_key(b.name, day), "files"),
                        lambda: pool.hincrby(names.usage_key(b.name, day), "files", -3),
                        lambda: pool.delete(names.usage_key(b.name, day)),
                        lambda: pool.lpush(names.batch_queue(b.name), "forged"),
                        lambda: pool.hgetall(names.unacked_keys(b.name)[0]),  # B's in-flight messages
                        lambda: pool.hgetall(names.UNACKED),
                        lambda: pool.hset(names.TENANTS, a.name, "{}")):  # the registry is read-only
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
        assert pool.hget(names.TENANTS, a.name) is not None  # ...but readable
    finally:
        pool.close()
    assert redis_client.hget(names.usage_key(b.name, day), "files") == b"3"
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(settings.redis_url).ping()  # no credentials: refused


def test_rotated_credentials_work_and_the_old_password_is_refused(two_tenants: Any, settings: Settings,
                                                                    cassandra_session: Session,
                                                                    redis_client: redis.Redis) -> None:
    a, _ = two_tenants
    old = secrets.password(settings.home, identities.tenant_principal(a.name))
    old_url = identities.redis_url(_as(settings, a.name))
    access.rotate(settings, cassandra_session, redis_client, a)
    assert secrets.password(settings.home, identities.tenant_principal(a.name)) != old
    redis.Redis.from_url(identities.redis_url(_as(settings, a.name))).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(old_url).ping()
    cluster, session = db.connect(_as(settings, a.name))  # Cassandra has the new password too
    try:
        assert table_rows(session, a) == []
    finally:
        cluster.shutdown()
    _kafka_login(settings, a.name)  # and Kafka (the tenant's SCRAM user)
    with pytest.raises(KafkaError):
        _kafka_login(settings, a.name, old)


def test_a_pool_handed_work_for_another_keyspace_is_refused_by_cassandra(two_tenants: Any, settings: Settings,
                                                                         redis_client: redis.Redis,
                                                                         cassandra_session: Session,
                                                                         secure_env: dict[str, str]) -> None:
    """A's applied configuration is forged in the registry to aim at B's keyspace (what someone
    with write access to the broker's Redis could do): A's pool takes the file, and Cassandra,
    not our code, refuses A's role; the receipt names the reason. A's own work still lands."""
    a, b = two_tenants
    registry = Registry(redis_client)
    redis_client.hset(names.TENANTS, a.name, json.dumps({a.name: {**a.raw, "namespace": b.namespace}}))
    platform = Platform(settings, a, settings.home, concurrency=1, extra_env=secure_env)
    platform.start()
    try:
        forged_name = f"{a.name}-forged-{uuid.uuid4().hex[:6]}.csv"
        _, receipt = platform.final(platform.stage(DATA / "1000rows.csv", forged_name), timeout=240)
        assert (receipt["status"], receipt["reason"], receipt["keyspace"]) == ("failed", "unauthorized", b.namespace)
        assert "Cassandra refused" in json.dumps(receipt["errors"])
        registry.save(a)  # the real configuration again
        own_name = f"{a.name}-own-{uuid.uuid4().hex[:6]}.csv"
        _, receipt = platform.final(platform.stage(DATA / "1000rows.csv", own_name), timeout=240)
        assert (receipt["status"], receipt["keyspace"]) == ("done", a.namespace)
        assert receipt["rows_ok"] > 0
        _assert_no_password_shown(settings, a.name, platform)
    finally:
        platform.stop()
    assert len(table_rows(cassandra_session, a)) > 0
    assert table_rows(cassandra_session, b) == []


def test_the_sweepers_see_tasks_a_secure_pool_holds_under_its_own_names(two_tenants: Any,
                                                                        redis_client: redis.Redis) -> None:
    from mysimbdp_tasks.services import broker

    a, _ = two_tenants
    message = json.dumps({"headers": {"id": f"{a.name}-held"}, "body": ""})
    redis_client.hset(names.unacked_keys(a.name)[0], "tag-1", json.dumps([message, "", names.batch_queue(a.name)]))
    try:
        assert f"{a.name}-held" in broker.held_ids(redis_client, [names.batch_queue(a.name)])
    finally:
        redis_client.delete(names.unacked_keys(a.name)[0])


def _assert_no_password_shown(settings: Settings, tenant: str, platform: Platform) -> None:
    """Neither the pool's nor the platform's password is on a command line, in an environment,
    a log or a receipt."""
    hidden = [secrets.password(settings.home, p) for p in (identities.tenant_principal(tenant), identities.ADMIN)]
    processes = [psutil.Process(p.pid) for p in platform.procs.values()]
    processes += [child for proc in processes for child in proc.children(recursive=True)]
    for proc in processes:
        shown = " ".join(proc.cmdline()) + " ".join(f"{k}={v}" for k, v in proc.environ().items())
        assert not any(h in shown for h in hidden), proc.cmdline()
    files = [*(settings.home / "logs").glob("*"), *settings.home.glob("*/*/*.receipt.json")]
    assert files
    for file in files:
        text = file.read_text(errors="replace")
        assert not any(h in text for h in hidden), file


def test_credentials_command_prints_what_a_client_needs_and_rotates(two_tenants: Any, settings: Settings,
                                                                    secure_env: dict[str, str]) -> None:
    a, _ = two_tenants
    env = {**os.environ, **secure_env}
    out = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "tenants", "credentials", a.name, "--json"],
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    found = json.loads(out.stdout)
    principal = identities.tenant_principal(a.name)
    assert found["password"] == secrets.password(settings.home, principal)
    assert (found["cassandra"]["role"], found["cassandra"]["keyspace"]) == (f"tenant_{a.name}", a.namespace)
    assert found["redis"]["username"] == f"tenant_{a.name}" and found["kafka"]["ingest_topic"] == f"{a.name}.ingest"
    out = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "tenants", "credentials", a.name, "--rotate",
                          "--json"], env=env, capture_output=True, text=True, timeout=120, check=True)
    rotated = json.loads(out.stdout)
    assert rotated["rotated"] and rotated["password"] != found["password"]
    assert rotated["password"] == secrets.password(settings.home, principal)
    redis.Redis.from_url(identities.redis_url(_as(settings, a.name))).ping()


def test_a_removed_tenants_accounts_are_dropped(make_tenant: Any, settings: Settings, cassandra_session: Session,
                                                 redis_client: redis.Redis) -> None:
    t = make_tenant(like="tenant2")
    access.grant(settings, cassandra_session, redis_client, [t])
    kafka_access.grant(settings, [t.name])
    _kafka_login(settings, t.name)
    access.revoke(settings, cassandra_session, redis_client, t)
    with kafka_access.admin_client(settings) as admin:
        assert admin.describe_user_scram_credentials([f"tenant_{t.name}"])[f"tenant_{t.name}"]["error"]
        acls, _ = admin.describe_acls(ACLFilter(f"User:tenant_{t.name}", None, ACLOperation.ANY,
                                                ACLPermissionType.ANY,
                                                ResourcePatternFilter(ResourceType.ANY, None,
                                                                      ACLResourcePatternType.ANY)))
        assert acls == []
    with pytest.raises(KafkaError):
        _kafka_login(settings, t.name)
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis.from_url(identities.redis_url(_as(settings, t.name))).ping()
    with pytest.raises(ServiceUnavailable, match=f"refused the login of role tenant_{t.name}"):
        db.connect(_as(settings, t.name))


def test_a_forged_stream_task_for_another_keyspace_becomes_dead_letters(two_tenants: Any, settings: Settings,
                                                                         redis_client: redis.Redis,
                                                                         cassandra_session: Session,
                                                                         secure_env: dict[str, str]) -> None:
    """A micro-batch task sent straight to A's stream queue, with A's configuration forged to B's
    keyspace: Cassandra refuses A's role, and the messages become A's dead letters, reason given."""
    from streamkit import dead, messages

    from mysimbdp_tasks.services import topics
    from mysimbdp_tasks.stream import wire
    from mysimbdp_tasks.worker.celery_app import make_app

    a, b = two_tenants
    topics.ensure(settings, [a])
    redis_client.hset(names.TENANTS, a.name, json.dumps({a.name: {**a.raw, "namespace": b.namespace}}))
    entries = [wire.entry(json.dumps(m).encode(), None, 0, i, None)
               for i, m in enumerate(messages("tenant2", a, [DATA / "1000rows.csv"])[:20])]
    batch = {"bridged_at": 0.0, **{f: [e[f] for e in entries] for f in ("v", "k", "p", "o", "ts")},
             "n": sum(e["n"] for e in entries)}
    platform = Platform(settings, a, settings.home, concurrency=1, extra_env=secure_env)
    platform.start_worker()
    try:
        make_app(settings).send_task(names.INGEST_MESSAGES, args=(a.name, batch), queue=a.stream_queue,
                                     task_id=f"{a.name}-stream-forged-{uuid.uuid4().hex[:6]}")
        letters = dead(settings, a, expect=len(entries), timeout=180)
    finally:
        platform.stop()
    assert len(letters) == len(entries), platform.logs()
    assert {dict(m.headers)["reason"] for m in letters} == {b"unauthorized"}
    assert table_rows(cassandra_session, b) == []
