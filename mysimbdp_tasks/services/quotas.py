"""Per-tenant daily quotas as atomic Redis scripts.

Every check-and-increment runs inside one Lua script (``lua/*.lua``), so concurrent watchers, bridges and processes
never overshoot a limit: Redis runs a script to its end before anything else. Counters live in one
hash per tenant per UTC day (:func:`~mysimbdp_tasks.core.names.usage_key`: files, bytes, messages) that
expires a day after its own day ends, so yesterday's numbers stay readable for a while.

Accounting of admitted files that turn out to be unusable: a file that lands **no row at all**
(unparseable, or every row refused) is refunded once, because the tenant got no service for it; a
file that lands some rows counts in full (its bytes were read, parsed and partly stored).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from ..core import names
from ..core.formats import extension
from ..core.sealed import inner_name
from ..core.tenants import Tenant
from .scripts import source

GRACE_SECONDS = 24 * 3600  # usage of a day stays readable this long after the day ends
# Verdict runs kept per partition: a run starts only where the verdict flips (quota out, new day,
# top-up), a few a day, so this reaches weeks back, far beyond any uncommitted offset.
MAX_VERDICT_RUNS = 200


@dataclass(frozen=True)
class Admission:
    admitted: bool
    reason: str  # "admitted" or a refusal reason such as "daily_files_exceeded"
    limit: str = ""
    usage: str = ""
    day: str = ""


def today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


usage_key = names.usage_key  # the hash of a tenant's counters for one day


def _expire_at(day: str) -> int:
    end = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), dt.UTC)
    return int(end.timestamp()) + GRACE_SECONDS


class Quotas:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        # Registered once per instance; a process keeps one Quotas (the worker in its context).
        self._admit = client.register_script(source("admit_file"))
        self._refund = client.register_script(source("refund_file"))
        self._reserve = client.register_script(source("reserve_messages"))

    def admit_file(self, tenant_name: str, tenant: Tenant | None, file_name: str, size: int,
                   day: str | None = None, ingest_id: str | None = None) -> Admission:
        """Check type, size, files and bytes for today and reserve them, all in one atomic step.

        Idempotent per ``ingest_id``: admitting the same ingestion again returns the first verdict
        (and its day) and charges nothing (a watcher recovering a claim after a crash).
        """
        ingest_id = ingest_id or uuid.uuid4().hex
        day = day or today()
        ext = extension(inner_name(file_name))  # ".csv.gz" for a gzip file; "x.csv.enc" is checked as ".csv"
        refused = tenant.encryption.refusal(file_name) if tenant is not None and tenant.batch is not None else None
        if refused:  # charges nothing, so nothing to remember per ingest id
            return Admission(False, refused, "sealed files only (encrypted: required)", ext, day)
        if tenant is not None and tenant.batch is not None:
            b = tenant.batch
            allowed, max_size, max_files, max_bytes = (",".join(b.file_types), b.max_file_size_bytes,
                                                       b.max_files_per_day, b.max_bytes_per_day)
        else:  # unknown to this process, or stream-only: the script tells which
            allowed, max_size, max_files, max_bytes = "", 0, -1, 0
        ok, reason, limit, usage, decided_on = self._admit(
            keys=[names.TENANTS_ACTIVE, names.TENANTS, usage_key(tenant_name, day),
                  names.admission_key(tenant_name, ingest_id)],
            args=[tenant_name, ext, allowed, size, max_size, max_files, max_bytes, _expire_at(day), day,
                  GRACE_SECONDS + 86400],
        )
        return Admission(bool(int(ok)), _s(reason), _s(limit), _s(usage), _s(decided_on))

    def refund_file(self, tenant_name: str, ingest_id: str, size: int, day: str) -> bool:
        """Give back one file and its bytes, at most once per ingestion (the marker makes it idempotent)."""
        return bool(self._refund(keys=[usage_key(tenant_name, day), names.refund_key(tenant_name, ingest_id)],
                                 args=[size, GRACE_SECONDS + 86400]))

    def reserve_ranges(self, tenant_name: str, limit: int, ranges: Sequence[tuple[int, int, int]],
                       day: str | None = None) -> list[list[tuple[int, bool]]]:
        """Admit messages, given as ranges ``(partition, first, last)`` of consecutive offsets (in
        offset order within a partition), against the daily limit, in one atomic call.

        Returns, per range, its verdicts as runs ``(first offset, admitted)``: each run covers its
        offset up to the next run's (the last one up to the range's end). Admission is partial
        when the quota runs out in the middle. A replayed offset gets the verdict it had the first
        time, stored by offset range, whatever ``day`` and ``limit`` are now, and is not counted
        again: a range sent twice is charged once.
        """
        if not ranges:
            return []
        day = day or today()
        args: list[int | str] = [limit, _expire_at(day), MAX_VERDICT_RUNS]
        for triple in ranges:
            args.extend(triple)
        keys = [usage_key(tenant_name, day), names.stream_hw_key(tenant_name), names.stream_runs_key(tenant_name)]
        return [[(int(flat[i]), bool(flat[i + 1])) for i in range(0, len(flat), 2)]
                for flat in self._reserve(keys=keys, args=args)]

    def reserve_messages(self, tenant_name: str, limit: int, positions: list[tuple[int, int]],
                         day: str | None = None) -> list[bool]:
        """:meth:`reserve_ranges` for messages given one by one as (partition, offset), in
        order; returns one decision per message."""
        ranges = offset_ranges(positions)
        decisions: list[bool] = []
        for (_, first, last), runs in zip(ranges, self.reserve_ranges(tenant_name, limit, ranges, day), strict=True):
            decisions.extend(expand(runs, first, last))
        return decisions

    def usage(self, tenant_name: str, day: str | None = None) -> dict[str, int]:
        raw = self.redis.hgetall(usage_key(tenant_name, day or today()))
        found = {_s(k): int(v) for k, v in raw.items()}
        return {"files": found.get("files", 0), "bytes": found.get("bytes", 0), "messages": found.get("messages", 0)}


def offset_ranges(positions: Iterable[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(partition, first, last) ranges of consecutive offsets, in the order of ``positions``."""
    ranges: list[tuple[int, int, int]] = []
    for partition, offset in positions:
        if ranges and ranges[-1][0] == partition and ranges[-1][2] + 1 == offset:
            ranges[-1] = (partition, ranges[-1][1], offset)
        else:
            ranges.append((partition, offset, offset))
    return ranges


def expand(runs: Sequence[tuple[int, bool]], first: int, last: int) -> list[bool]:
    """One decision per offset of first..last from the range's runs (see :meth:`Quotas.reserve_ranges`)."""
    out: list[bool] = []
    for i, (start, admitted) in enumerate(runs):
        end = runs[i + 1][0] if i + 1 < len(runs) else last + 1
        out.extend([admitted] * (end - max(start, first)))
    return out


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
