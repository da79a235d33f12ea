"""How a stream task's body is encoded between the bridge and a worker pool: its serializer and its
compression.

A micro-batch is ~300 bytes of JSON per message, and kombu's Redis transport handles the body
several times on its way: the bridge serializes it, base64s it into a JSON envelope and LPUSHes it;
the pool's parent BRPOPs it, decodes the envelope and the base64, writes the envelope again for the
unacknowledged copy (``QoS.append``), then hands the body to a pool process, which deserializes it.
Every byte saved is saved in each of those steps, so stream tasks are sent

- compressed with zstd (``application/zstd``, which kombu registers when ``backports.zstd`` is
  importable: ``kombu/compression.py``), at :data:`LEVEL`, chosen on the numbers of
  ``benchmarks/stream_task_body.py``; kombu's ``Message`` decompresses in the parent before anything
  else, and a message without the ``compression`` header is read as before;
- serialized by orjson under a content type of its own (:data:`CONTENT_TYPE`): plain JSON, no
  pickle, so a worker still accepts nothing that can run code. Workers accept it beside ``json``,
  so a task from an older bridge (``application/json``, uncompressed) is still read.

Batch tasks are small and keep Celery's defaults.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import orjson
from kombu import compression, serialization

#: The serializer's name in ``send_task(serializer=...)`` and the content type its messages carry.
SERIALIZER = "mysimbdp-json"
CONTENT_TYPE = "application/x-mysimbdp-json"
#: The compression's name in ``send_task(compression=...)`` (kombu's alias of ``application/zstd``).
COMPRESSION = "zstd"
#: zstd's level for stream task bodies (see the module's docstring).
LEVEL = 1
#: What a worker accepts: Celery's JSON (batch tasks; stream tasks of older bridges) and this one.
ACCEPT = ("json", CONTENT_TYPE)


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body)


def register(level: int = LEVEL) -> None:
    """Register the serializer and zstd at ``level`` with kombu (idempotent): in every process that
    sends or reads stream tasks, before it does."""
    serialization.register(SERIALIZER, _dumps, orjson.loads, content_type=CONTENT_TYPE,
                           content_encoding="binary")
    try:
        if sys.version_info >= (3, 14):
            from compression import zstd
        else:
            from backports import zstd
    except ImportError as exc:  # pragma: no cover - a dependency of the package (setup.cfg)
        raise RuntimeError("stream tasks are compressed with zstd: install backports-zstd "
                           "(pip install backports-zstd), a dependency of mysimbdp") from exc
    # The same content type as kombu's own registration, so a reader needs nothing of ours to
    # decompress; only the sender's level differs from zstd's default (3).
    compression.register(functools.partial(zstd.compress, level=level), zstd.decompress,
                         "application/zstd", aliases=["zstd", "zstandard"])


def send_options() -> dict[str, str]:
    """The ``send_task`` options of a stream task's body."""
    return {"serializer": SERIALIZER, "compression": COMPRESSION}
