"""Sinks per tenant, end to end on the real stack: a file and a stream land in the tenant's table, a
second Cassandra table, a Kafka topic and a Parquet lake with the same rows; a message's ``"sink"``
subset goes only where it says; a Kafka sink whose topic is gone catches up after, with no key twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kit import DATA, ROOT, SHIPPED, Platform, table_rows
from streamkit import dead, encoded, send

from mysimbdp_tasks.core import sinks
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import provisioning, topics
from producers.batch import wrangle

pytestmark = pytest.mark.integration

SINKS = [
    {"name": "by_author", "kind": "cassandra", "table": "votes_by_author", "key": "((author), subreddit, id, ups)"},
    {"name": "feed", "kind": "kafka"},
    {"name": "lake", "kind": "files", "format": "parquet", "max_rows": 300},
]
Key = tuple[str, str, int]


@pytest.fixture
def platform(stream_tenant: Any, settings: Settings, tmp_path: Path) -> Any:
    started: list[Platform] = []

    def start() -> Platform:
        tenant = stream_tenant("tenant1", sinks=SINKS, file_type=[".json", ".parquet"])
        p = Platform(settings, tenant, tmp_path / "home")
        p.start_worker()
        p.start_watcher()
        p.start_bridge()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def _message(i: int, **extra: Any) -> dict[str, Any]:
    return {"created_utc": 1430458939 + i, "ups": i, "subreddit": "sinks", "id": f"m{i}", "author": f"a{i % 7}",
            "score": i, **extra}


def _key(row: Any) -> Key:
    return (row["subreddit"], row["id"], int(row["ups"]))


def table_keys(session: Any, tenant: Tenant) -> set[Key]:
    return {(r.subreddit, r.id, r.ups) for r in table_rows(session, tenant)}


def second_table_keys(session: Any, tenant: Tenant) -> set[Key]:
    rows = session.execute(f'SELECT subreddit, id, ups FROM "{tenant.namespace}"."votes_by_author"', timeout=60)
    return {(r.subreddit, r.id, r.ups) for r in rows}


def topic_keys(settings: Settings, tenant: Tenant) -> list[Key]:
    """Every row on the feed topic, by its dedupe key (repeats kept, to be counted)."""
    consumer = KafkaConsumer(sinks.topic(tenant.name, "feed"), bootstrap_servers=settings.kafka_bootstrap_str,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=2000)
    try:
        got = []
        for record in consumer:
            row = json.loads(record.value)
            assert json.loads(record.key) == [row["subreddit"], row["id"], row["ups"]] == json.loads(row["_key"])
            got.append(_key(row))
        return got
    finally:
        consumer.close()


def lake_keys(home: Path, tenant: Tenant) -> list[Key]:
    folder = home / "lake" / tenant.name / "lake"
    assert not list(folder.rglob(".*.tmp")), "a part file was left half-written"
    return [_key(row) for part in sorted(folder.glob("date=*/part-*.parquet"))
            for row in pq.read_table(part).to_pylist()]


def wait_for(what: str, check: Callable[[], bool], platform: Platform, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        platform.check_alive()
        time.sleep(1)
    raise TimeoutError(f"{what} not reached after {timeout} s; logs:\n{platform.logs()}")


def test_a_file_and_a_stream_land_in_every_sink_with_equal_row_sets(platform: Any, settings: Settings,
                                                                    cassandra_session: Any) -> None:
    p = platform()
    tenant = p.tenant
    name = p.stage(DATA / "1000rows.json", f"{tenant.name}-votes.json")
    _, receipt = p.final(name)
    assert receipt["status"] == "done" and receipt["rows_ok"] > 900
    assert {n: s["status"] for n, s in receipt["sinks"].items()} == dict.fromkeys(sinks.names(tenant.sinks),
                                                                                  "delivered")
    assert all(s["delivered"] == receipt["rows_ok"] for s in receipt["sinks"].values())
    send(settings, tenant, encoded([_message(i) for i in range(200)]))

    wait_for("the stream's rows in the table", lambda: len(table_keys(cassandra_session, tenant))
             >= receipt["rows_ok"] + 200, p)
    want = table_keys(cassandra_session, tenant)
    assert {("sinks", f"m{i}", i) for i in range(200)} <= want
    wait_for("every sink holding the table's rows", lambda: second_table_keys(cassandra_session, tenant) == want
             and set(topic_keys(settings, tenant)) == want and set(lake_keys(p.home, tenant)) == want, p)
    feed, lake = topic_keys(settings, tenant), lake_keys(p.home, tenant)
    assert len(feed) == len(lake) == len(want)  # each row once: nothing repeated
    dates = {part.parent.name for part in (p.home / "lake" / tenant.name / "lake").glob("date=*/part-*.parquet")}
    assert all(d.startswith("date=20") for d in dates)


def test_a_parquet_file_lands_in_every_sink(platform: Any, settings: Settings, cassandra_session: Any,
                                            tmp_path: Path) -> None:
    p = platform()
    tenant = p.tenant
    src = wrangle("tenant1", DATA / "1000rows3.json", tmp_path, fmt="parquet").path
    _, receipt = p.final(p.stage(src, f"{tenant.name}-votes.parquet"))
    assert receipt["status"] == "done" and receipt["rows_ok"] > 900
    assert all(s["status"] == "delivered" for s in receipt["sinks"].values())
    want = table_keys(cassandra_session, tenant)
    assert len(want) == receipt["rows_ok"]
    assert second_table_keys(cassandra_session, tenant) == want
    assert set(topic_keys(settings, tenant)) == set(lake_keys(p.home, tenant)) == want


def test_a_message_goes_only_to_the_sinks_it_names(platform: Any, settings: Settings, cassandra_session: Any) -> None:
    p = platform()
    tenant = p.tenant
    to_feed = [_message(i, sink=["feed"]) for i in range(20)]
    to_table_and_lake = [_message(i, sink=["table", "lake"]) for i in range(20, 40)]
    to_all = [_message(i) for i in range(40, 50)]
    unknown = [_message(99, sink=["nowhere"])]
    send(settings, tenant, encoded(to_feed + to_table_and_lake + to_all + unknown))

    def keys(msgs: list[dict[str, Any]]) -> set[Key]:
        return {_key(m) for m in msgs}

    wait_for("every sink's rows", lambda: set(topic_keys(settings, tenant)) == keys(to_feed + to_all)
             and set(lake_keys(p.home, tenant)) == keys(to_table_and_lake + to_all)
             and table_keys(cassandra_session, tenant) == keys(to_table_and_lake + to_all)
             and second_table_keys(cassandra_session, tenant) == keys(to_all), p)
    (letter,) = dead(settings, tenant, 1)
    assert dict(letter.headers)["reason"] == b"unknown_sink"
    assert json.loads(letter.value)["id"] == "m99"


def test_kafka_sink_away_the_others_land_and_it_catches_up_without_duplicates(platform: Any, settings: Settings,
                                                                               cassandra_session: Any) -> None:
    p = platform()
    tenant = p.tenant
    topic = sinks.topic(tenant.name, "feed")
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    wait_for("the feed topic gone", lambda: topic not in _topic_names(settings), p, timeout=60)

    name = p.stage(DATA / "1000rows2.json", f"{tenant.name}-votes.json")
    _, receipt = p.final(name)
    assert receipt["status"] == "done"
    assert receipt["sinks"]["feed"]["status"] == "pending"  # waiting for its topic, on its own
    assert receipt["sinks"]["by_author"]["status"] == receipt["sinks"]["lake"]["status"] == "delivered"
    want = table_keys(cassandra_session, tenant)
    assert len(want) == receipt["rows_ok"]
    assert second_table_keys(cassandra_session, tenant) == want
    assert set(lake_keys(p.home, tenant)) == want

    topics.ensure(settings, [tenant])  # the topic is back: the waiting rows go
    wait_for("the feed catching up", lambda: set(topic_keys(settings, tenant)) == want, p)
    feed = topic_keys(settings, tenant)
    assert len(set(feed)) == len(want)  # every key, each counted once by its dedupe key


def _topic_names(settings: Settings) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_apply_creates_the_sinks_table_and_topic_and_remove_drops_them(settings: Settings, cassandra_session: Any,
                                                                      tmp_path: Path) -> None:
    name = "t" + uuid.uuid4().hex[:10]
    config = tmp_path / "tenants.json"
    config.write_text(json.dumps({name: {**SHIPPED["tenant1"], "namespace": f"test_{name}", "sinks": SINKS}}))

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *argv], capture_output=True, text=True,
                              env={**os.environ, "MYSIMBDP_HOME": str(tmp_path / "home")}, cwd=ROOT, timeout=240)

    applied = cli("tenants", "apply", str(config))
    assert applied.returncode == 0, applied.stderr
    keys = provisioning.table_columns(cassandra_session, f"test_{name}", "votes_by_author")
    assert {c: kind for c, (_, kind, _) in keys.items() if kind != "regular"} == {
        "author": "partition_key", "subreddit": "clustering", "id": "clustering", "ups": "clustering"}
    assert sinks.topic(name, "feed") in _topic_names(settings)
    removed = cli("tenants", "remove", name, "--drop-data")
    assert removed.returncode == 0, removed.stderr
    assert sinks.topic(name, "feed") not in _topic_names(settings)


def test_rows_the_quality_rules_refuse_reach_no_sink(stream_tenant: Any, settings: Settings, tmp_path: Path,
                                                    cassandra_session: Any) -> None:
    rules = {"popular": {"column": "ups", "min": 50, "action": "refuse"}}
    tenant = stream_tenant("tenant1", sinks=SINKS, quality=rules)
    p = Platform(settings, tenant, tmp_path / "home")
    try:
        p.start_worker()
        p.start_watcher()
        name = p.stage(DATA / "1000rows.json", f"{tenant.name}-votes.json")
        _, receipt = p.final(name)
        assert receipt["status"] == "done" and receipt["rows_refused"] > 0
        failed = receipt["quality"]["rules"]["popular"]["failed"]
        assert failed > 0 and sum(r["reason"] == "quality:popular" for r in receipt["refusals"]) == failed
        landed = table_keys(cassandra_session, tenant)
        assert len(landed) == receipt["rows_ok"] and min(ups for _, _, ups in landed) >= 50
        wait_for("every sink", lambda: len(set(topic_keys(settings, tenant))) == len(landed), p)
        assert second_table_keys(cassandra_session, tenant) == landed
        assert set(topic_keys(settings, tenant)) == landed
        assert sorted(lake_keys(p.home, tenant)) == sorted(landed)  # each landed row once in the lake
    finally:
        p.stop()
