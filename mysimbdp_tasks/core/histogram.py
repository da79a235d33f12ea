"""Latency histograms that merge: counts per logarithmic bucket, so percentiles hold across windows.

A stream worker records each window's end-to-end latencies as a sparse map bucket -> count in
``<namespace>.stream_ingestion_metrics``; the per-tenant report adds the maps of every window in
its period and reads p50 / p95 / p99 off the sum. Averages or per-window percentiles could not be
combined that way. Bucket ``i`` holds the values in ``(GROWTH**(i-1), GROWTH**i]`` milliseconds,
bucket 0 everything up to 1 ms (clock skew between a producer and a worker can even make a latency
negative), so a percentile read as its bucket's upper bound is at most 4 % above the true value.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping

# Bucket numbers are stored in the metrics tables: changing GROWTH would change what the rows
# already written mean, so it is fixed for good.
GROWTH = 1.04
MAX_BUCKET = 600  # 1.04**600 ms is about 200 days: larger values share the last bucket


def upper_bound(bucket: int) -> float:
    """The largest latency (ms) bucket ``bucket`` holds."""
    return float(GROWTH ** bucket)


# Every bucket's upper bound, so a value's bucket is one binary search (in C), not a logarithm.
_UPPER = tuple(upper_bound(b) for b in range(MAX_BUCKET + 1))
_find = functools.partial(bisect.bisect_left, _UPPER)


def bucket_of(ms: float) -> int:
    """The bucket of a latency of ``ms`` milliseconds: the first whose upper bound holds it (0 for
    1 ms or less, and for NaN, which compares below every bound)."""
    return min(MAX_BUCKET, _find(ms))


def lower_bound(bucket: int) -> float:
    return 0.0 if bucket <= 0 else float(GROWTH ** (bucket - 1))


def add(counts: dict[int, int], values_ms: Iterable[float]) -> dict[int, int]:
    """Count ``values_ms`` into ``counts`` (changed in place and returned)."""
    get = counts.get
    for b, n in Counter(map(_find, values_ms)).items():
        b = min(MAX_BUCKET, b)
        counts[b] = get(b, 0) + n
    return counts


def merge(maps: Iterable[Mapping[int, int] | None]) -> dict[int, int]:
    """The sum of several histograms; ``None`` (a window without one) adds nothing."""
    total: dict[int, int] = {}
    for counts in maps:
        for bucket, n in (counts or {}).items():
            total[int(bucket)] = total.get(int(bucket), 0) + int(n)
    return total


def total(counts: Mapping[int, int]) -> int:
    return sum(counts.values())


def percentile(counts: Mapping[int, int], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100), as its bucket's upper bound; None if empty."""
    n = total(counts)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100 * n))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return upper_bound(bucket)
    return upper_bound(max(counts))  # unreachable: seen reaches n
