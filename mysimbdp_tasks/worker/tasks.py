"""Celery tasks: decode arguments, call the core, map failures to retry or give up."""

from __future__ import annotations

import logging
from typing import Any

from cassandra import OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from celery import Task, shared_task
from redis.exceptions import ConnectionError as RedisConnectionError

from ..batch import files as batch
from ..core import names
from ..core.errors import TenantError, TransientIngestError
from ..services import context
from ..services.dispatch import Dispatch
from ..stream import writer as stream

log = logging.getLogger(__name__)

# Failures that may pass: a service down, slow or restarting. Retried with exponential backoff
# (capped at a minute) for long enough to ride out a Cassandra restart.
TRANSIENT = (TransientIngestError, NoHostAvailable, OperationTimedOut, RequestExecutionException,
             ConnectionException, RedisConnectionError, ConnectionError)
RETRY = {"autoretry_for": TRANSIENT, "retry_backoff": 1, "retry_backoff_max": 60, "retry_jitter": True,
         "max_retries": 60}


# Shared tasks: registered on the app the process builds (worker.celery_app.make_app), not on one
# built at import.
@shared_task(name=names.INGEST_FILE, bind=True, **RETRY)
def ingest_file(self: Task, job: dict[str, Any]) -> None:
    try:
        batch.start(job, Dispatch(self.app))
    except TenantError as exc:
        log.error("tenant=%s ingest=%s file=%s refused: %s", job.get("tenant"), job.get("ingest_id"),
                  job.get("file"), exc)


@shared_task(name=names.INGEST_CHUNK, **RETRY)
def ingest_chunk(job: dict[str, Any], chunk: dict[str, Any]) -> None:
    try:
        batch.run_chunk(job, chunk)
    except TenantError as exc:
        log.error("tenant=%s ingest=%s file=%s chunk=%s refused: %s", job.get("tenant"), job.get("ingest_id"),
                  job.get("file"), chunk.get("index"), exc)


@shared_task(name=names.INGEST_MESSAGES, **RETRY)
def ingest_messages(tenant_name: str, batch_: dict[str, Any]) -> None:
    try:
        stream.ingest_messages(context.tenant(tenant_name), batch_)
    except TenantError as exc:
        log.error("tenant=%s stream batch of %d messages refused: %s", tenant_name, len(batch_["messages"]), exc)
