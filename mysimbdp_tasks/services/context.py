"""Per-process state of a worker: its configuration, and connections created lazily after fork.

One :class:`Process` object per OS process. The ``worker`` command calls :func:`configure` before
it starts the pool, and each Celery prefork child inherits that configuration by fork and then
calls :func:`reset` (``worker_process_init``), which drops every connection and helper, so nothing
opened by the parent before the fork is ever used by a child. Every lazy entry is created under
the one lock: tasks of a pool process may run on threads (``--pool threads``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import redis
from cassandra.cluster import Cluster, Session
from kafka import KafkaProducer

from ..core.errors import TenantError
from ..core.reports import Window
from ..core.settings import Settings
from ..core.tenants import Tenant
from ..security import logins, tls
from . import cassandra as db
from .registry import Registry
from .sink import Sink

T = TypeVar("T")


@dataclass
class Process:
    # Configuration, kept across reset(): a child gets its parent's by fork.
    settings: Settings | None = None
    own_tenant: str | None = None  # the tenant this pool is dedicated to (`mysimbdp worker --tenant T`)
    # Connections and what is built on them, dropped by reset().
    redis: redis.Redis | None = None
    cluster: Cluster | None = None
    session: Session | None = None
    kafka: KafkaProducer | None = None
    sinks: dict[str, Sink] = field(default_factory=dict)  # "<tenant>:<applied config>" -> its sink
    helpers: dict[type, Any] = field(default_factory=dict)  # class -> its one instance on `redis`
    # The stream writer's reporting windows, one per tenant (see stream.writer).
    windows: dict[str, Window] = field(default_factory=dict)
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)  # tenant -> the open window's quality counts
    flusher: threading.Thread | None = None  # publishes windows that are due while no batch comes
    lock: threading.RLock = field(default_factory=threading.RLock)

    def drop_connections(self) -> None:
        with self.lock:
            self.redis = self.cluster = self.session = self.kafka = None
            self.sinks.clear()
            self.helpers.clear()
            self.windows.clear()
            self.quality.clear()


_process = Process()


def current() -> Process:
    return _process


def configure(settings: Settings, own_tenant: str | None = None) -> None:
    """Set this process's settings and, for a dedicated pool, its tenant (before forking children)."""
    with _process.lock:
        _process.settings = settings
        _process.own_tenant = own_tenant


def reset() -> None:
    _process.drop_connections()


def close() -> None:
    with _process.lock:
        if _process.kafka is not None:
            _process.kafka.close(timeout=5)
        if _process.cluster is not None:
            _process.cluster.shutdown()
    reset()


def settings() -> Settings:
    with _process.lock:
        if _process.settings is None:
            # Started without `configure` (e.g. `celery -A ... worker`): the environment, read once.
            _process.settings = Settings.from_env()
        return _process.settings


def kafka_producer() -> KafkaProducer:
    with _process.lock:
        if _process.kafka is None:
            # acks="all": dead letters count as delivered only once every in-sync replica has them.
            _process.kafka = KafkaProducer(bootstrap_servers=settings().kafka_bootstrap_str, linger_ms=20, acks="all",
                                           **tls.kafka_options(settings(), "platform:worker"),
                                           client_id=f"mysimbdp-worker-{os.getpid()}")
        return _process.kafka


def redis_client() -> redis.Redis:
    with _process.lock:
        if _process.redis is None:
            _process.redis = logins.redis_client(settings())
        return _process.redis


def session() -> Session:
    with _process.lock:
        if _process.session is None:
            _process.cluster, _process.session = db.connect(settings())
        return _process.session


def on_redis(cls: Callable[[redis.Redis], T]) -> T:
    """This process's one instance of a Redis-backed helper (``Quotas``, ``Jobs``): its scripts are
    registered once, not on every task."""
    with _process.lock:
        found = _process.helpers.get(cast(type, cls))
        if found is None:
            found = _process.helpers[cast(type, cls)] = cls(redis_client())
        return cast(T, found)


def worker_tenant() -> str | None:
    """The tenant this worker pool is dedicated to (``mysimbdp worker --tenant T``)."""
    return _process.own_tenant


def tenant(name: str) -> Tenant:
    """The applied configuration of ``name``; refuses a tenant other than this worker's own."""
    own = worker_tenant()
    if own is not None and own != name:
        raise TenantError(f"worker of tenant {own!r} refuses work of tenant {name!r}")
    known = Registry(redis_client()).all()
    if name not in known:
        raise TenantError(f"tenant {name!r} is not in the registry (mysimbdp tenants apply)")
    return known[name]


def sink(t: Tenant) -> Sink:
    key = f"{t.name}:{t.to_json()}"  # a re-applied config gets a sink with its own statements
    with _process.lock:
        if key not in _process.sinks:
            _process.sinks[key] = Sink(session(), t)
        return _process.sinks[key]
