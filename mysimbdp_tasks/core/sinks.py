"""A tenant's sinks: where its accepted rows go, besides (or instead of) its own table.

In the tenant configuration, ``sinks`` is a list of objects, each with a ``name`` and a ``kind``::

    "sinks": [
      {"name": "by_author", "kind": "cassandra", "table": "comments_by_author", "key": "((author), id)"},
      {"name": "feed", "kind": "kafka"},
      {"name": "archive", "kind": "files", "format": "parquet", "max_rows": 100000}
    ]

The tenant's own table is always a sink, named :data:`PRIMARY` (``"table"``): it is the record of
what landed. Without ``sinks`` it is the only one, exactly as before. The kinds:

- ``cassandra``: another table of the tenant's keyspace with the same columns and its own ``key``
  (default: the schema's); ``table`` defaults to the sink's name.
- ``kafka``: each accepted row as JSON on ``<tenant>.out.<name>`` (``partitions``, default 1), keyed
  by the row's primary key so that consumers can drop a repeated row.
- ``files``: part files under ``<home>/lake/<tenant>/<name>/date=YYYY-MM-DD/``, ``format``
  ``parquet`` (default) or ``jsonl``, at most ``max_rows`` rows each, with a ``_key`` column.

A stream message may carry ``"sink": [names]`` to go only to those sinks (:func:`route`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import cql
from .errors import UnknownSinkError
from .keys import PrimaryKey, parse_key
from .names import METRICS_TABLES

PRIMARY = "table"
KINDS = ("cassandra", "kafka", "files")
FORMATS = ("parquet", "jsonl")
FIELD = "sink"  # the message field naming a subset of the tenant's sinks
NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}\Z")
MAX_ROWS = 100_000
MAX_PARTITIONS = 1_000  # as a tenant's ingest topic
_KEYS = {"cassandra": ("table", "key"), "kafka": ("partitions",), "files": ("format", "max_rows")}

Bad = Callable[[str, str], None]


@dataclass(frozen=True)
class SinkSpec:
    name: str
    kind: str
    table: str = ""  # cassandra
    key: PrimaryKey | None = None  # cassandra: None is the schema's key
    partitions: int = 1  # kafka
    format: str = "parquet"  # files
    max_rows: int = MAX_ROWS  # files: rows per part file


def parse(raw: Any, columns: Sequence[str], table_name: str, bad: Bad) -> tuple[SinkSpec, ...]:
    """The extra sinks of a tenant (its own table is implicit); every problem goes to ``bad(path, message)``."""
    if not isinstance(raw, list):
        bad("sinks", "expected a list of sinks, e.g. [{\"name\": \"feed\", \"kind\": \"kafka\"}]")
        return ()
    if FIELD in columns:
        bad("sinks", f"the schema has a column {FIELD!r}, the field a message names its sinks with; rename the column")
    specs: list[SinkSpec] = []
    seen: set[str] = {PRIMARY}
    tables: set[str] = {table_name}
    for i, item in enumerate(raw):
        spec = _one(item, i, columns, bad)
        if spec is None:
            continue
        where = f"sinks.{spec.name}"
        if spec.name in seen:
            bad(f"{where}.name", f"{spec.name!r} is already a sink's name"
                + (" (\"table\" is the tenant's own table)" if spec.name == PRIMARY else ""))
            continue
        if spec.kind == "cassandra" and spec.table in tables:
            bad(f"{where}.table", f"table {spec.table!r} is already written by another sink; give each its own")
            continue
        seen.add(spec.name)
        tables.add(spec.table)
        specs.append(spec)
    return tuple(specs)


def _one(item: Any, index: int, columns: Sequence[str], bad: Bad) -> SinkSpec | None:
    if not isinstance(item, dict):
        bad(f"sinks[{index}]", f"expected an object with \"name\" and \"kind\", got {type(item).__name__}")
        return None
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        bad(f"sinks[{index}].name", f"expected lower-case letters, digits and '_', starting with a letter, "
            f"at most 32; got {name!r}")
        return None
    where = f"sinks.{name}"
    kind = item.get("kind")
    if kind not in KINDS:
        bad(f"{where}.kind", f"expected one of {', '.join(KINDS)}; got {kind!r}")
        return None
    before = [0]

    def problem(path: str, message: str) -> None:
        before[0] += 1
        bad(f"{where}.{path}", message)

    for key in item:
        if key not in ("name", "kind", *_KEYS[kind]):
            problem(key, f"unknown setting for a {kind} sink; allowed: {', '.join(('name', 'kind', *_KEYS[kind]))}")
    spec = {"cassandra": _cassandra, "kafka": _kafka, "files": _files}[kind](name, item, columns, problem)
    return spec if before[0] == 0 else None


def _cassandra(name: str, item: Mapping[str, Any], columns: Sequence[str], bad: Bad) -> SinkSpec:
    table = item.get("table", name)
    problem = cql.identifier_problem(table)
    if problem:
        bad("table", problem)
    elif table in METRICS_TABLES:
        bad("table", f"{table!r} is one of the platform's metrics tables; choose another name")
    key = None
    if "key" in item:
        try:
            key = parse_key(item["key"])
        except ValueError as exc:
            bad("key", str(exc))
        else:
            for column in key.columns:
                if column not in columns:
                    bad("key", f"column {column!r} is not in the schema")
            if len(set(key.columns)) != len(key.columns):
                bad("key", "names a column more than once")
    return SinkSpec(name, "cassandra", table=str(table), key=key)


def _kafka(name: str, item: Mapping[str, Any], _columns: Sequence[str], bad: Bad) -> SinkSpec:
    partitions = item.get("partitions", 1)
    if isinstance(partitions, bool) or not isinstance(partitions, int) or not 1 <= partitions <= MAX_PARTITIONS:
        bad("partitions", f"expected a positive integer up to {MAX_PARTITIONS:,}, got {partitions!r}")
    return SinkSpec(name, "kafka", partitions=partitions)


def _files(name: str, item: Mapping[str, Any], _columns: Sequence[str], bad: Bad) -> SinkSpec:
    fmt = item.get("format", "parquet")
    if fmt not in FORMATS:
        bad("format", f"expected one of {', '.join(FORMATS)}; got {fmt!r}")
    max_rows = item.get("max_rows", MAX_ROWS)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        bad("max_rows", f"expected a positive integer, got {max_rows!r}")
    return SinkSpec(name, "files", format=str(fmt), max_rows=max_rows)


def topic(tenant: str, sink: str) -> str:
    """The Kafka topic of a tenant's ``kafka`` sink."""
    return f"{tenant}.out.{sink}"


def names(specs: Sequence[SinkSpec]) -> tuple[str, ...]:
    """Every sink's name, the tenant's own table first."""
    return (PRIMARY, *(s.name for s in specs))


def route(record: Mapping[str, Any], specs: Sequence[SinkSpec]) -> frozenset[str] | None:
    """The sinks a record asks for (``"sink": [names]``), or None for all of them.

    Raises UnknownSinkError naming the first name the tenant does not have.
    """
    if FIELD not in record:
        return None
    wanted = record[FIELD]
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, list) or not wanted or not all(isinstance(w, str) for w in wanted):
        raise UnknownSinkError(f"\"{FIELD}\" must be a non-empty list of sink names; got {str(wanted)[:60]}")
    known = names(specs)
    for w in wanted:
        if w not in known:
            raise UnknownSinkError(f"no sink {w[:40]!r}; this tenant's sinks: {', '.join(known)}")
    return frozenset(wanted)


def routed(targets: frozenset[str] | None, name: str) -> bool:
    return targets is None or name in targets
