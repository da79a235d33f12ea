"""The planner reads a file a block at a time: its plans do not depend on the block size, and a
file that shrinks while it is planned is refused with ``file_changed``, never a dead process."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mysimbdp_tasks.core.chunks import iter_chunks, plan_chunks
from mysimbdp_tasks.core.errors import FileChangedError
from mysimbdp_tasks.core.formats import Chunk, Format
from mysimbdp_tasks.core.parsing import iter_records

pytestmark = pytest.mark.unit

_TEXTS = ['plain', 'a "quoted" word', 'comma, and\nnewline', '""', '"', 'brackets ] } [ { , inside',
          'back\\slash \\" and \\\\', 'ünïcödé ✓', '', 'ends with a quote"']


def _csv(rows: int) -> bytes:
    lines = ["id,body,n"]
    for i in range(rows):
        body = _TEXTS[i % len(_TEXTS)] * (1 + i % 4)
        lines.append(f'{i},"{body.replace(chr(34), 2 * chr(34))}",x{i}"y')  # a quote inside an unquoted field
    return codecs.BOM_UTF8 + ("\n".join(lines) + "\n").encode()


def _array(elements: int) -> bytes:
    values = [{"id": i, "body": _TEXTS[i % len(_TEXTS)]} if i % 3 else
              {"id": i, "tags": [_TEXTS[i % len(_TEXTS)], {"deep": [i, None, True]}], "n": -1.5e3}
              for i in range(elements)]
    return ("[\n" + ",\n ".join(json.dumps(v, ensure_ascii=i % 2 == 0) for i, v in enumerate(values)) + "\n]").encode()


def _lines(count: int) -> bytes:
    return b"".join(json.dumps({"id": i, "body": _TEXTS[i % len(_TEXTS)]}).encode() + b"\n" for i in range(count))


_FILES = {"csv": _csv, "json": _array, "jsonl": _lines}


def _read_by_chunks(path: Path, fmt: Format, chunks: list[Chunk]) -> list[tuple[int, object, str | None]]:
    return [(r.number, r.data, r.error) for chunk in chunks for r in iter_records(path, fmt, chunk)]


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_plans_do_not_depend_on_the_block_size(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"t.{fmt}"
    path.write_bytes(_FILES[fmt](300))
    whole = [(r.number, r.data, r.error) for r in iter_records(path, fmt)]
    assert len(whole) == 300 and all(error is None for _, _, error in whole)
    for target in (1, 37, 500, 4_000):
        expected = plan_chunks(path, fmt, target)
        assert len(expected) > 1
        for read_size in (1, 2, 3, 7, 64, 1_000):
            assert plan_chunks(path, fmt, target, read_size=read_size) == expected, (target, read_size)
        assert _read_by_chunks(path, fmt, expected) == whole, target


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_a_record_much_longer_than_a_block_is_scanned_across_blocks(tmp_path: Path, fmt: Format) -> None:
    long_text = ('say ""hi"", then [{,}] and\nmore ' if fmt == "csv" else 'say "hi", then [{,}] and\nmore ') * 10_000
    if fmt == "csv":
        content = f'id,body\n1,short\n2,"{long_text}"\n3,after\n4,"x"\n'.encode()
    else:
        content = json.dumps([{"id": 1}, {"id": 2, "body": [long_text, {"k": long_text}]}, {"id": 3}, 4]).encode()
    path = tmp_path / f"t.{fmt}"
    path.write_bytes(content)
    expected = plan_chunks(path, fmt, 1)
    assert len(expected) == (5 if fmt == "csv" else 4)  # a CSV header is its own line
    assert plan_chunks(path, fmt, 1, read_size=4_096) == expected
    assert plan_chunks(path, fmt, 1, read_size=1) == expected
    assert _read_by_chunks(path, fmt, expected) == [(r.number, r.data, r.error) for r in iter_records(path, fmt)]


_TRUNCATE_WHILE_PLANNING = """
import os, sys
from mysimbdp_tasks.core.chunks import iter_chunks
from mysimbdp_tasks.core.errors import FileChangedError
path, fmt = sys.argv[1], sys.argv[2]
tenant = os.open(path, os.O_WRONLY)  # the tenant keeps a descriptor of its own file
chunks = iter_chunks(path, fmt, 256 << 10, limit=os.path.getsize(path))
print("first", next(chunks).end_offset, flush=True)
os.ftruncate(tenant, 0)  # ...and truncates it while the worker plans
try:
    print("planned", len(list(chunks)), flush=True)
except FileChangedError as exc:
    print("refused", exc.reason, exc, flush=True)
"""


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_a_file_truncated_while_it_is_planned_is_refused_and_the_process_lives(tmp_path: Path, fmt: Format) -> None:
    path = tmp_path / f"big.{fmt}"
    path.write_bytes(_FILES[fmt](50_000))
    size = path.stat().st_size
    assert size > 1 << 20  # blocks of 256 KiB: most of the file is read after the first chunk
    # In a child: had the planner mapped the file, touching a page past the new end would kill it
    # with SIGBUS, which no Python code can catch.
    done = subprocess.run([sys.executable, "-c", _TRUNCATE_WHILE_PLANNING, str(path), fmt],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    first, refusal = done.stdout.splitlines()
    assert 0 < int(first.split()[1]) < size
    assert refusal == ("refused file_changed file_changed: changed while being read to plan its chunks: "
                       f"it had {size} bytes, now 0")


def test_a_file_that_shrinks_past_where_the_scan_stopped_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(b'[{"a": 1}, {"b": 2}, {"c": 3}]' + b" " * 100_000)
    chunks = iter_chunks(path, "json", 1)  # blocks of at most target_bytes: 1 byte here
    assert next(chunks) == Chunk(0, 0, 9, 1)
    with open(path, "r+b") as f:
        f.truncate(40)  # the array is whole; only the spaces the scan never needed are gone
    with pytest.raises(FileChangedError) as refused:
        list(chunks)
    assert refused.value.detail == "changed while being read to plan its chunks: it had 100030 bytes, now 40"


@pytest.mark.timeout(30)
def test_admitted_bytes_that_end_before_a_quoted_field_opens_are_planned(tmp_path: Path) -> None:
    # The file grew after admission: its admitted bytes end right before an unclosed quoted field.
    path = tmp_path / "t.csv"
    path.write_bytes(b'id,body\n1,abc,"not closed\n2,x\n')
    admitted = len(b"id,body\n1,abc,")
    chunks = plan_chunks(path, "csv", 1, limit=admitted)
    assert chunks == [Chunk(0, 0, 8, 1), Chunk(1, 8, admitted, 2)]
