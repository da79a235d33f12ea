"""Reading a byte range of a file in blocks and lines, and when orjson may read a JSON text.

The text readers of :mod:`parsing` share these: blocks that end at a line end (so a chunk's reader
never cuts a line), lines decoded a block at a time (a block with bad UTF-8 line by line, so only
its rows are refused), and the test that a text reads the same with orjson as with the json module.
A line longer than ``MAX_RECORD_BYTES`` is never held whole: it is dropped as it is read, and its
record refused as ``record_too_large`` with its line number; the lines after it are read as before.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple

from .formats import BOM, MAX_RECORD_BYTES

# A run of 19 digits, found by mapping every digit to "0" and everything else to " ": a translate and
# a substring search run about ten times faster than a regex search for [0-9]{19}.
_DIGITS_ONLY = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_LONG_RUN = b"0" * 19
_SHALLOW = 256  # brackets in a text shallow enough for the json module at any stack depth


def orjson_agrees(text: bytes, short_numbers: bool = False) -> bool:
    """Whether orjson reads ``text`` exactly as the json module does, if it reads it at all.

    orjson is about 3x faster. It differs on integers beyond 64 bits (it may return floats) and on
    nesting deeper than the json module's recursion limit (it builds it); such texts, and anything
    orjson refuses (NaN, lone surrogates, ...), go to the json module, which decides as before.
    ``short_numbers``: the caller found no run of 19 digits in a block holding ``text``.
    """
    return text.count(b"[") + text.count(b"{") < _SHALLOW and (short_numbers or no_long_digits(text))


def no_long_digits(data: bytes) -> bool:
    """Whether ``data`` holds no run of 19 digits (so no integer orjson may read as a float)."""
    return _LONG_RUN not in data.translate(_DIGITS_ONLY)


class LongLine(NamedTuple):
    """A line longer than ``MAX_RECORD_BYTES``, dropped as it was read: never held in memory whole."""

    size: int  # its bytes, the "\n" that ends it not counted
    limit: int  # the limit it passed

    @property
    def error(self) -> str:
        return f"record_too_large: the line has {self.size} bytes, more than the {self.limit} allowed"


def blocks(f: BinaryIO, start: int, end: int, read_size: int) -> Iterator[bytes | LongLine]:
    """``[start, end)`` in blocks of about ``read_size`` bytes that end at a line end (or at ``end``),
    without the file's BOM. Chunk ends are line starts, so no line is cut.

    A line that goes on past a read is kept as the list of its pieces and joined once, when its end
    is found, and only the bytes just read are searched for that end: a long line costs time in its
    length, not in its square. A line longer than ``MAX_RECORD_BYTES`` is not kept: once it passes
    the limit its bytes are dropped up to its end, and it comes as a ``LongLine`` of its own,
    between the blocks of the lines around it (one line, so the readers' numbering stays right)."""
    limit = MAX_RECORD_BYTES
    # A line inside one read is never over the limit (when it is not absurdly small); the BOM is
    # always inside the first read.
    step = max(min(max(read_size, 1 << 16), limit), 2 * len(BOM))
    f.seek(start)
    pos = start
    pending: list[bytes | memoryview] = []  # the start of a line that goes on past the last read
    held = 0  # bytes in pending
    dropped = -1  # from 0 on: bytes so far of a line over the limit, which are not kept
    while pos < end:
        data = f.read(min(step, end - pos))
        if not data:
            break
        at_start, pos = pos == 0, pos + len(data)
        if at_start and data.startswith(BOM):
            data = data[len(BOM):]
        last = pos >= end
        if held or dropped >= 0:  # a line goes on from the last read: where does it end?
            newline = data.find(b"\n")
            if newline < 0 and not last:
                if dropped >= 0:
                    dropped += len(data)
                else:
                    pending.append(data)
                    held += len(data)
                    if held > limit:
                        pending, held, dropped = [], 0, held
                continue
            line_end = len(data) if newline < 0 else newline
            if dropped >= 0 or held + line_end > limit:
                yield LongLine(max(dropped, 0) + held + line_end, limit)
                pending, held, dropped = [], 0, -1
                data = data[line_end + 1 :]
        cut = data.rfind(b"\n") + 1 if not last else len(data)
        if held:
            pending.append(memoryview(data)[:cut])  # join copies it once
            yield b"".join(pending)
            pending, held = [], 0
        elif cut:
            yield data[:cut]
        if cut < len(data):
            pending, held = [data[cut:]], len(data) - cut
    if dropped >= 0:
        yield LongLine(dropped, limit)
    elif held:
        yield b"".join(pending)


class Flag:
    """Up while the record being read holds a line that stands for a refused one; ``error`` says why."""

    __slots__ = ("error", "up")

    def __init__(self) -> None:
        self.up = False
        self.error = ""

    def refuse(self, error: str) -> None:
        if not self.up:  # the first reason a record is refused for is the one given
            self.up, self.error = True, error

    def take(self) -> str:
        """The refusal, putting the flag down."""
        self.up = False
        return self.error


BAD_ENCODING = "bad_encoding: the row is not valid UTF-8"
#: What a CSV reader is given for a line over the limit: one line, not blank, opening no quote.
_LONG_LINE_STAND_IN = ("-\n",)


def split_lines(block: bytes) -> list[bytes]:
    lines = block.split(b"\n")
    if lines[-1]:
        return [line + b"\n" for line in lines[:-1]] + [lines[-1]]
    return [line + b"\n" for line in lines[:-1]]


def bad_block_lines(block: bytes, bad_encoding: Flag) -> Iterator[str]:
    for line in split_lines(block):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            # Keep the row's shape so the csv parser stays in step; the row is refused later.
            bad_encoding.refuse(BAD_ENCODING)
            yield line.decode("utf-8", "surrogateescape")


def text_lines(f: BinaryIO, start: int, end: int, read_size: int, refused: Flag) -> Iterator[str]:
    """The text lines of ``[start, end)``: a block of valid UTF-8 is decoded at once and split by a
    ``StringIO`` in C; only a block holding bad bytes is decoded line by line, to flag its rows. A
    line over ``MAX_RECORD_BYTES`` comes as a one-line stand-in, and raises ``refused`` when the
    reader asks for it (so for the record it is read into)."""
    def pieces() -> Iterator[Iterable[str]]:
        for block in blocks(f, start, end, read_size):
            if isinstance(block, LongLine):
                refused.refuse(block.error)
                yield _LONG_LINE_STAND_IN
                continue
            try:
                yield io.StringIO(block.decode("utf-8"), newline="\n")  # lines end at "\n" only
            except UnicodeDecodeError:
                yield bad_block_lines(block, refused)

    return itertools.chain.from_iterable(pieces())
