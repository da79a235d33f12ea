"""Pure rules of the watcher and the sweeper: routing by name, and which tasks a job still needs."""

from __future__ import annotations

from typing import Any

import pytest

from mysimbdp_tasks.batch.sweeper import needed
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


def test_a_job_with_every_outcome_but_not_finalized_reruns_one_chunk() -> None:
    assert _needed([{"index": 0}, {"index": 1}], {0, 1}) == [names.chunk_task_id("j", 0)]
    assert _needed([], set()) == []  # unparseable file: finalized at planning, nothing to send

