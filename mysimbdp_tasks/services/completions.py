"""Completion of stream micro-batches: the worker's word to the bridge that a batch is safe.

A worker marks a micro-batch done once every message of it is written to Cassandra or
dead-lettered (acknowledged by Kafka); the bridge commits a partition's offsets only up to the end
of the batches marked done, so the Kafka offset stays the durable record of what is safe. A marker
is one small key per task id (:func:`~mysimbdp_tasks.core.names.stream_done_key`) with a TTL, so
markers the bridge never reads (it died, or lost the partition) expire by themselves; the bridge
deletes those it has committed past. One round trip reads the markers of every pending batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from ..core import names

DONE_TTL_S = 24 * 3600  # far beyond any batch the bridge still waits for


def mark_done(client: redis.Redis, task_id: str) -> None:
    client.set(names.stream_done_key(task_id), b"1", ex=DONE_TTL_S)


def done_among(client: redis.Redis, task_ids: Sequence[str]) -> set[str]:
    """The ids among ``task_ids`` whose batch a worker has completed (one MGET)."""
    if not task_ids:
        return set()
    found = client.mget([names.stream_done_key(t) for t in task_ids])
    return {t for t, mark in zip(task_ids, found, strict=True) if mark is not None}


def forget(client: redis.Redis, task_ids: Sequence[str]) -> None:
    """Drop the markers of batches whose offsets are committed (one DEL)."""
    if task_ids:
        client.delete(*(names.stream_done_key(t) for t in task_ids))


def forget_tenant(client: redis.Redis, tenant: str) -> None:
    """Drop every marker of a tenant whose topics are deleted: re-created ones restart at offset 0."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=names.stream_done_pattern(tenant), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)
