"""Parquet and gzip-compressed tenant files: detection, chunking, reading, refusals."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import itertools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mysimbdp_tasks.core import filenames, tenants
from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.errors import PermanentIngestError
from mysimbdp_tasks.core.formats import detect_format, extension
from mysimbdp_tasks.core.parsing import iter_records
from mysimbdp_tasks.core.rows import ingest_chunk
from producers import samples
from producers.batch import wrangle

pytestmark = pytest.mark.unit

TYPES = {"id": "text", "ups": "int", "created": "timestamp", "body": "text"}
KEY = ("id",)


def _count(rows: Iterable[Any], _refuse: Any = None) -> int:
    return sum(1 for _ in rows)


def _parquet(path: Path, n: int, group_rows: int = 500, **extra: list[Any]) -> Path:
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    columns: dict[str, Any] = {
        "id": [f"i{i}" for i in range(n)],
        "ups": list(range(n)),
        "created": [start + dt.timedelta(seconds=i) for i in range(n)],
        "body": [f"body {i}, \"quoted\"\n" for i in range(n)],
        **extra,
    }
    pq.write_table(pa.table(columns), path, row_group_size=group_rows)
    return path


def _csv_bytes(n: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["id", "ups", "created", "body"])
    for i in range(n):
        w.writerow([f"i{i}", i, 1577836800 + i, f"body {i}, \"quoted\"\nsecond line"])
    return out.getvalue().encode()


def _ingest(path: Path, fmt: Any = None, inflate_limit: int | None = None, types: dict[str, str] = TYPES) -> Any:
    fmt = fmt or detect_format(path)
    converter = RowConverter(types, KEY)
    result = None
    total: dict[str, Any] = {"ok": 0, "refused": 0, "errors": [], "refusals": []}
    for chunk in plan_chunks(path, fmt, 20_000):
        result = ingest_chunk(path, fmt, chunk, converter, _count, chunk.index, inflate_limit=inflate_limit)
        total["ok"] += result.rows_ok
        total["refused"] += result.rows_refused
        total["refusals"] += result.refusals
        if result.error is not None:
            total["errors"].append(result.error.reason)
    return total


# --- names and tenant configs -------------------------------------------------------------------

def test_extensions_name_the_compressed_format() -> None:
    assert extension("t1-x.CSV.GZ") == ".csv.gz"
    assert extension("dir.d/t1-x.ndjson.gz") == ".ndjson.gz"
    assert extension("t1-x.parquet") == ".parquet"
    assert extension("t1-x.gz") == ".gz"
    assert filenames.safe("a" * 300 + ".jsonl.gz").endswith(".jsonl.gz")


def test_tenants_may_allow_the_new_types_and_ndjson_gz_is_an_alias() -> None:
    raw = json.loads((Path(__file__).parents[2] / "tenants" / "tenants.json").read_text())["tenant2"]
    raw["file_type"] = [".parquet", ".ndjson.gz", "csv.gz"]
    batch = tenants.parse({"tx": raw})["tx"].batch
    assert batch is not None
    assert set(batch.file_types) == {".parquet", ".ndjson.gz", ".jsonl.gz", ".csv.gz"}
    raw["file_type"] = ".zip"
    with pytest.raises(Exception, match=r"unsupported file type '\.zip'"):
        tenants.parse({"tx": raw})


def test_unknown_extension_is_the_wrong_file_type(tmp_path: Path) -> None:
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"a"))
    with pytest.raises(PermanentIngestError, match="wrong_file_type"):
        detect_format(tmp_path / "x.gz")


# --- Parquet ------------------------------------------------------------------------------------

def test_parquet_chunks_are_row_group_ranges_that_read_every_row_once(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "a.parquet", 5000)
    assert detect_format(path) == "parquet"
    chunks = plan_chunks(path, None, 20_000)
    assert len(chunks) > 2
    assert chunks[0].start_offset == 0 and chunks[-1].end_offset == path.stat().st_size
    assert all(a.end_offset == b.start_offset for a, b in itertools.pairwise(chunks))
    records = [r for c in chunks for r in iter_records(path, None, c, typed=(TYPES, KEY))]
    assert [r.number for r in records] == list(range(1, 5001))
    assert [r.data["id"] for r in records if r.data] == [f"i{i}" for i in range(5000)]
    assert records[0].data == {"id": "i0", "ups": 0, "created": "2020-01-01 00:00:00+00:00",
                               "body": "body 0, \"quoted\"\n"}


def test_parquet_rows_convert_like_other_formats(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "a.parquet", 3000)
    assert _ingest(path) == {"ok": 3000, "refused": 0, "errors": [], "refusals": []}
    first = next(iter(iter_records(path, typed=(TYPES, KEY))))
    assert RowConverter(TYPES, KEY).convert(first.data or {})[2] == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def test_a_parquet_value_that_does_not_fit_refuses_its_row_with_its_number(tmp_path: Path) -> None:
    ups = list(range(1000))
    ups[700] = 1 << 40  # an int64 beyond the tenant's int
    path = _parquet(tmp_path / "a.parquet", 1000, ups=ups)
    total = _ingest(path)
    assert total["ok"] == 999 and total["refused"] == 1
    assert total["refusals"][0]["line"] == 701 and total["refusals"][0]["reason"] == "bad_value"


def test_a_parquet_column_that_can_never_fit_refuses_the_file(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "a.parquet", 100, ups=[[i] for i in range(100)])
    total = _ingest(path)
    assert total["ok"] == 0 and total["errors"] == ["schema_mismatch"]
    with pytest.raises(PermanentIngestError, match=r"'ups' is list<.*never fits the tenant's int"):
        list(iter_records(path, typed=(TYPES, KEY)))
    stamps = _parquet(tmp_path / "b.parquet", 10)
    with pytest.raises(PermanentIngestError, match=r"'created' is timestamp.*never fits the tenant's boolean"):
        list(iter_records(stamps, typed=({**TYPES, "created": "boolean"}, KEY)))


def test_a_parquet_file_without_a_key_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"ups": [1, 2]}), path)
    with pytest.raises(PermanentIngestError, match=r"key column.*id not in the Parquet file"):
        list(iter_records(path, typed=(TYPES, KEY)))


def test_a_file_that_is_not_parquet_is_unparseable(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    path.write_bytes(b"id,ups\n1,2\n")
    with pytest.raises(PermanentIngestError, match="unparseable: not a readable Parquet file"):
        plan_chunks(path)  # planning reads the footer, and refuses the file


# --- gzip ---------------------------------------------------------------------------------------

def test_csv_gz_reads_as_the_csv_it_holds_in_one_chunk(tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    plain.write_bytes(_csv_bytes(2000))
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert detect_format(packed) == "csv.gz"
    assert len(plan_chunks(packed, None, 1000)) == 1
    assert list(iter_records(packed)) == list(iter_records(plain))
    assert _ingest(packed)["ok"] == 2000


@pytest.mark.parametrize("name", ["a.json.gz", "a.jsonl.gz", "a.ndjson.gz", "b.json.gz"])
def test_json_gz_and_json_lines_gz(tmp_path: Path, name: str) -> None:
    rows = [{"id": f"i{i}", "ups": i, "body": "x" * (i % 50)} for i in range(3000)]
    text = json.dumps(rows) if name == "a.json.gz" else "\n".join(json.dumps(r) for r in rows)
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    assert detect_format(path) == ("json.gz" if name == "a.json.gz" else "jsonl.gz")
    assert [r.data for r in iter_records(path)] == rows


def test_truncated_gzip_lands_the_rows_before_the_damage(tmp_path: Path) -> None:
    data = gzip.compress(_csv_bytes(20_000))
    path = tmp_path / "a.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    total = _ingest(path)
    assert total["errors"] == ["bad_gzip"]
    assert 5000 < total["ok"] < 20_000 and total["refused"] == 0


def test_corrupt_gzip_is_refused_with_bad_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(_csv_bytes(20_000)))
    data[len(data) // 3] ^= 0xFF
    path = tmp_path / "a.csv.gz"
    path.write_bytes(bytes(data))
    assert _ingest(path)["errors"] == ["bad_gzip"]
    not_gzip = tmp_path / "b.csv.gz"
    not_gzip.write_bytes(_csv_bytes(10))
    assert _ingest(not_gzip) == {"ok": 0, "refused": 0, "errors": ["bad_gzip"], "refusals": []}


def test_a_gzip_bomb_stops_at_the_inflate_limit(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb") as g:
        for _ in range(64):
            g.write(b'{"id": "a", "ups": 1}\n' * 50_000)  # 70 MB of text, about 200 KB on disk
    assert bomb.stat().st_size < 1 << 20
    total = _ingest(bomb, inflate_limit=1 << 20)
    assert total["errors"] == ["inflated_too_large"]
    assert 0 < total["ok"] <= (1 << 20) // 22
    with pytest.raises(PermanentIngestError, match="inflates to more than 1048576 bytes"):
        list(iter_records(bomb, inflate_limit=1 << 20))


def test_only_the_admitted_bytes_of_a_gzip_file_are_read(tmp_path: Path) -> None:
    data = gzip.compress(_csv_bytes(1000))
    path = tmp_path / "a.csv.gz"
    path.write_bytes(data + gzip.compress(_csv_bytes(5)[len("id,ups,created,body\r\n"):]))
    assert sum(1 for _ in iter_records(path, limit=len(data))) == 1000
    assert sum(1 for _ in iter_records(path)) == 1005  # a second gzip member continues the text


# --- producers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("tenant", "fmt", "packed", "suffix"), [
    ("tenant1", "parquet", False, ".parquet"), ("tenant2", "parquet", False, ".parquet"),
    ("tenant2", None, True, ".csv.gz"), ("tenant1", None, True, ".json.gz")])
def test_producer_writes_parquet_and_gzip_that_read_back_whole(tmp_path: Path, tenant: str, fmt: str | None,
                                                               packed: bool, suffix: str) -> None:
    source = min(samples.default_dir().glob("1000rows*." + ("json" if tenant == "tenant1" else "csv")))
    out = wrangle(tenant, source, tmp_path, fmt=fmt, gzip=packed)
    assert out.path.name.endswith(suffix) and out.records == 1000
    assert out.bytes == out.path.stat().st_size
    shipped = tenants.parse(json.loads((Path(__file__).parents[2] / "tenants" / "tenants.json").read_text()))
    t = shipped[tenant]
    records = list(iter_records(out.path, typed=(t.column_types, t.key.columns)))
    assert len(records) == 1000 and all(r.error is None for r in records)
