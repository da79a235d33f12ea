"""The chunk planner hands out each chunk as soon as it is found, before the rest is scanned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mysimbdp_tasks.core.chunks import iter_chunks, plan_chunks

pytestmark = pytest.mark.unit


def _array(tmp_path: Path, elements: int) -> Path:
    path = tmp_path / "big.json"
    path.write_bytes(json.dumps([{"id": f"r{i:05d}", "body": "x" * 40} for i in range(elements)]).encode())
    return path


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_streamed_chunks_are_the_plan(tmp_path: Path, fmt: str) -> None:
    rows = [{"id": f"r{i:05d}", "body": f'line "{i}"\nnext'} for i in range(2000)]
    path = tmp_path / f"t.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        path.write_text("id,body\n" + "".join(f'{r["id"]},"{r["body"].replace(chr(34), 2 * chr(34))}"\n'
                                              for r in rows))
    streamed = list(iter_chunks(path, fmt, 5_000))  # type: ignore[arg-type]
    assert streamed == plan_chunks(path, fmt, 5_000)  # type: ignore[arg-type]
    assert len(streamed) > 10


def test_the_first_json_chunk_comes_before_the_tail_of_the_file_is_scanned(tmp_path: Path) -> None:
    path = _array(tmp_path, 5_000)  # about 300 KB
    whole = plan_chunks(path, "json", 4_000)
    chunks = iter_chunks(path, "json", 4_000)
    first = next(chunks)
    assert first == whole[0]
    # Blank out every element past 100 KB (same size, still a valid array): had the planner scanned
    # the whole file before handing out the first chunk, the rest of its plan would not see this.
    data = bytearray(path.read_bytes())
    cut = data.index(b"},", 100_000) + 2
    data[cut - 1 : len(data) - 1] = b" " * (len(data) - cut)
    with open(path, "r+b") as f:  # in place: the planner reads the blocks past its first chunk later
        f.write(data)
    rest = list(chunks)
    assert [first, *rest] == plan_chunks(path, "json", 4_000)
    assert len(rest) + 1 < len(whole) / 2
    assert rest[-1].end_offset == path.stat().st_size


def test_a_plan_left_part_way_releases_the_file(tmp_path: Path) -> None:
    path = _array(tmp_path, 2_000)
    chunks = iter_chunks(path, "json", 4_000)
    next(chunks)
    chunks.close()  # the file is closed with the plan left part way
    with pytest.raises(StopIteration):
        next(chunks)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_planning_a_large_file_does_not_keep_it_in_memory(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"big.{fmt}"
    row = '{"id": "r", "body": "' + "x" * 200 + '"}' if fmt == "json" else 'r,"' + "x" * 200 + '"'
    with open(path, "w") as f:
        f.write("[" if fmt == "json" else "id,body\n")
        f.writelines(row + (",\n" if fmt == "json" else "\n") for _ in range(200_000))  # about 44 MB
        f.write(row + ("]" if fmt == "json" else "\n"))
    code = ("import resource, sys\n"
            "from mysimbdp_tasks.core.chunks import iter_chunks\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "chunks = sum(1 for _ in iter_chunks(sys.argv[1], sys.argv[2], 1 << 20))\n"
            "print(chunks, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path), fmt], check=True, capture_output=True, text=True)
    chunks, grown_mb = map(int, out.stdout.split())
    assert chunks >= 40
    assert grown_mb < 16  # the whole file, kept, would be 44 MB
