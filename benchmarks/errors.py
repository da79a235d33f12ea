"""The benchmarks' errors, under the platform's root ``MysimbdpError`` so the CLI reports them alike."""

from __future__ import annotations

from mysimbdp_tasks.core.errors import MysimbdpError


class BenchmarkError(MysimbdpError):
    """The benchmark could not run, or what it measured is wrong (rows or messages missing or extra)."""


class PlatformError(BenchmarkError):
    """A platform process died, or a file did not finish in time; carries the logs' tails."""


class ProducerError(BenchmarkError):
    """A producer process died or stopped answering; the message has its log's tail."""
