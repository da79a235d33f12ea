"""Celery tasks: decode arguments, call the core, map failures to retry or give up."""

from __future__ import annotations

import logging
from typing import Any

from cassandra import OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from redis.exceptions import ConnectionError as RedisConnectionError

from ..batch import files as batch
from ..core.errors import TenantError, TransientIngestError
from ..services import context
from ..stream import writer as stream
from .celery_app import app

log = logging.getLogger(__name__)

# Failures that may pass: a service down, slow or restarting. Retried with exponential backoff
# (capped at a minute) for long enough to ride out a Cassandra restart.
TRANSIENT = (TransientIngestError, NoHostAvailable, OperationTimedOut, RequestExecutionException,
             ConnectionException, RedisConnectionError, ConnectionError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": 60}


def send_chunk(job: dict[str, Any], chunk: dict[str, Any]) -> None:
    # A task id derived from the job lets the sweeper tell whether a chunk's message still exists.
    ingest_chunk.apply_async(args=(job, chunk), queue=f"{job['tenant']}.batch",
                             task_id=chunk_task_id(job["ingest_id"], chunk["index"]))


def chunk_task_id(ingest_id: str, index: int) -> str:
    return f"{ingest_id}-chunk-{index}"


def file_task_id(ingest_id: str) -> str:
    return f"{ingest_id}-file"


@app.task(name="mysimbdp.ingest_file", **RETRY)
def ingest_file(job: dict[str, Any]) -> None:
    try:
        batch.start(job, send_chunk)
    except TenantError as exc:
        log.error("tenant=%s ingest=%s file=%s refused: %s", job.get("tenant"), job.get("ingest_id"),
                  job.get("file"), exc)


@app.task(name="mysimbdp.ingest_chunk", **RETRY)
def ingest_chunk(job: dict[str, Any], chunk: dict[str, Any]) -> None:
    try:
        batch.run_chunk(job, chunk)
    except TenantError as exc:
        log.error("tenant=%s ingest=%s file=%s chunk=%s refused: %s", job.get("tenant"), job.get("ingest_id"),
                  job.get("file"), chunk.get("index"), exc)


@app.task(name="mysimbdp.ingest_messages", **RETRY)
def ingest_messages(tenant_name: str, batch_: dict[str, Any]) -> None:
    try:
        stream.ingest_messages(context.tenant(tenant_name), batch_)
    except TenantError as exc:
        log.error("tenant=%s stream batch of %d messages refused: %s", tenant_name, len(batch_["messages"]), exc)
