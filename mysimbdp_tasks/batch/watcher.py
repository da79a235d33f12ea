"""The staging watcher: notice complete files, route them by tenant, admit them, enqueue them.

A file is taken when it is complete: its writer closed it (inotify close-after-write), it was
renamed into staging (the producers' way), or its size and modification time stayed the same for
``stable_seconds`` (files already there at start, or written by tools that keep them open).
Names starting with ``.`` or ending in ``.part``/``.tmp`` are never taken.

Per file: claim it (an atomic rename out of staging, so concurrent watchers never take one file
twice), check it is a regular file inside staging, admit it in one atomic Redis script (tenant,
type, size, files and bytes per day), then move it to ``processing/<tenant>/`` and send a task to
the tenant's queue, or to ``rejected/<tenant>/`` with a receipt that says why.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import redis
from watchdog.observers import Observer

from ..core import filenames
from ..core.errors import DiskFull, Stopping
from ..core.settings import DEFAULT_STABLE_SECONDS, Settings
from ..core.tenants import Tenant
from ..services import events as metrics
from ..services import telemetry
from ..services.dispatch import Dispatch
from ..services.outages import Waiter
from ..services.quotas import Quotas
from ..services.registry import Registry
from . import claims, folders, fsevents, legacy, retries
from .claims import CLAIM_NOTE, CLAIMS, PENDING
from .claims import OUTAGES as _OUTAGES
from .jobs import Jobs
from .routing import owner_refusal, tenant_of
from .schedule import Schedule
from .slots import Slots

log = logging.getLogger(__name__)

__all__ = ["Outcome", "Watcher", "tenant_of"]


@dataclass(frozen=True)
class Outcome:
    file: str
    tenant: str
    status: str  # "admitted", "scheduled" (admitted, waiting for its window) or "rejected"
    reason: str
    location: Path
    ingest_id: str = ""


class Watcher:
    def __init__(self, settings: Settings, client: redis.Redis, dispatch: Dispatch,
                 stable_seconds: float = DEFAULT_STABLE_SECONDS) -> None:
        """``dispatch`` sends the admitted files' tasks (the sweeper runs beside the watcher, in a
        thread of its own: see the ``watch`` command)."""
        self.settings = settings
        self.redis = client
        self.dispatch = dispatch
        self.stable_seconds = stable_seconds
        self.layout = folders.Layout(settings.data)
        self.layout.ensure()
        self.staging = self.layout.folder(folders.STAGING).resolve()
        self.quotas = Quotas(client)
        self.jobs = Jobs(client)
        self.registry = Registry(client)
        self.slots = (Slots(client, self.jobs, dispatch, settings.batch_slots, settings.slot_lease_seconds)
                      if settings.batch_slots else None)
        self.schedule = Schedule(client, self.jobs, dispatch, self.slots)
        self._seen: dict[Path, tuple[int, int, float]] = {}
        self._complete: set[Path] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._tenants: tuple[float, dict[str, Tenant]] = (0.0, {})
        self.retries = retries.Chains(client)

    # -- events ------------------------------------------------------------------------------
    def mark_complete(self, path: Path) -> None:
        if not filenames.unfinished(path.name):  # never taken, so never remembered
            with self._lock:
                self._complete.add(path)
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    # -- scanning ----------------------------------------------------------------------------
    def tenants(self, name: str | None = None) -> dict[str, Tenant]:
        # Applied configurations, re-read at most every second (and at once for a name not seen
        # yet): `tenants apply` and `remove` take effect without restarting the watcher.
        at, known = self._tenants
        if time.monotonic() - at > 1.0 or (name and name not in known):
            known = self.refresh_tenants()
        return known

    def refresh_tenants(self) -> dict[str, Tenant]:
        """Re-read the applied configurations now (the next file sees an apply or remove at once)."""
        known = self.registry.all()
        self._tenants = (time.monotonic(), known)
        return known

    def candidates(self) -> list[Path]:
        """Entries of staging (and its tenant subfolders) that are ready to be taken."""
        found: list[Path] = []
        now = time.monotonic()
        with self._lock:
            closed_before = set(self._complete)
        entries = self._entries()
        self._forget_gone(set(entries), closed_before)
        for entry in entries:
            try:
                st = os.lstat(entry)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self._hold(entry, None, f"cannot stat: {exc}")
                continue
            if self._held(entry, st):
                continue
            if not stat.S_ISREG(st.st_mode):
                found.append(entry)  # refused at once: links, pipes, sockets, devices
                continue
            with self._lock:
                closed = entry in self._complete
            sig = (st.st_size, st.st_mtime_ns)
            prev = self._seen.get(entry)
            if prev is None or prev[:2] != sig:
                self._seen[entry] = (*sig, now)  # new or still changing: the quiet period starts again
            if closed or now - self._seen[entry][2] >= self.stable_seconds:
                found.append(entry)
        return found

    def remembered(self) -> int:
        """Staging paths the watcher keeps something for: at most what staging lists (scanning thread)."""
        with self._lock:
            return len(self._seen.keys() | self._complete)

    def _forget_gone(self, listed: set[Path], closed_before: set[Path]) -> None:
        """Forget paths no longer listed (taken by hand, deleted, in a nested folder); keep later closes."""
        for gone in [p for p in self._seen if p not in listed]:
            del self._seen[gone]
        for gone in [p for p in self._stuck if p not in listed]:
            del self._stuck[gone]
        with self._lock:
            self._complete -= closed_before - listed

    def _entries(self) -> list[Path]:
        try:
            top = self._listing(self.staging)
        except OSError as exc:
            self._warn_folder(self.staging, exc)
            return []
        entries: list[Path] = []
        for e in top:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not is_dir:
                entries.append(Path(e.path))
                continue
            try:
                entries.extend(Path(s.path) for s in self._listing(e.path) if not s.is_dir(follow_symlinks=False))
            except OSError as exc:
                self._warn_folder(Path(e.path), exc)  # one unreadable subfolder hides only itself
        return entries

    @staticmethod
    def _listing(folder: str | Path) -> list[os.DirEntry[str]]:
        with os.scandir(folder) as it:
            return [e for e in it if not filenames.unfinished(e.name)]

    def _warn_folder(self, folder: Path, exc: OSError) -> None:
        if folder not in self._unreadable:
            self._unreadable.add(folder)
            log.error("staging folder %s cannot be read, skipped until it can: %s", filenames.text(str(folder)), exc)

    def scan(self) -> list[Outcome]:
        self._unreadable.clear()  # warn again after a later failure, once per scan at most
        outcomes = self._retry_unwritten()
        for path in self.candidates():
            # The item boundary: whatever one file does, it is refused alone and the scan goes on.
            # Only a service outage passes (the file stays where it is and is taken again later).
            try:
                outcome = self.take(path)
            except _OUTAGES:
                raise
            except DiskFull:
                outcome = None  # claimed and held, logged by _reject; later scans finish it
            except Exception as exc:  # contained per file, logged with its name
                log.exception("file=%s could not be taken", filenames.text(str(path)))
                self._hold(path, _lstat(path), f"{type(exc).__name__}: {exc}")
                outcome = None
            self._seen.pop(path, None)
            with self._lock:
                self._complete.discard(path)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    # A file that cannot even be claimed (or refused) stays in staging; it is not tried again until
    # it changes, so one such file costs one log line, not one per scan.
    @cached_property
    def _stuck(self) -> dict[Path, tuple[int, int, int] | None]:
        return {}

    @cached_property
    def _unreadable(self) -> set[Path]:
        return set()

    # Rejections decided but not written down for want of disk space: claim -> _reject's arguments.
    @cached_property
    def _unwritten(self) -> dict[Path, tuple[str, str, str, str, str, str]]:
        return {}

    def _retry_unwritten(self) -> list[Outcome]:
        done = []
        for claimed, args in list(self._unwritten.items()):
            try:
                done.append(self._reject(claimed, *args))
            except DiskFull:
                continue  # still no space
            except Exception:  # one held file, logged by name; it stays claimed for recover()
                log.exception("file=%s ingest=%s held rejection not finished", args[0], args[2])
                self._unwritten.pop(claimed, None)
        return done

    def _hold(self, path: Path, st: os.stat_result | None, why: str) -> None:
        sig = (st.st_ino, st.st_size, st.st_mtime_ns) if st else None
        if self._stuck.get(path, ()) != sig:
            log.error("file=%s left in place: %s", filenames.text(str(path)), why)
        self._stuck[path] = sig

    def _held(self, path: Path, st: os.stat_result) -> bool:
        if path not in self._stuck:
            return False
        if self._stuck[path] == (st.st_ino, st.st_size, st.st_mtime_ns):
            return True
        del self._stuck[path]  # it changed: try again
        return False

    # -- one file ----------------------------------------------------------------------------
    def take(self, path: Path) -> Outcome | None:
        ingest_id = uuid.uuid4().hex
        name = filenames.text(path.name)
        folder_tenant = filenames.text(path.parent.name) if path.parent != self.staging else ""
        claim_dir = self.layout.folder(folders.PROCESSING) / CLAIMS
        claim_dir.mkdir(parents=True, exist_ok=True)
        # The claim's side note keeps what routing needs if this watcher dies before admitting it;
        # the claim itself has a short, safe name.
        claims.write_note(claim_dir / f"{ingest_id}{CLAIM_NOTE}", {"name": name, "folder": folder_tenant})
        claimed = claim_dir / filenames.disk_name(ingest_id, name)
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return None  # another watcher took it
        try:
            return self.admit(claimed, name, folder_tenant, ingest_id)
        except _OUTAGES:
            raise  # the claim stays; recover() finishes it
        except DiskFull:
            raise  # the claim stays; a rejection is written by a later scan, an admission by recover()
        except Exception as exc:  # the item boundary for a claimed file
            log.exception("tenant=%s file=%s ingest=%s intake failed", folder_tenant or tenant_of(name) or "?",
                          name, ingest_id)
            return self._reject(claimed, name, folder_tenant or tenant_of(name), ingest_id, "intake_error", "",
                                f"{type(exc).__name__}: {exc}"[:300])

    def admit(self, claimed: Path, name: str, folder_tenant: str, ingest_id: str) -> Outcome:
        """Admit (or refuse) a claimed file; the same ingest id is never charged twice."""
        named = tenant_of(name)
        tenant_name = folder_tenant or named
        known = self.tenants(tenant_name)
        st = os.lstat(claimed)
        previous = self.retries.look_up(ingest_id, tenant_name, st.st_ino) if tenant_name in known else None
        if not stat.S_ISREG(st.st_mode):
            kind = "symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            return self._reject(claimed, name, tenant_name, ingest_id, "not_a_regular_file", kind, "")
        if st.st_nlink > 1:
            # Another name of the same data can change it after admission, or bring in a file of
            # someone else's: only a file's sole name is admitted.
            return self._reject(claimed, name, tenant_name, ingest_id, "hard_linked", "1 link",
                                f"{st.st_nlink} links")
        if folder_tenant and named and named in known and named != folder_tenant:
            return self._reject(claimed, name, folder_tenant, ingest_id, "wrong_tenant",
                                f"staging/{folder_tenant}/", f"named for tenant {named}")
        if not tenant_name:
            return self._reject(claimed, name, "", ingest_id, "unknown_tenant", "", "no tenant prefix in the name")
        refused = owner_refusal(self.settings, tenant_name, folder_tenant, st.st_uid)
        if refused is not None:
            return self._reject(claimed, name, tenant_name, ingest_id, refused.reason, refused.limit, refused.usage)
        admission = self.quotas.admit_file(tenant_name, known.get(tenant_name), name, st.st_size,
                                           ingest_id=ingest_id)
        if not admission.admitted:
            return self._reject(claimed, name, tenant_name, ingest_id, admission.reason, admission.limit,
                                admission.usage)
        # The file is pinned as admitted: workers read no more than ``bytes`` of this inode.
        job = {"ingest_id": ingest_id, "tenant": tenant_name, "file": name, "bytes": st.st_size,
               "inode": st.st_ino, "mtime_ns": st.st_mtime_ns, "day": admission.day, "admitted_at": time.time()}
        if previous:
            job["retry_of"] = previous
        self.redis.hset(PENDING, ingest_id, json.dumps({**job, "claimed": str(claimed)}))
        return self.enqueue(claimed, job)

    def enqueue(self, claimed: Path, job: dict[str, Any]) -> Outcome:
        folder = self.layout.folder(folders.PROCESSING, job["tenant"])
        path = folders.move(claimed, folder, filenames.disk_name(job["ingest_id"], job["file"]))
        job = {**job, "path": str(path)}
        held = self.schedule.start(job, self.tenants(job["tenant"]).get(job["tenant"]))  # or later, in its window
        self.redis.hdel(PENDING, job["ingest_id"])
        claims.drop_note(claimed)
        self.retries.settle(job["ingest_id"])
        log.info("tenant=%s file=%s ingest=%s bytes=%d admitted%s", job["tenant"], job["file"], job["ingest_id"],
                 job["bytes"], ", scheduled" if held else "")
        metrics.emit(self.settings.logs, job["tenant"], "file_admitted", file=job["file"],
                     ingest_id=job["ingest_id"], bytes=job["bytes"], scheduled=held)
        telemetry.file_admitted(job["tenant"])
        return Outcome(job["file"], job["tenant"], "scheduled" if held else "admitted", "admitted", path,
                       job["ingest_id"])

    def _reject(self, claimed: Path, name: str, tenant: str, ingest_id: str, reason: str, limit: str,
                usage: str) -> Outcome:
        owner = tenant if tenant and tenant in self.tenants(tenant) else folders.UNKNOWN_TENANT_DIR
        dest = folders.final_path(self.layout.folder(folders.REJECTED, owner), ingest_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        receipt = {"tenant": tenant or None, "file": name, "status": "rejected", "reason": reason,
                   "limit": limit, "usage": usage, "time": time.time(), "ingest_id": ingest_id,
                   "location": str(dest)}
        if self.retries.of(ingest_id):
            receipt["retry_of"] = self.retries.of(ingest_id)
        # Receipt first, then the move: a file in rejected/ always has its receipt. If the disk is
        # full, the decision stands and the file stays claimed; each scan tries again.
        try:
            folders.write_receipt(dest, receipt)
            folders.place(claimed, dest)
        except DiskFull as exc:
            if claimed not in self._unwritten:
                log.error("tenant=%s file=%s ingest=%s rejected reason=%s, held in %s until there is space: %s",
                          tenant or "?", name, ingest_id, reason, claimed.parent, exc)
            self._unwritten[claimed] = (name, tenant, ingest_id, reason, limit, usage)
            raise
        self._unwritten.pop(claimed, None)
        claims.drop_note(claimed)
        self.retries.settle(ingest_id)
        log.warning("tenant=%s file=%s ingest=%s rejected reason=%s limit=%s usage=%s", tenant or "?", name,
                    ingest_id, reason, limit, usage)
        metrics.emit(self.settings.logs, owner, "file_rejected", file=name, reason=reason, limit=limit, usage=usage)
        telemetry.file_refused(owner, reason)
        return Outcome(name, tenant, "rejected", reason, dest, ingest_id)

    def recover(self) -> int:
        """Finish the claims of a watcher that died (see :mod:`.claims`)."""
        return claims.recover(self)

    # -- running -----------------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float = 0.5, waiter: Waiter | None = None) -> None:
        """Watch until ``stop`` is set. While Redis is away the watcher waits (``waiter``: logged once
        per outage, with backoff); files claimed when it went away are finished once it is back."""
        wait = waiter or Waiter("watcher", stop)
        handler = fsevents.Handler(self)
        fsevents.prompt_move_events()
        observer = Observer()
        observer.schedule(handler, str(self.staging), recursive=True)
        observer.start()
        log.info("watching %s", self.staging)
        try:
            wait.call(lambda: legacy.adopt(self.redis))  # jobs in flight across an upgrade
            wait.call(self.recover)
            while not stop.is_set():
                wait.call(self.scan, resume=self.recover)
                wait.call(lambda: self.schedule.release_due(self.tenants()))
                if self.slots is not None:
                    wait.call(self.slots.release_due)
                self._wake.wait(interval)
                self._wake.clear()
        except Stopping:
            log.warning("watcher stopped while waiting; claimed files are finished at the next start")
        finally:
            observer.stop()
            observer.join(timeout=5)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None
