"""Admission against the real Redis: each refusal reason, and no overshoot under concurrency."""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.batch.watcher import Watcher
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import MB
from mysimbdp_tasks.services.dispatch import Dispatch
from mysimbdp_tasks.services.quotas import Quotas
from mysimbdp_tasks.services.registry import Registry
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = pytest.mark.integration


def _admit_many(args: tuple[str, str, int, int]) -> list[bool]:
    """In a separate process: try to admit ``count`` files of ``size`` bytes."""
    redis_url, tenant_name, size, count = args
    import redis

    from mysimbdp_tasks.services.registry import Registry as Reg

    client = redis.Redis.from_url(redis_url)
    quotas = Quotas(client)
    tenant = Reg(client).all()[tenant_name]
    return [quotas.admit_file(tenant_name, tenant, f"{tenant_name}-{os.getpid()}-{i}.csv", size).admitted
            for i in range(count)]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The real services, with a folder tree of this test's own (no running watcher sees it)."""
    return dataclasses.replace(settings, home=tmp_path / "home")


def _race(settings: Settings, tenant_name: str, size: int, processes: int, per_process: int) -> int:
    with ProcessPoolExecutor(processes) as pool:
        results = list(pool.map(_admit_many, [(settings.redis_url, tenant_name, size, per_process)] * processes))
    return sum(sum(r) for r in results)


def test_file_count_limit_holds_under_concurrent_admission(make_tenant: Any, settings: Settings) -> None:
    tenant = make_tenant(provision=False, max_number_of_files=25, max_amount_of_data=1000, max_file_size=10)
    admitted = _race(settings, tenant.name, 1000, processes=8, per_process=10)  # N = 80 > K = 25
    assert admitted == 25


def test_byte_limit_holds_under_concurrent_admission(make_tenant: Any, settings: Settings) -> None:
    # 1 MB per day, files of 100,000 bytes: exactly 10 fit (10.48 would be 11 only by overshooting).
    tenant = make_tenant(provision=False, max_number_of_files=1000, max_amount_of_data=1, max_file_size=1)
    admitted = _race(settings, tenant.name, 100_000, processes=8, per_process=6)  # N = 48
    assert admitted == MB // 100_000


def _stage(settings: Settings, name: str, data: bytes, sub: str = "") -> Path:
    folder = settings.staging / sub if sub else settings.staging
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _receipt(path: Path) -> dict[str, Any]:
    return json.loads(folders.receipt_path(path).read_text())


def test_each_refusal_reason_leaves_the_file_in_rejected_with_a_receipt(make_tenant: Any, settings: Settings,
                                                                        redis_client: Any) -> None:
    tenant = make_tenant(provision=False, max_number_of_files=2, max_amount_of_data=0.002, max_file_size=0.001,
                         file_type=".csv")
    n = tenant.name
    small = b"created_utc,subreddit,id,author,body\n1430458939,a,b,c,d\n"
    cases = {
        f"{n}-wrong.json": (b"[]", "wrong_file_type"),
        f"{n}-big.csv": (b"x" * 2000, "file_too_large"),
        f"zz{n}-nobody.csv": (small, "unknown_tenant"),
        f"{n}-ok1.csv": (small, "admitted"),
        f"{n}-ok2.csv": (small * 10, "admitted"),
        f"{n}-third.csv": (small, "daily_files_exceeded"),
    }
    watcher = Watcher(settings, redis_client, Dispatch(make_app(settings)), stable_seconds=0)
    outcomes = {}
    for name, (data, _) in cases.items():  # one at a time: the order decides which limit is hit
        outcomes[name] = watcher.take(_stage(settings, name, data))
    for name, (_, reason) in cases.items():
        outcome = outcomes[name]
        assert outcome is not None and outcome.reason == reason, (name, outcome)
        if reason != "admitted":
            assert outcome.location.parent.parent == (settings.home / "rejected").resolve()
            receipt = _receipt(outcome.location)
            assert receipt["status"] == "rejected" and receipt["reason"] == reason and receipt["file"] == name
            assert {"limit", "usage", "time", "tenant"} <= set(receipt)
    nobody, big = outcomes[f"zz{n}-nobody.csv"], outcomes[f"{n}-big.csv"]
    assert nobody is not None and big is not None
    assert nobody.location.parent.name == "_unknown"
    assert _receipt(big.location)["limit"] == str(int(0.001 * MB))

    # Bytes: a fresh day for a second tenant whose byte budget is smaller than two files.
    t2 = make_tenant(provision=False, max_number_of_files=10, max_amount_of_data=0.0001, max_file_size=0.0001,
                     file_type=".csv")
    first = watcher.take(_stage(settings, f"{t2.name}-a.csv", small))
    second = watcher.take(_stage(settings, f"{t2.name}-b.csv", small))
    assert first is not None and first.reason == "admitted"
    assert second is not None and second.reason == "daily_bytes_exceeded"


def test_inactive_tenant_symlink_and_wrong_tenant_folder_are_refused(make_tenant: Any, settings: Settings,
                                                                      redis_client: Any, tmp_path: Path) -> None:
    tenant = make_tenant(provision=False)
    other = make_tenant(provision=False)
    watcher = Watcher(settings, redis_client, Dispatch(make_app(settings)), stable_seconds=0)
    outside = tmp_path / "secret.csv"  # outside staging
    outside.write_text("created_utc,subreddit,id,author,body\n")
    link = settings.staging / f"{tenant.name}-link.csv"
    link.symlink_to(outside)
    out = watcher.take(link)
    assert out is not None and out.reason == "not_a_regular_file"
    assert out.location.is_symlink() and outside.exists()  # the link moved, nothing was followed or deleted

    wrong = _stage(settings, f"{other.name}-x.csv", b"a,b\n", sub=tenant.name)
    out = watcher.take(wrong)
    assert out is not None and out.reason == "wrong_tenant"

    Registry(redis_client).deactivate(tenant.name)
    watcher.refresh_tenants()
    out = watcher.take(_stage(settings, f"{tenant.name}-late.csv", b"a,b\n"))
    assert out is not None and out.reason == "tenant_inactive"


def test_concurrent_watchers_take_each_file_once_and_never_overshoot(make_tenant: Any, settings: Settings,
                                                                    redis_client: Any) -> None:
    tenant = make_tenant(provision=False, max_number_of_files=7, max_amount_of_data=100, max_file_size=1)
    names = [f"{tenant.name}-{i}.csv" for i in range(30)]
    for name in names:
        _stage(settings, name, b"created_utc,subreddit,id,author,body\n")
    watchers = [Watcher(settings, redis_client, Dispatch(make_app(settings)), stable_seconds=0) for _ in range(3)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        results = [o for batch in pool.map(lambda w: w.scan(), watchers) for o in batch if o.tenant == tenant.name]
    taken = sorted(o.file for o in results)
    assert taken == sorted(names)  # every file exactly once
    assert sum(o.status == "admitted" for o in results) == 7
    assert {o.reason for o in results if o.status == "rejected"} == {"daily_files_exceeded"}


def test_the_watcher_remembers_only_what_is_in_staging(settings: Settings, redis_client: Any) -> None:
    """Writers' .part files, files in nested folders, and files that left staging by other hands leave
    nothing behind in the one watcher every tenant shares: its memory follows the folder."""
    watcher = Watcher(settings, redis_client, Dispatch(make_app(settings)), stable_seconds=3600)
    folder = settings.staging / "tenant1"
    (folder / "nested").mkdir(parents=True)
    for i in range(2000):  # what a careful producer reports per file before it renames it in
        watcher.mark_complete(folder / f".tenant1-{i}.csv.part")
    files = [folder / f"tenant1-{i}.csv" for i in range(50)]
    for f in files:
        f.write_text("created_utc,subreddit,id,author,body\n")
        watcher.mark_complete(f)
    watcher.mark_complete(folder / "nested" / "tenant1-deep.csv")
    assert sorted(watcher.candidates()) == sorted(files)  # closed: ready, though not quiet for an hour
    assert watcher.remembered() == 50
    for f in files:
        f.unlink()  # taken away by hand before the watcher took them
    assert watcher.candidates() == []
    assert watcher.remembered() == 0
