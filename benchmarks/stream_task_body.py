"""What a stream task's body costs on its way from the bridge to a pool process, per codec.

    python -m benchmarks.stream_task_body [--like tenant2] [--messages 20000] [--batch 500]
                                          [--levels -5,-1,1,3] [--repeat 3] [--json-out PATH]

No service is needed: the micro-batches are the bridge's column-wise argument (``stream/wire.py``)
of ``--messages`` sample messages shaped like ``--like``'s, cut into ``--batch``. For each codec
(serializer, compression and level, as ``services/taskbody.py`` names them) this process does, per
micro-batch, the steps kombu's Redis transport does with the body, and times each role's share in
process CPU:

- ``bridge``: serialize the task body, compress it, base64 it into the envelope, JSON-encode the
  envelope (what ``send_task`` then LPUSHes);
- ``parent``: the pool's parent reading it: JSON-decode the envelope, base64-decode and decompress
  the body (``kombu.Message``), JSON-encode the envelope again for the unacked copy
  (``QoS.append``), and deserialize the body (Celery's ``Request`` reads ``message.payload``);
- ``child``: deserialize the body in the pool process.

It prints µs per message per role, the envelope's bytes per message and the ratio to plain JSON.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from kombu import compression, serialization

from mysimbdp_tasks.services import taskbody
from producers.stream import encode, key_for, message_for, records_for

from .stream import DATA
from .stream_steps import inputs_for


def micro_batches(like: str, count: int, batch: int, partitions: int = 3) -> list[dict[str, Any]]:
    """The bridge's arguments for ``count`` fresh messages shaped like ``like``'s, ``batch`` each."""
    samples = [message_for(like, r) for r in records_for(like, inputs_for(like, DATA))]
    cycle = itertools.cycle(samples)
    out = []
    for start in range(0, count, batch):
        n = min(batch, count - start)
        messages = [{**m, "id": f"{m['id']}-w{seq}"} for seq, m in zip(range(start, start + n), cycle, strict=False)]
        values = [encode(m).decode("utf-8") for m in messages]
        out.append({"bridged_at": time.time(), "v": values, "k": [key_for(m).decode("latin-1") for m in messages],
                    "p": [seq % partitions for seq in range(start, start + n)],
                    "o": [seq // partitions for seq in range(start, start + n)],
                    "ts": [int(time.time() * 1000)] * n, "n": sum(len(v.encode("utf-8")) for v in values)})
    return out


def envelope(body: bytes, content_type: str, headers: dict[str, Any]) -> str:
    """The Redis transport's message as LPUSHed (kombu ``Channel._put``: JSON, the body in base64)."""
    return json.dumps({"body": base64.b64encode(body).decode("ascii"), "content-encoding": "utf-8",
                       "content-type": content_type, "headers": headers,
                       "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4())}})


def run(batches: Sequence[dict[str, Any]], serializer: str, method: str | None) -> dict[str, float]:
    """CPU seconds per role and envelope bytes for sending and reading every batch once."""
    cpu = {"bridge": 0.0, "parent": 0.0, "child": 0.0, "bytes": 0.0}
    for payload in batches:
        t0 = time.process_time()
        content_type, encoding, body = serialization.dumps((("t", payload), {}, {}), serializer=serializer)
        headers: dict[str, Any] = {"task": "ingest_messages"}
        raw = body.encode("utf-8") if isinstance(body, str) else body
        if method:
            raw, headers["compression"] = compression.compress(raw, method)
        wire = envelope(raw, content_type, headers)
        t1 = time.process_time()
        got = json.loads(wire)
        data = base64.b64decode(got["body"])
        if got["headers"].get("compression"):
            data = compression.decompress(data, got["headers"]["compression"])
        json.dumps(got)  # QoS.append: the unacked copy
        serialization.loads(data, content_type, encoding, accept={content_type})  # celery.worker.request
        t2 = time.process_time()
        serialization.loads(data, content_type, encoding, accept={content_type})
        t3 = time.process_time()
        cpu["bridge"] += t1 - t0
        cpu["parent"] += t2 - t1
        cpu["child"] += t3 - t2
        cpu["bytes"] += len(wire)
    return cpu


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--like", default="tenant2")
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--levels", default="-5,-1,1,3")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json-out")
    args = p.parse_args(argv)
    taskbody.register()
    batches = micro_batches(args.like, args.messages, args.batch)
    count = sum(len(b["v"]) for b in batches)
    codecs: list[tuple[str, str | None, int | None]] = [("json", None, None), (taskbody.SERIALIZER, None, None)]
    for serializer in ("json", taskbody.SERIALIZER):
        codecs += [(serializer, "zstd", int(level)) for level in args.levels.split(",")]
    rows = []
    plain = None
    for serializer, method, level in codecs:
        if method and level is not None:
            taskbody.register(level)
        best: dict[str, float] = {}
        for _ in range(args.repeat):  # the least CPU of the repeats: the run least disturbed
            got = run(batches, serializer, method and taskbody.COMPRESSION)
            best = {k: min(v, best.get(k, v)) for k, v in got.items()}
        plain = plain or best["bytes"]
        row = {"serializer": serializer, "compression": f"{method} {level}" if method else "none",
               **{k: round(best[k] / count * 1e6, 2) for k in ("bridge", "parent", "child")},
               "bytes_per_message": round(best["bytes"] / count), "ratio": round(plain / best["bytes"], 2)}
        rows.append(row)
        print(f"{row['serializer']:>24} {row['compression']:>8}  bridge {row['bridge']:6.2f}  "
              f"parent {row['parent']:6.2f}  child {row['child']:6.2f} us/msg  "
              f"{row['bytes_per_message']:5d} B/msg  x{row['ratio']}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump({"like": args.like, "messages": count, "batch": args.batch, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
