"""The bridge's micro-batches in flight: enqueued, not yet known to be written.

Pure bookkeeping, without any service. Each batch covers, per partition, a range of offsets, and
(when it admitted any message) one task. A worker marks the task done once its messages are
written or dead-lettered; the bridge then commits each partition up to the end of the contiguous
prefix of done batches (:meth:`InFlight.advance`), never past a batch still in flight, so a
crash at any point replays only what may not have been written. A batch whose task the broker
holds nowhere on two looks in a row was lost (:meth:`InFlight.lost`) and is sent again with the
same id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import wire

LOOKS_BEFORE_RESEND = 2  # a task just being taken by a worker may be seen nowhere once


@dataclass(eq=False)
class Batch:
    ranges: dict[int, tuple[int, int]]  # partition -> (first, last) offset of the micro-batch
    task_id: str | None  # None: nothing to write (every message was dead-lettered)
    payload: dict[str, Any] | None  # the task's argument, kept to send it again while not done
    sent_at: float
    misses: int = 0  # consecutive looks that found the task nowhere in the broker
    done: bool = False
    uncommitted: set[int] = field(default_factory=set)  # partitions not yet committed past it

    def __post_init__(self) -> None:
        self.uncommitted = set(self.ranges)
        if self.task_id is None:
            self.done = True

    @property
    def size(self) -> int:
        return wire.count(self.payload) if self.payload else 0


class InFlight:
    def __init__(self) -> None:
        self.partitions: dict[int, deque[Batch]] = {}
        self.held = 0  # batches not yet committed on every partition they cover

    def __len__(self) -> int:
        return self.held

    def add(self, batch: Batch) -> None:
        """A batch just enqueued (its dead letters already acknowledged). Within a partition
        batches arrive in offset order, as the consumer delivers them."""
        if not batch.ranges:
            return
        for partition in batch.ranges:
            self.partitions.setdefault(partition, deque()).append(batch)
        self.held += 1

    def batches(self) -> list[Batch]:
        seen: dict[int, Batch] = {}
        for queue in self.partitions.values():
            for b in queue:
                seen.setdefault(id(b), b)
        return list(seen.values())

    def waiting(self) -> list[Batch]:
        """Batches whose task is not known to be done yet."""
        return [b for b in self.batches() if not b.done]

    def mark_done(self, task_ids: Iterable[str]) -> None:
        ids = set(task_ids)
        for b in self.waiting():
            if b.task_id in ids:
                b.done = True
                b.payload = None  # never sent again: its memory can go

    def advance(self) -> tuple[dict[int, int], list[Batch]]:
        """Pop the done prefix of every partition.

        Returns the offset to commit per partition that moved (the last done offset + 1), and the
        batches now committed on every partition they cover.
        """
        offsets: dict[int, int] = {}
        released: list[Batch] = []
        for partition, queue in self.partitions.items():
            while queue and queue[0].done:
                batch = queue.popleft()
                offsets[partition] = batch.ranges[partition][1] + 1
                if self._uncover(batch, partition):
                    released.append(batch)
        self._prune()
        return offsets, released

    def drop(self, partitions: Iterable[int]) -> list[Batch]:
        """Forget partitions this bridge no longer owns: their new owner replays from the last commit."""
        released: list[Batch] = []
        for partition in partitions:
            for batch in self.partitions.pop(partition, ()):
                if self._uncover(batch, partition):
                    released.append(batch)
        return released

    def stalled(self, now: float, stall_s: float) -> list[Batch]:
        return [b for b in self.waiting() if now - b.sent_at >= stall_s]

    def lost(self, stalled: Iterable[Batch], held_ids: set[str], now: float) -> list[Batch]:
        """Of the stalled batches, those to send again: their task was held nowhere on
        :data:`LOOKS_BEFORE_RESEND` looks in a row. Each one counts as sent ``now``."""
        resend: list[Batch] = []
        for b in stalled:
            if b.task_id in held_ids:
                b.misses = 0
                continue
            b.misses += 1
            if b.misses >= LOOKS_BEFORE_RESEND:
                b.misses = 0
                b.sent_at = now
                resend.append(b)
        return resend

    def _uncover(self, batch: Batch, partition: int) -> bool:
        batch.uncommitted.discard(partition)
        if batch.uncommitted:
            return False
        self.held -= 1
        return True

    def _prune(self) -> None:
        for partition in [p for p, q in self.partitions.items() if not q]:
            del self.partitions[partition]
