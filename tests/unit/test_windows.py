"""Ingestion windows: parsing with errors that say what is expected, open or not at a given time, and
when the next one opens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mysimbdp_tasks.core import tenants, windows
from mysimbdp_tasks.core.errors import ConfigError

pytestmark = pytest.mark.unit

SAT = datetime(2026, 12, 5, tzinfo=UTC)  # a Saturday


def at(day: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    """December 2026: the 3rd is a Thursday, the 4th a Friday, the 11th the next Friday."""
    return datetime(2026, 12, day, hh, mm, ss, tzinfo=UTC)


def test_a_night_window_runs_past_midnight_and_excludes_its_end() -> None:
    night = [windows.parse("22:00-06:00")]
    assert windows.is_open(night, at(3, 23, 30)) and windows.is_open(night, at(4, 5, 59, 59))
    assert not windows.is_open(night, at(4, 6)) and not windows.is_open(night, at(4, 12))
    assert windows.is_open(night, at(4, 22))  # includes its start
    assert windows.next_open(night, at(4, 12)) == at(4, 22)
    assert windows.next_open(night, at(4, 23)) == at(4, 23)  # open now: now


def test_days_name_the_day_a_window_starts_even_past_midnight() -> None:
    friday_night = [windows.parse("fri 22:00-02:00")]
    assert windows.is_open(friday_night, at(5, 1, 30))  # Saturday 01:30 belongs to Friday's window
    assert not windows.is_open(friday_night, at(5, 23))  # Saturday 23:00 does not
    assert windows.next_open(friday_night, at(5, 3)) == at(11, 22)  # next Friday


def test_weekday_ranges_lists_seconds_and_a_whole_day() -> None:
    work = windows.parse("Mon-Fri 18:30:15-23:00")
    assert work.days == frozenset(range(5)) and work.start == 18 * 3600 + 30 * 60 + 15
    weekend = windows.parse("sat,sun 00:00-24:00")
    assert windows.is_open([weekend], SAT.replace(hour=23, minute=59, second=59))
    assert windows.next_open([work, weekend], at(4, 23, 30)) == SAT  # Friday 23:30 -> Saturday 00:00
    assert windows.parse("sun-tue 01:00-02:00").days == frozenset({6, 0, 1})


def test_no_windows_means_always_open() -> None:
    assert windows.is_open([], at(4, 3)) and windows.next_open([], at(4, 3)) == at(4, 3)


@pytest.mark.parametrize(("text", "says"), [
    ("x", "expected"), ("25:00-01:00", "from 00:00 to 24:00"), ("10:60-11:00", "from 00:00 to 24:00"),
    ("24:00-02:00", "24:00 only as an end"), ("10:00-10:00", "is empty"), ("fun 10:00-11:00", "days are"),
    ("10-11", "expected"), (5, "expected a string")])
def test_a_bad_window_is_refused_naming_what_is_expected(text: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        windows.parse(text)


def test_tenants_check_names_each_bad_window_and_keeps_good_ones() -> None:
    raw = json.loads((Path(__file__).parents[2] / "tenants" / "tenants.json").read_text())
    raw["tenant2"]["windows"] = ["mon-fri 18:00-23:00", "nope"]
    with pytest.raises(ConfigError) as err:
        tenants.parse(raw)
    assert [str(p).split(":")[0] for p in err.value.problems] == ["tenant2.windows[1]"]
    raw["tenant2"]["windows"] = "18:00-23:00"
    with pytest.raises(ConfigError, match=r"tenant2\.windows: expected a list"):
        tenants.parse(raw)
    raw["tenant2"]["windows"] = ["22:00-06:00"]
    assert [w.text for w in tenants.parse(raw)["tenant2"].windows] == ["22:00-06:00"]
