"""Pure rules of the watcher and the sweeper: routing by name, and which tasks a job still needs."""

from __future__ import annotations

from typing import Any

import pytest

from mysimbdp_tasks.batch.sweeper import lost_outcome, needed
from mysimbdp_tasks.batch.watcher import tenant_of
from mysimbdp_tasks.core import names

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("name", "tenant"), [
    ("tenant1-comments.json", "tenant1"),
    ("tenant2_export-2015.csv", "tenant2"),
    ("tenant1.json", ""),
    ("-x.csv", ""),
    ("t9-a_b.csv", "t9"),
])
def test_tenant_is_the_prefix_before_the_first_dash_or_underscore(name: str, tenant: str) -> None:
    assert tenant_of(name) == tenant


def _needed(plan: list[dict[str, Any]] | None, recorded: set[int]) -> list[str]:
    job: dict[str, Any] = {"ingest_id": "j", "job": {}, "plan": plan, "recorded": recorded}
    return sorted(needed(job))


def test_a_job_not_planned_yet_needs_its_file_task() -> None:
    assert _needed(None, set()) == [names.file_task_id("j")]


def test_a_planned_job_needs_the_chunks_without_an_outcome() -> None:
    plan = [{"index": i} for i in range(4)]
    assert _needed(plan, {0, 2}) == [names.chunk_task_id("j", 1), names.chunk_task_id("j", 3)]


def test_a_job_with_every_outcome_but_not_finalized_needs_its_finalize() -> None:
    assert _needed([{"index": 0}, {"index": 1}], {0, 1}) == [names.finalize_task_id("j")]
    assert _needed([], {0}) == [names.finalize_task_id("j")]  # unparseable: its failure recorded


def test_a_one_chunk_file_runs_in_its_file_task() -> None:
    # Its work runs in the file task (never a chunk task): that is the task to look for.
    assert _needed([{"index": 0}], set()) == [names.file_task_id("j")]
    assert _needed([], set()) == [names.file_task_id("j")]  # stopped while recording its planning


def test_a_task_given_up_is_a_failed_outcome_naming_the_reason() -> None:
    outcome = lost_outcome(3, resends=2)
    assert outcome["index"] == 3 and outcome["rows_ok"] == 0
    assert outcome["error"]["reason"] == "task_lost" and "3 times" in outcome["error"]["detail"]

