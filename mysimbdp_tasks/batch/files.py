"""Batch ingestion of one admitted file: plan chunks, ingest each, finalize with a receipt.

Called by the Celery tasks in :mod:`tasks`; knows about Redis, Cassandra and the folders but not
about Celery. ``job`` is the JSON-able dict the watcher enqueues: ``ingest_id``, ``tenant``,
``file`` (name as staged), ``path`` (in ``processing/``), ``bytes``, ``day``, ``admitted_at``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from ..core import deliveries, sealed, sinks
from ..core.chunks import iter_chunks
from ..core.convert import RowConverter
from ..core.errors import FileChangedError, PermanentIngestError, TenantError
from ..core.formats import Chunk, Opener, detect_format, open_plain
from ..core.quality import Checker
from ..core.quality import describe as quality_receipt
from ..core.rows import ChunkResult, checked, ingest_chunk, summarize
from ..core.tenants import Tenant
from ..security import filekeys
from ..services import context, outputs, quality_metrics, telemetry
from ..services import events as metrics
from ..services.dispatch import Dispatch
from ..services.quotas import Quotas
from . import folders, slots
from .jobs import Jobs

log = logging.getLogger(__name__)


def _checked_path(job: dict[str, Any]) -> Path:
    """The job's file, which must be inside processing/<tenant>/ of this platform's data folders."""
    home = context.settings().data
    path = Path(job["path"]).resolve()
    own = (home / folders.PROCESSING / job["tenant"]).resolve()
    if path.parent != own:
        raise TenantError(f"tenant {job['tenant']}: file {path} is outside {own}; refused")
    return path


def _open(job: dict[str, Any]) -> tuple[Tenant, Path, Jobs] | None:
    """The job's tenant, file and state; None if the file already left processing/ (then any
    finalize an earlier delivery did not finish is finished here)."""
    tenant = context.tenant(job["tenant"])
    path = _checked_path(job)
    jobs = context.on_redis(Jobs)
    if path.exists():
        return tenant, path, jobs
    if not jobs.is_finalized(job["tenant"], job["ingest_id"]) and jobs.results(job["tenant"], job["ingest_id"]):
        finalize(job, tenant)
    return None


def inflate_limit(tenant: Tenant) -> int | None:
    """The most a gzip file of ``tenant`` may inflate to: its max_file_size times MYSIMBDP_GZIP_RATIO."""
    if tenant.batch is None:
        return None
    return int(tenant.batch.max_file_size_bytes * context.settings().gzip_ratio)


def start(job: dict[str, Any], dispatch: Dispatch) -> None:
    """Plan the file; ingest it here if it is one chunk, else fan chunks out to the tenant's pool
    as the scan finds them: the first chunks run while the rest of a large file is still planned."""
    opened = _open(job)
    if opened is None:
        return
    tenant, path, jobs = opened
    started = time.time()
    try:
        job = {**job, **_pinned(job, path)}
        opener = _opener(tenant, job)
        fmt = detect_format(path, inflate_limit=inflate_limit(tenant), opener=opener)
        if opener is open_plain:
            planned = iter_chunks(path, fmt, context.settings().chunk_bytes, limit=job["bytes"])
            first = next(planned)
        else:  # authenticated whole before any row lands, then read as one chunk (see core.sealed)
            planned = None
            key = filekeys.load(context.settings().home, tenant.name)
            first = Chunk(0, 0, sealed.verify(path, tenant.name, key), 1)
    except PermanentIngestError as exc:
        jobs.start(tenant.name, job["ingest_id"], 1, started, [])
        jobs.record(tenant.name, job["ingest_id"], 0, _failed_chunk(0, exc))
        finalize(job, tenant)
        return
    job = {**job, "fmt": fmt}
    if planned is None or first.end_offset >= job["bytes"]:  # the only chunk: all admitted bytes are read (_pinned)
        if planned is not None:
            planned.close()
        jobs.start(tenant.name, job["ingest_id"], 1, started, [asdict(first)], fmt)
        _log_plan(tenant, job, 1)
        run_chunk(job, asdict(first), dispatch.sender.send_task)
        return
    with closing(planned):
        count = _fan_out(job, jobs, started, itertools.chain((first,), planned), dispatch)
    _log_plan(tenant, job, count)
    if jobs.complete(tenant.name, job["ingest_id"]):  # every chunk ran while the plan was being finished
        finalize(job, tenant)


def _opener(tenant: Tenant, job: dict[str, Any]) -> Opener:
    """How to open the job's file: as is, or (``x.csv.enc``) through the tenant's decrypting reader,
    which keeps the plaintext in memory, a segment at a time."""
    if not sealed.is_sealed_name(job["file"]):
        return open_plain
    key = filekeys.load(context.settings().home, tenant.name)
    return sealed.opener(tenant.name, key)


def _fan_out(job: dict[str, Any], jobs: Jobs, started: float, chunks: Iterable[Chunk], dispatch: Dispatch) -> int:
    """Send each chunk's task as soon as it is planned, then record the plan; how many chunks.

    Until the plan is recorded no chunk can finalize the file (the job has no chunk count), so
    the last chunk to finish, or this call if they all finished first, finalizes it. A scan that
    fails part way makes the rest of the file one more chunk, failed with the reason.
    """
    tenant, ingest_id = job["tenant"], job["ingest_id"]
    jobs.start(tenant, ingest_id, None, started, None, job["fmt"])
    plan: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            plan.append(asdict(chunk))
            dispatch.send_chunk(job, plan[-1])
    except PermanentIngestError as exc:
        index, end = len(plan), plan[-1]["end_offset"] if plan else 0
        plan.append(asdict(Chunk(index, end, end, 0)))  # recorded at once: the sweeper never sends it
        jobs.record(tenant, ingest_id, index, _failed_chunk(index, exc))
    jobs.start(tenant, ingest_id, len(plan), started, plan, job["fmt"])
    return len(plan)


def _log_plan(tenant: Tenant, job: dict[str, Any], chunks: int) -> None:
    log.info("tenant=%s ingest=%s file=%s bytes=%d format=%s chunks=%d", tenant.name, job["ingest_id"],
             job["file"], job["bytes"], job["fmt"], chunks)


def _pinned(job: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check the file is the one admitted; ``{"grown_to": size}`` if it grew since (only the
    admitted bytes are read, and the receipt says so).

    The watcher recorded inode, size and modification time at admission (and refused a file
    with a second name): another inode, fewer bytes, or the same size with another mtime (an edit
    in place) are not what the tenant was charged for, and the file fails with ``file_changed``.
    """
    st = path.stat()
    admitted = int(job["bytes"])
    if "inode" in job and st.st_ino != job["inode"]:
        raise FileChangedError(f"replaced after admission (inode {job['inode']}, now {st.st_ino})")
    if st.st_size < admitted:
        raise FileChangedError(f"shrank after admission from {admitted} to {st.st_size} bytes")
    if st.st_size == admitted and "mtime_ns" in job and st.st_mtime_ns != job["mtime_ns"]:
        raise FileChangedError("modified in place after admission (same size, another modification time)")
    return {"grown_to": st.st_size} if st.st_size > admitted else {}


def run_chunk(job: dict[str, Any], chunk: dict[str, Any], send: outputs.Send | None = None) -> None:
    """Ingest one chunk; the chunk that completes the file finalizes it."""
    opened = _open(job)
    if opened is None:
        return
    tenant, path, jobs = opened
    c = Chunk(**chunk)
    t0 = time.perf_counter()
    try:
        outcome = _ingest(tenant, job, path, c, send)
    except PermanentIngestError as exc:
        outcome = _failed_chunk(c.index, exc)
    outcome["ms"] = round((time.perf_counter() - t0) * 1000, 1)
    log.info("tenant=%s ingest=%s file=%s chunk=%d rows_ok=%d rows_refused=%d elapsed_ms=%.1f", tenant.name,
             job["ingest_id"], job["file"], c.index, outcome["rows_ok"], outcome["rows_refused"], outcome["ms"])
    if jobs.record(tenant.name, job["ingest_id"], c.index, outcome):
        finalize(job, tenant)


def _ingest(tenant: Tenant, job: dict[str, Any], path: Path, c: Chunk, send: outputs.Send | None) -> dict[str, Any]:
    """The chunk's outcome; with extra sinks, the rows its table accepted go on to each of them."""
    sink = context.sink(tenant)  # its encoder converts rows straight to the bytes it writes
    converter, check = checked(tenant, sink.encoder)  # with quality rules, values the rules read
    if not tenant.sinks:
        return ingest_chunk(path, job["fmt"], c, converter, sink.write, c.index, limit=job["bytes"],
                            inflate_limit=inflate_limit(tenant), check=check, opener=_opener(tenant, job),
                            columnar=context.settings().csv_by_column).to_dict()
    tee = deliveries.Tee(converter)
    refused: list[int] = []

    def write(rows: Iterable[Any], refuse: Any) -> int:
        def both(position: int, reason: str, detail: str) -> None:
            refused.append(position)
            refuse(position, reason, detail)
        return sink.write(rows, both)

    outcome = ingest_chunk(path, job["fmt"], c, cast(RowConverter, tee), write, c.index, limit=job["bytes"],
                           inflate_limit=inflate_limit(tenant), opener=_opener(tenant, job),
                           check=None if check is None else cast(Checker, deliveries.TeeCheck(check, tee))).to_dict()
    records = deliveries.accepted(tee.records, refused)
    outcome["sinks"] = {sinks.PRIMARY: deliveries.outcome(outcome["rows_ok"], outcome["rows_ok"], "delivered"),
                        **outputs.fan_out(tenant, {s.name: records for s in tenant.sinks},
                                          f"{job['ingest_id']}-{c.index}", job["day"], send)}
    return outcome


def finish(job: dict[str, Any]) -> None:
    """Finalize a file whose every chunk has an outcome (the sweeper sends this when the task that
    would have finalized it was lost, or when it gave a lost task up)."""
    opened = _open(job)
    if opened is None:
        return
    tenant, _, jobs = opened
    chunks = jobs.chunk_count(tenant.name, job["ingest_id"])
    if chunks is not None and len(jobs.results(tenant.name, job["ingest_id"])) >= chunks:
        finalize(job, tenant)


def _failed_chunk(index: int, exc: PermanentIngestError) -> dict[str, Any]:
    result = ChunkResult(index).to_dict()
    result["error"] = {"reason": exc.reason, "detail": exc.detail}
    return result


def give_up(job: dict[str, Any], chunk: dict[str, Any] | None, exc: BaseException) -> None:
    """Record a permanent failure of the file's task (``chunk`` None) or of one chunk's task.

    Retrying would fail the same way, so the failure becomes the chunk's outcome: the file then
    finalizes with a receipt naming it, and the sweeper has nothing left to re-send.
    """
    opened = _open(job)
    if opened is None:
        return
    tenant, _, jobs = opened
    error = exc if isinstance(exc, PermanentIngestError) else PermanentIngestError(
        "internal_error", f"{type(exc).__name__}: {str(exc)[:300]}")
    ingest_id = job["ingest_id"]
    if chunk is None:
        # The file task plans the file and runs it when it is one chunk; fanned out chunks have
        # tasks of their own, which record their own outcomes.
        chunks = jobs.chunk_count(tenant.name, ingest_id)
        if chunks is not None and chunks > 1:
            log.error("tenant=%s ingest=%s file=%s file task failed after planning %d chunks: %s",
                      tenant.name, ingest_id, job["file"], chunks, error)
            return
        if chunks is None:
            jobs.start(tenant.name, ingest_id, 1, time.time(), [])
        index = 0
    else:
        index = int(chunk["index"])
    log.error("tenant=%s ingest=%s file=%s chunk=%d failed for good: %s", tenant.name, ingest_id, job["file"],
              index, error)
    if jobs.record(tenant.name, ingest_id, index, _failed_chunk(index, error)):
        finalize(job, tenant)


def finalize(job: dict[str, Any], tenant: Tenant) -> None:
    """Move the file to done/ or failed/, write its receipt and metrics; refund if nothing landed."""
    jobs = context.on_redis(Jobs)
    ingest_id = job["ingest_id"]
    if not jobs.claim_finalize(tenant.name, ingest_id):
        return
    try:
        _finalize(job, tenant, jobs)
    except BaseException:
        jobs.release_finalize(tenant.name, ingest_id)  # let the retry of this task finalize
        raise


def _finalize(job: dict[str, Any], tenant: Tenant, jobs: Jobs) -> None:
    settings = context.settings()
    ingest_id = job["ingest_id"]
    results = jobs.results(tenant.name, ingest_id)
    total = summarize(results)
    errors = [r["error"] for r in results if r.get("error")]
    started = jobs.started_at(tenant.name, ingest_id) or time.time()
    finished = time.time()
    if total["rows_ok"] > 0:
        # What landed is counted and kept, so the file is done even if reading it stopped early.
        status, reason = "done", (f"partial: {errors[0]['reason']}" if errors
                                  else "partial: some rows refused" if total["rows_refused"] else "")
    elif errors:
        status, reason = "failed", errors[0]["reason"]
    elif total["rows_refused"]:
        status, reason = "failed", "all_rows_refused"
    else:
        status, reason = "failed", "no_rows"
    path = _checked_path(job)
    stage = folders.DONE if status == "done" else folders.FAILED
    folder = folders.Layout(settings.data).folder(stage, tenant.name)
    folder.mkdir(parents=True, exist_ok=True)
    final = Path(jobs.final_path(tenant.name, ingest_id, str(folders.final_path(folder, ingest_id, job["file"]))))
    rows = total["rows_ok"] + total["rows_refused"]
    receipt = {
        "tenant": tenant.name, "file": job["file"], "ingest_id": ingest_id, "status": status, "reason": reason,
        "rows_ok": total["rows_ok"], "rows_refused": total["rows_refused"], "refusals": total["refusals"],
        "refusals_truncated": total["refusals_truncated"], "errors": errors, "bytes": job["bytes"],
        "chunks": len(results), "keyspace": tenant.namespace, "table": tenant.table_name,
        "admitted_at": job["admitted_at"], "started_at": started, "finished_at": finished,
        "timings": {
            "queue_wait_ms": round((started - job["admitted_at"]) * 1000, 1),
            "total_ms": round((finished - started) * 1000, 1),
            "ms_per_row": round((finished - started) * 1000 / rows, 4) if rows else None,
            "chunk_ms": [r.get("ms") for r in sorted(results, key=lambda r: r["index"])],
        },
        "quota_refunded": False,
    }
    if tenant.sinks:
        receipt["sinks"] = deliveries.merge(results)  # per sink: rows routed, delivered, status
    if total["quality"] is not None:
        receipt["quality"] = quality_receipt(tenant.quality, total["quality"])
    if job.get("retry_of"):
        receipt["retry_of"] = job["retry_of"]  # `mysimbdp files retry`: the ingestion this one retries
    if job.get("grown_to"):
        receipt["note"] = (f"the file grew from {job['bytes']} to {job['grown_to']} bytes after admission; "
                           f"only the {job['bytes']} admitted bytes were read")
    if status == "failed":
        receipt["quota_refunded"] = context.on_redis(Quotas).refund_file(
            tenant.name, ingest_id, job["bytes"], job["day"])
    # Receipt first, then the move: a file in done/ or failed/ always has its receipt.
    folders.write_receipt(final, receipt)
    if path.exists():
        folders.place(path, final)  # exclusive: never replaces a file of the same name
    metrics.record_batch(context.session(), tenant, receipt)
    if "quality" in receipt:
        quality_metrics.record(context.session(), tenant, "file", ingest_id, started, total["quality"], job["file"])
    _log_events(settings.logs, receipt, final)
    telemetry.file_finished(tenant.name, status, results, job["admitted_at"], finished)
    telemetry.quality_checked(tenant.name, "batch", tenant.quality.actions, total["quality"])
    jobs.finalized(tenant.name, ingest_id)
    if slots.LEASE_KEY in job:
        slots.give_back(jobs.redis, tenant.name, ingest_id)


def _log_events(logs: Path, receipt: dict[str, Any], final: Path) -> None:
    tenant = receipt["tenant"]
    for refusal in receipt["refusals"]:
        metrics.emit(logs, tenant, "row_refused", file=receipt["file"], ingest_id=receipt["ingest_id"], **refusal)
    for error in receipt["errors"]:
        metrics.emit(logs, tenant, "file_error", file=receipt["file"], ingest_id=receipt["ingest_id"], **error)
    metrics.emit(logs, tenant, "file_done", file=receipt["file"], ingest_id=receipt["ingest_id"],
                 status=receipt["status"], reason=receipt["reason"], bytes=receipt["bytes"],
                 rows_ok=receipt["rows_ok"], rows_refused=receipt["rows_refused"],
                 total_ms=receipt["timings"]["total_ms"], ms_per_row=receipt["timings"]["ms_per_row"],
                 location=str(final))
