"""Two hosts sharing one tenant's work, simulated on one machine.

Each "host" is a MYSIMBDP_HOME of its own (its run and log folders) and a node name of its own;
both mount the same data folders (MYSIMBDP_DATA_DIR), as a shared file system would, and reach the
same Redis, Kafka and Cassandra. What is shared and what is not: docs/deploy.md.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import Platform, table_rows
from streamkit import encoded, send, wait_rows, wait_written

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.cluster, pytest.mark.slow]

HOSTS = ("host-a", "host-b")
# Celery's line for each task a pool finished: counted per host, from that host's own log.
TASK_DONE = re.compile(r"Task mysimbdp\.\w+\[[^]]+\] succeeded")
ASSIGNED = re.compile(r"node=(\S+) partitions assigned \[([0-9, ]*)\]")


def _hosts(settings: Settings, tenant: Tenant, root: Path, **env: str) -> list[Platform]:
    shared = root / "shared-data"
    return [Platform(settings, tenant, root / host, concurrency=1,
                     extra_env={"MYSIMBDP_DATA_DIR": str(shared), "MYSIMBDP_NODE_NAME": host, **env})
            for host in HOSTS]


@pytest.fixture
def hosts() -> Iterator[list[Platform]]:
    started: list[Platform] = []
    yield started
    for p in started:
        p.stop()


def _log(p: Platform, name: str) -> str:
    path = p.home / "logs" / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _receipts(data: Path, tenant: Tenant) -> list[Path]:
    return [r for stage in (folders.DONE, folders.FAILED, folders.REJECTED)
            for r in (data / stage / tenant.name).glob(f"*{folders.RECEIPT_SUFFIX}")]


@pytest.mark.timeout(600)
def test_watchers_and_pools_on_two_hosts_take_each_file_once_and_share_the_work(
        make_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path, hosts: list[Platform]) -> None:
    tenant = make_tenant(like="tenant1")
    a, b = _hosts(settings, tenant, tmp_path, MYSIMBDP_CHUNK_MB="0.05")
    assert a.data == b.data and a.home != b.home
    hosts.extend([a, b])
    for p in hosts:
        p.start()  # a watcher and a pool on each host, both watching the one staging folder
    keys: set[tuple[str, str, int]] = set()
    names = []
    for i in range(8):
        src = generate("tenant1", 150 * 1024, tmp_path / f"src{i}.json", seed=100 + i, fmt="json")
        names.append(a.stage(src.path, f"{tenant.name}-part{i}.json"))
        for rec in _records(src.path):
            keys.add((rec["subreddit"], rec["id"], int(rec["ups"])))
    for name in names:
        _, receipt = a.final(name, timeout=400)
        assert receipt["status"] == "done", receipt
        b.check_alive()

    # Each file was taken by exactly one watcher: one receipt each, one admission each over both hosts.
    receipts = _receipts(a.data, tenant)
    assert len(receipts) == len(names), sorted(r.name for r in receipts)
    admitted = Counter(m for p in hosts for m in re.findall(r"ingest=(\w+) bytes=\d+ admitted", _log(p, "watcher")))
    assert len(admitted) == len(names) and set(admitted.values()) == {1}, admitted
    # Every row landed, once per key.
    rows = table_rows(cassandra_session, tenant)
    assert {(r.subreddit, r.id, r.ups) for r in rows} == keys and len(rows) == len(keys)
    # Both hosts' pools ran the tenant's tasks (counted from each host's own worker log).
    done = {p.env["MYSIMBDP_NODE_NAME"]: len(TASK_DONE.findall(_log(p, "worker"))) for p in hosts}
    assert all(n > 0 for n in done.values()), done
    assert sum(done.values()) >= len(names)


def _records(path: Path) -> list[dict[str, Any]]:
    import json
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if text.lstrip().startswith("[") else [json.loads(x) for x in text.splitlines() if x]


def _assignments(p: Platform) -> list[set[int]]:
    return [{int(x) for x in parts.split(",") if x.strip()} for _, parts in ASSIGNED.findall(_log(p, "bridge"))]


def _wait_split(hosts: list[Platform], partitions: int, timeout: float = 120) -> None:
    """Wait until the bridges' latest assignments are disjoint, non-empty and cover every partition."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = [(_assignments(p) or [set()])[-1] for p in hosts]
        if all(latest) and set().union(*latest) == set(range(partitions)) and sum(map(len, latest)) == partitions:
            return
        for p in hosts:
            p.check_alive()
        time.sleep(0.5)
    raise TimeoutError(f"bridges did not split the partitions: {[_assignments(p) for p in hosts]}")


def _wait_all(p: Platform, partitions: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (_assignments(p) or [set()])[-1] == set(range(partitions)):
            return
        p.check_alive()
        time.sleep(0.5)
    raise TimeoutError(f"partitions did not move to the survivor: {_assignments(p)}\n{p.logs()}")


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_two_bridges_split_partitions_and_a_killed_ones_move_without_loss(
        stream_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path, hosts: list[Platform]) -> None:
    tenant = stream_tenant("tenant1")
    a, b = _hosts(settings, tenant, tmp_path)
    hosts.extend([a, b])
    for p in hosts:
        p.start_worker()
        p.start_bridge()
    _wait_split(hosts, tenant.partitions)

    base = {"tenant": tenant.name, "created_utc": 1430458939, "subreddit": "s", "author": "a", "score": 1}
    msgs = [{**base, "id": f"m{i}", "ups": i} for i in range(3000)]
    send(settings, tenant, encoded(msgs[:1500]))
    wait_rows(cassandra_session, tenant, 300, a)
    b.kill("bridge")  # SIGKILL mid-stream: what it fetched but did not commit is fetched again by a
    send(settings, tenant, encoded(msgs[1500:]))
    _wait_all(a, tenant.partitions)
    rows = wait_rows(cassandra_session, tenant, len(msgs), a)
    wait_written(settings, tenant, a)
    assert sorted((r.id, r.ups) for r in rows) == sorted((m["id"], m["ups"]) for m in msgs)
