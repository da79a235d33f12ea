"""A task whose worker keeps dying is given up with reason worker_lost, not redelivered forever."""

from __future__ import annotations

import pytest

from mysimbdp_tasks.core.errors import PermanentIngestError, WorkerLost
from mysimbdp_tasks.core.settings import DEFAULT_MAX_REDELIVERIES, Settings
from mysimbdp_tasks.stream import wire
from mysimbdp_tasks.worker.tasks import worker_lost

pytestmark = pytest.mark.unit

ENV = {"MYSIMBDP_HOME": "/tmp/x"}


def test_a_task_is_given_up_only_once_its_workers_died_more_often_than_allowed() -> None:
    assert worker_lost(1, 2) is None
    assert worker_lost(2, 2) is None
    lost = worker_lost(3, 2)
    assert isinstance(lost, PermanentIngestError)
    assert lost.reason == "worker_lost"
    assert lost.detail == "the worker running it died 3 times"


def test_the_cap_is_high_by_default_and_set_by_the_environment() -> None:
    assert Settings.from_env(ENV).max_redeliveries == DEFAULT_MAX_REDELIVERIES == 10
    assert Settings.from_env({**ENV, "MYSIMBDP_MAX_REDELIVERIES": "2"}).max_redeliveries == 2


def test_a_stream_batch_given_up_for_a_lost_worker_becomes_dead_letters_naming_it() -> None:
    messages = [wire.entry(b'{"id": 1}', b"k1", 0, 7, None), wire.entry(b'{"id": 2}', None, 1, 9, None)]
    letters = wire.given_up(messages, WorkerLost(11))
    assert [(d.partition, d.offset, d.reason) for d in letters] == [(0, 7, "worker_lost"), (1, 9, "worker_lost")]
    assert all("died 11 times" in d.detail for d in letters)
    assert letters[0].value == b'{"id": 1}' and letters[0].key == b"k1"


def test_a_stream_batch_given_up_for_anything_else_keeps_the_generic_reason() -> None:
    letters = wire.given_up([wire.entry(b"{}", None, 0, 1, None)], RecursionError("too deep"))
    assert [(d.reason, d.detail) for d in letters] == [("ingest_failed", "RecursionError: too deep")]
