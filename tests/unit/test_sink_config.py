"""A tenant's sinks: the config is validated with errors naming the sink and field, a message's
``"sink"`` subset is checked, and deliveries carry a dedupe key and fixed part names."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core import deliveries, sinks, tenants
from mysimbdp_tasks.core.errors import ConfigError, RowError, UnknownSinkError
from mysimbdp_tasks.core.rows import converter_for
from mysimbdp_tasks.stream.messages import check

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = json.loads((ROOT / "tenants" / "tenants.json").read_text())["tenant1"]
SINKS = [
    {"name": "by_author", "kind": "cassandra", "table": "votes_by_author", "key": "((author), id, ups)"},
    {"name": "feed", "kind": "kafka", "partitions": 2},
    {"name": "archive", "kind": "files", "format": "parquet", "max_rows": 1000},
]


def _tenant(sink_list: Any) -> tenants.Tenant:
    raw = copy.deepcopy(BASE)
    raw["sinks"] = sink_list
    return tenants.parse({"tenant1": raw})["tenant1"]


def _problems(sink_list: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _tenant(sink_list)
    return str(info.value)


def test_without_sinks_the_tenant_has_only_its_table() -> None:
    tenant = tenants.parse({"tenant1": copy.deepcopy(BASE)})["tenant1"]
    assert tenant.sinks == ()
    assert sinks.names(tenant.sinks) == ("table",)


def test_three_kinds_parse_with_their_settings() -> None:
    by_author, feed, archive = _tenant(SINKS).sinks
    assert (by_author.kind, by_author.table) == ("cassandra", "votes_by_author")
    assert by_author.key is not None and by_author.key.partition == ("author",)
    assert (feed.kind, feed.partitions, sinks.topic("tenant1", feed.name)) == ("kafka", 2, "tenant1.out.feed")
    assert (archive.kind, archive.format, archive.max_rows) == ("files", "parquet", 1000)


@pytest.mark.parametrize(("sink_list", "expected"), [
    ({"name": "x"}, "tenant1.sinks: expected a list"),
    ([{"name": "feed", "kind": "kafak"}], "tenant1.sinks.feed.kind: expected one of cassandra, kafka, files"),
    ([{"name": "Bad-Name", "kind": "kafka"}], "tenant1.sinks[0].name"),
    ([{"name": "c", "kind": "cassandra", "key": "((autor), id)"}], "tenant1.sinks.c.key: column 'autor'"),
    ([{"name": "c", "kind": "cassandra", "table": "comment_votes"}], "tenant1.sinks.c.table: table 'comment_votes'"),
    ([{"name": "a", "kind": "files", "format": "csv"}], "tenant1.sinks.a.format: expected one of parquet, jsonl"),
    ([{"name": "a", "kind": "files", "max_rows": 0}], "tenant1.sinks.a.max_rows: expected a positive integer"),
    ([{"name": "f", "kind": "kafka", "table": "t"}], "tenant1.sinks.f.table: unknown setting for a kafka sink"),
    ([{"name": "f", "kind": "kafka"}, {"name": "f", "kind": "files"}], "tenant1.sinks.f.name: 'f' is already"),
    ([{"name": "table", "kind": "kafka"}], "tenant1.sinks.table.name: 'table' is already"),
    ([{"name": "m", "kind": "cassandra", "table": "batch_ingestion_metrics"}],
     "tenant1.sinks.m.table: 'batch_ingestion_metrics' is one of the platform's metrics tables"),
    ([{"name": "c", "kind": "cassandra", "key": "((id, id))"}], "tenant1.sinks.c.key: names a column more than once"),
    ([{"name": "f", "kind": "kafka", "partitions": 10**9}], "tenant1.sinks.f.partitions: expected a positive integer"),
    ([{"name": "f\n", "kind": "kafka"}], "tenant1.sinks[0].name"),
])
def test_mistakes_name_the_sink_and_field(sink_list: Any, expected: str) -> None:
    assert expected in _problems(sink_list)


def test_route_picks_a_subset_and_refuses_unknown_names() -> None:
    specs = _tenant(SINKS).sinks
    assert sinks.route({"id": "a"}, specs) is None
    assert sinks.route({"sink": ["feed", "table"]}, specs) == frozenset({"feed", "table"})
    assert sinks.route({"sink": "archive"}, specs) == frozenset({"archive"})
    for bad in (["nope"], [], [3], {"a": 1}):
        with pytest.raises(UnknownSinkError):
            sinks.route({"sink": bad}, specs)


def test_bridge_dead_letters_a_message_naming_an_unknown_sink() -> None:
    tenant = _tenant(SINKS)
    good = {"created_utc": 1430458939, "ups": 3, "subreddit": "a", "id": "b", "author": "c", "score": 3}
    assert check(tenant, converter_for(tenant), {**good, "sink": ["feed"]})[1] == ""
    data, reason, detail = check(tenant, converter_for(tenant), {**good, "sink": ["fed"]})
    assert (data, reason) == (None, "unknown_sink")
    assert "'fed'" in detail and "tenant1" in detail


def test_rows_leave_converted_with_their_primary_key_as_dedupe_key() -> None:
    tenant = _tenant(SINKS)
    record = {"created_utc": 1430458939, "ups": "7", "subreddit": "s", "id": "x", "author": "c", "score": 3,
              "sink": ["feed"], "extra": 1}
    (row,) = deliveries.json_rows(converter_for(tenant), tenant.key.columns, [record])
    assert row["ups"] == 7 and "sink" not in row and "extra" not in row
    assert dt.datetime.fromisoformat(row["created_utc"]) == dt.datetime.fromtimestamp(1430458939, dt.UTC)
    assert json.loads(row["_key"]) == ["s", "x", 7]


def test_tee_keeps_the_records_the_writer_accepted() -> None:
    tenant = _tenant(SINKS)
    tee = deliveries.Tee(converter_for(tenant))
    good = {"created_utc": 1, "ups": 1, "subreddit": "s", "id": "a"}
    tee.convert(good)
    with pytest.raises(RowError):
        tee.convert({**good, "id": ""})  # refused before the writer: not kept
    tee.convert_fields(["subreddit", "id", "ups"], ["s", "b", "2"])
    assert [r["id"] for r in deliveries.accepted(tee.records, [0])] == ["b"]


def test_part_names_are_fixed_by_origin_and_rotate_by_rows() -> None:
    assert deliveries.part_names("ing-0", 2500, 1000, "parquet") == [
        "part-ing-0-0000.parquet", "part-ing-0-0001.parquet", "part-ing-0-0002.parquet"]
    assert deliveries.part_names("ing-0", 0, 1000, "jsonl") == ["part-ing-0-0000.jsonl"]


def test_receipt_totals_per_sink_keep_the_worst_status() -> None:
    merged = deliveries.merge([
        {"sinks": {"feed": deliveries.outcome(5, 5, "delivered")}},
        {"sinks": {"feed": deliveries.outcome(4, 0, "pending")}},
        {},
    ])
    assert merged == {"feed": {"rows": 9, "delivered": 5, "status": "pending"}}
