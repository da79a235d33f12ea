"""Dead letters read back from a dead topic, and which ones a `dead` command chooses."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from mysimbdp_tasks.cli import build_parser
from mysimbdp_tasks.core import deadletters
from mysimbdp_tasks.services.replay import lineage, replay_headers

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def record(offset: int, reason: str = "bad_json", ts: datetime = NOW, **headers: str) -> Any:
    h = [("reason", reason.encode()), ("detail", b"line 1"), ("tenant", b"t1"),
         ("source_topic", b"t1.ingest"), ("source_partition", b"2"), ("source_offset", str(offset * 10).encode())]
    h += [(k, v.encode()) for k, v in headers.items()]
    return SimpleNamespace(partition=1, offset=offset, timestamp=int(ts.timestamp() * 1000), key=b"k",
                           value=b'{"id": "x", \xff', headers=h)


def test_a_letter_keeps_the_payload_byte_for_byte_and_names_where_it_came_from() -> None:
    item = deadletters.letter(record(7, "daily_messages_exceeded"))
    assert item.ref == "1:7" and item.reason == "daily_messages_exceeded"
    assert item.value == b'{"id": "x", \xff' and item.source == "t1.ingest:2:70"
    assert item.to_dict(payload=True)["value"] == '{"id": "x", \\xff'
    assert item.at == "2026-12-06T12:00:00+00:00"


def test_a_letter_without_headers_is_still_read() -> None:
    bare = SimpleNamespace(partition=0, offset=3, timestamp=None, key=None, value=None, headers=[])
    item = deadletters.letter(bare)
    assert (item.reason, item.source, item.replay_of, item.to_dict()["bytes"]) == ("unknown", "", "", 0)


def test_choice_by_reason_time_and_ref_all_must_hold() -> None:
    letters = [deadletters.letter(record(1, "bad_json", datetime(2026, 12, 6, 8, tzinfo=UTC))),
               deadletters.letter(record(2, "daily_messages_exceeded", datetime(2026, 12, 6, 11, tzinfo=UTC))),
               deadletters.letter(record(3, "daily_messages_exceeded", datetime(2026, 12, 6, 9, tzinfo=UTC)))]
    pick = deadletters.choose
    assert [x.ref for x in pick(letters, deadletters.Choice())] == ["1:1", "1:2", "1:3"]
    quota = deadletters.Choice(reasons=frozenset({"daily_messages_exceeded"}))
    assert [x.ref for x in pick(letters, quota)] == ["1:2", "1:3"]
    recent = deadletters.Choice(reasons=quota.reasons, since=deadletters.parse_since("2h", NOW))
    assert [x.ref for x in pick(letters, recent)] == ["1:2"]
    assert [x.ref for x in pick(letters, deadletters.Choice(refs=frozenset({"1:3"})))] == ["1:3"]


@pytest.mark.parametrize(("text", "want"), [("30m", datetime(2026, 12, 6, 11, 30, tzinfo=UTC)),
                                        ("1d", datetime(2026, 12, 5, 12, tzinfo=UTC)),
                                        ("2026-12-06T08:00:00Z", datetime(2026, 12, 6, 8, tzinfo=UTC)),
                                        ("2026-12-06 08:00", datetime(2026, 12, 6, 8, tzinfo=UTC))])
def test_since_is_a_duration_back_or_an_iso_time(text: str, want: datetime) -> None:
    assert deadletters.parse_since(text, NOW) == want


@pytest.mark.parametrize("text", ["yesterday", "-2h", "2w", "", "12:00:00:00"])
def test_since_refuses_anything_else_saying_what_it_expects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        deadletters.parse_since(text, NOW)


@pytest.mark.parametrize("text", ["1", "a:b", "1:-2", "1:2:3", " : "])
def test_a_ref_is_partition_colon_offset(text: str) -> None:
    with pytest.raises(ValueError, match="<partition>:<offset>"):
        deadletters.parse_ref(text)
    assert deadletters.parse_ref(" 02:0042 ") == "2:42"


def test_cli_refuses_a_bad_since_or_ref_with_exit_2(capsys: Any) -> None:
    for argv in (["dead", "list", "--tenant", "t1", "--since", "soon"], ["dead", "show", "--tenant", "t1", "x"]):
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(argv)
        assert stop.value.code == 2
    assert "expected" in capsys.readouterr().err


def test_a_replayed_message_names_its_dead_letter_and_refusals_link_back() -> None:
    item = deadletters.letter(record(5, "daily_messages_exceeded"))
    assert dict(replay_headers("t1", item)) == {"replay_of": b"t1.dead:1:5",
                                                "replay_reason": b"daily_messages_exceeded"}
    log: dict[str, dict[str, Any]] = {"1:5": {"state": "sent", "ingest_partition": 0, "ingest_offset": 99},
                                      "1:6": {"state": "sending"}}
    assert lineage(log, "t1") == {"t1.ingest:0:99": "1:5"}


def test_a_letter_too_big_for_kafka_keeps_what_fits_with_the_originals_size_and_hash() -> None:
    from mysimbdp_tasks.services.deadletters import MAX_LETTER_BYTES, DeadLetter, fitted, headers

    small = DeadLetter(partition=2, offset=9, key=b"k", value=b'{"id": 1', reason="bad_json", detail="line 1")
    assert fitted(small.key, small.value, headers("t1", small)) == (b"k", b'{"id": 1', headers("t1", small))
    value = b"x" * 1_048_400  # as much as a tenant's client may send
    big = DeadLetter(partition=2, offset=10, key=b"k" * 500, value=value, reason="bad_json", detail="d" * 10_000)
    key, cut, heads = fitted(big.key, big.value, headers("t1", big))
    assert key is not None and key == big.key and cut is not None and value.startswith(cut)
    assert len(key) + len(cut) + sum(len(k) + len(v) for k, v in heads) <= MAX_LETTER_BYTES
    extra = dict(heads)
    assert extra["value_bytes"] == b"1048400" and extra["value_sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert len(extra["detail"]) == 2_000
    item = deadletters.letter(SimpleNamespace(partition=0, offset=4, timestamp=0, key=key, value=cut, headers=heads))
    assert item.cut_from == 1_048_400 and item.to_dict()["cut_from_bytes"] == 1_048_400
