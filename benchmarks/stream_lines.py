"""Lines read from a child process's pipe, each wait bounded.

``select`` on a buffered file object only sees what is still in the pipe: once one ``readline()``
has pulled two lines into the file's buffer, the next ``select`` waits for bytes that never come
while the second line sits in the buffer. A producer process that answers "prepared" and its step's
result in quick succession (an unpaced step, or a benchmark still reading another producer) was
read that way and looked as if it never finished. :class:`Lines` keeps its own buffer and waits
on the pipe only when no whole line is in it.
"""

from __future__ import annotations

import os
import select
import time


class Lines:
    """Whole lines of the pipe ``fd`` (opened unbuffered), as text without the line end."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.ended = False

    def next(self, timeout: float) -> str | None:
        """The next line, or None if none came within ``timeout`` seconds or the pipe ended."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.ended:
                return None
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.ended = True
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace")
