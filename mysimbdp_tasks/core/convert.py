"""Conversion of raw field values to the Python values the Cassandra driver binds, row by row.

A raw value is a ``str`` read from CSV, or a JSON value (``str``, ``int``, ``float``, ``bool``,
``None``, and — refused everywhere — ``dict`` / ``list``). ``CONVERTERS`` maps every supported CQL
type to a function that returns the bound value or raises ``ValueError`` with a short message
(``expected int, got 'abc'``). ``RowConverter`` applies them to whole records and turns failures
into ``RowError`` so one bad row never stops a file.

The converters live by kind, each module stating its rules: text, booleans, identifiers and bytes
in :mod:`values`, numbers in :mod:`numeric`, time in :mod:`timestamps`. Rules shared by all of them,
decided once for every tenant:

- **Nulls.** ``None`` is null for every type. For every type except text (``text``, ``varchar``,
  ``ascii``) a string that is empty or only whitespace is also null: CSV has no other way to say
  "no value". For text types ``""`` stays ``""`` — an empty string is a real value.
- Non-text values may carry surrounding whitespace (``" 42 "``), which CSV writers often add.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import RowError
from .numeric import FLOAT32_MAX, float_converter, int_converter, to_decimal, to_varint
from .timestamps import to_date, to_time, to_timestamp
from .values import Converter, to_ascii, to_blob, to_boolean, to_inet, to_text, to_timeuuid, to_uuid

__all__ = ["CONVERTERS", "RowConverter"]

_call = operator.call

CONVERTERS: dict[str, Converter] = {
    "text": to_text,
    "varchar": to_text,
    "ascii": to_ascii,
    "tinyint": int_converter("tinyint", 8),
    "smallint": int_converter("smallint", 16),
    "int": int_converter("int", 32),
    "bigint": int_converter("bigint", 64),
    "varint": to_varint,
    "float": float_converter("float", FLOAT32_MAX),
    "double": float_converter("double", math.inf),
    "decimal": to_decimal,
    "boolean": to_boolean,
    "timestamp": to_timestamp,
    "date": to_date,
    "time": to_time,
    "uuid": to_uuid,
    "timeuuid": to_timeuuid,
    "inet": to_inet,
    "blob": to_blob,
}


class RowConverter:
    """Turns records into value tuples, in schema column order, for a prepared INSERT.

    Fields that are not schema columns are ignored; schema columns absent from a record are
    null. Every key column (partition and clustering) must have a value. Column names match
    exactly; type names are read case-insensitively, as CQL does.
    """

    __slots__ = ("_converters", "_fields_plan", "_header", "_keys", "_plan", "columns", "key_columns", "types")

    def __init__(self, columns: Mapping[str, str], key_columns: Sequence[str]) -> None:
        if not columns:
            raise ValueError("a schema needs at least one column")
        plan: list[tuple[str, Converter]] = []
        for name, cql_type in columns.items():
            converter = CONVERTERS.get(cql_type.strip().lower())
            if converter is None:
                raise ValueError(f"column {name!r}: unsupported CQL type {cql_type!r}")
            plan.append((name, converter))
        names = list(columns)
        for key in key_columns:
            if key not in columns:
                raise ValueError(f"key column {key!r} is not in the schema")
        self.columns: tuple[str, ...] = tuple(names)
        self.types: dict[str, str] = dict(columns)  # for readers of typed files (Parquet) to check against
        self.key_columns: tuple[str, ...] = tuple(key_columns)
        self._plan: tuple[tuple[str, Converter], ...] = tuple(plan)
        self._converters: tuple[Converter, ...] = tuple(converter for _, converter in plan)
        # Checked in column order, so the reported column is the same on both paths of convert().
        self._keys: tuple[int, ...] = tuple(sorted({names.index(key) for key in key_columns}))
        self._header: list[str] | None = None
        self._fields_plan: tuple[Callable[[Sequence[Any]], Any], int] = (lambda _: (), 0)

    def convert(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The record's values in column order; raises ``RowError`` naming the first bad column."""
        try:
            # map() with operator.call keeps the per-column loop in C: ~25% faster than a comprehension.
            values = tuple(map(_call, self._converters, map(record.get, self.columns)))
        except (ValueError, TypeError, ArithmeticError):
            # Rare path: run again column by column to say which one failed.
            raise self._explain(record) from None
        for index in self._keys:
            value = values[index]
            if value is None or value == "":
                raise self._missing(record, self.columns[index])
        return values

    def convert_fields(self, header: list[str], fields: list[Any]) -> tuple[Any, ...]:
        """``convert(dict(zip(header, fields)))`` without the dict: a CSV row in its header's order.

        A row shorter than the header leaves the columns past its end absent, as the dict would.
        """
        if header is not self._header:
            self._plan_fields(header)
        pick, width = self._fields_plan
        if len(fields) != width:  # a short row, or a schema column the header lacks: pad with None
            fields = fields + [None] * (width - len(fields))
        try:
            values = tuple(map(_call, self._converters, pick(fields)))
        except (ValueError, TypeError, ArithmeticError):
            raise self._explain(present(header, fields)) from None
        for index in self._keys:
            value = values[index]
            if value is None or value == "":
                raise self._missing(present(header, fields), self.columns[index])
        return values

    def _plan_fields(self, header: list[str]) -> None:
        """Where each schema column sits in rows of ``header``; an absent one reads the None past its end."""
        where = {name: i for i, name in enumerate(header)}
        indexes = [where.get(name, len(header)) for name in self.columns]
        getter = operator.itemgetter(*indexes)
        pick = getter if len(indexes) > 1 else (lambda fields: (getter(fields),))
        width = len(header) + (1 if len(header) in indexes else 0)
        self._header, self._fields_plan = header, (pick, width)

    def _explain(self, record: Mapping[str, Any]) -> RowError:
        keys = {self.columns[index] for index in self._keys}
        for name, convert in self._plan:
            raw = record.get(name)
            if name in keys and (raw is None or raw == ""):
                return self._missing(record, name)
            try:
                value = convert(raw)
            except (ValueError, TypeError, ArithmeticError) as exc:
                return RowError("bad_value", f"column {name!r}: {exc}")
            if name in keys and value is None:  # e.g. only whitespace in an int key
                return self._missing(record, name)
        return RowError("bad_value", "a value could not be converted")  # converters are pure

    @staticmethod
    def _missing(record: Mapping[str, Any], name: str) -> RowError:
        if name not in record:
            state = "missing"
        elif record[name] is None:
            state = "null"
        else:
            state = "empty"
        return RowError("missing_key_column", f"column {name!r} is {state}")


def present(header: list[str], fields: list[Any]) -> dict[str, Any]:
    """The record a padded CSV row stands for: the padding is absence, not a value."""
    return {name: value for name, value in zip(header, fields, strict=False) if value is not None}
