"""A step's latency second by second: where in the step the slow messages were sent.

A p99 over a whole step does not say whether the pipeline was slow throughout, only while it
filled up, or in bursts (a garbage collection, a memtable flush, a compaction). The timeline
gives, per second of sending (by CreateTime, from the step's first send): the messages sent, the
p50, p99 and largest latency of those of them that landed, and the backlog (sent, not yet written)
at the end of that second.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any


def timeline(pairs: Sequence[tuple[float, float]], sends_ms: Sequence[float], writes_ms: Sequence[float],
             bucket_ms: float = 1000.0) -> list[dict[str, Any]]:
    """Per ``bucket_ms`` of send time: ``{"s", "sent", "p50_ms", "p99_ms", "max_ms", "backlog"}``.

    ``pairs`` are (CreateTime, WRITETIME) of the landed messages in ms; ``sends_ms`` and
    ``writes_ms`` are sorted.
    """
    if not sends_ms:
        return []
    first = sends_ms[0]
    buckets: dict[int, list[float]] = {}
    for created, written in pairs:
        buckets.setdefault(int((created - first) // bucket_ms), []).append(written - created)
    sent: dict[int, int] = {}
    for created in sends_ms:
        index = int((created - first) // bucket_ms)
        sent[index] = sent.get(index, 0) + 1
    rows = []
    for index in range(max(sent) + 1):
        lat = sorted(buckets.get(index, ()))
        end = first + (index + 1) * bucket_ms
        rows.append({"s": round(index * bucket_ms / 1000, 3), "sent": sent.get(index, 0),
                     "p50_ms": _r(percentile(lat, 50)), "p99_ms": _r(percentile(lat, 99)),
                     "max_ms": _r(lat[-1] if lat else None),
                     "backlog": bisect_right(sends_ms, end) - bisect_right(writes_ms, end)})
    return rows


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank ``q``-th percentile of sorted values (as the step's own), None if empty."""
    if not ordered:
        return None
    return float(ordered[min(max(1, math.ceil(q / 100 * len(ordered))), len(ordered)) - 1])


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 1)
