"""The chunk planner: cut one large file into byte ranges of whole records, for several workers.

(Parquet files are cut into ranges of row groups by :mod:`columnar`; a gzip file is one chunk, see
:mod:`gzipped`. What follows is about the text formats.)

``plan_chunks`` scans the file once and cuts it at record boundaries about every ``target_bytes``:
for CSV with a quote-aware scan that mirrors the ``csv`` module (a quote opens a field only at its
start; ``""`` inside a quoted field is an escaped quote), for JSON Lines at newlines, for JSON
arrays right after a top-level element, found by scanning bytes (strings skipped whole, brackets
counted) without decoding any record, so a large array is planned in a fraction of the time it
takes to read it. Cuts come out as they are found (:func:`iter_chunks`), so a large file's first
chunks can be ingested while the rest of it is still being scanned. Each cut carries the number
of the record that starts there, so ``parsing.iter_records(path, fmt, chunk)`` numbers records as
one sequential read would; reading every chunk gives exactly the records of that read. (A JSON element that is malformed
inside, which the scan does not decode, ends its own chunk's read with ``unparseable``; the
chunks after it are still read.)
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Generator, Iterable, Iterator

from .formats import (
    BOM,
    DEFAULT_CHUNK_BYTES,
    READ_SIZE,
    Chunk,
    Format,
    PathLike,
    bounded_size,
    detect_format,
    is_gzip,
)
from .jsonstream import array_cuts

__all__ = ["iter_chunks", "plan_chunks"]

# The rest of a quoted CSV field after its opening quote, through the closing quote. Possessive
# quantifiers stop "" (an escaped quote) from being split into a closing quote plus a new one.
_QUOTED_REST = re.compile(rb'[^"]*+(?:""[^"]*+)*+"')
_JSON_WS = re.compile(rb"[ \t\n\r]*+")


def plan_chunks(
    path: PathLike, fmt: Format | None = None, target_bytes: int = DEFAULT_CHUNK_BYTES,
    *, read_size: int = READ_SIZE, limit: int | None = None,  # read_size: unused since the scan maps the file
) -> list[Chunk]:
    """Cut a file (its first ``limit`` bytes, if given: what was admitted) into chunks of about
    ``target_bytes`` that hold whole records (at least one chunk)."""
    return list(iter_chunks(path, fmt, target_bytes, limit=limit))


def iter_chunks(path: PathLike, fmt: Format | None = None, target_bytes: int = DEFAULT_CHUNK_BYTES,
                *, limit: int | None = None) -> Generator[Chunk, None, None]:
    """The chunks of :func:`plan_chunks`, each yielded as soon as its end is found: the first one
    comes after about ``target_bytes`` of scanning, not after the whole file. Arguments are
    checked before the first chunk is asked for."""
    if target_bytes <= 0:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    fmt = fmt or detect_format(path)
    if fmt not in ("csv", "json", "jsonl", "parquet") and not is_gzip(fmt):
        raise ValueError(f"unknown format {fmt!r}")
    return _chunks(path, fmt, target_bytes, limit)


def _chunks(path: PathLike, fmt: Format, target_bytes: int, limit: int | None) -> Generator[Chunk, None, None]:
    with open(path, "rb") as f:
        size = bounded_size(f, limit)
        if is_gzip(fmt):  # a gzip stream cannot be cut: one chunk (see gzipped)
            yield Chunk(0, 0, size, 1)
            return
        if fmt == "parquet":  # ranges of row groups, from the footer (see columnar)
            from . import columnar  # here: pyarrow only in processes that read Parquet (see parsing)

            yield from columnar.iter_chunks(path, size, target_bytes)
            return
        if size == 0:
            yield Chunk(0, 0, 0, 1)
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if fmt == "json":
                cuts = _json_cuts(mm, size, target_bytes)
            else:
                scan = _csv_cut_offsets if fmt == "csv" else _line_cut_offsets
                cuts = _with_line_numbers(mm, scan(mm, size, target_bytes))
            index, start, number = 0, 0, 1
            try:
                for offset, next_number in cuts:
                    if 0 < offset < size and offset > start:
                        _forget(mm, offset)
                        yield Chunk(index, start, offset, number)
                        index, start, number = index + 1, offset, next_number
            finally:
                # A scan left part way (the caller stopped) still holds a regex scanner on the map,
                # and a map cannot close while its buffer is exported.
                cuts.close()
            yield Chunk(index, start, size, number)


def _forget(mm: mmap.mmap, offset: int) -> None:
    """Unmap the pages the scan has passed: nothing before a cut is read again, and a mapped page
    counts in the process's RSS until it is unmapped, so without this a planner's RSS grew by the
    size of the file it planned (500 MB for a 500 MB file). The file's pages stay in the page cache."""
    end = offset - offset % mmap.PAGESIZE
    if end > 0:
        mm.madvise(mmap.MADV_DONTNEED, 0, end)


def _with_line_numbers(mm: mmap.mmap, offsets: Iterable[int]) -> Generator[tuple[int, int], None, None]:
    lines, counted = 1, 0
    for offset in offsets:
        # mmap has no count(); slices of at most READ_SIZE keep the copies small.
        for block in range(counted, offset, READ_SIZE):
            lines += mm[block : min(block + READ_SIZE, offset)].count(b"\n")
        counted = offset
        yield offset, lines


def _line_cut_offsets(mm: mmap.mmap, size: int, target: int) -> Iterator[int]:
    cut = target
    while cut < size:
        newline = mm.find(b"\n", cut - 1)
        if newline < 0:
            break
        yield newline + 1
        cut = newline + 1 + target


def _csv_cut_offsets(mm: mmap.mmap, size: int, target: int) -> Iterator[int]:
    """Record starts about every ``target`` bytes, found by tracking quoted fields."""
    data_start = len(BOM) if mm[: len(BOM)] == BOM else 0
    cut, pos = target, data_start
    while cut < size:
        quote = mm.find(b'"', pos)
        outside_end = size if quote < 0 else quote
        # Between quoted fields every newline ends a record.
        newline = mm.find(b"\n", max(pos, cut - 1), outside_end)
        if newline >= 0:
            pos = newline + 1
            yield pos
            cut = pos + target
        elif quote < 0:
            break
        elif quote == data_start or mm[quote - 1] in b",\n":
            closing = _QUOTED_REST.match(mm, quote + 1)
            pos = size if closing is None else closing.end()  # unclosed: the rest is one field
        else:
            pos = quote + 1  # inside an unquoted field a quote is an ordinary character


def _json_cuts(mm: mmap.mmap, size: int, target: int) -> Generator[tuple[int, int], None, None]:
    """Offsets right after top-level array elements, with the number of the next element."""
    start = len(BOM) if mm[: len(BOM)] == BOM else 0
    start = _JSON_WS.match(mm, start).end()  # type: ignore[union-attr]
    if mm[start : start + 1] != b"[":
        return  # a stream of objects, or something the reader will refuse: one chunk
    yield from array_cuts(mm, start, size, target)
