"""What a stream benchmark run measured: per-step numbers, verdicts, the sustained rate, table and JSON.

Pure: no service, no clock. Times are wall-clock milliseconds of one machine: a message's Kafka
CreateTime (set by the producer inside ``send()``) and its row's ``WRITETIME`` in Cassandra (set by
the worker's driver when it issues the write).
"""

from __future__ import annotations

import math
import os
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stream_timeline import timeline

SCHEMA_VERSION = 1
MAX_P99_MS = 500.0  # the product owner's latency bound for a sustained rate
MIN_SUSTAINED = 20_000.0  # msg/s, the target of issue 9
MAX_BRIDGE_US = 35.0  # bridge CPU per message, the target of issue 9
GROWTH_LIMIT = 0.05  # a backlog growing by more than 5 % of the sent rate means falling behind
DRAIN_OK_S = 1.0  # ... unless the step drained this soon after its last send anyway
SHORT_SEND = 0.95  # producers below 95 % of the offered rate are reported
PLATFORM_ROLES = ("bridge", "workers", "cassandra", "kafka", "redis")  # what a message costs the platform
CORES = os.cpu_count() or 1


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of already sorted values; None if empty."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def backlog(sends_ms: Sequence[float], writes_ms: Sequence[float], at_ms: Sequence[float]) -> list[int]:
    """Messages sent but not yet written at each instant of ``at_ms`` (both inputs sorted)."""
    return [bisect_right(sends_ms, t) - bisect_right(writes_ms, t) for t in at_ms]


def backlog_growth(sends_ms: Sequence[float], writes_ms: Sequence[float], points: int = 40) -> tuple[float, int]:
    """(growth in messages per second, peak) of the backlog over the sending span.

    Growth compares the mean backlog over the last quarter of the span with the mean over its second
    quarter (the first quarter is the pipeline filling up), divided by the time between them.
    """
    if len(sends_ms) < 2:
        return 0.0, 0
    first, last = sends_ms[0], sends_ms[-1]
    span = last - first
    if span <= 0:
        return 0.0, 0
    grid = [first + span * i / points for i in range(points + 1)]
    levels = backlog(sends_ms, writes_ms, grid)
    quarter = points // 4
    early = levels[quarter:2 * quarter + 1]
    late = levels[3 * quarter:]
    growth = (sum(late) / len(late) - sum(early) / len(early)) / (span / 2 / 1000)
    return growth, max(levels)


def steady_window(first_ms: float, last_ms: float) -> tuple[float, float]:
    """The steady part of a sending span: from a quarter into it to its end.

    The first quarter is left out: it is the pipeline filling up (micro-batches, the first tasks).
    """
    return first_ms + (last_ms - first_ms) / 4, last_ms


def rate_in(times_ms: Sequence[float], start_ms: float, end_ms: float) -> float:
    """Events per second of sorted ``times_ms`` within (start, end]."""
    span = (end_ms - start_ms) / 1000
    if span <= 0:
        return 0.0
    return (bisect_right(times_ms, end_ms) - bisect_right(times_ms, start_ms)) / span


@dataclass(frozen=True)
class Sent:
    """What one tenant's producer reported for a step."""

    tenant: str
    sent: int
    acked: int
    errors: int
    sends_ms: tuple[float, ...]  # CreateTime of each acknowledged message


@dataclass(frozen=True)
class Landed:
    """What Cassandra holds for a step's acknowledged messages of one tenant."""

    tenant: str
    dead: int  # dead-lettered by the bridge during the step
    sends_ms: tuple[float, ...]  # CreateTime of each message found in the table
    writes_ms: tuple[float, ...]  # its WRITETIME, same order


@dataclass(frozen=True)
class Step:
    step: int
    offered_per_s: float
    seconds: float
    sent: int
    acked: int
    errors: int
    dead: int
    landed: int
    sent_per_s: float  # acknowledged sends per second in the steady part of the step (see steady_window)
    landed_per_s: float  # rows written per second in the same window
    landed_overall_per_s: float  # all rows of the step over the span from its first send to its last write
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    drain_s: float | None  # last write - last send
    backlog_growth_per_s: float
    peak_backlog: int
    verdict: str
    kept_up: bool
    per_tenant: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # CPU per role, clock checks, ...

    @property
    def meets_latency(self) -> bool:
        return self.p99_ms is not None and self.p99_ms <= MAX_P99_MS

    @property
    def platform_us(self) -> float | None:
        """The platform's CPU microseconds per message: bridges, workers, Cassandra, Kafka and Redis
        (not the producers, not the benchmark, not the rest of the machine)."""
        return platform_us(self.details.get("cpu_us_per_message") or {})

    def cpu_bound_per_s(self, cores: int = CORES) -> float | None:
        """The rate ``cores`` would allow at this step's platform CPU per message, if nothing else ran:
        like the anchors' CPU-bound rows/s, it does not depend on what else the machine did."""
        us = self.platform_us
        return cores * 1e6 / us if us else None

    @property
    def sustained(self) -> bool:
        return self.kept_up and self.meets_latency

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None, nd: int = 1) -> float | None:
            return None if v is None else round(v, nd)

        return {
            "step": self.step, "offered_per_s": r(self.offered_per_s), "seconds": self.seconds, "sent": self.sent,
            "acked": self.acked, "errors": self.errors, "dead_letters": self.dead, "landed": self.landed,
            "sent_per_s": r(self.sent_per_s), "landed_per_s": r(self.landed_per_s),
            "landed_overall_per_s": r(self.landed_overall_per_s), "mean_ms": r(self.mean_ms), "p50_ms": r(self.p50_ms),
            "p95_ms": r(self.p95_ms), "p99_ms": r(self.p99_ms), "max_ms": r(self.max_ms), "drain_s": r(self.drain_s, 3),
            "backlog_growth_per_s": r(self.backlog_growth_per_s), "peak_backlog": self.peak_backlog,
            "verdict": self.verdict, "kept_up": self.kept_up, "p99_within_bound": self.meets_latency,
            "sustained": self.sustained, "producer": self.details.get("producer"),
            "platform_cpu_us_per_message": r(self.platform_us), "cpu_bound_per_s": r(self.cpu_bound_per_s(), 0),
            "per_tenant": self.per_tenant, "details": self.details,
        }


def platform_us(per_message: Mapping[str, float]) -> float | None:
    found = [per_message[k] for k in PLATFORM_ROLES if k in per_message]
    return sum(found) if found else None


def verdict(expected: int, landed: int, dead: int, sent_per_s: float, growth_per_s: float,
            drain_s: float | None) -> tuple[bool, str]:
    """(kept up?, why) for one step."""
    if dead:
        return False, f"{dead:,} valid messages dead-lettered"
    if landed < expected:
        return False, f"did not keep up: {landed:,} of {expected:,} landed before the drain timeout"
    ratio = growth_per_s / sent_per_s if sent_per_s > 0 else 0.0
    if ratio > GROWTH_LIMIT and (drain_s is None or drain_s > DRAIN_OK_S):
        return False, (f"did not keep up: backlog grew {growth_per_s:,.0f} msg/s ({ratio:.0%} of the sent rate), "
                       f"drained {drain_s or 0:.1f} s after the last send")
    return True, "kept up"


def step_result(step: int, offered_per_s: float, seconds: float, sent: Sequence[Sent], landed: Sequence[Landed],
                details: Mapping[str, Any] | None = None) -> Step:
    """Combine both tenants' producers and tables into one step.

    sent/s and landed/s are both taken over the steady part of the sending span, so they compare:
    when the pipeline keeps up, landed/s is the rate it was sent at; when it falls behind, the rate
    it managed to write under that load.
    """
    sends = sorted(t for item in sent for t in item.sends_ms)
    writes = sorted(t for item in landed for t in item.writes_ms)
    latencies = sorted(w - c for item in landed for c, w in zip(item.sends_ms, item.writes_ms, strict=True))
    first, last = (sends[0], sends[-1]) if sends else (0.0, 0.0)
    window = steady_window(first, last)
    sent_per_s, landed_per_s = rate_in(sends, *window), rate_in(writes, *window)
    overall = len(writes) / ((writes[-1] - first) / 1000) if writes and writes[-1] > first else 0.0
    drain = (writes[-1] - last) / 1000 if writes else None
    growth, peak = backlog_growth(sends, writes)
    acked, dead = len(sends), sum(item.dead for item in landed)
    kept_up, why = verdict(acked, len(writes), dead, sent_per_s, growth, drain)
    if offered_per_s > 0 and sent_per_s < SHORT_SEND * offered_per_s:
        why += f"; producers sent only {sent_per_s / offered_per_s:.0%} of the offered rate"
    per_tenant = {}
    for s, item in zip(sent, landed, strict=True):
        lat = sorted(w - c for c, w in zip(item.sends_ms, item.writes_ms, strict=True))
        per_tenant[s.tenant] = {"sent": s.sent, "acked": s.acked, "errors": s.errors, "dead_letters": item.dead,
                                "landed": len(item.writes_ms), "p99_ms": _round(percentile(lat, 99))}
    details = {**(details or {}), "timeline": timeline(
        [(c, w) for item in landed for c, w in zip(item.sends_ms, item.writes_ms, strict=True)], sends, writes)}
    return Step(
        step=step, offered_per_s=offered_per_s, seconds=seconds, sent=sum(s.sent for s in sent), acked=acked,
        errors=sum(s.errors for s in sent), dead=dead, landed=len(writes), sent_per_s=sent_per_s,
        landed_per_s=landed_per_s, landed_overall_per_s=overall,
        mean_ms=sum(latencies) / len(latencies) if latencies else None, p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95), p99_ms=percentile(latencies, 99),
        max_ms=latencies[-1] if latencies else None, drain_s=drain, backlog_growth_per_s=growth,
        peak_backlog=peak, verdict=why, kept_up=kept_up, per_tenant=per_tenant, details=dict(details or {}),
    )


def _round(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


# -- the naive baseline ------------------------------------------------------------------------


@dataclass(frozen=True)
class Naive:
    """One consumer, one synchronous insert per message, on pre-sent messages."""

    messages: int
    seconds: float  # first message received to last insert acknowledged
    rows_in_cassandra: int
    service_p50_ms: float | None  # per message: decode + convert + insert
    service_p99_ms: float | None
    stopped_by: str  # "count", "time" or "no more messages"
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def verified(self) -> bool:
        return self.rows_in_cassandra == self.messages

    def to_dict(self) -> dict[str, Any]:
        return {"messages": self.messages, "seconds": round(self.seconds, 3), "msgs_per_s": round(self.per_s, 1),
                "rows_in_cassandra": self.rows_in_cassandra, "verified": self.verified,
                "service_p50_ms": _round(self.service_p50_ms, 3), "service_p99_ms": _round(self.service_p99_ms, 3),
                "stopped_by": self.stopped_by, "details": self.details,
                "latency_note": "end-to-end latency is not meaningful here: the messages were sent before the "
                                "consumer started, so it would measure how long they waited; the service time per "
                                "message is given instead"}


# -- the run -----------------------------------------------------------------------------------


def sustained(steps: Sequence[Step]) -> Step | None:
    """The step of the highest offered rate that kept up with p99 within :data:`MAX_P99_MS`."""
    return max((s for s in steps if s.sustained), key=lambda s: s.offered_per_s, default=None)


def bridge_us(step: Step | None) -> float | None:
    """The bridges' CPU microseconds per message over a step (send and drain), if measured."""
    if step is None:
        return None
    value = step.details.get("cpu_us_per_message", {}).get("bridge")
    return None if value is None else float(value)


def kept_up(steps: Sequence[Step]) -> Step | None:
    """The step of the highest offered rate that kept up, whatever its latency."""
    return max((s for s in steps if s.kept_up), key=lambda s: s.offered_per_s, default=None)


def vs_naive(step: Step | None, naive: Naive | None) -> float | None:
    return step.landed_per_s / naive.per_s if step is not None and naive is not None and naive.per_s > 0 else None


def targets(steps: Sequence[Step], naive: Naive | None, min_rate: float = MIN_SUSTAINED,
            min_vs_naive: float = 15.0, max_bridge_us: float = MAX_BRIDGE_US) -> list[dict[str, Any]]:
    best = sustained(steps)
    rate = best.landed_per_s if best else None
    ratio = vs_naive(best, naive)
    # The bridges' CPU per message at the sustained step, or at the highest step if none kept up.
    bridge = bridge_us(best or (max(steps, key=lambda s: s.offered_per_s) if steps else None))
    # No sustained step: the ratio is not met (there is no sustained rate), and the note says what
    # the highest step that kept up would give, at the latency it had.
    fallback = kept_up(steps) if best is None else None
    note = "" if fallback is None or naive is None else (
        f"no step kept up with p99 <= {MAX_P99_MS:g} ms; the highest that kept up landed "
        f"{fallback.landed_per_s:,.0f} msg/s = {vs_naive(fallback, naive) or 0:.1f}x naive at p99 "
        f"{fallback.p99_ms or 0:,.0f} ms")
    return [
        {"name": f"sustained end-to-end msg/s with p99 <= {MAX_P99_MS:g} ms", "goal": f">= {min_rate:,.0f}",
         "measured": _round(rate), "met": None if not steps else (rate is not None and rate >= min_rate)},
        {"name": "sustained / naive baseline", "goal": f">= {min_vs_naive:g}x", "measured": _round(ratio, 2),
         "met": (ratio >= min_vs_naive if ratio is not None else False if steps and naive is not None else None),
         **({"note": note} if note else {})},
        {"name": "bridge CPU us per message", "goal": f"<= {max_bridge_us:g}", "measured": _round(bridge, 1),
         "met": None if bridge is None else bridge <= max_bridge_us},
    ]


def verified(steps: Sequence[Step], naive: Naive | None) -> bool:
    """Every acknowledged message is in Cassandra (none lost, none dead-lettered), and the baseline's rows."""
    return all(s.landed == s.acked and not s.dead for s in steps) and (naive is None or naive.verified)


def report(steps: Sequence[Step], naive: Naive | None, meta: Mapping[str, Any],
           warmup: Step | None = None) -> dict[str, Any]:
    """The JSON document of a run."""
    best, fallback = sustained(steps), kept_up(steps)
    return {
        "benchmark": "stream",
        "schema_version": SCHEMA_VERSION,
        **meta,
        "steps": [s.to_dict() for s in steps],
        "warmup": warmup.to_dict() if warmup else None,
        "naive": naive.to_dict() if naive else None,
        "sustained": None if best is None else {"step": best.step, "offered_per_s": best.offered_per_s,
                                                "landed_per_s": round(best.landed_per_s, 1),
                                                "p99_ms": _round(best.p99_ms),
                                                "producer": best.details.get("producer")},
        "sustained_vs_naive": _round(vs_naive(best, naive), 2),
        # The highest step that kept up, whether or not it met the latency bound (then it is no sustained rate).
        "kept_up": None if fallback is None else {
            "step": fallback.step, "offered_per_s": fallback.offered_per_s,
            "landed_per_s": round(fallback.landed_per_s, 1), "p99_ms": _round(fallback.p99_ms),
            "meets_latency": fallback.meets_latency, "vs_naive": _round(vs_naive(fallback, naive), 2),
            "cpu_bound_per_s": _round(fallback.cpu_bound_per_s(), 0), "producer": fallback.details.get("producer")},
        "targets": targets(steps, naive),
        "verified": verified(steps, naive),
    }


# -- text --------------------------------------------------------------------------------------

COLUMNS = ("producer", "offered/s", "sent/s", "landed/s", "landed", "p50 ms", "p95 ms", "p99 ms", "drain s",
           "CPU us/msg", "CPU-bound/s", "kept up?")


def table(steps: Sequence[Step]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    lines = [[str(s.details.get("producer", "-")), f"{s.offered_per_s:,.0f}", f"{s.sent_per_s:,.0f}",
              f"{s.landed_per_s:,.0f}", f"{s.landed:,}/{s.acked:,}", ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms),
              "-" if s.drain_s is None else f"{s.drain_s:.2f}", cpu_line(s.details.get("cpu_us_per_message", {})),
              ms(s.cpu_bound_per_s()),
              ("yes" if s.kept_up else "NO") + ("" if s.verdict == "kept up" else f" ({s.verdict})")]
             for s in steps]
    widths = [max(len(str(c)) for c in col) for col in zip(COLUMNS, *lines, strict=True)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths[:-1]) + "  {}"
    out = [fmt.format(*COLUMNS), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def cpu_line(per_message: Mapping[str, float]) -> str:
    """``bridge 30 workers 60 ...``: CPU microseconds per message by kind of role."""
    order = ("bridge", "workers", "cassandra", "kafka", "redis", "producers", "benchmark", "other")
    return " ".join(f"{k} {per_message[k]:,.0f}" for k in order if k in per_message) or "-"


def summary(doc: Mapping[str, Any]) -> str:
    out = []
    best, naive = doc.get("sustained"), doc.get("naive")
    if best:
        out.append(f"sustained: {best['landed_per_s']:,.0f} msg/s landed at {best['offered_per_s']:,.0f} msg/s "
                   f"offered, p99 {best['p99_ms']:,.0f} ms")
    else:
        out.append(f"sustained: no step kept up with p99 <= {MAX_P99_MS:g} ms")
    if naive:
        out.append(f"naive baseline: {naive['msgs_per_s']:,.0f} msg/s ({naive['messages']:,} messages in "
                   f"{naive['seconds']:.1f} s, service time p50 {naive['service_p50_ms']} ms)")
    if doc.get("sustained_vs_naive") is not None:
        out.append(f"sustained / naive: {doc['sustained_vs_naive']:.1f}x")
    up = doc.get("kept_up")
    if up and not up["meets_latency"]:
        ratio = "" if up["vs_naive"] is None else f", {up['vs_naive']:.1f}x naive"
        out.append(f"highest step that kept up: {up['landed_per_s']:,.0f} msg/s landed at {up['offered_per_s']:,.0f} "
                   f"offered{ratio}, but p99 {up['p99_ms'] or 0:,.0f} ms > {MAX_P99_MS:g} ms: not a sustained rate")
    if up and up["cpu_bound_per_s"]:
        out.append(f"CPU-bound at that step: {up['cpu_bound_per_s']:,.0f} msg/s ({CORES} cores / the platform's "
                   f"CPU per message: {', '.join(PLATFORM_ROLES)})")
    for t in doc.get("targets", []):
        state = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        measured = "-" if t["measured"] is None else f"{t['measured']:,}"
        note = f" ({t['note']})" if t.get("note") else ""
        out.append(f"target {t['name']} {t['goal']}: {measured} -> {state}{note}")
    return "\n".join(out)
