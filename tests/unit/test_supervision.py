"""Restart and outage rules, as pure functions of failures and time: backoff, restart policy,
the state ``mysimbdp status`` shows, and waiting out a service with one log line per outage."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from kafka.errors import CommitFailedError, IllegalGenerationError, KafkaConnectionError

from mysimbdp_tasks.commands.platform import run_bridges
from mysimbdp_tasks.core.backoff import Backoff, RestartPolicy
from mysimbdp_tasks.core.errors import Stopping
from mysimbdp_tasks.core.runstate import ProcessState, describe, read_json
from mysimbdp_tasks.services.outages import ControlPoller, Waiter, service_of

pytestmark = pytest.mark.unit


def test_backoff_doubles_from_its_first_delay_up_to_its_cap() -> None:
    b = Backoff(initial=1, factor=2, cap=60)
    assert [b.delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert b.delay(10_000) == 60  # no overflow after days of failures


def test_a_process_dying_again_and_again_waits_longer_each_time() -> None:
    policy = RestartPolicy(Backoff(initial=1, factor=2, cap=30), reset_after=60)
    failures, delays = 0, []
    for _ in range(7):
        failures, delay = policy.after_exit(failures, ran_for=0.5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert failures == 7


def test_a_process_that_ran_well_is_restarted_after_the_first_delay_again() -> None:
    policy = RestartPolicy(Backoff(initial=1, factor=2, cap=30), reset_after=60)
    assert policy.after_exit(failures=6, ran_for=61) == (1, 1)
    assert policy.after_exit(failures=6, ran_for=59) == (7, 30)


CHILD = {"name": "watcher", "pid": 42, "status": "running", "started_at": 100.0, "restarts": 2}


def test_status_shows_running_waiting_restarting_and_stopped() -> None:
    assert describe(CHILD, None, alive=True, supervised=True, now=200) == "running"
    waiting = {"pid": 42, "waiting_for": {"redis": 190.0}}
    assert describe(CHILD, waiting, alive=True, supervised=True, now=200).startswith("waiting for redis since")
    assert describe(CHILD, waiting, alive=True, supervised=True, now=200).endswith("(10 s)")
    backoff = {**CHILD, "pid": None, "status": "backoff", "backoff_until": 204.0}
    assert describe(backoff, None, alive=False, supervised=True, now=200) == "restarting in 4 s"
    assert describe(backoff, None, alive=False, supervised=False, now=200) == "stopped"
    assert describe(CHILD, None, alive=False, supervised=True, now=200) == "stopped"
    assert describe(CHILD, None, alive=True, supervised=False, now=200) == "running (unsupervised)"


def test_a_wait_published_by_an_earlier_process_of_the_same_name_is_not_shown() -> None:
    stale = {"pid": 41, "waiting_for": {"redis": 190.0}}
    assert describe(CHILD, stale, alive=True, supervised=True, now=200) == "running"


def test_outages_are_told_from_other_failures() -> None:
    assert service_of(redis.exceptions.ConnectionError("refused")) == "redis"
    assert service_of(redis.exceptions.TimeoutError("slow")) == "redis"
    assert service_of(ValueError("bad row")) is None
    assert service_of(RecursionError()) is None


def _flaky(failures: int, exc: Exception) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise exc
        return "done"
    return calls, call


def test_the_waiter_retries_an_outage_logs_it_once_and_publishes_the_wait(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    state = ProcessState(tmp_path, "watcher")
    seen: list[str | None] = []
    real_waiting = state.waiting

    def spy(service: str) -> None:
        real_waiting(service)
        seen.append((read_json(tmp_path / "state" / "watcher.json") or {}).get("state"))
    state.waiting = spy  # type: ignore[method-assign]
    waiter = Waiter("watcher", state=state, backoff=Backoff(initial=0.001, factor=1, cap=0.001))
    calls, call = _flaky(5, redis.exceptions.ConnectionError("refused"))
    with caplog.at_level(logging.WARNING):
        assert waiter.call(call) == "done"
    assert len(calls) == 6
    assert seen == ["waiting"]
    assert [r.getMessage() for r in caplog.records if "waiting for" in r.getMessage()] == [
        "watcher: waiting for redis (ConnectionError: refused)"]
    assert (read_json(tmp_path / "state" / "watcher.json") or {})["state"] == "running"
    assert waiter.outages == 1


def test_the_waiter_redoes_the_half_done_work_before_each_retry() -> None:
    resumed: list[int] = []
    _, call = _flaky(2, redis.exceptions.ConnectionError("refused"))
    waiter = Waiter("watcher", backoff=Backoff(initial=0.001, factor=1, cap=0.001))
    waiter.call(call, resume=lambda: resumed.append(1))
    assert len(resumed) == 2


def test_the_waiter_lets_other_failures_through_at_once() -> None:
    calls, call = _flaky(1, ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        Waiter("watcher").call(call)
    assert len(calls) == 1


def test_a_stop_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    _, call = _flaky(1000, redis.exceptions.ConnectionError("refused"))
    with pytest.raises(Stopping):
        Waiter("watcher", stop).call(call)


def test_two_threads_waiting_for_one_service_publish_running_only_when_both_are_back(tmp_path: Path) -> None:
    state = ProcessState(tmp_path, "bridge")
    state.waiting("kafka")
    state.waiting("kafka")
    state.resumed("kafka")
    assert (read_json(tmp_path / "state" / "bridge.json") or {})["state"] == "waiting"
    state.resumed("kafka")
    assert (read_json(tmp_path / "state" / "bridge.json") or {})["state"] == "running"


class _Consumer:
    """A consumer whose polls fail with the given errors, in order, then return one record."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.polls = 0

    def poll(self, timeout_ms: int) -> dict[str, list[str]]:
        self.polls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"reports-0": ["r"]}


FAST = Backoff(initial=0.001, factor=1, cap=0.001)


def test_a_control_process_polls_again_after_a_poll_failed_for_a_reason_other_than_kafka_away(
        caplog: pytest.LogCaptureFixture) -> None:
    consumer = _Consumer(IllegalGenerationError(), CommitFailedError("rebalanced"))
    poller = ControlPoller(consumer, Waiter("monitor", backoff=FAST))
    with caplog.at_level(logging.WARNING):
        assert [poller.poll(10), poller.poll(10), poller.poll(10)] == [{}, {}, {"reports-0": ["r"]}]
    assert [r.getMessage().split(":")[:2] for r in caplog.records] == [
        ["monitor", " a poll failed (1 in a row), polling again"],
        ["monitor", " a poll failed (2 in a row), polling again"]]
    assert poller.failures == 0


def test_kafka_away_is_waited_out_within_one_poll() -> None:
    consumer = _Consumer(KafkaConnectionError("refused"), KafkaConnectionError("refused"))
    poller = ControlPoller(consumer, Waiter("manager", backoff=FAST))
    assert poller.poll(10) == {"reports-0": ["r"]}
    assert consumer.polls == 3


def test_a_control_process_gives_up_after_too_many_failed_polls_in_a_row() -> None:
    poller = ControlPoller(_Consumer(*[IllegalGenerationError()] * 3), Waiter("monitor", backoff=FAST), limit=3)
    assert poller.poll(10) == poller.poll(10) == {}
    with pytest.raises(IllegalGenerationError):
        poller.poll(10)


class _Bridge:
    def __init__(self, name: str, fails: bool) -> None:
        self.tenant = type("T", (), {"name": name})()
        self.fails = fails
        self.ended = False

    def run(self, stop: threading.Event, wait: Waiter) -> None:
        if self.fails:
            raise RuntimeError("poison")
        stop.wait(30)
        self.ended = True


def test_a_failed_bridge_stops_its_process_rather_than_leave_its_tenant_unserved_beside_the_others() -> None:
    stop = threading.Event()
    failing, healthy = _Bridge("t1", fails=True), _Bridge("t2", fails=False)
    assert run_bridges([failing, healthy], stop, Waiter("bridge", stop)) == ["t1"]
    assert stop.is_set() and healthy.ended  # the other bridge stopped cleanly, to be started again
