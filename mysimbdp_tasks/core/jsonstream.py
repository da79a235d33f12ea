"""Incremental decoding of JSON arrays and streams of objects, shared by the reader and the planner.

A ``JsonWindow`` holds decoded text that grows until a whole value fits, then slides past it, so
memory stays about ``read_size`` plus the largest record. ``json_values`` walks the top-level
values of a whole array (or of a stream of whitespace-separated objects), or of one chunk of an
array, which starts at a ``,``. :mod:`parsing` reads records with it; :mod:`chunks` finds where
elements end with it, decoding the bytes as latin-1 so that text offsets are byte offsets.

A value that is valid JSON but that Python cannot build (nested too deeply, an integer ``int()``
refuses) is stepped over by counting brackets and comes out as a ``Refused`` with its reason, so
the values after it still come. Anything that ends the file raises ``unparseable``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NamedTuple

from .formats import MAX_RECORD_BYTES, unparseable

__all__ = ["JsonWindow", "Refused", "decoded_reader", "json_values", "undecodable"]

_JSON_WS = re.compile(r"[ \t\n\r]*")
# One token of a JSON value for skipping it without recursion: a string, a bracket or a comma.
_SKIP_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')
_decode_json = json.JSONDecoder().raw_decode


class Refused(NamedTuple):
    """A JSON value that was skipped rather than decoded, with the reason (``bad_json: ...``)."""

    error: str


def undecodable(exc: BaseException) -> str:
    """The refusal of a syntactically valid JSON value that Python's decoder cannot build."""
    if isinstance(exc, RecursionError):
        return "bad_json: nested too deeply"
    return f"bad_json: {str(exc).split(';')[0][:120]}"


def decoded_reader(f: BinaryIO, start: int, end: int, encoding: str) -> Callable[[int], str]:
    """``read(n)``: the text of about ``n`` more bytes of ``[start, end)``, "" at the end."""
    decoder = codecs.getincrementaldecoder(encoding)()
    remaining = end - start
    f.seek(start)

    def read(size: int) -> str:
        nonlocal remaining
        while remaining > 0:
            data = f.read(min(size, remaining))
            remaining = remaining - len(data) if data else 0
            text = decoder.decode(data, final=remaining == 0)
            if text:
                return text
        return ""

    return read


class JsonWindow:
    """Decoded text that grows until a whole JSON value fits, then slides past it."""

    __slots__ = ("_read", "_read_size", "base", "buf", "eof", "pos")

    def __init__(self, read: Callable[[int], str], read_size: int, base: int) -> None:
        self._read = read
        self._read_size = read_size
        self.buf = ""
        self.pos = 0
        self.base = base  # offset of buf[0] in the source (bytes when decoded as latin-1)
        self.eof = False

    def fill(self, at_least: int = 0) -> bool:
        piece = "" if self.eof else self._read(max(self._read_size, at_least))
        if not piece:
            self.eof = True
            return False
        self.base += self.pos
        self.buf = self.buf[self.pos :] + piece
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character, "" at the end; nothing is consumed."""
        while True:
            self.pos = _JSON_WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def value(self, number: int) -> Any:
        """The next value; a valid one Python cannot build (too deep, huge integer) is a ``Refused``."""
        self.peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = _decode_json(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                pending = len(self.buf) - self.pos
                if self.eof or not _maybe_cut(exc, len(self.buf)):
                    raise unparseable(f"JSON record {number}: {exc.msg}") from None
                if pending > MAX_RECORD_BYTES:
                    raise unparseable(f"JSON record {number} is not closed within {MAX_RECORD_BYTES} bytes") from None
                # Ask for as much again as is pending, so re-decoding a large value stays linear.
                self.fill(pending)
                continue
            except (RecursionError, ValueError) as exc:  # valid JSON that Python cannot build
                return self._skip(number, undecodable(exc))
            if end == len(self.buf) and self.fill():
                continue  # a number at the very end of the window may go on in the next piece
            self.pos = end
            return value

    def _skip(self, number: int, error: str) -> Refused:
        """Step over the value at ``pos`` without decoding it, so the records after it still come."""
        while True:
            end = _value_end(self.buf, self.pos)
            if end is not None:
                self.pos = end
                return Refused(error)
            pending = len(self.buf) - self.pos
            if pending > MAX_RECORD_BYTES or not self.fill(pending):
                raise unparseable(f"JSON record {number}: {error.partition(': ')[2]}, and not closed")


def _value_end(buf: str, pos: int) -> int | None:
    """Where the JSON value starting at ``pos`` ends, by counting brackets; None if not in ``buf``."""
    depth = 0
    for match in _SKIP_TOKEN.finditer(buf, pos):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            if depth == 0:
                return match.start()  # a scalar ended by its container
            depth -= 1
            if depth == 0:
                return match.end()
        elif depth == 0:
            return match.start() if token == "," else match.end()
    return None


def _maybe_cut(exc: json.JSONDecodeError, window: int) -> bool:
    """Whether a decode error may only mean that the value goes on past the window."""
    return exc.pos >= window - 64 or exc.msg.startswith("Unterminated string")


def json_values(window: JsonWindow, first: bool, last: bool, number: int) -> Iterator[tuple[int, Any]]:
    """Top-level values: of a whole array (``first``) or of a chunk, which starts at a ','."""
    head = window.peek()
    array = True
    if first:
        if head == "":
            return  # an empty file
        if head == "{":
            array = False
        elif head != "[":
            raise unparseable(f"expected a JSON array or objects, found {head!r}")
        else:
            window.pos += 1
            if window.peek() == "]":
                window.pos += 1
                _expect_end(window)
                return
    elif head == ",":
        window.pos += 1
    elif head != "]":  # a chunk that only closes the array
        raise unparseable(f"chunk at byte {window.base + window.pos} does not start between records")
    while head != "]":
        yield number, window.value(number)
        head = window.peek()
        if head == "," and array:
            window.pos += 1
        elif head == "" and (not last or not array):
            return  # end of a chunk, or of a stream of objects
        elif head == "":
            raise unparseable(f"the JSON array is truncated after record {number}")
        elif (array and head != "]") or (not array and head != "{"):
            raise unparseable(f"JSON record {number} is followed by {head!r}")
        number += 1
    window.pos += 1
    _expect_end(window)


def _expect_end(window: JsonWindow) -> None:
    extra = window.peek()
    if extra:
        raise unparseable(f"unexpected {extra!r} after the end of the JSON array")
