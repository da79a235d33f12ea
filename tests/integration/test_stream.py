"""Near-realtime ingestion end to end: Kafka topic -> bridge -> tenant queue -> workers -> Cassandra."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

import pytest
from kit import DATA
from streamkit import dead as _dead
from streamkit import encoded as _encoded
from streamkit import messages as _messages
from streamkit import send as _send
from streamkit import send_in_background, wait_counted
from streamkit import wait_rows as _wait_rows

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.quotas import Quotas

pytestmark = pytest.mark.integration


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


def test_a_message_near_kafkas_limit_is_dead_lettered_cut_and_the_stream_goes_on(
        stream_tenant: Any, stream_platform: Any, settings: Settings, cassandra_session: Any) -> None:
    """Its dead letter, headers added, would be over Kafka's limit: the letter keeps what fits with the
    original's size and hash, and the bridge goes on with the messages after it."""
    tenant = stream_tenant("tenant1")
    good = {"tenant": tenant.name, "created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
    big = b'{"id": "' + b"x" * 1_048_392  # not even JSON, and about all a record may hold
    platform = stream_platform(tenant)
    _send(settings, tenant, [(b"k", json.dumps({**good, "id": "before"}).encode()), (b"k", big),
                             (b"k", json.dumps({**good, "id": "after"}).encode())])
    rows = _wait_rows(cassandra_session, tenant, 2, platform)
    assert {r.id for r in rows} == {"before", "after"}
    [letter] = _dead(settings, tenant, 1)
    headers = dict(letter.headers)
    assert headers["reason"] and headers["value_bytes"] == str(len(big)).encode()
    assert headers["value_sha256"] == hashlib.sha256(big).hexdigest().encode()
    assert big.startswith(letter.value) and len(letter.value) < len(big)
    platform.check_alive()


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
    sender = send_in_background(settings, tenant, _encoded(messages))
    quotas = Quotas(redis_client)
    wait_counted(redis_client, tenant, 2000, timeout=60)
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
