"""Per-process connections of a worker: created lazily after fork, closed at process exit.

A Celery prefork child calls :func:`reset` at start (``worker_process_init``), so nothing opened by
the parent before the fork is ever used by a child.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
from cassandra.cluster import Cluster, Session
from kafka import KafkaProducer

from ..core.errors import TenantError
from ..core.settings import Settings
from ..core.tenants import Tenant
from . import cassandra as db
from .registry import Registry
from .sink import Sink

_lock = threading.Lock()
_state: dict[str, Any] = {}


def reset() -> None:
    _state.clear()


def close() -> None:
    producer = _state.get("kafka")
    if producer is not None:
        producer.close(timeout=5)
    cluster = _state.get("cluster")
    if cluster is not None:
        cluster.shutdown()
    reset()


def kafka_producer() -> KafkaProducer:
    with _lock:
        if "kafka" not in _state:
            _state["kafka"] = KafkaProducer(bootstrap_servers=settings().kafka_bootstrap_str, linger_ms=20,
                                            client_id=f"mysimbdp-worker-{os.getpid()}")
        return _state["kafka"]


def settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = Settings.from_env()
    return _state["settings"]


def redis_client() -> redis.Redis:
    if "redis" not in _state:
        _state["redis"] = redis.Redis.from_url(settings().redis_url)
    return _state["redis"]


def session() -> Session:
    with _lock:
        if "session" not in _state:
            cluster: Cluster
            cluster, _state["session"] = db.connect(settings())
            _state["cluster"] = cluster
        return _state["session"]


def worker_tenant() -> str | None:
    """The tenant this worker pool is dedicated to (``mysimbdp worker --tenant T``)."""
    return os.environ.get("MYSIMBDP_WORKER_TENANT") or None


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
    key = f"sink:{t.name}:{t.to_json()}"
    if key not in _state:
        _state[key] = Sink(session(), t)
    return _state[key]
