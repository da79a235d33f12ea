"""Numbers over time and distributions: time buckets, spreading an amount over them, percentiles."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MAX_BUCKETS = 1440  # a day of minutes; longer periods get wider buckets
BUCKET_CHOICES = (60, 300, 900, 3600, 6 * 3600, 86400)


def bucket_seconds(first: float, last: float) -> int:
    """Minutes, unless that makes more than MAX_BUCKETS buckets between ``first`` and ``last``."""
    span = max(0.0, last - first)
    for size in BUCKET_CHOICES:
        if span / size < MAX_BUCKETS:
            return size
    return BUCKET_CHOICES[-1] * math.ceil(span / BUCKET_CHOICES[-1] / MAX_BUCKETS)


def floor_to(ts: float, size: int) -> int:
    return int(ts // size * size)


def bucket_starts(first: float, last: float, size: int) -> list[int]:
    return list(range(floor_to(first, size), floor_to(last, size) + 1, size))


def spread(amount: int, start: float, end: float, size: int) -> dict[int, int]:
    """``amount`` shared over the buckets that ``start``..``end`` overlaps, by overlap, in whole units.

    The shares add up to ``amount`` exactly (largest remainders get the leftover units). A span
    of no length puts everything in the bucket of ``end``.
    """
    if amount <= 0:
        return {}
    if end <= start:
        return {floor_to(end, size): amount}
    exact: dict[int, float] = {}
    b = floor_to(start, size)
    while b <= end:
        overlap = min(end, b + size) - max(start, b)
        if overlap > 0:
            exact[b] = amount * overlap / (end - start)
        b += size
    if not exact:
        return {floor_to(end, size): amount}
    shares = {k: int(v) for k, v in exact.items()}
    left = amount - sum(shares.values())
    for k in sorted(exact, key=lambda k: exact[k] - shares[k], reverse=True)[:left]:
        shares[k] += 1
    return {k: v for k, v in shares.items() if v}


def add_into(total: dict[int, int], part: dict[int, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def summary(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99 and max of ``values`` (milliseconds), rounded to 0.1."""
    vals = [float(v) for v in values]
    return {
        "count": len(vals),
        "mean": _round(sum(vals) / len(vals)) if vals else None,
        "p50": _round(percentile(vals, 50)), "p95": _round(percentile(vals, 95)),
        "p99": _round(percentile(vals, 99)), "max": _round(max(vals)) if vals else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def amount(value: float) -> str:
    """1,234 for whole numbers, 0.341 otherwise (no exponents: 5,000,000 rather than 5e+06)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")
