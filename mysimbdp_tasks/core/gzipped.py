"""Gzip-compressed tenant files (``.csv.gz``, ``.json.gz``, ``.jsonl.gz`` / ``.ndjson.gz``), read as a stream.

:func:`inflated` opens a file as the forward-only byte stream of what it inflates to; the readers of
:mod:`parsing` read it as they read a plain file. Decisions:

- **One chunk per file.** A gzip stream has no index: byte N of the inflated text can only be
  reached by inflating everything before it, so the file cannot be cut for several workers. The
  planner gives it one chunk (bytes ``0..size`` of the file on disk) and one worker reads it whole,
  in constant memory.
- **Damage ends the read, not the file.** A truncated or corrupt stream (``EOFError``, a bad CRC, a
  zlib error) raises ``PermanentIngestError("bad_gzip", ...)`` at the point of damage: the rows
  inflated before it have been yielded and land, the receipt names the error.
- **A bomb is refused.** Inflating past ``limit`` bytes (the tenant's ``max_file_size`` times the
  platform's ``MYSIMBDP_GZIP_RATIO``) raises ``PermanentIngestError("inflated_too_large", ...)``;
  the rows within the limit land. Quotas (``max_file_size``, daily MB) count the bytes on disk.
- Only the first ``admitted`` bytes of the file on disk are read (what the tenant was charged for).
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from .errors import PermanentIngestError
from .formats import PathLike

__all__ = ["STEP", "Inflated", "inflated"]

STEP = 64 << 10  # inflated bytes asked of zlib at a time: the most a damaged stream can hide


class _Head(io.RawIOBase):
    """The first ``size`` bytes of a file."""

    def __init__(self, raw: BinaryIO, size: int | None) -> None:
        self._raw = raw
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._left is not None:
            view = view[: self._left]
        data = self._raw.read(len(view))
        view[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)


class Inflated:
    """The inflated bytes of a gzip stream, read forward, at most ``limit`` of them."""

    def __init__(self, raw: BinaryIO, limit: int | None, admitted: int | None = None) -> None:
        self._gz = gzip.GzipFile(fileobj=io.BufferedReader(_Head(raw, admitted), STEP), mode="rb")
        self._limit = limit
        self.position = 0  # inflated bytes handed out
        self._error: PermanentIngestError | None = None

    def read(self, size: int = -1) -> bytes:
        if self._error is not None:
            raise self._error
        want = size if size >= 0 else 1 << 62
        parts: list[bytes] = []
        got = 0
        while got < want:
            try:
                piece = self._gz.read(min(STEP, want - got))
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                self._error = PermanentIngestError(
                    "bad_gzip", f"the gzip stream is damaged after {self.position + got} inflated bytes: {exc}")
                break
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
            if self._limit is not None and self.position + got > self._limit:
                self._error = PermanentIngestError(
                    "inflated_too_large",
                    f"the file inflates to more than {self._limit} bytes (the tenant's max_file_size times "
                    f"MYSIMBDP_GZIP_RATIO); the rows before that point were read")
                break
        data = b"".join(parts)
        if self._limit is not None and self.position + len(data) > self._limit:
            data = data[: self._limit - self.position]
        self.position += len(data)
        if not data and self._error is not None:
            raise self._error
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Forward-only: the readers seek to where they already are (the start of the one chunk)."""
        if whence != 0 or offset != self.position:
            raise ValueError(f"a gzip stream is read forward only (at {self.position}, asked {offset})")
        return offset

    def close(self) -> None:
        self._gz.close()


@contextmanager
def inflated(path: PathLike, limit: int | None, admitted: int | None = None) -> Iterator[BinaryIO]:
    """``path`` opened as the stream of its inflated bytes (see :class:`Inflated`)."""
    with open(path, "rb") as raw:
        stream = Inflated(raw, limit, admitted)
        try:
            yield cast(BinaryIO, stream)
        finally:
            stream.close()
