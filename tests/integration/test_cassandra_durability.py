"""The stack's Cassandra runs with the ingest settings of stack/tuning.py, and they keep writes durable.

The durability test SIGKILLs the stack's Cassandra, so it is a chaos test: it runs in the stage of
its own where no other test uses the stack meanwhile.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import time
import uuid
from datetime import UTC, datetime

import pytest
from cassandra.cluster import Session
from cassandra.concurrent import execute_concurrent_with_args
from kit import wait_until_answering

from mysimbdp_tasks import stack as local_stack
from mysimbdp_tasks.core.cql import ident
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import cassandra as db
from mysimbdp_tasks.stack.cassandra import Cassandra
from mysimbdp_tasks.stack.tuning import DEFAULTS

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

ROWS = 3_000
_NUMBER = re.compile(r"^(\d+)\s*([A-Za-z/]*)$")


def running_settings(session: Session) -> dict[str, str]:
    return {r.name: r.value for r in session.execute("SELECT name, value FROM system_views.settings")}


def same_value(configured: str, reported: str | None) -> bool:
    """``configured`` (cassandra.yaml text) as Cassandra reports it: "32MiB" == "32MiB", "16" == "16",
    a nested value by the class names in it (e.g. LZ4Compressor, TrieMemtable)."""
    if reported is None:
        return False
    if configured.startswith("\n"):
        classes = re.findall(r"class_name:\s*(\w+)", configured)
        return all(name in reported for name in classes)
    return configured.strip().lower().replace(" ", "") == reported.strip().lower().replace(" ", "")


def reported(running: dict[str, str], key: str) -> str | None:
    """A setting as the node reports it; a nested one (``memtable``) under ``key.<child>`` names."""
    if key in running:
        return running[key]
    children = [f"{name}={value}" for name, value in running.items() if name.startswith(key + ".")]
    return "; ".join(children) or None


def test_cassandra_runs_with_the_ingest_settings(cassandra_session: Session) -> None:
    running = running_settings(cassandra_session)
    differ = {key: (want, reported(running, key)) for key, want in DEFAULTS.yaml_settings().items()
              if not same_value(want, reported(running, key))}
    assert not differ, f"configured (cassandra.yaml) vs running (system_views.settings): {differ}"
    # Durable: a commit log synced periodically or per group/batch of writes, never switched off.
    assert running["commitlog_sync"] in ("periodic", "group", "batch")


def sync_window_s(running: dict[str, str]) -> float:
    """How long an acknowledged write may wait in memory before the commit log reaches the disk."""
    if running["commitlog_sync"] != "periodic":
        return 0.0
    match = _NUMBER.match(running["commitlog_sync_period"].strip())
    assert match, f"unexpected commitlog_sync_period {running['commitlog_sync_period']!r}"
    value, unit = int(match.group(1)), match.group(2).lower()
    return value / 1000 if unit in ("ms", "") else value


@pytest.mark.slow
@pytest.mark.chaos
def test_rows_written_before_a_sigkill_are_there_after_the_restart(stack: Settings, make_tenant: object,
                                                                   cassandra_session: Session) -> None:
    tenant = make_tenant(like="tenant2")  # type: ignore[operator]
    ks, table = ident(tenant.namespace), ident(tenant.table_name)
    durable = cassandra_session.execute(
        "SELECT durable_writes FROM system_schema.keyspaces WHERE keyspace_name = %s", (tenant.namespace,)).one()
    assert durable.durable_writes is True
    insert = cassandra_session.prepare(
        f"INSERT INTO {ks}.{table} (created_utc, subreddit, id, author, body) VALUES (?, ?, ?, ?, ?)")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    marker = uuid.uuid4().hex
    sent = {(f"sub{i % 7}", f"id{i}", f"author{i}"): f"body {i} {marker}, \"quoted\"\nline" for i in range(ROWS)}
    results = execute_concurrent_with_args(
        cassandra_session, insert, [(when, sub, id_, author, body) for (sub, id_, author), body in sent.items()],
        concurrency=50, raise_on_first_error=True)
    assert all(ok for ok, _ in results)

    # Every acknowledged write is on disk within one sync window (commitlog_sync_period): wait it out
    # twice over, with a margin for a busy machine, then kill Cassandra without any chance to flush.
    time.sleep(2 * sync_window_s(running_settings(cassandra_session)) + 5)
    svc = Cassandra(stack)
    pid = svc.live_pid()
    assert pid is not None, "the stack's Cassandra is not running from this MYSIMBDP_HOME"
    os.kill(pid, signal.SIGKILL)
    while svc.live_pid() is not None:
        time.sleep(0.2)
    local_stack.up(stack, ["cassandra"], echo=log.info)
    wait_until_answering(cassandra_session)

    cluster, session = db.connect(stack)
    try:
        rows = session.execute(f"SELECT subreddit, id, author, body, created_utc FROM {ks}.{table}")
        landed = {(r.subreddit, r.id, r.author): r.body for r in rows}
        times = {r.created_utc.replace(tzinfo=UTC) for r in
                 session.execute(f"SELECT created_utc FROM {ks}.{table}")}
    finally:
        cluster.shutdown()
    missing = sent.keys() - landed.keys()
    assert not missing, f"{len(missing)} of {ROWS} rows lost by the SIGKILL, e.g. {sorted(missing)[:3]}"
    assert landed == sent
    assert times == {when}
