"""Streaming readers for the tenants' source files.

JSON: an array of objects, or objects one after another (JSON Lines). The text is decoded record
by record from a bounded buffer, so memory depends on the largest record, not on the file.
CSV: a header row, then rows of the same width; quoted fields may hold newlines, which is why
callers open the file with ``newline=""``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from mysimbdp_tasks.core.errors import InputError

CHUNK_CHARS = 1 << 20
MAX_RECORD_CHARS = 64 << 20  # beyond this a "record" is a corrupt file, not a record
_WS = " \t\r\n"


class _Buffer:
    """A sliding window over a text stream: ``text[pos:]`` is what has not been consumed yet."""

    def __init__(self, f: TextIO, chunk: int) -> None:
        self.f, self.chunk = f, chunk
        self.text, self.pos, self.eof = "", 0, False

    def more(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at end of input."""
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.text = self.text[self.pos:] + data
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character without consuming it, or "" at end of input."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""


def iter_json_objects(f: TextIO, source: str = "<input>", chunk: int = CHUNK_CHARS) -> Iterator[dict[str, Any]]:
    """Yield the objects of a JSON array or of a JSON Lines stream, one at a time."""
    buf = _Buffer(f, chunk)
    decoder = json.JSONDecoder()
    in_array = buf.peek() == "["
    if in_array:
        buf.pos += 1
    count = 0
    while True:
        c = buf.peek()
        if in_array and c == "]":
            buf.pos += 1
            if buf.peek():
                raise InputError(f"{source}: unexpected data after the closing ']' of the array")
            return
        if not c:
            if in_array:
                raise InputError(f"{source}: the JSON array is not closed (after {count} records)")
            return
        if in_array and count:
            if c != ",":
                raise InputError(f"{source}: expected ',' or ']' after record {count}, found {c!r}")
            buf.pos += 1
            c = buf.peek()
        if c != "{":
            raise InputError(f"{source}: record {count + 1} is not a JSON object (starts with {c!r})")
        yield _decode_one(buf, decoder, source, count + 1)
        count += 1


def _decode_one(buf: _Buffer, decoder: json.JSONDecoder, source: str, number: int) -> dict[str, Any]:
    while True:
        try:
            obj, end = decoder.raw_decode(buf.text, buf.pos)
        except json.JSONDecodeError as e:
            # An object cut by the chunk boundary fails the same way as a broken one: read on and
            # retry, up to a size no real record reaches.
            if len(buf.text) - buf.pos > MAX_RECORD_CHARS or not buf.more():
                raise InputError(f"{source}: record {number} is not valid JSON: {e.msg}") from None
            continue
        buf.pos = end
        assert isinstance(obj, dict)  # the caller saw "{"
        return obj


def iter_csv_rows(f: TextIO, columns: Sequence[str], source: str = "<input>") -> Iterator[list[str]]:
    """Yield the values of ``columns`` (in that order) from each row of a CSV file with a header."""
    reader = csv.reader(f)
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(f"{source}: the file is empty (a header row is expected)")
        missing = [c for c in columns if c not in header]
        if missing:
            raise InputError(f"{source}: header has no column(s) {', '.join(missing)}; "
                             f"found: {', '.join(header)}")
        width = len(header)
        picks = [header.index(c) for c in columns]
        for row in reader:
            if len(row) != width:
                if not row:  # a blank line, typically at the end: not a record
                    continue
                raise InputError(f"{source}: line {reader.line_num}: expected {width} fields "
                                 f"as in the header, found {len(row)}")
            yield [row[i] for i in picks]
    except csv.Error as e:
        raise InputError(f"{source}: line {reader.line_num}: {e}") from None
