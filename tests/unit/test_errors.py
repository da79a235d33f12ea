"""The one exception tree: where every error class lives and how the platform treats each kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mysimbdp_tasks.core import errors

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HOMES = {"mysimbdp_tasks/core/errors.py", "benchmarks/errors.py"}


def _exception_classes_outside_homes() -> list[str]:
    found = []
    for package in ("mysimbdp_tasks", "producers", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in HOMES:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and any(
                        (isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception")) or b.id == "Exception"))
                        or (isinstance(b, ast.Attribute) and b.attr.endswith(("Error", "Exception")))
                        for b in node.bases):
                    found.append(f"{rel}:{node.lineno} {node.name}")
    return found


def test_every_exception_class_lives_in_an_errors_module() -> None:
    assert _exception_classes_outside_homes() == []


def test_an_unreachable_service_is_retried_like_any_transient_failure() -> None:
    # The worker retries TransientIngestError with backoff; a service that is down may come back.
    assert issubclass(errors.ServiceUnavailable, errors.TransientIngestError)
    assert not issubclass(errors.ServiceUnavailable, errors.PermanentIngestError)


def test_a_bad_row_is_a_permanent_failure_that_keeps_its_reason() -> None:
    exc = errors.RowError("bad_value", "column 'score': not an int")
    assert isinstance(exc, errors.PermanentIngestError)
    assert (exc.reason, exc.detail, str(exc)) == ("bad_value", "column 'score': not an int",
                                                  "bad_value: column 'score': not an int")


def test_a_cancelled_stack_start_is_not_a_failed_one() -> None:
    # A failed start stops the half-started server; a cancelled one must leave it starting.
    assert not issubclass(errors.StackCancelled, errors.StackError)


def test_benchmarks_have_one_benchmark_error() -> None:
    from benchmarks import batch, harness, stream, stream_producer
    from benchmarks import errors as bench_errors

    assert batch.BenchmarkError is stream.BenchmarkError is bench_errors.BenchmarkError
    assert issubclass(harness.PlatformError, bench_errors.BenchmarkError)
    assert issubclass(stream_producer.ProducerError, errors.MysimbdpError)
