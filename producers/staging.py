"""Placing a finished file into a folder atomically, under a name nobody else holds.

The platform's watcher takes any visible file in staging, so a file must appear there whole: it is
written as ``.<name>.part`` (hidden, and a suffix the watcher ignores) in the same folder, synced,
then renamed. A rename inside one file system is atomic, so the watcher sees either nothing or the
complete file.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO


def part_name(name: str) -> str:
    return f".{name}.part"


def numbered(name: str, n: int) -> str:
    """``name`` for n == 1, else ``-n`` before the extension: tenant2-x.csv -> tenant2-x-2.csv."""
    if n == 1:
        return name
    path = Path(name)
    return f"{path.stem}-{n}{path.suffix}"


class AtomicFile:
    """A binary file that becomes ``dest_dir/name`` (or ``name-2``, ``-3``, … if taken) on success.

    With ``overwrite=False`` an existing file is never replaced, and the ``.part`` file is created
    exclusively, which also reserves the name against a second producer writing the same name at
    the same time. On any exception the ``.part`` file is removed and nothing appears.
    ``durable=False`` skips the fsync (the rename stays atomic) for files cheap to make again.
    """

    def __init__(self, dest_dir: Path, name: str, *, overwrite: bool = False, durable: bool = True) -> None:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"not a plain visible file name: {name!r}")
        self.dest_dir = dest_dir
        self.name = name
        self.overwrite = overwrite
        self.durable = durable
        self.path: Path | None = None  # the final path, known once committed
        self._part: Path | None = None
        self.size = 0
        self._n = 0
        self._file: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        self._file = self._reserve()
        return self._file

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._file is not None and self._part is not None
        if exc_type is not None:
            self._file.close()
            self._part.unlink(missing_ok=True)
            return
        try:
            self._file.flush()
            # Measured before the rename: once published, the platform may take the file at once.
            self.size = os.fstat(self._file.fileno()).st_size
            if self.durable:
                # Durable before visible: after a crash the platform must not find a renamed but empty file.
                os.fsync(self._file.fileno())
            self._file.close()
            self.path = self._commit()
        except BaseException:
            self._file.close()
            self._part.unlink(missing_ok=True)
            raise

    def _reserve(self) -> BinaryIO:
        if self.overwrite:
            self._n = 1
            self._part = self.dest_dir / part_name(self.name)
            return open(self._part, "wb")
        n = 0
        while True:
            n += 1
            candidate = numbered(self.name, n)
            if (self.dest_dir / candidate).exists():
                continue
            part = self.dest_dir / part_name(candidate)
            try:
                fh = open(part, "xb")  # noqa: SIM115 - closed by __exit__
            except FileExistsError:  # another writer is producing that name right now
                continue
            self._n, self._part = n, part
            return fh

    def _commit(self) -> Path:
        assert self._part is not None
        n = self._n
        final = self.dest_dir / numbered(self.name, n)
        # The name was free at reservation; a file created under it since then (not by a producer,
        # which would have reserved it) still must not be replaced.
        while not self.overwrite and final.exists():
            n += 1
            final = self.dest_dir / numbered(self.name, n)
        os.replace(self._part, final)
        return final
