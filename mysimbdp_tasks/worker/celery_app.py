"""The one Celery app of the platform, configured from :class:`Settings`.

Reliability choices, on purpose:

- ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its task
  finished, and a task whose process died is put back on the queue. Tasks are idempotent (upserts on
  the tenant's primary key; chunk results keyed by chunk), so running one twice is harmless.
- ``visibility_timeout`` (Redis transport): an unacknowledged message is handed out again after this
  long without its worker renewing its lease (:mod:`.lease`): a live worker renews what it holds
  every few seconds, so only a dead worker's messages come due, ``MYSIMBDP_VISIBILITY_TIMEOUT``
  (30 s) after its death; every worker scans for them every few seconds.
- ``worker_prefetch_multiplier = 1``: tasks are long, so a process reserves one at a time and idle
  processes are never starved by a busy one holding a backlog.
- No result backend: outcomes are receipts, metrics rows and job state in Redis, not task results.

Queues: ``<tenant>.batch`` and ``<tenant>.stream``; a worker pool consumes only its tenant's queues.
An app given tenants declares theirs (``task_queues``), so Flower lists every tenant's queues and
backlog even while no worker of that tenant is online.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from celery import Celery
from celery.app.amqp import AMQP
from celery.signals import worker_process_init, worker_process_shutdown
from kombu import Connection, Exchange, Queue

from ..core import names
from ..core.settings import Settings
from ..security import identities, logins
from ..services import context, taskbody
from .lease import Lease


def tenant_queues(tenants: Iterable[str]) -> tuple[Queue, ...]:
    """Each tenant's two queues, declared as Celery would create them on first use (a direct exchange
    and a routing key of the queue's name), so a declared queue and a created one are the same."""
    found = []
    for tenant in sorted(set(tenants)):
        for name in (names.batch_queue(tenant), names.stream_queue(tenant)):
            found.append(Queue(name, Exchange(name, type="direct"), routing_key=name))
    return tuple(found)


class StoreLogins(AMQP):
    """Celery's broker side, whose connections log in with the secrets store's password of the moment.

    Celery 5.7 makes every broker connection with ``app.amqp.Connection(url, ...)`` and passes no
    ``credential_provider`` through (``Celery._connection``); kombu's ``Connection`` takes one, gives
    it to every Redis pool it makes and keeps it across ``clone()``. So a worker whose connection to
    Redis drops after a rotation logs in again with the new password.
    """

    def Connection(self, *args: Any, **kwargs: Any) -> Connection:  # noqa: N802 - the name Celery calls
        kwargs["credential_provider"] = logins.redis_credentials(self.app.conf.mysimbdp_settings)
        return Connection(*args, **kwargs)


def make_app(settings: Settings, tenants: Iterable[str] = (), sent_events: bool = True) -> Celery:
    """A Celery app for ``settings``. Sending needs nothing more; a worker also gets the task bodies
    (``include``: imported when the worker starts, registered on this app as shared tasks).
    ``tenants``: the tenants whose queues it declares (a worker's ``-Q`` still picks what it consumes).
    ``sent_events``: whether each task sent publishes a ``task-sent`` event (for Flower); a bridge's
    app does not (its micro-batches send no events in the workers either, ``worker/tasks.py``)."""
    taskbody.register()  # a worker reads stream tasks in the serializer and compression they are sent in
    app = Celery("mysimbdp", include=["mysimbdp_tasks.worker.tasks"], amqp=StoreLogins)
    queues = tenant_queues(tenants)
    if queues:
        app.conf.task_queues = queues
    unacked, unacked_index, unacked_mutex = names.unacked_keys(identities.pool_tenant(settings))
    app.conf.update(
        # In secure mode the account only: the password is read at each login (StoreLogins).
        broker_url=logins.broker_url(settings),
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout,
            # A pool restores only messages it took itself, so in secure mode each tenant's pool
            # keeps them under names of its own (services/broker.py reads both kinds).
            "unacked_key": unacked,
            "unacked_index_key": unacked_index,
            "unacked_mutex_key": unacked_mutex,
            # Restore unacknowledged messages of dead workers promptly once they are due: a scan
            # (one ZRANGE under a mutex) every few seconds, not kombu's 10 x 10 s.
            "unacked_restore_interval": settings.restore_every_seconds,
            "unacked_restore_throttle": 1,
        },
        mysimbdp_settings=settings,  # read by the lease bootstep and StoreLogins
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        task_ignore_result=True,
        result_backend=None,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        # Batch tasks (and stream tasks of an older bridge) in Celery's JSON, stream tasks in
        # orjson's (services/taskbody.py); never a serializer that can run code.
        accept_content=list(taskbody.ACCEPT),
        task_default_queue=names.DEFAULT_QUEUE,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,  # Flower shows tasks live
        task_send_sent_event=sent_events,
        timezone="UTC",
        enable_utc=True,
    )
    # Connected here, not at import: only a process that builds an app runs a pool. Connecting the
    # same receivers again is a no-op (signals dedupe by receiver).
    app.steps["consumer"].add(Lease)
    worker_process_init.connect(_fresh_connections, weak=False)
    worker_process_shutdown.connect(_close_connections, weak=False)
    return app


@functools.cache
def _default_app() -> Celery:
    return make_app(Settings.from_env())


def __getattr__(name: str) -> Celery:
    # The one module-level app, for `celery -A mysimbdp_tasks.worker.celery_app` and Celery's remote
    # control: built from the environment on first use (PEP 562), never at import.
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _fresh_connections(**_: object) -> None:
    # Never share Cassandra or Redis connections across fork: each pool process opens its own.
    context.reset()


def _close_connections(**_: object) -> None:
    from ..stream import writer as stream

    stream.flush_all()
    context.close()
