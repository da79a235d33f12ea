"""Sealed tenant files against the real services: a sealed file lands every row; another tenant's
file, a wrong key, a tampered and a truncated file are each refused with a receipt naming the
reason, and the next file still lands. The plaintext is never written under the platform's home."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest
from kit import running_platform, table_rows

from mysimbdp_tasks.core import sealed
from mysimbdp_tasks.security import filekeys

pytestmark = pytest.mark.integration

MARK = "plaintext-marker-7f3a"
STEP = sealed.SEGMENT_BYTES + sealed.TAG_BYTES


def csv_text(prefix: str, n: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["created_utc", "subreddit", "id", "author", "body"])
    for i in range(n):
        writer.writerow(["2015-05-01 05:42:19", "news", f"{prefix}{i}", "alice",
                         f'{MARK} "{prefix}" body {i}, with a comma\nand a second line'])
    return out.getvalue().encode()


def sealed_bytes(plain: bytes, tenant: str, key: bytes) -> bytes:
    out = io.BytesIO()
    sealed.seal(io.BytesIO(plain), out, tenant, key)
    return out.getvalue()


def test_sealed_files_land_or_are_refused_with_a_reason(make_tenant: Any, settings: Any, cassandra_session: Any,
                                                        tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2", encrypted="required")
    home, src = tmp_path / "h", tmp_path / "src"
    src.mkdir()
    key = filekeys.key(home, tenant.name)
    big = csv_text("good", 3000)  # about 5 segments
    assert len(big) > 4 * sealed.SEGMENT_BYTES
    good = sealed_bytes(big, tenant.name, key)
    files = {  # name -> (bytes, status, reason)
        "good.csv.enc": (good, "done", ""),
        "other.csv.enc": (sealed_bytes(csv_text("other", 10), "tenantb", os.urandom(32)), "failed", "wrong_tenant"),
        "wrongkey.csv.enc": (sealed_bytes(csv_text("wk", 10), tenant.name, os.urandom(32)), "failed", "wrong_key"),
        "tampered.csv.enc": (sealed_bytes(csv_text("tamp", 3000), tenant.name, key), "failed", "tampered"),
        "truncated.csv.enc": (sealed_bytes(csv_text("trunc", 3000), tenant.name, key), "failed", "truncated"),
        "plain.csv": (csv_text("plain", 10), "rejected", "not_encrypted"),
    }
    tampered = bytearray(files["tampered.csv.enc"][0])
    tampered[len(tampered) - 2 * STEP] ^= 0x01  # one bit of a segment in the middle
    files["tampered.csv.enc"] = (bytes(tampered), "failed", "tampered")
    truncated = files["truncated.csv.enc"][0]
    header = len(sealed_bytes(b"", tenant.name, key)) - sealed.TAG_BYTES
    files["truncated.csv.enc"] = (truncated[: header + 2 * STEP], "failed", "truncated")  # cut after segment 1

    with running_platform(settings, tenant, home) as p:
        staged = {}
        for name, (content, *_) in files.items():
            (src / name).write_bytes(content)
            staged[name] = p.stage(src / name, f"{tenant.name}-{name}")
        receipts = {name: p.final(staged[name], timeout=300)[1] for name in files}
        (src / "after.csv.enc").write_bytes(sealed_bytes(csv_text("after", 5), tenant.name, key))
        _, after = p.final(p.stage(src / "after.csv.enc", f"{tenant.name}-after.csv.enc"), timeout=300)
        assert p.procs["worker"].poll() is None and p.procs["watcher"].poll() is None

    for name, (_, status, reason) in files.items():
        receipt = receipts[name]
        assert receipt["status"] == status, (name, receipt)
        if reason:
            assert receipt["reason"] == reason, (name, receipt)
    assert receipts["good.csv.enc"]["rows_ok"] == 3000 and receipts["good.csv.enc"]["rows_refused"] == 0
    assert all(receipts[n]["quota_refunded"] for n, f in files.items() if f[1] == "failed")
    assert after["status"] == "done" and after["rows_ok"] == 5

    rows = {r.id: r for r in table_rows(cassandra_session, tenant)}
    # Every row of the sealed files that authenticate, and not one row of the refused ones (a
    # tampered or truncated file is authenticated whole before any of its rows is written).
    assert set(rows) == {f"good{i}" for i in range(3000)} | {f"after{i}" for i in range(5)}
    assert rows["good7"].body == f'{MARK} "good" body 7, with a comma\nand a second line'

    # The plaintext never reached a disk under the platform's home (staging, processing, done,
    # failed, receipts, logs).
    for path in home.rglob("*"):
        if path.is_file() and not path.name.endswith("plain.csv"):  # the refused plaintext file itself
            assert MARK.encode() not in path.read_bytes(), path
