"""Row rules of data quality: a tiny expression language, parsed by hand and compiled to closures.

The grammar, all of it (no arithmetic, no calls, no attributes: nothing but comparisons)::

    expr       := conj ("or" conj)*
    conj       := neg ("and" neg)*
    neg        := "not" neg | "(" expr ")" | comparison
    comparison := term OP term            OP: < <= > >= == !=
    term       := COLUMN | NUMBER | 'text' | "text" | true | false

A column must be in the tenant's schema; a literal is converted at parse time with the converter
of the column it is compared with, so ``created_utc > '2015-01-01'`` compares two timestamps.
Two literals are never compared (the rule would be constant). Ordering (``<`` ...) is allowed on
numbers, text and time; booleans, uuids, addresses and blobs take ``==`` and ``!=`` only.

A comparison with a null is *unknown*, and ``and``/``or``/``not`` follow SQL's three-valued logic,
so a row fails a rule only when the rule is false, never when it is unknown (a ``CHECK`` constraint
reads the same way). Nothing here ever calls ``eval`` or compiles Python: the parser builds
closures over column positions and constants.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .checks import literal

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Test", "compile_expression"]

MAX_LENGTH = 400  # characters of one expression
MAX_TOKENS = 80
MAX_DEPTH = 12  # nested parentheses and "not"s

#: A compiled expression: the row's values in schema column order -> True, False or None (unknown).
Test = Callable[[Sequence[Any]], "bool | None"]

_TOKEN = re.compile(r"""\s*(?:
    (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_\d]))
  | (?P<text>'[^'\\]*'|"[^"\\]*")
  | (?P<op><=|>=|==|!=|<|>)
  | (?P<paren>[()])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
)""", re.VERBOSE)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}
_KEYWORDS = ("and", "or", "not", "true", "false")
_ORDERED = frozenset({"tinyint", "smallint", "int", "bigint", "varint", "float", "double", "decimal", "text",
                      "varchar", "ascii", "timestamp", "date", "time"})
_KIND = {"tinyint": "number", "smallint": "number", "int": "number", "bigint": "number", "varint": "number",
         "float": "number", "double": "number", "decimal": "number", "text": "text", "varchar": "text",
         "ascii": "text"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            at = len(text) - len(text[pos:].lstrip())
            raise ValueError(f"unexpected {text[at:at + 10]!r} at character {at + 1}: an expression has columns, "
                             "numbers, quoted text, true/false, comparisons (< <= > >= == !=), and/or/not and "
                             "parentheses, nothing else")
        out.append((m.lastgroup, m.group(m.lastgroup), m.start(m.lastgroup) + 1))
        pos = m.end()
        if len(out) > MAX_TOKENS:
            raise ValueError(f"more than {MAX_TOKENS} tokens; keep a row rule short")
    return out


class _Parser:
    def __init__(self, text: str, columns: Mapping[str, str]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.columns = columns
        self.index = {name: i for i, name in enumerate(columns)}
        self.used: set[str] = set()

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ValueError("the expression ends too early")
        self.pos += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def expr(self, depth: int) -> Test:
        parts = [self.conj(depth)]
        while self.is_word("or"):
            self.take()
            parts.append(self.conj(depth))
        return parts[0] if len(parts) == 1 else _any(parts)

    def conj(self, depth: int) -> Test:
        parts = [self.neg(depth)]
        while self.is_word("and"):
            self.take()
            parts.append(self.neg(depth))
        return parts[0] if len(parts) == 1 else _all(parts)

    def neg(self, depth: int) -> Test:
        if depth > MAX_DEPTH:
            raise ValueError(f"nested more than {MAX_DEPTH} deep")
        if self.is_word("not"):
            self.take()
            return _not(self.neg(depth + 1))
        token = self.peek()
        if token is not None and token[1] == "(":
            self.take()
            inner = self.expr(depth + 1)
            close = self.take()
            if close[1] != ")":
                raise ValueError(f"expected ')' at character {close[2]}, got {close[1]!r}")
            return inner
        return self.comparison()

    def comparison(self) -> Test:
        left = self.term()
        op = self.take()
        if op[0] != "op":
            raise ValueError(f"expected a comparison (< <= > >= == !=) at character {op[2]}, got {op[1]!r}")
        right = self.term()
        return self.compare(left, op[1], right, op[2])

    def term(self) -> tuple[str, Any]:
        kind, text, at = self.take()
        if kind == "word":
            word = text.lower()
            if word in ("true", "false"):
                return "literal", word == "true"
            if word in _KEYWORDS:
                raise ValueError(f"expected a column or a value at character {at}, got {text!r}")
            if text not in self.columns:
                raise ValueError(f"column {text!r} is not in the schema (columns: {', '.join(self.columns)})")
            self.used.add(text)
            return "column", text
        if kind == "number":
            return "number", text
        if kind == "text":
            return "literal", text[1:-1]
        raise ValueError(f"expected a column or a value at character {at}, got {text!r}")

    def compare(self, left: tuple[str, Any], op: str, right: tuple[str, Any], at: int) -> Test:
        if left[0] != "column" and right[0] != "column":
            raise ValueError(f"compares two constants at character {at}: one side must be a column")
        if left[0] != "column":  # keep the column on the left: 50 <= ups is ups >= 50
            left, right, op = right, left, {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        column = left[1]
        ctype = self.columns[column]
        if op not in ("==", "!=") and ctype not in _ORDERED:
            raise ValueError(f"{op} does not apply to column {column!r} of type {ctype}: use == or !=")
        compare, i = _OPS[op], self.index[column]
        if right[0] == "column":
            other = self.columns[right[1]]
            if _KIND.get(ctype, ctype) != _KIND.get(other, other):
                raise ValueError(f"column {column!r} ({ctype}) cannot be compared with {right[1]!r} ({other})")
            j = self.index[right[1]]
            return lambda row: None if row[i] is None or row[j] is None else compare(row[i], row[j])
        if right[0] == "number" and _KIND.get(ctype) != "number":
            raise ValueError(f"column {column!r} is {ctype}, not a number: compare it with quoted text")
        constant = _constant(right[1], column, ctype)
        return lambda row: None if row[i] is None else compare(row[i], constant)


def _constant(value: Any, column: str, ctype: str) -> Any:
    if isinstance(value, bool) and ctype != "boolean":
        raise ValueError(f"{str(value).lower()} cannot be compared with column {column!r} of type {ctype}")
    return literal(value, column, ctype)


def _not(inner: Test) -> Test:
    def test(row: Sequence[Any]) -> bool | None:
        value = inner(row)
        return None if value is None else not value
    return test


def _all(parts: list[Test]) -> Test:
    def test(row: Sequence[Any]) -> bool | None:
        unknown = False
        for part in parts:
            value = part(row)
            if value is False:
                return False
            unknown = unknown or value is None
        return None if unknown else True
    return test


def _any(parts: list[Test]) -> Test:
    def test(row: Sequence[Any]) -> bool | None:
        unknown = False
        for part in parts:
            value = part(row)
            if value is True:
                return True
            unknown = unknown or value is None
        return None if unknown else False
    return test


def compile_expression(text: Any, columns: Mapping[str, str]) -> tuple[Test, frozenset[str]]:
    """The expression's test and the columns it reads; ValueError saying what is wrong and where."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected an expression as text, e.g. \"score <= ups\"")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{len(text)} characters; a row rule has at most {MAX_LENGTH}")
    parser = _Parser(text, columns)
    test = parser.expr(0)
    rest = parser.peek()
    if rest is not None:
        raise ValueError(f"unexpected {rest[1]!r} at character {rest[2]}: expected 'and', 'or' or the end")
    return test, frozenset(parser.used)
