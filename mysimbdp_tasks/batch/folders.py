"""The file life cycle on disk: staging -> processing -> done | failed | rejected.

A file is never deleted. Each move is an atomic rename inside ``MYSIMBDP_HOME``; the rename out of
staging is also the *claim*: when several watchers race for one file, exactly one rename succeeds.
A receipt ``<file name>.receipt.json`` beside the file in its final folder says what happened.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

STAGING, PROCESSING, DONE, FAILED, REJECTED = "staging", "processing", "done", "failed", "rejected"
UNKNOWN_TENANT_DIR = "_unknown"


class Layout:
    def __init__(self, home: Path) -> None:
        self.home = home

    def folder(self, stage: str, tenant: str | None = None) -> Path:
        path = self.home / stage
        return path / tenant if tenant else path

    def ensure(self) -> None:
        for stage in (STAGING, PROCESSING, DONE, FAILED, REJECTED):
            self.folder(stage).mkdir(parents=True, exist_ok=True)


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``folder/stem.N.ext`` if taken: files are never overwritten."""
    candidate = folder / name
    if not candidate.exists() and not receipt_path(candidate).exists():
        return candidate
    stem, dot, ext = name.partition(".")
    for n in range(2, 10_000):
        candidate = folder / f"{stem}.{n}{dot}{ext}"
        if not candidate.exists() and not receipt_path(candidate).exists():
            return candidate
    return folder / f"{stem}.{uuid.uuid4().hex}{dot}{ext}"


def move(src: Path, folder: Path, name: str | None = None) -> Path:
    """Move ``src`` into ``folder`` under a free name, never replacing anything there.

    A hard link claims the destination name atomically (it fails if the name exists, where a rename
    would silently replace it); then the old name goes. Symbolic links move as links. Raises
    FileNotFoundError if ``src`` is gone (another process moved it first).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        dest = free_name(folder, name or src.name)
        try:
            os.link(src, dest, follow_symlinks=False)
        except FileExistsError:
            continue
        except IsADirectoryError:
            os.rename(src, dest)
            return dest
        except PermissionError:
            if not src.is_dir() or src.is_symlink():
                raise
            os.rename(src, dest)
            return dest
        os.unlink(src)
        return dest
    raise FileExistsError(f"no free name for {name or src.name} in {folder}")


def receipt_path(file: Path) -> Path:
    return file.with_name(file.name + ".receipt.json")


def write_receipt(file: Path, receipt: dict[str, Any]) -> Path:
    """Write the receipt next to ``file`` atomically (temp file, then rename)."""
    path = receipt_path(file)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(receipt, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path
