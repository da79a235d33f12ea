"""Stream task bodies: what the bridge sends (orjson, zstd) reads back as the same micro-batch in a
worker, smaller; a task of an older bridge (plain JSON) is still read; nothing that can run code is."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kombu import compression, serialization
from kombu.exceptions import ContentDisallowed
from kombu.message import Message

from mysimbdp_tasks.core.settings import Settings
from mysimbdp_tasks.services import taskbody
from mysimbdp_tasks.stream import wire
from mysimbdp_tasks.worker.celery_app import make_app

pytestmark = pytest.mark.unit

ACCEPT = serialization.prepare_accept_content(taskbody.ACCEPT)


def _micro_batch(n: int = 500) -> dict[str, Any]:
    records = []
    for i in range(n):
        message = {"tenant": "t", "created_utc": 1430458939 + i, "subreddit": "marvelstudios", "id": f"c{i}",
                   "author": f"user{i % 37}", "body": f"On the way home {i}: \"quoted\", ünïcode 🎬 \\ [{i}]"}
        records.append(SimpleNamespace(value=json.dumps(message, ensure_ascii=False).encode(),
                                       key=bytes(range(256)) if i == 0 else f"marvelstudios/c{i}".encode(),
                                       partition=i % 3, offset=10_000_000_000 + i, timestamp=1_700_000_000_000))
    return wire.batch(records)


def _sent(body: Any, serializer: str, method: str | None) -> tuple[Message, bytes]:
    """The message a worker's consumer gets for ``body`` sent as kombu's Producer would send it, and
    the body's bytes on the broker."""
    taskbody.register()
    content_type, encoding, data = serialization.dumps(body, serializer=serializer)
    headers = {}
    if method:
        data, headers["compression"] = compression.compress(data, method)
    return Message(body=data, content_type=content_type, content_encoding=encoding, headers=headers,
                   accept=ACCEPT), data


def test_a_stream_task_body_reads_back_as_the_same_micro_batch_and_is_smaller() -> None:
    batch = _micro_batch()
    body = [["t", batch], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    options = taskbody.send_options()
    sent, carried = _sent(body, options["serializer"], options["compression"])
    assert sent.headers["compression"] == "application/zstd"
    assert sent.content_type == taskbody.CONTENT_TYPE
    assert sent.decode() == body
    columns = wire.columns(sent.decode()[0][1])
    assert columns["k"][0].encode("latin-1") == bytes(range(256))  # any key survives, byte for byte
    assert [m["v"] for m in wire.messages(columns)] == batch["v"]
    plain = json.dumps(body).encode()
    assert len(carried) * 2 < len(plain)


def test_a_task_from_an_older_bridge_plain_json_uncompressed_is_still_read() -> None:
    body = [["t", _micro_batch(20)], {}, {}]
    sent, _ = _sent(body, "json", None)
    assert sent.content_type == "application/json" and "compression" not in sent.headers
    assert sent.decode() == body


def test_workers_accept_json_only_never_a_serializer_that_can_run_code() -> None:
    assert set(ACCEPT) == {"application/json", taskbody.CONTENT_TYPE}
    message = Message(body=pickle.dumps({"x": 1}), content_type="application/x-python-serialize",
                      content_encoding="binary", accept=ACCEPT)
    with pytest.raises(ContentDisallowed):
        message.decode()


def test_zstd_level_chosen_on_numbers_stays_a_fast_one() -> None:
    # benchmarks/stream_task_body.py: level 1 compresses Reddit micro-batches ~3.2x at ~0.9 us per
    # message less CPU in the bridge than level 3 and the same in the pool's parent.
    assert taskbody.LEVEL == 1
    taskbody.register(taskbody.LEVEL)
    data = json.dumps(_micro_batch(100)).encode()
    packed, content_type = compression.compress(data, taskbody.COMPRESSION)
    assert content_type == "application/zstd"
    assert compression.decompress(packed, content_type) == data


def test_the_workers_app_accepts_both_bodies_and_a_bridges_app_sends_no_task_sent_events(tmp_path: Path) -> None:
    settings = Settings.from_env({"MYSIMBDP_HOME": str(tmp_path)})
    worker = make_app(settings)
    assert serialization.prepare_accept_content(worker.conf.accept_content) == ACCEPT
    assert worker.conf.task_send_sent_event  # batch tasks: Flower shows them sent
    assert not make_app(settings, sent_events=False).conf.task_send_sent_event
