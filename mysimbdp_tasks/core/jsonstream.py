"""Incremental decoding of JSON arrays and streams of objects, shared by the reader and the planner.

A ``JsonWindow`` holds decoded text that grows until a whole value fits, then slides past it, so
memory stays about ``read_size`` plus the largest record. ``json_values`` walks the top-level
values of a whole array (or of a stream of whitespace-separated objects), or of one chunk of an
array, which starts at a ``,``. :mod:`parsing` reads records with it. :mod:`chunks` finds where
array elements end with ``array_cuts``, which scans bytes through a ``ByteWindow`` (the file read
a block at a time) without decoding them.

A value that is valid JSON but that Python cannot build (nested too deeply, an integer ``int()``
refuses) is stepped over by counting brackets and comes out as a ``Refused`` with its reason, so
the values after it still come. Anything that ends the file raises ``unparseable``.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any, BinaryIO, NamedTuple, Protocol

from .formats import MAX_RECORD_BYTES, unparseable

__all__ = [
    "FIRST_FLAT_OBJECT", "NEXT_FLAT_OBJECT", "ByteWindow", "JsonWindow", "Refused", "array_cuts", "decoded_reader",
    "json_values", "undecodable",
]

_JSON_WS = re.compile(r"[ \t\n\r]*")
# One token of a JSON value for skipping it without recursion: a string, a bracket or a comma.
_SKIP_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{},]')
_decode_json = json.JSONDecoder().raw_decode

# Byte patterns for finding where array elements end without building them. A string is skipped
# whole (escapes included), so brackets and commas inside text are never structure.
_WS_B = rb"[ \t\n\r]*+"
_STRING_B = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'  # unrolled: ~1.6x faster than an alternation per character
_OUTSIDE_B = rb'[^"{}\[\]]*+'
# An object holding no object or array: by far the commonest element, matched by one regex call.
_FLAT_B = rb"\{" + _OUTSIDE_B + rb"(?:" + _STRING_B + _OUTSIDE_B + rb")*+\}"
#: The first element of an array (after its "["), and every next one (after the previous one).
FIRST_FLAT_OBJECT = re.compile(_WS_B + rb"(" + _FLAT_B + rb")")
NEXT_FLAT_OBJECT = re.compile(_WS_B + rb"," + _WS_B + rb"(" + _FLAT_B + rb")")
_ELEMENT_THEN_COMMA = re.compile(_WS_B + rb"(" + _FLAT_B + rb")" + _WS_B + rb",")
# A lone quote is a string that does not close: it runs past the window, or it is malformed.
_SKIP_TOKEN_B = re.compile(_STRING_B + rb'|[\[\]{},"]')
_STRING_START_B = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+')  # a string up to where it stops matching
_WS_ONLY_B = re.compile(_WS_B)


class ByteWindow(Protocol):
    """Bytes ``buf`` of a file from offset ``base``, read a block at a time (see :mod:`chunks`)."""

    buf: bytes
    base: int

    def more(self, keep: int, at_least: int = 0) -> bool:
        """Drop the bytes before offset ``keep`` and append the next block (at least ``at_least``
        bytes); False at the end of what is planned."""


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


def _value_end_bytes(buf: bytes, pos: int, final: bool) -> int | None:
    """Where the element starting at ``pos`` ends (a ``,`` or ``]`` after it, at depth 0), or None.

    Unless ``buf`` runs to the end of the array (``final``), None also when a string goes on past
    ``buf``; a string that cannot close (a backslash before a newline) is stepped over a quote at
    a time, as at the end.
    """
    depth = 0
    for match in _SKIP_TOKEN_B.finditer(buf, pos):
        token = match.group()
        if token == b'"':
            if not final and _STRING_START_B.match(buf, match.start()).end() >= len(buf) - 1:  # type: ignore[union-attr]
                return None
        elif token in (b"[", b"{"):
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


def array_cuts(window: ByteWindow, start: int, size: int, target: int) -> Generator[tuple[int, int], None, None]:
    """Offsets right after elements of the array opening at ``start`` (``window`` holds it) in the
    file's first ``size`` bytes, about every ``target`` bytes, each with the number of the element
    after it, yielded as they are found.

    Scans bytes: strings are skipped whole, brackets counted, nothing is decoded, so planning a
    file costs a fraction of reading it. It stops cutting at anything that is not an element
    followed by ``,``: the last chunk then runs to the end and its reader reports the problem. The
    window drops the elements passed; one that goes on past it is scanned again with the next
    block (twice as much each time, so it stays linear). One larger than ``MAX_RECORD_BYTES``
    also stops the cutting, rather than being held whole.
    """
    pos, count, cut = start + 1, 0, start + target
    while True:
        buf, base = window.buf, window.base
        i, local_cut = pos - base, cut - base  # offsets in buf
        scan = _ELEMENT_THEN_COMMA.scanner(buf, i)  # type: ignore[attr-defined]  # match() goes on where it stopped
        for match in iter(scan.match, None):  # flat objects, one regex call each
            count += 1
            if match.end(1) >= local_cut:
                yield base + match.end(1), count + 1
                local_cut = match.end(1) + target
            i = match.end()
        pos, cut = base + i, base + local_cut
        final = base + len(buf) >= size
        end = _value_end_bytes(buf, _WS_ONLY_B.match(buf, pos - base).end(), final)  # type: ignore[union-attr]
        after = len(buf) if end is None else _WS_ONLY_B.match(buf, end).end()  # type: ignore[union-attr]
        if end is None or after >= len(buf):  # the element, or what follows it, goes on past the window
            pending = base + len(buf) - pos
            if final or pending > MAX_RECORD_BYTES or not window.more(pos, pending):
                return
            continue
        if buf[after:after + 1] != b"," or not buf[pos - base:end].strip():
            return  # the last element, or something the reader will refuse
        count += 1
        if base + end >= cut:
            yield base + end, count + 1
            cut = base + end + target
        pos = base + after + 1


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
