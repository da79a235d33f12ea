"""Column checks of data-quality rules: each builder validates a check's setting against the column's
type and returns a function of one converted value.

Regular expressions are Python's ``re``, guarded where they are configured: a pattern is at most
:data:`MAX_PATTERN` characters, and the shapes that make a backtracking matcher take exponential
time are refused (a repetition inside a repetition such as ``(a+)+``, alternatives inside a
repetition such as ``(a|aa)+``, back-references); a value longer than :data:`MAX_MATCHED`
characters fails without being matched. (The ``regex`` package's per-match timeout was measured at
about 10 us per call, more than all the other rules of a tenant together.)
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from .convert import CONVERTERS

# The parser of ``re`` itself (private, as ``re._parser`` since 3.11; the public ``sre_parse`` is a
# deprecated alias): the only way to see a pattern's structure as the matcher will run it.
sre: Any = importlib.import_module("re._constants")
sre_parser: Any = importlib.import_module("re._parser")

MAX_CHOICES = 1000
MAX_PATTERN = 200
MAX_MATCHED = 10_000
CHECKS = ("not_null", "min", "max", "max_length", "regex", "one_of", "none_of", "not_in_future")
_NUMBERS = frozenset({"tinyint", "smallint", "int", "bigint", "varint", "float", "double", "decimal"})
_TEXTS = frozenset({"text", "varchar", "ascii"})
_TIMES = frozenset({"timestamp", "date"})

#: One check of a value: None when it passes, else what is wrong, in a few words.
Check = Callable[[Any, dt.datetime], "str | None"]


def literal(value: Any, column: str, ctype: str) -> Any:
    """A configured value as the column's converter makes it; ValueError if it is none, or is null."""
    try:
        converted = CONVERTERS[ctype](value)
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"{value!r} is not a value of column {column!r} ({ctype}): {exc}") from None
    if converted is None:
        raise ValueError(f"{value!r} is null for column {column!r}; a rule never matches a null with a value")
    return converted


def build(key: str, value: Any, column: str, ctype: str, bad: Callable[[str], None]) -> Check | None:
    """One column check, or None after telling ``bad`` what to fix."""
    try:
        return _BUILDERS[key](value, column, ctype)
    except ValueError as exc:
        bad(f"{key}: {exc}")
        return None


def _not_null(value: Any, column: str, ctype: str) -> Check:
    if value is not True:
        raise ValueError(f"expected true, got {value!r}")
    return lambda v, _now: f"column {column!r} is null" if v is None else None


def _bound(key: str) -> Callable[[Any, str, str], Check]:
    def build(value: Any, column: str, ctype: str) -> Check:
        if ctype not in _NUMBERS:
            raise ValueError(f"applies to number columns; column {column!r} is {ctype}"
                             + (" (use max_length for text)" if ctype in _TEXTS else ""))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        # NaN is neither under nor over anything: "within the bound" is what is tested, so it fails.
        within, outside = (operator.ge, "under the minimum") if key == "min" else (operator.le, "over the maximum")

        def check(v: Any, _now: dt.datetime) -> str | None:
            if v is None or within(v, value):
                return None
            return f"column {column!r} is {v}, " + ("not a number" if v != v else f"{outside} {value}")
        return check
    return build


def _max_length(value: Any, column: str, ctype: str) -> Check:
    if ctype not in _TEXTS and ctype != "blob":
        raise ValueError(f"applies to text and blob columns; column {column!r} is {ctype}")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return lambda v, _now: f"column {column!r} has {len(v)} characters, over {value}" if (
        v is not None and len(v) > value) else None


def _regex(value: Any, column: str, ctype: str) -> Check:
    if ctype not in _TEXTS:
        raise ValueError(f"applies to text columns; column {column!r} is {ctype}")
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a pattern as text, got {value!r}")
    if len(value) > MAX_PATTERN:
        raise ValueError(f"the pattern has {len(value)} characters; at most {MAX_PATTERN}")
    try:
        pattern = re.compile(value)
        risk = _backtracking(sre_parser.parse(value).data, repeated=False)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    if risk:
        raise ValueError(f"{value!r} has {risk}, which can take exponential time on some values; write it without")

    def check(v: Any, _now: dt.datetime) -> str | None:
        if v is None:
            return None
        if len(v) > MAX_MATCHED:
            return f"column {column!r} has {len(v)} characters: over {MAX_MATCHED}, not matched"
        return None if pattern.fullmatch(v) else f"column {column!r} does not match {value!r}"
    return check


_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


def _backtracking(items: Any, repeated: bool) -> str | None:
    """What in a parsed pattern may backtrack without end, if anything."""
    for op, av in items:
        found = None
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            return "a back-reference"
        if op in _REPEATS:
            _, most, body = av
            if repeated and most > 1:
                return "a repetition inside a repetition (like (a+)+)"
            found = _backtracking(body, repeated or most > 1)
        elif op is sre.BRANCH:
            if repeated:
                return "alternatives inside a repetition (like (a|aa)+)"
            found = next((r for r in (_backtracking(b, repeated) for b in av[1]) if r), None)
        elif op is sre.SUBPATTERN:
            found = _backtracking(av[3], repeated)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            found = _backtracking(av[1], repeated)
        elif op is sre.ATOMIC_GROUP:
            found = _backtracking(av, repeated)
        if found:
            return found
    return None


def _choices(key: str) -> Callable[[Any, str, str], Check]:
    def build(value: Any, column: str, ctype: str) -> Check:
        if not isinstance(value, list) or not value or len(value) > MAX_CHOICES:
            raise ValueError(f"expected a list of 1 to {MAX_CHOICES} values of column {column!r}")
        choices = frozenset(literal(item, column, ctype) for item in value)
        shown = ", ".join(repr(x) for x in value[:5]) + (", ..." if len(value) > 5 else "")
        if key == "one_of":
            return lambda v, _now: f"column {column!r} is not one of {shown}" if (
                v is not None and v not in choices) else None
        return lambda v, _now: f"column {column!r} is {v!r}" if v is not None and v in choices else None
    return build


def _not_in_future(value: Any, column: str, ctype: str) -> Check:
    if ctype not in _TIMES:
        raise ValueError(f"applies to timestamp and date columns; column {column!r} is {ctype}")
    if value is True:
        leeway = 0.0
    elif not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0:
        leeway = float(value)
    else:
        raise ValueError(f"expected true, or the seconds of clock skew allowed; got {value!r}")
    skew = dt.timedelta(seconds=leeway)
    if ctype == "date":
        return lambda v, now: f"column {column!r} is {v}, in the future" if (
            v is not None and v > (now + skew).date()) else None
    return lambda v, now: f"column {column!r} is {v.isoformat()}, in the future" if (
        v is not None and v > now + skew) else None


_BUILDERS: dict[str, Callable[[Any, str, str], Check]] = {
    "not_null": _not_null, "min": _bound("min"), "max": _bound("max"), "max_length": _max_length,
    "regex": _regex, "one_of": _choices("one_of"), "none_of": _choices("none_of"), "not_in_future": _not_in_future,
}
