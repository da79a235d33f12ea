"""Reading no more than was admitted: a file that grew is read up to the admitted size."""

from __future__ import annotations

from pathlib import Path

import pytest

from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.parsing import iter_records

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("fmt", "head", "more"), [
    ("csv", b"a,b\n1,x\n2,y\n", b"3,z\n4,w\n"),
    ("jsonl", b'{"a": 1}\n{"a": 2}\n', b'{"a": 3}\n'),
])
def test_bytes_appended_after_admission_are_not_read(tmp_path: Path, fmt: str, head: bytes, more: bytes) -> None:
    path = tmp_path / f"f.{fmt}"
    path.write_bytes(head + more)
    chunks = plan_chunks(path, fmt, 4, limit=len(head))  # type: ignore[arg-type]
    assert chunks[-1].end_offset == len(head)
    records = [r for c in chunks for r in iter_records(path, fmt, c, limit=len(head))]  # type: ignore[arg-type]
    whole = list(iter_records(path, fmt))  # type: ignore[arg-type]
    assert len(records) == 2 and len(whole) > len(records)
    assert [r.data for r in records] == [r.data for r in whole[:2]]


def test_a_json_array_read_to_its_admitted_end_ignores_what_follows(tmp_path: Path) -> None:
    head = b'[{"a": 1}, {"a": 2}]'
    path = tmp_path / "f.json"
    path.write_bytes(head + b'\n[{"a": 3}]')
    records = list(iter_records(path, "json", limit=len(head)))
    assert [r.data for r in records] == [{"a": 1}, {"a": 2}] and all(r.error is None for r in records)
