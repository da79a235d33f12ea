"""Sending the platform's tasks, by name, to the tenant's own queue.

Intake (the watcher, its sweeper, the bridge) and the planning task send through a
:class:`Dispatch`; none of them imports the task bodies or builds a Celery app. Anything with
Celery's ``send_task`` signature is a :class:`Sender` (a ``Celery`` app is one), so a process hands
in the app it built (``worker.celery_app.make_app``) and the names stay in :mod:`core.names`.

Every task is sent with a short ``argsrepr`` that starts with its tenant (``tenant='t1' file=...``):
it is what Flower's Tasks page shows and searches (``args:"tenant='t1'"``), and Celery need not
``saferepr`` a whole job or micro-batch on each send.

Stream micro-batches travel compressed and serialized by orjson (:mod:`.taskbody`); batch tasks are
small and keep Celery's JSON.
"""

from __future__ import annotations

from typing import Any, Protocol

from ..core import names
from . import taskbody


class Sender(Protocol):
    def send_task(self, name: str, args: tuple[Any, ...] = (), *, queue: str = "",
                  task_id: str | None = None, **options: Any) -> Any: ...


def shown(tenant: str, **what: object) -> str:
    """The arguments as Flower shows them: the tenant first, then what the task is about."""
    return " ".join([f"tenant={tenant!r}", *(f"{k.replace('_', '-')}={v!r}" for k, v in what.items())])


class Dispatch:
    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        taskbody.register()  # the stream tasks' serializer and compression, before the first send

    def send_file(self, job: dict[str, Any]) -> None:
        """Plan an admitted file: one task per file, whose id the sweeper can look for."""
        self.sender.send_task(names.INGEST_FILE, args=(job,), queue=names.batch_queue(job["tenant"]),
                              task_id=names.file_task_id(job["ingest_id"]),
                              argsrepr=shown(job["tenant"], file=job.get("file"), ingest_id=job["ingest_id"]),
                              kwargsrepr="{}")

    def send_chunk(self, job: dict[str, Any], chunk: dict[str, Any]) -> None:
        """Ingest one chunk of a planned file."""
        self.sender.send_task(names.INGEST_CHUNK, args=(job, chunk), queue=names.batch_queue(job["tenant"]),
                              task_id=names.chunk_task_id(job["ingest_id"], chunk["index"]),
                              argsrepr=shown(job["tenant"], file=job.get("file"), chunk=chunk["index"]),
                              kwargsrepr="{}")

    def send_finalize(self, job: dict[str, Any]) -> None:
        """Finalize a file whose every chunk has an outcome (the sweeper's last word on a job)."""
        self.sender.send_task(names.FINALIZE_FILE, args=(job,), queue=names.batch_queue(job["tenant"]),
                              task_id=names.finalize_task_id(job["ingest_id"]),
                              argsrepr=shown(job["tenant"], file=job.get("file"), ingest_id=job["ingest_id"]),
                              kwargsrepr="{}")

    def send_messages(self, tenant: str, batch: dict[str, Any], task_id: str) -> None:
        """Write one bridged micro-batch of the tenant's stream messages; the id
        (:func:`~mysimbdp_tasks.core.names.stream_task_id`) is how the bridge follows it."""
        # Left to Celery, argsrepr walks the batch's lists with saferepr on every send (about 1 us per message).
        self.sender.send_task(names.INGEST_MESSAGES, args=(tenant, batch), queue=names.stream_queue(tenant),
                              task_id=task_id, argsrepr=shown(tenant, micro_batch=task_id), kwargsrepr="{}",
                              **taskbody.send_options())
