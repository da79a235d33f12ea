"""Claims: a staged file the watcher took (renamed into ``processing/.claims/``), and finishing
the claims a watcher left when it died.

A claim has a short, safe name (``<ingest id>__<safe name>``) and a side note,
``<ingest id>.claim.json``, with what routing needs: the staged name and its subfolder. After a
crash, :func:`recover` admits the claimed files again (admission is idempotent per ingest id, so a
file admitted before the crash is not charged twice) and enqueues the files admitted but not yet
sent (``mysimbdp:watcher:pending``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import filenames, names
from ..services.outages import REDIS_ERRORS
from . import folders

if TYPE_CHECKING:
    from .watcher import Watcher

log = logging.getLogger(__name__)

CLAIMS = ".claims"
CLAIM_NOTE = ".claim.json"  # beside a claim: the staged name and subfolder, as text
PENDING = names.WATCHER_PENDING  # ingest_id -> job JSON, until the task is enqueued

# Errors of the services themselves, not of a file: they pass the per-file boundary, and the file
# is taken again once the service is back.
# Errors of the services themselves, not of a file: they pass the per-file boundary, and the file
# is taken again once the service is back.
OUTAGES = REDIS_ERRORS


def write_note(path: Path, note: dict[str, str]) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, json.dumps(note).encode("ascii"))
        finally:
            os.close(fd)
    except OSError as exc:
        # Only crash recovery reads it: a claim without it is refused then (see claim_of), never
        # routed by its name. A note cut short is no note.
        with contextlib.suppress(OSError):
            os.unlink(path)
        log.warning("file=%s claim note not written: %s", note["name"], exc)


def _note(claimed: Path) -> Path:
    return claimed.with_name(claimed.name.split("__", 1)[0] + CLAIM_NOTE)


def drop_note(claimed: Path) -> None:
    # The note is the platform's own scratch, not a tenant's file: it goes once the claim is settled.
    with contextlib.suppress(OSError):
        os.unlink(_note(claimed))


def claim_of(claimed: Path) -> tuple[str, str, str]:
    """(ingest id, staged name, staging subfolder) of a claimed file.

    Without its note nobody can tell whose folder the file came from, and its name may name any
    tenant: it is given to no tenant (``_unknown``), so admission refuses it with a receipt.
    """
    ingest_id, _, rest = claimed.name.partition("__")
    try:
        note = json.loads(_note(claimed).read_text(encoding="ascii"))
        return ingest_id, str(note["name"]), str(note["folder"])
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("ingest=%s claim has no readable note: refused as of no known tenant", ingest_id)
        return ingest_id, rest, folders.UNKNOWN_TENANT_DIR


def recover(watcher: Watcher) -> int:
    """Finish files admitted by a watcher that died before enqueueing them, one at a time."""
    n = 0
    for ingest_id, raw in watcher.redis.hgetall(PENDING).items():
        try:
            n += _recover_pending(watcher, ingest_id, raw)
        except OUTAGES:
            raise
        except Exception:  # one pending job, logged by id
            log.exception("ingest=%r pending job not recovered", ingest_id)
    claims = watcher.layout.folder(folders.PROCESSING) / CLAIMS
    for claimed in sorted(claims.glob("*__*")) if claims.is_dir() else []:
        ingest_id, name, folder_tenant = claim_of(claimed)
        if watcher.redis.hexists(PENDING, ingest_id):
            continue
        try:
            watcher.admit(claimed, name, folder_tenant, ingest_id)
            n += 1
        except OUTAGES:
            raise
        except Exception:  # one claimed file, logged by name
            log.exception("file=%s ingest=%s claimed file not recovered", name, ingest_id)
    return n


def _recover_pending(watcher: Watcher, ingest_id: bytes | str, raw: bytes | str) -> int:
    job = json.loads(raw)
    claimed = Path(job.pop("claimed"))
    if not claimed.is_relative_to(watcher.layout.folder(folders.PROCESSING)):
        return 0  # a watcher of another MYSIMBDP_HOME sharing this Redis owns it
    folder = watcher.layout.folder(folders.PROCESSING, job["tenant"])
    done = folder / filenames.disk_name(job["ingest_id"], job["file"])
    if claimed.exists():
        watcher.enqueue(claimed, job)
        return 1
    if done.exists():
        job = {**job, "path": str(done)}
        watcher.jobs.open(job, time.time())  # idempotent: the sweeper watches it either way
        watcher.dispatch.send_file(job)
        watcher.redis.hdel(PENDING, ingest_id)
        return 1
    return 0
