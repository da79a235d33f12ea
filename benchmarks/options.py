"""Command-line pieces the benchmark CLIs share: lists of positive numbers, and progress lines."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any


def positive_numbers(text: str, what: str, example: str) -> tuple[float, ...]:
    """``"10,1,10"`` -> ``(1.0, 10.0)``: sorted and distinct; anything else is refused with an example."""
    try:
        numbers = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        numbers = ()
    if not numbers or any(n <= 0 for n in numbers):
        raise argparse.ArgumentTypeError(f"expected positive {what} separated by commas, e.g. {example}; got {text!r}")
    return tuple(sorted(set(numbers)))


def chooser(args: argparse.Namespace, quick: Mapping[str, Any], defaults: object) -> Callable[[str], Any]:
    """``pick(name)``: the option given on the command line, else its ``--quick`` value, else its default."""

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return value if value is not None else quick.get(name, getattr(defaults, name))

    return pick


def print_line(msg: str) -> None:
    """A progress line, flushed at once (a benchmark's output is read while it runs)."""
    print(msg, flush=True)
