"""Hostile names, messages and reports: each is refused with a reason, and nothing raises."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core import filenames, tenants
from mysimbdp_tasks.core.reports import Report
from mysimbdp_tasks.core.rows import converter_for
from mysimbdp_tasks.stream.messages import validate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
INGEST_ID = "0123456789abcdef0123456789abcdef"

HOSTILE_NAMES = [
    "tenant1-" + "a" * 247,  # 255 bytes: the longest legal name
    "tenant1-" + "b" * 200 + ".csv",  # its receipt and temporary names would pass 255 bytes
    os.fsdecode(b"tenant1-caf\xe9-latin1.csv"),  # not UTF-8
    os.fsdecode(b"tenant1-\xff\xfe.json"),
    "tenant1-line\nbreak\ttab\x1b[31m.csv",  # control characters, a terminal escape
    "tenant1-" + "é" * 120 + ".csv",  # 248 bytes of two-byte characters
    "..tenant1-hidden.csv",
    "tenant1-quote\"'`$(rm -rf).csv",
    "tenant1-" + "x" * 200 + "." + "y" * 40,  # an "extension" too long to be one
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_every_derived_name_fits_the_file_system_and_is_plain_text(name: str) -> None:
    disk = filenames.disk_name(INGEST_ID, name)
    receipt = disk + ".receipt.json"
    assert len(disk.encode()) <= filenames.DISK_NAME_BYTES
    assert len(receipt.encode()) <= 255 and len(f".receipt-{INGEST_ID}.tmp".encode()) <= 255
    assert disk.startswith(INGEST_ID + "__") and not filenames.safe(name).startswith(".")
    assert "/" not in disk and disk.isprintable()
    filenames.text(name).encode("utf-8")  # never a lone surrogate


@pytest.mark.parametrize(("name", "suffix"), [
    ("tenant1-" + "z" * 300 + ".jsonl", ".jsonl"),
    (os.fsdecode(b"tenant2-\xff" * 30 + b".csv"), ".csv"),
    ("tenant2-comments.csv", ".csv"),
    ("tenant1-" + "a" * 300 + ".csv.enc", ".csv.enc"),  # a sealed file: its format is the inner suffix
    ("tenant1-" + "a" * 300 + ".ndjson.gz", ".ndjson.gz"),
])
def test_the_extension_survives_shortening_so_the_format_is_still_known(name: str, suffix: str) -> None:
    assert filenames.safe(name).endswith(suffix)


def test_a_plain_name_keeps_its_form_and_an_odd_one_shows_its_bytes() -> None:
    assert filenames.safe("tenant2-export_2015.csv") == "tenant2-export_2015.csv"
    assert filenames.text(os.fsdecode(b"tenant1-caf\xe9.csv")) == "tenant1-caf\\xe9.csv"
    assert filenames.text("a\nb") == "a\\x0ab"


def test_two_files_of_one_name_get_two_disk_names() -> None:
    assert filenames.disk_name("a" * 32, "x.csv") != filenames.disk_name("b" * 32, "x.csv")


# --- messages -------------------------------------------------------------------------------

def _tenant1() -> tenants.Tenant:
    return tenants.parse({"tenant1": json.loads((ROOT / "tenants" / "tenants.json").read_text())["tenant1"]})[
        "tenant1"]


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


HOSTILE_MESSAGES: list[tuple[bytes | None, str]] = [
    (None, "bad_json"),  # a tombstone
    (_deep(100_000), "bad_json"),  # RecursionError in json.loads
    (b'{"ups": ' + b"9" * 5000 + b"}", "bad_json"),  # ValueError: too many digits for int()
    (b"\xff\xfe not utf-8", "bad_json"),
    (b"[1, 2, 3]", "not_an_object"),
    (b'{"tenant": {"deep": [1, 2]}}', "wrong_tenant"),
    (b"NaN", "not_an_object"),
    (b"", "bad_json"),
]


@pytest.mark.parametrize(("value", "reason"), HOSTILE_MESSAGES)
def test_a_hostile_message_is_refused_with_a_reason_and_never_raises(value: bytes | None, reason: str) -> None:
    tenant = _tenant1()
    data, got, detail = validate(tenant, converter_for(tenant), value)
    assert data is None and got == reason and detail


def test_a_good_message_still_passes() -> None:
    tenant = _tenant1()
    row = {"created_utc": 1430458939, "ups": 3, "subreddit": "a", "id": "b", "author": "c", "score": 3}
    good = {k: row[k] for k in tenant.column_types if k in row}
    data, reason, _ = validate(tenant, converter_for(tenant), json.dumps(good).encode())
    assert data == good and reason == ""


# --- reports --------------------------------------------------------------------------------

def _report(**changes: Any) -> bytes:
    obj: dict[str, Any] = {"source": "worker", "tenant": "tenant1", "window_start": 1.0, "window_end": 2.0,
                           "messages": 1, "bytes": 1, "avg_ms": 1.0, "max_ms": 1.0, "errors": 0}
    obj.update(changes)
    return json.dumps(obj).encode()


HOSTILE_REPORTS: list[tuple[Any, str]] = [
    (None, "expected JSON text"),  # a tombstone
    (_deep(100_000), "nested too deeply"),
    (b'{"messages": ' + b"7" * 5000 + b"}", "not valid JSON"),
    (_report(messages=10**30), "out of range"),
    (_report(window_end=10**400), "out of range"),  # would not even convert to float
    (b'{"source":"worker","tenant":"t","window_start":NaN}', "expected a number, got nan"),
    (_report(avg_ms=float("inf")).replace(b"Infinity", b"1e999"), "expected a number, got inf"),
    (_report(lag={"a": [1]}), "expected an integer"),
    (_report(tenant=["x"]), "expected a string"),
    (_report(tenant="t" * 10_000), "longer than"),
    (b"[]", "expected a JSON object"),
]


@pytest.mark.parametrize(("wire", "message"), HOSTILE_REPORTS)
def test_a_hostile_report_is_refused_with_a_value_error_naming_why(wire: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Report.from_json(wire)
