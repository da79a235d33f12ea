"""File names from tenants, made safe to store: as text in receipts and logs, and on disk.

A staged name is whatever bytes the tenant's tool chose: up to 255 of them, not necessarily UTF-8
(Python hands such names over with lone surrogates, PEP 383), with spaces, quotes or control
characters. Two things must never fail on such a name:

- ``text(name)``: the name as printable, UTF-8-encodable text for receipts, events and Redis.
  Bytes that are not UTF-8 appear as ``\\xNN``; the original bytes can be told from it.
- ``disk_name(ingest_id, name)``: the name the platform gives the file in processing/, done/,
  failed/ and rejected/: the ingest id (unique, so two files of the same name never meet) plus a
  shortened, sanitized form of the name that keeps its extension (the format is read from it).
  It is at most ``DISK_NAME_BYTES`` long, so every name derived from it (the receipt, its
  temporary file) fits the 255-byte limit of common file systems.
"""

from __future__ import annotations

import os
import re

SAFE_NAME_BYTES = 100  # the sanitized part of a disk name
SUFFIX_CHARS = 16  # longest extension kept whole (".ndjson.gz.enc" and friends)
WRAPPERS = (".gz", ".enc")  # suffixes over the one that names the format: gzip, a sealed file
DISK_NAME_BYTES = 32 + 2 + SAFE_NAME_BYTES  # ingest id (uuid4 hex), "__", sanitized name
_UNSAFE = re.compile(r"[^\w.+=@,-]")
UNFINISHED_SUFFIXES = (".part", ".tmp", ".crdownload", ".swp")


def unfinished(name: str) -> bool:
    """A hidden file, or one a writer is still filling (``.part``, ``.tmp``...): staging never takes it."""
    return name.startswith(".") or name.endswith(UNFINISHED_SUFFIXES)


def text(name: str | bytes) -> str:
    """``name`` as text that always encodes as UTF-8: undecodable bytes become ``\\xNN``."""
    raw = os.fsencode(name)
    decoded = raw.decode("utf-8", "backslashreplace")
    # Control characters are legal in names but make log lines and terminals lie.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in decoded)


def safe(name: str | bytes, limit: int = SAFE_NAME_BYTES) -> str:
    """A sanitized, shortened ``name``: word characters, ``.+=@,-``; extension kept; never hidden."""
    cleaned = _UNSAFE.sub("_", text(name)).lstrip(".") or "_"
    stem, ext = os.path.splitext(cleaned)
    outer = ext
    while outer.lower() in WRAPPERS:  # ".csv.gz", ".csv.enc": the format is named by the inner suffix
        stem, outer = os.path.splitext(stem)
        ext = outer + ext
    if len(ext) > SUFFIX_CHARS:
        stem, ext = cleaned, ""
    room = limit - len(ext.encode())
    cut = stem.encode()[:room].decode("utf-8", "ignore")  # never half a character
    return (cut or "_") + ext


def disk_name(ingest_id: str, name: str | bytes) -> str:
    """The platform's on-disk name for the file ``name`` admitted as ``ingest_id``."""
    return f"{ingest_id}__{safe(name)}"
