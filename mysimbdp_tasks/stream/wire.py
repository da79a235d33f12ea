"""The micro-batch as it travels from the bridge to a worker, in the task's JSON argument.

Column by column, so a batch of 2,000 messages is a few lists rather than 2,000 small objects to
build, encode and decode: ``{"bridged_at": epoch seconds, "v": [...], "k": [...], "p": [...],
"o": [...], "ts": [...], "n": bytes}``. Per admitted message, at the same index: ``v`` the original
payload (UTF-8 JSON text, as validated by the bridge), ``k`` the Kafka key (bytes mapped one to one
onto the first 256 code points, so any key survives JSON), ``p``/``o`` its partition and offset,
``ts`` its Kafka timestamp (ms); ``n`` is the payloads' size in bytes. The worker parses ``v``
itself, and can dead-letter the original payload and key byte for byte.

:func:`columns` gives the worker the lists themselves (it dead-letters a message by its index,
:func:`letter_at`), :func:`messages` one entry per message (``{"v", "k", "p", "o", "ts", "n"}``, the
shape of :func:`entry`); a batch of the older form, ``{"messages": [entry, ...]}``, reads the same.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from typing import Any

from ..core.errors import PermanentIngestError
from ..services.deadletters import DeadLetter

_value, _key, _partition, _offset, _timestamp = map(operator.attrgetter, ("value", "key", "partition", "offset",
                                                                          "timestamp"))


def entry(value: bytes, key: bytes | None, partition: int, offset: int, timestamp: int | None) -> dict[str, Any]:
    """One message as :func:`messages` gives it."""
    return {"v": value.decode("utf-8"), "k": None if key is None else key.decode("latin-1"),
            "p": partition, "o": offset, "ts": timestamp, "n": len(value)}


def batch(records: Sequence[Any]) -> dict[str, Any]:
    """The task argument for the admitted records (kafka-python ``ConsumerRecord``s), in order."""
    # map() over attrgetters and bytes.decode keeps the per-message loops in C.
    values = list(map(_value, records))
    return {"bridged_at": time.time(), "v": list(map(bytes.decode, values)),
            "k": [None if k is None else k.decode("latin-1") for k in map(_key, records)],
            "p": list(map(_partition, records)), "o": list(map(_offset, records)),
            "ts": list(map(_timestamp, records)), "n": sum(map(len, values))}


def count(payload: dict[str, Any]) -> int:
    """How many messages a task argument carries."""
    return len(payload["v"]) if "v" in payload else len(payload.get("messages") or ())


def messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per message of a task argument (see the module's docstring)."""
    if "v" not in payload:
        return list(payload.get("messages") or ())
    return [{"v": v, "k": k, "p": p, "o": o, "ts": ts, "n": len(v.encode("utf-8"))}
            for v, k, p, o, ts in zip(payload["v"], payload["k"], payload["p"], payload["o"], payload["ts"],
                                      strict=True)]


def columns(payload: dict[str, Any]) -> dict[str, Any]:
    """A task argument in the column-wise form (see the module's docstring), which the worker reads
    without an object per message; an argument of the older form is turned into it."""
    if "v" in payload:
        if "n" not in payload:
            return {**payload, "n": sum(len(v.encode("utf-8")) for v in payload["v"])}
        return payload
    entries = list(payload.get("messages") or ())
    return {"bridged_at": payload.get("bridged_at"), "v": [m.get("v") for m in entries],
            "k": [m.get("k") for m in entries], "p": [m.get("p", -1) for m in entries],
            "o": [m.get("o", -1) for m in entries], "ts": [m.get("ts") for m in entries],
            "n": sum(m.get("n", 0) for m in entries)}


def letter_at(columns: dict[str, Any], index: int, reason: str, detail: str) -> DeadLetter:
    """The dead letter of the message at ``index`` of a column-wise argument (:func:`columns`)."""
    return letter({"v": columns["v"][index], "k": columns["k"][index], "p": columns["p"][index],
                   "o": columns["o"][index]}, reason, detail)


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
