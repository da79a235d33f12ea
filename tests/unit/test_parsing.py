"""Streaming readers and the chunk planner, on small crafted files and on the reddit samples."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import itertools
import json
import os
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.core.chunks import plan_chunks
from mysimbdp_tasks.core.errors import PermanentIngestError
from mysimbdp_tasks.core.formats import Chunk, Format, Record, detect_format
from mysimbdp_tasks.core.parsing import iter_records

pytestmark = pytest.mark.unit

BOM = codecs.BOM_UTF8
BODIES = [
    "plain",
    'She said "hi", then left',
    "two\nlines",
    "windows\r\nline end",
    "lone\rcarriage return",
    '"starts and ends with quotes"',
    "brackets [a] (b) {c} ]},{[",
    "unicode: naïve café 日本語 くそ, emoji 😀👍🏽",
    "'); DROP KEYSPACE x; --",
    "",
    "   ",
    'many\n\n\nblank "" lines\n',
    ",,,",
]


def _samples_dir() -> Path | None:
    """MYSIMBDP_SAMPLES, else data/reddit in the repository, else the shared folder beside it."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [
        os.environ.get("MYSIMBDP_SAMPLES"), repo / "data" / "reddit", repo.parent / "shared" / "data" / "reddit",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "10000rows.csv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def samples() -> Path:
    found = _samples_dir()
    if found is None:
        pytest.skip("reddit samples not found; set MYSIMBDP_SAMPLES to their directory")
    return found


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def collect(records: Iterable[Record]) -> tuple[list[Record], PermanentIngestError | None]:
    """Records yielded before an error, and the error."""
    got: list[Record] = []
    try:
        for record in records:
            got.append(record)  # not list(): keeps what came before the error
    except PermanentIngestError as exc:
        return got, exc
    return got, None


def read_by_chunks(path: Path, fmt: Format, target: int, **kw: Any) -> Iterator[Record]:
    for chunk in plan_chunks(path, fmt, target, **kw):
        yield from iter_records(path, fmt, chunk, **kw)


def csv_text(rows: list[list[str]], terminator: str = "\n") -> tuple[str, list[int]]:
    """RFC 4180 text and the line on which each row (header included) starts, counted independently.

    Written by hand: the csv module leaves a lone "\r" unquoted when the line terminator is "\n".
    """
    lines = [
        ",".join('"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\r\n') else v for v in row) + terminator
        for row in rows
    ]
    starts = [1]
    for line in lines[:-1]:
        starts.append(starts[-1] + line.count("\n"))
    return "".join(lines), starts


def tricky_rows(count: int) -> list[list[str]]:
    header = ["id", "body", "n"]
    return [header] + [[f"r{i}", BODIES[i % len(BODIES)] * (1 + i % 3), str(i)] for i in range(count)]


# --- format detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"), [("a.csv", "csv"), ("A.CSV", "csv"), ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl")]
)
def test_format_from_extension(tmp_path: Path, name: str, fmt: str) -> None:
    assert detect_format(write(tmp_path / name, "whatever")) == fmt


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        ('[{"a": 1}]', "json"),
        (b'\xef\xbb\xbf  \n [{"a": 1}]', "json"),
        ('{"a": 1}\n{"a": 2}\n', "jsonl"),
        (b'\xef\xbb\xbf{"a": 1}\n', "jsonl"),
        ('{\n  "a": 1\n}\n', "json"),
        ("", "json"),
    ],
)
def test_json_extension_is_sniffed(tmp_path: Path, content: str | bytes, fmt: str) -> None:
    assert detect_format(write(tmp_path / "f.json", content)) == fmt


def test_unknown_extension_is_a_wrong_file_type(tmp_path: Path) -> None:
    with pytest.raises(PermanentIngestError) as info:
        detect_format(write(tmp_path / "f.xml", "<a/>"))
    assert info.value.reason == "wrong_file_type"


@pytest.mark.parametrize("content", ["hello", "42", '"text"'])
def test_json_that_is_neither_array_nor_objects_is_unparseable(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "f.json", content)
    with pytest.raises(PermanentIngestError) as info:
        detect_format(path)
    assert info.value.reason == "unparseable"
    assert collect(iter_records(path, "json"))[1] is not None


# --- CSV ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("terminator", ["\n", "\r\n"])
def test_csv_keeps_text_exactly_and_numbers_rows_by_first_line(tmp_path: Path, terminator: str) -> None:
    rows = tricky_rows(40)
    text, starts = csv_text(rows, terminator)
    assert text.count("\n") > len(rows)  # bodies really span lines
    records = list(iter_records(write(tmp_path / "t.csv", text)))
    assert [r.data for r in records] == [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r.number for r in records] == starts[1:]
    assert all(r.error is None for r in records)


def test_csv_sample_matches_the_csv_module(samples: Path) -> None:
    path = samples / "10000rows.csv"
    with open(path, newline="", encoding="utf-8") as f:
        expected = list(csv.DictReader(f))
    records = list(iter_records(path))
    assert [r.data for r in records] == expected
    assert [r.number for r in records] == list(range(2, 2 + len(expected)))


def test_csv_rows_with_too_many_or_too_few_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b,c\n1,2,3\n1,2,3,4\n1,2\nx,y,z\n")
    assert list(iter_records(path)) == [
        Record(2, {"a": "1", "b": "2", "c": "3"}, None),
        Record(3, None, "too_many_fields: 4 fields, the header has 3"),
        Record(4, {"a": "1", "b": "2"}, None),
        Record(5, {"a": "x", "b": "y", "c": "z"}, None),
    ]


def test_csv_blank_lines_are_skipped_and_still_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", '\na,b\n\n1,"x\n\ny"\n\n\n2,z\n')
    assert list(iter_records(path)) == [
        Record(4, {"a": "1", "b": "x\n\ny"}, None), Record(9, {"a": "2", "b": "z"}, None),
    ]


def test_csv_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", BOM + b'"id",body\r\n1,"a\r\nb"\r\n')
    assert list(iter_records(path)) == [Record(2, {"id": "1", "body": "a\r\nb"}, None)]


@pytest.mark.parametrize("content", ["", "\n\n", "a,b,c\n", BOM.decode("utf-8")])
def test_csv_without_data_rows_has_no_records(tmp_path: Path, content: str) -> None:
    assert list(iter_records(write(tmp_path / "t.csv", content))) == []


def test_csv_header_repeating_a_column_is_unparseable(tmp_path: Path) -> None:
    with pytest.raises(PermanentIngestError, match="repeats column 'a'"):
        list(iter_records(write(tmp_path / "t.csv", "a,b,a\n1,2,3\n")))


def test_csv_row_that_is_not_utf8_is_refused_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", b'a,b\n1,ok\n2,"caf\xe9\nmore"\n3,fine\n')
    assert list(iter_records(path)) == [
        Record(2, {"a": "1", "b": "ok"}, None),
        Record(3, None, "bad_encoding: the row is not valid UTF-8"),
        Record(5, {"a": "3", "b": "fine"}, None),
    ]


def test_csv_parse_error_is_refused_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b\n1,x\rbroken\n2,y\n")
    records = list(iter_records(path))
    assert [(r.number, r.error and r.error.split(":")[0]) for r in records] == [(2, "bad_csv"), (3, None)]
    assert records[1].data == {"a": "2", "b": "y"}


def test_csv_header_that_cannot_be_read_is_unparseable(tmp_path: Path) -> None:
    with pytest.raises(PermanentIngestError, match="header cannot be read"):
        list(iter_records(write(tmp_path / "t.csv", "a,b\rc\n1,2\n")))


def test_csv_field_larger_than_the_csv_module_default(tmp_path: Path) -> None:
    body = "word, " * 100_000  # 600 kB, above the module's 128 KiB default limit
    path = write(tmp_path / "t.csv", f'id,body\n1,"{body}"\n')
    assert list(iter_records(path)) == [Record(2, {"id": "1", "body": body}, None)]


# --- JSON arrays ----------------------------------------------------------------------------------


@pytest.mark.parametrize("read_size", [1, 7, 64, 4096])
def test_json_array_streams_through_a_small_window(samples: Path, read_size: int) -> None:
    path = samples / "1000rows.json"
    expected = json.loads(path.read_text(encoding="utf-8"))
    records = list(iter_records(path, read_size=read_size))
    assert [r.data for r in records] == expected
    assert [r.number for r in records] == list(range(1, len(expected) + 1))


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_json_keeps_text_exactly(tmp_path: Path, ensure_ascii: bool) -> None:
    objects = [{"id": str(i), "body": body} for i, body in enumerate(BODIES)]
    path = write(tmp_path / "t.json", json.dumps(objects, ensure_ascii=ensure_ascii, indent=2))
    assert [r.data for r in iter_records(path, read_size=5)] == objects


def test_json_numbers_are_not_cut_at_window_edges(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '[1234567, {"n": 98765.4321}, true]')
    assert list(iter_records(path, read_size=1)) == [
        Record(1, None, "not_an_object: got 1234567"),
        Record(2, {"n": 98765.4321}, None),
        Record(3, None, "not_an_object: got true"),
    ]


def test_json_elements_that_are_not_objects_are_refused_alone(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '[{"a": 1}, [1, 2], "x", null, {"a": 2}]')
    records = list(iter_records(path))
    assert [(r.number, r.error) for r in records] == [
        (1, None), (2, "not_an_object: got an array"), (3, 'not_an_object: got "x"'),
        (4, "not_an_object: got null"), (5, None),
    ]
    assert records[4].data == {"a": 2}


def test_json_truncated_array_keeps_the_records_before_the_cut(samples: Path, tmp_path: Path) -> None:
    whole = (samples / "1000rows.json").read_bytes()
    cut = whole[: len(whole) // 2]
    path = write(tmp_path / "t.json", cut)
    records, error = collect(iter_records(path, read_size=4096))
    assert error is not None and error.reason == "unparseable"
    expected = json.loads(whole)
    assert 400 < len(records) < 600
    assert [r.data for r in records] == expected[: len(records)]


def test_json_array_without_its_closing_bracket(tmp_path: Path) -> None:
    records, error = collect(iter_records(write(tmp_path / "t.json", '[{"a": 1},\n {"a": 2}\n')))
    assert [r.data for r in records] == [{"a": 1}, {"a": 2}]
    assert error is not None and "truncated after record 2" in error.detail


@pytest.mark.parametrize(
    ("content", "kept"),
    [('[{"a": 1}, {"a": 2] ', 1), ('[{"a": 1}, {"a": 2}] trailing', 2), ('[{"a": 1},]', 1), ('[{"a": 1} {"a": 2}]', 1)],
)
def test_json_syntax_errors_stop_the_file_after_the_good_records(tmp_path: Path, content: str, kept: int) -> None:
    records, error = collect(iter_records(write(tmp_path / "t.json", content), read_size=3))
    assert len(records) == kept
    assert error is not None and error.reason == "unparseable"


@pytest.mark.parametrize("content", [b"", b"  \n ", BOM, b"[]", b" [ ]\n"])
def test_json_without_elements_has_no_records(tmp_path: Path, content: bytes) -> None:
    assert list(iter_records(write(tmp_path / "t.json", content), "json")) == []


def test_json_pretty_printed_objects(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '{\n  "a": 1\n}\n{\n  "a": [2]\n}\n')
    assert detect_format(path) == "json"
    assert list(iter_records(path, read_size=2)) == [Record(1, {"a": 1}, None), Record(2, {"a": [2]}, None)]


def test_json_that_is_not_utf8_is_unparseable(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", b'[{"a": "ok"}, {"a": "caf\xe9"}]')
    records, error = collect(iter_records(path, read_size=4))
    assert error is not None and error.reason == "unparseable" and "UTF-8" in error.detail
    assert records == [Record(1, {"a": "ok"}, None)]


def test_json_array_memory_stays_flat(tmp_path: Path) -> None:
    element = {"body": "x" * 300, "ups": 1, "id": "abc"}
    path = tmp_path / "big.json"
    with open(path, "w", encoding="utf-8") as f:
        f.write("[" + ",\n".join(json.dumps(element) for _ in range(15_000)) + "]")
    assert path.stat().st_size > 4_000_000
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_records(path, read_size=64 << 10))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 15_000
    assert peak < 1_000_000


# --- JSON Lines -----------------------------------------------------------------------------------


def test_jsonl_bad_lines_are_refused_alone(tmp_path: Path) -> None:
    content = BOM + b'{"a": 1}\n\n{"a": \n[1]\n   \n{"a": "caf\xe9"}\n{"a": "\xc3\xa9 [x]"}'
    records = list(iter_records(write(tmp_path / "t.jsonl", content)))
    assert [(r.number, r.error and r.error.split(":")[0]) for r in records] == [
        (1, None), (3, "bad_json"), (4, "not_an_object"), (6, "bad_encoding"), (7, None),
    ]
    assert records[0].data == {"a": 1}
    assert records[-1].data == {"a": "é [x]"}


# --- chunks ---------------------------------------------------------------------------------------


def assert_well_formed(chunks: list[Chunk], size: int) -> None:
    assert chunks[0].start_offset == 0 and chunks[-1].end_offset == size
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for before, after in itertools.pairwise(chunks):
        assert before.end_offset == after.start_offset
        assert before.start_offset < before.end_offset


@pytest.mark.parametrize("target", [1, 4096, 100_000, 1_000_000, 10_000_000])
def test_csv_chunks_reproduce_the_sequential_read(samples: Path, target: int) -> None:
    path = samples / "10000rows.csv"
    chunks = plan_chunks(path, "csv", target)
    assert_well_formed(chunks, path.stat().st_size)
    if target == 1:  # every record boundary is a cut; the header alone is the first chunk
        assert len(chunks) == 10_001
    assert list(read_by_chunks(path, "csv", target)) == list(iter_records(path))


def test_csv_chunk_sizes_follow_the_target(samples: Path) -> None:
    path = samples / "10000rows.csv"
    chunks = plan_chunks(path, "csv", 250_000)
    assert 10 <= len(chunks) <= 11
    assert all(c.end_offset - c.start_offset >= 250_000 for c in chunks[:-1])


@pytest.mark.parametrize("bom", [b"", BOM])
@pytest.mark.parametrize("terminator", ["\n", "\r\n"])
def test_csv_chunks_never_cut_a_quoted_field(tmp_path: Path, terminator: str, bom: bytes) -> None:
    rows = tricky_rows(60)
    # A quote inside an unquoted field is an ordinary character: it must not flip the scanner.
    rows += [["u1", 'a 5" screen', "1"], ["u2", 'x"\n"y', "2"], ["u3", "ends with a quoted field", 'x"\n']]
    text, _ = csv_text(rows, terminator)
    # The file opens with a quoted field holding a newline, and ends with a quoted field and no
    # final line end.
    text = '"i\nd"' + text[2:].replace('"a 5"" screen"', 'a 5" screen').rstrip("\r\n")
    assert text.endswith('"x""\n"')
    path = write(tmp_path / "t.csv", bom + text.encode("utf-8"))
    expected = list(iter_records(path))
    assert expected[-3].data == {"i\nd": "u1", "body": 'a 5" screen', "n": "1"}
    assert expected[-1].data == {"i\nd": "u3", "body": "ends with a quoted field", "n": 'x"\n'}
    for target in range(1, path.stat().st_size + 2, 7):
        chunks = plan_chunks(path, "csv", target)
        assert_well_formed(chunks, path.stat().st_size)
        assert list(read_by_chunks(path, "csv", target)) == expected, target


def test_csv_chunk_reads_the_header_from_the_file_start(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'id,body\n1,"a\nb"\n2,c\n3,d\n4,e\n')
    chunks = plan_chunks(path, "csv", 9)  # the first cut falls inside the quoted "a\nb"
    assert [(c.start_offset, c.end_offset, c.first_number) for c in chunks] == [(0, 16, 1), (16, 28, 4)]
    assert list(iter_records(path, "csv", chunks[1])) == [
        Record(4, {"id": "2", "body": "c"}, None),
        Record(5, {"id": "3", "body": "d"}, None),
        Record(6, {"id": "4", "body": "e"}, None),
    ]


@pytest.mark.parametrize("target", [1, 3_000, 50_000, 10_000_000])
@pytest.mark.parametrize("read_size", [16, 1 << 20])
def test_json_chunks_reproduce_the_sequential_read(samples: Path, target: int, read_size: int) -> None:
    path = samples / "1000rows2.json"
    chunks = plan_chunks(path, "json", target, read_size=read_size)
    assert_well_formed(chunks, path.stat().st_size)
    if target == 1:
        assert len(chunks) == 1000
    assert list(read_by_chunks(path, "json", target, read_size=read_size)) == list(iter_records(path))


def test_json_chunks_with_bom_unicode_and_brackets_in_text(tmp_path: Path) -> None:
    objects = [{"id": i, "body": BODIES[i % len(BODIES)]} for i in range(50)]
    path = write(tmp_path / "t.json", BOM + json.dumps(objects, ensure_ascii=False).encode("utf-8"))
    expected = list(iter_records(path))
    assert [r.data for r in expected] == objects
    for target in (1, 13, 100, 1000):
        assert list(read_by_chunks(path, "json", target, read_size=8)) == expected


def test_json_chunks_of_a_truncated_array_stop_where_the_whole_read_stops(samples: Path, tmp_path: Path) -> None:
    whole = (samples / "1000rows.json").read_bytes()
    path = write(tmp_path / "t.json", whole[: len(whole) // 3])
    sequential, error = collect(iter_records(path))
    chunked, chunk_error = collect(read_by_chunks(path, "json", 20_000))
    assert chunked == sequential and len(sequential) > 300
    assert error is not None and chunk_error is not None and chunk_error.detail == error.detail


def test_jsonl_chunks_reproduce_the_sequential_read(samples: Path, tmp_path: Path) -> None:
    objects = json.loads((samples / "1000rows3.json").read_text(encoding="utf-8"))
    lines = [json.dumps(o, ensure_ascii=False) for o in objects]
    lines[10], lines[20] = "{broken", ""
    path = write(tmp_path / "t.jsonl", "\n".join(lines) + "\n")
    expected = list(iter_records(path))
    assert len(expected) == 999 and expected[10].error is not None and expected[-1].number == 1000
    for target in (1, 5_000, 100_000, 10_000_000):
        chunks = plan_chunks(path, "jsonl", target)
        assert_well_formed(chunks, path.stat().st_size)
        assert list(read_by_chunks(path, "jsonl", target)) == expected


@pytest.mark.parametrize(("name", "fmt"), [("e.csv", "csv"), ("e.json", "json"), ("e.jsonl", "jsonl")])
def test_empty_file_is_one_empty_chunk(tmp_path: Path, name: str, fmt: Format) -> None:
    path = write(tmp_path / name, b"")
    assert plan_chunks(path, fmt, 10) == [Chunk(0, 0, 0, 1)]
    assert list(read_by_chunks(path, fmt, 10)) == []


def test_stream_of_objects_is_one_chunk(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '{\n "a": 1\n}\n{\n "a": 2\n}\n')
    assert plan_chunks(path, "json", 1) == [Chunk(0, 0, path.stat().st_size, 1)]


def test_chunk_travels_as_a_plain_list() -> None:
    chunk = Chunk(3, 100, 200, 42)
    assert Chunk(*json.loads(json.dumps(dataclasses.astuple(chunk)))) == chunk


def test_bad_chunk_arguments(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a\n1\n")
    with pytest.raises(ValueError, match="target_bytes"):
        plan_chunks(path, "csv", 0)
    with pytest.raises(ValueError, match="does not fit"):
        list(iter_records(path, "csv", Chunk(0, 0, 99, 1)))


# --- hostile input: every record is refused on its own --------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("bad", [DEEP, '{"a": ' + DEEP + "}", '{"a": ' + "7" * 5000 + "}", "7" * 5000])
def test_json_lines_refuse_values_python_cannot_build(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path / "t.jsonl", f'{{"a": 1}}\n{bad}\n{{"a": 3}}\n')
    records, error = collect(iter_records(path))
    assert error is None
    assert [(r.number, r.data) for r in records] == [(1, {"a": 1}), (2, None), (3, {"a": 3})]
    assert records[1].error is not None and records[1].error.startswith("bad_json: ")


@pytest.mark.parametrize("bad", [DEEP, '{"a": ' + DEEP + "}", '{"a": ' + "7" * 5000 + "}", "7" * 5000])
@pytest.mark.parametrize("read_size", [4, 1 << 20])
def test_json_arrays_skip_values_python_cannot_build(tmp_path: Path, bad: str, read_size: int) -> None:
    path = write(tmp_path / "t.json", f'[{{"a": 1}}, {bad}, {{"a": "x]}},"}}]')
    records, error = collect(iter_records(path, read_size=read_size))
    assert error is None
    assert [(r.number, r.data) for r in records] == [(1, {"a": 1}), (2, None), (3, {"a": "x]},"})]
    assert records[1].error is not None and records[1].error.startswith("bad_json: ")
    assert "nested too deeply" in records[1].error or "4300" in records[1].error


def test_chunks_of_an_array_with_a_deep_value_read_like_the_whole_file(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", f'[{{"a": 1}}, {DEEP}, {{"a": 2}}, {{"a": 3}}]')
    chunks = plan_chunks(path, "json", 10)
    assert len(chunks) > 1
    by_chunk = [r for c in chunks for r in iter_records(path, "json", c)]
    assert by_chunk == list(iter_records(path, "json"))
    assert [r.number for r in by_chunk if r.data is None] == [2]


def test_a_deep_value_never_closed_makes_the_array_unparseable(tmp_path: Path) -> None:
    path = write(tmp_path / "t.json", '[{"a": 1}, ' + "[" * 100_000)
    records, error = collect(iter_records(path))
    assert records == [Record(1, {"a": 1}, None)]
    assert error is not None and error.reason == "unparseable"


def test_a_chunk_whose_bytes_are_gone_is_a_file_changed_error(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", "".join(f'{{"a": {i}}}\n' for i in range(100)))
    chunks = plan_chunks(path, "jsonl", 100)
    os.truncate(path, 150)
    with pytest.raises(PermanentIngestError) as info:
        list(iter_records(path, "jsonl", chunks[-1]))
    assert info.value.reason == "file_changed"


def test_reading_csv_sets_the_field_limit_it_needs(tmp_path: Path) -> None:
    csv.field_size_limit(1024)
    try:
        path = write(tmp_path / "t.csv", "a\n" + "x" * 200_000 + "\n")
        assert [len(r.data["a"]) for r in iter_records(path) if r.data] == [200_000]
    finally:
        csv.field_size_limit(128 * 1024)


def test_csv_with_nul_bytes_keeps_them_in_the_field(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b\nx\x00y,z\n")
    assert [r.data for r in iter_records(path)] == [{"a": "x\x00y", "b": "z"}]


def test_utf16_csv_is_unparseable(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,b\n1,2\n".encode("utf-16"))
    records, error = collect(iter_records(path))
    assert records == [] and error is not None and error.reason == "unparseable"
