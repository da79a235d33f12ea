"""The rules of a tenant's pool user in Redis (secure mode), read as Redis reads them: key patterns
(``~`` read and write, ``%R~`` read only), channel patterns (``&``) and the selector that alone
grants PUBLISH. Which keys and channels the rules reach is checked with glob matching, as Redis does."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from mysimbdp_tasks.core import names
from mysimbdp_tasks.security import redis_acl

pytestmark = pytest.mark.unit


def _writable(rules: list[str], key: str) -> bool:
    return any(fnmatchcase(key, r[1:]) for r in rules if r.startswith("~"))


def _root_and_selectors(rules: list[str]) -> tuple[list[str], list[list[str]]]:
    root = [r for r in rules if not r.startswith("(")]
    return root, [r.strip("()").split() for r in rules if r.startswith("(")]


def test_a_pool_writes_its_own_jobs_and_slot_leases_and_nobody_elses() -> None:
    rules = redis_acl.tenant_rules("t1")
    own = [names.job_key("t1", "abc"), names.job_chunks_key("t1", "abc"), names.job_finalizing_key("t1", "abc"),
           names.jobs_open_key("t1"), names.slot_lease_key("t1"), names.slot_wanted_key("t1")]
    assert all(_writable(rules, k) for k in own)
    others = [names.job_key("t2", "abc"), names.job_chunks_key("t10", "abc"), names.jobs_open_key("t10"),
              names.slot_lease_key("t10"), names.slot_wanted_key("t2"), *names.legacy_job_keys("abc"),
              names.JOBS_OPEN, names.JOBS_TENANTS, names.SLOTS_HELD, names.SLOTS_QUEUED, names.SLOTS_QUEUED_JOBS,
              names.SLOTS_GRANTED, names.SLOTS_RUNNING, names.SLOTS_LAPSED, names.SLOTS_LOCK_PREFIX + "abc"]
    assert [k for k in others if _writable(rules, k)] == []


def test_a_pool_listens_on_remote_control_and_publishes_only_events() -> None:
    root, selectors = _root_and_selectors(redis_acl.tenant_rules("t1", db=3))
    assert "&*" not in root and [r for r in root if r.startswith("&")] == ["&/3.celery.pidbox"]
    assert "-publish" in root and "+@pubsub" not in root and "+psubscribe" in root
    # PUBLISH comes from one selector, whose only channels are the events'.
    assert selectors == [["+publish", "&/3.celeryev/*"]]
    pattern = selectors[0][1][1:]
    assert fnmatchcase("/3.celeryev/task.succeeded", pattern)
    assert not fnmatchcase("/3.celery.pidbox", pattern) and not fnmatchcase("/0.celeryev/task.succeeded", pattern)

