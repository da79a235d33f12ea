"""Batch slots and tenant priorities against the real services: with one slot, a high-priority
tenant's small file runs before a low-priority tenant's large file admitted earlier, and a killed
worker's slot is given back when its lease lapses, so another tenant's file runs meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from kit import DATA, Platform

from mysimbdp_tasks.batch import slots
from mysimbdp_tasks.batch.jobs import Jobs
from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from producers.generate import generate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SLOT_KEYS = (names.SLOTS_HELD, names.SLOTS_QUEUED, names.SLOTS_QUEUED_JOBS, names.SLOTS_GRANTED, names.SLOTS_RUNNING,
             names.SLOTS_LAPSED)


@pytest.fixture(autouse=True)
def no_slots_held(redis_client: redis.Redis) -> Any:
    """The slots are platform-wide: each test starts with none held or queued (a failed run's left)."""
    redis_client.delete(*SLOT_KEYS)
    yield
    redis_client.delete(*SLOT_KEYS)


def status(env: dict[str, str], tenant: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", "status", "--tenant", tenant, "--json"],
                          env=env, text=True, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def wait_until(check: Callable[[], Any], platform: Platform, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, f"{what} not seen in {timeout} s; logs:\n{platform.logs()}"
        platform.check_alive()
        time.sleep(0.3)
    return got


def queued_files(client: redis.Redis) -> list[str]:
    return [j["file"] for j in slots.queued(client)]


@pytest.mark.timeout(900)
def test_with_one_slot_a_high_priority_small_file_runs_before_a_low_priority_large_file_queued_first(
        make_tenant: Any, settings: Settings, redis_client: Any, tmp_path: Path) -> None:
    low = make_tenant(like="tenant2", priority="low")
    high = make_tenant(like="tenant2", priority="high")
    large = generate("tenant2", 4 * 1024 * 1024, tmp_path / "large.csv", seed=31)
    # One slot; a lease long enough that the slot stays held while no worker runs yet.
    env = {"MYSIMBDP_BATCH_SLOTS": "1", "MYSIMBDP_SLOT_LEASE_SECONDS": "600", "MYSIMBDP_CHUNK_MB": "1"}
    home = tmp_path / "home"
    p = Platform(settings, low, home, extra_env=env)
    p_high = Platform(settings, high, home, extra_env=env)  # same home: only its receipts are read through it
    try:
        p.start_watcher()
        holder = p.stage(DATA / "1000rows2.csv", f"{low.name}-holder.csv")
        wait_until(lambda: slots.held(redis_client) and not queued_files(redis_client), p, "the holder granted")
        big = p.stage(large.path, f"{low.name}-large.csv")
        wait_until(lambda: queued_files(redis_client) == [big], p, "the large file queued")
        small = p.stage(DATA / "1000rows.csv", f"{high.name}-small.csv")
        wait_until(lambda: len(queued_files(redis_client)) == 2, p, "the small file queued")
        # Both wait, visibly, and the later, high-priority one is first in line.
        assert [(q["file"], q["position"], q["priority"]) for q in status(p.env, high.name)["queued"]] == [
            (small, 1, 8)]
        assert [(q["file"], q["position"], q["priority"]) for q in status(p.env, low.name)["queued"]] == [
            (big, 2, 2)]
        p.start_worker()
        p.start_process("worker-high", "worker", "--tenant", high.name, "--concurrency", "1")
        _, held_receipt = p.final(holder, timeout=300)
        _, small_receipt = p_high.final(small, timeout=300)
        _, big_receipt = p.final(big, timeout=480)
    finally:
        p.stop()
    assert [r["status"] for r in (held_receipt, small_receipt, big_receipt)] == ["done"] * 3
    assert small_receipt["rows_ok"] == 1000 and big_receipt["rows_ok"] == large.records
    assert big_receipt["chunks"] > 1  # a large file is still cut into chunks
    # The order the one slot gave: the holder, then the high-priority file, then the large one.
    assert held_receipt["finished_at"] <= small_receipt["started_at"]
    assert small_receipt["finished_at"] <= big_receipt["started_at"]
    assert slots.held(redis_client) == [] and queued_files(redis_client) == []


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_a_killed_workers_slot_is_given_back_when_its_lease_lapses_and_its_file_finishes_later(
        make_tenant: Any, settings: Settings, cassandra_session: Any, redis_client: Any, tmp_path: Path) -> None:
    low = make_tenant(like="tenant2", priority="low")
    high = make_tenant(like="tenant2", priority="high")
    src = generate("tenant2", 6 * 1024 * 1024, tmp_path / "big.csv", seed=32)
    env = {"MYSIMBDP_BATCH_SLOTS": "1", "MYSIMBDP_SLOT_LEASE_SECONDS": "3", "MYSIMBDP_CHUNK_MB": "1"}
    home = tmp_path / "home"
    p = Platform(settings, low, home, concurrency=1, extra_env=env)
    p_high = Platform(settings, high, home, extra_env=env)
    try:
        p.start()
        p.start_process("worker-high", "worker", "--tenant", high.name, "--concurrency", "1")
        big = p.stage(src.path, f"{low.name}-big.csv")

        def a_chunk_done() -> bool:
            return any(Jobs(redis_client).results(low.name, path.name.split("__", 1)[0])
                       for path in (home / "processing" / low.name).glob("*__*"))

        wait_until(a_chunk_done, p, "a chunk of the big file done", timeout=300)
        p.kill_worker()  # the whole pool, SIGKILL: nothing renews the big file's slot any more
        small = p.stage(DATA / "1000rows.csv", f"{high.name}-small.csv")
        _, small_receipt = p_high.final(small, timeout=300)
        # The slot came back while the big file's pool was dead: that file is not done yet.
        assert not list((home / "done" / low.name).glob("*.receipt.json"))
        p.start_worker()
        _, big_receipt = p.final(big, timeout=600)
    finally:
        p.stop()
    assert small_receipt["status"] == "done" and small_receipt["rows_ok"] == 1000
    assert big_receipt["status"] == "done" and big_receipt["rows_ok"] == src.records
    assert big_receipt["finished_at"] > small_receipt["finished_at"]
    table = f'"{low.namespace}"."{low.table_name}"'
    assert cassandra_session.execute(f"SELECT COUNT(*) FROM {table}", timeout=120).one()[0] == src.distinct_keys
    assert slots.held(redis_client) == [] and queued_files(redis_client) == []
