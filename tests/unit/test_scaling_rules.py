"""Monitor rules and manager steps, as pure functions of reports, sizes and time."""

from __future__ import annotations

import pytest

from mysimbdp_tasks.control.backlog import BacklogRule, queue_keys, target_size
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


# -- batch backlog -------------------------------------------------------------------------

B = tenants.parse({"tenant2": {
    "max_file_size": 10, "file_type": ".csv", "max_amount_of_data": 100, "max_number_of_files": 10,
    "namespace": "ks2", "table_name": "t", "min_workers": 1, "max_workers": 3, "max_queued_tasks": 2,
    "schema": {"id": "text", "key": "(id)"},
}})["tenant2"]


def test_max_queued_tasks_defaults_to_two_per_process() -> None:
    assert T.max_queued_tasks == 2 and B.max_queued_tasks == 2


def test_kombu_priority_lists_are_all_read() -> None:
    assert queue_keys("tenant2.batch") == ["tenant2.batch", "tenant2.batch\x06\x163", "tenant2.batch\x06\x166",
                                           "tenant2.batch\x06\x169"]


def test_backlog_over_threshold_asks_to_grow_with_the_count_and_repeats_only_every_few_seconds() -> None:
    rule = BacklogRule(empty_for_s=30, grow_every_s=5)
    assert rule.observe(B, 2, now=100) is None  # 2 waiting: within max_queued_tasks even for one process
    d = rule.observe(B, 7, now=101)
    assert d is not None and d.action == "grow" and d.backlog == 7 and "backlog: 7 tasks waiting" in d.reason
    assert d.evidence[0]["waiting"] == 7 and d.evidence[0]["max_queued_tasks"] == 2
    assert rule.observe(B, 6, now=103) is None
    later = rule.observe(B, 6, now=106)
    assert later is not None and later.backlog == 6


def test_drained_queue_shrinks_after_the_cool_down_and_a_bounded_number_of_times() -> None:
    rule = BacklogRule(empty_for_s=30, grow_every_s=5)
    rule.observe(B, 9, now=100)
    assert rule.busy("tenant2")
    assert rule.observe(B, 0, now=110) is None and not rule.busy("tenant2")
    assert rule.observe(B, 0, now=129) is None  # empty only 19 s since the last task waited
    first = rule.observe(B, 0, now=131)
    assert first is not None and first.action == "shrink" and "drained" in first.reason and first.backlog is None
    assert rule.observe(B, 0, now=150) is None
    shrinks = [d for t in range(161, 400, 30) if (d := rule.observe(B, 0, now=t))]
    assert len(shrinks) == 2 * (B.max_workers - B.min_workers) - 1  # then it stops asking
    assert rule.observe(B, 1, now=500) is None and rule.busy("tenant2")  # new work: counting starts over
    assert rule.observe(B, 0, now=531) is not None


def test_no_shrink_for_a_tenant_that_never_had_a_backlog_or_whose_stream_is_busy() -> None:
    rule = BacklogRule(empty_for_s=30)
    assert all(rule.observe(B, 0, now=t) is None for t in range(0, 300, 10))
    rule.observe(B, 5, now=300)
    assert rule.observe(B, 0, now=400, stream_active=True) is None
    assert rule.observe(B, 0, now=401) is not None


def backlog(waiting: int) -> Decision:
    return Decision("tenant2", "grow", f"backlog: {waiting}", 0.0, backlog=waiting)


def test_manager_sizes_the_pool_from_the_backlog_per_process_within_max_workers() -> None:
    assert target_size(B, 1) == 1 and target_size(B, 5) == 3 and target_size(B, 500) == 3
    step = plan(backlog(5), B, size=1, last_change=None, now=100, cooldown_s=30)
    assert step.delta == 2 and "1 -> 3" in step.reason and "5.0 tasks waiting per process" in step.reason
    assert plan(backlog(3), B, size=1, last_change=None, now=100, cooldown_s=30).delta == 1
    within = plan(backlog(4), B, size=2, last_change=None, now=100, cooldown_s=30)
    assert within.delta == 0 and "within max_queued_tasks 2" in within.reason
    assert plan(backlog(90), B, size=3, last_change=None, now=100, cooldown_s=30).delta == 0
    assert plan(backlog(90), B, size=2, last_change=95, now=100, cooldown_s=30).delta == 0  # cooling down


def test_backlog_travels_in_the_decision_and_garbage_counts_are_refused() -> None:
    d = backlog(12)
    assert Decision.from_json(d.to_json()) == d
    for count in (b"-1", b'"many"', b"true"):
        bad = b'{"tenant": "x", "action": "grow", "backlog": ' + count + b"}"
        with pytest.raises(ValueError, match="backlog"):
            Decision.from_json(bad)
