"""Monitor rules and manager steps, as pure functions of reports, sizes and time."""

from __future__ import annotations

import pytest

from mysimbdp_tasks.control.manager import plan
from mysimbdp_tasks.control.monitor import Decision, Evaluator
from mysimbdp_tasks.core import tenants
from mysimbdp_tasks.core.reports import Report

pytestmark = pytest.mark.unit

T = tenants.parse({"tenant1": {
    "max_messages_per_day": 10, "namespace": "ks", "table_name": "t", "max_avg_ingestion_ms": 100,
    "max_lag_messages": 1000, "min_workers": 1, "max_workers": 3,
    "schema": {"id": "text", "key": "(id)"},
}})["tenant1"]


def report(source: str, avg_ms: float = 10, lag: int | None = None, messages: int = 100, end: float = 100.0,
           tenant: str = "tenant1") -> Report:
    return Report(source=source, tenant=tenant, window_start=end - 5, window_end=end, messages=messages,
                  bytes=1000, avg_ms=avg_ms, max_ms=avg_ms, errors=0, lag=lag, host="h", pid=1)


def evaluator() -> Evaluator:
    return Evaluator(lambda: {"tenant1": T}, idle_after_s=30)


def test_slow_worker_window_asks_to_grow_with_evidence() -> None:
    d = evaluator().observe(report("worker", avg_ms=250))
    assert d is not None and d.action == "grow" and "slow" in d.reason and d.evidence[0]["avg_ms"] == 250


def test_bridge_lag_over_threshold_asks_to_grow() -> None:
    d = evaluator().observe(report("bridge", lag=5000))
    assert d is not None and d.action == "grow" and "5000 messages waiting" in d.reason


def test_reports_within_thresholds_and_unknown_tenants_decide_nothing() -> None:
    e = evaluator()
    assert e.observe(report("worker", avg_ms=50)) is None
    assert e.observe(report("bridge", lag=10)) is None
    assert e.observe(report("client", avg_ms=5000)) is None
    assert e.observe(report("worker", avg_ms=900, tenant="tenant9")) is None


def test_idle_tenant_asks_to_shrink_once_per_idle_period() -> None:
    e = evaluator()
    e.observe(report("worker", end=100))
    assert e.idle(120) == []
    first = e.idle(131)
    assert [d.action for d in first] == ["shrink"] and "idle" in first[0].reason
    assert e.idle(140) == []
    assert len(e.idle(162)) == 1
    e.observe(report("worker", end=170))  # activity again: no shrink
    assert e.idle(180) == []


def grow(reason: str = "slow") -> Decision:
    return Decision("tenant1", "grow", reason, 0.0)


def test_manager_grows_within_max_and_respects_cooldown() -> None:
    assert plan(grow(), T, size=1, last_change=None, now=100, cooldown_s=30).delta == 1
    cooling = plan(grow(), T, size=2, last_change=90, now=100, cooldown_s=30)
    assert cooling.delta == 0 and "cooling down" in cooling.reason
    at_max = plan(grow(), T, size=3, last_change=None, now=100, cooldown_s=30)
    assert at_max.delta == 0 and "max_workers" in at_max.reason


def test_manager_shrinks_down_to_min_only() -> None:
    shrink = Decision("tenant1", "shrink", "idle", 0.0)
    assert plan(shrink, T, size=3, last_change=0, now=100, cooldown_s=30).delta == -1
    assert plan(shrink, T, size=1, last_change=0, now=100, cooldown_s=30).delta == 0


def test_decision_json_round_trip_and_rejects_garbage() -> None:
    d = Decision("tenant1", "grow", "slow", 1.5, [{"avg_ms": 3}])
    assert Decision.from_json(d.to_json()) == d
    with pytest.raises(ValueError, match="not a scaling decision"):
        Decision.from_json(b'{"tenant": "x", "action": "explode"}')
