"""What applying a tenant file changes in the registry: merging with what is applied, and the diff.

A tenant's batch settings and its stream settings may come from separate files, as the original
``original-batch.json`` and ``original-stream.json`` do. Applying a file that gives only one path's
settings for a tenant keeps the other path's settings applied before: the two **merge**, so
applying both files leaves each tenant with batch and stream. Everything the file does give (the
keyspace, table, schema, the given path's limits, the optional settings) replaces what was applied.
``tenants apply --replace`` takes each tenant exactly as the file gives it instead, which is how a
path is turned off.
"""

from __future__ import annotations

import json
from typing import Any

from .tenants import BATCH_KEYS, STREAM_KEYS, Tenant, parse

PATHS = {"batch": BATCH_KEYS, "stream": STREAM_KEYS}


def merge(applied: Tenant | None, given: Tenant) -> Tenant:
    """``given`` plus the settings of a path (batch or stream) it leaves out and ``applied`` has."""
    if applied is None:
        return given
    raw = dict(given.raw)
    for keys in PATHS.values():
        if not any(k in raw for k in keys):
            raw.update({k: applied.raw[k] for k in keys if k in applied.raw})
    if raw == dict(given.raw):
        return given
    return parse({given.name: raw}, source=f"{given.name} merged with its applied settings")[given.name]


def kept_paths(applied: Tenant | None, given: Tenant, merged: Tenant) -> list[str]:
    """The paths ``merged`` has from ``applied`` only (for the operator to see what merging kept)."""
    if applied is None:
        return []
    return [path for path in PATHS if getattr(merged, path) is not None and getattr(given, path) is None]


def _flat(raw: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in dict(raw).items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value, sort_keys=True)
    return out


def diff(applied: Tenant | None, wanted: Tenant) -> list[str]:
    """One line per setting that applying ``wanted`` changes; empty when nothing changes."""
    if applied is None:
        return ["new tenant"]
    old, new = _flat(applied.raw), _flat(wanted.raw)
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key, '(not set)')} -> {new.get(key, '(not set)')}")
    return lines
