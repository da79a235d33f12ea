"""CSV read by column gives exactly the rows, line numbers and refusals of the row-by-row reader and
encoder, on clean and on hostile files; and a clean file really is read by column."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from cassandra import cqltypes
from cassandra.query import UNSET_VALUE

from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.csvcolumns import encoded_records
from mysimbdp_tasks.core.encoding import EncodedRows, RowEncoder
from mysimbdp_tasks.core.errors import PermanentIngestError, RowError
from mysimbdp_tasks.core.formats import Chunk
from mysimbdp_tasks.core.parsing import read_records
from mysimbdp_tasks.core.rows import Refuse, ingest_chunk
from mysimbdp_tasks.services.serializers import column_serializer
from producers.generate import generate

pytestmark = pytest.mark.unit

BOM = b"\xef\xbb\xbf"
DRIVER_TYPES = {"text": cqltypes.UTF8Type, "timestamp": cqltypes.DateType, "int": cqltypes.Int32Type,
                "ascii": cqltypes.AsciiType, "bigint": cqltypes.LongType}
TENANT2 = {"created_utc": "timestamp", "subreddit": "text", "id": "text", "author": "text", "body": "text"}
TENANT2_KEY = ["subreddit", "id", "author"]
HEADER = b"created_utc,subreddit,id,author,body\r\n"


def encoder(columns: dict[str, str] | None = None, key: Sequence[str] = TENANT2_KEY) -> RowEncoder:
    columns = columns or TENANT2
    serializers = {name: column_serializer(DRIVER_TYPES[kind], 4) for name, kind in columns.items()}
    return RowEncoder(columns, list(key), serializers, UNSET_VALUE)


Outcome = tuple[Any, ...]


def _converted(enc: RowEncoder, header: list[list[str]], number: int, data: Any, error: str | None) -> Outcome:
    if type(data) is not list:
        return ("refused", number, "unparseable", error)
    try:
        row = enc.convert_fields(header[0], data)
    except RowError as exc:
        return ("refused", number, exc.reason, exc.detail)
    return ("row", number, type(row).__name__, list(row))


def exact(path: Path, enc: RowEncoder, chunk: Chunk | None = None) -> list[Outcome]:
    """What the row-by-row reader and the encoder make of ``path``: rows, refusals, a reader's error."""
    header: list[list[str]] = []
    out: list[Outcome] = []
    try:
        for number, data, error in read_records(path, "csv", chunk, header=header):
            out.append(_converted(enc, header, number, data, error))
    except PermanentIngestError as exc:
        out.append(("error", exc.reason, exc.detail))
    return out


def by_column(path: Path, enc: RowEncoder, chunk: Chunk | None = None, read_size: int = 1 << 20,
              blocks: list[int] | None = None) -> list[Outcome]:
    """The same through the column reader; ``blocks`` gets the size of each block read by column."""
    header: list[list[str]] = []
    out: list[Outcome] = []
    try:
        for number, data, error in encoded_records(path, chunk, enc, header=header, read_size=read_size):
            if type(data) is EncodedRows:
                assert data.numbers[0] == number
                out.extend(("row", n, "list", row) for n, row in zip(data.numbers, data.rows, strict=True))
                if blocks is not None:
                    blocks.append(len(data.rows))
            else:
                out.append(_converted(enc, header, number, data, error))
    except PermanentIngestError as exc:
        out.append(("error", exc.reason, exc.detail))
    return out


def assert_same(path: Path, enc: RowEncoder, targets: Iterable[int] = (1 << 30, 200, 37),
                read_sizes: Iterable[int] = (1 << 20, 64, 1)) -> None:
    """Equal outcomes for the whole file and for every chunk of several plans, in blocks of several sizes."""
    for target in targets:
        chunks: list[Chunk | None] = [None] if target >= 1 << 30 else list(plan_chunks(path, "csv", target))
        for chunk in chunks:
            expected = exact(path, enc, chunk)
            for read_size in read_sizes:
                assert by_column(path, enc, chunk, read_size) == expected, (path.read_bytes()[:300], chunk, read_size)


def write(tmp_path: Path, content: bytes, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- hostile files, each compared whole ------------------------------------------------------------

HOSTILE = [
    HEADER + b'1430438400,r,a,bob,"She said ""hi"", then left"\r\n1430438401,r,b,bob,plain\r\n',
    HEADER + b'1430438400,r,a,bob,"two\nlines"\n\n1430438401,r,b,bob,"x\r\n\r\ny"\r\n',  # a blank line
    HEADER + b"1430438400,r,a,bob,ok\n1430438401,r,b,bob,one,two\n1430438402,r,c,bob\n1430438403,r,d,bob,z\n",
    HEADER + b'1430438400,r,a,bob,ok\n1430438401,r,b,bob,"caf\xe9\nmore"\n1430438402,r,c,bob,fine\n',
    HEADER + b"1430438400,r,a,bob,x\rbroken\n1430438401,r,b,bob,y\n",  # a lone carriage return
    HEADER + b'1430438400,r,a,bob,"inside\rquotes"\n1430438401,r,b,bob,y\r',
    HEADER + b'1430438400,r,a,bob,mid"field"quote\n1430438401,r,b,bob,"after"close,more\n1430438402,r,c,d,e\n',
    HEADER + b'1430438400,r,a,bob,"unterminated\n1430438401,r,b,bob,y\n',
    HEADER + b'1430438400,r,a,bob,"",\n1430438401,r,b,bob,""\n1430438402,"",c,bob,x\n',  # empty key, extra field
    HEADER + b"1430438400,r,a,bob,nul\x00byte\n1430438401,r,b,bob,y\n",
    HEADER + b"1430438400,r,,bob,empty id\n1430438401,r,b,,empty author\n1430438402,r,c,bob,ok\n",
    HEADER + b"   \n1430438400,r,a,bob,after a whitespace line\n",
    HEADER + b"2015-05-01 00:05:58,r,a,bob,iso\n 1430438400 ,r,b,bob,spaces\n,r,c,bob,no time\n",
    HEADER + b"14304384001,r,a,bob,eleven digits\n-5,r,b,bob,negative\n1e9,r,c,bob,exp\nabc,r,d,bob,bad\n",
    HEADER + "\u0661\u0662\u0663,r,a,bob,arabic digits\n\u00b2,r,b,bob,superscript\n".encode(),
    HEADER + b"1430438400,r,a,bob,surrogate \xed\xa0\x80\n1430438401,r,b,bob,overlong \xc0\xaf\n",
    HEADER + b"1430438400,r,a,bob,five bytes \xf8\x88\x80\x80\x80\n1430438401,r,b,bob,beyond \xf4\x90\x80\x80\n",
    HEADER + b"1430438400,r,a,bob,truncated \xe6\x97\n1430438401,r,b,bob,stray \x80\n",
    HEADER + b"1430438400,r,a,bob,no newline at the end",
    HEADER + b'1430438400,r,a,bob,"quoted, no newline at the end"',
    HEADER + b"1430438400,r,a,bob,x\r\n\r\n",
    BOM + HEADER + b"1430438400,r,a,bob,x\n",
    BOM + b'"created_utc",subreddit,id,author,body\n1430438400,r,a,bob,x\n',
    b"\n" + HEADER + b"1430438400,r,a,bob,x\n",
    b"created_utc,subreddit,id,author,body,extra\n1430438400,r,a,bob,x,\xff\n1430438401,r,b,bob,y,z\n",
    b"body,author,id,subreddit,created_utc\n\"b, 1\",bob,a,r,1430438400\n",  # other column order
    b"created_utc,subreddit,id,body\n1430438400,r,a,x\n",  # the key column author is missing
    b"created_utc,subreddit,id,author,body,id\n1,r,a,b,x,y\n",  # a repeated column
    b"created_utc,subreddit,id,au\rthor,body\n1430438400,r,a,bob,x\n",
    HEADER,
    b"",
    HEADER + b'1430438400,r,a,bob,"' + b"word, " * 100_000 + b'"\n1430438401,r,b,bob,y\n',
    HEADER + b'1430438400,r,a,bob,"' + b"x" * (16 << 20) + b'"\n1430438401,r,b,bob,y\n',  # above the csv limit
]


@pytest.mark.parametrize("content", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_a_hostile_file_reads_the_same_by_column(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, content)
    big = len(content) > 100_000  # tiny reads of a huge field would only be slow
    assert_same(path, encoder(), targets=(1 << 30,) if big else (1 << 30, 40), read_sizes=(1 << 20,) if big else
                (1 << 20, 64, 1))


def test_types_beyond_text_and_timestamps_read_the_same(tmp_path: Path) -> None:
    columns = {"id": "text", "n": "int", "code": "ascii", "big": "bigint", "at": "timestamp"}
    path = write(tmp_path, b"id,n,code,big,at\na,1,x,9,1430438400\nb, 2 ,y,,\nc,x,z,1,1\nd,3,\xc3\xa9,2,2\n"
                           b"e,,,,\nf,4,w,99999999999999999999,3\n")
    for key in (["id"], ["id", "n"], ["id", "code"], ["id", "at"]):
        assert_same(path, encoder(columns, key))


# --- generated files: random hostile text, and tenant2 files --------------------------------------

PIECES = ["a", "bob", ",", ",", '"', '""', "\n", "\r\n", "\r", " ", "é", "😀", "1430438400", "2015-05-01 00:05:58",
          "\n\n", "x,y", '"q, u"', "\x00", "\ud800"]


def random_csv(rng: random.Random, rows: int) -> bytes:
    lines = [HEADER]
    for _ in range(rows):
        if rng.random() < 0.8:  # mostly well formed rows, quoted as a csv writer would
            fields = ["".join(rng.choice(PIECES[:17]) for _ in range(rng.randint(0, 4))) for _ in range(5)]
            fields[0] = str(rng.choice([1430438400 + rng.randint(0, 10**6), rng.randint(0, 10**11)]))
            line = ",".join('"' + f.replace('"', '""') + '"' if any(c in f for c in ',"\r\n') or rng.random() < 0.1
                            else f for f in fields) + rng.choice(["\n", "\r\n"])
        else:  # anything at all
            line = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12))) + "\n"
        raw = line.encode("utf-8", "surrogatepass")
        lines.append(raw if rng.random() < 0.98 else b"\xff" + raw)
    return b"".join(lines)


@pytest.mark.parametrize("seed", range(60))
def test_random_hostile_files_read_the_same(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    assert_same(write(tmp_path, random_csv(rng, rng.randint(1, 60))), encoder())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_tenant2_files_read_the_same_and_by_column(tmp_path: Path, seed: int) -> None:
    made = generate("tenant2", 400_000, tmp_path / "g.csv", seed=seed, fmt="csv")
    enc = encoder()
    assert_same(made.path, enc, targets=(1 << 30, 100_000), read_sizes=(1 << 20, 30_000))
    blocks: list[int] = []
    rows = by_column(made.path, enc, None, 30_000, blocks)
    # Quotes, commas, backslashes, line breaks and unicode, and still every row read by column.
    assert len(rows) == made.records and sum(blocks) == made.records and len(blocks) > 5


class Table:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def write(self, rows: Iterable[Sequence[Any]], refuse: Refuse) -> int:
        written = 0
        for position, row in enumerate(rows):
            if row[1] == b"refuse-me":  # a row the sink refuses, reported by position
                refuse(position, "rejected_by_cassandra", "no")
                continue
            self.rows.append((type(row).__name__, list(row)))
            written += 1
        return written


def test_ingest_chunk_writes_and_refuses_the_same_rows_by_column(tmp_path: Path) -> None:
    rng = random.Random(7)
    body = b"".join(random_csv(rng, 40)[len(HEADER):] for _ in range(5))
    path = write(tmp_path, HEADER + body + b"1430438400,refuse-me,z,bob,x\n" + body)
    for chunk in plan_chunks(path, "csv", 500):
        old, new = Table(), Table()
        before = ingest_chunk(path, "csv", chunk, encoder(), old.write, chunk.index, columnar=False).to_dict()
        after = ingest_chunk(path, "csv", chunk, encoder(), new.write, chunk.index).to_dict()
        assert (after, new.rows) == (before, old.rows)
