"""A tenant's replication and consistency: how many copies of its rows and messages are kept, and
how many must have a write before it counts.

In a tenant's config, every field optional (the platform's settings fill the gaps)::

    "replication": {
      "keyspace": "SimpleStrategy:3",        # or "NetworkTopologyStrategy:dc1=3,dc2=2"
      "write_consistency": "LOCAL_QUORUM",   # the sink's writes; the default
      "replication_factor": 3,               # replicas of each partition of the tenant's topics
      "min_insync_replicas": 2               # replicas a topic write needs (producers use acks=all)
    }

Pure: parsed and checked here, applied by services/provisioning.py (CREATE / ALTER KEYSPACE),
services/topics.py and services/sink.py. Data-centre names are checked against a strict pattern
(settings.REPLICATION) before they reach CQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .envvalues import REPLICATION

KEYS = ("keyspace", "write_consistency", "replication_factor", "min_insync_replicas")
# Write consistency levels, with the replicas each needs (0: depends on RF or DCs, checked by Cassandra).
WRITE_CONSISTENCY: dict[str, int] = {
    "ANY": 1, "ONE": 1, "LOCAL_ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": 0, "LOCAL_QUORUM": 0, "EACH_QUORUM": 0,
    "ALL": 0,
}
# The sink's consistency when none is given: a majority of the local DC's replicas (one when RF is 1).
DEFAULT_WRITE_CONSISTENCY = "LOCAL_QUORUM"
MAX_FACTOR = 32


@dataclass(frozen=True)
class Replication:
    keyspace: str | None = None  # "SimpleStrategy:RF" or "NetworkTopologyStrategy:dc=RF,..."; None: the platform's
    write_consistency: str = DEFAULT_WRITE_CONSISTENCY
    replication_factor: int | None = None  # None: MYSIMBDP_TOPIC_REPLICATION
    min_insync_replicas: int | None = None  # None: MYSIMBDP_TOPIC_MIN_INSYNC (at most replication_factor)

    def keyspace_spec(self, default: str) -> str:
        return self.keyspace or default

    def topic_replicas(self, default: int) -> int:
        return self.replication_factor or default

    def topic_min_insync(self, default: int) -> int:
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return min(default, self.topic_replicas(default))


NONE = Replication()


def factors(spec: str) -> dict[str, int]:
    """``SimpleStrategy:3`` → {"": 3}; ``NetworkTopologyStrategy:dc1=3,dc2=2`` → {"dc1": 3, "dc2": 2}."""
    m = REPLICATION.match(spec.strip())
    if not m:
        return {}
    if m.group(1):
        return {"": int(m.group(2))}
    return {dc: int(rf) for dc, rf in (pair.split("=") for pair in m.group(4).strip(",").split(","))}


def parse(raw: Any, bad: Callable[[str, str], None]) -> Replication:
    """The ``replication`` section of one tenant; problems go to ``bad(path, message)``."""
    if not isinstance(raw, dict):
        bad("replication", f"expected an object with any of {', '.join(KEYS)}, got {type(raw).__name__}")
        return NONE
    for key in raw:
        if key not in KEYS:
            bad(f"replication.{key}", f"unknown setting; expected one of {', '.join(KEYS)}")
    keyspace = raw.get("keyspace")
    found: dict[str, int] = {}
    if keyspace is not None:
        found = factors(keyspace) if isinstance(keyspace, str) else {}
        if not found or any(not 1 <= rf <= MAX_FACTOR for rf in found.values()):
            bad("replication.keyspace", f"expected 'SimpleStrategy:RF' or 'NetworkTopologyStrategy:dc1=RF,dc2=RF' "
                f"(data centres: letters, digits, '_', '.', '-'; RF 1 to {MAX_FACTOR}), got {keyspace!r}")
    consistency = raw.get("write_consistency", DEFAULT_WRITE_CONSISTENCY)
    if not isinstance(consistency, str) or consistency.upper() not in WRITE_CONSISTENCY:
        bad("replication.write_consistency", f"expected one of {', '.join(WRITE_CONSISTENCY)}, got {consistency!r}")
        consistency = DEFAULT_WRITE_CONSISTENCY
    consistency = consistency.upper()
    needs = WRITE_CONSISTENCY[consistency]
    if found and needs > max(found.values()):
        bad("replication.write_consistency", f"{consistency} needs {needs} replicas but the keyspace has at most "
            f"{max(found.values())} per data centre; lower it or raise the replication")
    factor = _count(raw, "replication_factor", bad)
    min_isr = _count(raw, "min_insync_replicas", bad)
    if factor is not None and min_isr is not None and min_isr > factor:
        bad("replication.min_insync_replicas", f"{min_isr} is more than replication_factor ({factor}): "
            "no write could be acknowledged")
    return Replication(keyspace=re.sub(r"\s", "", str(keyspace)) if found else None, write_consistency=consistency,
                       replication_factor=factor, min_insync_replicas=min_isr)


def _count(raw: dict[str, Any], key: str, bad: Callable[[str, str], None]) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FACTOR:
        bad(f"replication.{key}", f"expected a whole number from 1 to {MAX_FACTOR}, got {value!r}")
        return None
    return value
