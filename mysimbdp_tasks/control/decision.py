"""A scaling decision: what the monitor asks of the manager for one tenant's pool, and why."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    tenant: str
    action: str  # "grow" or "shrink"
    reason: str
    at: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    # Batch tasks waiting in the tenant's queue when a "backlog" grow was decided: the manager sizes
    # the pool from it. None for the stream rules, which grow by one process.
    backlog: int | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Decision:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("action") not in ("grow", "shrink") \
                or not isinstance(raw.get("tenant"), str):
            raise ValueError(f"not a scaling decision: {data[:200]!r}")
        backlog = raw.get("backlog")
        if backlog is not None and (isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0):
            raise ValueError(f"backlog: expected a count of tasks, got {backlog!r}")
        return cls(tenant=raw["tenant"], action=raw["action"], reason=str(raw.get("reason", "")),
                   at=float(raw.get("at", 0)), evidence=list(raw.get("evidence", [])), backlog=backlog)
