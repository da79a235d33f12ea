"""The names running processes meet on, as operators, Flower and older platforms see them.

These spellings are a wire contract (queues in Redis, task ids the sweeper looks for, keys that
hold today's quota usage, Kafka topics and groups), so they are pinned here literally: a change
must be deliberate, with the platform stopped.
"""

from __future__ import annotations

import pytest

from mysimbdp_tasks.core import names
from mysimbdp_tasks.core.tenants import parse

pytestmark = pytest.mark.unit


def test_queues_task_names_and_task_ids() -> None:
    assert (names.batch_queue("t1"), names.stream_queue("t1")) == ("t1.batch", "t1.stream")
    assert (names.INGEST_FILE, names.INGEST_CHUNK, names.INGEST_MESSAGES) == (
        "mysimbdp.ingest_file", "mysimbdp.ingest_chunk", "mysimbdp.ingest_messages")
    assert names.file_task_id("abc") == "abc-file"
    assert names.chunk_task_id("abc", 7) == "abc-chunk-7"
    assert names.UNACKED == "unacked"
    assert names.stream_task_id("t1", {2: (7, 9), 0: (100, 499)}) == "t1-stream-0.100.499_2.7.9"


def test_redis_keys() -> None:
    assert names.usage_key("t1", "2026-01-02") == "mysimbdp:usage:t1:2026-01-02"
    assert names.stream_hw_key("t1") == "mysimbdp:stream:hw:t1"
    assert names.stream_runs_key("t1") == "mysimbdp:stream:runs:t1"
    assert names.stream_done_key("t1-stream-0.5.9") == "mysimbdp:stream:done:t1-stream-0.5.9"
    assert names.stream_done_pattern("t1") == "mysimbdp:stream:done:t1-stream-*"
    assert names.refund_key("t1", "abc") == "mysimbdp:refund:t1:abc"
    assert (names.job_key("t1", "abc"), names.job_chunks_key("t1", "abc"), names.job_finalizing_key("t1", "abc")) == (
        "mysimbdp:job:t1:abc", "mysimbdp:job:t1:abc:chunks", "mysimbdp:job:t1:abc:finalizing")
    assert (names.jobs_open_key("t1"), names.JOBS_TENANTS) == ("mysimbdp:jobs:open:t1", "mysimbdp:jobs:tenants")
    # What a platform before job keys were named by tenant left, adopted at the watcher's start.
    assert names.legacy_job_keys("abc") == ("mysimbdp:job:abc", "mysimbdp:job:abc:chunks")
    assert (names.JOBS_OPEN, names.WATCHER_PENDING) == ("mysimbdp:jobs:open", "mysimbdp:watcher:pending")
    assert (names.slot_lease_key("t1"), names.slot_wanted_key("t1")) == (
        "mysimbdp:slots:lease:t1", "mysimbdp:slots:wanted:t1")
    assert (names.SLOTS_HELD, names.SLOTS_RUNNING, names.SLOTS_LAPSED) == (
        "mysimbdp:slots:held", "mysimbdp:slots:running", "mysimbdp:slots:lapsed")
    assert (names.TENANTS, names.TENANTS_ACTIVE, names.TENANTS_APPLIED_AT) == (
        "mysimbdp:tenants", "mysimbdp:tenants:active", "mysimbdp:tenants:applied_at")


def test_kafka_topics_and_groups() -> None:
    assert (names.REPORTS_TOPIC, names.CONTROL_TOPIC) == ("mysimbdp.reports", "mysimbdp.control")
    assert (names.ingest_topic("t1"), names.dead_topic("t1")) == ("t1.ingest", "t1.dead")
    assert names.bridge_group("t1") == "mysimbdp.bridge.t1"


def test_a_tenant_names_its_queues_and_topics_through_the_same_functions() -> None:
    tenant = parse({"t9": {"namespace": "ks_t9", "table_name": "rows", "max_messages_per_day": 5,
                           "schema": {"id": "text", "key": "(id)"}}})["t9"]
    assert (tenant.batch_queue, tenant.stream_queue, tenant.ingest_topic, tenant.dead_topic) == (
        "t9.batch", "t9.stream", "t9.ingest", "t9.dead")
