"""Parquet tenant files: planned by row groups from the footer, read one row group at a time.

Decisions:

- **A chunk is a range of row groups.** Its byte range ``[start_offset, end_offset)`` holds the
  first byte of each of its row groups (the first chunk starts at 0, the last ends at the file's
  size), so a chunk is still a byte range of the file, as for the text formats. The planner reads
  only the footer (no data page): cuts fall at the first row group starting ``target_bytes`` or
  more after the chunk's start. ``first_number`` is the 1-based number of the chunk's first row in
  the file, and refusals name rows by that number.
- **Streaming.** Only the tenant's columns are read, through a buffered stream of each column chunk,
  in record batches of ``BATCH_ROWS``: memory follows a batch and the reader's buffers, not the
  file (nor the row group).
- **Types.** Before any row is read, every tenant column the file holds is checked against its
  Parquet type: one that can never fit (a list for an ``int`` column, a timestamp for a ``boolean``,
  a missing key column) refuses the whole file with ``schema_mismatch``, naming the column and both
  types. A value that does not fit (an int64 beyond ``int``, text that is not a number) refuses its
  row, as in CSV and JSON. Values reach the converters as JSON values or text: timestamps as
  ``YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]`` (naive ones are UTC), dates and times in ISO form,
  decimals as text, binary as hexadecimal (for ``blob``).
- **Values with no Python form.** A timestamp or date outside the years 1 to 9999, a time of day
  outside ``[00:00, 24:00)``, text that is not UTF-8: such a value reaches the converters as an
  ``Unreadable``, which every converter refuses, so its row is refused (``bad_value``, naming the
  column and the value) and the rows beside it still come. A batch is converted a column at a time;
  only a column that fails is converted again value by value.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import PermanentIngestError
from .formats import Chunk, PathLike

__all__ = ["BATCH_ROWS", "Unreadable", "check_types", "iter_chunks", "read_rows"]

BATCH_ROWS = 4096
_STREAM_BUFFER = 1 << 20
_TEXT = {"text", "varchar", "ascii"}
_INTS = {"tinyint", "smallint", "int", "bigint", "varint"}
_NUMBERS = _INTS | {"float", "double", "decimal"}
_PER_DAY = {"s": 86_400, "ms": 86_400_000, "us": 86_400_000_000, "ns": 86_400_000_000_000}
#: What converting a column may raise for one value of it (OverflowError: a datetime's range).
_VALUE_ERRORS = (OverflowError, ValueError, pa.ArrowException)


def _open(path: PathLike) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, buffer_size=_STREAM_BUFFER, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise PermanentIngestError("unparseable", f"not a readable Parquet file: {exc}") from None


def _group_start(meta: pq.FileMetaData, index: int) -> int:
    group = meta.row_group(index)
    starts = []
    for c in range(group.num_columns):
        column = group.column(c)
        offset = column.dictionary_page_offset if column.has_dictionary_page else None
        starts.append(offset or column.data_page_offset)
    return min(starts)


def iter_chunks(path: PathLike, size: int, target_bytes: int) -> Iterator[Chunk]:
    """Chunks of whole row groups of about ``target_bytes``, planned from the footer alone."""
    meta = _open(path).metadata
    index, start, number, rows = 0, 0, 1, 0
    for group in range(meta.num_row_groups):
        offset = _group_start(meta, group)
        if group and offset - start >= target_bytes and 0 < offset < size:
            yield Chunk(index, start, offset, number)
            index, start, number = index + 1, offset, rows + 1
        rows += meta.row_group(group).num_rows
    yield Chunk(index, start, size, number)


# Which CQL types a Parquet type can ever fit (values are still checked one by one).
def _fits(kind: pa.DataType) -> set[str] | None:
    """The CQL types a column of ``kind`` may fill; None: any."""
    t = pa.types
    if t.is_dictionary(kind):
        return _fits(kind.value_type)
    if t.is_null(kind) or t.is_string(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        return None  # text is converted as CSV fields are
    if t.is_integer(kind):
        return _TEXT | _NUMBERS | {"timestamp"}
    if t.is_floating(kind) or t.is_decimal(kind):
        return _TEXT | _NUMBERS | {"timestamp"}
    if t.is_boolean(kind):
        return _TEXT | {"boolean"}
    if t.is_timestamp(kind):
        return _TEXT | {"timestamp"}
    if t.is_date(kind):
        return _TEXT | {"date", "timestamp"}
    if t.is_time(kind):
        return _TEXT | {"time"}
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return {"blob"}
    return set()  # lists, structs, maps...: no scalar column holds them


def check_types(schema: pa.Schema, columns: Mapping[str, str], key: Sequence[str]) -> list[str]:
    """The tenant columns the file holds, in file order; ``schema_mismatch`` if one can never fit."""
    present = []
    for field in schema:
        cql = columns.get(field.name)
        if cql is None:
            continue
        fits = _fits(field.type)
        if fits is not None and cql.strip().lower() not in fits:
            raise PermanentIngestError(
                "schema_mismatch", f"column {field.name!r} is {field.type} in the Parquet file, which never "
                f"fits the tenant's {cql}; write it as {' or '.join(sorted(fits)) or 'a scalar type'}")
        present.append(field.name)
    missing = [k for k in key if k not in present]
    if missing:
        raise PermanentIngestError(
            "schema_mismatch", f"key column(s) {', '.join(missing)} not in the Parquet file (it has "
            f"{', '.join(schema.names)[:300]})")
    return present


def _hex(value: bytes) -> str:
    return value.hex()


def _iso(value: Any) -> str:
    return str(value)  # datetime: "YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]"; date, time: ISO


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, (decimal.Decimal, dt.datetime, dt.date, dt.time)) else value


def _normalizer(kind: pa.DataType) -> Callable[[Any], Any] | None:
    t = pa.types
    if t.is_dictionary(kind):
        return _normalizer(kind.value_type)
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return _hex
    if t.is_timestamp(kind) or t.is_date(kind) or t.is_time(kind) or t.is_decimal(kind):
        return _iso
    if t.is_integer(kind) or t.is_floating(kind) or t.is_boolean(kind) or t.is_string(kind):
        return None
    return _plain


class Unreadable:
    """A Parquet value that has no Python form. No converter takes it: its row is refused
    (``bad_value``), with this description of the value in the refusal's detail."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description

    def __repr__(self) -> str:
        return self.description


def _unreadable(kind: pa.DataType, scalar: pa.Scalar, exc: BaseException) -> Unreadable:
    while isinstance(scalar, pa.DictionaryScalar):
        scalar, kind = scalar.value, kind.value_type
    raw = getattr(scalar, "value", None)  # the stored integer of a timestamp, date, time or duration
    shown = f"the Parquet {kind} {raw}" if type(raw) is int else f"a Parquet {kind} value"
    if (pa.types.is_timestamp(kind) or pa.types.is_date(kind)) and isinstance(exc, OverflowError):
        return Unreadable(f"{shown} (outside the years 1 to 9999)")
    return Unreadable(f"{shown} that cannot be read ({type(exc).__name__}: {str(exc)[:120]})")


def _one_by_one(column: pa.Array, convert: Callable[[Any], Any] | None) -> list[Any]:
    """The values of a column that does not convert whole: each value that fails is an ``Unreadable``."""
    values: list[Any] = []
    for scalar in column:
        try:
            value = scalar.as_py()
        except _VALUE_ERRORS as exc:
            values.append(_unreadable(column.type, scalar, exc))
            continue
        values.append(value if value is None or convert is None else convert(value))
    return values


def _past_a_day(column: pa.Array, values: list[Any]) -> None:
    """Marks the times of ``column`` outside ``[0, one day)``, which ``to_pylist`` wraps around midnight."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind = column.type
    counts = column.view(pa.int32() if kind.bit_width == 32 else pa.int64())
    outside = pc.or_(pc.less(counts, 0), pc.greater_equal(counts, _PER_DAY[kind.unit]))
    if pc.any(outside).as_py():
        for index in pc.indices_nonzero(outside).to_pylist():
            values[index] = Unreadable(f"the Parquet {kind} {counts[index].as_py()} (not within one day)")


def _values(column: pa.Array) -> list[Any]:
    convert = _normalizer(column.type)
    try:
        values = column.to_pylist()
    except _VALUE_ERRORS:  # one value (or more) has no Python form: that column, value by value
        values = _one_by_one(column, convert)
    else:
        if convert is not None:
            values = [None if v is None else convert(v) for v in values]
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if pa.types.is_time(kind):
        _past_a_day(column, values)
    return values


def read_rows(path: PathLike, chunk: Chunk, size: int, typed: tuple[Mapping[str, str], Sequence[str]] | None,
              header_out: list[list[str]]) -> Iterator[tuple[int, Any, str | None]]:
    """The rows of ``chunk`` as ``(number, fields, None)``, fields in the order of the header
    appended to ``header_out``: the tenant columns the file holds (``typed``: the tenant's column
    types and key columns), or every column of the file (``typed`` None)."""
    pf = _open(path)
    meta = pf.metadata
    names = pf.schema_arrow.names if typed is None else check_types(pf.schema_arrow, *typed)
    header_out.append(names)
    groups, number = [], 1
    for group in range(meta.num_row_groups):
        if chunk.start_offset <= _group_start(meta, group) < chunk.end_offset or (
                chunk.end_offset == size and _group_start(meta, group) >= size):
            groups.append(group)
        elif not groups:
            number += meta.row_group(group).num_rows
    if not groups:
        return
    try:
        for batch in pf.iter_batches(BATCH_ROWS, row_groups=groups, columns=names, use_threads=False):
            for row in zip(*(_values(c) for c in batch.columns), strict=True):
                yield number, list(row), None
                number += 1
    except (pa.ArrowException, OSError) as exc:
        raise PermanentIngestError("unparseable", f"the Parquet data cannot be read at row {number}: {exc}") from None
