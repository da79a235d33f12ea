"""The watcher's ears: file-system events from watchdog, turned into "look at this file now"."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler


class Watched(Protocol):
    def mark_complete(self, path: Path) -> None: ...

    def poke(self) -> None: ...


def prompt_move_events() -> None:
    # watchdog holds an IN_MOVED_FROM for 0.5 s waiting for its IN_MOVED_TO, and every later event
    # waits behind it. Each claim renames a file out of staging (a MOVED_FROM with no MOVED_TO), so
    # the next file's events came up to 0.5 s late. A rename's two halves arrive together from
    # one syscall; 50 ms is ample to pair them.
    from watchdog.observers import inotify_move_event_grouper

    inotify_move_event_grouper.InotifyMoveEventGrouper.delay = 0.05


class Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watched) -> None:
        self.watcher = watcher

    def on_closed(self, event: FileSystemEvent) -> None:
        self.watcher.mark_complete(Path(str(event.src_path)))

    def on_moved(self, event: FileSystemEvent) -> None:
        # A rename into staging is how careful writers publish a finished file.
        self.watcher.mark_complete(Path(str(event.dest_path)))

    def on_created(self, event: FileSystemEvent) -> None:
        self.watcher.poke()
