"""Streaming readers for tenant files: CSV, JSON arrays and JSON Lines, whole or by chunk.

Nothing here loads a whole file: CSV and JSON Lines are read line by line, JSON arrays through an
incremental decoder over a window of ``read_size`` bytes, so memory stays flat however large the
file is. Every record comes out as a ``Record(number, data, error)``:

- ``number`` is the 1-based line of the record's first line for CSV (the header is line 1, so
  the first data row is line 2; quoted newlines count, so numbers match an editor) and JSON
  Lines, and the 1-based position of the element in a JSON array.
- A record that cannot be read yields ``data=None`` and ``error="<reason>: <detail>"`` (the same
  shape as ``RowError``), and reading goes on. Reasons: ``bad_csv``, ``too_many_fields``,
  ``bad_encoding``, ``bad_json``, ``not_an_object``.
- A file that cannot be read at all raises ``PermanentIngestError("unparseable", ...)`` when the
  reader reaches the problem; records yielded before it stay yielded. An unknown extension raises
  ``PermanentIngestError("wrong_file_type", ...)``.

Decisions:

- Files are UTF-8; a leading BOM is ignored. Lines end with ``\\n`` (``\\r\\n`` works too);
  a lone ``\\r`` is not a line end, as in JSON Lines.
- An empty file (or one holding only whitespace) has no records; it is not an error. A CSV file's
  first non-blank row is its header; blank lines are skipped everywhere. A CSV header with a
  repeated column name is unparseable (which value would win is a guess). A row with fewer
  fields than the header leaves the missing columns absent; a row with more is refused.
- CSV follows the ``excel`` dialect of the ``csv`` module (comma, ``"`` quoting, doubled quotes).
  A field may be as large as ``MAX_RECORD_BYTES``, Cassandra's default largest mutation.
- ``.json`` is sniffed: ``[`` starts an array of objects; ``{`` starts JSON Lines when the first
  line is one whole object, and otherwise (a pretty-printed object) a stream of objects
  separated by whitespace. ``.jsonl`` / ``.ndjson`` are always JSON Lines.

Chunks let several worker processes share one large file. ``plan_chunks`` scans the file once and
cuts it at record boundaries about every ``target_bytes``: for CSV with a quote-aware scan that
mirrors the ``csv`` module (a quote opens a field only at its start; ``""`` inside a quoted field
is an escaped quote), for JSON Lines at newlines, for JSON arrays right after a top-level element.
``iter_records(path, fmt, chunk)`` then reads only that byte range; a CSV chunk takes its header
from the start of the file. Reading every chunk gives exactly the records of one sequential read,
with the same numbers.
"""

from __future__ import annotations

import codecs
import csv
import json
import mmap
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, NamedTuple

from .errors import FileChangedError, PermanentIngestError

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MAX_RECORD_BYTES",
    "READ_SIZE",
    "Chunk",
    "Format",
    "Record",
    "detect_format",
    "iter_records",
    "plan_chunks",
]

Format = Literal["csv", "json", "jsonl"]
PathLike = str | os.PathLike[str]

READ_SIZE = 1 << 20  # bytes read at a time from a JSON array
MAX_RECORD_BYTES = 16 << 20  # half of Cassandra's default 32 MiB commit log segment
DEFAULT_CHUNK_BYTES = 8 << 20

_BOM = codecs.BOM_UTF8
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_WS_BYTES = re.compile(rb"[ \t\n\r]*")
# The rest of a quoted CSV field after its opening quote, through the closing quote. Possessive
# quantifiers stop "" (an escaped quote) from being split into a closing quote plus a new one.
_QUOTED_REST = re.compile(rb'[^"]*+(?:""[^"]*+)*+"')
# One token of a JSON value for skipping it without recursion: a string, a bracket or a comma.
_SKIP_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')
_decode_json = json.JSONDecoder().raw_decode


class _Refused(NamedTuple):
    """A JSON value that was skipped rather than decoded, with the reason (``bad_json: ...``)."""

    error: str


class Record(NamedTuple):
    number: int
    data: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A byte range of a file holding whole records.

    It travels to a task and into the job record as a dict, ``dataclasses.asdict(chunk)``, and is
    rebuilt with ``Chunk(**values)``, so the field names are part of the wire format.
    """

    index: int
    start_offset: int
    end_offset: int  # exclusive
    first_number: int  # number of the range's first line (CSV, JSON Lines) or element (JSON)


def _unparseable(detail: str) -> PermanentIngestError:
    return PermanentIngestError("unparseable", detail)


# --- format detection ---------------------------------------------------------------------------


def detect_format(path: PathLike) -> Format:
    """The format of a file, from its extension and, for ``.json``, its first bytes."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    fmt = _SUFFIXES.get(suffix)
    if fmt is None:
        raise PermanentIngestError(
            "wrong_file_type", f"{os.path.basename(path)}: expected .csv, .json, .jsonl or .ndjson"
        )
    if fmt != "json":
        return fmt
    with open(path, "rb") as f:
        return _sniff_json(f)


def _sniff_json(f: BinaryIO) -> Format:
    head = f.read(64 << 10)
    start = len(_BOM) if head.startswith(_BOM) else 0
    while True:
        match = _JSON_WS_BYTES.match(head, start)
        start = match.end() if match else start
        if start < len(head):
            break
        head, start = f.read(64 << 10), 0
        if not head:
            return "json"  # empty: no records
    first = head[start : start + 1]
    if first == b"[":
        return "json"
    if first != b"{":
        raise _unparseable(f"a .json file must start with '[' or '{{', not {first.decode(errors='replace')!r}")
    end = head.find(b"\n", start)
    while end < 0 and len(head) - start < MAX_RECORD_BYTES:
        more = f.read(64 << 10)
        if not more:
            end = len(head)
            break
        head += more
        end = head.find(b"\n", start)
    # One object per line ends its first line with "}"; a pretty-printed object never does.
    return "jsonl" if head[start:end].rstrip().endswith(b"}") else "json"


# --- reading ------------------------------------------------------------------------------------


def iter_records(
    path: PathLike, fmt: Format | None = None, chunk: Chunk | None = None, *, read_size: int = READ_SIZE,
    limit: int | None = None,
) -> Iterator[Record]:
    """Records of a whole file, or of one ``chunk`` of it from ``plan_chunks``; with ``limit``, of
    its first ``limit`` bytes only (what was admitted: bytes appended since are not read)."""
    fmt = fmt or detect_format(path)
    with open(path, "rb") as f:
        size = _bounded_size(f, limit)
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


def _bounded_size(f: BinaryIO, limit: int | None) -> int:
    """The size to read: the file's, or ``limit`` if the file grew past it (never more)."""
    size = os.fstat(f.fileno()).st_size
    return size if limit is None else min(size, limit)


def _byte_lines(f: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """The lines of ``[start, end)``; chunk ends are line starts, so no line is cut."""
    if start >= end:
        return
    f.seek(start)
    pos = start
    for line in f:
        if pos == 0 and line.startswith(_BOM):
            yield line[len(_BOM) :]
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
        raise _unparseable("the CSV header is not valid UTF-8")
    seen: set[str] = set()
    for name in row:
        if name in seen:
            raise _unparseable(f"the CSV header repeats column {name!r}")
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
                else:
                    yield Record(number, dict(zip(header, row)), None)
            return
        except csv.Error as exc:
            if header is None:  # taking a data row for the header would shift every column
                raise _unparseable(f"the CSV header cannot be read: {exc}") from None
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
            yield Record(number, None, _undecodable(exc))
            continue
        yield _json_record(number, data)


def _undecodable(exc: BaseException) -> str:
    """The refusal of a syntactically valid JSON value that Python's decoder cannot build."""
    if isinstance(exc, RecursionError):
        return "bad_json: nested too deeply"
    return f"bad_json: {str(exc).split(';')[0][:120]}"


def _json_record(number: int, value: Any) -> Record:
    if type(value) is dict:
        return Record(number, value, None)
    if type(value) is _Refused:
        return Record(number, None, value.error)
    if isinstance(value, list):
        kind = "an array"
    elif isinstance(value, str) and len(value) > 40:
        kind = json.dumps(value[:40]) + "..."  # a string can be megabytes: never dump it whole
    else:
        kind = json.dumps(value)[:40]
    return Record(number, None, f"not_an_object: got {kind}")


# --- JSON arrays --------------------------------------------------------------------------------


def _decoded_reader(f: BinaryIO, start: int, end: int, encoding: str) -> Callable[[int], str]:
    """``read(n)``: the text of about ``n`` more bytes of ``[start, end)``, "" at the end."""
    decoder = codecs.getincrementaldecoder(encoding)()
    remaining = end - start
    f.seek(start)

    def read(size: int) -> str:
        nonlocal remaining
        while remaining > 0:
            data = f.read(min(size, remaining))
            remaining = remaining - len(data) if data else 0
            text = decoder.decode(data, final=remaining == 0)
            if text:
                return text
        return ""

    return read


class _JsonWindow:
    """Decoded text that grows until a whole JSON value fits, then slides past it."""

    __slots__ = ("_read", "_read_size", "base", "buf", "eof", "pos")

    def __init__(self, read: Callable[[int], str], read_size: int, base: int) -> None:
        self._read = read
        self._read_size = read_size
        self.buf = ""
        self.pos = 0
        self.base = base  # offset of buf[0] in the source (bytes when decoded as latin-1)
        self.eof = False

    def fill(self, at_least: int = 0) -> bool:
        piece = "" if self.eof else self._read(max(self._read_size, at_least))
        if not piece:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + piece
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character, "" at the end; nothing is consumed."""
        while True:
            self.pos = _JSON_WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def value(self, number: int) -> Any:
        """The next value; a valid one Python cannot build (too deep, huge integer) is a ``_Refused``."""
        self.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = _decode_json(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                pending = len(self.buf) - self.pos
                if self.eof or not _maybe_cut(exc, len(self.buf)):
                    raise _unparseable(f"JSON record {number}: {exc.msg}") from None
                if pending > MAX_RECORD_BYTES:
                    raise _unparseable(f"JSON record {number} is not closed within {MAX_RECORD_BYTES} bytes") from None
                # Ask for as much again as is pending, so re-decoding a large value stays linear.
                self.fill(pending)
                continue
            except (RecursionError, ValueError) as exc:  # valid JSON that Python cannot build
                return self._skip(number, _undecodable(exc))
            if end == len(self.buf) and self.fill():
                continue  # a number at the very end of the window may go on in the next piece
            self.pos = end
            return value

    def _skip(self, number: int, error: str) -> _Refused:
        """Step over the value at ``pos`` without decoding it, so the records after it still come."""
        while True:
            end = _value_end(self.buf, self.pos)
            if end is not None:
                self.pos = end
                return _Refused(error)
            pending = len(self.buf) - self.pos
            if pending > MAX_RECORD_BYTES or not self.fill(pending):
                raise _unparseable(f"JSON record {number}: {error.partition(': ')[2]}, and not closed")


def _value_end(buf: str, pos: int) -> int | None:
    """Where the JSON value starting at ``pos`` ends, by counting brackets; None if not in ``buf``."""
    depth = 0
    for match in _SKIP_TOKEN.finditer(buf, pos):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            if depth == 0:
                return match.start()  # a scalar ended by its container
            depth -= 1
            if depth == 0:
                return match.end()
        elif depth == 0:
            return match.start() if token == "," else match.end()
    return None


def _maybe_cut(exc: json.JSONDecodeError, window: int) -> bool:
    """Whether a decode error may only mean that the value goes on past the window."""
    return exc.pos >= window - 64 or exc.msg.startswith("Unterminated string")


def _json_values(window: _JsonWindow, first: bool, last: bool, number: int) -> Iterator[tuple[int, Any]]:
    """Top-level values: of a whole array (``first``) or of a chunk, which starts at a ','."""
    head = window.peek()
    array = True
    if first:
        if head == "":
            return  # an empty file
        if head == "{":
            array = False
        elif head != "[":
            raise _unparseable(f"expected a JSON array or objects, found {head!r}")
        else:
            window.pos += 1
            if window.peek() == "]":
                window.pos += 1
                _expect_end(window)
                return
    elif head == ",":
        window.pos += 1
    elif head != "]":  # a chunk that only closes the array
        raise _unparseable(f"chunk at byte {window.base + window.pos} does not start between records")
    while head != "]":
        yield number, window.value(number)
        head = window.peek()
        if head == "," and array:
            window.pos += 1
        elif head == "" and (not last or not array):
            return  # end of a chunk, or of a stream of objects
        elif head == "":
            raise _unparseable(f"the JSON array is truncated after record {number}")
        elif (array and head != "]") or (not array and head != "{"):
            raise _unparseable(f"JSON record {number} is followed by {head!r}")
        number += 1
    window.pos += 1
    _expect_end(window)


def _expect_end(window: _JsonWindow) -> None:
    extra = window.peek()
    if extra:
        raise _unparseable(f"unexpected {extra!r} after the end of the JSON array")


def _json_records(f: BinaryIO, chunk: Chunk, size: int, read_size: int) -> Iterator[Record]:
    first = chunk.start_offset == 0
    read = _decoded_reader(f, chunk.start_offset, chunk.end_offset, "utf-8-sig" if first else "utf-8")
    window = _JsonWindow(read, read_size, chunk.start_offset)
    values = _json_values(window, first, chunk.end_offset == size, chunk.first_number)
    try:
        for number, value in values:
            yield _json_record(number, value)
    except UnicodeDecodeError as exc:
        raise _unparseable(f"the file is not valid UTF-8 ({exc.reason})") from None


# --- chunk planning -----------------------------------------------------------------------------


def plan_chunks(
    path: PathLike, fmt: Format | None = None, target_bytes: int = DEFAULT_CHUNK_BYTES,
    *, read_size: int = READ_SIZE, limit: int | None = None,
) -> list[Chunk]:
    """Cut a file (its first ``limit`` bytes, if given) into chunks of about ``target_bytes`` that
    hold whole records (at least one chunk)."""
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    fmt = fmt or detect_format(path)
    if fmt not in ("csv", "json", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}")
    with open(path, "rb") as f:
        size = _bounded_size(f, limit)
        if size == 0:
            return [Chunk(0, 0, 0, 1)]
        if fmt == "json":
            cuts = _json_cuts(f, size, target_bytes, read_size)
        else:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                scan = _csv_cut_offsets if fmt == "csv" else _line_cut_offsets
                offsets = scan(mm, size, target_bytes)
                cuts = _with_line_numbers(mm, offsets)
    starts = [(0, 1), *((offset, number) for offset, number in cuts if 0 < offset < size)]
    ends = [offset for offset, _ in starts[1:]] + [size]
    return [Chunk(i, start, end, number) for i, ((start, number), end) in enumerate(zip(starts, ends))]


def _with_line_numbers(mm: mmap.mmap, offsets: list[int]) -> list[tuple[int, int]]:
    cuts, lines, counted = [], 1, 0
    for offset in offsets:
        # mmap has no count(); slices of at most READ_SIZE keep the copies small.
        for block in range(counted, offset, READ_SIZE):
            lines += mm[block : min(block + READ_SIZE, offset)].count(b"\n")
        counted = offset
        cuts.append((offset, lines))
    return cuts


def _line_cut_offsets(mm: mmap.mmap, size: int, target: int) -> list[int]:
    offsets, cut = [], target
    while cut < size:
        newline = mm.find(b"\n", cut - 1)
        if newline < 0:
            break
        offsets.append(newline + 1)
        cut = newline + 1 + target
    return offsets


def _csv_cut_offsets(mm: mmap.mmap, size: int, target: int) -> list[int]:
    """Record starts about every ``target`` bytes, found by tracking quoted fields."""
    data_start = len(_BOM) if mm[: len(_BOM)] == _BOM else 0
    offsets, cut, pos = [], target, data_start
    while cut < size:
        quote = mm.find(b'"', pos)
        outside_end = size if quote < 0 else quote
        # Between quoted fields every newline ends a record.
        newline = mm.find(b"\n", max(pos, cut - 1), outside_end)
        if newline >= 0:
            pos = newline + 1
            offsets.append(pos)
            cut = pos + target
        elif quote < 0:
            break
        elif quote == data_start or mm[quote - 1] in b",\n":
            closing = _QUOTED_REST.match(mm, quote + 1)
            pos = size if closing is None else closing.end()  # unclosed: the rest is one field
        else:
            pos = quote + 1  # inside an unquoted field a quote is an ordinary character
    return offsets


def _json_cuts(f: BinaryIO, size: int, target: int, read_size: int) -> list[tuple[int, int]]:
    """Offsets right after top-level array elements, with the number of the next element."""
    start = len(_BOM) if f.read(len(_BOM)) == _BOM else 0
    # Decoded as latin-1, every byte is one character, so window offsets are byte offsets; UTF-8
    # sequences only ever become string characters, which leaves the JSON structure intact.
    window = _JsonWindow(_decoded_reader(f, start, size, "latin-1"), read_size, start)
    if window.peek() != "[":
        return []  # a stream of objects, or something the reader will refuse: one chunk
    cuts, cut, count = [], target, 0
    try:
        for number, _ in _json_values(window, True, True, 1):
            count = number
            end = window.base + window.pos
            if end >= cut:
                cuts.append((end, number + 1))
                cut = end + target
    except PermanentIngestError:
        pass  # the last chunk runs to the end of the file and its reader reports the problem
    else:
        if cuts and cuts[-1][1] > count:
            cuts.pop()  # nothing but "]" after it
    return cuts
