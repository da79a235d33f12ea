"""The micro-batch as it travels from the bridge to a worker, in the task's JSON argument.

``{"messages": [...], "bridged_at": epoch seconds}``, one entry per admitted message:
``v`` the original payload (UTF-8 JSON text, as validated by the bridge), ``k`` the Kafka key
(bytes mapped one to one onto the first 256 code points, so any key survives JSON), ``p``/``o``
its partition and offset, ``ts`` its Kafka timestamp (ms) and ``n`` its size in bytes. The worker
parses ``v`` itself, and can dead-letter the original payload and key byte for byte.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import PermanentIngestError
from ..services.deadletters import DeadLetter


def entry(value: bytes, key: bytes | None, partition: int, offset: int, timestamp: int | None) -> dict[str, Any]:
    return {"v": value.decode("utf-8"), "k": None if key is None else key.decode("latin-1"),
            "p": partition, "o": offset, "ts": timestamp, "n": len(value)}


def letter(message: dict[str, Any], reason: str, detail: str) -> DeadLetter:
    """The dead letter of one entry of a micro-batch."""
    key = message.get("k")
    value = message.get("v")
    return DeadLetter(partition=int(message.get("p", -1)), offset=int(message.get("o", -1)),
                      key=None if key is None else str(key).encode("latin-1"),
                      value=None if value is None else str(value).encode("utf-8"), reason=reason, detail=detail)


def given_up(messages: list[dict[str, Any]], exc: BaseException) -> list[DeadLetter]:
    """The dead letters of a micro-batch given up for good: the reason of a permanent error (e.g.
    ``worker_lost``), ``ingest_failed`` for anything else, and the error as the detail."""
    reason = exc.reason if isinstance(exc, PermanentIngestError) else "ingest_failed"
    detail = f"{type(exc).__name__}: {str(exc)[:300]}"
    return [letter(m, reason, detail) for m in messages]
