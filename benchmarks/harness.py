"""A private platform for benchmarks: a fresh tenant, and a watcher and worker pool of its own.

Everything a benchmark starts is its own: the tenant has a unique name and keyspace (so its rows,
quota counters and queues are nobody else's), and the watcher and worker run as real ``mysimbdp``
processes with a ``MYSIMBDP_HOME`` of their own (so they never touch another home's staging).
Only the services (Redis, Kafka, Cassandra) are shared.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn, Self

import redis
from cassandra.cluster import Cluster, Session

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core import procs, tenants
from mysimbdp_tasks.core.errors import MysimbdpError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.security import identities
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import provisioning
from mysimbdp_tasks.services.registry import Registry

from .errors import BenchmarkError, PlatformError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_TENANTS = ROOT / "tenants" / "tenants.json"
READY_MARK = "ready."  # Celery's last start-up line: "<name>@<host> ready."



def fresh_tenant(like: str, prefix: str = "bench", shipped: Path = SHIPPED_TENANTS,
                 overrides: Mapping[str, Any] | None = None) -> Tenant:
    """A tenant shaped like the shipped ``like`` (schema, limits), with a unique name and keyspace.

    ``overrides`` replaces settings of the copy, e.g. ``{"max_file_size": 200}``.
    """
    raw = json.loads(shipped.read_text(encoding="utf-8"))
    if like not in raw:
        raise ValueError(f"{shipped}: no tenant {like!r} to copy; have {', '.join(sorted(raw))}")
    name = "b" + uuid.uuid4().hex[:10]  # no '-' or '_': the watcher reads the tenant from the name's prefix
    config = copy.deepcopy(raw[like])
    if shipped == SHIPPED_TENANTS:  # every row lands, as measured before rules existed
        config.pop("quality", None)  # (benchmarks/data/quality-tenants.json has rules that only tag)
    config["namespace"] = f"{prefix}_{name}"
    config["description"] = f"benchmark tenant shaped like {like}"
    config.update(overrides or {})
    return tenants.parse({name: config}, source="benchmark")[name]


def provision(session: Session, settings: Settings, tenant: Tenant) -> None:
    provisioning.apply(session, [tenant], settings.replication, echo=lambda _: None)
    if settings.secure:  # its Cassandra role, Redis user and Kafka user, as `tenants apply` makes them
        from mysimbdp_tasks.security import access, kafka_access, logins

        client = logins.redis_client(settings, identities.ADMIN)
        try:
            access.grant(settings, session, client, [tenant])
        finally:
            client.close()
        kafka_access.grant(settings, [tenant.name])


def register(client: redis.Redis, tenant: Tenant) -> None:
    Registry(client).save(tenant)


def discard(client: redis.Redis | None, session: Session | None, tenant: Tenant) -> None:
    """Take a benchmark tenant out of the registry and drop its keyspace."""
    if client is not None:
        Registry(client).forget(tenant.name)
    if session is not None:
        provisioning.drop_data(session, tenant)


@dataclass(frozen=True)
class Receipt:
    path: Path
    data: dict[str, Any]
    seen_at: float  # wall clock when the benchmark saw it (polling), for a sanity check of finished_at

    @property
    def status(self) -> str:
        return str(self.data.get("status"))


SECURE_SHARED = ("secrets", "tls")  # what a private home takes from a secure stack's home


class Platform:
    """A watcher and one tenant's worker pool as real processes, on a private MYSIMBDP_HOME."""

    def __init__(self, settings: Settings, tenant: Tenant, home: Path, concurrency: int = 2,
                 env: Mapping[str, str] | None = None) -> None:
        self.settings = dataclasses.replace(settings, home=home)
        self.tenant = tenant
        self.home = home
        self.concurrency = concurrency
        # Its data folders too are its own, whatever MYSIMBDP_DATA_DIR the caller's environment holds.
        self.env = {**os.environ, "MYSIMBDP_HOME": str(home), "MYSIMBDP_DATA_DIR": str(home), **(env or {})}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        folders.Layout(home).ensure()
        if settings.secure:  # a secure stack: its processes log in with the stack's secrets and trust its CA
            for name in SECURE_SHARED:
                if not (home / name).exists():
                    (home / name).symlink_to(settings.home / name)
            self.env["MYSIMBDP_SECURE"] = "1"
        self.logs_dir.mkdir(parents=True, exist_ok=True)

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def staging(self) -> Path:
        return self.home / folders.STAGING

    @property
    def worker_pid(self) -> int:
        return self.procs["worker"].pid

    # -- processes ---------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> Self:
        """Start the worker pool and the watcher; return once the pool is ready for tasks."""
        try:
            self._spawn("worker", "worker", "--tenant", self.tenant.name, "--concurrency", str(self.concurrency))
            self._spawn("watcher", "watch", "--stable-seconds", "1")
            deadline = time.monotonic() + timeout
            log = self.logs_dir / "worker.log"
            while READY_MARK not in log.read_text(errors="replace"):
                self.check_alive()
                if time.monotonic() > deadline:
                    raise PlatformError(f"the worker pool was not ready after {timeout} s; logs:\n{self.tails()}")
                time.sleep(0.1)
        except BaseException:
            self.stop()  # no half-started platform is left behind, also on Ctrl-C
            raise
        return self

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.logs_dir / f"{name}.log", "ab") as log:
            # A session of its own, so stop() can signal the whole family (pool children too).
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "mysimbdp_tasks.cli", *args], env=self.env,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                cwd=ROOT)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise PlatformError(f"{name} exited with {proc.returncode}; logs:\n{self.tails()}")

    def stop(self, timeout: float = 30) -> None:
        """The watcher first (nothing new is admitted), then the pool; SIGKILL what outlives ``timeout``."""
        for name in sorted(self.procs, key=lambda n: n != "watcher"):
            procs.stop_child(self.procs.pop(name), timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- files -------------------------------------------------------------------------------
    def stage(self, src: Path, name: str) -> float:
        """Publish ``src`` in staging as ``name`` the careful way; return the wall clock of the rename.

        The file is copied under a hidden ``.part`` name, so the timed step is only the atomic rename
        that makes it visible, as a producer does it. A copy, not a hard link: the watcher refuses
        files with more than one link (they could change after admission).
        """
        part = self.staging / f".{name}.part"
        shutil.copyfile(src, part)
        renamed_at = time.time()
        os.replace(part, self.staging / name)
        return renamed_at

    def wait_receipt(self, name: str, timeout: float, poll: float = 0.05) -> Receipt:
        """The receipt of ``name`` once it is in done/, failed/ or rejected/."""
        places = [self.home / stage / owner
                  for stage in (folders.DONE, folders.FAILED, folders.REJECTED)
                  for owner in (self.tenant.name, folders.UNKNOWN_TENANT_DIR)]
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + 1.0
        while True:
            for folder in places:
                for receipt in folders.find_receipts(folder, name):  # final names carry the ingest id
                    seen = time.time()
                    return Receipt(receipt, json.loads(receipt.read_text(encoding="utf-8")), seen)
            now = time.monotonic()
            if now > deadline:
                raise PlatformError(f"{name}: no receipt after {timeout} s; logs:\n{self.tails()}")
            if now > next_check:
                self.check_alive()
                next_check = now + 1.0
            time.sleep(poll)

    def tails(self, lines: int = 30) -> str:
        out = []
        for log in sorted(self.logs_dir.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log}\n" + "\n".join(text))
        return "\n".join(out)


def connect(settings: Settings) -> tuple[redis.Redis, Cluster, Session]:
    """Redis (pinged) and a Cassandra session for a benchmark; BenchmarkError if Redis is unreachable."""
    client = redis.Redis.from_url(identities.redis_url(settings))
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        raise BenchmarkError(f"cannot reach Redis at {settings.redis_url} ({exc}); "
                             "start the local stack with `mysimbdp stack up`") from exc
    cluster, session = db.connect(settings, request_timeout=120)
    return client, cluster, session


def work_folder(parent: Path | None, prefix: str) -> Path:
    """A folder of the run's own with a ``data`` folder in it, even inside ``parent`` (removed afterwards
    unless the run keeps it)."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    (workdir / "data").mkdir()
    return workdir


def publish(doc: dict[str, Any], table: str, summary: str, json_out: Path, plot_out: Path | None,
            render: Callable[[dict[str, Any], Path], object]) -> None:
    """Write a benchmark's JSON, print its table and summary, and draw its plot."""
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print()
    print(table)
    print()
    print(summary)
    print(f"\nresults: {json_out}")
    if plot_out is not None:
        render(doc, plot_out)
        print(f"plot: {plot_out}")


def positive_ints(text: str) -> tuple[int, ...]:
    """``100,1000,3000`` -> (100, 1000, 3000), sorted and without repeats (an argparse type)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise argparse.ArgumentTypeError(f"expected positive counts separated by commas, got {text!r}")
    return tuple(sorted({int(part) for part in parts}))


def run_meta(options: Any, started: float, load_before: tuple[float, ...]) -> dict[str, Any]:
    """The head of every result document: when, how long, on what host, with which options (a dataclass)."""
    return {
        "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
                 "load_avg_before": [round(x, 2) for x in load_before],
                 "load_avg_after": [round(x, 2) for x in os.getloadavg()]},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()},
    }


def run_cli(main: Callable[[Settings, Sequence[str]], int]) -> NoReturn:
    """``python -m benchmarks.X``: run ``main`` on the environment's settings; errors as one line, exit 1."""
    try:
        sys.exit(main(Settings.from_env(), sys.argv[1:]))
    except MysimbdpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
