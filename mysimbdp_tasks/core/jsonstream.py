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
from collections.abc import Callable, Generator, Iterator
from mmap import mmap
from typing import Any, BinaryIO, NamedTuple

from .formats import MAX_RECORD_BYTES, unparseable

__all__ = [
    "FIRST_FLAT_OBJECT", "NEXT_FLAT_OBJECT", "JsonWindow", "Refused", "array_cuts", "decoded_reader", "json_values",
    "undecodable",
]

_JSON_WS = re.compile(r"[ \t\n\r]*")
# One token of a JSON value for skipping it without recursion: a string, a bracket or a comma.
_SKIP_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')
_decode_json = json.JSONDecoder().raw_decode

# Byte patterns for finding where array elements end without building them. A string is skipped
# whole (escapes included), so brackets and commas inside text are never structure.
Buffer = bytes | mmap  # what the byte patterns scan
_WS_B = rb"[ \t\n\r]*+"
_STRING_B = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'  # unrolled: ~1.6x faster than an alternation per character
_OUTSIDE_B = rb'[^"{}\[\]]*+'
# An object holding no object or array: by far the commonest element, matched by one regex call.
_FLAT_B = rb"\{" + _OUTSIDE_B + rb"(?:" + _STRING_B + _OUTSIDE_B + rb")*+\}"
#: The first element of an array (after its "["), and every next one (after the previous one).
FIRST_FLAT_OBJECT = re.compile(_WS_B + rb"(" + _FLAT_B + rb")")
NEXT_FLAT_OBJECT = re.compile(_WS_B + rb"," + _WS_B + rb"(" + _FLAT_B + rb")")
_ELEMENT_THEN_COMMA = re.compile(_WS_B + rb"(" + _FLAT_B + rb")" + _WS_B + rb",")
_SKIP_TOKEN_B = re.compile(_STRING_B + rb"|[\[\]{},]")
_WS_ONLY_B = re.compile(_WS_B)


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


def _value_end_bytes(buf: Buffer, pos: int, size: int) -> int | None:
    """Where the element starting at ``pos`` ends (a ``,`` or ``]`` after it, at depth 0), or None."""
    depth = 0
    for match in _SKIP_TOKEN_B.finditer(buf, pos, size):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
        elif token in (b"]", b"}"):
            if depth == 0:
                return match.start()
            depth -= 1
            if depth == 0:
                return match.end()
        elif depth == 0 and token == b",":
            return match.start()
    return None


def array_cuts(buf: Buffer, start: int, size: int, target: int) -> Generator[tuple[int, int], None, None]:
    """Offsets right after elements of the array opening at ``start`` in ``buf[:size]``, about every
    ``target`` bytes, each with the number of the element after it, yielded as they are found.

    Scans bytes: strings are skipped whole, brackets counted, nothing is decoded, so planning a
    file costs a fraction of reading it. It stops cutting at anything that is not an element
    followed by ``,``: the last chunk then runs to the end and its reader reports the problem.
    """
    pos, count, cut = start + 1, 0, start + target
    scan = _ELEMENT_THEN_COMMA.scanner(buf, pos, size)  # type: ignore[attr-defined]  # match() goes on where it stopped
    while True:
        for match in iter(scan.match, None):  # flat objects, one regex call each
            count += 1
            if match.end(1) >= cut:
                yield match.end(1), count + 1
                cut = match.end(1) + target
            pos = match.end()
        end = _value_end_bytes(buf, _WS_ONLY_B.match(buf, pos).end(), size)  # type: ignore[union-attr]
        if end is None or end >= size:
            return
        after = _WS_ONLY_B.match(buf, end).end()  # type: ignore[union-attr]
        if after >= size or buf[after:after + 1] != b"," or not buf[pos:end].strip():
            return  # the last element, or something the reader will refuse
        count += 1
        if end >= cut:
            yield end, count + 1
            cut = end + target
        pos = after + 1
        scan = _ELEMENT_THEN_COMMA.scanner(buf, pos, size)  # type: ignore[attr-defined]


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
    elif head == "":  # the rest of a chunk after its last element (see parsing._json_records)
        if last:
            raise unparseable(f"the JSON array is truncated after record {number - 1}")
        return
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
