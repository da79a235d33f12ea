"""Near-realtime ingestion end to end: Kafka topic -> bridge -> tenant queue -> workers -> Cassandra."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kit import DATA, Platform, table_rows

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import topics
from mysimbdp_tasks.services.quotas import Quotas
from producers.stream import key_for, message_for, records_for

pytestmark = pytest.mark.integration


@pytest.fixture
def stream_tenant(make_tenant: Any, settings: Settings) -> Any:
    def make(like: str = "tenant2", **overrides: Any) -> Tenant:
        tenant = make_tenant(like=like, **overrides)
        topics.ensure(settings, [tenant])
        return tenant

    return make


def _messages(like: str, tenant: Tenant, inputs: list[Path]) -> list[dict[str, Any]]:
    return [{**message_for(like, r), "tenant": tenant.name} for r in records_for(like, inputs)]


def _send(settings: Settings, tenant: Tenant, payloads: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=5)
    for key, value in payloads:
        producer.send(tenant.ingest_topic, key=key, value=value)
    producer.flush()
    producer.close()


def _encoded(messages: list[dict[str, Any]]) -> list[tuple[bytes | None, bytes]]:
    return [(key_for(m), json.dumps(m, ensure_ascii=False).encode()) for m in messages]


def _dead(settings: Settings, tenant: Tenant, expect: int, timeout: float = 60) -> list[Any]:
    consumer = KafkaConsumer(tenant.dead_topic, bootstrap_servers=settings.kafka_bootstrap_str,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000)
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            got.extend(consumer)
    finally:
        consumer.close()
    return got


def _wait_rows(session: Any, tenant: Tenant, expect: int, platform: Platform, timeout: float = 180) -> list[Any]:
    deadline = time.monotonic() + timeout
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = table_rows(session, tenant)
        if len(rows) >= expect:
            time.sleep(1)  # anything beyond the expected would show up now
            return table_rows(session, tenant)
        time.sleep(0.5)
    raise TimeoutError(f"{len(rows)} of {expect} rows after {timeout} s; logs:\n{platform.logs()}")


@pytest.fixture
def stream_platform(settings: Settings, tmp_path: Path) -> Iterator[Any]:
    started: list[Platform] = []

    def start(tenant: Tenant) -> Platform:
        p = Platform(settings, tenant, tmp_path / f"home-{tenant.name}")
        p.start_worker()
        p.start_bridge()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def test_reddit_samples_land_for_both_tenants_bodies_byte_for_byte(stream_tenant: Any, stream_platform: Any,
                                                                    settings: Settings, cassandra_session: Any) -> None:
    t1, t2 = stream_tenant("tenant1"), stream_tenant("tenant2")
    m1 = _messages("tenant1", t1, sorted(DATA.glob("1000rows*.json")))
    m2 = _messages("tenant2", t2, sorted(DATA.glob("1000rows*.csv")))
    p1, p2 = stream_platform(t1), stream_platform(t2)
    _send(settings, t1, _encoded(m1))
    _send(settings, t2, _encoded(m2))

    want1 = {(m["subreddit"], m["id"], int(m["ups"])): (m["author"], int(m["score"])) for m in m1}
    rows1 = _wait_rows(cassandra_session, t1, len(want1), p1)
    assert {(r.subreddit, r.id, r.ups): (r.author, r.score) for r in rows1} == want1

    want2 = {(m["subreddit"], m["id"], m["author"]): m["body"] for m in m2}
    rows2 = _wait_rows(cassandra_session, t2, len(want2), p2)
    assert {(r.subreddit, r.id, r.author): r.body for r in rows2} == want2
    assert sum(1 for b in want2.values() if any(c in b for c in "()[]{}")) > 100


def test_bad_messages_are_dead_lettered_with_reasons_and_good_ones_land(stream_tenant: Any, stream_platform: Any,
                                                                        settings: Settings,
                                                                        cassandra_session: Any) -> None:
    tenant = stream_tenant("tenant1")
    good = {"tenant": tenant.name, "created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
    payloads: list[tuple[bytes | None, bytes]] = [
        (b"k", json.dumps({**good, "id": "good1"}).encode()),
        (b"k", b'{"id": "x", "ups": [1, 2'),  # malformed JSON
        (b"k", json.dumps([1, 2]).encode()),  # not an object
        (b"k", json.dumps({**good, "id": "b2", "ups": "many"}).encode()),  # wrong type
        (b"k", json.dumps({k: v for k, v in good.items() if k != "subreddit"} | {"id": "b3"}).encode()),
        (b"k", json.dumps({**good, "id": "b4", "tenant": "tenant2"}).encode()),  # claims another tenant
        (b"k", json.dumps({**good, "id": "good2 (with) [brackets]"}).encode()),
    ]
    platform = stream_platform(tenant)
    _send(settings, tenant, payloads)
    rows = _wait_rows(cassandra_session, tenant, 2, platform)
    assert {r.id for r in rows} == {"good1", "good2 (with) [brackets]"}
    dead = _dead(settings, tenant, 5)
    reasons = sorted(dict(d.headers)["reason"].decode() for d in dead)
    assert reasons == sorted(["bad_json", "not_an_object", "bad_value", "missing_key_column", "wrong_tenant"])
    originals = {d.value for d in dead}
    assert b'{"id": "x", "ups": [1, 2' in originals  # the original payload, unchanged


def test_quota_admits_exactly_k_of_two_concurrent_producers(stream_tenant: Any, stream_platform: Any,
                                                           settings: Settings, cassandra_session: Any,
                                                           redis_client: Any) -> None:
    k, per_producer = 300, 250
    tenant = stream_tenant("tenant1", max_messages_per_day=k)
    base = {"tenant": tenant.name, "created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
    platform = stream_platform(tenant)
    batches = [[(f"p{n}".encode(), json.dumps({**base, "id": f"p{n}-{i}"}).encode()) for i in range(per_producer)]
               for n in range(2)]
    threads = [threading.Thread(target=_send, args=(settings, tenant, b)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = 2 * per_producer
    dead = _dead(settings, tenant, n - k)
    assert len(dead) == n - k
    assert {dict(d.headers)["reason"] for d in dead} == {b"daily_messages_exceeded"}
    rows = _wait_rows(cassandra_session, tenant, k, platform)
    assert len(rows) == k
    assert Quotas(redis_client).usage(tenant.name)["messages"] == k


def test_bridge_killed_mid_stream_then_restarted_lands_every_message_once(stream_tenant: Any, stream_platform: Any,
                                                                         settings: Settings, cassandra_session: Any,
                                                                         redis_client: Any) -> None:
    tenant = stream_tenant("tenant2")
    messages = [{**m, "id": f"{m['id']}-{i}"} for i, m in
                enumerate(_messages("tenant2", tenant, [DATA / "10000rows.csv"]) * 2)]
    platform = stream_platform(tenant)
    sender = threading.Thread(target=_send, args=(settings, tenant, _encoded(messages)))
    sender.start()
    quotas = Quotas(redis_client)
    deadline = time.monotonic() + 60
    while quotas.usage(tenant.name)["messages"] < 2000 and time.monotonic() < deadline:
        time.sleep(0.05)
    bridge = platform.procs.pop("bridge")
    bridge.kill()  # SIGKILL, mid-stream
    bridge.wait(10)
    counted_at_kill = quotas.usage(tenant.name)["messages"]
    sender.join()
    platform.start_bridge()
    want = {(m["subreddit"], m["id"], m["author"]): m["body"] for m in messages}
    rows = _wait_rows(cassandra_session, tenant, len(want), platform, timeout=300)
    assert 0 < counted_at_kill < len(messages)
    assert len(rows) == len(want)
    assert {(r.subreddit, r.id, r.author): r.body for r in rows} == want
    assert quotas.usage(tenant.name)["messages"] == len(messages)  # each message counted once
