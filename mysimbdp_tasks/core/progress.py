"""Progress bars for long waits (stack start, producers, ``summary --wait``), drawn with tqdm.

A bar is drawn on stderr only when stderr is a terminal: in CI, in logs and under a supervisor the
same code prints nothing extra, so output that scripts read stays as it was.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tqdm import tqdm


def on_terminal() -> bool:
    return sys.stderr.isatty()


def bar(desc: str, total: float | None = None, unit: str = "it", **options: Any) -> tqdm:
    """A bar on stderr, silent (``disable``) when stderr is not a terminal."""
    return tqdm(desc=desc, total=total, unit=unit, file=sys.stderr, disable=not on_terminal(), dynamic_ncols=True,
                **options)


@contextmanager
def ticking(b: tqdm, every: float = 0.5) -> Iterator[tqdm]:
    """Keep ``b`` redrawn while the caller waits on something that reports rarely (its clock moves)."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            b.refresh()

    thread = threading.Thread(target=tick, name="progress", daemon=True)
    thread.start()
    try:
        yield b
    finally:
        stop.set()
        thread.join(timeout=2)
        b.close()


def follow(desc: str, total: float | None, unit: str) -> Callable[[float, str, bool], None]:
    """A callback ``(position, note, done)`` that moves a bar to ``position``, closing it when done."""
    b = bar(desc, total=total, unit=unit, unit_scale=True)

    def show(position: float, note: str, done: bool) -> None:
        b.update(position - b.n)
        b.set_postfix_str(note, refresh=False)
        if done:
            b.close()

    return show
