"""What every command needs: printing, a Redis client, a stop signal."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from typing import Any

from ..core.settings import Settings
from ..security import logins

SERVICES = ("redis", "kafka", "cassandra")


def echo(msg: str) -> None:
    print(msg, flush=True)


def print_rows(rows: list[dict[str, Any]], as_json: bool, line: Callable[[dict[str, Any]], str]) -> int:
    """Print ``rows`` as a JSON list, or one ``line(row)`` each; the command's exit status (0)."""
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(line(r))
    return 0


def redis_client(settings: Settings) -> Any:
    return logins.redis_client(settings)


def stop_event() -> threading.Event:
    """Set by SIGTERM or SIGINT, so a foreground process stops cleanly."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop
