"""Hostile files, messages and reports against the real stack: each ends in a receipt, a dead letter
or a logged refusal with a reason; the watcher, bridge and monitor stay alive, and good input after
them lands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kit import Platform, table_rows

from mysimbdp_tasks.batch import folders
from mysimbdp_tasks.control import monitor
from mysimbdp_tasks.core import filenames
from mysimbdp_tasks.core.reports import Report
from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.core.tenants import Tenant
from mysimbdp_tasks.services import topics

pytestmark = pytest.mark.integration

HEADER = b"created_utc,subreddit,id,author,body\n"


def _row(key: str) -> bytes:
    return HEADER + f"1430458939,poison,{key},author,body of {key}\n".encode()


def _publish(staging: Path, name: str | bytes, data: bytes) -> None:
    """Write under a hidden name, then link it into place: a same-named file waiting there is kept."""
    folder = os.fsencode(staging)
    tmp = os.path.join(folder, b".pub-" + uuid.uuid4().hex.encode() + b".part")
    with open(tmp, "wb") as f:
        f.write(data)
    target = os.path.join(folder, os.fsencode(name))
    while True:
        try:
            os.link(tmp, target)
            break
        except FileExistsError:
            time.sleep(0.05)  # the watcher has not claimed the previous one yet
    os.unlink(tmp)


def _start_watcher_without_dac_override(p: Platform) -> None:
    # As root the watcher would read any folder; without these capabilities a mode-000 folder is
    # unreadable to it, as it is to an ordinary user.
    caps = "-dac_override,-dac_read_search"
    with open(p.home / "logs" / "watcher.log", "ab") as log:
        p.procs["watcher"] = subprocess.Popen(
            ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", sys.executable, "-m",
             "mysimbdp_tasks.cli", "watch", "--stable-seconds", "1"],
            env=p.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_hostile_files_each_end_with_a_receipt_and_a_good_file_after_them_lands(
        make_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2", max_number_of_files=100)
    t = tenant.name
    p = Platform(settings, tenant, tmp_path / "home")
    staging = p.home / "staging"
    (staging / t).mkdir(parents=True)
    _publish(staging / t, f"{t}-inside.csv", _row("inside"))  # a file in the tenant's subfolder
    (staging / "unreadable").mkdir()
    (staging / "unreadable" / f"{t}-x.csv").write_bytes(_row("x"))
    (staging / "unreadable").chmod(0)

    long255 = f"{t}-" + "L" * (255 - len(t) - 1 - 4) + ".csv"
    long210 = f"{t}-" + "M" * (210 - len(t) - 1 - 4) + ".csv"
    landing: dict[str | bytes, str] = {  # name as staged -> the row key it carries
        long255: "long255", long210: "long210",
        f"{t}-caf".encode() + b"\xe9-latin1.csv": "latin1",
        f"{t}-".encode() + b"\xff\xfe.csv": "badbytes",
        f"{t}-line\nbreak\x1b[31m.csv": "control",
        f"{t}-quote\"'`$(x).csv": "quotes",
    }
    nobody = f"nobody{uuid.uuid4().hex[:6]}-x.csv"
    outside = tmp_path / "elsewhere.csv"
    outside.write_bytes(_row("linked"))
    refused: dict[str, str] = {
        f"{t}-hardlink.csv": "hard_linked", f"{t}-symlink.csv": "not_a_regular_file",
        f"{t}-fifo.csv": "not_a_regular_file", nobody: "unknown_tenant",
        f"{t}-wrong.exe": "wrong_file_type",
    }
    p.start_worker()
    _start_watcher_without_dac_override(p)
    try:
        for name, key in landing.items():
            _publish(staging, name, _row(key))
        os.link(outside, staging / f"{t}-hardlink.csv")
        (staging / f"{t}-symlink.csv").symlink_to(outside)
        os.mkfifo(staging / f"{t}-fifo.csv")
        for name in (nobody, f"{t}-wrong.exe"):
            _publish(staging, name, _row("refused"))
        for name in landing:
            path, receipt = p.final(os.fsdecode(name))
            assert receipt["status"] == "done" and receipt["rows_ok"] == 1, (name, receipt)
            assert receipt["file"] == filenames.text(os.fsdecode(name))  # the staged name, as text
            assert len(path.name.encode()) <= filenames.DISK_NAME_BYTES
        for name, reason in refused.items():
            path, receipt = p.final(name)
            assert receipt["status"] == "rejected" and receipt["reason"] == reason, (name, receipt)
        assert outside.read_bytes() == _row("linked")  # the other name of the hard link is untouched
        _, receipt = p.final(f"{t}-inside.csv")
        assert receipt["status"] == "done"
        _publish(staging, f"{t}-good-after.csv", _row("good-after"))
        _, receipt = p.final(f"{t}-good-after.csv")
        assert receipt["status"] == "done" and receipt["rows_ok"] == 1
        log = (p.home / "logs" / "watcher.log").read_text(errors="replace")
        assert "unreadable" in log and "cannot be read" in log  # the bad subfolder was named, then skipped
        assert p.procs["watcher"].poll() is None
    finally:
        (staging / "unreadable").chmod(0o755)
        p.stop()
    keys = {r.id for r in table_rows(cassandra_session, tenant)}
    assert keys == {*landing.values(), "inside", "good-after"}


def _publish_many(args: tuple[str, str, int]) -> None:
    staging, name, i = args
    _publish(Path(staging), name, _row(f"same-{i}"))


def test_twenty_same_name_files_from_concurrent_processes_all_survive_in_done(
        make_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path) -> None:
    tenant = make_tenant(like="tenant2", max_number_of_files=100)
    name = f"{tenant.name}-same.csv"
    p = Platform(settings, tenant, tmp_path / "home", concurrency=2)
    p.start()
    p.start_process("watcher2", "watch", "--stable-seconds", "1")  # two watchers race for every file
    try:
        with ProcessPoolExecutor(5) as pool:
            list(pool.map(_publish_many, [(str(p.home / "staging"), name, i) for i in range(20)]))
        done = p.home / folders.DONE / tenant.name
        deadline = time.monotonic() + 240
        while len(folders.find_receipts(done, name)) < 20 and time.monotonic() < deadline:
            p.check_alive()
            time.sleep(0.5)
        receipts = [json.loads(r.read_text()) for r in folders.find_receipts(done, name)]
    finally:
        p.stop()
    assert len(receipts) == 20, p.logs()
    assert len({r["ingest_id"] for r in receipts}) == 20 and all(r["status"] == "done" for r in receipts)
    data = [f for f in done.iterdir() if not f.name.endswith(folders.RECEIPT_SUFFIX)]
    assert sorted(f.read_bytes() for f in data) == sorted(_row(f"same-{i}") for i in range(20))
    assert {r.id for r in table_rows(cassandra_session, tenant)} == {f"same-{i}" for i in range(20)}


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def test_poison_messages_are_dead_lettered_and_the_bridge_goes_on(
        make_tenant: Any, settings: Settings, cassandra_session: Any, tmp_path: Path) -> None:
    tenant: Tenant = make_tenant(like="tenant1")
    topics.ensure(settings, [tenant])
    good = {"tenant": tenant.name, "created_utc": 1430458939, "ups": 1, "subreddit": "s", "author": "a", "score": 1}
    poison: list[tuple[bytes | None, str]] = [
        (None, "bad_json"),  # a tombstone
        (_deep(50_000), "bad_json"),  # RecursionError while parsing
        (b'{"id": "big", "ups": ' + b"9" * 5000 + b"}", "bad_json"),  # ValueError: too many digits
        (b"\xff\xfe\x00 not utf-8", "bad_json"),
        (json.dumps({**good, "id": "huge", "ups": 10**40}).encode(), "bad_value"),  # beyond bigint
        (json.dumps({**good, "id": "t", "tenant": {"nested": [1]}}).encode(), "wrong_tenant"),
        (json.dumps({**good, "id": "nan", "ups": float("nan")}).encode(), "bad_value"),
    ]
    p = Platform(settings, tenant, tmp_path / "home")
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all")
    try:
        p.start_worker()
        p.start_bridge()
        producer.send(tenant.ingest_topic, key=b"k", value=json.dumps({**good, "id": "before"}).encode())
        for value, _ in poison:
            producer.send(tenant.ingest_topic, key=b"k", value=value)
        producer.send(tenant.ingest_topic, key=b"k", value=json.dumps({**good, "id": "after"}).encode())
        producer.flush()
        deadline = time.monotonic() + 180
        rows: list[Any] = []
        while len(rows) < 2 and time.monotonic() < deadline:
            p.check_alive()
            rows = table_rows(cassandra_session, tenant)
            time.sleep(0.5)
        consumer = KafkaConsumer(tenant.dead_topic, bootstrap_servers=settings.kafka_bootstrap_str,
                                 auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000)
        dead: list[Any] = []
        while len(dead) < len(poison) and time.monotonic() < deadline:
            dead.extend(consumer)
        consumer.close()
        assert p.procs["bridge"].poll() is None
    finally:
        producer.close()
        p.stop()
    assert {r.id for r in rows} == {"before", "after"}
    assert sorted(dict(d.headers)["reason"].decode() for d in dead) == sorted(r for _, r in poison)
    assert all(dict(d.headers)["detail"] for d in dead)


def test_hostile_reports_are_refused_and_the_next_report_still_decides(settings: Settings) -> None:
    # A private topic: the platform's report topic is shared with every running monitor.
    topic = f"test.reports.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_str)
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    wire = {"source": "bridge", "tenant": "t1", "window_start": 1.0, "window_end": 2.0, "messages": 5,
            "bytes": 5, "avg_ms": 1.0, "max_ms": 1.0, "errors": 0, "lag": 10**6}
    hostile: list[bytes | None] = [
        None, _deep(50_000), b'{"lag": ' + b"7" * 5000 + b"}",
        json.dumps({**wire, "lag": 10**30}).encode(), b'{"source": "bridge", "window_start": NaN}',
        json.dumps({**wire, "tenant": ["t1"]}).encode(), b"\xff\xfe",
        json.dumps({**wire, "avg_ms": 1e308 * 10}).encode().replace(b"Infinity", b"1e999"),
    ]
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_str, acks="all")
    for value in [*hostile, json.dumps(wire).encode()]:
        producer.send(topic, value=value, key=b"t1")
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_str, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    records = list(consumer)
    consumer.close()
    assert len(records) == len(hostile) + 1
    from kit import SHIPPED

    from mysimbdp_tasks.core import tenants as tenant_model

    t1 = tenant_model.parse({"t1": SHIPPED["tenant1"]})["t1"]
    evaluator = monitor.Evaluator(lambda: {"t1": t1})
    decisions = [monitor.intake(evaluator, r) for r in records]
    assert decisions[:-1] == [None] * len(hostile)
    last = decisions[-1]
    assert last is not None and last.action == "grow" and Report.from_json(records[-1].value).lag == 10**6
