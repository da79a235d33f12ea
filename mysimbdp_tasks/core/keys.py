"""A table's CQL primary key, as a tenant's schema gives it: parsed, checked, written back as CQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import cql


@dataclass(frozen=True)
class PrimaryKey:
    partition: tuple[str, ...]
    clustering: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.partition + self.clustering

    def cql(self) -> str:
        part = ", ".join(cql.ident(c) for c in self.partition)
        rest = "".join(f", {cql.ident(c)}" for c in self.clustering)
        return f"(({part}){rest})"

    def __str__(self) -> str:
        rest = "".join(f", {c}" for c in self.clustering)
        return f"(({', '.join(self.partition)}){rest})"



def parse_key(text: Any) -> PrimaryKey:
    """Parse a CQL primary key: ``id``, ``(id)``, ``(a, b)``, ``((a, b), c, d)``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected a CQL primary key such as \"((subreddit, id), ups)\"")
    s = text.strip()
    if s.startswith("("):
        if not s.endswith(")") or _depth_ok(s) is False:
            raise ValueError(f"{text!r}: unbalanced parentheses")
        s = s[1:-1].strip()
    partition: list[str]
    if s.startswith("("):
        close = s.find(")")
        if close < 0:
            raise ValueError(f"{text!r}: unbalanced parentheses")
        partition = _names(s[1:close], text)
        rest = s[close + 1:].strip()
        if rest and not rest.startswith(","):
            raise ValueError(f"{text!r}: expected ',' after the partition key")
        clustering = _names(rest[1:], text) if rest else []
    else:
        parts = _names(s, text)
        partition, clustering = parts[:1], parts[1:]
    if not partition:
        raise ValueError(f"{text!r}: the partition key is empty")
    return PrimaryKey(tuple(partition), tuple(clustering))


def _depth_ok(s: str) -> bool:
    depth = 0
    for i, ch in enumerate(s):
        depth += (ch == "(") - (ch == ")")
        if depth < 0 or (depth == 0 and i != len(s) - 1) or depth > 2:
            return False
    return depth == 0


def _names(part: str, text: str) -> list[str]:
    names = [n.strip() for n in part.split(",")]
    for n in names:
        if cql.identifier_problem(n) is not None or "(" in n or ")" in n:
            raise ValueError(f"{text!r}: {n!r} is not a column name")
    return names
