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

The scan reads the file a block at a time (``read_size`` bytes, or ``target_bytes`` if fewer) into
a ``_Window`` that drops what it has passed, so memory stays about a block, and runs its patterns
on those bytes. It does not map the file: a tenant can truncate its own file while it is being
planned, and touching a mapped page past the new end kills the process (SIGBUS), where a read
only comes back short. A file that has fewer bytes than it had when planning began is refused
with ``FileChangedError`` (``file_changed``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterable, Iterator
from typing import BinaryIO

from .errors import FileChangedError
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
    *, read_size: int = READ_SIZE, limit: int | None = None,
) -> list[Chunk]:
    """Cut a file (its first ``limit`` bytes, if given: what was admitted) into chunks of about
    ``target_bytes`` that hold whole records (at least one chunk)."""
    return list(iter_chunks(path, fmt, target_bytes, read_size=read_size, limit=limit))


def iter_chunks(path: PathLike, fmt: Format | None = None, target_bytes: int = DEFAULT_CHUNK_BYTES,
                *, read_size: int = READ_SIZE, limit: int | None = None) -> Generator[Chunk, None, None]:
    """The chunks of :func:`plan_chunks`, each yielded as soon as its end is found: the first one
    comes after about ``target_bytes`` of scanning, not after the whole file. Arguments are
    checked before the first chunk is asked for; a file that shrinks while it is planned raises
    ``FileChangedError`` from the chunk being looked for."""
    if target_bytes <= 0 or read_size <= 0:
        raise ValueError(f"target_bytes and read_size must be positive, got {target_bytes} and {read_size}")
    fmt = fmt or detect_format(path)
    if fmt not in ("csv", "json", "jsonl", "parquet") and not is_gzip(fmt):
        raise ValueError(f"unknown format {fmt!r}")
    return _chunks(path, fmt, target_bytes, min(read_size, target_bytes), limit)


def _chunks(path: PathLike, fmt: Format, target_bytes: int, block: int,
            limit: int | None) -> Generator[Chunk, None, None]:
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
        window = _Window(f, size, block, count_lines=fmt != "json")
        if fmt == "json":
            cuts = _json_cuts(window, size, target_bytes)
        else:
            scan = _csv_cut_offsets if fmt == "csv" else _line_cut_offsets
            cuts = _with_line_numbers(window, scan(window, size, target_bytes))
        index, start, number = 0, 0, 1
        for offset, next_number in cuts:
            if 0 < offset < size and offset > start:
                yield Chunk(index, start, offset, number)
                index, start, number = index + 1, offset, next_number
        if os.fstat(f.fileno()).st_size < size:  # shrank where the scan had no need to read
            raise _shrank(f, size)
        yield Chunk(index, start, size, number)


def _shrank(f: BinaryIO, size: int) -> FileChangedError:
    return FileChangedError(f"changed while being read to plan its chunks: it had {size} bytes, "
                            f"now {os.fstat(f.fileno()).st_size}")


class _Window:
    """The bytes ``buf`` of the file from offset ``base``, read a block at a time up to ``size``.

    A scan keeps offsets in the file and calls ``more(keep)`` when it needs bytes past ``buf``,
    which drops those before ``keep``: memory stays about a block (plus a record that runs past
    one). Newlines are counted as bytes are dropped, for ``line_at``.
    """

    __slots__ = ("_block", "_count_lines", "_counted", "_file", "_lines", "base", "buf", "size")

    def __init__(self, f: BinaryIO, size: int, block: int, *, count_lines: bool) -> None:
        self._file, self._block, self._count_lines, self.size = f, block, count_lines, size
        self.buf, self.base = b"", 0
        self._lines, self._counted = 1, 0  # the number of the line that offset _counted is on

    @property
    def end(self) -> int:
        return self.base + len(self.buf)

    def more(self, keep: int, at_least: int = 0) -> bool:
        """Drop the bytes before ``keep`` and append the next block (at least ``at_least`` bytes);
        False at ``size``. A file that ends before ``size`` is refused."""
        end = self.end
        if end >= self.size:
            return False
        want = min(max(self._block, at_least), self.size - end)
        data = self._file.read(want)
        if len(data) < want:
            raise _shrank(self._file, self.size)
        keep = min(max(keep, self.base), end)
        if self._count_lines:
            self.line_at(keep)
        self.buf = self.buf[keep - self.base :] + data
        self.base = keep
        return True

    def line_at(self, offset: int) -> int:
        """The number of the line ``offset`` is on; offsets only go forward, from ``base`` on."""
        if offset > self._counted:
            self._lines += self.buf.count(b"\n", self._counted - self.base, offset - self.base)
            self._counted = offset
        return self._lines


def _with_line_numbers(window: _Window, offsets: Iterable[int]) -> Generator[tuple[int, int], None, None]:
    for offset in offsets:
        yield offset, window.line_at(offset)


def _starts_with_bom(window: _Window) -> bool:
    while len(window.buf) < len(BOM) and window.more(0):
        pass
    return window.buf.startswith(BOM)


def _line_cut_offsets(window: _Window, size: int, target: int) -> Iterator[int]:
    cut = target
    while cut < size:
        newline = window.buf.find(b"\n", max(cut - 1 - window.base, 0))
        if newline >= 0:
            yield window.base + newline + 1
            cut = window.base + newline + 1 + target
        elif not window.more(window.end):
            break


def _csv_cut_offsets(window: _Window, size: int, target: int) -> Iterator[int]:
    """Record starts about every ``target`` bytes, found by tracking quoted fields."""
    data_start = len(BOM) if _starts_with_bom(window) else 0
    cut, pos = target, data_start  # in the file: where the next cut may be, where the scan is
    while True:
        # Through the window, in offsets in buf (this loop runs once for every quoted field).
        buf, base = window.buf, window.base
        i, first, after, stop = pos - base, data_start - base, cut - 1 - base, size - 1 - base
        room = len(buf) + (window.end >= size)  # a field closed before this is closed in the file
        inside = False
        while after < stop:
            quote = buf.find(b'"', i)
            # Between quoted fields every newline ends a record.
            newline = buf.find(b"\n", max(i, after), len(buf) if quote < 0 else quote)
            if newline >= 0:
                i = newline + 1
                yield base + i
                after = i + target - 1
            elif quote < 0:
                i = len(buf)
                break
            elif quote == first or buf[quote - 1] in b",\n":
                closing = _QUOTED_REST.match(buf, quote + 1)
                i = room if closing is None else closing.end()
                if i >= room:  # not closed in buf, or by its last byte, which may be the first of a ""
                    i, inside = (len(buf) if closing is None else i - 1), True
                    break
            else:
                i = quote + 1  # inside an unquoted field a quote is an ordinary character
        else:
            return
        pos, cut = base + i, base + after + 1
        if inside:
            end = _quoted_field_end(window, pos, size)
            if end is None:
                return  # unclosed: the rest is one field
            pos = end
        elif not window.more(pos - 1):  # the byte before a quote tells whether it opens a field
            return


def _quoted_field_end(window: _Window, at: int, size: int) -> int | None:
    """Where a quoted field that runs on past the window ends (after its closing quote), going on
    from ``at`` inside it (at the quote that may be the first of a ""); None if not before ``size``."""
    while window.more(at):
        buf, base = window.buf, window.base
        closing = _QUOTED_REST.match(buf, at - base)
        if closing is not None and (closing.end() < len(buf) or window.end >= size):
            return base + closing.end()
        at = base + (len(buf) if closing is None else closing.end() - 1)
    return None


def _json_cuts(window: _Window, size: int, target: int) -> Generator[tuple[int, int], None, None]:
    """Offsets right after top-level array elements, with the number of the next element."""
    start = len(BOM) if _starts_with_bom(window) else 0
    while True:
        start = window.base + _JSON_WS.match(window.buf, start - window.base).end()  # type: ignore[union-attr]
        if start < window.end or not window.more(start):
            break
    if window.buf[start - window.base : start - window.base + 1] != b"[":
        return  # a stream of objects, or something the reader will refuse: one chunk
    yield from array_cuts(window, start, size, target)
