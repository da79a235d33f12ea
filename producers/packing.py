"""Writing a tenant's records as Parquet, or gzip-compressing what the producers write.

Parquet files are written in row groups of ``ROW_GROUP_ROWS`` records (the platform cuts a Parquet
file into chunks of whole row groups, so a file of one huge row group would be one chunk). Column
types come from the first row group: a field whose values are all integers is ``int64``, all numbers
``double``, all booleans ``bool``, otherwise ``string`` (every CSV field is text); a later record
whose value does not fit the column's type stops the file with an error that names the field.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from .readers import InputError

__all__ = ["ROW_GROUP_ROWS", "gzipped", "write_parquet"]

ROW_GROUP_ROWS = 20_000


def gzipped(raw: BinaryIO) -> BinaryIO:
    """``raw`` behind a gzip compressor (closing it flushes the gzip trailer, not ``raw``)."""
    return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0)  # type: ignore[return-value]


def _kind(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(type(v) is int for v in present):
        return pa.int64()
    if present and all(type(v) in (int, float) for v in present):
        return pa.float64()
    if present and all(type(v) is bool for v in present):
        return pa.bool_()
    return pa.string()


def _text(v: Any) -> Any:
    return v if v is None or type(v) is str else str(v)


def write_parquet(fields: Sequence[str], rows: Iterator[Sequence[Any]], out: BinaryIO, tick: Callable[[int], None],
                  name: str, compression: str = "zstd", row_group_rows: int = ROW_GROUP_ROWS) -> int:
    """Write ``rows`` (values in ``fields`` order) to ``out`` as Parquet; how many were written."""
    writer: pq.ParquetWriter | None = None
    schema: pa.Schema | None = None
    n = 0
    try:
        while True:
            batch = [row for _, row in zip(range(row_group_rows), rows, strict=False)]
            if not batch and writer is not None:
                break
            columns = [[row[i] for row in batch] for i in range(len(fields))]
            if schema is None:
                schema = pa.schema([(f, _kind(col)) for f, col in zip(fields, columns, strict=True)])
                writer = pq.ParquetWriter(out, schema, compression=compression)
            columns = [col if schema.field(i).type != pa.string() else [_text(v) for v in col]
                       for i, col in enumerate(columns)]
            try:
                table = pa.Table.from_arrays([pa.array(c, type=schema.field(i).type) for i, c in enumerate(columns)],
                                             schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise InputError(f"{name}: records {n + 1}..{n + len(batch)} do not fit the Parquet columns "
                                 f"{schema}: {exc}") from None
            assert writer is not None
            writer.write_table(table, row_group_size=row_group_rows)
            n += len(batch)
            tick(n)
            if not batch:
                break
    finally:
        if writer is not None:
            writer.close()
    return n
