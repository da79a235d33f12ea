"""Conversion of raw field values to the Python values the Cassandra driver binds.

A raw value is a ``str`` read from CSV, or a JSON value (``str``, ``int``, ``float``, ``bool``,
``None``, and — refused everywhere — ``dict`` / ``list``). ``CONVERTERS`` maps every supported CQL
type to a function that returns the bound value or raises ``ValueError`` with a short message
(``expected int, got 'abc'``). ``RowConverter`` applies them to whole records and turns failures
into ``RowError`` so one bad row never stops a file.

Rules, decided once for every tenant:

- **Nulls.** ``None`` is null for every type. For every type except text (``text``, ``varchar``,
  ``ascii``) a string that is empty or only whitespace is also null: CSV has no other way to say
  "no value". For text types ``""`` stays ``""`` — an empty string is a real value.
- **Text** is kept exactly as given: no strip, no Unicode normalisation. A JSON number in a text
  column becomes its JSON spelling (``str(3)`` = ``"3"``, ``true`` → ``"true"``); a JSON object or
  array is refused rather than silently serialised, since the tenant's schema asked for text.
  Strings with lone surrogates (possible through ``\\ud800`` escapes in JSON) are refused because
  they cannot be encoded as UTF-8. ``ascii`` additionally refuses any non-ASCII character.
- **Integers** (``tinyint``, ``smallint``, ``int``, ``bigint``, ``varint``) accept JSON integers, text
  of ASCII digits with an optional sign, and integral values written with a zero fraction
  (JSON ``3.0``, text ``"3.0"``) because spreadsheet and dataframe exports write integers that way.
  ``3.5``, ``"1e3"``, ``"1_000"`` and booleans are refused; fixed-width types are range-checked.
- **Floating point** (``float``, ``double``) accepts numbers, decimal/scientific text, and
  ``NaN`` / ``Infinity`` (CQL supports both). ``float`` is range-checked against 32-bit limits.
  ``decimal`` refuses NaN and infinities (CQL ``decimal`` has none); a JSON float keeps its shortest
  decimal spelling (``0.1`` → ``Decimal("0.1")``), not its binary expansion.
- **Sizes that cannot be bound.** ``varint`` and ``decimal`` take at most ``MAX_DIGITS`` digits (the
  driver converts the digits with ``int()``, which refuses more), and a ``decimal``'s scale (minus
  its exponent) must fit the 32-bit integer CQL stores it in: ``1e-9999999999`` is refused here
  rather than failing when the row is bound.
- **Booleans** accept JSON ``true``/``false``, JSON ``0``/``1`` and the text ``true, false, 1, 0,
  yes, no`` in any case.
- **Timestamps** become timezone-aware UTC ``datetime`` values. A number (JSON int or float, or
  text such as ``"1430438400"`` or ``"1430438400.25"``) is epoch *seconds* when its magnitude is
  below 1e11 and epoch *milliseconds* otherwise: 1e11 seconds is the year 5138, while 1e11
  milliseconds is March 1973, so the only values read the wrong way are millisecond values
  before 1973-03-03. Text is ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS[.fraction]]`` or the same with
  ``T``, optionally followed by ``Z``, ``±HH:MM``, ``±HHMM`` or ``±HH``; text without an offset is
  UTC. Fractions beyond microseconds are truncated (Cassandra keeps milliseconds).
- **date** is ``YYYY-MM-DD``; **time** is ``HH:MM[:SS[.fraction]]`` (to microseconds);
  **uuid** / **timeuuid** are any form ``uuid.UUID`` reads (timeuuid must be version 1);
  **inet** is an IPv4/IPv6 address, returned in canonical text form; **blob** is hexadecimal
  text with an optional ``0x`` prefix.
- Non-text values may carry surrounding whitespace (``" 42 "``), which CSV writers often add.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import math
import operator
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import RowError

__all__ = ["CONVERTERS", "MAX_DIGITS", "TIMESTAMP_MS_THRESHOLD", "RowConverter"]

Converter = Callable[[Any], Any]

#: Epoch numbers whose magnitude reaches this are milliseconds, smaller ones are seconds.
TIMESTAMP_MS_THRESHOLD = 10**11

_UTC = dt.UTC
_call = operator.call
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_FLOAT32_MAX = 3.4028234663852886e38
#: Most digits in a varint or decimal: int() (used here and by the driver) refuses longer texts.
MAX_DIGITS = sys.get_int_max_str_digits() or 4300
_SCALE_MIN, _SCALE_MAX = -(2**31), 2**31 - 1  # a decimal's scale is a CQL int

# ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
_INT_TEXT = re.compile(r"([+-]?[0-9]+)(?:\.0*)?")
_EPOCH_TEXT = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]*))?")
_ISO_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?"
    r"(?:[Zz]|([+-])([0-9]{2})(?::?([0-9]{2}))?)?"
)
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_TIME = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?")
_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]*)")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _show(value: Any) -> str:
    """A short description of a raw value for an error message (bodies can be megabytes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:40]) + "..."
    return repr(value)


def _bad(cql_type: str, value: Any, why: str = "") -> ValueError:
    suffix = f" ({why})" if why else ""
    return ValueError(f"expected {cql_type}, got {_show(value)}{suffix}")


# --- text ---------------------------------------------------------------------------------------


def _to_text(value: Any) -> str | None:
    if type(value) is str:
        # isascii() is O(1) for str; only non-ASCII text can hold a lone surrogate.
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _bad("text", value, "not valid Unicode: lone surrogate") from None
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise _bad("text", value)


def _to_ascii(value: Any) -> str | None:
    if type(value) is str and value.isascii():
        return value
    text = _to_text(value)
    if text is not None and not text.isascii():
        raise _bad("ascii", value, "non-ASCII character")
    return text


# --- numbers ------------------------------------------------------------------------------------


def _integer(cql_type: str, value: Any) -> int | None:
    """The integer a raw value stands for, before any range check."""
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is str:
        text = value.strip()
        if not text:
            return None
        match = _INT_TEXT.fullmatch(text)
        if match is None:
            raise _bad(cql_type, value)
        try:
            return int(match.group(1))
        except ValueError:  # int() refuses texts of more than 4300 digits
            raise _bad(cql_type, value, "too many digits") from None
    if kind is float:
        if value.is_integer():
            return int(value)
        raise _bad(cql_type, value)
    if value is None:
        return None
    raise _bad(cql_type, value)


def _int_converter(cql_type: str, bits: int) -> Converter:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: Any) -> int | None:
        if type(value) is int and low <= value <= high:  # the common JSON case, checked first
            return int(value)
        number = _integer(cql_type, value)
        if number is None or low <= number <= high:
            return number
        raise _bad(cql_type, value, f"out of range {low}..{high}")

    convert.__name__ = f"to_{cql_type}"
    return convert


def _to_varint(value: Any) -> int | None:
    return _integer("varint", value)


def _float_converter(cql_type: str, limit: float) -> Converter:
    def convert(value: Any) -> float | None:
        kind = type(value)
        if kind is float:
            number = float(value)
        elif kind is int:
            try:
                number = float(value)
            except OverflowError:
                raise _bad(cql_type, value, "out of range") from None
        elif kind is str:
            text = value.strip()
            if not text:
                return None
            if "_" in text:  # float() accepts "1_000"; a data file should not
                raise _bad(cql_type, value)
            try:
                number = float(text)
            except ValueError:
                raise _bad(cql_type, value) from None
        elif value is None:
            return None
        else:
            raise _bad(cql_type, value)
        if math.isfinite(number) and abs(number) > limit:
            raise _bad(cql_type, value, "out of range")
        return number

    convert.__name__ = f"to_{cql_type}"
    return convert


def _to_decimal(value: Any) -> decimal.Decimal | None:
    kind = type(value)
    if kind is str:
        text = value.strip()
        if not text:
            return None
        if "_" in text:
            raise _bad("decimal", value)
    elif kind is int or kind is float:
        text = repr(value)  # shortest spelling: 0.1 -> "0.1", not 0.1000000000000000055...
    elif value is None:
        return None
    else:
        raise _bad("decimal", value)
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise _bad("decimal", value) from None
    if not number.is_finite():
        raise _bad("decimal", value, "NaN and infinity are not decimals")
    _, digits, exponent = number.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise _bad("decimal", value, f"more than {MAX_DIGITS} digits")
    if not _SCALE_MIN <= -int(exponent) <= _SCALE_MAX:
        raise _bad("decimal", value, "exponent out of range")
    return number


def _to_boolean(value: Any) -> bool | None:
    kind = type(value)
    if kind is bool:
        return bool(value)
    if kind is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if not text:
            return None
    elif kind is int and value in (0, 1):
        return value == 1
    elif value is None:
        return None
    raise _bad("boolean", value, "use true/false, 1/0 or yes/no")


# --- time ---------------------------------------------------------------------------------------


def _from_epoch(value: Any, sign: int, whole: int, fraction: str) -> dt.datetime:
    """Exact integer arithmetic on the digits, so no float rounding creeps into the result."""
    if whole >= TIMESTAMP_MS_THRESHOLD:
        micros = whole * 1_000 + int((fraction + "000")[:3])
    else:
        micros = whole * 1_000_000 + int((fraction + "000000")[:6])
    try:
        return _EPOCH + dt.timedelta(microseconds=sign * micros)
    except OverflowError:
        raise _bad("timestamp", value, "out of range") from None


def _from_epoch_int(value: Any, number: int) -> dt.datetime:
    if -TIMESTAMP_MS_THRESHOLD < number < TIMESTAMP_MS_THRESHOLD:
        try:
            return dt.datetime.fromtimestamp(number, _UTC)  # exact for ints, and the fastest way
        except (OverflowError, ValueError, OSError):
            pass  # outside the platform's range: the exact arithmetic below still works
    return _from_epoch(value, -1 if number < 0 else 1, abs(number), "")


def _timestamp_from_text(value: str) -> dt.datetime | None:
    text = value.strip()
    if not text:
        return None
    match = _EPOCH_TEXT.fullmatch(text)
    if match is not None:
        sign, whole, fraction = match.groups()
        if len(whole) > 20:  # past any datetime, and int() refuses the longest texts outright
            raise _bad("timestamp", value, "out of range")
        return _from_epoch(value, -1 if sign == "-" else 1, int(whole), fraction or "")
    match = _ISO_TIMESTAMP.fullmatch(text)
    if match is None:
        raise _bad("timestamp", value, "use epoch seconds/milliseconds or YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    tz = _UTC
    if sign:
        offset = dt.timedelta(hours=int(off_h), minutes=int(off_m or 0))
        try:
            tz = dt.timezone(-offset if sign == "-" else offset)
        except ValueError:
            raise _bad("timestamp", value, "bad UTC offset") from None
    try:
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0),
            int(second or 0), int((fraction or "").ljust(6, "0")[:6]), tzinfo=tz,
        )
        return moment if tz is _UTC else moment.astimezone(_UTC)
    except (ValueError, OverflowError) as exc:
        raise _bad("timestamp", value, str(exc)) from None


def _to_timestamp(value: Any) -> dt.datetime | None:
    kind = type(value)
    if kind is str:
        if value.isdigit() and value.isascii() and len(value) <= 20:  # the common CSV case: epoch seconds
            return _from_epoch_int(value, int(value))
        return _timestamp_from_text(value)
    if kind is int:
        return _from_epoch_int(value, value)
    if kind is float:
        if not math.isfinite(value):
            raise _bad("timestamp", value)
        scale = 1_000 if abs(value) >= TIMESTAMP_MS_THRESHOLD else 1_000_000
        try:
            return _EPOCH + dt.timedelta(microseconds=round(value * scale))
        except OverflowError:
            raise _bad("timestamp", value, "out of range") from None
    if value is None:
        return None
    raise _bad("timestamp", value)


def _text_or_none(cql_type: str, value: Any) -> str | None:
    """The stripped text of a value that must be text, or None for a null."""
    if type(value) is str:
        return value.strip() or None
    if value is None:
        return None
    raise _bad(cql_type, value)


def _to_date(value: Any) -> dt.date | None:
    text = _text_or_none("date", value)
    if text is None:
        return None
    match = _ISO_DATE.fullmatch(text)
    if match is None:
        raise _bad("date", value, "use YYYY-MM-DD")
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        raise _bad("date", value, str(exc)) from None


def _to_time(value: Any) -> dt.time | None:
    text = _text_or_none("time", value)
    if text is None:
        return None
    match = _ISO_TIME.fullmatch(text)
    if match is None:
        raise _bad("time", value, "use HH:MM:SS[.fraction]")
    hour, minute, second, fraction = match.groups()
    try:
        return dt.time(
            int(hour), int(minute), int(second or 0), int((fraction or "").ljust(6, "0")[:6])
        )
    except ValueError as exc:
        raise _bad("time", value, str(exc)) from None


# --- identifiers and bytes ----------------------------------------------------------------------


def _to_uuid(value: Any) -> uuid.UUID | None:
    text = _text_or_none("uuid", value)
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _bad("uuid", value) from None


def _to_timeuuid(value: Any) -> uuid.UUID | None:
    try:
        result = _to_uuid(value)
    except ValueError:
        raise _bad("timeuuid", value) from None
    if result is not None and result.version != 1:
        raise _bad("timeuuid", value, "not a version 1 (time-based) UUID")
    return result


def _to_inet(value: Any) -> str | None:
    text = _text_or_none("inet", value)
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _bad("inet", value) from None
    # The driver packs addresses with inet_pton, which refuses a zone such as "%eth0".
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise _bad("inet", value, "zone identifiers are not stored")
    return str(address)


def _to_blob(value: Any) -> bytes | None:
    text = _text_or_none("blob", value)
    if text is None:
        return None
    match = _HEX.fullmatch(text)
    if match is None or len(match.group(1)) % 2:
        raise _bad("blob", value, "use hexadecimal digits, optionally after 0x")
    return bytes.fromhex(match.group(1))


CONVERTERS: dict[str, Converter] = {
    "text": _to_text,
    "varchar": _to_text,
    "ascii": _to_ascii,
    "tinyint": _int_converter("tinyint", 8),
    "smallint": _int_converter("smallint", 16),
    "int": _int_converter("int", 32),
    "bigint": _int_converter("bigint", 64),
    "varint": _to_varint,
    "float": _float_converter("float", _FLOAT32_MAX),
    "double": _float_converter("double", math.inf),
    "decimal": _to_decimal,
    "boolean": _to_boolean,
    "timestamp": _to_timestamp,
    "date": _to_date,
    "time": _to_time,
    "uuid": _to_uuid,
    "timeuuid": _to_timeuuid,
    "inet": _to_inet,
    "blob": _to_blob,
}


class RowConverter:
    """Turns records into value tuples, in schema column order, for a prepared INSERT.

    Fields that are not schema columns are ignored; schema columns absent from a record are
    null. Every key column (partition and clustering) must have a value. Column names match
    exactly; type names are read case-insensitively, as CQL does.
    """

    __slots__ = ("_converters", "_keys", "_plan", "columns")

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
        self._plan: tuple[tuple[str, Converter], ...] = tuple(plan)
        self._converters: tuple[Converter, ...] = tuple(converter for _, converter in plan)
        # Checked in column order, so the reported column is the same on both paths of convert().
        self._keys: tuple[int, ...] = tuple(sorted({names.index(key) for key in key_columns}))

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
