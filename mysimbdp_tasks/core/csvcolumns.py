"""CSV chunks read by column: pyarrow parses blocks of whole records, each column is encoded at once.

Reading a CSV row with the ``csv`` module, then encoding each of its fields, costs Python work per
field (a ``str`` made, picked, encoded again). Here a chunk is cut into blocks of whole records,
pyarrow's CSV reader parses a block into columns in C, and each schema column becomes the protocol
bytes the :class:`~mysimbdp_tasks.core.encoding.RowEncoder` would make, a column at a time: text
is its UTF-8 bytes as they stand in the file; a timestamp of at most ten ASCII digits is packed as
milliseconds by numpy; any other value goes through the encoder's own function for its column.

The rows, their line numbers and their refusals are exactly those of :mod:`parsing` followed by
the encoder, because a block is read by column only when it is proven to read the same:

- every quote opens a field at its start, closes it before a comma or a line end, or is doubled
  inside it, and every carriage return outside quotes is part of ``\\r\\n``. On such text pyarrow's
  parser and the ``csv`` module (``excel``, not strict) split the same fields, and quote parity
  finds the record ends, so blocks end where records end;
- the block is valid UTF-8 (pyarrow's check, as strict as Python's decoder), holds no NUL, no
  blank line (its newlines outside quotes are exactly its rows' ends, which also number the rows)
  and no field larger than the ``csv`` module's limit, and every row has the header's number of
  fields;
- every key value is present, and every value encodes without an error.

From the first block that fails any of these, the rest of the chunk is read the exact way (rows
the row-by-row reader yields from that record on, with their numbers): what is refused is refused
in the same words, and the rows around it land as before. A chunk whose header is not one plain
line, or that lacks a schema column, is read the exact way from its start.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .encoding import EncodedRows, RowEncoder
from .formats import BOM, MAX_RECORD_BYTES, READ_SIZE, Chunk, Opener, PathLike, bounded_size, open_plain
from .parsing import csv_header, csv_records, fitted_chunk

__all__ = ["encoded_records"]

_QUOTE, _COMMA, _LF, _CR = 34, 44, 10, 13
_TEXT = ("text", "varchar")
_PARSE = pacsv.ParseOptions(delimiter=",", quote_char='"', double_quote=True, escape_char=False,
                            newlines_in_values=True, ignore_empty_lines=True)
_pack_ms = np.dtype(">i8")

Record = tuple[int, Any, str | None]


def encoded_records(path: PathLike, chunk: Chunk | None, encoder: RowEncoder, *, limit: int | None = None,
                    header: list[list[str]], read_size: int = READ_SIZE,
                    opener: Opener = open_plain) -> Iterator[Record]:
    """What ``parsing.read_records(path, "csv", chunk, ...)`` yields, except that runs of rows read by
    column come as one ``(first number, EncodedRows, None)``; rows read the exact way come as
    before, as lists of fields in the order of the header appended to ``header``."""
    csv.field_size_limit(MAX_RECORD_BYTES)  # for the exact reader, as parsing.read_records sets it
    with opener(path) as f:
        size = bounded_size(f, limit)
        whole = fitted_chunk(chunk, size)
        yield from _records(f, whole, size, read_size, header, encoder)


def _records(f: BinaryIO, chunk: Chunk, size: int, read_size: int, header_out: list[list[str]],
             encoder: RowEncoder) -> Iterator[Record]:
    start = _data_start(f, chunk, size, read_size)
    header = csv_header(f, size, read_size) if start is not None else None
    plan = None if header is None else _plan(header, encoder)
    if start is None or header is None or plan is None:
        yield from csv_records(f, chunk, size, read_size, header_out)
        return
    header_out.append(header)
    number = chunk.first_number + (1 if chunk.start_offset == 0 else 0)
    for offset, block in _record_blocks(f, start, chunk.end_offset, read_size):
        encoded = _encode(block, number, len(header), plan, encoder.null)
        if encoded is None:
            # From here on the exact reader decides: it re-reads the header from the file's start.
            rest = Chunk(chunk.index, offset, chunk.end_offset, number)
            yield from csv_records(f, rest, size, read_size, [])
            return
        yield number, encoded, None
        number += block.count(b"\n")


def _data_start(f: BinaryIO, chunk: Chunk, size: int, read_size: int) -> int | None:
    """Where the chunk's records start: its start, or for the first chunk the end of a header that is
    one plain line (no quote, no carriage return but its end, not blank); None for any other header."""
    if chunk.start_offset != 0:
        return chunk.start_offset
    f.seek(0)
    head = f.read(min(size, max(read_size, READ_SIZE)))
    skip = len(BOM) if head.startswith(BOM) else 0
    end = head.find(b"\n", skip)
    if end < 0:
        return None
    line = head[skip:end].removesuffix(b"\r")
    if not line or b'"' in line or b"\r" in line or b"\x00" in line:
        return None
    return end + 1 if end + 1 <= chunk.end_offset else None


#: One schema column: its index in the header, its CQL type, its encoder of one raw value, whether a key.
Column = tuple[int, str, Callable[[Any], Any], bool]


def _plan(header: list[str], encoder: RowEncoder) -> list[Column] | None:
    where = {name: i for i, name in enumerate(header)}
    plan = []
    for name, kind, encode, key in encoder.column_plan():
        if name not in where:
            return None  # absent in every row: the encoder's own checks say what that means
        plan.append((where[name], kind, encode, key))
    return plan


def _record_blocks(f: BinaryIO, start: int, end: int, read_size: int) -> Iterator[tuple[int, bytes]]:
    """``[start, end)`` in blocks of about ``read_size`` bytes ending at a newline with an even count of
    quotes before it (a record end when quoting is plain, which :func:`_encode` checks)."""
    f.seek(start)
    offset, read_to, carry = start, start, b""
    step = max(read_size, 1)
    while read_to < end:
        more = f.read(min(step, end - read_to))
        if not more:
            break
        read_to += len(more)
        data = carry + more if carry else more
        cut = len(data) if read_to >= end else _even_cut(data)
        if cut <= 0 and len(data) <= MAX_RECORD_BYTES:
            carry = data  # no record ends in it yet
            continue
        if cut <= 0:
            cut = len(data)  # no record end within the csv module's limit: _encode refuses it
        yield offset, data[:cut]
        offset, carry = offset + cut, data[cut:]
    if carry:
        yield offset, carry


def _even_cut(data: bytes) -> int:
    """Just after the last newline of ``data`` with an even number of quotes before it; 0 if none."""
    newline = data.rfind(b"\n")
    if newline < 0:
        return 0
    quotes = data.count(b'"', 0, newline)
    while quotes % 2:
        previous = data.rfind(b"\n", 0, newline)
        if previous < 0:
            return 0
        quotes -= data.count(b'"', previous, newline)
        newline = previous
    return newline + 1


def _quotes(block: bytes, a: np.ndarray) -> np.ndarray | None:
    """The positions of the block's quotes, if every quote opens a field at its start (after a comma,
    a newline or the block's start), closes one before a comma, a line end or the block's end, or
    is one of a doubled pair inside it, and every carriage return outside quotes is followed by a
    newline; None otherwise."""
    n = len(a)
    quotes = np.flatnonzero(a == _QUOTE) if b'"' in block else np.empty(0, np.intp)
    if len(quotes) % 2:
        return None  # the block would end inside a quoted field
    opens, closes = quotes[0::2], quotes[1::2]
    before = a[opens - 1]  # opens[0] - 1 may be -1 (the last byte): that case is the block's start
    if not np.all((before == _COMMA) | (before == _LF) | (before == _QUOTE) | (opens == 0)):
        return None
    after = a[np.minimum(closes + 1, n - 1)]
    if not np.all((after == _COMMA) | (after == _LF) | (after == _CR) | (after == _QUOTE) | (closes + 1 == n)):
        return None
    if b"\r" in block:
        lone = np.flatnonzero((a[:-1] == _CR) & (a[1:] != _LF))  # a carriage return not before a newline
        if a[-1] == _CR:
            lone = np.append(lone, n - 1)
        if np.any(np.searchsorted(quotes, lone) % 2 == 0):  # an even count of quotes before it: outside
            return None
    return quotes


def _numbers(block: bytes, a: np.ndarray, quotes: np.ndarray, number: int, rows: int) -> list[int] | None:
    """Each row's first line: the line after the previous record's end, a newline outside quotes (with
    plain quoting, one after an even count of quotes). None if those newlines are not exactly the
    rows' ends (a blank line, which the reader skips, is one more)."""
    newlines = np.flatnonzero(a == _LF)
    ends = np.flatnonzero(np.searchsorted(quotes, newlines) % 2 == 0) if len(quotes) else np.arange(len(newlines))
    if len(ends) != rows - (0 if block.endswith(b"\n") else 1):
        return None
    starts = np.empty(rows, np.int64)
    starts[0] = number
    starts[1:] = ends[: rows - 1] + 1 + number
    return starts.tolist()


def _encode(block: bytes, number: int, width: int, plan: Sequence[Column], null: object) -> EncodedRows | None:
    """The block's rows encoded by column, with their line numbers; None if it must be read the exact way."""
    if len(block) > MAX_RECORD_BYTES or b"\x00" in block:
        return None
    a = np.frombuffer(block, np.uint8)
    quotes = _quotes(block, a)
    if quotes is None:
        return None
    names = [f"c{i}" for i in range(width)]
    try:
        # The whole block checked as UTF-8 once (the csv module decodes every column, not only the
        # schema's), then read as binary: no second check per column.
        pa.array([block], pa.binary()).cast(pa.string())
        table = pacsv.read_csv(
            pa.BufferReader(block),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=len(block) + 1, column_names=names),
            parse_options=_PARSE,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.binary()), null_values=[], strings_can_be_null=False,
                quoted_strings_can_be_null=False, check_utf8=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a field count off the header's, bad UTF-8, ...: the exact reader says which row
    rows = table.num_rows
    if rows == 0 or table.num_columns != width:
        return None
    numbers = _numbers(block, a, quotes, number, rows)
    if numbers is None:
        return None
    # The rows as one 2-D array of objects filled a column at a time: tolist() makes the row lists in C.
    grid = np.empty((rows, len(plan)), dtype=object)
    for at, (index, kind, encode, key) in enumerate(plan):
        values = _column(table.column(index).combine_chunks(), kind, encode, key, null)
        if values is None:
            return None
        grid[:, at] = values
    return EncodedRows(numbers, grid.tolist())


def _column(values: pa.Array, kind: str, encode: Callable[[Any], Any], key: bool,
            null: object) -> list[Any] | np.ndarray | None:
    """One column's protocol bytes (the encoder's null for a null); None if a value needs the exact way."""
    if kind in _TEXT:
        if key and pc.min(pc.binary_length(values)).as_py() == 0:
            return None  # an empty key is refused, row by row
        return values.to_numpy(zero_copy_only=False)
    if kind == "timestamp":
        return _timestamps(values, encode, key, null)
    texts = values.cast(pa.string()).to_pylist()  # the raw values as the csv module gives them
    return _each(texts, range(len(values)), encode, key, null, [None] * len(values))


def _timestamps(values: pa.Array, encode: Callable[[Any], Any], key: bool, null: object) -> list[Any] | None:
    """Epoch seconds of at most ten ASCII digits packed as milliseconds at once; any other value by
    the encoder's own function."""
    values = values.cast(pa.string())
    length = pc.binary_length(values)
    digits = pc.and_(pc.ascii_is_decimal(values), pc.and_(pc.greater(length, 0), pc.less_equal(length, 10)))
    every = pc.all(digits).as_py()
    seconds = pc.cast(values if every else pc.if_else(digits, values, "0"), pa.int64()).to_numpy()
    # Big-endian int64 viewed as 8-byte voids: tolist() gives each as bytes, all 8 of them kept.
    out: list[Any] = (seconds * 1000).astype(_pack_ms).view("V8").tolist()
    if every:
        return out
    others = np.flatnonzero(~digits.to_numpy(zero_copy_only=False))
    texts = values.take(pa.array(others)).to_pylist()
    return _each(texts, others.tolist(), encode, key, null, out)


def _each(texts: list[Any], where: Sequence[int], encode: Callable[[Any], Any], key: bool, null: object,
          out: list[Any]) -> list[Any] | None:
    """``out`` with the values at ``where`` encoded one by one (``null`` for a null); None if one
    raises, or a key is null or empty."""
    try:
        for index, text in zip(where, texts, strict=True):
            value = encode(text)
            if value is None:
                if key:
                    return None
                value = null
            elif key and value == b"":
                return None
            out[index] = value
    except Exception:  # noqa: BLE001 - any refusal is the exact reader's to word
        return None
    return out
