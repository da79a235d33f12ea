"""Records converted straight to the bytes Cassandra's protocol carries: one call per value.

A ``RowConverter`` makes Python values (a ``datetime``, an ``int``, a ``str``) that the driver then
serializes; on the batch path that is two steps and a ``datetime`` per row for nothing. A
``RowEncoder`` is a ``RowConverter`` whose rows are lists of protocol bytes, made in one step for
the common types of tenant data:

- text: ``str.encode`` (UTF-8; it refuses lone surrogates, as ``to_text`` does);
- the integer types: a JSON integer in range is packed at once;
- timestamp: an epoch second count (a JSON integer, or text of at most 10 ASCII digits) is packed
  as milliseconds at once, without a ``datetime``.

Every other value, and every other type, goes through the converter of :mod:`convert` and then the
type's serializer handed in by the sink (the driver's own), so the bytes are always what
converting and binding would make. A value the fast step does not take (a null, a string in an
int column, a value it refuses) is converted the ordinary way for the whole row: refusals say
exactly what :meth:`RowConverter.convert` says, and a row whose values convert but cannot be
serialized comes out as the converter's tuple, for the sink to bind and refuse in its words.
"""

from __future__ import annotations

import datetime as dt
import operator
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .convert import CONVERTERS, RowConverter, present
from .timestamps import TIMESTAMP_MS_THRESHOLD, to_timestamp
from .values import Converter

__all__ = ["EncodedRows", "RowEncoder", "timestamp_bytes"]

#: A converted value to its protocol bytes (the driver's ``serialize`` for the column's type).
Serializer = Callable[[Any], bytes]

_call = operator.call
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_FIRST_SECOND = -62135596800  # 0001-01-01T00:00:00Z, the first second a datetime can hold
_INTEGERS = {"tinyint": (8, ">b"), "smallint": (16, ">h"), "int": (32, ">i"), "bigint": (64, ">q")}
_TEXT_TYPES = ("text", "varchar")
_EMPTY_IS_MISSING = ("text", "varchar", "ascii")  # types whose converter keeps "" as a value


def timestamp_bytes(value: dt.datetime) -> bytes:
    """An aware datetime as the driver's ``DateType.serialize`` packs it: the same float expression
    on the same whole seconds (``timegm(value.utctimetuple())``), so the same 8 bytes."""
    since = value - _EPOCH
    seconds = since.days * 86400 + since.seconds
    return _pack64(int(seconds * 1e3 + value.microsecond / 1e3))


_pack64 = struct.Struct(">q").pack


def _encode_timestamp(value: Any) -> bytes | None:
    kind = type(value)
    if kind is str:
        # Ten digits are below 1e11 seconds (so seconds, not milliseconds) and within datetime's range.
        if len(value) <= 10 and value.isdigit() and value.isascii():
            return _pack64(int(value) * 1000)
    elif kind is int and _FIRST_SECOND <= value < TIMESTAMP_MS_THRESHOLD:
        return _pack64(value * 1000)
    moment = to_timestamp(value)
    return None if moment is None else timestamp_bytes(moment)


def _composed(convert: Converter, serialize: Serializer) -> Callable[[Any], bytes | None]:
    def encode(value: Any) -> bytes | None:
        converted = convert(value)
        return None if converted is None else serialize(converted)

    return encode


def _integer_encoder(cql_type: str, serialize: Serializer) -> Callable[[Any], bytes | None]:
    bits, layout = _INTEGERS[cql_type]
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    pack = struct.Struct(layout).pack  # what the driver's Int32Type (...) serialize calls
    slow = _composed(CONVERTERS[cql_type], serialize)

    def encode(value: Any) -> bytes | None:
        if type(value) is int and low <= value <= high:
            return pack(value)
        return slow(value)

    return encode


def column_encoder(cql_type: str, serialize: Serializer) -> Callable[[Any], Any]:
    """One column's raw value to its bytes (None for a null); raises what converting would."""
    kind = cql_type.strip().lower()
    if kind in _TEXT_TYPES:
        # A method descriptor: no Python frame per value. A null or a JSON number raises TypeError
        # and its row is converted the ordinary way.
        return str.encode
    if kind in _INTEGERS:
        return _integer_encoder(kind, serialize)
    if kind == "timestamp":
        return _encode_timestamp
    return _composed(CONVERTERS[kind], serialize)


class EncodedRows:
    """Rows a reader already encoded (lists of protocol bytes, as :meth:`RowEncoder.convert_fields`
    makes them), each with the number of its record: a block of a CSV chunk read by column."""

    __slots__ = ("numbers", "rows")

    def __init__(self, numbers: list[int], rows: list[list[Any]]) -> None:
        self.numbers = numbers
        self.rows = rows


class RowEncoder(RowConverter):
    """A ``RowConverter`` whose rows are lists of protocol bytes, ``null`` for a null value."""

    __slots__ = ("_encoders", "_key_values", "_null", "_text_keys")

    def __init__(self, columns: Mapping[str, str], key_columns: Sequence[str],
                 serializers: Mapping[str, Serializer], null: object) -> None:
        super().__init__(columns, key_columns)
        self._encoders = tuple(column_encoder(columns[name], serializers[name]) for name in self.columns)
        self._null = null
        # An empty key is missing: "" for text types, None (a blank) for every other type.
        self._text_keys = frozenset(
            i for i in self._keys if columns[self.columns[i]].strip().lower() in _EMPTY_IS_MISSING)
        # The key values as a tuple, in C (a lone key is picked twice: itemgetter of one index
        # returns the value itself, and ``b"" in value`` would be a substring test).
        keys = self._keys * 2 if len(self._keys) == 1 else self._keys
        self._key_values: Callable[[list[Any]], tuple[Any, ...]] = (
            operator.itemgetter(*keys) if keys else (lambda _: ()))

    @property
    def null(self) -> object:
        """What a null value becomes in a row of bytes."""
        return self._null

    def column_plan(self) -> list[tuple[str, str, Callable[[Any], Any], bool]]:
        """Per schema column, in order: its name, CQL type (lower case), the encoder of one raw value
        (bytes, or None for a null; raises as converting would) and whether it is a key column.
        For readers that encode a column at a time (:mod:`csvcolumns`)."""
        keys = set(self._keys)
        return [(name, self.types[name].strip().lower(), encode, index in keys)
                for index, (name, encode) in enumerate(zip(self.columns, self._encoders, strict=True))]

    def convert(self, record: Mapping[str, Any]) -> Any:
        try:
            values = list(map(_call, self._encoders, map(record.get, self.columns)))
        except (ValueError, TypeError, ArithmeticError, struct.error):
            return super().convert(record)  # raises the RowError, or gives values to bind
        if None in values or b"" in self._key_values(values):  # a null, or a key to check: rare
            return self._checked(values, record)
        return values

    def convert_fields(self, header: list[str], fields: list[Any]) -> Any:
        if header is not self._header:
            self._plan_fields(header)
        pick, width = self._fields_plan
        padded = fields if len(fields) == width else fields + [None] * (width - len(fields))
        try:
            values = list(map(_call, self._encoders, pick(padded)))
        except (ValueError, TypeError, ArithmeticError, struct.error):
            return super().convert_fields(header, fields)
        if None in values or b"" in self._key_values(values):
            return self._checked(values, None, header, padded)
        return values

    def _checked(self, values: list[Any], record: Mapping[str, Any] | None, header: list[str] | None = None,
                 fields: list[Any] | None = None) -> list[Any]:
        for index in self._keys:
            value = values[index]
            if value is None or (value == b"" and index in self._text_keys):
                if record is None:
                    record = present(header or [], fields or [])
                raise self._missing(record, self.columns[index])
        if None in values:
            null = self._null
            return [null if v is None else v for v in values]
        return values
