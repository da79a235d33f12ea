"""Files pinned at admission, charged once, and taken only from their owner (real Redis, Cassandra, workers)."""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from kit import Platform, table_rows

from mysimbdp_tasks.batch import claims, folders
from mysimbdp_tasks.batch.watcher import Watcher
from mysimbdp_tasks.core import filenames
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.services.quotas import Quotas
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = pytest.mark.integration

HEADER = b"created_utc,subreddit,id,author,body\n"


def _rows(first: int, count: int) -> bytes:
    return b"".join(b"1420070400,pinned,id%d,someone,body %d\n" % (i, i) for i in range(first, first + count))


def _stage(home: Path, name: str, data: bytes, sub: str = "") -> Path:
    folder = home / "staging" / sub if sub else home / "staging"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _watcher(settings: Settings, client: Any) -> Watcher:
    return Watcher(settings, client, Dispatch(make_app(settings)), stable_seconds=0)


@pytest.mark.timeout(60)
def test_a_claim_recovered_after_a_crash_is_charged_once(make_tenant: Any, settings: Settings, redis_client: Any,
                                                         tmp_path: Path) -> None:
    local = dataclasses.replace(settings, home=tmp_path / "home")
    tenant = make_tenant(provision=False)
    watcher = _watcher(local, redis_client)
    name, data = f"{tenant.name}-crash.csv", HEADER + _rows(0, 3)
    staged = _stage(local.home, name, data)
    # What a watcher did before dying: claim the file, then admit it (charged), and no more.
    ingest_id = uuid.uuid4().hex
    claim_dir = local.home / "processing" / claims.CLAIMS
    claim_dir.mkdir(parents=True, exist_ok=True)
    claims.write_note(claim_dir / f"{ingest_id}{claims.CLAIM_NOTE}", {"name": name, "folder": ""})
    os.rename(staged, claim_dir / filenames.disk_name(ingest_id, name))
    quotas = Quotas(redis_client)
    first = quotas.admit_file(tenant.name, tenant, name, len(data), ingest_id=ingest_id)
    assert first.admitted and quotas.usage(tenant.name) == {"files": 1, "bytes": len(data), "messages": 0}

    assert watcher.recover() == 1  # the restarted watcher finishes the claim
    assert (local.home / "processing" / tenant.name / filenames.disk_name(ingest_id, name)).exists()
    assert quotas.usage(tenant.name) == {"files": 1, "bytes": len(data), "messages": 0}  # not twice
    again = quotas.admit_file(tenant.name, tenant, name, len(data), ingest_id=ingest_id)
    assert again == first  # the first verdict, its day and usage, charging nothing
    redis_client.delete(tenant.batch_queue)


@pytest.mark.timeout(60)
def test_a_claim_whose_note_is_lost_is_refused_not_given_to_the_tenant_its_name_names(
        make_tenant: Any, settings: Settings, redis_client: Any, tmp_path: Path) -> None:
    """Only the note says which tenant's folder a claimed file came from. Without it (the disk was
    full when it was written, then the watcher died), the name may name any tenant: the file is
    refused with a receipt, and no tenant is charged or written to."""
    local = dataclasses.replace(settings, home=tmp_path / "home")
    owner, named = make_tenant(provision=False), make_tenant(provision=False)
    watcher = _watcher(local, redis_client)
    for name in (f"{named.name}-payload.csv", f"{named.name}__x.csv"):
        staged = _stage(local.home, name, HEADER + _rows(0, 3), sub=owner.name)
        ingest_id = uuid.uuid4().hex
        claim_dir = local.home / "processing" / claims.CLAIMS
        claim_dir.mkdir(parents=True, exist_ok=True)
        os.rename(staged, claim_dir / filenames.disk_name(ingest_id, name))  # claimed, with no note
        assert watcher.recover() == 1
        [receipt] = (local.home / folders.REJECTED / folders.UNKNOWN_TENANT_DIR).glob(f"{ingest_id}*.receipt.json")
        assert json.loads(receipt.read_text())["status"] == "rejected"
    for t in (owner, named):
        assert Quotas(redis_client).usage(t.name) == {"files": 0, "bytes": 0, "messages": 0}
        assert redis_client.llen(t.batch_queue) == 0
        assert not (local.home / "processing" / t.name).exists()


@pytest.mark.timeout(60)
def test_owned_tenant_folders_take_only_their_owners_files(make_tenant: Any, settings: Settings,
                                                           redis_client: Any, tmp_path: Path) -> None:
    mine, theirs, unmapped = (make_tenant(provision=False) for _ in range(3))
    uid = os.getuid()
    local = dataclasses.replace(settings, home=tmp_path / "home", flat_staging=False,
                                staging_owners=((mine.name, uid), (theirs.name, uid + 1)))
    watcher = _watcher(local, redis_client)
    data = HEADER + _rows(0, 1)
    expected = {
        _stage(local.home, "a.csv", data, sub=mine.name): ("admitted", ""),
        _stage(local.home, "b.csv", data, sub=theirs.name): ("wrong_owner", f"uid {uid + 1}"),
        _stage(local.home, "c.csv", data, sub=unmapped.name): ("owner_not_configured", "MYSIMBDP_STAGING_OWNERS"),
        _stage(local.home, f"{mine.name}-flat.csv", data): ("flat_staging_disabled", "staging/<tenant>/"),
    }
    for path, (reason, limit) in expected.items():
        outcome = watcher.take(path)
        assert outcome is not None and outcome.reason == reason, (path, outcome)
        if reason != "admitted":
            receipt = json.loads(folders.receipt_path(outcome.location).read_text())
            assert receipt["status"] == "rejected" and receipt["reason"] == reason and receipt["limit"] == limit
            assert outcome.location.exists()  # kept, never deleted
    assert Quotas(redis_client).usage(mine.name)["files"] == 1
    redis_client.delete(mine.batch_queue)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_file_grown_or_replaced_after_admission_reads_only_what_was_admitted(
        make_tenant: Any, settings: Settings, redis_client: Any, cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2")
    platform = Platform(settings, tenant, tmp_path / "h")
    watcher = _watcher(platform.settings, redis_client)
    grown = watcher.take(_stage(platform.home, f"{tenant.name}-grown.csv", HEADER + _rows(0, 5)))
    replaced = watcher.take(_stage(platform.home, f"{tenant.name}-replaced.csv", HEADER + _rows(100, 5)))
    assert grown is not None and replaced is not None and grown.status == replaced.status == "admitted"
    # After admission, before any worker reads them: one grows through its open name, one is swapped.
    with open(grown.location, "ab") as f:
        f.write(_rows(10, 1000))
    swap = replaced.location.with_name(".swap")
    swap.write_bytes(HEADER + _rows(100, 5))
    os.replace(swap, replaced.location)
    platform.start_worker()
    try:
        _, done = platform.final(grown.file)
        _, failed = platform.final(replaced.file)
    finally:
        platform.stop()
    assert done["status"] == "done" and done["rows_ok"] == 5 and done["bytes"] == len(HEADER + _rows(0, 5))
    assert "grew" in done["note"] and "admitted bytes were read" in done["note"]
    assert failed["status"] == "failed" and failed["reason"] == "file_changed" and failed["rows_ok"] == 0
    assert "replaced" in failed["errors"][0]["detail"] and failed["quota_refunded"] is True
    assert sorted(r.id for r in table_rows(cassandra_session, tenant)) == sorted(f"id{i}" for i in range(5))
