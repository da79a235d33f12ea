"""One exception tree for the whole platform.

``MysimbdpError`` is the root. Configuration problems are found at start-up and reported all at
once; ingestion failures split into *transient* ones (a service is down or slow: retry with
backoff) and *permanent* ones (the input is wrong: no retry, a receipt or a dead letter says why)::

    MysimbdpError
    +-- ConfigError, SettingsError, TenantError, ProvisioningError
    +-- StackError, StackCancelled      (dev-only local stack)
    +-- WorkerUnreachable               (control: a node does not answer)
    +-- Stopping                        (a stop was asked while waiting for a service)
    +-- IngestError
    |   +-- TransientIngestError        (retry with backoff)
    |   |   +-- ServiceUnavailable
    |   |   +-- DiskFull
    |   |   +-- WaitingForSlot      (its file's batch slot was given back: retried until granted)
    |   +-- PermanentIngestError        (no retry: a receipt says why)
    |       +-- RowError                (one row; recorded, the rest goes on)
    |       +-- WorkerLost              (its worker died too often: given up)
    +-- InputError, StreamError        (the tenant-side producers)

The benchmarks keep their own errors in ``benchmarks/errors.py``, under the same root.
"""

from __future__ import annotations

from dataclasses import dataclass


class MysimbdpError(Exception):
    """Base of every error the platform raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a tenant configuration: where it is and what is wrong."""

    path: str  # e.g. "tenant2.schema.key"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(MysimbdpError):
    """A configuration file is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s){where}:\n{lines}")


class SettingsError(MysimbdpError):
    """An environment variable (MYSIMBDP_*) holds a value that cannot be used."""


class TenantError(MysimbdpError):
    """A tenant is unknown, inactive, or not allowed to do what was asked."""


class ProvisioningError(MysimbdpError):
    """The tenant's keyspace or tables cannot be brought to the configured shape."""


class StackError(MysimbdpError):
    """A local service (Redis, Kafka, Cassandra) could not be started, stopped or reached."""


class StackCancelled(MysimbdpError):
    """``stack up`` was interrupted (Ctrl-C) while this service was still starting.

    Not a StackError on purpose: a failed start stops the half-started server, a cancelled one
    leaves it starting so the next ``up`` can wait for it.
    """


class WorkerUnreachable(MysimbdpError):
    """No worker node of a tenant answers a control request (scaling, inspection)."""


class Stopping(MysimbdpError):
    """A process was asked to stop while it waited for a service to come back.

    Not a failure: the wait ends, the work it waited for is left as it was (taken again by the
    next run), and the process exits cleanly.
    """


class IngestError(MysimbdpError):
    """Base of failures while ingesting a file or a batch of messages."""


class TransientIngestError(IngestError):
    """A service failed in a way that may pass: the task is retried with backoff."""


class ServiceUnavailable(TransientIngestError):
    """Redis, Kafka or Cassandra cannot be reached at the configured endpoint.

    Transient: a service that is down may come back, so a task that meets it retries.
    """


class DiskFull(TransientIngestError):
    """The platform's own disk has no space (or quota) left for a receipt or a file move.

    Transient and not the input's fault: the file is held where it is, and the write is tried again
    until there is space.
    """


class PermanentIngestError(IngestError):
    """The input itself is unusable: no retry; the file is failed with a receipt."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class FileChangedError(PermanentIngestError, ValueError):
    """A file no longer holds the bytes planned for it: truncated or replaced after planning.

    Also a ``ValueError``: a chunk that does not fit its file is a bad argument to the reader.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("file_changed", detail)


class RowError(PermanentIngestError):
    """One row or message cannot be converted to the tenant's schema.

    Permanent for that row only: the caller records it and goes on with the others.
    """

    def __init__(self, reason: str, detail: str) -> None:
        # reason is machine-readable, e.g. "bad_value", "missing_key_column"
        super().__init__(reason, detail)


class UnknownSinkError(RowError):
    """A message names a sink its tenant does not have (core/sinks.py); its dead letter says which."""

    def __init__(self, detail: str) -> None:
        super().__init__("unknown_sink", detail)


class WorkerLost(PermanentIngestError):
    """A task came back too many times after the worker running it died (OOM kill, native crash).

    Permanent: running it again would likely kill the next worker too, and stall the tenant's pool.
    """

    def __init__(self, deaths: int) -> None:
        self.deaths = deaths
        super().__init__("worker_lost", f"the worker running it died {deaths} times")


# The tenant-side producers (producers/) --------------------------------------------------


class InputError(MysimbdpError):
    """A source file cannot be read as the expected format; the message names the file and the place."""


class StreamError(MysimbdpError):
    """The messages cannot be sent: no broker, no topic. The message says what to check."""


class WaitingForSlot(TransientIngestError):
    """A task of a file whose batch slot was given back (batch/slots.py): the file is queued again,
    and the task is retried after ``delay`` seconds, until the file holds a slot again."""

    def __init__(self, message: str, delay: float) -> None:
        self.delay = delay
        super().__init__(message)
