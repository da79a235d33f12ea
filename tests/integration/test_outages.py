"""Supervision and outages, against the real stack: the platform as `mysimbdp up` runs it (the
supervisor and its processes, on a private MYSIMBDP_HOME) rides out Redis, Kafka and Cassandra
being away, and every killed process is restarted by the supervisor; no hand is needed.

Each test stops one service of the local stack for a while (`stack down SERVICE`, then `stack up
SERVICE`), or SIGKILLs platform processes, so they run in the chaos stage.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
from kafka import KafkaProducer
from kit import Supervised, supervised, table_rows

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.errors import StackError
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.services import topics

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

log = logging.getLogger(__name__)


@contextmanager
def away(stack: Settings, service: str) -> Iterator[None]:
    """The local stack's ``service`` stopped for the block, and started again whatever happens."""
    local_stack.down(stack, services=(service,), echo=log.info)
    try:
        yield
    finally:
        try:
            local_stack.up(stack, services=(service,), echo=log.info)
        except StackError:  # a slow start on a loaded machine: the next up waits for it
            local_stack.up(stack, services=(service,), echo=log.info)


@pytest.fixture
def tenant(make_tenant: Any, settings: Settings) -> Tenant:
    """A fresh tenant with files (JSON) and a stream, its topics created."""
    made: Tenant = make_tenant(like="tenant1")
    topics.ensure(settings, [made])
    return made


def _row(i: int, prefix: str) -> dict[str, Any]:
    return {"created_utc": 1500000000 + i, "ups": i, "subreddit": "outages", "id": f"{prefix}{i}",
            "author": f"a{i % 7}", "score": i % 100}


def _file(folder: Path, tenant: Tenant, label: str, rows: int) -> Path:
    path = folder / f"{tenant.name}-{label}.jsonl"
    path.write_text("".join(json.dumps(_row(i, label)) + "\n" for i in range(rows)))
    return path


def _send(settings: Settings, tenant: Tenant, label: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all", linger_ms=5)
    for i in range(count):
        row = _row(i, label)
        producer.send(tenant.ingest_topic, key=row["id"].encode(), value=json.dumps(row).encode())
    producer.flush()
    producer.close()


def _landed(session: Any, tenant: Tenant, expect: int, platform: Supervised, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    found = 0
    while time.monotonic() < deadline:
        found = len(table_rows(session, tenant))
        if found >= expect:
            time.sleep(2)  # anything beyond the expected would show up now
            return len(table_rows(session, tenant))
        time.sleep(1)
    raise TimeoutError(f"{found} of {expect} rows after {timeout} s\n{platform.files.logs()}")


def _done(platform: Supervised, name: str, rows: int, timeout: float = 300) -> None:
    _, receipt = platform.files.final(name, timeout)
    assert (receipt["status"], receipt["rows_ok"], receipt["rows_refused"]) == ("done", rows, 0), receipt


def _states(*names: str, start: str) -> Callable[[dict[str, dict[str, Any]]], bool]:
    return lambda ps: all(ps[n]["state"].startswith(start) for n in names)


def _pids(shown: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {name: p["pid"] for name, p in shown.items()}


@pytest.mark.timeout(600)
def test_redis_away_for_20_s_stops_no_process_and_files_staged_during_and_after_land(
        stack: Settings, settings: Settings, tenant: Tenant, cassandra_session: Any, tmp_path: Path) -> None:
    with supervised(settings, [tenant], tmp_path / "home") as platform:
        before = platform.all_running()
        with away(stack, "redis"):
            gone = time.monotonic()
            during = platform.files.stage(_file(tmp_path, tenant, "during", 200))
            platform.wait_for("the watcher shows it waits for Redis", _states("watcher", start="waiting for redis"))
            time.sleep(max(0.0, 20 - (time.monotonic() - gone)))
        after = platform.files.stage(_file(tmp_path, tenant, "after", 300))
        _done(platform, during, 200)
        _done(platform, after, 300)
        assert _landed(cassandra_session, tenant, 500, platform, 60) == 500
        now = platform.all_running()
        assert _pids(now) == _pids(before)  # nothing died, nothing was restarted
        assert all(p["restarts"] == 0 for p in now.values()), now
        waited = (tmp_path / "home" / "logs" / "watcher.log").read_text().count("waiting for redis")
        assert waited == 1  # logged once for the outage, not once per retry


@pytest.mark.timeout(600)
def test_kafka_away_at_start_the_processes_wait_and_messages_sent_once_it_is_back_land(
        stack: Settings, settings: Settings, tenant: Tenant, cassandra_session: Any, tmp_path: Path) -> None:
    platform = Supervised(settings, [tenant], tmp_path / "home")
    bridge = f"bridge-{tenant.name}"
    try:
        with away(stack, "kafka"):
            platform.up()
            # Each notices when its first connection gives up (kafka-python bootstraps for 30 s).
            platform.wait_for("the bridge, monitor and manager wait for Kafka",
                              _states(bridge, "monitor", "manager", start="waiting for kafka"), 180)
            waiting = platform.processes()
        back = platform.all_running(180)
        assert _pids(back) == _pids(waiting) and all(p["restarts"] == 0 for p in back.values()), back
        _send(settings, tenant, "m", 300)
        assert _landed(cassandra_session, tenant, 300, platform, 240) == 300
    finally:
        platform.down()


@pytest.mark.timeout(1200)
def test_cassandra_away_for_two_minutes_mid_file_and_mid_stream_loses_nothing(
        stack: Settings, settings: Settings, tenant: Tenant, tmp_path: Path) -> None:
    # Small chunks: the file is cut into several chunk tasks, some of them caught by the outage.
    with supervised(settings, [tenant], tmp_path / "home", extra_env={"MYSIMBDP_CHUNK_MB": "0.25"}) as platform:
        platform.all_running()
        _send(settings, tenant, "before", 1000)
        name = platform.files.stage(_file(tmp_path, tenant, "file", 20000))
        processing = tmp_path / "home" / "processing" / tenant.name
        deadline = time.monotonic() + 120
        while not any(processing.glob("*")) and time.monotonic() < deadline:
            time.sleep(0.2)  # admitted: the outage starts with the file in flight
        with away(stack, "cassandra"):
            _send(settings, tenant, "during", 1000)
            time.sleep(120)
        _done(platform, name, 20000, timeout=600)
        # A session of its own: the shared one's driver backs off for minutes before reconnecting.
        cluster, session = db.connect(stack)
        try:
            assert _landed(session, tenant, 22000, platform, 600) == 22000
        finally:
            cluster.shutdown()
        platform.all_running()


def _family(home: Path) -> dict[str, list[int]]:
    """The platform's processes running for ``home``, by sub-command, pool children apart."""
    found: dict[str, list[int]] = {}
    for proc in psutil.process_iter(["cmdline", "environ", "ppid"]):
        try:
            cmd, env = proc.info["cmdline"] or [], proc.info["environ"] or {}
        except psutil.Error:
            continue
        if "mysimbdp_tasks.cli" not in cmd or env.get("MYSIMBDP_HOME") != str(home):
            continue
        args = cmd[cmd.index("mysimbdp_tasks.cli") + 1:]
        try:
            parent = psutil.Process(proc.info["ppid"]).cmdline()
        except psutil.Error:
            parent = []
        in_pool = "mysimbdp_tasks.cli" in parent and parent[parent.index("mysimbdp_tasks.cli") + 1:][:1] == ["worker"]
        kind = "pool child" if in_pool else " ".join(args[:3])
        found.setdefault(kind, []).append(proc.pid)
    return found


@pytest.mark.timeout(600)
def test_every_kind_of_killed_process_is_restarted_and_a_killed_supervisor_is_replaced_without_duplicates(
        settings: Settings, tenant: Tenant, cassandra_session: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    with supervised(settings, [tenant], home) as platform:
        before = platform.all_running()
        kinds = ["watcher", "monitor", "manager", f"bridge-{tenant.name}", f"worker-{tenant.name}"]
        for name in kinds:
            os.kill(before[name]["pid"], signal.SIGKILL)  # the worker: its pool's main process only
        restarted = platform.wait_for("each killed process running again, one restart counted", lambda ps: all(
            ps[n]["state"] == "running" and ps[n]["restarts"] == 1 and ps[n]["pid"] != before[n]["pid"]
            for n in kinds))
        # The restarted processes work: a file and messages land.
        name = platform.files.stage(_file(tmp_path, tenant, "after", 100))
        _send(settings, tenant, "m", 100)
        _done(platform, name, 100)
        assert _landed(cassandra_session, tenant, 200, platform, 180) == 200

        supervisor = json.loads(platform.cli("status", "--json").stdout)["supervisor"]["pid"]
        os.kill(supervisor, signal.SIGKILL)
        platform.up()  # a new supervisor adopts the running processes
        adopted = platform.all_running()
        assert _pids(adopted) == _pids(restarted)
        family = _family(home)
        assert {k: len(v) for k, v in family.items() if k != "pool child"} == {
            "supervise --concurrency 2": 1, "watch": 1, "monitor --tenant " + tenant.name: 1,
            "manager --tenant " + tenant.name: 1, "bridge --tenant " + tenant.name: 1,
            "worker --tenant " + tenant.name: 1}, family
        pool = psutil.Process(adopted[f"worker-{tenant.name}"]["pid"]).children()
        assert sorted(family["pool child"]) == sorted(p.pid for p in pool)  # no orphan of the killed pool
