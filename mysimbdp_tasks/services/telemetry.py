"""Prometheus metrics: every ``mysimbdp_*`` metric is defined here, and the one endpoint that serves them.

Design (prometheus_client's multiprocess mode, https://prometheus.github.io/client_python/multiprocess):

- Each platform process writes to ``$MYSIMBDP_HOME/run/metrics/<process>/``
  (``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor when it starts the process; :func:`configure`
  runs first thing in the process). A worker pool configures before it forks, so its prefork
  children inherit the folder and each writes its own ``*_<pid>.db`` files there. The files of a
  process that died stay and keep counting in the sums, so a counter does not fall back when a
  process is restarted; the library wants the folders wiped between runs, which the supervisor
  does when it starts a platform where nothing runs (:func:`wipe`).
- The supervisor serves one endpoint, ``http://MYSIMBDP_METRICS_ADDR/metrics`` (default
  ``127.0.0.1:9464``): it merges the files of every process folder at each scrape, and adds what
  is read at scrape time (:class:`PlatformCollector`): quota use and limits, queue depths,
  processes up and their restarts. One port for the whole platform, so Prometheus has one target
  and nothing needs a port per prefork child.
- Multiprocess limits that shape the metrics: gauges need a ``multiprocess_mode`` (bridge lag is
  ``livemostrecent``: a dead bridge's value goes with it, see :func:`process_exited`; pool size
  ``mostrecent``), custom collectors do not work inside the writing processes (so the scrape-time
  gauges live in the serving process), and labels are never removed.

Labels are bounded: ``tenant`` is an applied tenant's validated name (or ``_unknown`` for a file
naming no applied tenant), ``reason`` one of :data:`REASONS` (anything else counts as ``other``;
``quality:<rule>`` counts as ``quality``), ``rule`` one of the tenant's validated rule names, never
a file name or message text: a label value per distinct input would be an attack on the
time-series database.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import logging
import os
import shutil
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ..core.sinks import NAME as SINK_NAME
from ..core.tenants import TENANT_NAME

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
MIN_FREE_BYTES = 16 * 2**20  # a process's metric files (1 MiB each when created), with room to spare
METRICS_DIR = "metrics"  # under run/
UNKNOWN = "_unknown"

#: Every refusal reason a label may carry (files, rows, messages); others are counted as "other".
REASONS = frozenset({
    # files, at the watcher
    "unknown_tenant", "tenant_inactive", "wrong_file_type", "file_too_large", "daily_files_exceeded",
    "daily_bytes_exceeded", "not_a_regular_file", "hard_linked", "wrong_tenant", "batch_not_enabled",
    "wrong_owner", "owner_not_configured", "flat_staging_disabled", "not_encrypted",
    # sealed files, at the worker
    "not_sealed", "wrong_key", "tampered", "truncated",
    # rows and messages
    "bad_json", "not_an_object", "missing_key_column", "bad_value", "daily_messages_exceeded",
    "stream_not_enabled", "rejected_by_cassandra", "unbindable", "unusable_message", "ingest_failed",
    "worker_lost", "unparseable", "file_changed", "internal_error", "task_lost", "unknown_sink",
    # file formats: a damaged gzip stream, a gzip bomb, a Parquet column that can never fit
    "bad_gzip", "inflated_too_large", "schema_mismatch",
    # records a reader could not read (core/parsing.py)
    "bad_csv", "too_many_fields", "bad_encoding", "record_too_large",
})

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

FILES_ACCEPTED = Counter("mysimbdp_files_accepted_total", "Files admitted by the watcher", ["tenant"])
FILES_DISCARDED = Counter("mysimbdp_discarded_files_total", "Files refused by the watcher", ["tenant", "reason"])
FILES_FINISHED = Counter("mysimbdp_files_finished_total", "Admitted files finalized (done or failed)",
                         ["tenant", "status"])
ROWS_INGESTED = Counter("mysimbdp_rows_ingested_total", "Rows written to the tenant's table", ["tenant", "path"])
ROWS_DISCARDED = Counter("mysimbdp_discarded_rows_total", "Rows of admitted files refused", ["tenant", "reason"])
MESSAGES_ACCEPTED = Counter("mysimbdp_messages_accepted_total", "Messages admitted by the bridge", ["tenant"])
MESSAGES_DISCARDED = Counter("mysimbdp_discarded_messages_total", "Messages dead-lettered (bridge and workers)",
                             ["tenant", "reason"])
QUALITY_CHECKED = Counter("mysimbdp_quality_checked_rows_total", "Rows checked by the tenant's quality rules",
                          ["tenant", "path"])
QUALITY_FAILED = Counter("mysimbdp_quality_failed_rows_total", "Rows failing a quality rule (refused or tagged)",
                         ["tenant", "path", "rule", "action"])
SINK_RETRIES = Counter("mysimbdp_sink_retries_total", "Cassandra batches sent again after a transient failure",
                       ["tenant"])
SINK_ROWS = Counter("mysimbdp_sink_rows_total", "Rows routed to each of a tenant's sinks, by outcome "
                    "(delivered, pending: retrying on their own, failed: kept aside)", ["tenant", "sink", "outcome"])
SCALING = Counter("mysimbdp_scaling_decisions_total", "Scaling decisions the manager acted on or ignored",
                  ["tenant", "action", "outcome"])
LATENCY = Histogram("mysimbdp_end_to_end_latency_seconds",
                    "Stream: Kafka timestamp to write, per message; batch: admission to finalization, per file",
                    ["tenant", "path"], buckets=LATENCY_BUCKETS)
SINK_WRITE = Histogram("mysimbdp_sink_write_seconds", "One sink write (a chunk or a micro-batch) to Cassandra",
                       ["tenant"], buckets=WRITE_BUCKETS)
BRIDGE_LAG = Gauge("mysimbdp_bridge_lag_messages", "Messages of the tenant's topic past its committed offset",
                   ["tenant", "partition"], multiprocess_mode="livemostrecent")
POOL_SIZE = Gauge("mysimbdp_pool_processes", "Processes of the tenant's worker pool (at start, then on scaling)",
                  ["tenant"], multiprocess_mode="mostrecent")


# -- setting a process up ------------------------------------------------------------------------


def folder(run: Path) -> Path:
    return run / METRICS_DIR


def process_folder(run: Path, process: str, fresh: bool = False) -> Path:
    """``run/metrics/<process>/`` (emptied if ``fresh``)."""
    path = folder(run) / process
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def wipe(run: Path) -> None:
    """Forget every process's metrics: a supervisor starting a platform where nothing runs."""
    shutil.rmtree(folder(run), ignore_errors=True)


def configure(run: Path, process: str) -> Path:
    """Make this process write its metrics to the folder its supervisor gave it in the environment,
    or, run by hand, to a fresh ``run/metrics/<process>/``.

    Called before the process forks (a worker pool) and before any labelled metric is used: the
    library picks its value class from the environment, so it is picked again here.
    """
    given = Path(os.environ.get(ENV) or ".").resolve()
    # Only a folder of this platform's run/metrics: an inherited one of another home is not ours.
    ours = given.parent == folder(run).resolve() and given.is_dir()
    try:
        path = given if ours else process_folder(run, process, fresh=True)
        free = shutil.disk_usage(path).free
    except OSError as exc:
        path, free = given, 0
        log.warning("process=%s metrics folder %s unusable: %s", process, folder(run), exc)
    if free < MIN_FREE_BYTES:
        # The library memory-maps a file of 1 MiB per metric type and process: written on a full
        # disk, it kills the process with SIGBUS. Counting in memory keeps the process working.
        os.environ.pop(ENV, None)
        log.warning("process=%s metrics not exported: %.1f MiB free under %s, %d needed (keep run/ off a disk "
                    "that fills with data)", process, free / 2**20, folder(run), MIN_FREE_BYTES // 2**20)
    else:
        os.environ[ENV] = str(path)
    values.ValueClass = values.get_value_class()
    return path


def process_exited(run: Path, process: str, pid: int) -> None:
    """Drop the live gauges (bridge lag) of a process that exited, until its restart wipes its folder."""
    with contextlib.suppress(OSError):
        mark_process_dead(pid, str(folder(run) / process))


def tenant_label(name: str | None) -> str:
    return name if name and TENANT_NAME.fullmatch(name) else UNKNOWN


def reason_label(reason: str) -> str:
    if reason.startswith("quality:"):
        return "quality"
    return reason if reason in REASONS else "other"


# -- one-line calls at the points where things happen ---------------------------------------------


def file_admitted(tenant: str) -> None:
    FILES_ACCEPTED.labels(tenant_label(tenant)).inc()


def file_refused(tenant: str, reason: str) -> None:
    """``tenant``: an applied tenant or ``_unknown`` (the watcher's receipt folder), never a raw name."""
    FILES_DISCARDED.labels(tenant_label(tenant), reason_label(reason)).inc()


def file_finished(tenant: str, status: str, results: Iterable[dict[str, Any]], admitted_at: float,
                  finished_at: float) -> None:
    """A finalized file: its rows landed and refused (by reason), its end-to-end time."""
    t = tenant_label(tenant)
    FILES_FINISHED.labels(t, "done" if status == "done" else "failed").inc()
    ok = refused = 0
    reasons: Tally[str] = Tally()
    for result in results:
        ok += int(result.get("rows_ok", 0))
        refused += int(result.get("rows_refused", 0))
        reasons.update(result.get("reasons") or {})
    if ok:
        ROWS_INGESTED.labels(t, "batch").inc(ok)
    reasons["other"] += refused - sum(reasons.values())
    for reason, n in reasons.items():
        if n > 0:
            ROWS_DISCARDED.labels(t, reason_label(reason)).inc(n)
    LATENCY.labels(t, "batch").observe(max(0.0, finished_at - admitted_at))



def messages_decided(tenant: str, admitted: int, refused: Iterable[str]) -> None:
    """A bridge's micro-batch: ``admitted`` messages and a reason per refused one."""
    t = tenant_label(tenant)
    if admitted:
        MESSAGES_ACCEPTED.labels(t).inc(admitted)
    messages_refused(t, refused)


def messages_refused(tenant: str, reasons: Iterable[str]) -> None:
    t = tenant_label(tenant)
    for reason, n in Tally(reasons).items():
        MESSAGES_DISCARDED.labels(t, reason_label(reason)).inc(n)


def messages_written(tenant: str, written: int, latencies_ms: Iterable[float], refused: Iterable[str] = ()) -> None:
    """A worker's micro-batch: rows written, each message's end-to-end latency, a reason per dead letter."""
    t = tenant_label(tenant)
    messages_refused(t, refused)
    if written:
        ROWS_INGESTED.labels(t, "stream").inc(written)
    observe_all(LATENCY.labels(t, "stream"), [max(0.0, ms / 1000) for ms in latencies_ms])


def observe_all(child: Any, amounts: Sequence[float]) -> None:
    """``child.observe(a)`` for each of ``amounts`` (a labelled ``Histogram``), with one write per
    bucket touched and one to the sum, not two per amount.

    In multiprocess mode each of those writes takes a lock, checks the pid and writes the memory-mapped
    file: per message of a micro-batch that was a few µs of the worker's CPU. prometheus_client has
    no call to observe many values, so this reads the child's ``_upper_bounds``, ``_buckets`` and
    ``_sum`` (as ``Histogram.observe`` does in 0.2x); tests/unit/test_telemetry.py checks the samples
    are those of ``observe`` one by one.
    """
    if not amounts:
        return
    counts = Tally(map(functools.partial(bisect.bisect_left, child._upper_bounds), amounts))  # noqa: SLF001
    child._sum.inc(sum(amounts))  # noqa: SLF001
    for index, n in counts.items():
        child._buckets[index].inc(n)  # noqa: SLF001


def quality_checked(tenant: str, path: str, actions: dict[str, str], counts: dict[str, Any] | None) -> None:
    """Rows checked and failed per rule; ``actions`` is the tenant's validated rules (rule -> action):
    a rule label is one of them or ``other``, so labels stay bounded."""
    if not counts:
        return
    t = tenant_label(tenant)
    QUALITY_CHECKED.labels(t, path).inc(int(counts.get("checked", 0)))
    for rule, n in (counts.get("failed") or {}).items():
        if n > 0:
            known = rule in actions
            QUALITY_FAILED.labels(t, path, rule if known else "other", actions[rule] if known else "other").inc(n)


@contextlib.contextmanager
def sink_write(tenant: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        SINK_WRITE.labels(tenant_label(tenant)).observe(time.perf_counter() - t0)


def sink_retry(tenant: str) -> None:
    SINK_RETRIES.labels(tenant_label(tenant)).inc()


def sink_rows(tenant: str, sink: str, outcome: str, rows: int) -> None:
    """``sink`` is one of the tenant's validated sink names (core/sinks.py): a bounded label."""
    if rows:
        SINK_ROWS.labels(tenant_label(tenant), sink if SINK_NAME.fullmatch(sink) else UNKNOWN, outcome).inc(rows)


def bridge_lag(tenant: str, lags: dict[int, int]) -> None:
    t = tenant_label(tenant)
    for partition, lag in lags.items():
        BRIDGE_LAG.labels(t, str(int(partition))).set(lag)


def pool_size(tenant: str, processes: int) -> None:
    POOL_SIZE.labels(tenant_label(tenant)).set(processes)


def scaling(tenant: str, action: str, delta: int, size_after: int) -> None:
    t = tenant_label(tenant)
    SCALING.labels(t, action if action in ("grow", "shrink") else "other", "applied" if delta else "ignored").inc()
    if delta:
        pool_size(t, size_after)


# -- serving (the supervisor) ----------------------------------------------------------------------


class FolderCollector:
    """prometheus_client's MultiProcessCollector over every process folder of ``run/metrics/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterable[Metric]:
        files = [str(p) for p in sorted(self.root.glob("*/*.db"))]
        return MultiProcessCollector.merge(files, accumulate=True) if files else []


class PlatformCollector:
    """What is read at scrape time: ``read()`` returns (tenants, quota rows, queue depths, processes)."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        try:
            data = self.read()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with Redis away
            log.info("metrics: scrape-time values not read: %s: %s", type(exc).__name__, exc)
            data = {}
        return families(data)


def families(data: dict[str, Any]) -> list[Metric]:
    """Pure: the scrape-time metric families from ``data``:
    ``quota``: [(tenant, resource, used, limit)], ``queues``: [(tenant, queue, depth)],
    ``processes``: [(process, tenant, up, restarts)]."""
    used = GaugeMetricFamily("mysimbdp_quota_used", "Today's use of a daily quota", labels=["tenant", "resource"])
    limit = GaugeMetricFamily("mysimbdp_quota_limit", "A daily quota (0: the path is not enabled)",
                              labels=["tenant", "resource"])
    for tenant, resource, u, lim in data.get("quota", []):
        used.add_metric([tenant, resource], u)
        limit.add_metric([tenant, resource], lim)
    depth = GaugeMetricFamily("mysimbdp_queue_depth", "Tasks waiting on a tenant's queue",
                              labels=["tenant", "queue"])
    for tenant, queue, n in data.get("queues", []):
        depth.add_metric([tenant, queue], n)
    up = GaugeMetricFamily("mysimbdp_process_up", "1 if the supervised process runs", labels=["process", "tenant"])
    restarts = CounterMetricFamily("mysimbdp_process_restarts", "Restarts of a supervised process by the supervisor",
                                   labels=["process", "tenant"])
    for process, tenant, is_up, n in data.get("processes", []):
        up.add_metric([process, tenant], 1 if is_up else 0)
        restarts.add_metric([process, tenant], n)
    return [used, limit, depth, up, restarts]
