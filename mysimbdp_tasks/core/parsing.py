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
  ``bad_encoding``, ``bad_json``, ``not_an_object``.
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
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from .errors import FileChangedError
from .formats import (
    BOM,
    MAX_RECORD_BYTES,
    READ_SIZE,
    Chunk,
    Format,
    PathLike,
    Record,
    bounded_size,
    detect_format,
    unparseable,
)
from .jsonstream import JsonWindow, Refused, decoded_reader, json_values, undecodable

__all__ = ["iter_records"]


def iter_records(
    path: PathLike, fmt: Format | None = None, chunk: Chunk | None = None, *, read_size: int = READ_SIZE,
    limit: int | None = None,
) -> Iterator[Record]:
    """Records of a whole file, or of one ``chunk`` of it from ``chunks.plan_chunks``; with ``limit``, of
    its first ``limit`` bytes only (what was admitted: bytes appended since are not read)."""
    fmt = fmt or detect_format(path)
    with open(path, "rb") as f:
        size = bounded_size(f, limit)
        if chunk is None:
            chunk = Chunk(0, 0, size, 1)
        elif not 0 <= chunk.start_offset <= chunk.end_offset <= size:
            # Planned on a longer file: it was truncated or replaced since, so those bytes are gone.
            raise FileChangedError(f"chunk {chunk.index} (bytes {chunk.start_offset}..{chunk.end_offset}) "
                                   f"does not fit a file of {size} bytes; it changed after planning")
        if fmt == "csv":
            # The csv module's default limit is 128 KiB per field; a reddit body can be longer. The
            # limit is process-wide, so it is set where CSV is read rather than as an import side effect.
            csv.field_size_limit(MAX_RECORD_BYTES)
            yield from _csv_records(f, chunk, size)
        elif fmt == "jsonl":
            yield from _jsonl_records(f, chunk)
        elif fmt == "json":
            yield from _json_records(f, chunk, size, read_size)
        else:
            raise ValueError(f"unknown format {fmt!r}")



def _byte_lines(f: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """The lines of ``[start, end)``; chunk ends are line starts, so no line is cut."""
    if start >= end:
        return
    f.seek(start)
    pos = start
    for line in f:
        if pos == 0 and line.startswith(BOM):
            yield line[len(BOM) :]
        else:
            yield line
        pos += len(line)
        if pos >= end:
            return


class _Flag:
    __slots__ = ("up",)

    def __init__(self) -> None:
        self.up = False


def _text_lines(f: BinaryIO, start: int, end: int, bad_encoding: _Flag) -> Iterator[str]:
    for line in _byte_lines(f, start, end):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            # Keep the row's shape so the csv parser stays in step; the row is refused later.
            bad_encoding.up = True
            yield line.decode("utf-8", "surrogateescape")


def _csv_header(f: BinaryIO, size: int) -> list[str] | None:
    bad = _Flag()
    for row in csv.reader(_text_lines(f, 0, size, bad)):
        if row:
            return _checked_header(row, bad)
    return None


def _checked_header(row: list[str], bad: _Flag) -> list[str]:
    if bad.up:
        raise unparseable("the CSV header is not valid UTF-8")
    seen: set[str] = set()
    for name in row:
        if name in seen:
            raise unparseable(f"the CSV header repeats column {name!r}")
        seen.add(name)
    return row


def _csv_records(f: BinaryIO, chunk: Chunk, size: int) -> Iterator[Record]:
    header = None if chunk.start_offset == 0 else _csv_header(f, size)
    bad = _Flag()
    reader = csv.reader(_text_lines(f, chunk.start_offset, chunk.end_offset, bad))
    base = chunk.first_number
    consumed = 0  # lines of the chunk read so far: the next record starts at base + consumed
    while True:
        try:
            for row in reader:
                number, consumed = base + consumed, reader.line_num
                if bad.up and header is not None:  # a bad header is refused by _checked_header
                    bad.up = False
                    yield Record(number, None, "bad_encoding: the row is not valid UTF-8")
                    continue
                if not row:
                    continue  # a blank line
                if header is None:
                    header = _checked_header(row, bad)
                elif len(row) > len(header):
                    detail = f"{len(row)} fields, the header has {len(header)}"
                    yield Record(number, None, f"too_many_fields: {detail}")
                else:  # a short row leaves the missing columns absent
                    yield Record(number, dict(zip(header, row, strict=False)), None)
            return
        except csv.Error as exc:
            if header is None:  # taking a data row for the header would shift every column
                raise unparseable(f"the CSV header cannot be read: {exc}") from None
            # The reader starts afresh on the next line, so the rest of the file is still read.
            number, consumed = base + consumed, reader.line_num
            bad.up = False
            yield Record(number, None, f"bad_csv: {exc}")


def _jsonl_records(f: BinaryIO, chunk: Chunk) -> Iterator[Record]:
    loads = json.loads
    number = chunk.first_number - 1
    for line in _byte_lines(f, chunk.start_offset, chunk.end_offset):
        number += 1
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield Record(number, None, "bad_encoding: the line is not valid UTF-8")
            continue
        try:
            data = loads(text)
        except json.JSONDecodeError as exc:
            if not text.isspace():
                yield Record(number, None, f"bad_json: {exc.msg} at column {exc.colno}")
            continue
        except (RecursionError, ValueError) as exc:  # too deep, or an integer int() refuses
            yield Record(number, None, undecodable(exc))
            continue
        yield _json_record(number, data)


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


def _json_records(f: BinaryIO, chunk: Chunk, size: int, read_size: int) -> Iterator[Record]:
    first = chunk.start_offset == 0
    read = decoded_reader(f, chunk.start_offset, chunk.end_offset, "utf-8-sig" if first else "utf-8")
    window = JsonWindow(read, read_size, chunk.start_offset)
    values = json_values(window, first, chunk.end_offset == size, chunk.first_number)
    try:
        for number, value in values:
            yield _json_record(number, value)
    except UnicodeDecodeError as exc:
        raise unparseable(f"the file is not valid UTF-8 ({exc.reason})") from None
