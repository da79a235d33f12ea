"""The ingest core: parse a file (or one chunk of it), convert rows, hand good rows to a writer.

Pure of Celery: the tasks call :func:`ingest_chunk` and :func:`summarize`. A row that cannot be
parsed or converted is refused on its own with its line (CSV, JSON Lines) or record (JSON array)
number and the reason; the rows around it still land.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .convert import RowConverter
from .errors import RowError
from .parsing import Chunk, Format, iter_records
from .tenants import Tenant

REFUSALS_CAP = 1000  # refusals listed in a receipt; the count is always complete

Writer = Callable[[Iterable[Sequence[Any]]], int]


@dataclass
class ChunkResult:
    index: int
    rows_ok: int = 0
    rows_refused: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, number: int, reason: str, detail: str) -> None:
        self.rows_refused += 1
        if len(self.refusals) < REFUSALS_CAP:
            self.refusals.append({"line": number, "reason": reason, "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "rows_ok": self.rows_ok, "rows_refused": self.rows_refused,
                "refusals": self.refusals}


def converter_for(tenant: Tenant) -> RowConverter:
    return RowConverter(tenant.column_types, tenant.key.columns)


def ingest_chunk(path: Path, fmt: Format, chunk: Chunk | None, converter: RowConverter, write: Writer,
                 index: int = 0) -> ChunkResult:
    """Parse ``chunk`` of ``path`` (or the whole file), convert and write; return the outcome."""
    result = ChunkResult(index)

    def good_rows() -> Iterator[Sequence[Any]]:
        for record in iter_records(path, fmt, chunk=chunk):
            if record.data is None:
                result.refuse(record.number, "unparseable", record.error or "cannot parse")
                continue
            try:
                yield converter.convert(record.data)
            except RowError as exc:
                result.refuse(record.number, exc.reason, exc.detail)

    result.rows_ok = write(good_rows())
    return result


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Merge per-chunk outcomes (as stored) into file totals, refusals ordered by line."""
    ordered = sorted(results, key=lambda r: r["index"])
    refusals = sorted((f for r in ordered for f in r["refusals"]), key=lambda f: f["line"])
    return {
        "rows_ok": sum(r["rows_ok"] for r in ordered),
        "rows_refused": sum(r["rows_refused"] for r in ordered),
        "refusals": refusals[:REFUSALS_CAP],
        "refusals_truncated": sum(r["rows_refused"] for r in ordered) > min(len(refusals), REFUSALS_CAP),
    }
