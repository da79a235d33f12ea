"""Deliveries to a tenant's extra sinks, as pure data: the rows of one delivery and its outcome.

A *delivery* is the accepted records of one chunk (batch) or one micro-batch (stream) bound for one
sink, as JSON-able dicts: it can wait in a task of its own when the sink is away
(``services/outputs.py``). Its ``origin`` (``<ingest_id>-<chunk>`` or the stream task's id) names
its part files, so delivering it again replaces them rather than adding rows.

Rows leave as JSON objects of the schema's columns, converted (timestamps as ISO 8601 in UTC),
plus ``_key``: the row's primary key as a JSON array, the dedupe key consumers and lake readers
use to drop a row delivered twice.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .convert import RowConverter

KEY = "_key"
LAKE = "lake"


class Tee:
    """A converter that also keeps each record it converted, in the order the rows were given.

    The writer reports the rows it refused by position, so the records it accepted are the kept
    ones minus those positions (:func:`accepted`).
    """

    def __init__(self, inner: RowConverter) -> None:
        self.inner = inner
        self.records: list[dict[str, Any]] = []
        self.columns, self.types, self.key_columns = inner.columns, inner.types, inner.key_columns

    def convert(self, record: Mapping[str, Any]) -> Any:
        row = self.inner.convert(record)
        self.records.append(dict(record))
        return row

    def convert_fields(self, header: list[str], fields: list[Any]) -> Any:
        row = self.inner.convert_fields(header, fields)
        self.records.append(dict(zip(header, fields, strict=False)))
        return row


class TeeCheck:
    """A chunk's quality check when a :class:`Tee` keeps its records: a row the rules refuse never
    reaches the writer, so its record is dropped from the Tee too and positions stay in step."""

    def __init__(self, check: Any, tee: Tee) -> None:
        self.check, self.tee = check, tee

    def __call__(self, row: Any) -> tuple[str, str] | None:
        refusal = self.check(row)
        if refusal is not None:
            self.tee.records.pop()
        return refusal

    def counts(self) -> dict[str, Any]:
        return dict(self.check.counts())


def accepted(records: Sequence[dict[str, Any]], refused: Iterable[int]) -> list[dict[str, Any]]:
    gone = set(refused)
    return [r for i, r in enumerate(records) if i not in gone]


def plain(value: Any) -> Any:
    """A converted value as JSON has it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def json_rows(converter: RowConverter, key_columns: Sequence[str],
              records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each record as the row that landed: its columns converted, plus its dedupe key."""
    columns = converter.columns
    where = [columns.index(k) for k in key_columns]
    out = []
    for record in records:
        values = converter.convert(record)
        row = {c: plain(v) for c, v in zip(columns, values, strict=True)}
        row[KEY] = json.dumps([row[columns[i]] for i in where], separators=(",", ":"))
        out.append(row)
    return out


def lake_folder(home: Path, tenant: str, sink: str, day: str) -> Path:
    return home / LAKE / tenant / sink / f"date={day}"


def part_names(origin: str, rows: int, max_rows: int, fmt: str) -> list[str]:
    """The part files of one delivery: ``max_rows`` rows each, named by origin so a repeat replaces them."""
    ext = "parquet" if fmt == "parquet" else "jsonl"
    count = max(1, -(-rows // max_rows))
    return [f"part-{origin}-{i:04d}.{ext}" for i in range(count)]


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def outcome(rows: int, delivered: int, status: str) -> dict[str, Any]:
    """One sink's outcome for one chunk or micro-batch: ``delivered``, ``pending`` (retrying in a
    task of its own) or ``failed`` (kept aside, see services/outputs.py)."""
    return {"rows": rows, "delivered": delivered, "status": status}


def merge(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-sink totals over a file's chunks, for its receipt (the worst status wins)."""
    order = ("delivered", "pending", "failed")
    total: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, one in (result.get("sinks") or {}).items():
            have = total.setdefault(name, outcome(0, 0, "delivered"))
            have["rows"] += one["rows"]
            have["delivered"] += one["delivered"]
            if order.index(one["status"]) > order.index(have["status"]):
                have["status"] = one["status"]
    return total
