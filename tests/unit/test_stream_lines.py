"""A producer process's answers, read from its pipe: every line that came is read, however they arrived."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from benchmarks.stream_lines import Lines

pytestmark = pytest.mark.unit


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_two_answers_written_at_once_are_both_read(pipe: tuple[int, int]) -> None:
    # An unpaced step: "prepared" and the step's result are in the pipe before the reader looks.
    read, write = pipe
    os.write(write, b'{"prepared": 0}\n{"step": 0, "sent": 10000}\n')
    lines = Lines(read)
    assert lines.next(timeout=30) == '{"prepared": 0}'
    assert lines.next(timeout=30) == '{"step": 0, "sent": 10000}'  # from the reader's buffer, not the pipe


def test_a_line_in_pieces_is_read_whole(pipe: tuple[int, int]) -> None:
    read, write = pipe
    lines = Lines(read)
    os.write(write, b'{"ready": "t1", ')
    assert lines.next(timeout=0) is None  # not a whole line yet
    os.write(write, b'"records": 3}\n')
    assert lines.next(timeout=30) == '{"ready": "t1", "records": 3}'


def test_a_closed_pipe_gives_its_last_line_then_none(pipe: tuple[int, int]) -> None:
    read, write = pipe
    os.write(write, b"last\n")
    os.close(write)
    lines = Lines(read)
    assert lines.next(timeout=30) == "last"
    assert lines.next(timeout=30) is None
