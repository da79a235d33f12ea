"""The bridge's offset commits: asynchronous, one in flight, never past what is written.

A synchronous commit holds the bridge's loop for a round trip to the group coordinator (about
10 ms per micro-batch on a busy machine). Here the bridge hands over, per partition, the offset up
to which every message is written (:meth:`Committer.written`), and :meth:`Committer.commit` sends
those past the last acknowledged commit with ``commit_async``, one request at a time:

- only offsets of written batches are ever sent, so a commit that lands late, or after a
  rebalance gave the partition away, moves the group's offset at most to something written: the
  new owner then replays a little, which the quota script and the upserts make harmless;
- kafka-python completes a commit on its network thread and runs its callback inside a later
  ``poll`` or commit, on the bridge's thread. The callback, not the returned future, carries the
  answer: while the coordinator is unknown, ``commit_offsets_async`` returns the future of the
  coordinator lookup, which succeeds whatever the commit then does. A commit may fail
  (``RebalanceInProgressError``, ``CommitFailedError`` with a stale generation, the coordinator
  moving): that only means the offsets are sent again with the next commit, with whatever more is
  written by then;
- with one commit in flight, two commits never race each other to the broker, so an older offset
  cannot overwrite a newer one; a commit without an answer for :data:`ANSWER_TIMEOUT_S` is given up;
- before partitions are given away, :meth:`commit` with ``wait=True`` commits synchronously, as
  the rebalance protocol expects.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

log = logging.getLogger(__name__)

ANSWER_TIMEOUT_S = 30.0


class Committer:
    def __init__(self, consumer: KafkaConsumer, tenant: str, topic: str) -> None:
        self.consumer, self.tenant, self.topic = consumer, tenant, topic
        self.done: dict[int, int] = {}  # partition -> offset up to which every message is written
        self.acked: dict[int, int] = {}  # partition -> offset the group coordinator acknowledged
        self.pending: _Commit | None = None

    def written(self, offsets: dict[int, int]) -> None:
        """Partitions whose messages are written up to (not including) these offsets."""
        for p, o in offsets.items():
            if o > self.done.get(p, -1):
                self.done[p] = o

    def due(self) -> dict[int, int]:
        """Offsets written and not yet acknowledged as committed."""
        return {p: o for p, o in self.done.items() if o > self.acked.get(p, -1)}

    def commit(self, wait: bool = False) -> None:
        """Send what is due: asynchronously unless ``wait`` (then raises if the commit fails)."""
        self._settle()
        if self.pending is not None and not wait:
            return  # one at a time: the next call sends what is due then
        due = self.due()
        if not due:
            return
        offsets = {TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1) for p, o in due.items()}
        if wait:
            self.consumer.commit(offsets)
            self._acknowledged(due)
            return
        pending = self.pending = _Commit(due, time.monotonic())
        self.consumer.commit_async(offsets, callback=pending.answered)

    def forget(self, partitions: list[int]) -> None:
        """Partitions given away: their new owner commits them from now on."""
        for p in partitions:
            self.done.pop(p, None)
            self.acked.pop(p, None)

    def _settle(self) -> None:
        """Take up the answer to the commit in flight, if there is one by now."""
        pending = self.pending
        if pending is None:
            return
        if pending.answer is None:
            if time.monotonic() - pending.sent_at < ANSWER_TIMEOUT_S:
                return
            log.warning("tenant=%s commit of %s unanswered after %.0f s; sent again with the next one", self.tenant,
                        pending.offsets, ANSWER_TIMEOUT_S)
        elif isinstance(pending.answer, BaseException):
            log.warning("tenant=%s commit of %s failed (%s: %s); retried with the next one", self.tenant,
                        pending.offsets, type(pending.answer).__name__, pending.answer)
        else:
            self._acknowledged(pending.offsets)
        self.pending = None

    def _acknowledged(self, offsets: dict[int, int]) -> None:
        for p, o in offsets.items():
            if p in self.done and o > self.acked.get(p, -1):
                self.acked[p] = o


class _Commit:
    """One asynchronous commit and, once kafka-python calls back, its answer."""

    def __init__(self, offsets: dict[int, int], sent_at: float) -> None:
        self.offsets, self.sent_at = offsets, sent_at
        self.answer: Any = None  # the OffsetCommitResponse, or the exception

    def answered(self, _offsets: Any, response: Any) -> None:
        self.answer = response if response is not None else True
