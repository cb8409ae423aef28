"""Everything the CLI draws on the terminal besides results: progress bars and interrupt handling.

The library reports progress through :class:`mixinfer.progress.Progress` events; this module
renders them as rich bars on stderr. Only the CLI imports it.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from mixinfer.progress import Progress as ProgressEvent

stderr = Console(stderr=True, highlight=False)

# Set by the SIGINT handler of `main`. A KeyboardInterrupt raised where Python ignores exceptions
# (an at-fork hook while a process pool starts, a __del__) is lost; this flag still stops the run.
_interrupted = False


def _on_sigint(signum: int, frame: Any) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _quiet_lost_interrupt(info: Any) -> None:
    # A lost KeyboardInterrupt is remembered in _interrupted; after Ctrl-C, errors in teardown
    # (e.g. a process pool's exit handler finding its pipe closed) are noise, not news.
    if not (_interrupted or isinstance(info.exc_value, KeyboardInterrupt)):
        sys.__unraisablehook__(info)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, even when its first exception was lost."""
    if _interrupted:
        raise KeyboardInterrupt


def install_interrupt_handlers() -> None:
    """Make Ctrl-C raise KeyboardInterrupt in the main process even if a library reset it."""
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _quiet_lost_interrupt


class ProgressView:
    """Renders library progress events as rich progress bars on stderr."""

    LABELS = {"count": "counting words", "replay": "replaying merges", "solve": "solving LP"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars = Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=stderr,
            transient=False,
            disable=not enabled,
        )
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, event: ProgressEvent) -> None:
        check_interrupted()
        if not self.enabled:
            return
        task = self.tasks.get(event.stage)
        if task is None:
            label = self.LABELS.get(event.stage, event.stage)
            task = self.bars.add_task(label, total=event.total, detail="")
            self.tasks[event.stage] = task
        self.bars.update(task, completed=event.done, total=event.total, detail=escape(event.detail))

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        if not self.enabled:
            yield self
            return
        with self.bars:
            yield self
