"""Provisioning against the real Cassandra, Kafka and Redis, through the `mysimbdp tenants` commands."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.registry import Registry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((ROOT / "tenants" / "tenants.json").read_text())


def mysimbdp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mysimbdp_tasks.cli", *args], capture_output=True, text=True,
                          timeout=180, check=False)


def key_columns(session: Any, keyspace: str, table: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rows = list(session.execute("SELECT column_name, kind, position FROM system_schema.columns "
                                "WHERE keyspace_name = %s AND table_name = %s", (keyspace, table)))

    def of_kind(kind: str) -> tuple[str, ...]:
        return tuple(r.column_name for r in sorted((r for r in rows if r.kind == kind), key=lambda r: r.position))

    return of_kind("partition_key"), of_kind("clustering")


def columns(session: Any, keyspace: str, table: str) -> dict[str, str]:
    rows = session.execute("SELECT column_name, type FROM system_schema.columns "
                           "WHERE keyspace_name = %s AND table_name = %s", (keyspace, table))
    return {r.column_name: r.type for r in rows}


def keyspace_exists(session: Any, name: str) -> bool:
    return session.execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                           (name,)).one() is not None


def test_apply_shipped_file_creates_keyspaces_tables_and_keys(cassandra_session: Any, settings: Settings) -> None:
    result = mysimbdp("tenants", "apply", str(ROOT / "tenants" / "tenants.json"))
    assert result.returncode == 0, result.stderr
    assert key_columns(cassandra_session, "tenant1", "comment_votes") == (("subreddit", "id"), ("ups",))
    assert key_columns(cassandra_session, "tenant2", "comments") == (("subreddit", "id"), ("author",))
    for ks in ("tenant1", "tenant2"):
        assert columns(cassandra_session, ks, names.BATCH_METRICS_TABLE)
        assert columns(cassandra_session, ks, names.STREAM_METRICS_TABLE)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    try:
        per_tenant = (names.ingest_topic, names.dead_topic, names.reports_topic)
        wanted = {names.REPORTS_TOPIC, *(f(t) for t in ("tenant1", "tenant2") for f in per_tenant)}
        assert wanted <= set(admin.list_topics())
    finally:
        admin.close()
    listed = json.loads(mysimbdp("tenants", "list", "--json").stdout)
    shown = {r["tenant"]: r for r in listed}
    assert shown["tenant1"]["active"] and shown["tenant1"]["provisioned"]
    assert shown["tenant2"]["provisioned"]


def _tenant_file(tmp_path: Path, name: str, raw: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({name: raw}))
    return path


def test_reapply_is_a_no_op_new_column_is_added_and_changes_of_type_or_key_are_refused(
        cassandra_session: Any, redis_client: Any, tmp_path: Path) -> None:
    name = "p" + uuid.uuid4().hex[:10]
    raw = copy.deepcopy(SHIPPED["tenant2"]) | {"namespace": f"test_{name}"}
    ks = raw["namespace"]
    try:
        assert mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, name, raw))).returncode == 0
        before = columns(cassandra_session, ks, "comments")
        again = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, name, raw)))
        assert again.returncode == 0 and columns(cassandra_session, ks, "comments") == before

        wider = copy.deepcopy(raw)
        wider["schema"]["score"] = "int"
        added = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, name, wider)))
        assert added.returncode == 0 and "adding column score int" in added.stdout
        assert columns(cassandra_session, ks, "comments")["score"] == "int"

        retyped = copy.deepcopy(wider)
        retyped["schema"]["score"] = "text"
        refused = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, name, retyped)))
        assert refused.returncode != 0
        assert "column score is int in Cassandra but text in the config" in refused.stderr

        rekeyed = copy.deepcopy(wider)
        rekeyed["schema"]["key"] = "((subreddit), id)"
        refused = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, name, rekeyed)))
        assert refused.returncode != 0 and "primary key" in refused.stderr
        assert key_columns(cassandra_session, ks, "comments") == (("subreddit", "id"), ("author",))
        assert columns(cassandra_session, ks, "comments")["score"] == "int"  # nothing changed

        # remove keeps the data; --drop-data deletes the keyspace
        removed = mysimbdp("tenants", "remove", name)
        assert removed.returncode == 0 and not Registry(redis_client).is_active(name)
        assert keyspace_exists(cassandra_session, ks)
        listed = {r["tenant"]: r for r in json.loads(mysimbdp("tenants", "list", "--json").stdout)}
        assert listed[name]["active"] is False and listed[name]["provisioned"] is True
        assert mysimbdp("tenants", "remove", name, "--drop-data").returncode == 0
        assert not keyspace_exists(cassandra_session, ks)
    finally:
        Registry(redis_client).forget(name)


def test_check_and_apply_of_a_broken_file_create_nothing(cassandra_session: Any, tmp_path: Path) -> None:
    name = "p" + uuid.uuid4().hex[:10]
    raw = copy.deepcopy(SHIPPED["tenant2"]) | {"namespace": f"test_{name}", "max_number_of_files": 0}
    raw["schema"]["key"] = "((subreddit, id), autor)"
    path = _tenant_file(tmp_path, name, raw)
    for command in ("check", "apply"):
        result = mysimbdp("tenants", command, str(path))
        assert result.returncode != 0
        assert f"{name}.schema.key" in result.stderr and "autor" in result.stderr
        assert f"{name}.max_number_of_files" in result.stderr
    assert not keyspace_exists(cassandra_session, f"test_{name}")


def test_a_keyspace_applied_for_one_tenant_is_refused_to_another_and_never_dropped_for_it(
        cassandra_session: Any, redis_client: Any, tmp_path: Path) -> None:
    owner, intruder = ("p" + uuid.uuid4().hex[:10] for _ in range(2))
    ks = f"test_{owner}"
    raw = copy.deepcopy(SHIPPED["tenant2"]) | {"namespace": ks}
    try:
        first = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, owner, raw)))
        assert first.returncode == 0, first.stderr
        # A separate apply run (the file-level check cannot see the first tenant) claims the same keyspace.
        second = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, intruder, raw)))
        assert second.returncode != 0
        assert f"keyspace {ks!r} belongs to tenant {owner!r}" in second.stderr
        assert intruder not in Registry(redis_client).all()
        # Removing the owner with --drop-data still works; removing an unknown intruder drops nothing.
        refused = mysimbdp("tenants", "remove", intruder, "--drop-data")
        assert refused.returncode != 0
        assert keyspace_exists(cassandra_session, ks)
        dropped = mysimbdp("tenants", "remove", owner, "--drop-data")
        assert dropped.returncode == 0, dropped.stderr
        assert not keyspace_exists(cassandra_session, ks)
        # Once the owner is gone, the keyspace is free for a new tenant.
        again = mysimbdp("tenants", "apply", str(_tenant_file(tmp_path, intruder, raw)))
        assert again.returncode == 0, again.stderr
    finally:
        for name in (owner, intruder):
            Registry(redis_client).forget(name)
        cassandra_session.execute(f"DROP KEYSPACE IF EXISTS {ks}", timeout=60)
