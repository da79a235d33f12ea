"""Streaming readers for tenant files: CSV, JSON arrays and JSON Lines, whole or by chunk.

Nothing here loads a whole file: CSV and JSON Lines are read line by line, JSON arrays through the
incremental decoder of :mod:`jsonstream` over a window of ``read_size`` bytes, so memory stays flat
however large the file is. The format comes from :mod:`formats`; a ``chunk`` from :mod:`chunks`
limits the read to that byte range (a CSV chunk takes its header from the start of the file), and
its records keep the numbers of one sequential read. Every record comes out as a
``Record(number, data, error)``:

- ``number`` is the 1-based line of the record's first line for CSV (the header is line 1, so
  the first data row is line 2; quoted newlines count, so numbers match an editor) and JSON
  Lines, and the 1-based position of the element in a JSON array.
- A record that cannot be read yields ``data=None`` and ``error="<reason>: <detail>"`` (the same
  shape as ``RowError``), and reading goes on. Reasons: ``bad_csv``, ``too_many_fields``,
  ``bad_encoding``, ``bad_json``, ``not_an_object``, ``record_too_large``.
- A file that cannot be read at all raises ``PermanentIngestError("unparseable", ...)`` when the
  reader reaches the problem; records yielded before it stay yielded. A chunk that no longer fits
  the file raises ``FileChangedError``.

Decisions:

- Lines end with ``\\n`` (``\\r\\n`` works too); a lone ``\\r`` is not a line end, as in JSON Lines.
- An empty file (or one holding only whitespace) has no records; it is not an error. A CSV file's
  first non-blank row is its header; blank lines are skipped everywhere. A CSV header with a
  repeated column name is unparseable (which value would win is a guess). A row with fewer
  fields than the header leaves the missing columns absent; a row with more is refused.
- CSV follows the ``excel`` dialect of the ``csv`` module (comma, ``"`` quoting, doubled quotes).
  A field may be as large as ``MAX_RECORD_BYTES``.
- A line of CSV or JSON Lines may be as long as ``MAX_RECORD_BYTES``: a longer one is dropped as it
  is read, never held whole, and its record refused as ``record_too_large`` (a CSV header that
  long makes the file unparseable). A JSON array's element is held while it is decoded: one over
  the limit ends the read as unparseable (see :mod:`jsonstream`).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO

import orjson

from .blocks import Flag as _Flag
from .blocks import LongLine as _LongLine
from .blocks import blocks as _blocks
from .blocks import no_long_digits as _no_long_digits
from .blocks import orjson_agrees as _orjson_agrees
from .blocks import text_lines as _text_lines
from .errors import FileChangedError
from .formats import (
    BOM,
    MAX_RECORD_BYTES,
    READ_SIZE,
    Chunk,
    Format,
    Opener,
    PathLike,
    Record,
    bounded_size,
    detect_format,
    is_gzip,
    open_plain,
    unparseable,
)
from .gzipped import inflated
from .jsonstream import (
    FIRST_FLAT_OBJECT,
    NEXT_FLAT_OBJECT,
    JsonWindow,
    Refused,
    decoded_reader,
    json_values,
    undecodable,
)

__all__ = ["iter_records", "read_records"]

_orjson_loads = orjson.loads
_OrjsonError = orjson.JSONDecodeError
_WS_BYTES = re.compile(rb"[ \t\n\r]*+")
_UNBOUNDED = 1 << 62  # the end of a stream whose length is known only at its end (gzip)
#: A tenant's column types and key columns, for readers of typed files (Parquet).
Typed = tuple[Mapping[str, str], Sequence[str]]


def iter_records(
    path: PathLike, fmt: Format | None = None, chunk: Chunk | None = None, *, read_size: int = READ_SIZE,
    limit: int | None = None, inflate_limit: int | None = None, typed: Typed | None = None,
    opener: Opener = open_plain,
) -> Iterator[Record]:
    """Records of a whole file, or of one ``chunk`` of it from ``chunks.plan_chunks``; with ``limit``, of
    its first ``limit`` bytes only (what was admitted: bytes appended since are not read)."""
    header: list[list[str]] = []
    for number, data, error in read_records(path, fmt, chunk, read_size=read_size, limit=limit, header=header,
                                            inflate_limit=inflate_limit, typed=typed, opener=opener):
        if type(data) is list:
            yield Record(number, dict(zip(header[0], data, strict=False)), None)
        else:
            yield Record(number, data, error)


def read_records(
    path: PathLike, fmt: Format | None = None, chunk: Chunk | None = None, *, read_size: int = READ_SIZE,
    limit: int | None = None, header: list[list[str]] | None = None, inflate_limit: int | None = None,
    typed: Typed | None = None, opener: Opener = open_plain,
) -> Iterator[tuple[int, Any, str | None]]:
    """What :func:`iter_records` yields, as plain ``(number, data, error)`` tuples and, for CSV (and
    Parquet), with each row's fields as a list in the header's order: no dict per row on the ingest
    path. The header is appended to ``header`` before the first row comes (a short row has fewer
    fields). ``inflate_limit`` bounds what a gzip file may inflate to (see :mod:`gzipped`);
    ``typed`` is the tenant's ``(column types, key columns)``, which a Parquet file is checked
    against (see :mod:`columnar`; without it every column of the file is read). ``opener`` opens
    a text file (a sealed file's is its decrypting reader, see :mod:`sealed`)."""
    fmt = fmt or detect_format(path, inflate_limit=inflate_limit, opener=opener)
    if fmt == "parquet" or is_gzip(fmt):
        yield from _packed_records(path, fmt, chunk, read_size, limit, [] if header is None else header,
                                   inflate_limit, typed)
        return
    with opener(path) as f:
        size = bounded_size(f, limit)
        chunk = _fitted(chunk, size)
        if fmt == "csv":
            # The csv module's default limit is 128 KiB per field; a reddit body can be longer. The
            # limit is process-wide, so it is set where CSV is read rather than as an import side effect.
            csv.field_size_limit(MAX_RECORD_BYTES)
            yield from _csv_records(f, chunk, size, read_size, [] if header is None else header)
        elif fmt == "jsonl":
            yield from _jsonl_records(f, chunk, read_size)
        elif fmt == "json":
            yield from _json_records(f, chunk, size, read_size)
        else:
            raise ValueError(f"unknown format {fmt!r}")


def _fitted(chunk: Chunk | None, size: int) -> Chunk:
    """``chunk``, checked against the file's size; the whole file for None."""
    if chunk is None:
        return Chunk(0, 0, size, 1)
    if not 0 <= chunk.start_offset <= chunk.end_offset <= size:
        # Planned on a longer file: it was truncated or replaced since, so those bytes are gone.
        raise FileChangedError(f"chunk {chunk.index} (bytes {chunk.start_offset}..{chunk.end_offset}) "
                               f"does not fit a file of {size} bytes; it changed after planning")
    return chunk


def _packed_records(path: PathLike, fmt: Format, chunk: Chunk | None, read_size: int, limit: int | None,
                    header: list[list[str]], inflate_limit: int | None,
                    typed: Typed | None) -> Iterator[tuple[int, Any, str | None]]:
    """Records of a Parquet file (by row group) or a gzip file (one chunk, inflated as a stream)."""
    with open(path, "rb") as f:
        size = bounded_size(f, limit)
    chunk = _fitted(chunk, size)
    if fmt == "parquet":
        # Imported here: pyarrow (and numpy) in every worker's heap made the CSV path's CPU per row ~5 % higher.
        from . import columnar

        yield from columnar.read_rows(path, chunk, size, typed, header)
        return
    whole = Chunk(0, 0, _UNBOUNDED, 1)  # the one chunk of a gzip file, in inflated bytes
    with inflated(path, inflate_limit, limit) as g:
        if fmt == "csv.gz":
            csv.field_size_limit(MAX_RECORD_BYTES)
            yield from _csv_records(g, whole, _UNBOUNDED, read_size, header)
        elif fmt == "jsonl.gz":
            yield from _jsonl_records(g, whole, read_size)
        else:
            yield from _json_records(g, whole, _UNBOUNDED, read_size, fast=False)


def _csv_header(f: BinaryIO, size: int, read_size: int) -> list[str] | None:
    bad = _Flag()
    for row in csv.reader(_text_lines(f, 0, size, read_size, bad)):
        if row:
            return _checked_header(row, bad)
    return None


def _checked_header(row: list[str], bad: _Flag) -> list[str]:
    if bad.up:
        error = bad.take()
        if error.startswith("record_too_large"):
            raise unparseable(f"the CSV header is too long: {error.partition(': ')[2]}")
        raise unparseable("the CSV header is not valid UTF-8")
    seen: set[str] = set()
    for name in row:
        if name in seen:
            raise unparseable(f"the CSV header repeats column {name!r}")
        seen.add(name)
    return row


def _csv_records(f: BinaryIO, chunk: Chunk, size: int, read_size: int,
                 header_out: list[list[str]]) -> Iterator[tuple[int, Any, str | None]]:
    header = None if chunk.start_offset == 0 else _csv_header(f, size, read_size)
    if header is not None:
        header_out.append(header)
    bad = _Flag()
    reader = csv.reader(_text_lines(f, chunk.start_offset, chunk.end_offset, read_size, bad))
    base = chunk.first_number
    consumed = 0  # lines of the chunk read so far: the next record starts at base + consumed
    while True:
        try:
            for row in reader:
                number, consumed = base + consumed, reader.line_num
                if bad.up and header is not None:  # a bad header is refused by _checked_header
                    yield number, None, bad.take()
                    continue
                if not row:
                    continue  # a blank line
                if header is None:
                    header = _checked_header(row, bad)
                    header_out.append(header)
                elif len(row) > len(header):
                    detail = f"{len(row)} fields, the header has {len(header)}"
                    yield number, None, f"too_many_fields: {detail}"
                else:  # a short row leaves the missing columns absent
                    yield number, row, None
            return
        except csv.Error as exc:
            if header is None:  # taking a data row for the header would shift every column
                raise unparseable(f"the CSV header cannot be read: {exc}") from None
            # The reader starts afresh on the next line, so the rest of the file is still read.
            number, consumed = base + consumed, reader.line_num
            bad.take()
            yield number, None, f"bad_csv: {exc}"


# For the reader of CSV by column (csvcolumns): the exact reader it hands a chunk's rest to, the header
# it reads, and the chunk checked against the file's size.
csv_records, csv_header, fitted_chunk = _csv_records, _csv_header, _fitted


def _jsonl_records(f: BinaryIO, chunk: Chunk, read_size: int) -> Iterator[tuple[int, Any, str | None]]:
    number = chunk.first_number - 1
    for block in _blocks(f, chunk.start_offset, chunk.end_offset, read_size):
        if isinstance(block, _LongLine):  # a line over MAX_RECORD_BYTES, never held whole
            number += 1
            yield number, None, block.error
            continue
        short_numbers = _no_long_digits(block)  # once per block, not per line
        lines = block.split(b"\n")
        if not lines[-1]:
            lines.pop()  # the block ends with a line end
        for line in lines:
            number += 1
            if _orjson_agrees(line, short_numbers):
                try:
                    data = _orjson_loads(line)
                except _OrjsonError:
                    pass
                else:
                    yield _json_outcome(number, data)
                    continue
            outcome = _jsonl_line(number, line)
            if outcome is not None:
                yield outcome


def _jsonl_line(number: int, line: bytes) -> tuple[int, Any, str | None] | None:
    """One line read as the json module reads it; None for a blank line."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return number, None, "bad_encoding: the line is not valid UTF-8"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.strip():
            return number, None, f"bad_json: {exc.msg} at column {exc.colno}"
        return None
    except (RecursionError, ValueError) as exc:  # too deep, or an integer int() refuses
        return number, None, undecodable(exc)
    return _json_outcome(number, data)


def _json_outcome(number: int, value: Any) -> tuple[int, Any, str | None]:
    if type(value) is dict:
        return number, value, None
    record = _json_record(number, value)
    return record.number, record.data, record.error


def _json_record(number: int, value: Any) -> Record:
    if type(value) is dict:
        return Record(number, value, None)
    if type(value) is Refused:
        return Record(number, None, value.error)
    if isinstance(value, list):
        kind = "an array"
    elif isinstance(value, str) and len(value) > 40:
        kind = json.dumps(value[:40]) + "..."  # a string can be megabytes: never dump it whole
    else:
        kind = json.dumps(value)[:40]
    return Record(number, None, f"not_an_object: got {kind}")


def _json_records(f: BinaryIO, chunk: Chunk, size: int, read_size: int,
                  fast: bool = True) -> Iterator[tuple[int, Any, str | None]]:
    """Flat objects through orjson while they come; from the first other thing on, the json module's
    incremental reader decides, from right after the last element read, exactly as it always did.
    ``fast=False`` (a stream that cannot seek back, such as a gzip file): the json module reads all."""
    resume = [chunk.start_offset, chunk.first_number]
    if fast:
        yield from _flat_objects(f, chunk, read_size, resume)
    start, number = resume
    first = start == 0
    read = decoded_reader(f, start, chunk.end_offset, "utf-8-sig" if first else "utf-8")
    window = JsonWindow(read, read_size, start)
    values = json_values(window, first, chunk.end_offset == size, number)
    try:
        for number, value in values:
            yield _json_record(number, value)
    except UnicodeDecodeError as exc:
        raise unparseable(f"the file is not valid UTF-8 ({exc.reason})") from None


def _flat_objects(f: BinaryIO, chunk: Chunk, read_size: int, resume: list[int]) -> Iterator[tuple[int, Any, None]]:
    """The array's elements that are objects holding no object or array, found by one regex call each
    and built by orjson, until anything else; ``resume`` is left at the offset right after the last
    one and the number of the next."""
    start, end = chunk.start_offset, chunk.end_offset
    step = max(read_size, 1 << 16)
    f.seek(start)
    buf = f.read(min(step, end - start))
    base, read_to, pos = start, start + len(buf), 0
    pattern = NEXT_FLAT_OBJECT
    if start == 0:
        pos = _WS_BYTES.match(buf, len(BOM) if buf.startswith(BOM) else 0).end()  # type: ignore[union-attr]
        if buf[pos : pos + 1] != b"[":
            return  # a stream of objects, or not JSON: the json module reads it all
        pos, pattern = pos + 1, FIRST_FLAT_OBJECT
    number = chunk.first_number
    short_numbers = _no_long_digits(buf)  # once per buffer, not per object
    while True:
        match = pattern.match(buf, pos)
        if match is None:
            pending = len(buf) - pos
            if read_to >= end or pending > MAX_RECORD_BYTES:
                return
            # As much again as is pending: a large element is scanned again a few times, not once per read.
            more = f.read(min(max(step, pending), end - read_to))
            if not more:
                return
            buf, base, pos, read_to = buf[pos:] + more, base + pos, 0, read_to + len(more)
            short_numbers = _no_long_digits(buf)
            continue
        text = match.group(1)
        if not _orjson_agrees(text, short_numbers):
            return
        try:
            data = _orjson_loads(text)
        except _OrjsonError:
            return
        yield number, data, None
        number, pos, pattern = number + 1, match.end(), NEXT_FLAT_OBJECT
        resume[0], resume[1] = base + pos, number
