"""Celery tasks: decode arguments, call the core, map failures to retry or give up.

Failures are classified once: a service away (Cassandra, Redis, Kafka) is *transient* and the
task is retried with exponential backoff, capped at a minute, for as long as the service stays
away; every other failure is *permanent* for that file, chunk or micro-batch and is recorded as its
outcome: a file finalizes with a receipt and the sweeper stops re-sending it; a micro-batch's
messages become dead letters with the reason, and the bridge commits past them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..batch import files as batch
from ..batch import slots
from ..core import names
from ..core.errors import DiskFull, TenantError, WaitingForSlot, WorkerLost
from ..services import cassandra, context, deadletters, outputs
from ..services.dispatch import Dispatch
from ..stream import wire
from ..stream import writer as stream

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 60
REDELIVERIES_TTL_S = 24 * 3600  # a task's deaths are counted for a day: longer than any task lives
# No cap on retries: a transient failure is a service being away, and giving up would lose the
# work; a file's retries end when the service is back. max_retries=None makes that explicit.
RETRY = {"bind": True, "max_retries": None}


def waiting_for(exc: BaseException) -> str | None:
    """The service a failure waits for ("Cassandra", "Redis", "Kafka", "disk space"), or None if retrying
    cannot help."""
    if isinstance(exc, DiskFull):
        return "disk space"
    if isinstance(exc, WaitingForSlot):
        return "a batch slot"
    if cassandra.is_transient(exc):
        return "Cassandra"
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionError)):
        return "Redis"
    if deadletters.is_transient(exc):
        return "Kafka"
    return None


def _retry(task: Task, exc: BaseException, what: str) -> BaseException:
    service = waiting_for(exc)
    if service is None:
        return exc
    retries = task.request.retries
    delay = get_exponential_backoff_interval(factor=1, retries=retries, maximum=BACKOFF_MAX_S, full_jitter=True)
    if isinstance(exc, WaitingForSlot):
        delay = exc.delay  # back well within the lease of a slot granted again meanwhile
    log.warning("%s waiting for %s (%s: %s); retry %d in %d s", what, service, type(exc).__name__,
                str(exc)[:200], retries + 1, delay)
    return task.retry(exc=exc, countdown=delay, max_retries=None)


def worker_lost(deaths: int, limit: int) -> WorkerLost | None:
    """The verdict on a task whose worker died ``deaths`` times: given up once past ``limit``."""
    return WorkerLost(deaths) if deaths > limit else None


def _redelivered_too_often(task: Task) -> WorkerLost | None:
    """Count a redelivery of this task; refuse it once its workers died too often.

    The transport marks a message ``redelivered`` when it puts it back after its worker died
    without acknowledging it (kombu's Redis ``_do_restore_message``, after the visibility timeout or
    on ``task_reject_on_worker_lost``). A task that kills every worker running it (OOM kill, native
    crash) would otherwise come back forever and hold its tenant's pool. A retry is a new message,
    not a redelivery, so transient failures are never counted.
    """
    if not (task.request.delivery_info or {}).get("redelivered"):
        return None
    # Counted under the pool's own tenant, not the one a task claims: a forged task is refused by
    # the call below, not stopped here by the ACL of the pool's Redis user.
    key = names.redeliveries_key(context.worker_tenant() or "_", str(task.request.id))
    pipe = context.redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, REDELIVERIES_TTL_S)
    deaths, _ = pipe.execute()
    return worker_lost(int(deaths), context.settings().max_redeliveries)


def _contained(task: Task, what: str, call: Callable[[], object], give_up: Callable[[BaseException], None]) -> None:
    """Run one task's work: a transient failure is retried; any other ends in ``give_up``, which
    records it as the item's outcome (and is itself retried if a service is away meanwhile). Work
    this pool must not do (another tenant's, or a tenant no longer in the registry) is refused, and
    so is a task whose workers died too often (it is given up unrun)."""
    try:
        lost = _redelivered_too_often(task)  # Redis away: transient, retried below
        if lost is not None:
            log.error("%s given up unrun: %s", what, lost)
            give_up(lost)
            return
        try:
            call()
        except TenantError as exc:
            log.error("%s refused: %s", what, exc)
        except Exception as exc:  # the task is the item boundary: classify, then retry or give up
            if waiting_for(exc) is not None:
                raise
            give_up(cassandra.as_refusal(exc))
    except Exception as exc:  # noqa: BLE001 - transient ones (also while giving up) are retried
        raise _retry(task, exc, what) from None


def _run_batch(task: Task, job: dict[str, Any], chunk: dict[str, Any] | None, call: Callable[[], None],
               slotted: bool = True) -> None:
    what = (f"tenant={job.get('tenant')} ingest={job.get('ingest_id')} file={job.get('file')}"
            + (f" chunk={chunk.get('index')}" if chunk is not None else ""))
    _contained(task, what, (lambda: _in_slot(job, call)) if slotted else call,
               lambda exc: batch.give_up(job, chunk, exc))


def _in_slot(job: dict[str, Any], call: Callable[[], None]) -> None:
    with slots.holding(context.redis_client(), job):  # a file without a batch slot runs as it is
        call()


# Shared tasks: registered on the app the process builds (worker.celery_app.make_app), not on one
# built at import.
@shared_task(name=names.INGEST_FILE, **RETRY)
def ingest_file(self: Task, job: dict[str, Any]) -> None:
    _run_batch(self, job, None, lambda: batch.start(job, Dispatch(self.app)))


@shared_task(name=names.INGEST_CHUNK, **RETRY)
def ingest_chunk(self: Task, job: dict[str, Any], chunk: dict[str, Any]) -> None:
    _run_batch(self, job, chunk, lambda: batch.run_chunk(job, chunk, self.app.send_task))


@shared_task(name=names.FINALIZE_FILE, **RETRY)
def finalize_file(self: Task, job: dict[str, Any]) -> None:
    _run_batch(self, job, None, lambda: batch.finish(job), slotted=False)


# No task events for micro-batches: the pool's parent published three per task (received, started,
# succeeded), about a tenth of a stream pool's CPU (py-spy, benchmarks/README.md), and tens of
# micro-batches a second would crowd the file tasks out of Flower's task list. Flower still shows
# the stream queues and the pools; the metrics windows and the bridge's lag tell how streams go.
@shared_task(name=names.INGEST_MESSAGES, send_events=False, **RETRY)
def ingest_messages(self: Task, tenant_name: str, batch_: dict[str, Any]) -> None:
    task_id = str(self.request.id)
    what = f"tenant={tenant_name} task={task_id} stream batch of {wire.count(batch_)} messages"
    _contained(self, what, lambda: stream.ingest_messages(tenant_name, batch_, task_id, self.app.send_task),
               lambda exc: stream.give_up(tenant_name, batch_, task_id, exc))


@shared_task(name=outputs.DELIVER_ROWS, **RETRY)
def deliver_rows(self: Task, tenant_name: str, sink: str, delivery: dict[str, Any]) -> None:
    """One sink's rows that waited for it (services/outputs.py): retried on their own until it is back."""
    what = f"tenant={tenant_name} sink={sink} origin={delivery.get('origin')} rows={len(delivery.get('records', []))}"
    _contained(self, what, lambda: outputs.deliver(tenant_name, sink, delivery),
               lambda exc: outputs.park(tenant_name, sink, delivery, exc))
