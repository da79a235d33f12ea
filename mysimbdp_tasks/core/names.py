"""Every name the platform gives to things outside a process: Celery queues, task names and task
ids, Redis keys, Kafka topics and consumer groups, Cassandra metrics tables.

Intake, workers, control and the CLI queries all meet on these names, so each is spelled exactly
once, here. Changing one changes the wire contract between running processes: a platform must be
stopped (``mysimbdp down``) before it runs code with a different name.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The first part of the platform's own queues, topics and consumer groups (``mysimbdp.reports``,
#: ``mysimbdp.bridge.<tenant>``): a tenant of this name would own them, so none may have it.
PLATFORM = "mysimbdp"

# -- Celery ----------------------------------------------------------------------------------
INGEST_FILE = "mysimbdp.ingest_file"  # plan one admitted file (and ingest it if it is one chunk)
INGEST_CHUNK = "mysimbdp.ingest_chunk"  # ingest one chunk of a planned file
FINALIZE_FILE = "mysimbdp.finalize_file"  # finalize a file whose every chunk has an outcome
INGEST_MESSAGES = "mysimbdp.ingest_messages"  # write one bridged micro-batch of stream messages
DEFAULT_QUEUE = "mysimbdp.default"  # nothing is sent here: every task names its tenant's queue


def batch_queue(tenant: str) -> str:
    return f"{tenant}.batch"


def stream_queue(tenant: str) -> str:
    return f"{tenant}.stream"


# Task ids derived from the job, so the sweeper can tell whether a task's message still exists.
def file_task_id(ingest_id: str) -> str:
    return f"{ingest_id}-file"


def chunk_task_id(ingest_id: str, index: int) -> str:
    return f"{ingest_id}-chunk-{index}"


def stream_task_id(tenant: str, ranges: Mapping[int, tuple[int, int]]) -> str:
    """One micro-batch, by the offsets it covers: partition -> (first, last) offset.

    The bridge looks a batch's completion up by this id, and sends a lost batch again with it.
    """
    spans = "_".join(f"{p}.{first}.{last}" for p, (first, last) in sorted(ranges.items()))
    return f"{tenant}-stream-{spans}"


def finalize_task_id(ingest_id: str) -> str:
    return f"{ingest_id}-finalize"


UNACKED = "unacked"  # kombu's Redis hash of delivered, not yet acknowledged messages
UNACKED_INDEX = "unacked_index"  # kombu's sorted set of the same, scored by delivery (or lease) time
UNACKED_MUTEX = "unacked_mutex"  # kombu's lock while it restores messages of dead workers


def unacked_keys(tenant: str | None) -> tuple[str, str, str]:
    """The unacknowledged hash, its index and its mutex of a consumer: in secure mode a tenant's pool
    has its own (its Redis user may not see another tenant's in-flight messages), else the shared ones."""
    if tenant is None:
        return UNACKED, UNACKED_INDEX, UNACKED_MUTEX
    return f"{UNACKED}:{tenant}", f"{UNACKED_INDEX}:{tenant}", f"{UNACKED_MUTEX}:{tenant}"


def queue_tenant(queue: str) -> str:
    """The tenant of one of its queues (``t1.batch`` -> ``t1``)."""
    return queue.rpartition(".")[0]

# -- Redis keys ------------------------------------------------------------------------------
PREFIX = "mysimbdp:"
TENANTS = PREFIX + "tenants"  # hash: tenant -> applied configuration (JSON)
TENANTS_ACTIVE = PREFIX + "tenants:active"  # set of tenants whose ingestion is on
TENANTS_APPLIED_AT = PREFIX + "tenants:applied_at"  # hash: tenant -> time of the last apply
TENANT_NAMESPACES = PREFIX + "tenants:namespaces"  # hash: keyspace -> the one tenant that owns it
USAGE_PREFIX = PREFIX + "usage:"
STREAM_HW_PREFIX = PREFIX + "stream:hw:"
STREAM_RUNS_PREFIX = PREFIX + "stream:runs:"
STREAM_DONE_PREFIX = PREFIX + "stream:done:"
REFUND_PREFIX = PREFIX + "refund:"
ADMISSION_PREFIX = PREFIX + "admission:"
JOB_PREFIX = PREFIX + "job:"
REDELIVERIES_PREFIX = PREFIX + "redeliveries:"
REPLAYED_PREFIX = PREFIX + "replayed:"
# Open jobs (ingest ids admitted and not finalized yet): one set per tenant, ``jobs_open_key``;
# ``JOBS_OPEN`` itself is the one set of a platform before that (batch/legacy.py adopts it).
JOBS_OPEN = PREFIX + "jobs:open"
JOBS_TENANTS = PREFIX + "jobs:tenants"  # set of tenants that may have open jobs (the sweeper's index)
WATCHER_PENDING = PREFIX + "watcher:pending"  # hash: ingest id -> job JSON, until its task is sent
# Batch slots (batch/slots.py): holders (ingest id -> lease end), the queue (ingest id -> rank) with
# its jobs (hash), the granted files whose task is not sent yet (set), the running files' jobs (hash)
# and the jobs of files whose lease lapsed (hash). The platform's alone; a tenant's pool renews its
# files' leases in its own keys (slot_lease_key, slot_wanted_key).
SLOTS_PREFIX = PREFIX + "slots:"
SLOTS_HELD = SLOTS_PREFIX + "held"
SLOTS_QUEUED = SLOTS_PREFIX + "queued"
SLOTS_QUEUED_JOBS = SLOTS_PREFIX + "queued:jobs"
SLOTS_GRANTED = SLOTS_PREFIX + "granted"
SLOTS_RUNNING = SLOTS_PREFIX + "running"
SLOTS_LAPSED = SLOTS_PREFIX + "lapsed"
SLOTS_LOCK_PREFIX = SLOTS_PREFIX + "lock:"
SLOTS_LEASE_PREFIX = SLOTS_PREFIX + "lease:"
SLOTS_WANTED_PREFIX = SLOTS_PREFIX + "wanted:"


def usage_key(tenant: str, day: str) -> str:
    """Hash of the tenant's counters (files, bytes, messages) for one UTC day."""
    return f"{USAGE_PREFIX}{tenant}:{day}"


def stream_hw_key(tenant: str) -> str:
    """Hash: partition -> last offset whose admission was decided."""
    return f"{STREAM_HW_PREFIX}{tenant}"


def stream_runs_key(tenant: str) -> str:
    """Hash: partition -> the quota verdicts given, as runs of offsets ("start:verdict,...")."""
    return f"{STREAM_RUNS_PREFIX}{tenant}"


def stream_done_key(task_id: str) -> str:
    """Marker (with a TTL) that a stream micro-batch was written or dead-lettered by a worker."""
    return f"{STREAM_DONE_PREFIX}{task_id}"


def stream_done_pattern(tenant: str) -> str:
    """SCAN pattern of every completion marker of the tenant's micro-batches."""
    return f"{STREAM_DONE_PREFIX}{stream_task_id(tenant, {})}*"


# Keys of one ingestion or task are named by tenant first, so a pool's Redis user reaches its own
# tenant's only (security/redis_acl.py: ``<prefix><tenant>:*``). Tenant names hold no ':'.
def refund_key(tenant: str, ingest_id: str) -> str:
    """Marker that the file's quota was given back (at most once)."""
    return f"{REFUND_PREFIX}{tenant}:{ingest_id}"


def admission_key(tenant: str, ingest_id: str) -> str:
    """Hash: the admission verdict of one ingestion (admitted, reason, limit, usage, day)."""
    return f"{ADMISSION_PREFIX}{tenant}:{ingest_id}"


def redeliveries_key(tenant: str, task_id: str) -> str:
    """Counter (with a TTL) of the times a task came back after the tenant's pool running it died."""
    return f"{REDELIVERIES_PREFIX}{tenant}:{task_id}"


def replayed_key(tenant: str) -> str:
    """Hash: ``<partition>:<offset>`` of a dead letter of the tenant -> its replay (state, time, where sent)."""
    return f"{REPLAYED_PREFIX}{tenant}"


def job_key(tenant: str, ingest_id: str) -> str:
    """Hash of one file's ingestion: the job, its plan, timestamps, finalized."""
    return f"{JOB_PREFIX}{tenant}:{ingest_id}"


def job_chunks_key(tenant: str, ingest_id: str) -> str:
    """Hash: chunk index -> that chunk's outcome (JSON)."""
    return f"{job_key(tenant, ingest_id)}:chunks"


def job_finalizing_key(tenant: str, ingest_id: str) -> str:
    """Short lock held by the one task finalizing the job."""
    return f"{job_key(tenant, ingest_id)}:finalizing"


def jobs_open_key(tenant: str) -> str:
    """Set of the tenant's ingest ids admitted and not finalized yet."""
    return f"{JOBS_OPEN}:{tenant}"


def legacy_job_keys(ingest_id: str) -> tuple[str, str]:
    """The job hash and chunk outcomes of a platform that named them by ingest id only (in the one
    open set ``JOBS_OPEN``); read once, to adopt them (batch/legacy.py)."""
    return f"{JOB_PREFIX}{ingest_id}", f"{JOB_PREFIX}{ingest_id}:chunks"


def slot_lease_key(tenant: str) -> str:
    """Sorted set: ingest id of each of the tenant's files holding a batch slot -> end of its lease
    (Redis time). Its pool renews and gives back there; the platform's grants read it."""
    return f"{SLOTS_LEASE_PREFIX}{tenant}"


def slot_wanted_key(tenant: str) -> str:
    """Set: the tenant's files whose tasks came back after their lease lapsed and ask for a slot again."""
    return f"{SLOTS_WANTED_PREFIX}{tenant}"


# -- Kafka -----------------------------------------------------------------------------------
REPORTS_TOPIC = "mysimbdp.reports"  # reports of the platform's bridges and workers, read by the monitor
CONTROL_TOPIC = "mysimbdp.control"  # the monitor's decisions, read by the manager


def ingest_topic(tenant: str) -> str:
    return f"{tenant}.ingest"


def dead_topic(tenant: str) -> str:
    return f"{tenant}.dead"


def reports_topic(tenant: str) -> str:
    """The tenant's own clients' reports: only that tenant may write it, so the topic names the sender."""
    return f"{tenant}.reports"


def bridge_group(tenant: str) -> str:
    """The consumer group of the tenant's bridges; its committed offsets define the stream lag."""
    return f"mysimbdp.bridge.{tenant}"


# -- Cassandra (tables in each tenant's keyspace, next to its data table) -----------------------
BATCH_METRICS_TABLE = "batch_ingestion_metrics"
STREAM_METRICS_TABLE = "stream_ingestion_metrics"
QUALITY_METRICS_TABLE = "quality_metrics"
METRICS_TABLES = (BATCH_METRICS_TABLE, STREAM_METRICS_TABLE, QUALITY_METRICS_TABLE)
