"""What every command needs: printing, a Redis client, a stop signal."""

from __future__ import annotations

import signal
import threading
from typing import Any

import redis

from ..core.settings import Settings
from ..security import identities

SERVICES = ("redis", "kafka", "cassandra")


def echo(msg: str) -> None:
    print(msg, flush=True)


def redis_client(settings: Settings) -> Any:
    return redis.Redis.from_url(identities.redis_url(settings))


def stop_event() -> threading.Event:
    """Set by SIGTERM or SIGINT, so a foreground process stops cleanly."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop
