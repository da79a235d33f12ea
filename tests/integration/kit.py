"""Helpers for integration tests: tenants of their own, and platform processes on a private folder tree.

Each test tenant gets a unique name and keyspace, so tests never see each other's rows, quota
counters or queues; each platform runs its watcher and worker pool as real processes with a
``MYSIMBDP_HOME`` of its own.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import redis
from cassandra import DriverException
from cassandra.cluster import NoHostAvailable, Session

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core import procs, tenants
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import provisioning
from mysimbdp_tasks.services.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("MYSIMBDP_SAMPLES", ROOT.parent / "shared" / "data" / "reddit"))
SHIPPED = json.loads((ROOT / "tenants" / "tenants.json").read_text())


def new_tenant(client: redis.Redis, session: Session | None, settings: Settings, like: str = "tenant2",
               **overrides: Any) -> Tenant:
    """Register (and, given a session, provision) a fresh tenant shaped like a shipped one."""
    name = "t" + uuid.uuid4().hex[:10]
    raw = copy.deepcopy(SHIPPED[like])
    raw.pop("quality", None)  # tests count the rows landed: quality rules only where a test gives them
    raw["namespace"] = f"test_{name}"
    raw.update(overrides)
    tenant = tenants.parse({name: raw})[name]
    if session is not None:
        provisioning.apply(session, [tenant], settings.replication, echo=lambda _: None)
    Registry(client).save(tenant)
    return tenant


class Platform:
    """A watcher and one tenant's worker pool, as real processes, on a private MYSIMBDP_HOME."""

    def __init__(self, settings: Settings, tenant: Tenant, home: Path, concurrency: int = 2,
                 extra_env: dict[str, str] | None = None) -> None:
        self.settings = dataclasses.replace(settings, home=home)
        self.tenant = tenant
        self.home = home
        self.concurrency = concurrency
        # Private data folders unless the test shares them (MYSIMBDP_DATA_DIR in extra_env).
        self.env = {**os.environ, "MYSIMBDP_HOME": str(home), "MYSIMBDP_DATA_DIR": str(home), **(extra_env or {})}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.data = Path(self.env["MYSIMBDP_DATA_DIR"])
        folders.Layout(self.data).ensure()
        (home / "logs").mkdir(parents=True, exist_ok=True)

    def start_process(self, name: str, *args: str) -> None:
        """Start ``mysimbdp <args>`` as the process ``name``, logging to ``logs/<name>.log``."""
        with open(self.home / "logs" / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "mysimbdp_tasks.cli", *args],
                                                env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def start_worker(self) -> None:
        self.start_process("worker", "worker", "--tenant", self.tenant.name, "--concurrency", str(self.concurrency))

    def start_bridge(self) -> None:
        self.start_process("bridge", "bridge", "--tenant", self.tenant.name)

    def start_watcher(self) -> None:
        self.start_process("watcher", "watch", "--stable-seconds", "1")

    def start(self) -> Platform:
        self.start_worker()
        self.start_watcher()
        return self

    def kill_worker(self) -> None:
        """SIGKILL the whole pool: the main worker process and every child, with no warning."""
        self.kill("worker")

    def kill(self, name: str) -> None:
        """SIGKILL the process ``name`` ("worker", "watcher", "bridge") and its whole process group.

        Each process leads a session of its own (``start_new_session``), so the group is exactly it
        and its children: a worker pool dies at once with every prefork child, as on a power cut.
        """
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def restart(self, name: str) -> None:
        """Start ``name`` again, as a supervisor would after it died."""
        {"worker": self.start_worker, "watcher": self.start_watcher, "bridge": self.start_bridge}[name]()

    def alive(self) -> dict[str, bool]:
        return {name: proc.poll() is None for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            procs.stop_child(proc, 30)
        self.procs.clear()

    # -- files -----------------------------------------------------------------------------
    def stage(self, src: Path, name: str | None = None) -> str:
        """Publish ``src`` in staging the careful way (temporary name, then rename)."""
        name = name or src.name
        staging = self.data / "staging"
        tmp = staging / f".{name}.part"
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, staging / name)
        return name

    def final(self, name: str, timeout: float = 120) -> tuple[Path, dict[str, Any]]:
        """Wait until the file ``name`` has a receipt in done/, failed/ or rejected/."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for stage in (folders.DONE, folders.FAILED, folders.REJECTED):
                for owner in (self.tenant.name, folders.UNKNOWN_TENANT_DIR):
                    # Final names carry the ingest id: the receipt is found by the staged name.
                    for receipt in folders.find_receipts(self.data / stage / owner, name):
                        path = receipt.with_name(receipt.name.removesuffix(folders.RECEIPT_SUFFIX))
                        return path, json.loads(receipt.read_text())
            self.check_alive()
            time.sleep(0.3)
        raise TimeoutError(f"{name} has no receipt after {timeout} s; logs:\n{self.logs()}")

    def wait_for_a_chunk(self, client: redis.Redis, timeout: float = 180) -> None:
        """Until a chunk of a file in processing has finished: the file is under way, not done."""
        from mysimbdp_tasks.batch.jobs import Jobs

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path in (self.home / "processing" / self.tenant.name).glob("*__*"):
                if Jobs(client).results(self.tenant.name, path.name.split("__", 1)[0]):
                    return
            self.check_alive()
            time.sleep(0.1)
        raise TimeoutError(f"no chunk finished in {timeout} s; logs:\n{self.logs()}")

    def check_alive(self) -> None:
        """Raise, with the logs, if any process started here has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; logs:\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        out = []
        for log in sorted((self.home / "logs").glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(out)


def joining_env(settings: Settings, home: Path) -> dict[str, str]:
    """What a platform process on ``home`` needs to join the secure stack of ``settings``: its
    endpoints, secure mode, and the stack's CA and secrets (linked, as a deployment would mount them)."""
    for folder in ("tls", "secrets"):
        (home / folder).symlink_to(settings.home / folder)
    return {"MYSIMBDP_SECURE": "1", "MYSIMBDP_REDIS_URL": f"redis://{settings.redis_host}:{settings.redis_port}/0",
            "MYSIMBDP_KAFKA_BOOTSTRAP": settings.kafka_bootstrap_str,
            "MYSIMBDP_CASSANDRA_HOSTS": ",".join(f"{h}:{p}" for h, p in settings.cassandra_hosts)}


@contextmanager
def running_platform(settings: Settings, tenant: Tenant, home: Path, **kwargs: Any) -> Iterator[Platform]:
    platform = Platform(settings, tenant, home, **kwargs).start()
    try:
        yield platform
    finally:
        platform.stop()


def table_rows(session: Session, tenant: Tenant) -> list[Any]:
    cols = ", ".join(f'"{c}"' for c in tenant.column_names)
    return list(session.execute(f'SELECT {cols} FROM "{tenant.namespace}"."{tenant.table_name}"', timeout=120))


class Supervised:
    """``mysimbdp up --tenant T…`` on a private MYSIMBDP_HOME, as an operator runs it: the supervisor
    and every process it keeps (watcher, monitor, manager, the tenants' worker pools and bridges)."""

    def __init__(self, settings: Settings, tenants: list[Tenant], home: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.tenants = tenants
        self.home = home
        self.files = Platform(settings, tenants[0], home)  # staging and receipts of the first tenant
        self.env = {**self.files.env, **(extra_env or {})}

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *args], env=self.env, text=True,
                              capture_output=True, timeout=timeout, check=False)

    def up(self) -> Supervised:
        done = self.cli("up", *[a for t in self.tenants for a in ("--tenant", t.name)])
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{self.files.logs()}"
        return self

    def down(self) -> None:
        self.cli("down")

    def processes(self) -> dict[str, dict[str, Any]]:
        """``mysimbdp status --json``: name -> {pid, state, uptime_s, restarts, last_exit}."""
        done = self.cli("status", "--json", timeout=60)
        assert done.returncode == 0, done.stderr
        return {p["name"]: p for p in json.loads(done.stdout)["processes"]}

    def wait_for(self, what: str, check: Any, timeout: float = 120) -> dict[str, dict[str, Any]]:
        """Poll the status until ``check(processes)`` holds; fail naming ``what`` and showing the status."""
        deadline = time.monotonic() + timeout
        shown: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            shown = self.processes()
            if check(shown):
                return shown
            time.sleep(1)
        raise TimeoutError(f"not within {timeout} s: {what}\nstatus: {json.dumps(shown, indent=1)}\n"
                           f"{self.files.logs()}")

    def all_running(self, timeout: float = 120) -> dict[str, dict[str, Any]]:
        return self.wait_for("every process running", lambda ps: ps and all(
            p["state"] == "running" for p in ps.values()), timeout)

    def assert_none_restarted(self, before: dict[str, dict[str, Any]]) -> None:
        """Every process of ``before`` (an :meth:`all_running`) still runs with the same pid. If one
        was restarted, the failure shows its last exit and its log (the traceback it died with)."""
        after = self.all_running()
        changed = sorted(n for n in before if after.get(n, {}).get("pid") != before[n]["pid"])
        if not changed:
            return
        shown = []
        for name in changed:
            text = (self.home / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
            shown.append(f"--- {name}: last exit {after.get(name, {}).get('last_exit')}\n" + "\n".join(text[-120:]))
        raise AssertionError(f"restarted: {', '.join(changed)}\n" + "\n".join(shown))


@contextmanager
def supervised(settings: Settings, tenants: list[Tenant], home: Path, **kwargs: Any) -> Iterator[Supervised]:
    platform = Supervised(settings, tenants, home, **kwargs).up()
    try:
        yield platform
    finally:
        platform.down()


def platform_processes_under(folder: Path) -> list[int]:
    """Watchers and workers whose MYSIMBDP_HOME lies inside ``folder``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if "mysimbdp_tasks.cli" not in " ".join(proc.info.get("cmdline") or ()):
            continue
        try:
            home = proc.environ().get("MYSIMBDP_HOME", "")
        except psutil.Error:
            continue
        if home.startswith(str(folder)):
            found.append(proc.pid)
    return found


def wait_until_answering(session: Session, limit_s: float = 180.0) -> None:
    """Until ``session`` answers again. After a restart of Cassandra the driver tries the node again
    only on its reconnection schedule (up to 10 s apart); until then every query fails at once with
    ``NoHostAvailable``, in this test and in the next ones that share the session."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            session.execute("SELECT release_version FROM system.local", timeout=10)
            return
        except (DriverException, NoHostAvailable):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
