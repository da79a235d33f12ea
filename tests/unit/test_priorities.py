"""Tenant batch priorities: parsing with errors that name the tenant and the field, and the order in
which queued files take a free batch slot (priority first, then admission time)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mysimbdp_tasks.core import priorities, tenants
from mysimbdp_tasks.core.errors import ConfigError, SettingsError
from mysimbdp_tasks.core.settings import Settings

pytestmark = pytest.mark.unit

SHIPPED = json.loads((Path(__file__).parents[2] / "tenants" / "tenants.json").read_text())


def _parse(value: object) -> priorities.Priority:
    problems: list[str] = []
    got = priorities.parse(value, lambda path, msg: problems.append(f"{path}: {msg}"))
    assert not problems, problems
    return got


def test_names_and_numbers_are_accepted() -> None:
    assert _parse("high").level == 8 and _parse("LOW").level == 2 and _parse("normal").level == 5
    assert _parse(0).level == 0 and _parse(9).level == 9
    assert _parse("high").text == "high (8)" and _parse(7).text == "7"


@pytest.mark.parametrize("value", [10, -1, 2.5, True, "urgent", None, "5"])
def test_anything_else_is_refused_with_what_is_expected(value: object) -> None:
    raw = {"tenant2": {**SHIPPED["tenant2"], "priority": value}}
    with pytest.raises(ConfigError) as err:
        tenants.parse(raw)
    expected = ("tenant2.priority: expected an integer from 0 to 9 (higher runs first) or one of low, normal, "
                f"high, got {value!r}")
    assert [str(p) for p in err.value.problems] == [expected]


def test_a_tenant_without_priority_is_normal_and_keeps_its_configuration() -> None:
    plain = tenants.parse({"tenant2": SHIPPED["tenant2"]})["tenant2"]
    assert plain.priority.level == 5
    high = tenants.parse({"tenant2": {**SHIPPED["tenant2"], "priority": "high"}})["tenant2"]
    assert high.priority.level == 8
    assert tenants.parse(json.loads(high.to_json()))["tenant2"].priority == high.priority  # as the registry keeps it


def test_a_higher_priority_goes_first_whatever_it_was_admitted_then_the_earlier_file() -> None:
    low_early = priorities.rank(2, 1_800_000_000.0)
    high_late = priorities.rank(8, 1_800_086_400.0)  # a day later
    assert high_late < low_early
    assert priorities.rank(9, 1_800_000_000.0001) > priorities.rank(9, 1_800_000_000.0)  # 0.1 ms apart
    assert priorities.rank(0, 1_800_000_000.0001) > priorities.rank(0, 1_800_000_000.0)


def test_slots_are_unlimited_unless_set() -> None:
    assert Settings.from_env({}).batch_slots == 0
    assert Settings.from_env({"MYSIMBDP_BATCH_SLOTS": ""}).batch_slots == 0
    assert Settings.from_env({"MYSIMBDP_BATCH_SLOTS": "2"}).batch_slots == 2
    with pytest.raises(SettingsError, match="MYSIMBDP_BATCH_SLOTS"):
        Settings.from_env({"MYSIMBDP_BATCH_SLOTS": "none"})
