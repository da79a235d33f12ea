"""Reading a byte range of a file in blocks and lines, and when orjson may read a JSON text.

The text readers of :mod:`parsing` share these: blocks that end at a line end (so a chunk's reader
never cuts a line), lines decoded a block at a time (a block with bad UTF-8 line by line, so only
its rows are refused), and the test that a text reads the same with orjson as with the json module.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from .formats import BOM

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


def blocks(f: BinaryIO, start: int, end: int, read_size: int) -> Iterator[bytes]:
    """``[start, end)`` in blocks of about ``read_size`` bytes that end at a line end (or at ``end``),
    without the file's BOM. Chunk ends are line starts, so no line is cut."""
    f.seek(start)
    pos, carry = start, b""
    while pos < end:
        data = f.read(min(max(read_size, 1 << 16), end - pos))
        if not data:
            break
        at_start, pos = pos == 0, pos + len(data)
        if at_start and data.startswith(BOM):
            data = data[len(BOM):]
        if carry:  # a line longer than a block
            data = carry + data
        cut = data.rfind(b"\n") + 1 if pos < end else len(data)
        carry = data[cut:]
        if cut:
            yield data[:cut]
    if carry:
        yield carry


class Flag:
    __slots__ = ("up",)

    def __init__(self) -> None:
        self.up = False


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
            bad_encoding.up = True
            yield line.decode("utf-8", "surrogateescape")


def text_lines(f: BinaryIO, start: int, end: int, read_size: int, bad_encoding: Flag) -> Iterator[str]:
    """The text lines of ``[start, end)``: a block of valid UTF-8 is decoded at once and split by a
    ``StringIO`` in C; only a block holding bad bytes is decoded line by line, to flag its rows."""
    def pieces() -> Iterator[Iterable[str]]:
        for block in blocks(f, start, end, read_size):
            try:
                yield io.StringIO(block.decode("utf-8"), newline="\n")  # lines end at "\n" only
            except UnicodeDecodeError:
                yield bad_block_lines(block, bad_encoding)

    return itertools.chain.from_iterable(pieces())
