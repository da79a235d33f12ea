"""The anchors benchmark's data: the rows a generated tenant2 CSV holds, each tool's copy of them,
and the row-by-row comparison of a loaded table with them.

Pure: files in, files and values out; no service. The rows are read with Python's ``csv`` module,
not with the platform's parser, so the check does not trust the code it measures.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMNS = ("created_utc", "subreddit", "id", "author", "body")  # tenant2's columns, in the file's order
KEY = ("subreddit", "id", "author")  # tenant2's primary key: ((subreddit, id), author)
VALUES = ("created_utc", "body")
Key = tuple[str, str, str]
Values = tuple[dt.datetime, str | None]
EXAMPLES = 5  # differing rows quoted in a verdict


def _timestamp(text: str) -> dt.datetime:
    """Epoch seconds (what the generator writes) as a naive UTC datetime, as the driver returns it."""
    return dt.datetime.fromtimestamp(int(text), dt.UTC).replace(tzinfo=None)


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """The records of a generated CSV file (header, RFC 4180 quoting) as dicts of their fields."""
    with path.open(newline="", encoding="utf-8") as fh:
        yield from csv.DictReader(fh)


def expected_rows(path: Path) -> dict[Key, Values]:
    """Key -> values of every record of ``path``; a later record with the same key wins, as in Cassandra."""
    return {(r["subreddit"], r["id"], r["author"]): (_timestamp(r["created_utc"]), r["body"]) for r in read_rows(path)}


# -- each tool's copy of the input ----------------------------------------------------------------


def cqlsh_field(text: str) -> str:
    """One field the way cqlsh's COPY FROM reads it: quoted, quote and backslash escaped with a backslash.

    cqlsh parses with ``escapechar='\\\\'`` and doubled quotes off, so an RFC 4180 file with a
    backslash in a body would lose it. Every text field is quoted, so no value is read as NULL.
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_line(text: str) -> str:
    """Line breaks as the two characters ``\\r`` and ``\\n``, for cqlsh.

    cqlsh 6.2's COPY FROM reads its file line by line and counts a chunk done when the records
    imported equal the lines sent, so a field that spans lines hangs the import ("No records inserted
    in 90 seconds, aborting"). Its copy carries each line break escaped, and its table is checked
    against the rows with the same substitution (:func:`one_line_rows`).
    """
    return text.replace("\r", "\\r").replace("\n", "\\n")


def one_line_rows(expected: Mapping[Key, Values]) -> dict[Key, Values]:
    """``expected`` as cqlsh is given it: :func:`one_line` applied to every text value."""
    return {(one_line(k[0]), one_line(k[1]), one_line(k[2])): (v[0], None if v[1] is None else one_line(v[1]))
            for k, v in expected.items()}


def cqlsh_timestamp(epoch_seconds: str) -> str:
    """cqlsh reads a bare integer as milliseconds: give it ``YYYY-MM-DD HH:MM:SS+0000``."""
    return _timestamp(epoch_seconds).strftime("%Y-%m-%d %H:%M:%S+0000")


def write_cqlsh_copy(src: Path, dst: Path) -> int:
    """Write ``src``'s records as cqlsh's COPY FROM reads them, one line each; return the records written."""
    n = 0
    with dst.open("w", newline="", encoding="utf-8") as out:
        out.write(",".join(COLUMNS) + "\n")
        for r in read_rows(src):
            fields = [cqlsh_timestamp(r["created_utc"]), *(cqlsh_field(one_line(r[c])) for c in COLUMNS[1:])]
            out.write(",".join(fields) + "\n")
            n += 1
    return n


def write_jsonl(src: Path, dst: Path) -> int:
    """Write ``src``'s records as JSON Lines, one object per record (``created_utc`` an integer of
    epoch seconds, the rest strings, as a tenant's JSON export has them); return the records written."""
    n = 0
    with dst.open("w", encoding="utf-8") as out:
        for r in read_rows(src):
            record = {"created_utc": int(r["created_utc"]), **{c: r[c] for c in COLUMNS[1:]}}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


# -- verification -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """How a table compares with the rows it should hold."""

    expected: int
    found: int
    missing: int  # keys expected and not in the table
    extra: int  # keys in the table and not expected
    different: int  # keys in both whose values differ
    examples: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.missing == self.extra == self.different == 0 and self.found == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "expected": self.expected, "found": self.found, "missing": self.missing,
                "extra": self.extra, "different": self.different, "examples": list(self.examples)}

    def line(self) -> str:
        if self.ok:
            return f"verified: all {self.expected:,} rows, key and values"
        return (f"MISMATCH: {self.found:,} rows found, {self.expected:,} expected; {self.missing:,} missing, "
                f"{self.extra:,} extra, {self.different:,} with other values; e.g. {'; '.join(self.examples)}")


def _same(want: Values, got: Values) -> bool:
    # A text column holds '' or null alike for the tenant: a loader that writes an empty body as
    # null (cqlsh does for an empty field) has still loaded the row.
    return want[0] == got[0] and (want[1] or "") == (got[1] or "")


def compare(expected: Mapping[Key, Values], actual: Iterable[tuple[Key, Values]]) -> Verdict:
    """Compare the table's rows (``actual``, any order) with ``expected``, key by key and value by value."""
    seen: set[Key] = set()
    extra = different = 0
    examples: list[str] = []
    for key, got in actual:
        seen.add(key)
        want = expected.get(key)
        if want is None:
            extra += 1
            if len(examples) < EXAMPLES:
                examples.append(f"extra key {key!r}")
        elif not _same(want, got):
            different += 1
            if len(examples) < EXAMPLES:
                examples.append(f"{key!r}: expected {want!r}, found {got!r}")
    missing_keys = [k for k in expected if k not in seen]
    examples += [f"missing key {k!r}" for k in missing_keys[: max(0, EXAMPLES - len(examples))]]
    return Verdict(len(expected), len(seen), len(missing_keys), extra, different, tuple(examples))
