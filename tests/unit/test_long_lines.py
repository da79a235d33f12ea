"""A line longer than MAX_RECORD_BYTES: refused alone with its line number, never held whole, read in
linear time; the lines around it land as before. The cap is lowered so the files stay small."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, SupportsIndex

import pytest
from cassandra import cqltypes
from cassandra.query import UNSET_VALUE

from mysimbdp_tasks.core import blocks, csvcolumns, parsing
from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.csvcolumns import encoded_records
from mysimbdp_tasks.core.encoding import EncodedRows, RowEncoder
from mysimbdp_tasks.core.errors import PermanentIngestError
from mysimbdp_tasks.core.formats import Format, Record
from mysimbdp_tasks.core.parsing import iter_records, read_records
from mysimbdp_tasks.services.serializers import column_serializer

pytestmark = pytest.mark.unit

CAP = 1000
LONG = 50 * CAP  # many reads long: reads are at most CAP bytes under the lowered cap


@pytest.fixture(autouse=True)
def lowered_cap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for module in (blocks, parsing, csvcolumns):
        monkeypatch.setattr(module, "MAX_RECORD_BYTES", CAP)
    limit = csv.field_size_limit()
    yield
    csv.field_size_limit(limit)  # process-wide: the readers set it from the lowered cap


def too_large(size: int) -> str:
    return f"record_too_large: the line has {size} bytes, more than the {CAP} allowed"


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def jsonl(*bodies: str) -> bytes:
    return b"".join(json.dumps({"id": str(i), "body": body}).encode() + b"\n" for i, body in enumerate(bodies))


def test_a_jsonl_line_over_the_cap_is_refused_alone_with_its_number(tmp_path: Path) -> None:
    big = json.dumps({"id": "big", "body": "x" * LONG}).encode()
    content = b'{"id": "a"}\n\n' + big + b'\n{"id": "c"}\n[1]\n{"id": "e"}\n'
    path = write(tmp_path / "t.jsonl", content)
    assert list(iter_records(path)) == [
        Record(1, {"id": "a"}, None),
        Record(3, None, too_large(len(big))),
        Record(4, {"id": "c"}, None),
        Record(5, None, "not_an_object: got an array"),
        Record(6, {"id": "e"}, None),
    ]


def test_a_line_exactly_at_the_cap_is_kept_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    at = json.dumps({"body": "x" * (CAP - 12)}).encode()
    assert len(at) == CAP  # its "\n" not counted
    over = at[:-2] + b'x"}'
    path = write(tmp_path / "t.jsonl", at + b"\n" + at + b"\n" + over + b"\n" + over)
    assert [(r.number, r.error) for r in iter_records(path)] == [
        (1, None), (2, None), (3, too_large(CAP + 1)), (4, too_large(CAP + 1)),  # the last ends the file
    ]


def test_a_csv_line_over_the_cap_is_refused_alone_with_its_number(tmp_path: Path) -> None:
    content = b"id,body\na,1\n\nbig," + b"x" * LONG + b'\nc,"two\nlines"\nd,4'
    path = write(tmp_path / "t.csv", content)
    assert list(iter_records(path)) == [
        Record(2, {"id": "a", "body": "1"}, None),
        Record(4, None, too_large(4 + LONG)),
        Record(5, {"id": "c", "body": "two\nlines"}, None),
        Record(7, {"id": "d", "body": "4"}, None),
    ]


def test_a_long_line_inside_a_quoted_field_refuses_its_record(tmp_path: Path) -> None:
    content = b'id,body\na,"starts\n' + b"x" * LONG + b'\nends"\nb,2\n'
    assert list(iter_records(write(tmp_path / "t.csv", content))) == [
        Record(2, None, too_large(LONG)), Record(5, {"id": "b", "body": "2"}, None),
    ]


def test_a_csv_header_over_the_cap_makes_the_file_unparseable(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b"id," + b"x" * LONG + b"\na,1\n")
    with pytest.raises(PermanentIngestError, match="header is too long"):
        list(iter_records(path))


@pytest.mark.parametrize(("name", "fmt", "content"), [
    ("t.jsonl", "jsonl", jsonl("a", "x" * LONG, "c", "y" * (CAP // 2), "z" * LONG, "f")),
    ("t.csv", "csv", b"id,body\n" + b"".join(b"%d,%s\n" % (i, b"x" * n) for i, n in
                                            enumerate([1, LONG, 3, CAP // 2, LONG, 6]))),
])
def test_chunks_read_a_long_line_as_the_whole_file_does(tmp_path: Path, name: str, fmt: Format,
                                                        content: bytes) -> None:
    path = write(tmp_path / name, content)
    whole = list(iter_records(path))
    refused = [(2, too_large(LONG + 23)), (5, too_large(LONG + 23))] if fmt == "jsonl" else [
        (3, too_large(LONG + 2)), (6, too_large(LONG + 2))]
    assert [(r.number, r.error) for r in whole if r.error] == refused
    assert [r.number for r in whole if r.error is None] == ([1, 3, 4, 6] if fmt == "jsonl" else [2, 4, 5, 7])
    for target in (100, 3 * CAP, LONG + 10):
        assert [r for chunk in plan_chunks(path, fmt, target) for r in iter_records(path, fmt, chunk)] == whole


@pytest.mark.parametrize(("name", "content"), [
    ("t.jsonl.gz", b'{"id": "a"}\n{"id": "' + b"x" * LONG + b'"}\n{"id": "c"}\n'),
    ("t.csv.gz", b"id\na\n" + b"x" * LONG + b"\nc\n"),
])
def test_a_gzip_file_inflating_to_a_long_line(tmp_path: Path, name: str, content: bytes) -> None:
    path = write(tmp_path / name, gzip.compress(content))
    numbers = [1, 2, 3] if name.startswith("t.jsonl") else [2, 3, 4]
    assert [(r.number, r.error and r.error.split(":")[0]) for r in iter_records(path, inflate_limit=1 << 30)] == [
        (numbers[0], None), (numbers[1], "record_too_large"), (numbers[2], None),
    ]


def test_the_column_reader_refuses_a_long_line_as_the_exact_reader_does(tmp_path: Path) -> None:
    columns = {"id": "text", "body": "text"}
    serializers = {name: column_serializer(cqltypes.UTF8Type, 4) for name in columns}
    encoder = RowEncoder(columns, ["id"], serializers, UNSET_VALUE)
    path = write(tmp_path / "t.csv", b"id,body\na,1\nb," + b"x" * LONG + b"\nc,3\n")
    out: list[tuple[int, Any, str | None]] = []
    for number, data, error in encoded_records(path, None, encoder, header=[]):
        if type(data) is EncodedRows:
            out.extend((n, row, None) for n, row in zip(data.numbers, data.rows, strict=True))
        else:
            out.append((number, data, error))
    assert [(n, e) for n, _, e in out] == [(2, None), (3, too_large(2 + LONG)), (4, None)]
    assert [(n, e) for n, _, e in read_records(path, "csv", header=[])] == [(n, e) for n, _, e in out]


# --- linear time, bounded memory: measured by what is scanned and held, not by the clock -----------


class Scanned(bytes):
    """Bytes that count what ``find`` and ``rfind`` look at, and stay counted when sliced or joined."""

    looked: ClassVar[list[int]] = [0]

    def find(self, sub: Any, start: SupportsIndex | None = None, end: SupportsIndex | None = None) -> int:
        self.looked[0] += len(self[start:end])
        return super().find(sub, start, end)

    def rfind(self, sub: Any, start: SupportsIndex | None = None, end: SupportsIndex | None = None) -> int:
        self.looked[0] += len(self[start:end])
        return super().rfind(sub, start, end)

    def __getitem__(self, key: Any) -> Any:
        got = super().__getitem__(key)
        return Scanned(got) if isinstance(key, slice) else got

    def __add__(self, other: Any) -> Scanned:
        return Scanned(bytes(self) + bytes(other))

    def __radd__(self, other: Any) -> Scanned:
        return Scanned(bytes(other) + bytes(self))


class ScannedFile(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        return Scanned(super().read(size))


@pytest.mark.parametrize(("cap", "line"), [(8 << 20, 3 << 20), (CAP, 2 << 20)])  # kept, and dropped
def test_a_line_of_many_reads_is_scanned_once(monkeypatch: pytest.MonkeyPatch, cap: int, line: int) -> None:
    monkeypatch.setattr(blocks, "MAX_RECORD_BYTES", cap)
    content = b"a\n" + b"x" * line + b"\nb\n"  # reads of 64 KiB (kept) or of CAP bytes (dropped)
    Scanned.looked[0] = 0
    got = list(blocks.blocks(ScannedFile(content), 0, len(content), 1))
    assert Scanned.looked[0] <= 2 * len(content)  # each byte looked at about once, not once per read
    if line <= cap:
        assert all(isinstance(block, bytes) for block in got) and b"".join(got) == content  # type: ignore[arg-type]
    else:
        assert got == [b"a\n", blocks.LongLine(line, cap), b"b\n"]


def test_a_line_over_the_cap_is_never_held(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", b'{"id": "a"}\n"' + b"x" * (4 << 20) + b'"\n{"id": "c"}\n')
    tracemalloc.start()
    try:
        records = list(iter_records(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.number for r in records] == [1, 2, 3] and records[1].error == too_large((4 << 20) + 2)
    assert peak < 1 << 20  # a few reads of at most CAP bytes, not the 4 MB line
