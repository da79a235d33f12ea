"""The ingest core: parse a file (or one chunk of it), convert rows, hand good rows to a writer.

Pure of Celery: the tasks call :func:`ingest_chunk` and :func:`summarize`. A row that cannot be
parsed, converted or written is refused on its own with its line (CSV, JSON Lines) or record (JSON
array) number and the reason; the rows around it still land. A chunk that cannot be read on (a file
unparseable from some point, or changed after planning) keeps the rows written before the problem
and records the problem as its ``error``: what landed is always counted.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any

from .convert import RowConverter
from .encoding import EncodedRows, RowEncoder
from .errors import PermanentIngestError, RowError
from .formats import Chunk, Format, Opener, open_plain
from .parsing import read_records
from .quality import Checker, merge
from .tenants import Tenant

REFUSALS_CAP = 1000  # refusals listed in a receipt; the count is always complete

#: Called by a writer for a row it could not write: (position of the row in what it was given,
#: reason, detail). It may be called from another thread.
Refuse = Callable[[int, str, str], None]
#: Writes rows, reports those it refused, and returns how many were written.
Writer = Callable[[Iterable[Sequence[Any]], Refuse], int]


@dataclass
class ChunkResult:
    index: int
    rows_ok: int = 0
    rows_refused: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)
    error: PermanentIngestError | None = None  # why reading stopped early, if it did
    reasons: dict[str, int] = field(default_factory=dict)  # refused rows per reason, all of them
    quality: dict[str, Any] | None = None  # rows checked and failed per rule (Checker.counts), with rules

    def refuse(self, number: int, reason: str, detail: str) -> None:
        self.rows_refused += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if len(self.refusals) < REFUSALS_CAP:
            self.refusals.append({"line": number, "reason": reason, "detail": detail})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "rows_ok": self.rows_ok, "rows_refused": self.rows_refused,
                               "refusals": self.refusals, "reasons": self.reasons}
        if self.quality is not None:
            out["quality"] = self.quality
        if self.error is not None:
            out["error"] = {"reason": self.error.reason, "detail": self.error.detail}
        return out


def converter_for(tenant: Tenant) -> RowConverter:
    return RowConverter(tenant.column_types, tenant.key.columns)


def checked(tenant: Tenant, encoder: RowConverter) -> tuple[RowConverter, Checker | None]:
    """The converter and quality checker for one chunk or micro-batch.

    Without rules: the sink's ``encoder`` (rows straight to bytes) and no checker. With rules: a
    converter to Python values, which the rules read and the sink then binds.
    """
    if not tenant.quality:
        return encoder, None
    return converter_for(tenant), Checker(tenant.quality)


def ingest_chunk(path: Path, fmt: Format, chunk: Chunk | None, converter: RowConverter, write: Writer,
                 index: int = 0, limit: int | None = None, inflate_limit: int | None = None,
                 check: Checker | None = None, opener: Opener = open_plain, columnar: bool = True) -> ChunkResult:
    """Parse ``chunk`` of ``path`` (or the whole file), convert and write; return the outcome.

    Never raises for anything in the file: a record that fails is refused, and a failure of the
    reader itself ends the chunk with ``error`` set after the rows before it were written. Only
    the writer's own failures (a service away) escape. ``check`` applies the tenant's quality
    rules to each converted row: a row failing a ``refuse`` rule is refused with ``quality:<rule>``.
    A CSV chunk encoded for the sink without rules is read by column (:mod:`csvcolumns`) unless
    ``columnar`` is False: the same rows, numbers and refusals, with less work per row.
    """
    result = ChunkResult(index)
    numbers: list[int] = []  # record number of each row handed to the writer, by position
    lock = Lock()  # the sink reports refusals from its driver threads while parsing goes on

    def refuse_record(number: int, reason: str, detail: str) -> None:
        with lock:
            result.refuse(number, reason, detail)

    def records(header: list[list[str]]) -> Iterator[tuple[int, Any, str | None]]:
        if columnar and fmt == "csv" and check is None and type(converter) is RowEncoder:
            from . import csvcolumns  # pyarrow and numpy only in processes that read CSV (see parsing)

            return csvcolumns.encoded_records(path, chunk, converter, limit=limit, header=header, opener=opener)
        typed = (converter.types, converter.key_columns)
        return read_records(path, fmt, chunk=chunk, limit=limit, header=header, inflate_limit=inflate_limit,
                            typed=typed, opener=opener)

    def good_rows() -> Iterator[Sequence[Any]]:
        header: list[list[str]] = []  # a CSV file's header, once read
        convert, convert_fields = converter.convert, converter.convert_fields
        try:
            for number, data, error in records(header):
                try:
                    if type(data) is list:  # a CSV row, in its header's order
                        row = convert_fields(header[0], data)
                    elif type(data) is EncodedRows:  # rows of a CSV block read by column, already bytes
                        numbers.extend(data.numbers)
                        yield from data.rows
                        continue
                    elif data is not None:
                        row = convert(data)
                    else:
                        refuse_record(number, "unparseable", error or "cannot parse")
                        continue
                    if check is not None:
                        refusal = check(row)
                        if refusal is not None:
                            refuse_record(number, *refusal)
                            continue
                except RowError as exc:
                    refuse_record(number, exc.reason, exc.detail)
                    continue
                except Exception as exc:  # noqa: BLE001 - one record's surprise must not end the file
                    refuse_record(number, "bad_value", f"{type(exc).__name__}: {exc}")
                    continue
                numbers.append(number)
                yield row
        except PermanentIngestError as exc:
            result.error = exc
        except Exception as exc:  # noqa: BLE001 - the reader is pure: whatever it raises is about the file
            result.error = PermanentIngestError("unparseable", f"{type(exc).__name__}: {exc}")

    def refuse_written(position: int, reason: str, detail: str) -> None:
        refuse_record(numbers[position], reason, detail)

    with no_collections(collect_after=True):
        result.rows_ok = write(good_rows(), refuse_written)
    if check is not None:
        result.quality = check.counts()
    return result


@contextmanager
def no_collections(collect_after: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk (or a stream micro-batch) is written.

    A chunk allocates a few short-lived containers per row (a row, its values, a group entry),
    many alive at once while their batches are in flight, and no cycles: a chunk of 35k rows left
    none behind (``gc.collect()`` after it found 0). Each young collection still walked every
    container allocated since the last, and promoted the in-flight ones to be walked again: with
    the young threshold raised to 50,000 the collector still took about 10 % of the CPU per row
    (py-spy: ``gc_collect_main``). Reference counting frees everything a chunk drops; collections
    resume, as they were, when the chunk ends.

    ``collect_after`` (a batch chunk): one full collection when it ends. The driver's futures sit in
    reference cycles (sink.py) that only the collector frees; collected right after the chunk,
    their memory is reused by the next one, and a worker's peak RSS stays flat over a long file
    (``benchmarks.probe_rss``, 200 MB JSON array, 25 chunks: 112 MB after the first chunks and
    after the last, against 112 -> 130 MB without). A stream micro-batch is too small to pay for it.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
        if collect_after:
            gc.collect()


def summarize(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Merge per-chunk outcomes (as stored) into file totals, refusals ordered by line."""
    ordered = sorted(results, key=lambda r: r["index"])
    refusals = sorted((f for r in ordered for f in r["refusals"]), key=lambda f: f["line"])
    return {
        "rows_ok": sum(r["rows_ok"] for r in ordered),
        "rows_refused": sum(r["rows_refused"] for r in ordered),
        "refusals": refusals[:REFUSALS_CAP],
        "refusals_truncated": sum(r["rows_refused"] for r in ordered) > min(len(refusals), REFUSALS_CAP),
        "quality": merge([r.get("quality") for r in ordered]) if any(r.get("quality") for r in ordered) else None,
    }
