"""Files sent back through admission (`mysimbdp files retry`), with a receipt chain from the new to the old.

A rejected or failed file of a tenant is moved (never copied, never replaced) from
``rejected/<tenant>/`` or ``failed/<tenant>/`` into ``staging/<tenant>/`` under the name it was
staged with, and the watcher takes it like any file: admission checks it and charges the quota again
(a failed file's quota was refunded when it failed). Two records make the chain:

- ``<disk name>.retried.json`` next to the old receipt says when the file left and where to; it is
  created exclusively, so a file is retried once from that place;
- ``mysimbdp:retry:<tenant>:<inode>`` in Redis (a week) names the ingestion retried; the watcher
  reads it when it admits or refuses that inode for that tenant, and its receipt says ``retry_of``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import redis

from ..core import names
from ..core.errors import TenantError
from ..core.settings import Settings
from . import folders

RETRYABLE = (folders.REJECTED, folders.FAILED)
RETRIED_SUFFIX = ".retried.json"
CHAIN_TTL_S = 7 * 86400


def chain_key(tenant: str, inode: int) -> str:
    return f"{names.PREFIX}retry:{tenant}:{inode}"


class Chains:
    """The watcher's side: which files it is admitting are retries, and of what."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._open: dict[str, tuple[str, int, str]] = {}  # ingest id -> (tenant, inode, ingest id retried)

    def look_up(self, ingest_id: str, tenant: str, inode: int) -> str | None:
        """The ingest id the file ``ingest_id`` (``tenant``'s, that inode) retries, if it is a retry."""
        raw = self.client.get(chain_key(tenant, inode))
        if raw is None:
            return None
        self._open[ingest_id] = (tenant, inode, str(json.loads(raw)["retry_of"]))
        return self._open[ingest_id][2]

    def of(self, ingest_id: str) -> str | None:
        chain = self._open.get(ingest_id)
        return chain[2] if chain else None

    def settle(self, ingest_id: str) -> None:
        """The file has its verdict (admitted or refused): the chain now lives in the receipts."""
        chain = self._open.pop(ingest_id, None)
        if chain:
            self.client.delete(chain_key(chain[0], chain[1]))


def find(layout: folders.Layout, tenant: str, target: str) -> Path:
    """The tenant's rejected or failed file ``target`` names: a path, or a name in one of those folders."""
    places = [layout.folder(stage, tenant) for stage in RETRYABLE]
    given = Path(target)
    candidates = [given] if given.parent != Path(".") else [p / given.name for p in places]
    for path in candidates:
        if (path.name.endswith((folders.RECEIPT_SUFFIX, RETRIED_SUFFIX)) or path.is_symlink()
                or not path.is_file()):
            continue
        if path.resolve().parent in {p.resolve() for p in places}:
            return path
    raise TenantError(f"{target}: not a rejected or failed file of tenant {tenant!r} (expected a file in "
                      f"{places[0]} or {places[1]}, as its receipt names it)")


def retry(settings: Settings, client: redis.Redis, tenant: str, target: str) -> dict[str, Any]:
    """Send the file back through admission; what happened, as the command prints it."""
    layout = folders.Layout(settings.data)
    src = find(layout, tenant, target)
    receipt_file = folders.receipt_path(src)
    try:
        receipt = json.loads(receipt_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TenantError(f"{src}: its receipt {receipt_file.name} cannot be read ({exc}); nothing was moved") from None
    old_id = str(receipt.get("ingest_id") or src.name.partition("__")[0])
    staged_name = src.name.partition("__")[2] or src.name
    dest = layout.folder(folders.STAGING, tenant) / staged_name
    if os.path.lexists(dest):
        raise TenantError(f"{dest} exists: a file of that name waits in staging; retry once it is taken")
    record = {"retried_at": time.time(), "to": str(dest), "retry_of": old_id, "tenant": tenant}
    marker = src.with_name(src.name + RETRIED_SUFFIX)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise TenantError(f"{src} was retried already (see {marker.name})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out, indent=2)
    key = chain_key(tenant, os.lstat(src).st_ino)
    client.set(key, json.dumps(record), ex=CHAIN_TTL_S)
    try:
        folders.place(src, dest)  # exclusive; the inode, and so the chain, go with it
    except Exception:
        client.delete(key)
        marker.unlink()
        raise
    return {"tenant": tenant, "file": str(src), "staged": str(dest), "retry_of": old_id,
            "previous_status": receipt.get("status"), "previous_reason": receipt.get("reason")}
