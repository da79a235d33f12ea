"""The anchors benchmark's pure parts: each tool's copy of the rows, the row-by-row comparison, the tools'
reports, the ratios and the document; and the batch benchmark's CPU per row per role."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from benchmarks import anchor_data, anchor_results, anchor_tools, anchors
from benchmarks.anchor_data import Verdict
from benchmarks.anchor_results import LoaderRun
from benchmarks.errors import BenchmarkError
from benchmarks.results import PIPELINE, Measurement

pytestmark = pytest.mark.unit

AWKWARD = [
    # created_utc, subreddit, id, author, body
    ("1430438527", "pittsburgh", "g3_0000", "pghchaz", 'a "quoted" word, C:\\Users\\reddit\\file.txt \\"'),
    ("1430438702", "CHIBears", "g3_0001", "x", "two\nlines\r\nand a windows line\rend"),
    ("0", "s", "g3_0002", "y", ""),
    ("1700000000", "s", "g3_0003", "z", "ñandú 👍🏽, a,b; '); DROP KEYSPACE tenant2; --"),
]


def _generated(path: Path) -> Path:
    """A file written as the generator writes it: csv.writer's default dialect, CRLF rows."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(anchor_data.COLUMNS)
        writer.writerows(AWKWARD)
    return path


def _as_cqlsh_reads(path: Path) -> list[list[str]]:
    """What cqlsh's COPY FROM does with its file: lines, then csv.reader with its default dialect."""
    with path.open(encoding="utf-8") as fh:  # universal newlines, as cqlsh opens it
        lines = fh.readlines()[1:]
    return [next(csv.reader([line], quotechar='"', escapechar="\\", doublequote=False)) for line in lines]


def test_expected_rows_reads_every_value_back_exactly(tmp_path: Path) -> None:
    rows = anchor_data.expected_rows(_generated(tmp_path / "g.csv"))
    assert rows[("CHIBears", "g3_0001", "x")] == (dt.datetime(2015, 5, 1, 0, 5, 2), AWKWARD[1][4])
    assert rows[("pittsburgh", "g3_0000", "pghchaz")][1] == AWKWARD[0][4]
    assert rows[("s", "g3_0002", "y")] == (dt.datetime(1970, 1, 1), "")


def test_cqlsh_copy_is_one_line_per_record_and_reads_back_to_the_one_line_rows(tmp_path: Path) -> None:
    src = _generated(tmp_path / "g.csv")
    assert anchor_data.write_cqlsh_copy(src, tmp_path / "c.csv") == len(AWKWARD)
    parsed = _as_cqlsh_reads(tmp_path / "c.csv")
    assert len(parsed) == len(AWKWARD)  # a record per line: cqlsh counts lines as records
    want = anchor_data.one_line_rows(anchor_data.expected_rows(src))
    got = {(r[1], r[2], r[3]): (dt.datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S+0000"), r[4]) for r in parsed}
    assert got == want
    assert got[("CHIBears", "g3_0001", "x")][1] == "two\\nlines\\r\\nand a windows line\\rend"
    assert got[("pittsburgh", "g3_0000", "pghchaz")][1] == AWKWARD[0][4]  # quotes and backslashes intact


def test_cqlsh_timestamp_is_an_iso_text_not_an_integer() -> None:
    assert anchor_data.cqlsh_timestamp("1430438527") == "2015-05-01 00:02:07+0000"


KEY = ("s", "i", "a")
WHEN = dt.datetime(2015, 5, 1)


def test_compare_accepts_the_same_rows_in_any_order_and_empty_text_as_null() -> None:
    expected = {KEY: (WHEN, ""), ("s", "j", "a"): (WHEN, "b")}
    verdict = anchor_data.compare(expected, [(("s", "j", "a"), (WHEN, "b")), (KEY, (WHEN, None))])
    assert verdict.ok and verdict.found == 2 and verdict.line().startswith("verified")


@pytest.mark.parametrize(("actual", "missing", "extra", "different"), [
    ([], 1, 0, 0),
    ([(KEY, (WHEN, "b")), (("s", "x", "a"), (WHEN, "b"))], 0, 1, 0),
    ([(KEY, (WHEN, "b "))], 0, 0, 1),  # one trailing space
    ([(KEY, (WHEN + dt.timedelta(seconds=1), "b"))], 0, 0, 1),
    ([(KEY, (WHEN, None))], 0, 0, 1),
])
def test_compare_reports_each_kind_of_mismatch(actual: list, missing: int, extra: int, different: int) -> None:
    verdict = anchor_data.compare({KEY: (WHEN, "b")}, actual)
    assert (verdict.missing, verdict.extra, verdict.different) == (missing, extra, different)
    assert not verdict.ok and verdict.examples and "MISMATCH" in verdict.line()


def test_tool_reports_are_parsed_short_and_long() -> None:
    short = anchor_tools.parse_cqlsh("Processed: 8714\n8714 rows imported from 1 files in 2.981 seconds (0 skipped).")
    assert (short.rows, short.failed, short.seconds) == (8714, 0, pytest.approx(2.981))
    long = anchor_tools.parse_cqlsh("260,000 rows imported from 1 files in 0 day, 0 hour, 1 minutes, and 30.5 seconds "
                                    "(2 skipped).")
    assert (long.rows, long.failed, long.seconds) == (260_000, 2, pytest.approx(90.5))
    out = ("total | failed | rows/s | p50ms\n 1,000 | 0 | 100 | 1.0\n"
           "total | failed | rows/s | p50ms\n 8,714 |      1 |  2,000 | 116.11 |\n")
    bulk = anchor_tools.parse_dsbulk(out)
    assert (bulk.rows, bulk.failed, bulk.seconds) == (8713, 1, pytest.approx(4.357))


def test_dsbulk_tuned_adds_its_options_and_keeps_the_format_options(tmp_path: Path) -> None:
    defaults, tuned = anchor_tools.SETTINGS["dsbulk"]
    argv = anchor_tools.dsbulk_argv("java", tmp_path, "h", 9042, "ks", "t", tmp_path / "f.csv", tmp_path, tuned)
    assert "REPLICA_SET" in argv and "UNITS_SINCE_EPOCH" in argv and argv[argv.index("-url") + 1].endswith("f.csv")
    plain = anchor_tools.dsbulk_argv("java", tmp_path, "h", 9042, "ks", "t", tmp_path / "f.csv", tmp_path, defaults)
    assert "REPLICA_SET" not in plain and "-1" in plain


def test_json_lines_copy_holds_the_same_rows_with_integer_times(tmp_path: Path) -> None:
    src = _generated(tmp_path / "g.csv")
    assert anchor_data.write_jsonl(src, tmp_path / "g.jsonl") == len(AWKWARD)
    lines = (tmp_path / "g.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(AWKWARD)  # a record per line, line breaks in bodies escaped by JSON
    records = [json.loads(line) for line in lines]
    got = {(r["subreddit"], r["id"], r["author"]): (dt.datetime.fromtimestamp(r["created_utc"], dt.UTC)
                                                    .replace(tzinfo=None), r["body"]) for r in records}
    assert got == anchor_data.expected_rows(src)
    assert all(type(r["created_utc"]) is int for r in records)


def test_dsbulk_reads_json_lines_with_its_json_connector(tmp_path: Path) -> None:
    _, tuned = anchor_tools.SETTINGS["dsbulk"]
    argv = anchor_tools.dsbulk_argv("java", tmp_path, "h", 9042, "ks", "t", tmp_path / "f.jsonl", tmp_path, tuned,
                                    "json")
    assert argv[argv.index("-c") + 1] == "json" and "UNITS_SINCE_EPOCH" in argv and "REPLICA_SET" in argv
    assert argv[argv.index("--connector.json.url") + 1].endswith("f.jsonl") and "-url" not in argv
    assert "-header" not in argv and not any(a.startswith("--connector.csv") for a in argv)


def test_json_format_loads_with_the_pipeline_and_dsbulk_only() -> None:
    assert anchors.parse_options(["--format", "json"]).only == ("pipeline", "dsbulk")
    assert anchors.parse_options(["--format", "json", "--only", "pipeline"]).only == ("pipeline",)
    with pytest.raises(BenchmarkError, match="CSV only"):
        anchors.parse_options(["--format", "json", "--only", "pipeline,cqlsh"])


def run(case: str, tool: str, rows: int, seconds: float, ok: bool = True, loader_us: float = 30.0) -> LoaderRun:
    verdict = Verdict(rows, rows, 0, 0, 0 if ok else 3)
    return LoaderRun(case, tool, "", rows, seconds, seconds + 2, 90 * 2**20, 200 * 2**20,
                     {"loader": rows * loader_us * 1e-6, "cassandra": rows * 32e-6, "kafka": 0.0,
                      "rest": rows * 5e-6}, verdict)


def test_ratios_take_the_best_verified_setting_of_each_tool() -> None:
    runs = [run("pipeline", "pipeline", 100_000, 2.0),  # 50,000 rows/s
            run("cqlsh defaults", "cqlsh", 100_000, 5.0), run("cqlsh tuned", "cqlsh", 100_000, 4.0),
            run("dsbulk defaults", "dsbulk", 100_000, 1.0, ok=False), run("dsbulk tuned", "dsbulk", 100_000, 10.0)]
    doc = anchor_results.report(runs, {})
    assert doc["ratios"] == {"pipeline_vs_best_cqlsh": 2.0, "best_cqlsh": "cqlsh tuned",
                             "pipeline_vs_best_cqlsh_cpu_bound": 1.0,
                             "pipeline_vs_best_dsbulk": 5.0, "best_dsbulk": "dsbulk tuned",
                             "pipeline_vs_best_dsbulk_cpu_bound": 1.0}
    assert [t["met"] for t in doc["targets"]] == [True, True]
    assert doc["verified"] is False
    first = doc["runs"][0]
    assert first["cpu_us_per_row"] == {"loader": 30.0, "cassandra": 32.0, "kafka": 0.0, "rest": 5.0}
    assert "MISMATCH" in anchor_results.table(runs) and "30+32+0+5" in anchor_results.table(runs)


def test_cpu_bound_rate_counts_the_loader_and_the_services_not_the_rest_of_the_machine() -> None:
    # Same wall time, but the pipeline spends 18 us of its own per row against cqlsh's 46: at 32 us
    # of Cassandra each, the cores allow (46 + 32) / (18 + 32) = 1.56x the rows, whatever else ran.
    runs = [run("pipeline", "pipeline", 100_000, 4.0, loader_us=18.0), run("cqlsh tuned", "cqlsh", 100_000, 4.0,
                                                                          loader_us=46.0)]
    ratios = anchor_results.ratios(runs)
    assert ratios["pipeline_vs_best_cqlsh"] == 1.0
    assert ratios["pipeline_vs_best_cqlsh_cpu_bound"] == 1.56
    assert runs[0].cpu_bound_rows_per_s == anchor_results.CORES * 1e6 / 50
    assert "pipeline / best cqlsh 1.56x" in anchor_results.summary(runs)


def test_options_quick_only_and_refusals() -> None:
    assert anchors.parse_options(["--quick"]).mb == anchors.QUICK_MB
    assert anchors.parse_options(["--quick", "--mb", "5"]).mb == 5
    assert anchors.parse_options(["--only", "dsbulk,pipeline"]).only == ("pipeline", "dsbulk")
    with pytest.raises(SystemExit):
        anchors.parse_options(["--only", "sqoop"])


def test_batch_measurement_reports_cpu_per_row_per_role() -> None:
    usage = {"cpu_s": 6.0, "others_cpu_s": {"cassandra": 8.0, "kafka": 0.2}, "elsewhere_cpu_s": 1.0}
    m = Measurement(case="pipeline csv 50 MB", kind=PIPELINE, fmt="csv", size_mb=50, rows=200_000, bytes=1,
                    seconds=5.0, peak_rss_bytes=1, peak_sum_rss_bytes=1, expected_rows=200_000,
                    rows_in_cassandra=200_000, details={"usage": usage})
    assert m.to_dict()["cpu_us_per_row"] == {"workers": 30.0, "cassandra": 40.0, "kafka": 1.0, "rest": 5.0}
