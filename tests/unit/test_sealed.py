"""Sealed tenant files (core.sealed): round trip, and each refusal with its reason."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from mysimbdp_tasks.core import encryption, sealed
from mysimbdp_tasks.core.errors import PermanentIngestError
from mysimbdp_tasks.core.parsing import iter_records

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
SEG = sealed.MIN_SEGMENT_BYTES  # the smallest segments, so a short text spans several


def _seal(tmp_path: Path, plain: bytes, tenant: str = "tenant1", key: bytes = KEY, name: str = "f.csv.enc") -> Path:
    out = tmp_path / name
    with out.open("wb") as dst:
        sealed.seal(io.BytesIO(plain), dst, tenant, key, segment_bytes=SEG)
    return out


def _refusal(path: Path, tenant: str = "tenant1", key: bytes = KEY) -> str:
    with pytest.raises(PermanentIngestError) as caught:
        sealed.verify(path, tenant, key)
    return caught.value.reason


@pytest.mark.parametrize("size", [0, 1, SEG - 1, SEG, SEG + 1, 5 * SEG, 5 * SEG + 7])
def test_round_trip_any_size(tmp_path: Path, size: int) -> None:
    plain = os.urandom(size)
    path = _seal(tmp_path, plain)
    assert sealed.verify(path, "tenant1", KEY) == size
    with sealed.SealedReader(path, "tenant1", KEY) as reader:
        assert reader.read() == plain
        reader.seek(size // 2)
        assert reader.read(SEG + 3) == plain[size // 2 : size // 2 + SEG + 3]


def test_records_read_through_the_reader(tmp_path: Path) -> None:
    text = "id,body\n" + "".join(f'{i},"line {i}, with ""quotes""\nand a newline"\n' for i in range(50))
    path = _seal(tmp_path, text.encode())
    records = list(iter_records(path, chunk=None, opener=sealed.opener("tenant1", KEY)))
    assert [r.data["id"] for r in records] == [str(i) for i in range(50)]  # type: ignore[index]
    assert records[3].data["body"] == 'line 3, with "quotes"\nand a newline'  # type: ignore[index]


def test_the_plaintext_is_not_in_the_file(tmp_path: Path) -> None:
    plain = b"secret comment body " * 20
    assert b"secret" not in _seal(tmp_path, plain).read_bytes()


def test_another_tenants_file_is_refused(tmp_path: Path) -> None:
    assert _refusal(_seal(tmp_path, b"a,b\n1,2\n", tenant="tenant2")) == "wrong_tenant"


def test_a_wrong_key_is_refused(tmp_path: Path) -> None:
    assert _refusal(_seal(tmp_path, b"a,b\n1,2\n", key=OTHER)) == "wrong_key"


def test_a_flipped_bit_in_any_segment_is_refused(tmp_path: Path) -> None:
    path = _seal(tmp_path, os.urandom(4 * SEG))
    data = path.read_bytes()
    header = len(data) - 4 * (SEG + 16)
    for at in (header + 3, header + SEG + 20, len(data) - 1):
        path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
        assert _refusal(path) == "tampered", at


def test_a_renamed_owner_in_the_header_is_refused(tmp_path: Path) -> None:
    path = _seal(tmp_path, b"a\n1\n", tenant="tenant1")
    path.write_bytes(path.read_bytes().replace(b"tenant1", b"tenant2", 1))
    assert _refusal(path, tenant="tenant2") == "tampered"  # the key id matches, the wrap's AAD does not


def test_a_cut_at_a_segment_boundary_is_truncated(tmp_path: Path) -> None:
    path = _seal(tmp_path, os.urandom(4 * SEG))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - (SEG + 16)])
    assert _refusal(path) == "truncated"


def test_a_cut_inside_a_segment_is_refused(tmp_path: Path) -> None:
    path = _seal(tmp_path, os.urandom(4 * SEG))
    data = path.read_bytes()
    path.write_bytes(data[:-40])
    assert _refusal(path) in ("tampered", "truncated")


def test_swapped_segments_are_refused(tmp_path: Path) -> None:
    path = _seal(tmp_path, os.urandom(4 * SEG))
    data = path.read_bytes()
    header, step = len(data) - 4 * (SEG + 16), SEG + 16
    first, second = data[header : header + step], data[header + step : header + 2 * step]
    path.write_bytes(data[:header] + second + first + data[header + 2 * step :])
    assert _refusal(path) == "tampered"


def test_appended_bytes_are_refused(tmp_path: Path) -> None:
    path = _seal(tmp_path, os.urandom(2 * SEG))
    path.write_bytes(path.read_bytes() + b"more")
    assert _refusal(path) == "tampered"


def test_a_plain_file_named_enc_is_not_sealed(tmp_path: Path) -> None:
    path = tmp_path / "f.csv.enc"
    path.write_bytes(b"a,b\n1,2\n" * 20)
    assert _refusal(path) == "not_sealed"


def test_tenant_setting_encrypted() -> None:
    problems: list[tuple[str, str]] = []
    required = encryption.parse({"encrypted": "required"}, lambda k, m: problems.append((k, m)))
    assert required.refusal("x.csv") == "not_encrypted" and required.refusal("x.csv.enc") is None
    assert encryption.parse({}, lambda k, m: problems.append((k, m))).refusal("x.csv") is None
    assert not problems
    encryption.parse({"encrypted": "yes"}, lambda k, m: problems.append((k, m)))
    assert problems and problems[0][0] == "encrypted" and "required" in problems[0][1]
    assert encryption.Policy.checked_name("x.json.enc") == "x.json"


def test_producer_encrypt_stages_only_sealed_bytes(tmp_path: Path) -> None:
    from producers import batch

    src = tmp_path / "export.csv"
    src.write_text("created_utc,subreddit,id,author,body\n" + "".join(
        f'1200000000,news,c{i},alice,"secret body {i}, quoted ""x""\nsecond line"\n' for i in range(3000)),
        encoding="utf-8")
    plain = batch.wrangle("tenant2", src, tmp_path / "plain")
    out = batch.wrangle("tenant2", src, tmp_path / "staging", key=KEY)
    assert out.path.name == "tenant2-export.csv.enc"
    assert os.listdir(tmp_path / "staging") == [out.path.name]
    assert b"secret body" not in out.path.read_bytes()
    assert out.bytes == out.path.stat().st_size
    with sealed.SealedReader(out.path, "tenant2", KEY) as reader:
        assert reader.read() == plain.path.read_bytes()


def test_file_keys_are_kept_private_and_rotated_by_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import stat

    from mysimbdp_tasks import cli
    from mysimbdp_tasks.security import filekeys

    with pytest.raises(PermanentIngestError) as caught:  # the worker never creates one
        filekeys.load(tmp_path, "t1")
    assert caught.value.reason == "wrong_key" and "mysimbdp filekey t1" in caught.value.detail
    monkeypatch.setenv("MYSIMBDP_HOME", str(tmp_path))
    assert cli.main(["filekey", "t1", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    key = filekeys.load(tmp_path, "t1")
    assert first["key_id"] == sealed.key_id(key).hex() and "key" not in first  # the key only with --show
    assert stat.S_IMODE(filekeys.path(tmp_path, "t1").stat().st_mode) == 0o600
    assert cli.main(["filekey", "t1", "--rotate", "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["key_id"] != first["key_id"] and filekeys.load(tmp_path, "t1") != key


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("f.json.enc", '[{"id": "a"},\n {"id": "b"}, {"id": "c"}]', "json"),
    ("f.json.enc", '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n', "jsonl"),
    ("f.jsonl.enc", '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n', "jsonl"),
])
def test_sealed_json_is_sniffed_and_read_through_the_reader(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    from mysimbdp_tasks.core.formats import detect_format

    path = _seal(tmp_path, (" " * 100 + text).encode(), name=name)  # the first record is past segment 0
    opener = sealed.opener("tenant1", KEY)
    assert detect_format(path, opener=opener) == fmt
    assert [r.data["id"] for r in iter_records(path, opener=opener)] == ["a", "b", "c"]  # type: ignore[index]


@pytest.mark.parametrize("declared", [1, sealed.MIN_SEGMENT_BYTES - 1, sealed.MAX_SEGMENT_BYTES + 1, 200 << 20])
def test_a_segment_size_the_worker_should_not_hold_or_pay_for_is_refused(tmp_path: Path, declared: int) -> None:
    # A tenant seals with its own key, so it could declare any size: one segment is held whole while
    # it is decrypted (memory in the file's size), and tiny ones cost a decryption per few bytes.
    path = _seal(tmp_path, os.urandom(3 * SEG))
    data = bytearray(path.read_bytes())
    data[9:13] = declared.to_bytes(4, "big")  # after the magic and the version
    path.write_bytes(bytes(data))
    with pytest.raises(PermanentIngestError, match=f"segments of {declared} bytes") as caught:
        sealed.verify(path, "tenant1", KEY)
    assert caught.value.reason == "not_sealed"
    with pytest.raises(ValueError, match="a segment is"):
        sealed.seal(io.BytesIO(b"x"), io.BytesIO(), "tenant1", KEY, segment_bytes=declared)
