"""The file life cycle on disk: staging -> processing -> done | failed | rejected.

A file is never deleted and never replaced. The rename out of staging is the *claim*: when several
watchers race for one file, exactly one rename succeeds. Every later move claims its destination
exclusively (a hard link, which fails if the name exists, where a rename would silently replace
it), and names are derived from the ingest id (:func:`..core.filenames.disk_name`), so two files of
the same name never meet. A receipt ``<disk name>.receipt.json`` beside the file in its final folder
says what happened; it is created exclusively too.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core import filenames
from ..core.errors import DiskFull

STAGING, PROCESSING, DONE, FAILED, REJECTED = "staging", "processing", "done", "failed", "rejected"
UNKNOWN_TENANT_DIR = "_unknown"
RECEIPT_SUFFIX = ".receipt.json"
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Layout:
    def __init__(self, home: Path) -> None:
        self.home = home

    def folder(self, stage: str, tenant: str | None = None) -> Path:
        path = self.home / stage
        return path / tenant if tenant else path

    def ensure(self) -> None:
        for stage in (STAGING, PROCESSING, DONE, FAILED, REJECTED):
            self.folder(stage).mkdir(parents=True, exist_ok=True)


def final_path(folder: Path, ingest_id: str, name: str) -> Path:
    """Where the file ``name`` admitted as ``ingest_id`` ends in ``folder``: unique by its id."""
    return folder / filenames.disk_name(ingest_id, name)


@contextmanager
def _space_for(path: Path) -> Iterator[None]:
    """Raise DiskFull for "no space left" (or over quota) while writing ``path``: the platform's own
    disk is at fault, not the file, and the same write succeeds once there is space again."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise DiskFull(f"{path.parent}: {exc.strerror}") from exc
        raise


def place(src: Path, dest: Path) -> Path:
    """Move ``src`` to ``dest``, which must not exist: nothing is ever replaced.

    A hard link claims ``dest`` atomically; then the old name goes. If ``dest`` already is ``src``
    (an earlier attempt linked it and stopped before the unlink), the move just completes.
    Raises FileNotFoundError if ``src`` is gone, FileExistsError if ``dest`` holds another file,
    DiskFull if the disk has no space for the new name.
    """
    with _space_for(dest):
        return _place(src, dest)


def _place(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest, follow_symlinks=False)
    except FileExistsError:
        if not os.path.samestat(os.lstat(src), os.lstat(dest)):
            raise
    except (IsADirectoryError, PermissionError):
        # Directories cannot be linked, nor (protected_hardlinks) files of another owner we may not
        # write; a rename is the fallback, after checking the name is free.
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "destination exists", str(dest)) from None
        os.rename(src, dest)
        return dest
    os.unlink(src)
    return dest


def move(src: Path, folder: Path, name: str) -> Path:
    """``place`` ``src`` in ``folder`` under ``name`` (a disk name: see :func:`final_path`)."""
    return place(src, folder / name)


def receipt_path(file: Path) -> Path:
    return file.with_name(file.name + RECEIPT_SUFFIX)


def find_receipts(folder: Path, name: str) -> list[Path]:
    """Receipts in ``folder`` of files staged as ``name`` (there may be several of one name)."""
    pattern = "?" * 32 + f"__{glob.escape(filenames.safe(name))}{RECEIPT_SUFFIX}"  # the ingest id is 32 hex
    return sorted(folder.glob(pattern))


def write_receipt(file: Path, receipt: dict[str, Any]) -> Path:
    """Create the receipt next to ``file``, whole or not at all, never replacing one.

    Written to a short temporary name, then linked to its own name (which fails if a receipt is
    there). A receipt already there is kept: it is from an earlier attempt of the same ingestion
    (names carry the ingest id), and the first word on a file stays its receipt. Raises DiskFull if
    the disk has no space for it (nothing is left behind then).
    """
    path = receipt_path(file)
    with _space_for(path):
        return _write_receipt(path, receipt)


def _write_receipt(path: Path, receipt: dict[str, Any]) -> Path:
    try:
        data = json.dumps(receipt, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from an odd name: escape it, JSON stays valid
        data = json.dumps(receipt, indent=2, ensure_ascii=True, default=str).encode("ascii")
    tmp = path.with_name(f".receipt-{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # an earlier attempt's receipt stays
            os.link(tmp, path)
    finally:
        os.unlink(tmp)  # our own temporary name; the receipt lives on under its own
    return path
