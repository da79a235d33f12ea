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
from pathlib import Path
from typing import Any

import redis
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ..core import names
from ..core.settings import Settings
from ..core.tenants import Tenant
from ..services import events as metrics
from ..services.dispatch import Dispatch
from ..services.quotas import Quotas
from ..services.registry import Registry
from . import folders
from .jobs import Jobs
from .sweeper import Sweeper

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".swp")
CLAIMS = ".claims"
PENDING = names.WATCHER_PENDING  # ingest_id -> job JSON, until the task is enqueued


@dataclass(frozen=True)
class Outcome:
    file: str
    tenant: str
    status: str  # "admitted" or "rejected"
    reason: str
    location: Path
    ingest_id: str = ""


def tenant_of(name: str) -> str:
    """The tenant named by a staged file: the prefix before the first '-' or '_'."""
    cut = min((i for i in (name.find("-"), name.find("_")) if i > 0), default=-1)
    return name[:cut] if cut > 0 else ""


class Watcher:
    def __init__(self, settings: Settings, client: redis.Redis, dispatch: Dispatch, stable_seconds: float = 2.0,
                 sweeper: Sweeper | None = None) -> None:
        """``dispatch`` sends the admitted files' tasks; ``sweeper``, if given, runs every few seconds
        of :meth:`run` (the ``watch`` command builds both)."""
        self.settings = settings
        self.redis = client
        self.dispatch = dispatch
        self.sweeper = sweeper
        self.stable_seconds = stable_seconds
        self.layout = folders.Layout(settings.home)
        self.layout.ensure()
        self.staging = self.layout.folder(folders.STAGING).resolve()
        self.quotas = Quotas(client)
        self.jobs = Jobs(client)
        self.registry = Registry(client)
        self._seen: dict[Path, tuple[int, int, float]] = {}
        self._complete: set[Path] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._tenants: tuple[float, dict[str, Tenant]] = (0.0, {})

    # -- events ------------------------------------------------------------------------------
    def mark_complete(self, path: Path) -> None:
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
        for entry in self._entries():
            try:
                st = os.lstat(entry)
            except FileNotFoundError:
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

    def _entries(self) -> list[Path]:
        entries: list[Path] = []
        with os.scandir(self.staging) as it:
            for e in it:
                if e.name.startswith(".") or e.name.endswith(IGNORED_SUFFIXES):
                    continue
                if e.is_dir(follow_symlinks=False):
                    with os.scandir(e.path) as sub:
                        entries.extend(Path(s.path) for s in sub
                                       if not s.name.startswith(".") and not s.name.endswith(IGNORED_SUFFIXES)
                                       and not s.is_dir(follow_symlinks=False))
                else:
                    entries.append(Path(e.path))
        return entries

    def scan(self) -> list[Outcome]:
        outcomes = []
        for path in self.candidates():
            outcome = self.take(path)
            self._seen.pop(path, None)
            with self._lock:
                self._complete.discard(path)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes

    # -- one file ----------------------------------------------------------------------------
    def take(self, path: Path) -> Outcome | None:
        ingest_id = uuid.uuid4().hex
        name = path.name
        folder_tenant = path.parent.name if path.parent != self.staging else ""
        # The claim's name keeps what routing needs if this watcher dies before admitting it.
        claimed = self.layout.folder(folders.PROCESSING) / CLAIMS / f"{ingest_id}__{folder_tenant}__{name}"
        claimed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return None  # another watcher took it
        return self._admit(claimed, name, folder_tenant, ingest_id)

    def _admit(self, claimed: Path, name: str, folder_tenant: str, ingest_id: str) -> Outcome:
        named = tenant_of(name)
        tenant_name = folder_tenant or named
        known = self.tenants(tenant_name)
        st = os.lstat(claimed)
        if not stat.S_ISREG(st.st_mode):
            kind = "symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            return self._reject(claimed, name, tenant_name, ingest_id, "not_a_regular_file", kind, "")
        if folder_tenant and named and named in known and named != folder_tenant:
            return self._reject(claimed, name, folder_tenant, ingest_id, "wrong_tenant",
                                f"staging/{folder_tenant}/", f"named for tenant {named}")
        if not tenant_name:
            return self._reject(claimed, name, "", ingest_id, "unknown_tenant", "", "no tenant prefix in the name")
        admission = self.quotas.admit_file(tenant_name, known.get(tenant_name), name, st.st_size)
        if not admission.admitted:
            return self._reject(claimed, name, tenant_name, ingest_id, admission.reason, admission.limit,
                                admission.usage)
        job = {"ingest_id": ingest_id, "tenant": tenant_name, "file": name, "bytes": st.st_size,
               "day": admission.day, "admitted_at": time.time()}
        self.redis.hset(PENDING, ingest_id, json.dumps({**job, "claimed": str(claimed)}))
        return self._enqueue(claimed, job)

    def _enqueue(self, claimed: Path, job: dict[str, Any]) -> Outcome:
        folder = self.layout.folder(folders.PROCESSING, job["tenant"])
        path = folders.move(claimed, folder, f"{job['ingest_id']}__{job['file']}")
        job = {**job, "path": str(path)}
        self.jobs.open(job, time.time())
        self.dispatch.send_file(job)
        self.redis.hdel(PENDING, job["ingest_id"])
        log.info("tenant=%s file=%s ingest=%s bytes=%d admitted", job["tenant"], job["file"], job["ingest_id"],
                 job["bytes"])
        metrics.emit(self.settings.logs, job["tenant"], "file_admitted", file=job["file"],
                     ingest_id=job["ingest_id"], bytes=job["bytes"])
        return Outcome(job["file"], job["tenant"], "admitted", "admitted", path, job["ingest_id"])

    def _reject(self, claimed: Path, name: str, tenant: str, ingest_id: str, reason: str, limit: str,
                usage: str) -> Outcome:
        owner = tenant if tenant and tenant in self.tenants(tenant) else folders.UNKNOWN_TENANT_DIR
        dest = folders.move(claimed, self.layout.folder(folders.REJECTED, owner), name)
        receipt = {"tenant": tenant or None, "file": name, "status": "rejected", "reason": reason,
                   "limit": limit, "usage": usage, "time": time.time(), "ingest_id": ingest_id,
                   "location": str(dest)}
        folders.write_receipt(dest, receipt)
        log.warning("tenant=%s file=%s rejected reason=%s limit=%s usage=%s", tenant or "?", name, reason, limit,
                    usage)
        metrics.emit(self.settings.logs, owner, "file_rejected", file=name, reason=reason, limit=limit, usage=usage)
        return Outcome(name, tenant, "rejected", reason, dest, ingest_id)

    def recover(self) -> int:
        """Finish files admitted by a watcher that died before enqueueing them."""
        n = 0
        for ingest_id, raw in self.redis.hgetall(PENDING).items():
            job = json.loads(raw)
            claimed = Path(job.pop("claimed"))
            if not claimed.is_relative_to(self.layout.folder(folders.PROCESSING)):
                continue  # a watcher of another MYSIMBDP_HOME sharing this Redis owns it
            done = self.layout.folder(folders.PROCESSING, job["tenant"]) / f"{job['ingest_id']}__{job['file']}"
            if claimed.exists():
                self._enqueue(claimed, job)
                n += 1
            elif done.exists():
                self.dispatch.send_file({**job, "path": str(done)})
                self.redis.hdel(PENDING, ingest_id)
                n += 1
        for claimed in (self.layout.folder(folders.PROCESSING) / CLAIMS).glob("*__*__*"):
            ingest_id, folder_tenant, name = claimed.name.split("__", 2)
            if not self.redis.hexists(PENDING, ingest_id):
                self._admit(claimed, name, folder_tenant, ingest_id)
                n += 1
        return n

    # -- running -----------------------------------------------------------------------------
    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        sweeper = self.sweeper
        swept = time.monotonic()
        handler = _Handler(self)
        _prompt_move_events()
        observer = Observer()
        observer.schedule(handler, str(self.staging), recursive=True)
        observer.start()
        log.info("watching %s", self.staging)
        try:
            self.recover()
            while not stop.is_set():
                try:
                    self.scan()
                    if sweeper is not None and time.monotonic() - swept >= min(10.0, self.settings.stall_seconds / 2):
                        swept = time.monotonic()
                        sweeper.sweep()
                except redis.exceptions.ConnectionError as exc:
                    log.error("redis unavailable, retrying: %s", exc)
                    time.sleep(2)
                self._wake.wait(interval)
                self._wake.clear()
        finally:
            observer.stop()
            observer.join(timeout=5)


def _prompt_move_events() -> None:
    # watchdog holds an IN_MOVED_FROM for 0.5 s waiting for its IN_MOVED_TO, and every later event
    # waits behind it. Each claim renames a file out of staging (a MOVED_FROM with no MOVED_TO), so
    # the next file's events came up to 0.5 s late. A rename's two halves arrive together from
    # one syscall; 50 ms is ample to pair them.
    from watchdog.observers import inotify_move_event_grouper

    inotify_move_event_grouper.InotifyMoveEventGrouper.delay = 0.05


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_closed(self, event: FileSystemEvent) -> None:
        self.watcher.mark_complete(Path(str(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        # A rename into staging is how careful writers publish a finished file.
        self.watcher.mark_complete(Path(str(event.dest_path)))

    def on_created(self, event: FileSystemEvent) -> None:
        self.watcher.poke()
