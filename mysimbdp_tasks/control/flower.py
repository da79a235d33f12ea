"""Flower for operators: every tenant's queues, its pool and its tasks, behind a password if asked.

What the platform adds to a plain ``celery flower``:

- the app declares every applied tenant's queues (``task_queues``), and the Broker page lists them
  all, with their backlog, even while a tenant's worker is offline. Flower on its own lists only the
  queues of the workers it has heard from, and the declared ones only when it knows no worker at
  all (mher/flower#335, #559): a stopped pool's backlog would vanish from the page exactly when it
  matters. :func:`list_declared_queues` widens that list; the registry is read again on each page,
  so a tenant applied after Flower started shows too;
- its users' passwords reach it in its environment (``FLOWER_BASIC_AUTH``), never on its command line;
- the Tasks page shows the columns that tell whose a task is (worker, routing key, arguments).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from ..core import flower as options
from ..core import names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowerPlan:
    """Where Flower listens and who may open it."""

    address: str
    port: int
    url_prefix: str
    auth: tuple[str, ...]

    def __repr__(self) -> str:  # the passwords stay out of every log line and traceback
        return (f"FlowerPlan(address={self.address!r}, port={self.port}, url_prefix={self.url_prefix!r}, "
                f"users={[pair.partition(':')[0] for pair in self.auth]})")

    @property
    def url(self) -> str:
        return options.url(self.address, self.port, self.url_prefix)

    def argv(self) -> list[str]:
        """Flower's command line: nothing secret on it."""
        found = ["flower", f"--address={self.address}", f"--port={self.port}",
                 f"--tasks_columns={options.TASKS_COLUMNS}"]
        if self.url_prefix:
            found.append(f"--url_prefix={self.url_prefix}")
        return found

    def environment(self) -> dict[str, str]:
        return options.environment(self.auth)


def queue_names(tenants: Iterable[str]) -> set[str]:
    return {q for t in tenants for q in (names.batch_queue(t), names.stream_queue(t))}


def list_declared_queues(declared: Callable[[], Iterable[str]]) -> None:
    """Make Flower's Broker page (and its queue-length API) list the workers' queues and every
    queue ``declared()`` names, not the workers' alone (see the module's docstring)."""
    from flower.views import BaseHandler

    def queues(handler: Any) -> list[str]:
        found: set[str] = set()
        for info in handler.application.workers.values():
            found.update(q["name"] for q in info.get("active_queues", []))
        return sorted(found | set(declared()))

    BaseHandler.get_active_queue_names = queues


def registry_queues(read: Callable[[], Iterable[str]], first: Iterable[str]) -> Callable[[], set[str]]:
    """The tenants' queues as the registry lists them now; while it cannot be read, the last list."""
    last = queue_names(first)

    def current() -> set[str]:
        nonlocal last
        try:
            last = queue_names(read())
        except (RedisError, OSError) as exc:
            log.warning("flower: cannot read the tenant registry (%s); showing the queues known before", exc)
        return last

    return current


def run(app: Any, plan: FlowerPlan, declared: Callable[[], Iterable[str]]) -> None:
    """Run Flower for ``app`` in this process until it is stopped."""
    list_declared_queues(declared)
    # Flower reads FLOWER_* variables of its own process at start (flower.command.apply_env_options).
    os.environ.update(plan.environment())
    log.info("flower: %s, %s", plan.url, "basic auth on" if plan.auth else "no password")
    app.start(plan.argv())
