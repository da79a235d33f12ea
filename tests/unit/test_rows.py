"""The ingest core's accounting: what was written is counted, whatever happens after it."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.rows import Refuse, ingest_chunk

pytestmark = pytest.mark.unit

CONVERTER = RowConverter({"id": "text", "n": "bigint"}, ["id"])


class Table:
    """A writer that keeps rows, refusing those whose id starts with "bad" as a sink would."""

    def __init__(self) -> None:
        self.rows: list[Sequence[Any]] = []

    def write(self, rows: Iterable[Sequence[Any]], refuse: Refuse) -> int:
        written = 0
        for position, row in enumerate(rows):
            if str(row[0]).startswith("bad"):
                refuse(position, "rejected_by_cassandra", "key too long")
                continue
            self.rows.append(row)
            written += 1
        return written


def test_rows_before_a_stray_byte_are_written_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('[{"id": "a", "n": 1}, {"id": "b", "n": 2}]x')
    table = Table()
    result = ingest_chunk(path, "json", None, CONVERTER, table.write)
    assert result.rows_ok == 2 and [r[0] for r in table.rows] == ["a", "b"]
    assert result.error is not None and result.error.reason == "unparseable"
    assert result.to_dict()["error"]["reason"] == "unparseable"


def test_rows_the_writer_refuses_are_listed_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a"}\n{"id": "x", "n": "nope"}\n{"id": "bad1"}\n{"id": "c"}\n')
    result = ingest_chunk(path, "jsonl", None, CONVERTER, Table().write)
    assert result.rows_ok == 2 and result.rows_refused == 2
    assert [(f["line"], f["reason"]) for f in result.refusals] == [(2, "bad_value"), (3, "rejected_by_cassandra")]


def test_deep_json_and_huge_integers_are_refused_rows_not_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": "a"}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"id": "b", "n": ' + "9" * 5000 + "}\n")
    result = ingest_chunk(path, "jsonl", None, CONVERTER, Table().write)
    assert result.rows_ok == 1 and result.rows_refused == 2 and result.error is None


def test_a_chunk_truncated_after_planning_fails_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(f'{{"id": "r{i}"}}\n' for i in range(100)))
    chunks = plan_chunks(path, "jsonl", 200)
    os.truncate(path, 100)
    result = ingest_chunk(path, "jsonl", chunks[-1], CONVERTER, Table().write, chunks[-1].index)
    assert result.rows_ok == 0
    assert result.error is not None and result.error.reason == "file_changed"


class GcProbe(Table):
    """A writer that notes whether the cyclic collector ran while it wrote."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.enabled: list[bool] = []
        self.fail = fail

    def write(self, rows: Iterable[Sequence[Any]], refuse: Refuse) -> int:
        written = super().write(rows, refuse)
        self.enabled.append(gc.isenabled())
        if self.fail:
            raise ConnectionError("cassandra away")
        return written


def test_the_collector_is_paused_while_a_chunk_is_written_and_resumes_after(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,n\na,1\nb,2\n")
    table = GcProbe()
    assert gc.isenabled()
    assert ingest_chunk(path, "csv", None, CONVERTER, table.write).rows_ok == 2
    assert table.enabled == [False] and gc.isenabled()
    failing = GcProbe(fail=True)
    with pytest.raises(ConnectionError):
        ingest_chunk(path, "csv", None, CONVERTER, failing.write)
    assert failing.enabled == [False] and gc.isenabled()  # a writer's failure leaves it running


def test_a_collector_disabled_by_the_process_stays_disabled(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,n\na,1\n")
    gc.disable()
    try:
        ingest_chunk(path, "csv", None, CONVERTER, Table().write)
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Future:
    """Like the driver's future: in a reference cycle, holding the rows it wrote."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows
        self.me = self


def test_what_a_chunk_left_in_reference_cycles_is_freed_when_it_ends(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,n\na,1\nb,2\n")
    left: list[weakref.ref[_Future]] = []

    def write(rows: Iterable[Sequence[Any]], _refuse: Refuse) -> int:
        batch = list(rows)
        left.append(weakref.ref(_Future(batch)))  # dropped at once, freed only by the collector
        return len(batch)

    assert ingest_chunk(path, "csv", None, CONVERTER, write).rows_ok == 2
    assert left and left[0]() is None
