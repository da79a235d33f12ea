"""The tenant model: the shipped files load; every kind of mistake is reported with tenant and field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.cli import main
from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.errors import ConfigError

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

GOOD: dict[str, Any] = json.loads((ROOT / "tenants" / "tenants.json").read_text())


def test_shipped_tenant_file_loads_with_both_paths() -> None:
    found = tenants.load(ROOT / "tenants" / "tenants.json")
    assert set(found) == {"tenant1", "tenant2"}
    t1, t2 = found["tenant1"], found["tenant2"]
    assert (t1.key.partition, t1.key.clustering) == (("subreddit", "id"), ("ups",))
    assert (t2.key.partition, t2.key.clustering) == (("subreddit", "id"), ("author",))
    assert t1.batch is not None and t1.stream is not None
    assert t2.batch is not None and t2.batch.file_types == (".csv",)


def test_original_batch_only_and_stream_only_files_load_as_they_are() -> None:
    batch = tenants.load(ROOT / "tenants" / "original-batch.json")
    stream = tenants.load(ROOT / "tenants" / "original-stream.json")
    assert all(t.batch and t.stream is None for t in batch.values())
    assert all(t.stream and t.batch is None for t in stream.values())
    assert batch["tenant1"].batch is not None
    assert batch["tenant1"].batch.max_file_size_bytes == 10 * 1024 * 1024  # MB = 2**20 bytes


def test_file_type_may_be_a_string_or_a_list() -> None:
    assert tenants.load(ROOT / "tenants" / "tenants.json")["tenant1"].batch.file_types == (".json", ".jsonl", ".ndjson")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "partition", "clustering"),
    [
        ("id", ("id",), ()),
        ("(id)", ("id",), ()),
        ("(a, b)", ("a",), ("b",)),
        ("((a, b), c, d)", ("a", "b"), ("c", "d")),
        (" ( (a) , b ) ", ("a",), ("b",)),
    ],
)
def test_primary_key_forms(text: str, partition: tuple[str, ...], clustering: tuple[str, ...]) -> None:
    key = tenants.parse_key(text)
    assert (key.partition, key.clustering) == (partition, clustering)


def _mutated(path: list[str], value: Any, tenant: str = "tenant2") -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    node = data[tenant]
    for part in path[:-1]:
        node = node[part]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


_DELETE = object()

# (mutation, expected field path in the message, expected words of the problem)
MISTAKES = [
    (_mutated(["max_file_sise"], 10), "tenant2.max_file_sise", "did you mean 'max_file_size'"),
    (_mutated(["schema", "body"], "string"), "tenant2.schema.body", "unknown CQL type 'string'"),
    (_mutated(["max_number_of_files"], 0), "tenant2.max_number_of_files", "must be positive"),
    (_mutated(["max_amount_of_data"], -5), "tenant2.max_amount_of_data", "must be positive"),
    (_mutated(["max_messages_per_day"], "lots"), "tenant2.max_messages_per_day", "positive integer"),
    (_mutated(["namespace"], "tenant-2"), "tenant2.namespace", "not a plain CQL identifier"),
    (_mutated(["table_name"], "table"), "tenant2.table_name", "reserved CQL word"),
    (_mutated(["schema", "key"], "((subreddit, id), autor)"), "tenant2.schema.key",
     "column 'autor' is not in the schema (did you mean 'author'?)"),
    (_mutated(["schema", "key"], "((subreddit, id), author"), "tenant2.schema.key", "unbalanced parentheses"),
    (_mutated(["namespace"], "tenant1"), "tenant2.namespace", "already the namespace of tenant 'tenant1'"),
    (_mutated(["file_type"], ".xml"), "tenant2.file_type", "unsupported file type '.xml'"),
    (_mutated(["schema", "key"], _DELETE), "tenant2.schema.key", "missing"),
    (_mutated(["namespace"], _DELETE), "tenant2.namespace", "missing (required)"),
    (_mutated(["max_file_size"], 4096), "tenant2.max_file_size", "more than max_amount_of_data"),
    (_mutated(["schema", "Body"], "text"), "tenant2.schema.Body", "not a plain CQL identifier"),
    (_mutated(["namespace"], "system_auth"), "tenant2.namespace", "belong to Cassandra itself"),
    (_mutated(["min_workers"], 9), "tenant2.min_workers", "larger than max_workers"),
    (_mutated(["max_queued_tasks"], 0), "tenant2.max_queued_tasks", "must be positive"),
    (_mutated(["max_queued_tasks"], 2.5), "tenant2.max_queued_tasks", "expected a positive integer, got 2.5"),
    (_mutated(["max_queue_tasks"], 3), "tenant2.max_queue_tasks", "did you mean 'max_queued_tasks'"),
    ({"tenant_2": GOOD["tenant2"]}, "tenant_2", "tenant names are lower-case letters and digits"),
    # A tenant of the platform's name would own the platform's reports topic and consumer groups.
    ({"mysimbdp": GOOD["tenant2"]}, "mysimbdp", "the platform's own name"),
    # '$' would let a name through with a newline at its end, into DDL and topic names.
    ({"tenant2\n": GOOD["tenant2"]}, "tenant2\n", "tenant names are lower-case letters and digits"),
    (_mutated(["namespace"], "tenant2\n"), "tenant2.namespace", "not a plain CQL identifier"),
    (_mutated(["schema", "id\n"], "text"), "tenant2.schema.id\n", "not a plain CQL identifier"),
    (_mutated(["max_file_size"], float("nan")), "tenant2.max_file_size", "must be positive, got nan"),
    (_mutated(["max_amount_of_data"], float("inf")), "tenant2.max_amount_of_data", "must be positive, got inf"),
    (_mutated(["max_amount_of_data"], 1e308), "tenant2.max_amount_of_data", "more than the largest allowed"),
    (_mutated(["max_messages_per_day"], 10**20), "tenant2.max_messages_per_day", "more than the largest allowed"),
    (_mutated(["max_workers"], 10_000), "tenant2.max_workers", "more than the largest allowed, 256"),
    (_mutated(["partitions"], 10**9), "tenant2.partitions", "more than the largest allowed"),
    (_mutated(["schema", "key"], "key"), "tenant2.schema.key", "column 'key' is not in the schema"),
    (_mutated(["table_name"], "quality_metrics"), "tenant2.table_name", "one of the platform's metrics tables"),
]


@pytest.mark.parametrize(("data", "where", "what"), MISTAKES, ids=[m[1] + ":" + m[2][:20] for m in MISTAKES])
def test_each_mistake_is_reported_with_tenant_field_and_problem(data: dict[str, Any], where: str, what: str) -> None:
    with pytest.raises(ConfigError) as info:
        tenants.parse(data)
    messages = [str(p) for p in info.value.problems]
    assert any(m.startswith(where + ":") and what in m for m in messages), messages


def test_every_problem_is_reported_not_just_the_first() -> None:
    data = _mutated(["namespace"], "bad-name")
    data["tenant1"]["schema"]["ups"] = "integer"
    data["tenant1"]["colour"] = "blue"
    with pytest.raises(ConfigError) as info:
        tenants.parse(data)
    paths = {p.path for p in info.value.problems}
    assert {"tenant2.namespace", "tenant1.schema.ups", "tenant1.colour"} <= paths


def test_invalid_json_names_the_file_and_position(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text('{"tenant1": {')
    with pytest.raises(ConfigError) as info:
        tenants.load(f)
    assert "not valid JSON" in str(info.value) and "line 1" in str(info.value)


def test_check_command_exits_nonzero_with_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _mutated(["schema", "key"], "((subreddit, id), autor)")
    data["tenant1"]["max_number_of_files"] = 0
    f = tmp_path / "broken.json"
    f.write_text(json.dumps(data))
    assert main(["tenants", "check", str(f)]) != 0
    err = capsys.readouterr().err
    assert "tenant2.schema.key" in err and "autor" in err
    assert "tenant1.max_number_of_files" in err


def test_check_command_accepts_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tenants", "check", str(ROOT / "tenants" / "tenants.json")]) == 0
    assert "tenant1: ok" in capsys.readouterr().out


def test_a_file_with_nan_or_a_key_twice_inside_a_list_is_refused_naming_the_field(tmp_path: Path) -> None:
    data = copy.deepcopy(GOOD)
    data["tenant1"]["sinks"] = [{"name": "feed", "kind": "kafka", "partitions": 1}]
    text = json.dumps(data).replace('"max_file_size": 64', '"max_file_size": NaN', 1)
    text = text.replace('"partitions": 1}', '"partitions": 1, "partitions": 50}')
    assert "NaN" in text and '"partitions": 50' in text
    f = tmp_path / "t.json"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        tenants.load(f)
    assert "tenant1.sinks[0].partitions: given more than once" in str(info.value)
    f.write_text(text.replace(', "partitions": 50', ""))
    with pytest.raises(ConfigError) as info:
        tenants.load(f)
    assert "tenant1.max_file_size: must be positive, got nan" in str(info.value)
