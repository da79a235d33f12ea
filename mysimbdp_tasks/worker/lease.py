"""A lease on the messages a worker holds, so a short visibility timeout is safe.

Celery's Redis transport (kombu) records each delivered message in a sorted set, ``unacked_index``,
scored with the time of delivery; every few seconds a worker's ``restore_visible`` puts back on
its queue every message delivered longer than ``visibility_timeout`` ago and not acknowledged. The
timeout is therefore both how long a dead worker's messages wait and the longest a live worker
may hold one: with the stock 30 minutes a SIGKILLed pool's tasks wait half an hour, and with a
short timeout a task running longer than it (or a retry waiting for its countdown) is handed out
again and again.

The lease removes that trade-off: a consumer bootstep re-scores, every ``renew_every`` seconds,
the delivery tags its channel still holds (``ZADD XX`` with the current time: a tag acknowledged in
the meantime is not added back). A live worker's messages therefore never come due, however long
they run, and a dead worker's come due ``visibility_timeout`` after its last renewal, when any
worker's restore scan (``unacked_restore_interval``) puts them back on their queue.

Renewal never stops the worker: it runs in the consumer's event loop with its own short-timeout
Redis client, and a failure (Redis away) is logged once per outage and tried again next time. If
Redis stays away longer than the timeout, a held message may be handed out again when it is back:
tasks are idempotent, so that costs a repeated task, nothing else.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps

from ..core.settings import Settings
from ..security import logins

log = logging.getLogger(__name__)


def held_tags(consumer: Any) -> list[str]:
    """Delivery tags of the messages the consumer's channel has delivered and not acknowledged."""
    task_consumer = getattr(consumer, "task_consumer", None)
    qos = getattr(getattr(task_consumer, "channel", None), "qos", None)
    delivered = getattr(qos, "_delivered", None)  # kombu.transport.virtual.QoS: tag -> message
    dirty: set[str] = getattr(qos, "_dirty", set())  # acknowledged, not yet flushed from _delivered
    return [tag for tag in list(delivered or ()) if tag not in dirty]


def index_key(consumer: Any) -> str | None:
    """The transport's ``unacked_index`` key as stored (with kombu's ``global_keyprefix``, if any)."""
    channel = getattr(getattr(consumer, "task_consumer", None), "channel", None)
    key = getattr(channel, "unacked_index_key", None)
    return None if key is None else f"{getattr(channel, 'global_keyprefix', '') or ''}{key}"


class Lease(bootsteps.StartStopStep):
    """Consumer bootstep: renew the lease of every held message every ``renew_every`` seconds."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        settings: Settings = c.app.conf.mysimbdp_settings
        self.renew_every = settings.lease_renew_seconds
        self.client = logins.redis_client(settings, socket_timeout=2, socket_connect_timeout=2)
        self.tref: Any = None
        self.failing = False
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        self.stop(c)  # a consumer restarted after a lost connection starts its steps again
        self.tref = c.timer.call_repeatedly(self.renew_every, self.renew, (c,), priority=10)

    def stop(self, c: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    shutdown = stop

    def renew(self, c: Any) -> int:
        """Re-score the held messages now; returns how many were renewed (0 if Redis is away)."""
        try:
            key, tags = index_key(c), held_tags(c)
            if key is None or not tags:
                return 0
            now = time.time()
            renewed = int(self.client.zadd(key, dict.fromkeys(tags, now), xx=True, ch=True) or 0)
        except Exception as exc:  # noqa: BLE001 - the lease must never stop the worker
            if not self.failing:
                log.warning("lease: cannot renew %d held messages, retrying every %.0f s: %s",
                            len(held_tags(c)), self.renew_every, exc)
            self.failing = True
            return 0
        if self.failing:
            log.info("lease: renewing again (%d held messages)", len(tags))
            self.failing = False
        return renewed
