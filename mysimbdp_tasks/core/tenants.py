"""The tenant model: load, validate and describe tenant configurations.

A configuration file is one JSON object, tenant name -> settings, in the original format::

    {"tenant1": {"max_file_size": 10, "file_type": ".json", "max_amount_of_data": 100,
                 "max_number_of_files": 10, "max_messages_per_day": 100000,
                 "namespace": "tenant1", "table_name": "comments",
                 "schema": {"id": "text", "ups": "int", ..., "key": "((subreddit, id), ups)"}}}

Batch settings and stream settings are each optional, so the original batch-only file and the
original stream-only file both load as they are. Sizes are in MB, where **1 MB = 1,048,576 bytes**
(a mebibyte, as ``os.path.getsize(f) / 1024 / 1024`` gives it); fractions are allowed.

Loading never stops at the first mistake: every problem is collected with its tenant and field
path and raised together in one :class:`~mysimbdp_tasks.core.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cql, encryption, names, priorities, quality, replication, sinks, windows
from .errors import ConfigError, ConfigProblem
from .keys import PrimaryKey, parse_key

MB = 1024 * 1024
TENANT_NAME = re.compile(r"^[a-z][a-z0-9]{0,31}\Z")  # no '-' or '_': those end the name in file names
FILE_TYPES = (".csv", ".json", ".jsonl", ".ndjson", ".parquet", ".csv.gz", ".json.gz", ".jsonl.gz", ".ndjson.gz")
# Two names of one format: a tenant allowed either may stage files with either extension.
ALIASES = {".jsonl": ".ndjson", ".ndjson": ".jsonl", ".jsonl.gz": ".ndjson.gz", ".ndjson.gz": ".jsonl.gz"}

# Optional platform settings and their defaults (documented in README, "Tenant configuration").
DEFAULTS: dict[str, Any] = {
    "max_avg_ingestion_ms": 1000,  # monitor: a window slower than this on average is "slow"
    "max_lag_messages": 10000,  # monitor: more messages than this waiting is "falling behind"
    "min_workers": 1,  # manager: smallest pool size for the tenant
    "max_workers": 4,  # manager: largest pool size for the tenant
    "max_queued_tasks": 2,  # monitor/manager: batch tasks waiting per pool process before the pool grows
    "partitions": 3,  # Kafka partitions of <tenant>.ingest
}

# The largest value each number may take: enough for any real tenant, small enough that sizes in
# bytes and counts stay 64-bit integers in Redis, and that a pool or a topic is never made absurd.
MAX_MB = 2**30  # 1 EiB, as bytes still far below 2**63
MAX_COUNT = 10**12
LIMITS: dict[str, float] = {
    "max_file_size": MAX_MB,
    "max_amount_of_data": MAX_MB,
    "max_number_of_files": MAX_COUNT,
    "max_messages_per_day": MAX_COUNT,
    "max_avg_ingestion_ms": 86_400_000,  # a day
    "max_lag_messages": MAX_COUNT,
    "min_workers": 256,
    "max_workers": 256,
    "max_queued_tasks": 10_000,
    "partitions": 1_000,
}

BATCH_KEYS = ("max_file_size", "file_type", "max_amount_of_data", "max_number_of_files")
STREAM_KEYS = ("max_messages_per_day",)
COMMON_KEYS = ("namespace", "table_name", "schema")
KNOWN_KEYS = BATCH_KEYS + STREAM_KEYS + COMMON_KEYS + tuple(DEFAULTS) + ("description", "windows", "priority",
                                                                         "sinks", "quality", encryption.KEY,
                                                                         "replication")


@dataclass(frozen=True)
class BatchSettings:
    file_types: tuple[str, ...]
    max_file_size_bytes: int
    max_bytes_per_day: int
    max_files_per_day: int


@dataclass(frozen=True)
class StreamSettings:
    max_messages_per_day: int


@dataclass(frozen=True)
class Tenant:
    name: str
    namespace: str
    table_name: str
    columns: tuple[tuple[str, str], ...]  # (column, cql type) in schema order
    key: PrimaryKey
    batch: BatchSettings | None = None
    stream: StreamSettings | None = None
    max_avg_ingestion_ms: float = DEFAULTS["max_avg_ingestion_ms"]
    max_lag_messages: int = DEFAULTS["max_lag_messages"]
    min_workers: int = DEFAULTS["min_workers"]
    max_workers: int = DEFAULTS["max_workers"]
    max_queued_tasks: int = DEFAULTS["max_queued_tasks"]
    partitions: int = DEFAULTS["partitions"]
    windows: tuple[windows.Window, ...] = ()  # UTC ranges in which batch files run; none: any time
    priority: priorities.Priority = priorities.DEFAULT  # who takes a free batch slot first
    sinks: tuple[sinks.SinkSpec, ...] = ()  # sinks besides the tenant's own table (core/sinks.py)
    quality: quality.Quality = field(default_factory=quality.Quality)  # rules checked on every converted row
    encryption: encryption.Policy = encryption.DEFAULT  # whether staged files may / must be sealed
    replication: replication.Replication = replication.NONE  # copies and write consistency (core/replication.py)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def column_types(self) -> dict[str, str]:
        return dict(self.columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    def to_json(self) -> str:
        """The tenant's settings as given, for the platform registry."""
        return json.dumps({self.name: dict(self.raw)}, sort_keys=True)

    @property
    def batch_queue(self) -> str:
        return names.batch_queue(self.name)

    @property
    def stream_queue(self) -> str:
        return names.stream_queue(self.name)

    @property
    def ingest_topic(self) -> str:
        return names.ingest_topic(self.name)

    @property
    def dead_topic(self) -> str:
        return names.dead_topic(self.name)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load(path: str | Path) -> dict[str, Tenant]:
    """Read and validate a tenant configuration file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot read: {exc.strerror}")], str(path)) from exc
    try:
        data = json.loads(text, object_pairs_hook=_Object)
    except json.JSONDecodeError as exc:
        problem = ConfigProblem(str(path), f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        raise ConfigError([problem], str(path)) from exc
    duplicates = list(_duplicates(data, ""))
    if duplicates:
        raise ConfigError(duplicates, str(path))
    return parse(data, source=str(path))


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once.

    ``json.loads`` keeps the last of two equal keys without a word, so a tenant file with
    ``max_file_size`` twice would silently apply the second; a file must say each thing once.
    """

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        seen: set[str] = set()
        self.repeated: list[str] = []
        for key, _ in pairs:
            if key in seen:
                self.repeated.append(key)
            seen.add(key)


def _duplicates(value: Any, where: str) -> Any:
    """Yield a problem for every key given twice in one object, anywhere in ``value``."""
    if isinstance(value, _Object):
        for key in dict.fromkeys(value.repeated):
            yield ConfigProblem(f"{where}.{key}" if where else key,
                                "given more than once in the same object; say it once (JSON would keep the last)")
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _duplicates(inner, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _duplicates(inner, f"{where}[{i}]")


def parse(data: Any, source: str = "") -> dict[str, Tenant]:
    problems: list[ConfigProblem] = []
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("(top level)", "expected a JSON object of tenant name -> settings")], source)
    if not data:
        raise ConfigError([ConfigProblem("(top level)", "no tenants defined")], source)
    tenants: dict[str, Tenant] = {}
    for name, settings in data.items():
        tenant = _parse_tenant(name, settings, problems)
        if tenant is not None:
            tenants[name] = tenant
    _check_shared_namespaces(data, problems)
    if problems:
        raise ConfigError(problems, source)
    return tenants


def _parse_tenant(name: str, raw: Any, problems: list[ConfigProblem]) -> Tenant | None:
    before = len(problems)

    def bad(path: str, message: str) -> None:
        problems.append(ConfigProblem(f"{name}.{path}" if path else name, message))

    if not isinstance(name, str) or not TENANT_NAME.match(name):
        bad("", "tenant names are lower-case letters and digits, starting with a letter, at most 32 "
            "(no '-' or '_': they separate the tenant from the rest of a staged file's name)")
    elif name == names.PLATFORM:
        bad("", f"{name!r} is the platform's own name (its topics, queues and consumer groups); choose another")
    if not isinstance(raw, dict):
        bad("", f"expected an object of settings, got {type(raw).__name__}")
        return None
    for key in raw:
        if key not in KNOWN_KEYS:
            bad(key, f"unknown setting{_did_you_mean(key, KNOWN_KEYS)}")
    for key in COMMON_KEYS:
        if key not in raw:
            bad(key, "missing (required)")

    namespace = _name(raw, "namespace", bad)
    table_name = _name(raw, "table_name", bad)
    columns, key = _schema(raw.get("schema"), bad) if "schema" in raw else ((), None)
    if namespace.startswith("system"):
        bad("namespace", f"{namespace!r}: names starting with 'system' belong to Cassandra itself")
    if table_name in names.METRICS_TABLES:
        bad("table_name", f"{table_name!r} is one of the platform's metrics tables; choose another name")

    batch = _batch(raw, bad)
    stream = None
    if "max_messages_per_day" in raw:
        stream = StreamSettings(_positive_int(raw, "max_messages_per_day", bad))
    if batch is None and stream is None and not any(k in raw for k in BATCH_KEYS):
        bad("", "neither batch settings (max_file_size, file_type, max_amount_of_data, "
            "max_number_of_files) nor stream settings (max_messages_per_day) are given")

    extra = {k: _positive_number(raw, k, bad, integer=isinstance(DEFAULTS[k], int)) for k in DEFAULTS if k in raw}
    if extra.get("min_workers", 1) > extra.get("max_workers", DEFAULTS["max_workers"]):
        bad("min_workers", "is larger than max_workers")

    wins = windows.parse_all(raw["windows"], bad) if "windows" in raw else ()
    priority = priorities.parse(raw["priority"], bad) if "priority" in raw else priorities.DEFAULT
    outs = sinks.parse(raw["sinks"], [c for c, _ in columns], table_name, bad) if "sinks" in raw else ()
    rules = quality.parse(raw["quality"], dict(columns), bad) if "quality" in raw and columns else quality.Quality()
    sealing = encryption.parse(raw, bad)
    copies = replication.parse(raw["replication"], bad) if "replication" in raw else replication.NONE
    if len(problems) > before or key is None:
        return None
    return Tenant(name=name, namespace=namespace, table_name=table_name, columns=columns, key=key,
                  batch=batch, stream=stream, raw=raw, windows=wins, priority=priority, sinks=outs, quality=rules,
                  encryption=sealing, replication=copies, **extra)


def _name(raw: dict[str, Any], key: str, bad: Any) -> str:
    if key not in raw:
        return ""
    problem = cql.identifier_problem(raw[key])
    if problem:
        bad(key, problem)
        return ""
    return str(raw[key])


def _schema(schema: Any, bad: Any) -> tuple[tuple[tuple[str, str], ...], PrimaryKey | None]:
    if not isinstance(schema, dict):
        bad("schema", "expected an object of column -> CQL type, plus \"key\"")
        return (), None
    columns: list[tuple[str, str]] = []
    for column, ctype in schema.items():
        if column == "key":
            continue
        problem = cql.identifier_problem(column)
        if problem:
            bad(f"schema.{column}", problem)
            continue
        if not isinstance(ctype, str) or ctype.strip().lower() not in cql.TYPES:
            shown = ctype if isinstance(ctype, str) else type(ctype).__name__
            bad(f"schema.{column}", f"unknown CQL type {shown!r}{_did_you_mean(str(ctype).lower(), cql.TYPES)}; "
                f"supported: {', '.join(sorted(cql.TYPES))}")
            continue
        columns.append((column, ctype.strip().lower()))
    if not columns:
        bad("schema", "defines no columns")
    if "key" not in schema:
        bad("schema.key", "missing: give the primary key, e.g. \"((subreddit, id), ups)\"")
        return tuple(columns), None
    try:
        key = parse_key(schema["key"])
    except ValueError as exc:
        bad("schema.key", str(exc))
        return tuple(columns), None
    given = [c for c, _ in columns]
    for column in key.columns:
        if column not in schema or column == "key":  # "key" is the key itself, not a column
            bad("schema.key", f"column {column!r} is not in the schema{_did_you_mean(column, given)}")
    if len(set(key.columns)) != len(key.columns):
        bad("schema.key", "names a column more than once")
    return tuple(columns), key


def _batch(raw: dict[str, Any], bad: Any) -> BatchSettings | None:
    present = [k for k in BATCH_KEYS if k in raw]
    if not present:
        return None
    for k in BATCH_KEYS:
        if k not in raw:
            bad(k, f"missing: batch settings need all of {', '.join(BATCH_KEYS)}")
    ftypes = raw.get("file_type", [])
    ftypes = [ftypes] if isinstance(ftypes, str) else ftypes
    if not isinstance(ftypes, list) or not ftypes:
        bad("file_type", "expected \".csv\", \".json\" or a list of them")
        ftypes = []
    clean: list[str] = []
    for ft in ftypes:
        norm = ft.lower() if isinstance(ft, str) else ft
        if isinstance(norm, str) and not norm.startswith("."):
            norm = "." + norm
        if norm not in FILE_TYPES:
            bad("file_type", f"unsupported file type {ft!r}; supported: {', '.join(FILE_TYPES)}")
        else:
            clean.append(norm)
    size = _positive_number(raw, "max_file_size", bad)
    per_day = _positive_number(raw, "max_amount_of_data", bad)
    files = _positive_int(raw, "max_number_of_files", bad)
    if size and per_day and size > per_day:
        bad("max_file_size",
            f"{size} MB is more than max_amount_of_data ({per_day} MB): no such file could ever be admitted")
    clean += [ALIASES[ft] for ft in clean if ft in ALIASES]
    return BatchSettings(tuple(dict.fromkeys(clean)), int(size * MB), int(per_day * MB), files)


def _positive_number(raw: dict[str, Any], key: str, bad: Any, integer: bool = False) -> Any:
    if key not in raw:
        return 0
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        bad(key, f"expected a positive {'integer' if integer else 'number'}, got {value!r}")
        return 0
    if not math.isfinite(value) or value <= 0:
        bad(key, f"must be positive, got {value!r}")
        return 0
    if value > LIMITS.get(key, math.inf):
        bad(key, f"{value!r} is more than the largest allowed, {LIMITS[key]:,}")
        return 0
    return value


def _positive_int(raw: dict[str, Any], key: str, bad: Any) -> int:
    return int(_positive_number(raw, key, bad, integer=True))


def _check_shared_namespaces(data: dict[str, Any], problems: list[ConfigProblem]) -> None:
    owners: dict[str, str] = {}
    for name, raw in data.items():
        ns = raw.get("namespace") if isinstance(raw, dict) else None
        if not isinstance(ns, str):
            continue
        if ns in owners:
            problems.append(ConfigProblem(f"{name}.namespace",
                                          f"{ns!r} is already the namespace of tenant {owners[ns]!r}; "
                                          "each tenant needs its own keyspace"))
        else:
            owners[ns] = name


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
