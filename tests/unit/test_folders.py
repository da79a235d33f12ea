"""The file life cycle on disk: nothing is replaced, receipts are whole and created once."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core.errors import DiskFull, TransientIngestError

pytestmark = pytest.mark.unit


def test_placing_never_replaces_a_file_already_there(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("mine")
    b.write_text("theirs")
    with pytest.raises(FileExistsError):
        folders.place(a, b)
    assert a.read_text() == "mine" and b.read_text() == "theirs"


def test_an_interrupted_placement_completes_on_retry(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "out" / "dest"
    src.write_text("data")
    dest.parent.mkdir()
    os.link(src, dest)  # the first attempt linked, then stopped before the unlink
    assert folders.place(src, dest) == dest
    assert not src.exists() and dest.read_text() == "data"


def test_a_receipt_is_never_overwritten_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    file = tmp_path / ("0" * 32 + "__x.csv")
    folders.write_receipt(file, {"status": "done", "n": 1})
    folders.write_receipt(file, {"status": "failed", "n": 2})
    assert json.loads(folders.receipt_path(file).read_text())["status"] == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == [file.name + folders.RECEIPT_SUFFIX]


def test_a_receipt_holds_a_name_that_is_not_utf8(tmp_path: Path) -> None:
    odd = os.fsdecode(b"tenant1-\xff.csv")
    path = folders.write_receipt(tmp_path / "f", {"file": odd})
    assert json.loads(path.read_text(encoding="utf-8"))["file"] == odd


def test_receipts_are_found_by_the_staged_name_only(tmp_path: Path) -> None:
    for ingest_id, name in (("a" * 32, "x.csv"), ("b" * 32, "x.csv"), ("c" * 32, "y__x.csv")):
        folders.write_receipt(folders.final_path(tmp_path, ingest_id, name), {})
    assert len(folders.find_receipts(tmp_path, "x.csv")) == 2
    assert len(folders.find_receipts(tmp_path, "y__x.csv")) == 1


def _no_space(*_: object, **__: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_receipt_on_a_full_disk_is_a_transient_disk_full_and_leaves_nothing(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folders.os, "write", _no_space)
    with pytest.raises(DiskFull, match="No space left") as caught:
        folders.write_receipt(tmp_path / "f", {"status": "done"})
    assert isinstance(caught.value, TransientIngestError)
    assert not list(tmp_path.iterdir())


def test_a_move_on_a_full_disk_is_a_disk_full_and_keeps_the_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.write_text("data")
    monkeypatch.setattr(folders.os, "link", _no_space)
    with pytest.raises(DiskFull):
        folders.place(src, tmp_path / "out" / "dest")
    assert src.read_text() == "data"
