"""Data-quality rules of a tenant: parsed and validated once, then checked on every converted row.

A tenant's ``quality`` is an object of named rules. A column rule checks one column, a row rule an
expression over columns (:mod:`expressions`); each has an ``action``: ``refuse`` (the row is refused
with reason ``quality:<rule>``, like any other refused row) or ``tag`` (the row lands, and the
failure is counted)::

    "quality": {
      "popular":   {"column": "ups", "min": 50, "action": "refuse"},
      "sane_score": {"check": "score <= ups", "action": "tag"},
      "not_deleted": {"column": "body", "none_of": ["[deleted]", "[removed]"], "action": "tag"}
    }

Column checks: ``not_null`` (true), ``min`` / ``max`` (numbers, on number columns), ``max_length``
(characters of text, bytes of a blob), ``regex`` (the whole text value must match), ``one_of`` /
``none_of`` (values of the column's type), ``not_in_future`` (timestamp or date columns: true, or the
seconds of clock skew allowed). A null passes every check but ``not_null``. Rules run on the
converted values, after the row passed conversion; every rule is checked on every row, so each
rule's count is complete, and a refused row names the first ``refuse`` rule it failed.

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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import expressions
from .convert import CONVERTERS

# The parser of ``re`` itself (private, as ``re._parser`` since 3.11; the public ``sre_parse`` is a
# deprecated alias): the only way to see a pattern's structure as the matcher will run it.
sre: Any = importlib.import_module("re._constants")
sre_parser: Any = importlib.import_module("re._parser")

RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_RULES = 32  # rule names are a metric label: bounded
MAX_CHOICES = 1000
MAX_PATTERN = 200
MAX_MATCHED = 10_000
ACTIONS = ("refuse", "tag")
CHECKS = ("not_null", "min", "max", "max_length", "regex", "one_of", "none_of", "not_in_future")
_NUMBERS = frozenset({"tinyint", "smallint", "int", "bigint", "varint", "float", "double", "decimal"})
_TEXTS = frozenset({"text", "varchar", "ascii"})
_TIMES = frozenset({"timestamp", "date"})

#: One check of a value (or a row): None when it passes, else what is wrong, in a few words.
Check = Callable[[Any, dt.datetime], "str | None"]


@dataclass(frozen=True)
class Rule:
    name: str
    action: str  # "refuse" or "tag"
    text: str  # what it checks, as configured (for messages and `mysimbdp quality`)
    test: Callable[[Sequence[Any], dt.datetime], str | None] = field(compare=False, repr=False)

    @property
    def reason(self) -> str:
        return f"quality:{self.name}"


@dataclass(frozen=True)
class Quality:
    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    @property
    def actions(self) -> dict[str, str]:
        return {r.name: r.action for r in self.rules}


class Checker:
    """The rules applied to rows, counting rows checked and failures per rule (one per chunk or batch)."""

    __slots__ = ("checked", "failed", "now", "rules")

    def __init__(self, quality: Quality, now: dt.datetime | None = None) -> None:
        self.rules = quality.rules
        self.now = now or dt.datetime.now(dt.UTC)
        self.checked = 0
        self.failed: dict[str, int] = dict.fromkeys((r.name for r in self.rules), 0)

    def __call__(self, row: Sequence[Any]) -> tuple[str, str] | None:
        """None if the row may land, else (reason, detail) of the first ``refuse`` rule it fails."""
        self.checked += 1
        refusal = None
        for rule in self.rules:
            detail = rule.test(row, self.now)
            if detail is not None:
                self.failed[rule.name] += 1
                if refusal is None and rule.action == "refuse":
                    refusal = (rule.reason, detail)
        return refusal

    def counts(self) -> dict[str, Any]:
        """``{"checked": n, "failed": {rule: n}}``: what a receipt, a chunk result and a window keep."""
        return {"checked": self.checked, "failed": dict(self.failed)}


def merge(counts: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Add up :meth:`Checker.counts` of several chunks or batches."""
    checked, failed = 0, {}  # type: tuple[int, dict[str, int]]
    for c in counts:
        if not c:
            continue
        checked += int(c.get("checked", 0))
        for name, n in (c.get("failed") or {}).items():
            failed[name] = failed.get(name, 0) + int(n)
    return {"checked": checked, "failed": failed}


def describe(quality: Quality, counts: Mapping[str, Any]) -> dict[str, Any]:
    """Counts as a receipt shows them: ``{"checked": n, "rules": {rule: {"action": a, "failed": n}}}``."""
    failed = counts.get("failed") or {}
    actions = {**dict.fromkeys(failed, "unknown"), **quality.actions}  # a rule removed since is still shown
    return {"checked": int(counts.get("checked", 0)),
            "rules": {name: {"action": action, "failed": int(failed.get(name, 0))} for name, action in actions.items()}}


# -- parsing ------------------------------------------------------------------------------------


def parse(raw: Any, columns: Mapping[str, str], bad: Callable[[str, str], None]) -> Quality:
    """The tenant's ``quality`` object; every problem goes to ``bad(path, message)``."""
    if not isinstance(raw, dict):
        bad("quality", "expected an object of rule name -> rule, e.g. "
            '{"popular": {"column": "ups", "min": 50, "action": "refuse"}}')
        return Quality()
    if len(raw) > MAX_RULES:
        bad("quality", f"{len(raw)} rules; at most {MAX_RULES}")
    rules = []
    for name, spec in raw.items():
        def bad_rule(message: str, n: str = name) -> None:
            bad(f"quality.{n}", message)
        rule = _rule(name, spec, columns, bad_rule)
        if rule is not None:
            rules.append(rule)
    return Quality(tuple(rules))


def _rule(name: str, spec: Any, columns: Mapping[str, str], bad: Callable[[str], None]) -> Rule | None:
    if not RULE_NAME.match(name):
        bad("a rule name is lower-case letters, digits and '_', starting with a letter, at most 40")
        return None
    if not isinstance(spec, dict):
        bad('expected an object with "column" and its checks, or "check" (a row rule), and "action"')
        return None
    action = spec.get("action")
    if action not in ACTIONS:
        bad(f'"action" must be "refuse" (the row is refused) or "tag" (it lands, counted); got {action!r}')
    if ("column" in spec) == ("check" in spec):
        bad('give either "column" (a column rule) or "check" (a row rule such as "score <= ups"), not both')
        return None
    if "check" in spec:
        unknown = set(spec) - {"check", "action"}
        if unknown:
            bad(f"unknown key(s) {', '.join(sorted(map(str, unknown)))} in a row rule: it has \"check\" and \"action\"")
        try:
            expression, _ = expressions.compile_expression(spec["check"], columns)
        except ValueError as exc:
            bad(f"check {str(spec['check'])[:60]!r}: {exc}")
            return None
        return None if action not in ACTIONS else Rule(name, action, str(spec["check"]), _row_test(expression))
    column = spec["column"]
    if not isinstance(column, str) or column not in columns:
        bad(f"column {column!r} is not in the schema (columns: {', '.join(columns)})")
        return None
    checks = [(k, v) for k, v in spec.items() if k not in ("column", "action")]
    for key, _ in checks:
        if key not in CHECKS:
            bad(f"unknown check {key!r}; a column rule checks {', '.join(CHECKS)}")
    built = [_check(key, value, column, columns[column], bad) for key, value in checks if key in CHECKS]
    if not checks:
        bad(f"no check given for column {column!r}: add one of {', '.join(CHECKS)}")
    if not built or None in built or action not in ACTIONS:
        return None
    text = f"{column}: " + ", ".join(f"{k} {v}" for k, v in checks)
    return Rule(name, action, text, _column_test(list(columns).index(column), [b for b in built if b]))


def _row_test(expression: expressions.Test) -> Callable[[Sequence[Any], dt.datetime], str | None]:
    def test(row: Sequence[Any], _now: dt.datetime) -> str | None:
        return "the row rule is false" if expression(row) is False else None
    return test


def _column_test(index: int, checks: list[Check]) -> Callable[[Sequence[Any], dt.datetime], str | None]:
    def test(row: Sequence[Any], now: dt.datetime) -> str | None:
        value = row[index]
        for check in checks:
            detail = check(value, now)
            if detail is not None:
                return detail
        return None
    return test


def _check(key: str, value: Any, column: str, ctype: str, bad: Callable[[str], None]) -> Check | None:
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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        if key == "min":
            return lambda v, _now: f"column {column!r} is {v}, under the minimum {value}" if (
                v is not None and v < value) else None
        return lambda v, _now: f"column {column!r} is {v}, over the maximum {value}" if (
            v is not None and v > value) else None
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
        converted = set()
        for item in value:
            try:
                v = CONVERTERS[ctype](item)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise ValueError(f"{item!r} is not a {ctype} value: {exc}") from None
            if v is None:
                raise ValueError(f"{item!r} is null; use not_null for nulls")
            converted.add(v)
        choices = frozenset(converted)
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
