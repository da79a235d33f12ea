"""Riding out a service that is away: which failures are outages, and waiting them out.

Every long-running loop of the platform (watcher, bridges, monitor, manager, the supervisor's
registry reads) calls the services through one :class:`Waiter`. A failure that means Redis, Kafka
or Cassandra is away is retried with backoff, without a cap, for as long as the service stays
away; the process logs "waiting for <service>" once per outage (not per retry) and publishes the
wait in its state file (:class:`core.runstate.ProcessState`), where ``mysimbdp status`` reads it
even while Redis is down. Any other failure passes through at once.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from kombu.exceptions import OperationalError

from ..core.backoff import OUTAGE_BACKOFF, Backoff
from ..core.errors import Stopping
from ..core.runstate import ProcessState

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Redis away: the client's own errors, and Celery's when it cannot reach its broker (the same Redis)
#: to send a task.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                              OperationalError)


def service_of(exc: BaseException) -> str | None:
    """The service whose absence ``exc`` means ("redis", "kafka", "cassandra"), or None."""
    if isinstance(exc, REDIS_ERRORS):
        return "redis"
    # The client libraries below are looked at only if this process loaded them: a process that
    # never imported the Cassandra driver cannot meet its errors, and the watcher must not load it.
    if "kafka" in sys.modules:
        from kafka.errors import KafkaConnectionError, RetriableError

        if isinstance(exc, (RetriableError, KafkaConnectionError)):
            return "kafka"
    if "cassandra" in sys.modules:
        from .cassandra import is_transient

        if is_transient(exc):
            return "cassandra"
    return None


class Waiter:
    """Calls functions until they succeed, waiting with backoff while a service they need is away.

    ``who`` names the caller in the log lines ("watcher", "tenant=t1 bridge"); ``stop`` ends a wait
    early (raising :class:`Stopping`); ``state``, if given, publishes each wait.
    """

    def __init__(self, who: str, stop: threading.Event | None = None, state: ProcessState | None = None,
                 backoff: Backoff = OUTAGE_BACKOFF) -> None:
        self.who = who
        self.stop = stop or threading.Event()
        self.state = state
        self.backoff = backoff
        self.outages = 0  # outages waited out so far (each counted once, however many retries)

    def call(self, fn: Callable[[], T], resume: Callable[[], object] | None = None) -> T:
        """``fn()``; while it fails because a service is away, wait and try again.

        ``resume``, if given, runs (under the same waiting) before each retry: the work a failed
        call left half done, e.g. files claimed but not yet admitted when Redis went away.
        """
        attempt = 0
        away: tuple[str, float] | None = None  # (service, since) while waiting
        try:
            while True:
                try:
                    if attempt and resume is not None:
                        resume()
                    return fn()
                except Stopping:
                    raise
                except Exception as exc:
                    service = service_of(exc)
                    if service is None:
                        raise
                    if away is None or away[0] != service:
                        away = self._begin(service, exc, away)
                if self.stop.wait(self.backoff.delay(attempt)):
                    raise Stopping(f"{self.who}: stopped while waiting for {away[0]}")
                attempt += 1
        finally:
            if away is not None:
                self._end(*away)

    def _begin(self, service: str, exc: BaseException, previous: tuple[str, float] | None) -> tuple[str, float]:
        if previous is not None:
            self._end(*previous)
        self.outages += 1
        log.warning("%s: waiting for %s (%s: %s)", self.who, service, type(exc).__name__, str(exc)[:200])
        if self.state is not None:
            self.state.waiting(service)
        return service, time.monotonic()

    def _end(self, service: str, since: float) -> None:
        if self.state is not None:
            self.state.resumed(service)
        if not self.stop.is_set():
            log.warning("%s: %s is back after %.0f s of waiting", self.who, service, time.monotonic() - since)


#: Polls in a row that may fail (other than for Kafka being away) before the process gives up and
#: lets the supervisor start it again with a new client.
POLL_FAILURES_LIMIT = 10


class ControlPoller:
    """``consumer.poll()`` for a process that reads the control topics (the monitor's reports, the
    manager's decisions), which must outlive a broker going away.

    Kafka away: waited out by ``wait``. Any other failure of a poll (kafka-python raises in ``poll``
    what its background heartbeat died of, and starts a new one at the next poll) is logged with
    its traceback and the poll is tried again after a pause, up to ``limit`` times in a row; records
    fetched before the failure stay in the consumer's buffer for the next poll.
    """

    def __init__(self, consumer: Any, wait: Waiter, limit: int = POLL_FAILURES_LIMIT) -> None:
        self.consumer = consumer
        self.wait = wait
        self.limit = limit
        self.failures = 0  # in a row

    def poll(self, timeout_ms: int) -> dict[Any, list[Any]]:
        try:
            records: dict[Any, list[Any]] = self.wait.call(lambda: self.consumer.poll(timeout_ms=timeout_ms))
        except Stopping:
            raise
        except Exception as exc:
            self.failures += 1
            if self.failures >= self.limit:
                log.error("%s: %d polls in a row failed; giving up (%s: %s)", self.wait.who, self.failures,
                          type(exc).__name__, exc)
                raise
            log.warning("%s: a poll failed (%d in a row), polling again: %s: %s", self.wait.who, self.failures,
                        type(exc).__name__, exc, exc_info=True)
            if self.wait.stop.wait(self.wait.backoff.delay(self.failures - 1)):
                raise Stopping(f"{self.wait.who}: stopped after a failed poll") from exc
            return {}
        self.failures = 0
        return records
