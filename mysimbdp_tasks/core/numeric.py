"""Converters of numbers: the integer types, ``float`` / ``double`` and ``decimal``.

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
"""

from __future__ import annotations

import decimal
import math
import re
import sys
from typing import Any

from .values import Converter, bad

__all__ = ["FLOAT32_MAX", "MAX_DIGITS", "float_converter", "int_converter", "to_decimal", "to_varint"]

FLOAT32_MAX = 3.4028234663852886e38
#: Most digits in a varint or decimal: int() (used here and by the driver) refuses longer texts.
MAX_DIGITS = sys.get_int_max_str_digits() or 4300
_SCALE_MIN, _SCALE_MAX = -(2**31), 2**31 - 1  # a decimal's scale is a CQL int

# ASCII digits only: str.isdigit() and int() also accept other scripts' digits.
_INT_TEXT = re.compile(r"([+-]?[0-9]+)(?:\.0*)?")


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
            raise bad(cql_type, value)
        try:
            return int(match.group(1))
        except ValueError:  # int() refuses texts of more than 4300 digits
            raise bad(cql_type, value, "too many digits") from None
    if kind is float:
        if value.is_integer():
            return int(value)
        raise bad(cql_type, value)
    if value is None:
        return None
    raise bad(cql_type, value)


def int_converter(cql_type: str, bits: int) -> Converter:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: Any) -> int | None:
        if type(value) is int and low <= value <= high:  # the common JSON case, checked first
            return int(value)
        number = _integer(cql_type, value)
        if number is None or low <= number <= high:
            return number
        raise bad(cql_type, value, f"out of range {low}..{high}")

    convert.__name__ = f"to_{cql_type}"
    return convert


def to_varint(value: Any) -> int | None:
    return _integer("varint", value)


def float_converter(cql_type: str, limit: float) -> Converter:
    def convert(value: Any) -> float | None:
        kind = type(value)
        if kind is float:
            number = float(value)
        elif kind is int:
            try:
                number = float(value)
            except OverflowError:
                raise bad(cql_type, value, "out of range") from None
        elif kind is str:
            text = value.strip()
            if not text:
                return None
            if "_" in text:  # float() accepts "1_000"; a data file should not
                raise bad(cql_type, value)
            try:
                number = float(text)
            except ValueError:
                raise bad(cql_type, value) from None
        elif value is None:
            return None
        else:
            raise bad(cql_type, value)
        if math.isfinite(number) and abs(number) > limit:
            raise bad(cql_type, value, "out of range")
        return number

    convert.__name__ = f"to_{cql_type}"
    return convert


def to_decimal(value: Any) -> decimal.Decimal | None:
    kind = type(value)
    if kind is str:
        text = value.strip()
        if not text:
            return None
        if "_" in text:
            raise bad("decimal", value)
    elif kind is int or kind is float:
        text = repr(value)  # shortest spelling: 0.1 -> "0.1", not 0.1000000000000000055...
    elif value is None:
        return None
    else:
        raise bad("decimal", value)
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise bad("decimal", value) from None
    if not number.is_finite():
        raise bad("decimal", value, "NaN and infinity are not decimals")
    _, digits, exponent = number.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise bad("decimal", value, f"more than {MAX_DIGITS} digits")
    if not _SCALE_MIN <= -int(exponent) <= _SCALE_MAX:
        raise bad("decimal", value, "exponent out of range")
    return number
