"""The tenants' batch client apps and the synthetic data generator: pure file work, no services."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from producers import awkward, batch, samples
from producers.generate import GeneratedFile, generate, id_prefix, records_digest
from producers.readers import InputError, iter_json_objects
from producers.staging import AtomicFile

pytestmark = pytest.mark.unit

T1_FIELDS = ["created_utc", "ups", "subreddit", "id", "author", "score"]
T2_FIELDS = ["created_utc", "subreddit", "id", "author", "body"]
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def data() -> Path:
    return samples.default_dir()


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        return next(reader), list(reader)


def _dict_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
# producers.batch
# --------------------------------------------------------------------------------------------


def test_tenant1_keeps_exactly_six_fields_with_the_same_values(data: Path, tmp_path: Path) -> None:
    src = data / "1000rows.json"
    out = batch.wrangle("tenant1", src, tmp_path)

    source = json.loads(src.read_text(encoding="utf-8"))
    written = json.loads(out.path.read_text(encoding="utf-8"))
    assert out.path == tmp_path / "tenant1-1000rows.json"
    assert out.records == len(written) == len(source) == 1000
    assert out.bytes == out.path.stat().st_size
    assert all(list(rec) == T1_FIELDS for rec in written)
    assert written == [{k: rec[k] for k in T1_FIELDS} for rec in source]


def test_tenant2_real_csv_round_trips_every_value(data: Path, tmp_path: Path) -> None:
    src = data / "1000rows.csv"
    out = batch.wrangle("tenant2", src, tmp_path)

    header, rows = _read_csv(out.path)
    assert header == T2_FIELDS
    assert out.records == len(rows) == 1000
    assert rows == [[rec[k] for k in T2_FIELDS] for rec in _dict_rows(src)]


def test_tenant2_multiline_and_awkward_bodies_round_trip_byte_for_byte(data: Path, tmp_path: Path) -> None:
    # The real CSV exports flattened newlines; build a 22-column export whose bodies keep them
    # (from the JSON samples) and add the awkward ones, \r\n and a bare \r included.
    records = json.loads((data / "1000rows.json").read_text(encoding="utf-8"))
    extra = awkward.pool(random.Random(1), [r["body"] for r in records], size=64)
    extra += ["bare\rcarriage return", "  padded  ", "\n"]
    for i, body in enumerate(extra):
        records.append({**records[i], "id": f"x{i}", "body": body})
    src = tmp_path / "export.csv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    assert sum("\n" in r["body"] for r in records) > 200

    out = batch.wrangle("tenant2", src, tmp_path / "staging")

    _, rows = _read_csv(out.path)
    assert [row[4] for row in rows] == [r["body"] for r in records]
    assert [row[2] for row in rows] == [r["id"] for r in records]


def test_output_appears_only_under_its_final_name(data: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    seen_at_rename: list[list[str]] = []
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        seen_at_rename.append(sorted(os.listdir(tmp_path)))
        real_replace(src, dst)

    monkeypatch.setattr("producers.staging.os.replace", replace)
    out = batch.wrangle("tenant1", data / "1000rows.json", tmp_path)

    # Until the rename only the hidden .part file exists; afterwards only the final name.
    assert seen_at_rename == [[".tenant1-1000rows.json.part"]]
    assert sorted(os.listdir(tmp_path)) == ["tenant1-1000rows.json"]
    assert out.path.stat().st_size == out.bytes


def test_an_existing_file_in_staging_is_never_overwritten(data: Path, tmp_path: Path) -> None:
    (tmp_path / "tenant2-1000rows.csv").write_bytes(b"already here")
    first = batch.wrangle("tenant2", data / "1000rows.csv", tmp_path)
    second = batch.wrangle("tenant2", data / "1000rows.csv", tmp_path)

    assert (tmp_path / "tenant2-1000rows.csv").read_bytes() == b"already here"
    assert (first.path.name, second.path.name) == ("tenant2-1000rows-2.csv", "tenant2-1000rows-3.csv")
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_name_being_written_by_another_producer_is_skipped(tmp_path: Path) -> None:
    with AtomicFile(tmp_path, "tenant1-x.json") as a, AtomicFile(tmp_path, "tenant1-x.json") as b:
        a.write(b"a")
        b.write(b"b")
    assert sorted(os.listdir(tmp_path)) == ["tenant1-x-2.json", "tenant1-x.json"]


def _interrupted_write(folder: Path) -> None:
    with AtomicFile(folder, "tenant1-x.json") as f:
        f.write(b"half")
        raise RuntimeError("interrupted")


def test_a_failed_write_leaves_nothing_in_staging(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="interrupted"):
        _interrupted_write(tmp_path)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(("content", "message"), [
    ('[{"id": "a", "ups": 1}, {"id": "b", "ups": ', "record 2 is not valid JSON"),
    ('[{"id": "a"} {"id": "b"}]', "expected ',' or ']' after record 1"),
    ('[{"id": "a"}, 3]', "record 2 is not a JSON object"),
    ('[{"id": "a"}', "not closed"),
])
def test_broken_json_input_is_refused_and_leaves_nothing(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "broken.json"
    src.write_text(content, encoding="utf-8")
    staging = tmp_path / "staging"
    with pytest.raises(InputError, match=re.escape(message)):
        batch.wrangle("tenant1", src, staging)
    assert os.listdir(staging) == []


@pytest.mark.parametrize(("content", "message"), [
    ("", "the file is empty"),
    ("created_utc,subreddit,id,author\n1,a,b,c\n", "header has no column(s) body"),
    ("created_utc,subreddit,id,author,body\n1,a,b,c\n", "line 2: expected 5 fields"),
])
def test_broken_csv_input_is_refused(tmp_path: Path, content: str, message: str) -> None:
    src = tmp_path / "broken.csv"
    src.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        batch.wrangle("tenant2", src, tmp_path / "staging")


def test_cli_prints_one_line_per_output_and_fails_on_an_unreadable_input(
        data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = batch.main(["--tenant", "tenant2", "--staging", str(tmp_path), "-q",
                       str(data / "1000rows.csv"), str(tmp_path / "missing.csv")])
    out, err = capsys.readouterr()
    assert code == 1
    written = tmp_path / "tenant2-1000rows.csv"
    assert out.splitlines() == [f"{written}\trecords=1000\tbytes={written.stat().st_size}"]
    assert "missing.csv: cannot open" in err


def test_json_reader_streams_records_across_chunk_boundaries(data: Path) -> None:
    src = data / "1000rows.json"
    expected = json.loads(src.read_text(encoding="utf-8"))
    with open(src, encoding="utf-8") as f:
        assert list(iter_json_objects(f, chunk=7)) == expected
    lines = "\n".join(json.dumps(r) for r in expected[:50]) + "\n"
    assert list(iter_json_objects(io.StringIO(lines), chunk=5)) == expected[:50]


# --------------------------------------------------------------------------------------------
# producers.generate
# --------------------------------------------------------------------------------------------

AWKWARD_CLASSES: dict[str, Callable[[str], bool]] = {
    "double_quote": lambda b: '"' in b,
    "single_quote": lambda b: "'" in b,
    "comma": lambda b: "," in b,
    "newline": lambda b: re.search(r"(?<!\r)\n", b) is not None,
    "crlf": lambda b: "\r\n" in b,
    "tab": lambda b: "\t" in b,
    "brackets": lambda b: all(c in b for c in "[]{}()"),
    "backslash": lambda b: "\\" in b,
    "accents": lambda b: re.search("[À-ÿ\u0300-\u036f]", b) is not None,
    "cjk": lambda b: re.search("[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]", b) is not None,
    "rtl": lambda b: re.search("[\u0590-\u06ff]", b) is not None,
    "emoji": lambda b: re.search("[\U0001f300-\U0001faff]", b) is not None,
    "emoji_zwj": lambda b: "\u200d" in b,
    "cql": lambda b: "'); DROP KEYSPACE tenant2; --" in b,
    "long": lambda b: len(b.encode()) >= 10_000,
    "empty": lambda b: b == "",
}


@pytest.fixture(scope="module")
def t2_csv(tmp_path_factory: pytest.TempPathFactory) -> GeneratedFile:
    return generate("tenant2", 2 * MIB, tmp_path_factory.mktemp("gen") / "tenant2-synthetic.csv", seed=3)


def test_generated_csv_parses_back_to_what_the_generator_wrote(t2_csv: GeneratedFile) -> None:
    header, rows = _read_csv(t2_csv.path)
    assert header == T2_FIELDS
    assert len(rows) == t2_csv.records > 5000
    assert records_digest(rows) == t2_csv.digest
    # And it is exactly what the csv module itself writes for those rows.
    again = io.StringIO(newline="")
    csv.writer(again).writerows([header, *rows])
    assert again.getvalue().encode() == t2_csv.path.read_bytes()


def test_generated_ids_are_fresh_and_unique(data: Path, t2_csv: GeneratedFile) -> None:
    _, rows = _read_csv(t2_csv.path)
    ids = [row[2] for row in rows]
    assert len(set(ids)) == len(ids) == t2_csv.distinct_keys == t2_csv.records
    assert all(i.startswith(id_prefix(3)) for i in ids)
    assert not set(ids) & {s.id for s in samples.load(data)}


def test_generated_size_is_within_five_percent_of_the_target(t2_csv: GeneratedFile, tmp_path: Path) -> None:
    assert t2_csv.bytes == t2_csv.path.stat().st_size
    assert 0.95 * 2 * MIB <= t2_csv.bytes <= 2 * MIB
    t1 = generate("tenant1", 2 * MIB, tmp_path / "t1.json")
    assert 0.95 * 2 * MIB <= t1.bytes == t1.path.stat().st_size <= 2 * MIB


def test_every_awkward_class_is_present_and_the_rest_is_real(data: Path, t2_csv: GeneratedFile) -> None:
    _, rows = _read_csv(t2_csv.path)
    bodies = [row[4] for row in rows]
    missing = [name for name, has in AWKWARD_CLASSES.items() if not any(has(b) for b in bodies)]
    assert missing == []
    assert set(AWKWARD_CLASSES) == set(awkward.CLASSES)

    real = samples.load(data)
    real_bodies = {s.body for s in real}
    share = sum(b not in real_bodies for b in bodies) / len(bodies)
    assert 0.03 <= share <= 0.08
    # Everything but id and body is drawn from the real samples.
    assert {(r[0], r[1], r[3]) for r in rows} <= {(str(s.created_utc), s.subreddit, s.author) for s in real}


def test_generation_is_deterministic_per_seed(t2_csv: GeneratedFile, tmp_path: Path) -> None:
    same = generate("tenant2", 2 * MIB, tmp_path / "same.csv", seed=3)
    other = generate("tenant2", 2 * MIB, tmp_path / "other.csv", seed=4)
    assert same.path.read_bytes() == t2_csv.path.read_bytes()
    assert same.digest == t2_csv.digest
    assert other.digest != t2_csv.digest
    ids = {row[2] for row in _read_csv(t2_csv.path)[1]}
    assert not ids & {row[2] for row in _read_csv(other.path)[1]}


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_generated_json_formats_parse_back(tmp_path: Path, fmt: str) -> None:
    g = generate("tenant1", MIB, tmp_path / f"t1.{fmt}", seed=5, fmt=fmt)
    text = g.path.read_text(encoding="utf-8")
    records = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert all(list(r) == T1_FIELDS for r in records)
    assert all(isinstance(r[k], int) for r in records for k in ("created_utc", "ups", "score"))
    assert records_digest([[r[k] for k in T1_FIELDS] for r in records]) == g.digest
    assert len({(r["subreddit"], r["id"], r["ups"]) for r in records}) == len(records) == g.distinct_keys


def test_a_generated_file_goes_through_the_batch_app_unchanged(t2_csv: GeneratedFile, tmp_path: Path) -> None:
    out = batch.wrangle("tenant2", t2_csv.path, tmp_path)
    assert out.path.name == "tenant2-synthetic.csv"  # the tenant prefix is not doubled
    assert out.path.read_bytes() == t2_csv.path.read_bytes()
