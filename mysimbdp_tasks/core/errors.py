"""One exception tree for the whole platform.

``MysimbdpError`` is the root. Configuration problems are found at start-up and reported all at
once; ingestion failures split into *transient* ones (a service is down or slow: retry with
backoff) and *permanent* ones (the input is wrong: no retry, a receipt or a dead letter says why).
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


class ServiceUnavailable(MysimbdpError):
    """Redis, Kafka or Cassandra cannot be reached at the configured endpoint."""


class IngestError(MysimbdpError):
    """Base of failures while ingesting a file or a batch of messages."""


class TransientIngestError(IngestError):
    """A service failed in a way that may pass: the task is retried with backoff."""


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


class RowError(MysimbdpError):
    """One row or message cannot be converted to the tenant's schema."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason  # machine-readable, e.g. "bad_value", "missing_key_column"
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
