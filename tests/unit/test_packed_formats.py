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
from cassandra import cqltypes
from cassandra.query import UNSET_VALUE

from mysimbdp_tasks.core import filenames, tenants
from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.columnar import BATCH_ROWS
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.encoding import RowEncoder
from mysimbdp_tasks.core.errors import PermanentIngestError
from mysimbdp_tasks.core.formats import detect_format, extension
from mysimbdp_tasks.core.parsing import iter_records
from mysimbdp_tasks.core.rows import ingest_chunk
from mysimbdp_tasks.services.serializers import column_serializer
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


def _beyond_python(path: Path, n: int, bad: dict[str, dict[int, int]]) -> Path:
    """``n`` rows of valid timestamps, dates and times, with the stored integers of ``bad`` (per column,
    row index to value) that no Python datetime, date or time of day holds."""
    stored: dict[str, list[Any]] = {"ts": [1_430_438_400_000 + i for i in range(n)],
                                    "day": [16_000 + i % 100 for i in range(n)],
                                    "at": [i * 1_000_000 for i in range(n)]}
    for name, values in bad.items():
        for index, value in values.items():
            stored[name][index] = value
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(n)], "ts": pa.array(stored["ts"], pa.timestamp("ms")),
                             "day": pa.array(stored["day"], pa.date32()),
                             "at": pa.array(stored["at"], pa.time64("us"))}), path, row_group_size=n)
    return path


def _parquet_encoder(types: dict[str, str]) -> RowEncoder:
    driver = {"text": cqltypes.UTF8Type, "timestamp": cqltypes.DateType, "date": cqltypes.SimpleDateType,
              "time": cqltypes.TimeType}
    serializers = {name: column_serializer(driver[kind], 4) for name, kind in types.items()}
    return RowEncoder(types, list(KEY), serializers, UNSET_VALUE)


@pytest.mark.parametrize("encoded", [False, True])
def test_a_parquet_value_with_no_python_form_refuses_only_its_row(tmp_path: Path, encoded: bool) -> None:
    # Two record batches (BATCH_ROWS each): bad values in the first, the second, and two in one row.
    n = BATCH_ROWS + 500
    path = _beyond_python(tmp_path / "a.parquet", n, {"ts": {5: 2**62, 4200: -(2**62), 4300: 2**62},
                                                      "day": {9: 2**31 - 1, BATCH_ROWS: -(2**31), 4300: 2**31 - 1},
                                                      "at": {20: 86_400_000_000, 4400: -1}})
    types = {"id": "text", "ts": "timestamp", "day": "date", "at": "time"}
    converter = _parquet_encoder(types) if encoded else RowConverter(types, KEY)
    landed: list[Any] = []

    def write(rows: Iterable[Any], _refuse: Any) -> int:
        landed.extend(rows)
        return len(landed)

    result = ingest_chunk(path, "parquet", None, converter, write)
    assert result.error is None
    assert result.rows_ok == n - 7 and len(landed) == n - 7 and result.reasons == {"bad_value": 7}
    refused = {f["line"]: f["detail"] for f in result.refusals}
    assert sorted(refused) == [6, 10, 21, BATCH_ROWS + 1, 4201, 4301, 4401]
    assert refused[6] == ("column 'ts': expected timestamp, got the Parquet timestamp[ms] 4611686018427387904 "
                          "(outside the years 1 to 9999)")
    assert refused[10] == ("column 'day': expected date, got the Parquet date32[day] 2147483647 "
                           "(outside the years 1 to 9999)")
    assert refused[21] == "column 'at': expected time, got the Parquet time64[us] 86400000000 (not within one day)"
    assert refused[4301].startswith("column 'ts': ")  # the first bad column of the row is named
    assert "-4611686018427387904" in refused[4201] and "-2147483648" in refused[BATCH_ROWS + 1]
    assert "time64[us] -1 " in refused[4401]
    if not encoded:  # the valid rows, in order, with their own values
        ids = [row[0] for row in landed]
        assert ids == [f"r{i}" for i in range(n) if i + 1 not in refused]
        assert landed[5][1] == dt.datetime(2015, 5, 1, 0, 0, 0, 6000, tzinfo=dt.UTC)


def test_an_unreadable_parquet_value_is_marked_where_every_column_is_read(tmp_path: Path) -> None:
    path = _beyond_python(tmp_path / "a.parquet", 10, {"ts": {3: 2**62}})
    records = list(iter_records(path))
    assert [r.number for r in records] == list(range(1, 11))
    fourth, fifth = records[3].data or {}, records[4].data or {}
    assert fourth["id"] == "r3"  # the value stands marked; the rest of its row is read
    assert repr(fourth["ts"]) == "the Parquet timestamp[ms] 4611686018427387904 (outside the years 1 to 9999)"
    assert fifth["ts"] == "2015-05-01 00:00:00.004000"


def test_parquet_text_that_is_not_utf8_refuses_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    body = pa.array([b"ok", b"\xff\xfe", b"fine"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ["a", "b", "c"], "body": body}), path)
    total = _ingest(path, types={"id": "text", "body": "text"})
    assert total["ok"] == 2 and total["refused"] == 1 and total["errors"] == []
    assert total["refusals"][0]["line"] == 2 and total["refusals"][0]["reason"] == "bad_value"
    assert total["refusals"][0]["detail"].startswith("column 'body': expected text, got a Parquet string value that "
                                                     "cannot be read (UnicodeDecodeError: ")


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
