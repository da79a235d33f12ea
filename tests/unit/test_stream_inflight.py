"""The bridge's bookkeeping of micro-batches in flight: commit only past what is written."""

from __future__ import annotations

import pytest

from mysimbdp_tasks.core import names
from mysimbdp_tasks.stream.inflight import Batch, InFlight

pytestmark = pytest.mark.unit


def batch(ranges: dict[int, tuple[int, int]], written: bool = False, sent_at: float = 0.0) -> Batch:
    task_id = names.stream_task_id("t1", ranges)
    payload = {"messages": [{"o": o} for _, (a, b) in ranges.items() for o in range(a, b + 1)]}
    b = Batch(ranges, task_id, payload, sent_at=sent_at)
    b.done = written
    return b


def test_a_partition_is_committed_only_to_the_end_of_the_written_prefix() -> None:
    flight = InFlight()
    a, b, c = batch({0: (0, 9)}), batch({0: (10, 19)}), batch({0: (20, 29)})
    for x in (a, b, c):
        flight.add(x)
    flight.mark_done([b.task_id or "", c.task_id or ""])  # written out of order
    assert flight.advance() == ({}, [])
    assert len(flight) == 3
    flight.mark_done([a.task_id or ""])
    offsets, released = flight.advance()
    assert offsets == {0: 30}
    assert released == [a, b, c]
    assert len(flight) == 0


def test_a_batch_over_two_partitions_holds_both_until_written() -> None:
    flight = InFlight()
    both, later = batch({0: (0, 4), 1: (0, 4)}), batch({1: (5, 9)}, written=True)
    flight.add(both)
    flight.add(later)
    assert flight.advance() == ({}, [])
    flight.mark_done([both.task_id or ""])
    offsets, released = flight.advance()
    assert offsets == {0: 5, 1: 10}
    assert set(map(id, released)) == {id(both), id(later)}


def test_a_batch_without_a_task_needs_no_worker() -> None:
    flight = InFlight()
    dead_only = Batch({2: (40, 49)}, None, None, sent_at=0.0)
    flight.add(dead_only)
    assert flight.waiting() == []
    assert flight.advance()[0] == {2: 50}


def test_a_written_batch_drops_its_messages_at_once() -> None:
    flight = InFlight()
    first, second = batch({0: (0, 4)}), batch({0: (5, 9)})
    flight.add(first)
    flight.add(second)
    flight.mark_done([second.task_id or ""])
    assert second.payload is None and first.payload is not None  # still needed to re-send it
    assert len(flight) == 2  # but both still count against the window until committed


def test_partitions_taken_away_are_forgotten_and_the_rest_goes_on() -> None:
    flight = InFlight()
    both = batch({0: (0, 4), 1: (0, 4)})
    flight.add(both)
    assert flight.drop([0]) == []  # still covers partition 1
    flight.mark_done([both.task_id or ""])
    assert flight.advance() == ({1: 5}, [both])
    assert len(flight) == 0


def test_a_task_held_nowhere_on_two_looks_in_a_row_is_sent_again() -> None:
    flight = InFlight()
    lost, queued = batch({0: (0, 4)}, sent_at=0.0), batch({1: (0, 4)}, sent_at=0.0)
    fresh = batch({2: (0, 4)}, sent_at=95.0)
    for x in (lost, queued, fresh):
        flight.add(x)
    stalled = flight.stalled(now=100.0, stall_s=10.0)
    assert set(map(id, stalled)) == {id(lost), id(queued)}
    held = {queued.task_id or ""}
    assert flight.lost(stalled, held, now=100.0) == []  # first look: only a suspect
    assert flight.lost(flight.stalled(now=105.0, stall_s=10.0), held, now=105.0) == [lost]
    assert lost.sent_at == 105.0
    assert lost not in flight.stalled(now=110.0, stall_s=10.0)  # re-sent: a new stall time


def test_a_task_seen_again_between_two_looks_is_not_sent_again() -> None:
    flight = InFlight()
    b = batch({0: (0, 4)})
    flight.add(b)
    assert flight.lost([b], set(), now=20.0) == []
    assert flight.lost([b], {b.task_id or ""}, now=25.0) == []
    assert flight.lost([b], set(), now=30.0) == []  # the count starts over


def test_a_micro_batch_id_names_its_offsets() -> None:
    ranges = {1: (5, 9), 0: (0, 4)}
    assert names.stream_task_id("t1", ranges) == names.stream_task_id("t1", dict(sorted(ranges.items())))
    assert names.stream_task_id("t1", ranges) != names.stream_task_id("t1", {1: (5, 9), 0: (0, 5)})
