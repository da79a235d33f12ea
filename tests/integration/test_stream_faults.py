"""The stream path loses nothing after commit: worker pools killed, Cassandra away, a task lost by
the broker, a batch that fails for good. Every message ends written once or as a dead letter with a
reason, the quota counts it once, and the bridges' committed offsets reach the end of the topic."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, cast

import pytest
import redis
from kit import Platform
from streamkit import (
    bridge_lag,
    dead,
    dead_count,
    encoded,
    send,
    send_in_background,
    wait_counted,
    wait_rows,
    wait_written,
)

from mysimbdp_tasks import stack
from mysimbdp_tasks.core import names, tenants
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import completions
from mysimbdp_tasks.services.quotas import Quotas, usage_key
from mysimbdp_tasks.services.registry import Registry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Lost batches are looked for after 3 s.
FAULT_ENV = {"MYSIMBDP_STREAM_STALL_SECONDS": "3"}
# The unacknowledged tasks of a killed pool come back after 15 s rather than 30 minutes. Not while
# Cassandra is away: a task waiting out its retry delay is unacknowledged too, and would be handed
# out again every 15 s.
KILL_ENV = {**FAULT_ENV, "MYSIMBDP_VISIBILITY_TIMEOUT": "15"}


@pytest.fixture
def platform(stream_platform: Any) -> Any:
    def start(tenant: Tenant, worker: bool = True, env: dict[str, str] = FAULT_ENV) -> Platform:
        return cast(Platform, stream_platform(tenant, worker=worker, extra_env=env))

    return start


def _comments(tenant: Tenant, n: int) -> list[dict[str, Any]]:
    return [{"tenant": tenant.name, "created_utc": 1430458939 + i, "subreddit": f"s{i % 7}", "id": f"m{i}",
             "author": f"a{i % 13}", "body": f"body {i}, with \"quotes\" and (brackets) [{i}]"} for i in range(n)]


def _keys(rows: list[Any]) -> list[tuple[str, str, str]]:
    return [(r.subreddit, r.id, r.author) for r in rows]


def _failed_tasks(p: Platform) -> list[str]:
    """Lines where Celery reports a task that ended in failure (and so was acknowledged as such)."""
    text = (p.home / "logs" / "worker.log").read_text(errors="replace")
    return [line for line in text.splitlines() if "raised unexpected" in line]


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_worker_pools_killed_again_and_again_lose_nothing_and_count_once(stream_tenant: Any, platform: Any,
                                                                        settings: Settings, cassandra_session: Any,
                                                                        redis_client: redis.Redis) -> None:
    tenant = stream_tenant("tenant2")
    msgs = _comments(tenant, 8000)
    p = platform(tenant, env=KILL_ENV)
    sender = send_in_background(settings, tenant, encoded(msgs), per_second=500)
    quotas = Quotas(redis_client)
    kills = 0
    while sender.is_alive() and kills < 5:
        time.sleep(2.5)
        p.kill_worker()  # the pool's main process and every child, SIGKILL
        kills += 1
        time.sleep(0.5)
        p.start_worker()
    sender.join()
    rows = wait_rows(cassandra_session, tenant, len(msgs), p, timeout=420)
    wait_written(settings, tenant, p, timeout=120)
    assert kills >= 3
    assert sorted(_keys(rows)) == sorted((m["subreddit"], m["id"], m["author"]) for m in msgs)
    assert {r.id: r.body for r in rows} == {m["id"]: m["body"] for m in msgs}
    assert quotas.usage(tenant.name)["messages"] == len(msgs)  # each message counted once
    assert dead_count(settings, tenant) == 0


def test_a_row_cassandra_refuses_becomes_a_dead_letter_and_the_rest_land(stream_tenant: Any, platform: Any,
                                                                        settings: Settings, cassandra_session: Any,
                                                                        redis_client: redis.Redis) -> None:
    tenant = stream_tenant("tenant2")
    msgs = _comments(tenant, 300)
    poison = {**msgs[150], "id": "k" * 70_000}  # a partition key over 65,535 bytes
    payloads = [*encoded(msgs[:150]), (b"poison", json.dumps(poison).encode()), *encoded(msgs[150:])]
    p = platform(tenant)
    send(settings, tenant, payloads)
    rows = wait_rows(cassandra_session, tenant, len(msgs), p)
    wait_written(settings, tenant, p)
    letters = dead(settings, tenant, 1)
    assert len(rows) == len(msgs)
    assert [d.key for d in letters] == [b"poison"]
    headers = {k: v.decode() for k, v in letters[0].headers}
    assert headers["reason"] in ("rejected_by_cassandra", "unbindable"), headers
    assert headers["detail"]
    assert headers["source_topic"] == tenant.ingest_topic
    assert int(headers["source_offset"]) >= 0 and int(headers["source_partition"]) >= 0
    assert json.loads(letters[0].value)["id"] == poison["id"]  # the original payload
    assert not _failed_tasks(p)


def test_a_micro_batch_that_fails_in_the_worker_ends_as_dead_letters(stream_tenant: Any, platform: Any,
                                                                    settings: Settings,
                                                                    redis_client: redis.Redis) -> None:
    from mysimbdp_tasks.services.dispatch import Dispatch
    from mysimbdp_tasks.worker.celery_app import make_app

    tenant = stream_tenant("tenant2")
    p = platform(tenant)
    good = {"tenant": tenant.name, "created_utc": 1, "subreddit": "s", "id": "x", "author": "a", "body": "b"}
    entry = {"v": json.dumps(good), "k": "key", "p": 0, "o": 7, "n": 10}
    # A message without its payload is refused alone; a timestamp that is not a number breaks the
    # whole batch after its write: both are failures no retry can cure.
    refused_alone = {"messages": [entry, {"p": 0, "o": 8, "k": None}], "bridged_at": 0}
    broken = {"messages": [{**entry, "o": 9, "ts": "soon"}], "bridged_at": 0}
    dispatch = Dispatch(make_app(settings))
    ids = [f"{tenant.name}-stream-test-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    dispatch.send_messages(tenant.name, refused_alone, ids[0])
    dispatch.send_messages(tenant.name, broken, ids[1])
    letters = dead(settings, tenant, 2, timeout=120)
    reasons = {int(dict(d.headers)["source_offset"]): dict(d.headers)["reason"].decode() for d in letters}
    assert reasons == {8: "unusable_message", 9: "ingest_failed"}, p.logs()
    assert completions.done_among(redis_client, ids) == set(ids)
    assert not _failed_tasks(p)


@pytest.mark.chaos
@pytest.mark.timeout(1500)
def test_cassandra_away_mid_stream_then_everything_lands_and_no_task_failed(stream_tenant: Any, platform: Any,
                                                                           settings: Settings,
                                                                           redis_client: redis.Redis) -> None:
    tenant = stream_tenant("tenant2")
    msgs = _comments(tenant, 6000)
    p = platform(tenant)
    sender = send_in_background(settings, tenant, encoded(msgs), per_second=300)
    wait_counted(redis_client, tenant, 1000)
    stack.down(settings, services=("cassandra",), echo=lambda _: None)
    time.sleep(40)  # tasks meet a dead Cassandra (and fresh pool processes cannot connect): they wait
    lag_while_down = bridge_lag(settings, tenant)
    stack.up(settings, services=("cassandra",), echo=lambda _: None)
    sender.join()
    # A fresh session: the shared one may be in the driver's reconnection backoff (minutes) by now.
    cluster, session = db.connect(settings)
    try:
        rows = wait_rows(session, tenant, len(msgs), p, timeout=600)
    finally:
        cluster.shutdown()
    wait_written(settings, tenant, p, timeout=120)
    assert lag_while_down > 0  # nothing was committed past what Cassandra had not written
    assert sorted(_keys(rows)) == sorted((m["subreddit"], m["id"], m["author"]) for m in msgs)
    assert dead_count(settings, tenant) == 0
    assert Quotas(redis_client).usage(tenant.name)["messages"] == len(msgs)
    assert not _failed_tasks(p)


def test_a_task_the_broker_lost_is_sent_again_and_lands(stream_tenant: Any, platform: Any, settings: Settings,
                                                       cassandra_session: Any, redis_client: redis.Redis) -> None:
    tenant = stream_tenant("tenant2")
    msgs = _comments(tenant, 2000)
    p = platform(tenant, worker=False)  # the tasks wait in the queue
    send(settings, tenant, encoded(msgs))
    queue = tenant.stream_queue
    deadline = time.monotonic() + 120
    while redis_client.llen(queue) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    found = redis_client.lindex(queue, 0)  # the first micro-batch (2,000 messages may make only one)
    assert isinstance(found, bytes)
    raw = found.decode()
    assert redis_client.lrem(queue, 1, raw) == 1  # lost, as in kombu's BRPOP window
    lost_id = json.loads(raw)["headers"]["id"]
    bridge_log = p.home / "logs" / "bridge.log"
    deadline = time.monotonic() + 120
    while lost_id not in bridge_log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    p.start_worker()
    rows = wait_rows(cassandra_session, tenant, len(msgs), p)
    wait_written(settings, tenant, p)
    assert lost_id in bridge_log.read_text(errors="replace")  # "... task <id> ... sending it again"
    assert sorted(_keys(rows)) == sorted((m["subreddit"], m["id"], m["author"]) for m in msgs)
    assert Quotas(redis_client).usage(tenant.name)["messages"] == len(msgs)


def test_a_new_daily_limit_is_taken_up_without_restarting_the_bridge(stream_tenant: Any, platform: Any,
                                                                    settings: Settings, cassandra_session: Any,
                                                                    redis_client: redis.Redis) -> None:
    tenant = stream_tenant("tenant2", max_messages_per_day=50)
    msgs = _comments(tenant, 200)
    p = platform(tenant)
    send(settings, tenant, encoded(msgs[:100]))
    refused = {json.loads(d.value)["id"] for d in dead(settings, tenant, 50)}
    assert len(refused) == 50  # the day's quota is spent
    topped = tenants.parse({tenant.name: {**tenant.raw, "max_messages_per_day": 150}})[tenant.name]
    Registry(redis_client).save(topped)  # `mysimbdp tenants apply` with the new limit
    bridge_log = p.home / "logs" / "bridge.log"
    deadline = time.monotonic() + 60
    while "max_messages_per_day 50 -> 150" not in bridge_log.read_text(errors="replace"):
        assert time.monotonic() < deadline, p.logs()
        time.sleep(0.5)
    send(settings, tenant, encoded(msgs[100:]))
    rows = wait_rows(cassandra_session, tenant, 150, p)
    wait_written(settings, tenant, p)
    landed = {r.id for r in rows}
    assert len(rows) == 150
    assert {m["id"] for m in msgs[100:]} <= landed  # every one sent after the top-up
    assert landed | refused == {m["id"] for m in msgs} and not landed & refused
    assert dead_count(settings, tenant) == 50
    assert Quotas(redis_client).usage(tenant.name)["messages"] == 150


def test_a_replay_gets_the_verdict_of_its_first_time_whatever_the_day_or_the_limit(
        redis_client: redis.Redis) -> None:
    quotas = Quotas(redis_client)
    tenant = "v" + uuid.uuid4().hex[:10]
    day1, day2, day3 = "2031-03-01", "2031-03-02", "2031-03-03"

    def at(first: int, last: int, partition: int = 0) -> list[tuple[int, int]]:
        return [(partition, o) for o in range(first, last + 1)]

    try:
        first = quotas.reserve_messages(tenant, 5, at(0, 9), day=day1)
        assert first == [True] * 5 + [False] * 5
        # Just after midnight: yesterday's refused messages stay refused, for free.
        assert quotas.reserve_messages(tenant, 5, at(0, 9), day=day2) == first
        assert quotas.usage(tenant, day2)["messages"] == 0
        # A top-up the same day admits what comes next; a replay keeps every verdict as given.
        topped = quotas.reserve_messages(tenant, 8, at(10, 14), day=day1)
        assert topped == [True, True, True, False, False]
        assert quotas.reserve_messages(tenant, 1, at(0, 14), day=day1) == first + topped
        assert quotas.reserve_messages(tenant, 100, at(0, 14), day=day3) == first + topped
        assert quotas.usage(tenant, day1)["messages"] == 8
        # A new day admits again; partitions are decided apart.
        assert quotas.reserve_messages(tenant, 2, at(15, 17) + at(0, 1, partition=1), day=day2) == [
            True, True, False, False, False]
        assert quotas.reserve_messages(tenant, 50, at(12, 17), day=day3) == [True, False, False, True, True, False]
        assert quotas.usage(tenant, day2)["messages"] == 2
        assert quotas.usage(tenant, day3)["messages"] == 0
    finally:
        redis_client.delete(names.stream_hw_key(tenant), names.stream_runs_key(tenant),
                            *(usage_key(tenant, d) for d in (day1, day2, day3)))


@pytest.mark.timeout(60)
def test_a_replayed_offset_range_is_charged_once_and_an_overlapping_one_only_for_its_new_offsets(
        redis_client: redis.Redis) -> None:
    quotas = Quotas(redis_client)
    tenant = "r" + uuid.uuid4().hex[:10]
    day = "2031-04-01"
    try:
        first = quotas.reserve_ranges(tenant, 5, [(0, 0, 9), (1, 100, 101)], day=day)
        assert first == [[(0, True), (5, False)], [(100, False)]]
        assert quotas.reserve_ranges(tenant, 50, [(0, 0, 9), (1, 100, 101)], day=day) == first
        assert quotas.usage(tenant, day)["messages"] == 5
        # Overlapping the decided offsets: those keep their verdicts, the new ones are decided now.
        assert quotas.reserve_ranges(tenant, 50, [(0, 3, 14)], day=day) == [[(3, True), (5, False), (10, True)]]
        assert quotas.usage(tenant, day)["messages"] == 10
    finally:
        redis_client.delete(names.stream_hw_key(tenant), names.stream_runs_key(tenant), usage_key(tenant, day))
