"""The tenants' stream client app without a broker: wrangling, keys, cycling and pacing."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core.errors import TenantError
from producers import awkward, samples, stream
from producers.pacing import TokenBucket
from producers.readers import InputError
from producers.stream import encode, key_for, message_for, records_for

pytestmark = pytest.mark.unit

T1_FIELDS = ["created_utc", "ups", "subreddit", "id", "author", "score", "tenant"]
T2_FIELDS = ["created_utc", "subreddit", "id", "author", "body", "tenant"]


@pytest.fixture(scope="module")
def data() -> Path:
    return samples.default_dir()


def _decoded(message: dict[str, Any]) -> dict[str, Any]:
    wire = encode(message)
    assert isinstance(wire, bytes)
    result: dict[str, Any] = json.loads(wire.decode("utf-8"))
    return result


def _write_csv(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)


# --- wrangling ----------------------------------------------------------------------------------


def test_tenant1_messages_keep_exactly_six_fields_and_the_tenant(data: Path) -> None:
    source = json.loads((data / "1000rows.json").read_text(encoding="utf-8"))
    messages = [_decoded(message_for("tenant1", r)) for r in records_for("tenant1", [data / "1000rows.json"])]
    assert len(messages) == len(source) == 1000
    assert all(list(m) == T1_FIELDS for m in messages)
    assert messages == [{**{k: r[k] for k in T1_FIELDS[:-1]}, "tenant": "tenant1"} for r in source]
    assert isinstance(messages[0]["created_utc"], int) and isinstance(messages[0]["ups"], int)


def test_tenant2_messages_keep_five_columns_with_bodies_byte_for_byte(data: Path) -> None:
    src = data / "10000rows.csv"
    with open(src, encoding="utf-8", newline="") as f:
        source = list(csv.DictReader(f))
    messages = [_decoded(message_for("tenant2", r)) for r in records_for("tenant2", [src])]
    assert len(messages) == len(source) == 10_000
    assert all(list(m) == T2_FIELDS for m in messages)
    assert [m["body"].encode() for m in messages] == [r["body"].encode() for r in source]
    assert [(m["subreddit"], m["id"], m["author"]) for m in messages] == [
        (r["subreddit"], r["id"], r["author"]) for r in source]
    # CSV has no types: epoch seconds become a JSON number
    assert [m["created_utc"] for m in messages] == [int(r["created_utc"]) for r in source]
    assert all(m["tenant"] == "tenant2" for m in messages)
    assert sum(any(c in m["body"] for c in "[](){}") for m in messages) > 1000


def test_awkward_tenant2_bodies_round_trip_byte_for_byte(data: Path, tmp_path: Path) -> None:
    records = json.loads((data / "1000rows.json").read_text(encoding="utf-8"))[:300]
    bodies = awkward.pool(random.Random(5), [r["body"] for r in records], size=200)
    bodies += [frag for frags in awkward.FRAGMENTS.values() for frag in frags]
    bodies += ["[link](http://x.org/Foo_(bar))\n\n> quote\r\nend", "bare\rcarriage", "\u0000nul", "", "\n"]
    rows = [{**records[i % len(records)], "id": f"a{i}", "body": body} for i, body in enumerate(bodies)]
    src = tmp_path / "awkward.csv"
    _write_csv(src, rows)

    messages = [_decoded(message_for("tenant2", r)) for r in records_for("tenant2", [src])]

    assert [m["body"].encode("utf-8") for m in messages] == [b.encode("utf-8") for b in bodies]
    assert [m["id"] for m in messages] == [r["id"] for r in rows]


def test_a_timestamp_as_text_stays_text_and_a_missing_field_is_null() -> None:
    record = {"created_utc": "2015-05-01 05:42:19", "subreddit": "x", "id": "c1", "body": "b"}
    assert message_for("tenant2", record) == {"created_utc": "2015-05-01 05:42:19", "subreddit": "x", "id": "c1",
                                              "author": None, "body": "b", "tenant": "tenant2"}


def test_the_message_tenant_is_the_sending_tenant_whatever_the_record_says() -> None:
    record = {"created_utc": 1, "subreddit": "x", "id": "c1", "author": "a", "body": "b", "tenant": "tenant1"}
    assert message_for("tenant2", record)["tenant"] == "tenant2"


def test_an_unknown_tenant_is_refused() -> None:
    with pytest.raises(TenantError, match="unknown tenant 'tenant3'"):
        message_for("tenant3", {})


def test_messages_are_compact_utf8_json_and_a_lone_surrogate_still_round_trips() -> None:
    message = {"subreddit": "x", "id": "c1", "body": "café 😀 \"q\" [a](b)\n", "tenant": "tenant2"}
    wire = encode(message)
    assert "café 😀".encode() in wire  # UTF-8, not \u escapes
    assert b", " not in wire.replace(b"(b)", b"")
    odd = {"subreddit": "x", "id": "c1", "author": "\ud83d", "tenant": "tenant1"}
    assert json.loads(encode(odd)) == odd


def test_keys_are_the_partition_key_of_the_tenant_tables() -> None:
    message = message_for("tenant2", {"subreddit": "AskReddit", "id": "cqug90j", "body": "x"})
    assert key_for(message) == b"AskReddit/cqug90j"
    assert key_for(message_for("tenant1", {"subreddit": "ñandú", "id": "c-r2"})) == "ñandú/c-r2".encode()
    assert key_for({"subreddit": None, "id": "c1"}) == b"/c1"


# --- cycling -----------------------------------------------------------------------------------


def test_one_pass_without_a_count(data: Path) -> None:
    ids = [r["id"] for r in records_for("tenant2", [data / "1000rows.csv", data / "1000rows2.csv"])]
    assert len(ids) == 2000


def test_a_count_below_the_inputs_stops_early(data: Path) -> None:
    assert len(list(records_for("tenant1", [data / "1000rows.json"], count=10))) == 10
    assert list(records_for("tenant1", [data / "1000rows.json"], count=0)) == []


def test_cycling_gives_repeated_records_fresh_ids(data: Path) -> None:
    src = data / "1000rows.csv"
    first = [r["id"] for r in records_for("tenant2", [src])]
    records = list(records_for("tenant2", [src], count=2500))
    ids = [r["id"] for r in records]
    assert len(ids) == 2500
    assert ids[:1000] == first
    assert ids[1000:2000] == [f"{i}-r2" for i in first]
    assert ids[2000:] == [f"{i}-r3" for i in first[:500]]
    assert len(set(ids)) == 2500
    assert [r["body"] for r in records[1000:2000]] == [r["body"] for r in records[:1000]]
    assert key_for(message_for("tenant2", records[1000])).endswith(b"-r2")


def test_cycling_over_inputs_without_records_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="no records in"):
        list(records_for("tenant1", [empty], count=5))


def test_a_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.csv: cannot open"):
        list(records_for("tenant2", [tmp_path / "missing.csv"]))


# --- pacing ------------------------------------------------------------------------------------


def _simulate(bucket: TokenBucket, seconds: float, start: float = 0.0) -> tuple[int, int]:
    """Send as fast as the bucket allows on a fake clock; return (messages sent, sleeps)."""
    now, sent, sleeps = start, 0, 0
    while True:
        wait = bucket.take(now)
        if wait > 0:
            now += wait
            sleeps += 1
            if now > start + seconds:
                return sent, sleeps
        else:
            sent += 1


def test_the_bucket_holds_the_rate_with_a_bounded_burst() -> None:
    bucket = TokenBucket(2000, now=0.0)
    sent, sleeps = _simulate(bucket, 10.0)
    # 10 s at 2,000/s plus the initial burst (0.1 s worth), within one tick
    assert 20_000 + 200 - 10 <= sent <= 20_000 + 200 + 10
    # one wake-up per 5 ms tick, not one sleep per message
    assert sleeps <= 10.0 / 0.005 + 1
    assert sent / sleeps >= 9


def test_an_idle_bucket_does_not_save_up_more_than_the_burst() -> None:
    bucket = TokenBucket(100, now=0.0, burst=5)
    sent, _ = _simulate(bucket, 0.0)
    assert sent == 5
    assert bucket.take(1000.0) == 0.0  # after a long idle time: 5 tokens again, not 100,000
    assert sum(bucket.take(1000.0) == 0.0 for _ in range(10)) == 4


def test_a_slow_rate_waits_for_whole_messages() -> None:
    bucket = TokenBucket(0.5, now=0.0)
    assert bucket.take(0.0) == 0.0
    assert bucket.take(0.0) == pytest.approx(2.0)
    assert bucket.take(1.0) == pytest.approx(1.0)
    assert bucket.take(2.0) == 0.0


def test_a_bucket_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        TokenBucket(0, now=0.0)


# --- producer settings -------------------------------------------------------------------------


def test_the_producer_waits_for_all_replicas_and_keeps_order_per_key() -> None:
    config = stream.producer_config("a:9092, b:9093", "tenant2")
    assert config["bootstrap_servers"] == ["a:9092", "b:9093"]
    assert config["acks"] == "all"
    # order per key: idempotence (at most 5 in flight), or a single request in flight without it
    if config.get("enable_idempotence"):
        assert config["max_in_flight_requests_per_connection"] <= 5
    else:
        assert config["max_in_flight_requests_per_connection"] == 1
    assert config["compression_type"] in (None, "lz4")
