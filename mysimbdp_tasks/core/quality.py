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

Column checks (:mod:`checks`): ``not_null`` (true), ``min`` / ``max`` (numbers, on number columns),
``max_length`` (characters of text, bytes of a blob), ``regex`` (the whole text value must match),
``one_of`` / ``none_of`` (values of the column's type), ``not_in_future`` (timestamp or date
columns: true, or the seconds of clock skew allowed). A null passes every check but ``not_null``.
Rules run on the converted values, after the row passed conversion; every rule is checked on every
row, so each rule's count is complete, and a refused row names the first ``refuse`` rule it failed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import checks, expressions
from .checks import CHECKS, Check

RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
MAX_RULES = 32  # rule names are a metric label: bounded
ACTIONS = ("refuse", "tag")


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
    given = [(k, v) for k, v in spec.items() if k not in ("column", "action")]
    for key, _ in given:
        if key not in CHECKS:
            bad(f"unknown check {key!r}; a column rule checks {', '.join(CHECKS)}")
    built = [checks.build(key, value, column, columns[column], bad) for key, value in given if key in CHECKS]
    if not given:
        bad(f"no check given for column {column!r}: add one of {', '.join(CHECKS)}")
    if not built or None in built or action not in ACTIONS:
        return None
    text = f"{column}: " + ", ".join(f"{k} {v}" for k, v in given)
    return Rule(name, action, text, _column_test(list(columns).index(column), [b for b in built if b]))


def _row_test(expression: expressions.Test) -> Callable[[Sequence[Any], dt.datetime], str | None]:
    def test(row: Sequence[Any], _now: dt.datetime) -> str | None:
        try:
            result = expression(row)
        except (ArithmeticError, TypeError):  # a decimal against a float NaN: unknown, as with a null
            return None
        return "the row rule is false" if result is False else None
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
