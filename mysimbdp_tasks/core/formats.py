"""What a tenant file is, before it is read: its format, and the shapes readers and planners share.

Holds the ``Format`` names, a ``Record`` (what a reader yields), a ``Chunk`` (a byte range of whole
records), the size limits, and ``detect_format``. The readers are in :mod:`parsing`, the chunk
planner in :mod:`chunks`; both start here.

Decisions:

- Files are UTF-8; a leading BOM is ignored.
- ``.csv`` is CSV and ``.jsonl`` / ``.ndjson`` are always JSON Lines; ``.parquet`` is Parquet (read by
  :mod:`columnar`). Each text format may be gzip-compressed (``.csv.gz``, ``.json.gz``, ``.jsonl.gz``,
  ``.ndjson.gz``), read through :mod:`gzipped`; its format is the text format plus ``.gz``. ``.json`` is sniffed: ``[``
  starts an array of objects; ``{`` starts JSON Lines when the first line is one whole object, and
  otherwise (a pretty-printed object) a stream of objects separated by whitespace. Any other
  extension raises ``PermanentIngestError("wrong_file_type", ...)``.
- A CSV field, or a JSON value being decoded, may be as large as ``MAX_RECORD_BYTES``, Cassandra's
  default largest mutation.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, NamedTuple

from .errors import PermanentIngestError

__all__ = [
    "BOM",
    "DEFAULT_CHUNK_BYTES",
    "MAX_RECORD_BYTES",
    "READ_SIZE",
    "SUFFIXES",
    "Chunk",
    "Format",
    "Opener",
    "PathLike",
    "Record",
    "detect_format",
    "extension",
    "is_gzip",
    "open_plain",
    "unparseable",
]

Format = Literal["csv", "json", "jsonl", "parquet", "csv.gz", "json.gz", "jsonl.gz"]
PathLike = str | os.PathLike[str]
#: Opens a tenant file for reading its records: :func:`open_plain`, or a sealed file's decrypting
#: reader (:mod:`sealed`), which has a ``size`` (its plaintext bytes).
Opener = Callable[[PathLike], BinaryIO]

READ_SIZE = 1 << 20  # bytes read at a time from a JSON array
MAX_RECORD_BYTES = 16 << 20  # half of Cassandra's default 32 MiB commit log segment
DEFAULT_CHUNK_BYTES = 8 << 20
BOM = codecs.BOM_UTF8

_SUFFIXES: dict[str, Format] = {
    ".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
    ".csv.gz": "csv.gz", ".json.gz": "json.gz", ".jsonl.gz": "jsonl.gz", ".ndjson.gz": "jsonl.gz",
}
SUFFIXES = tuple(_SUFFIXES)
GZIP_SUFFIX = ".gz"
_JSON_WS_BYTES = re.compile(rb"[ \t\n\r]*")
_SNIFF_BYTES = 64 << 10


class Record(NamedTuple):
    """One record of a file: its number, its fields, or why it cannot be read (see :mod:`parsing`)."""

    number: int
    data: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A byte range of a file holding whole records.

    It travels to a task and into the job record as a dict, ``dataclasses.asdict(chunk)``, and is
    rebuilt with ``Chunk(**values)``, so the field names are part of the wire format.
    """

    index: int
    start_offset: int
    end_offset: int  # exclusive
    first_number: int  # number of the range's first line (CSV, JSON Lines) or element (JSON)


def unparseable(detail: str) -> PermanentIngestError:
    """The error for a file that cannot be read on from some point."""
    return PermanentIngestError("unparseable", detail)


def open_plain(path: PathLike) -> BinaryIO:
    return open(path, "rb")


def extension(name: PathLike) -> str:
    """A file's extension as tenants name it, lower case: ``.csv``, or ``.csv.gz`` for a gzip file."""
    stem, suffix = os.path.splitext(os.path.basename(os.fspath(name)).lower())
    if suffix == GZIP_SUFFIX:
        return os.path.splitext(stem)[1] + suffix
    return suffix


def is_gzip(fmt: str) -> bool:
    return fmt.endswith(".gz")


def detect_format(path: PathLike, *, inflate_limit: int | None = None, opener: Opener = open_plain) -> Format:
    """The format of a file, from its extension (a sealed file's inner one: ``x.csv.enc`` is CSV)
    and, for ``.json`` (and ``.json.gz``), its first bytes."""
    name = os.fspath(path)
    sealed = name.lower().endswith(".enc")
    fmt = _SUFFIXES.get(extension(name[:-4] if sealed else name))
    if sealed and fmt not in (None, "csv", "json", "jsonl"):
        raise PermanentIngestError(
            "wrong_file_type", f"{os.path.basename(path)}: a sealed file is CSV, JSON or JSON Lines")
    if fmt is None:
        raise PermanentIngestError(
            "wrong_file_type", f"{os.path.basename(path)}: expected one of {', '.join(_SUFFIXES)}"
        )
    if fmt == "json":
        with opener(path) as f:
            return _sniff_json(f)
    if fmt == "json.gz":
        from .gzipped import inflated  # here: gzipped imports this module

        with inflated(path, inflate_limit) as g:
            return "json.gz" if _sniff_json(g) == "json" else "jsonl.gz"
    return fmt


def _sniff_json(f: BinaryIO) -> Format:
    head = f.read(_SNIFF_BYTES)
    start = len(BOM) if head.startswith(BOM) else 0
    while True:
        match = _JSON_WS_BYTES.match(head, start)
        start = match.end() if match else start
        if start < len(head):
            break
        head, start = f.read(_SNIFF_BYTES), 0
        if not head:
            return "json"  # empty: no records
    first = head[start : start + 1]
    if first == b"[":
        return "json"
    if first != b"{":
        raise unparseable(f"a .json file must start with '[' or '{{', not {first.decode(errors='replace')!r}")
    end = head.find(b"\n", start)
    while end < 0 and len(head) - start < MAX_RECORD_BYTES:
        more = f.read(_SNIFF_BYTES)
        if not more:
            end = len(head)
            break
        head += more
        end = head.find(b"\n", start)
    # One object per line ends its first line with "}"; a pretty-printed object never does.
    return "jsonl" if head[start:end].rstrip().endswith(b"}") else "json"

def bounded_size(f: BinaryIO, limit: int | None) -> int:
    """The size to read: the file's, or ``limit`` if the file grew past it (never more). A sealed
    file's reader knows its plaintext size, and is read whole (a sealed file that grew no longer
    authenticates)."""
    sealed_size = getattr(f, "size", None)
    if isinstance(sealed_size, int):
        return sealed_size
    size = os.fstat(f.fileno()).st_size
    return size if limit is None else min(size, limit)
