"""A full disk holds files with a reason, loses nothing, and they finish once there is space again.

``MYSIMBDP_HOME`` is a real tmpfs of 2 MiB (``mount -t tmpfs``, so the test needs root; it is
skipped elsewhere with the reason, and fails in CI). Two files are staged, then a ballast file takes
the last free byte, then the platform starts: a good CSV file is admitted and its rows land, but its
``done`` receipt cannot be written; a text file is refused (``wrong_file_type``), but its
``rejected`` receipt cannot be written either. The test shows that the watcher and the worker pool
stay up and log the reason naming each file, that both files are held (still on disk, byte for
byte, without a receipt), and that once the ballast is deleted both finish with their receipts, the
good file's rows in the table and the quota counting it once. Process and event logs live outside
the small disk, as they would on a separate log volume.
"""

from __future__ import annotations

import csv
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kit import DATA, Platform, table_rows

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.quotas import Quotas
from producers.batch import wrangle

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]

DISK = "2m"
NO_SPACE = os.strerror(28)  # ENOSPC: "No space left on device"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A mounted tmpfs of 2 MiB, unmounted at the end."""
    point = tmp_path / "disk"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0755", "tmpfs", str(point)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = f"cannot mount a tmpfs (needs root): {done.stderr.strip() or done.returncode}"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"the full-disk test must run in CI: {why}", pytrace=False)
        pytest.skip(why)
    try:
        yield point
    finally:
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)


def _fill(path: Path) -> int:
    """Write ``path`` until the disk is full; return its size."""
    block = b"\0" * 65536
    with path.open("wb", buffering=0) as fh:
        while True:
            try:
                fh.write(block)
            except OSError as exc:
                if exc.errno != 28:
                    raise
                block = block[: len(block) // 2]  # take the last few bytes too
                if not block:
                    break
    return path.stat().st_size


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _held(platform: Platform, name: str) -> list[Path]:
    """Files of the staged name ``name`` anywhere under processing/ (a claim or an admitted file)."""
    safe = name.replace("/", "_")
    return [p for p in (platform.home / folders.PROCESSING).rglob(f"*{safe}") if p.is_file()]


def _receipts(platform: Platform) -> list[Path]:
    return [p for stage in (folders.DONE, folders.FAILED, folders.REJECTED)
            for p in (platform.home / stage).rglob(f"*{folders.RECEIPT_SUFFIX}")]


def _wait_logged(platform: Platform, log: str, *parts: str, timeout: float = 240) -> str:
    """Wait until one line of ``logs/<log>`` holds every one of ``parts``; return it."""
    deadline = time.monotonic() + timeout
    path = platform.home / "logs" / log
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in text.splitlines():
            if all(p in line for p in parts):
                return line
        assert all(platform.alive().values()), platform.logs()
        time.sleep(0.5)
    raise TimeoutError(f"no line with {parts} in {log} after {timeout} s; logs:\n{platform.logs()}")


@pytest.mark.timeout(600)
def test_full_disk_holds_files_with_a_reason_and_finishes_them_once_freed(make_tenant: Any, settings: Settings,
                                                                         cassandra_session: Any, redis_client: Any,
                                                                         small_disk: Path, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    good = wrangle("tenant2", DATA / "1000rows.csv", inputs)
    text = inputs / "notes.txt"
    text.write_text("not a CSV file of this tenant\n" * 100)
    logs = tmp_path / "logs"
    logs.mkdir()
    (small_disk / "logs").symlink_to(logs)  # logs on another volume: the full disk is the data's
    platform = Platform(settings, tenant, small_disk)
    good_name = platform.stage(good.path, f"{tenant.name}-good.csv")
    text_name = platform.stage(text, f"{tenant.name}-notes.txt")
    ballast = small_disk / "ballast"
    try:
        _fill(ballast)
        platform.start()
        # Held: each process names the file and the reason, and goes on running.
        _wait_logged(platform, "worker.log", good_name, NO_SPACE)
        _wait_logged(platform, "watcher.log", text_name, NO_SPACE)
        time.sleep(3)
        assert all(platform.alive().values()), platform.logs()
        assert not _receipts(platform)
        held_good, held_text = _held(platform, good_name), _held(platform, text_name)
        assert [_digest(p) for p in held_good] == [_digest(good.path)], held_good  # nothing lost or cut
        assert [_digest(p) for p in held_text] == [_digest(text)], held_text
        assert not list((small_disk / folders.STAGING).iterdir())

        ballast.unlink()  # space again
        done, receipt = platform.final(good_name, timeout=300)
        rejected, refusal = platform.final(text_name, timeout=300)
    finally:
        platform.stop()
    assert (receipt["status"], receipt["rows_ok"], receipt["rows_refused"]) == ("done", good.records, 0), receipt
    assert done.parent == small_disk / folders.DONE / tenant.name and _digest(done) == _digest(good.path)
    assert (refusal["status"], refusal["reason"]) == ("rejected", "wrong_file_type"), refusal
    assert rejected.parent == small_disk / folders.REJECTED / tenant.name and _digest(rejected) == _digest(text)
    assert not [p for p in (small_disk / folders.PROCESSING).rglob("*") if p.is_file()]
    usage = Quotas(redis_client).usage(tenant.name)
    assert (usage["files"], usage["bytes"]) == (1, good.bytes)  # the good file counted once, not refunded
    with good.path.open(newline="", encoding="utf-8") as fh:
        keys = {(r["subreddit"], r["id"], r["author"]) for r in csv.DictReader(fh)}
    assert {(r.subreddit, r.id, r.author) for r in table_rows(cassandra_session, tenant)} == keys
