"""Data-quality rules: the row-rule grammar (hostile expressions refused with a reason), the checks,
the tenant-config errors, and a chunk ingested with rules (pure: a writer that only counts)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mysimbdp_tasks.cli import main
from mysimbdp_tasks.commands.quality import totals
from mysimbdp_tasks.core import checks, expressions, quality, tenants
from mysimbdp_tasks.core.convert import RowConverter
from mysimbdp_tasks.core.errors import ConfigError
from mysimbdp_tasks.core.formats import detect_format
from mysimbdp_tasks.core.quality import Checker
from mysimbdp_tasks.core.rows import checked, converter_for, ingest_chunk, summarize

ROOT = Path(__file__).resolve().parents[2]
SHIPPED: dict[str, Any] = json.loads((ROOT / "tenants" / "tenants.json").read_text())
COLUMNS = {"created_utc": "timestamp", "ups": "int", "subreddit": "text", "id": "text", "author": "text",
           "score": "int", "body": "text", "ratio": "double", "flag": "boolean"}
NAMES = list(COLUMNS)
NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def row(**values: Any) -> tuple[Any, ...]:
    return tuple(values.get(name) for name in NAMES)


def run(text: str, **values: Any) -> bool | None:
    test, _ = expressions.compile_expression(text, COLUMNS)
    return test(row(**values))


# -- the grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("score <= ups", {"score": 3, "ups": 5}, True),
    ("score <= ups", {"score": 6, "ups": 5}, False),
    ("50 <= ups", {"ups": 50}, True),  # a literal on the left is turned around
    ("ups >= 50 and author != 'x'", {"ups": 60, "author": "x"}, False),
    ("ups >= 50 or author == \"x\"", {"ups": 1, "author": "x"}, True),
    ("not (ups < 0)", {"ups": 1}, True),
    ("NOT ups < 0 AND ups <= 10", {"ups": 11}, False),
    ("created_utc >= '2015-01-01'", {"created_utc": dt.datetime(2015, 5, 1, tzinfo=dt.UTC)}, True),
    ("ratio > -0.5", {"ratio": -0.25}, True),
    ("flag == true", {"flag": False}, False),
])
def test_expressions_evaluate(text: str, values: dict[str, Any], expected: bool) -> None:
    assert run(text, **values) is expected


def test_a_comparison_with_null_is_unknown_and_logic_is_three_valued() -> None:
    assert run("score <= ups", ups=5) is None
    assert run("not (score <= ups)", ups=5) is None
    assert run("score <= ups and ups > 10", ups=5) is False  # false wins over unknown in "and"
    assert run("score <= ups or ups > 1", ups=5) is True  # true wins over unknown in "or"
    assert run("score <= ups or ups > 10", ups=5) is None


def test_expressions_report_the_columns_they_read() -> None:
    _, used = expressions.compile_expression("score <= ups and author != 'x'", COLUMNS)
    assert used == {"score", "ups", "author"}


@pytest.mark.parametrize(("text", "says"), [
    ("__import__('os').system('id')", "unexpected \".system("),
    ("__import__ == 'os'", "column '__import__' is not in the schema"),
    ("ups.__class__ == 1", "unexpected '.__class__"),
    ("ups + 1 > score", "unexpected '+"),
    ("lambda: 1", "unexpected ':"),
    ("open('/etc/passwd') == ups", "column 'open' is not in the schema"),
    ("ups ('x') == 1", "expected a comparison"),
    ("ups", "ends too early"),
    ("ups >", "ends too early"),
    ("ups >= 50 50", "unexpected '50'"),
    ("1 == 1", "two constants"),
    ("(" * 15 + "ups > 1" + ")" * 15, "nested more than"),
    ("ups > 1 and " * 60 + "ups > 1", "characters"),
    ("ups > 1 and " * 25 + "ups > 1", "tokens"),
    ("ups == 'many'", "not a value of column 'ups'"),
    ("author == 5", "not a number"),
    ("flag > true", "use == or !="),
    ("author < ups", "cannot be compared"),
    ("ups == true", "cannot be compared with column 'ups'"),
    ("ups == 1e9", "unexpected"),
    ("body == 'a\\' or 1 == 1'", "unexpected"),
    ("", "expected an expression"),
    ("ups == 'x' ; drop table", "unexpected"),
])
def test_hostile_or_wrong_expressions_are_refused_with_a_reason(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        expressions.compile_expression(text, COLUMNS)


def test_expressions_never_reach_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    def forbidden(*_: Any) -> None:
        raise AssertionError("eval or compile called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "compile", forbidden)
    assert run("score <= ups", score=1, ups=2) is True


# -- rules and checks ----------------------------------------------------------------------------


def rules(spec: dict[str, Any], columns: dict[str, str] | None = None) -> tuple[quality.Quality, list[str]]:
    problems: list[str] = []
    parsed = quality.parse(spec, columns or COLUMNS, lambda path, message: problems.append(f"{path}: {message}"))
    return parsed, problems


def verdicts(spec: dict[str, Any], *rows: tuple[Any, ...]) -> tuple[list[Any], dict[str, Any]]:
    parsed, problems = rules(spec)
    assert not problems
    checker = quality.Checker(parsed, NOW)
    return [checker(r) for r in rows], checker.counts()


def test_each_column_check_fails_what_it_should_and_passes_nulls() -> None:
    spec = {
        "present": {"column": "author", "not_null": True, "action": "refuse"},
        "range": {"column": "ups", "min": 0, "max": 100, "action": "refuse"},
        "short": {"column": "body", "max_length": 5, "action": "tag"},
        "shape": {"column": "id", "regex": "[a-z0-9]+", "action": "refuse"},
        "known": {"column": "subreddit", "one_of": ["a", "b"], "action": "tag"},
        "alive": {"column": "body", "none_of": ["[deleted]"], "action": "tag"},
        "past": {"column": "created_utc", "not_in_future": 60, "action": "refuse"},
    }
    good = row(author="x", ups=5, body="hi", id="ab1", subreddit="a", created_utc=NOW)
    nulls = row(author="x")
    out, counts = verdicts(
        spec, good, nulls,
        row(author=None, ups=5),
        row(author="x", ups=101),
        row(author="x", ups=-1),
        row(author="x", body="[deleted]"),
        row(author="x", id="AB-1"),
        row(author="x", subreddit="c"),
        row(author="x", created_utc=NOW + dt.timedelta(seconds=61)),
        row(author="x", created_utc=NOW + dt.timedelta(seconds=59)),
    )
    assert out[0] is None and out[1] is None
    assert out[2] == ("quality:present", "column 'author' is null")
    assert out[3] == ("quality:range", "column 'ups' is 101, over the maximum 100")
    assert out[4] == ("quality:range", "column 'ups' is -1, under the minimum 0")
    assert out[5] is None  # tagged twice (too long, deleted), landed
    assert out[6][0] == "quality:shape"
    assert out[7] is None  # tagged
    assert out[8][0] == "quality:past"
    assert out[9] is None  # within the skew allowed
    assert counts == {"checked": 10, "failed": {"present": 1, "range": 2, "short": 1, "shape": 1, "known": 1,
                                                "alive": 1, "past": 1}}


def test_a_row_fails_every_rule_it_breaks_and_is_refused_by_the_first_refuse_rule() -> None:
    spec = {"tagged": {"check": "score <= ups", "action": "tag"},
            "first": {"column": "ups", "min": 10, "action": "refuse"},
            "second": {"column": "score", "max": 3, "action": "refuse"}}
    out, counts = verdicts(spec, row(ups=5, score=9))
    assert out == [("quality:first", "column 'ups' is 5, under the minimum 10")]
    assert counts["failed"] == {"tagged": 1, "first": 1, "second": 1}


@pytest.mark.parametrize(("pattern", "says"), [
    ("(a+)+$", "a repetition inside a repetition"),
    ("(a|aa)+", "alternatives inside a repetition"),
    ("([a-z]*)*", "a repetition inside a repetition"),
    ("(x+x+)+y", "a repetition inside a repetition"),
    ("(a)\\1", "a back-reference"),
])
def test_patterns_that_backtrack_without_end_are_refused(pattern: str, says: str) -> None:
    _, problems = rules({"evil": {"column": "body", "regex": pattern, "action": "refuse"}})
    assert len(problems) == 1 and says in problems[0], problems


def test_safe_patterns_match_whole_values_and_long_values_are_not_matched() -> None:
    spec = {"shape": {"column": "body", "regex": "[a-z]+(-[a-z])?|(foo|bar)", "action": "refuse"}}
    out, _ = verdicts(spec, row(body="abc-d"), row(body="bar"), row(body="abc!"),
                      row(body="a" * (checks.MAX_MATCHED + 1)))
    assert out[0] is None and out[1] is None
    assert out[2] == ("quality:shape", "column 'body' does not match '[a-z]+(-[a-z])?|(foo|bar)'")
    assert out[3] is not None and "not matched" in out[3][1]


@pytest.mark.parametrize(("spec", "says"), [
    ({"x": {"column": "autor", "not_null": True, "action": "refuse"}}, "column 'autor' is not in the schema"),
    ({"x": {"column": "body", "min": 3, "action": "refuse"}}, "min: applies to number columns; column 'body' is text"),
    ({"x": {"column": "ups", "max_length": 3, "action": "refuse"}}, "max_length: applies to text and blob"),
    ({"x": {"column": "body", "regex": "(a", "action": "refuse"}}, "regex: bad regular expression"),
    ({"x": {"column": "body", "regex": "a" * 201, "action": "refuse"}}, "at most 200"),
    ({"x": {"column": "ups", "one_of": ["a"], "action": "refuse"}}, "one_of: 'a' is not a value of column 'ups' (int)"),
    ({"x": {"column": "ups", "one_of": [], "action": "refuse"}}, "expected a list of 1 to"),
    ({"x": {"column": "body", "not_in_future": True, "action": "refuse"}}, "applies to timestamp and date"),
    ({"x": {"column": "ups", "min": "5", "action": "refuse"}}, "expected a finite number"),
    ({"x": {"column": "ups", "between": 5, "action": "refuse"}}, "unknown check 'between'"),
    ({"x": {"column": "ups", "action": "refuse"}}, "no check given"),
    ({"x": {"column": "ups", "min": 5, "action": "drop"}}, '"action" must be "refuse"'),
    ({"x": {"column": "ups", "min": 5}}, '"action" must be'),
    ({"x": {"check": "ups >= 5", "column": "ups", "action": "tag"}}, "not both"),
    ({"x": {"check": "ups >>= 5", "action": "tag"}}, "check 'ups >>= 5'"),
    ({"x": {"check": "ups > 1", "action": "tag", "when": 1}}, "unknown key(s) when"),
    ({"Bad-Name": {"column": "ups", "min": 1, "action": "tag"}}, "a rule name is lower-case"),
    ({f"r{i}": {"column": "ups", "min": 1, "action": "tag"} for i in range(33)}, "at most 32"),
])
def test_bad_rules_name_the_rule_and_what_to_fix(spec: dict[str, Any], says: str) -> None:
    _, problems = rules(spec)
    assert any(says in p for p in problems), problems
    assert all(p.startswith("quality") for p in problems)


def test_tenants_check_names_the_tenant_and_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.loads(json.dumps(SHIPPED))
    raw["tenant2"]["quality"]["short"] = {"column": "body", "min": 3, "action": "refuse"}
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match=r"tenant2\.quality\.short: min: applies to number columns"):
        tenants.load(path)
    assert main(["tenants", "check", str(path)]) == 2
    assert "tenant2.quality.short" in capsys.readouterr().err


def test_the_shipped_tenants_carry_the_original_designs_rules() -> None:
    found = tenants.parse(SHIPPED)
    assert found["tenant1"].quality.actions == {"popular": "refuse"}
    assert found["tenant2"].quality.actions == {"deleted_body": "tag"}


# -- a chunk with rules, and the counts ----------------------------------------------------------


def count_only(rows: Any, _refuse: Any) -> int:
    return sum(1 for _ in rows)


def test_a_chunk_refuses_and_tags_by_rule_with_line_numbers(tmp_path: Path) -> None:
    tenant = tenants.parse({"t": {**SHIPPED["tenant2"], "quality": {
        "deleted_body": {"column": "body", "none_of": ["[deleted]", "[removed]"], "action": "tag"},
        "named": {"column": "author", "regex": "[A-Za-z0-9_-]+", "action": "refuse"}}}})["t"]
    path = tmp_path / "t.csv"
    path.write_text("created_utc,subreddit,id,author,body\n"
                    "1430458939,a,1,alice,fine\n"
                    "1430458939,a,2,bob,[deleted]\n"
                    "1430458939,a,3,not ok,hello\n"
                    "yesterday,a,4,carol,bad time\n")
    converter, check = checked(tenant, converter_for(tenant))
    result = ingest_chunk(path, detect_format(path), None, converter, count_only, check=check)
    assert result.rows_ok == 2
    assert [(r["line"], r["reason"]) for r in result.refusals] == [(4, "quality:named"), (5, "bad_value")]
    assert result.quality == {"checked": 3, "failed": {"deleted_body": 1, "named": 1}}
    total = summarize([result.to_dict(), {**result.to_dict(), "index": 1}])
    assert total["quality"] == {"checked": 6, "failed": {"deleted_body": 2, "named": 2}}
    assert quality.describe(tenant.quality, total["quality"]) == {
        "checked": 6,
        "rules": {"deleted_body": {"action": "tag", "failed": 2}, "named": {"action": "refuse", "failed": 2}}}


def test_a_nan_fails_a_range_and_leaves_a_row_rule_unknown_and_the_rows_after_it_land(tmp_path: Path) -> None:
    # NaN is neither under a minimum nor over a maximum; a decimal compared with it raises. Neither
    # may let the value through a range, nor end the chunk for the rows after it.
    columns = {"id": "text", "price": "decimal", "score": "double"}
    problems: list[tuple[str, str]] = []
    rules = quality.parse({"cheap": {"check": "price <= score", "action": "tag"},
                           "bounded": {"column": "score", "min": 0, "max": 100, "action": "refuse"}},
                          columns, lambda where, message: problems.append((where, message)))
    assert problems == []
    path = tmp_path / "t.csv"
    path.write_text("id,price,score\na,1,5\nb,1,NaN\nc,2,7\nd,3,8\ne,1,-inf\n")
    result = ingest_chunk(path, "csv", None, RowConverter(columns, ["id"]), count_only, check=Checker(rules))
    assert result.error is None and result.rows_ok == 3
    assert [(r["line"], r["reason"], r["detail"]) for r in result.refusals] == [
        (3, "quality:bounded", "column 'score' is nan, not a number"),
        (6, "quality:bounded", "column 'score' is -inf, under the minimum 0")]


@pytest.mark.parametrize("bound", [float("nan"), float("inf")])
def test_a_range_bound_must_be_a_finite_number(bound: float) -> None:
    problems: list[tuple[str, str]] = []
    quality.parse({"r": {"column": "ups", "min": bound, "action": "refuse"}}, {"ups": "int"},
                  lambda where, message: problems.append((where, message)))
    assert problems and "expected a finite number" in problems[0][1]


def test_a_tenant_without_rules_keeps_the_sinks_encoder_and_no_checker() -> None:
    plain = tenants.parse({"t": {k: v for k, v in SHIPPED["tenant2"].items() if k != "quality"}})["t"]
    encoder = converter_for(plain)
    assert checked(plain, encoder) == (encoder, None)
    assert summarize([{"index": 0, "rows_ok": 1, "rows_refused": 0, "refusals": []}])["quality"] is None


def test_the_quality_command_adds_up_files_and_windows_per_rule() -> None:
    rows = [{"rule": "popular", "action": "refuse", "source": "file", "checked": 1000, "failed": 985},
            {"rule": "popular", "action": "refuse", "source": "file", "checked": 10, "failed": 1},
            {"rule": "popular", "action": "refuse", "source": "stream", "checked": 50, "failed": 40},
            {"rule": "gone", "action": "tag", "source": "stream", "checked": 5, "failed": 5}]
    out = totals(rows, {"popular": "refuse", "quiet": "tag"})
    assert [r["rule"] for r in out] == ["popular", "quiet", "gone"]
    assert out[0]["files"] == {"count": 2, "checked": 1010, "failed": 986}
    assert out[0]["stream"] == {"count": 1, "checked": 50, "failed": 40}
    assert out[1]["files"]["count"] == 0


def test_prometheus_rule_labels_are_the_tenants_rules_or_other() -> None:
    from mysimbdp_tasks.services import telemetry

    def failed(rule: str, action: str) -> float:
        return telemetry.QUALITY_FAILED.labels("tq", "batch", rule, action)._value.get()  # noqa: SLF001

    before = failed("popular", "refuse"), failed("other", "other")
    telemetry.quality_checked("tq", "batch", {"popular": "refuse"},
                              {"checked": 10, "failed": {"popular": 3, "made_up_name": 2}})
    assert (failed("popular", "refuse") - before[0], failed("other", "other") - before[1]) == (3, 2)
    assert telemetry.reason_label("quality:popular") == "quality"
