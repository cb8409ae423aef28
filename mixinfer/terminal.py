"""Everything the CLI draws on the terminal besides results: progress bars and interrupt handling.

The library reports progress through :class:`mixinfer.progress.Progress` events; this module
renders them as rich bars on stderr. Only the CLI imports it.
"""

from __future__ import annotations

import atexit
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.table import Column
from rich.text import Text

from mixinfer.progress import Progress as ProgressEvent

stderr = Console(stderr=True, highlight=False)

# Set by the signal handlers of `main`. A KeyboardInterrupt raised where Python ignores exceptions
# (a __del__, a callback called from C) is lost; this flag still stops the run at the next progress
# event. (Process pools hold Ctrl-C back while they fork, see mixinfer.executors, so none is lost
# there any more.)
_interrupted = False
# The signal that stopped the run (SIGINT, or one of _TERMINATING), once one has.
_signal: int | None = None
# When the last one was raised as an exception (time.monotonic()).
_raised_at = 0.0
# Another signal this soon after one was raised is not raised again: the run is already unwinding
# (killing workers, removing temporary files), and an exception in the middle of that cleanup
# would skip the rest of it or escape as a traceback. Later ones are raised, in case one was lost.
_REPEAT_GRACE_SECONDS = 5.0
# Signals that ask a process to end, besides Ctrl-C: `kill`, `timeout`, a job scheduler (SIGTERM), a
# closed terminal or SSH session (SIGHUP). Their default action kills the process on the spot, which
# left `samples pull`'s staging folder (and any temporary file being written) behind.
_TERMINATING: tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread as Ctrl-C is.

    A KeyboardInterrupt so that every clean-up written for Ctrl-C (workers stopped, staging folders
    and temporary files removed, nothing half-written) runs for these too; the CLI then exits with
    128 + :attr:`signum`, as if killed by the signal.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name (``SIGTERM``)."""
        return signal.Signals(self.signum).name


def _stop(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def _on_signal(signum: int, frame: Any) -> None:
    global _interrupted, _signal, _raised_at
    now = time.monotonic()
    if _interrupted and now - _raised_at < _REPEAT_GRACE_SECONDS:
        return
    _interrupted = True
    if _signal is None or signum != signal.SIGINT:
        _signal = signum  # a Ctrl-C after SIGTERM does not turn the exit code into 130
    _raised_at = now
    raise _stop(_signal)


def _quiet_lost_interrupt(info: Any) -> None:
    # A lost KeyboardInterrupt is remembered in _interrupted; after Ctrl-C, errors in teardown
    # (e.g. a process pool's exit handler finding its pipe closed) are noise, not news.
    if not (_interrupted or isinstance(info.exc_value, KeyboardInterrupt)):
        sys.__unraisablehook__(info)


def _ignore_interrupts_at_exit() -> None:
    # While the interpreter shuts down it puts SIGINT's default action back: after an interrupt,
    # a second Ctrl-C (or SIGTERM) there would kill the process by signal, not with the exit
    # status just chosen.
    if _interrupted:
        for signum in (signal.SIGINT, *_TERMINATING):
            signal.signal(signum, signal.SIG_IGN)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt (:class:`Terminated` for SIGTERM and SIGHUP) if the run was
    stopped by a signal, even when its first exception was lost."""
    if _interrupted:
        raise _stop(_signal if _signal is not None else signal.SIGINT)


def install_interrupt_handlers() -> None:
    """Make Ctrl-C raise KeyboardInterrupt, and SIGTERM and SIGHUP :class:`Terminated`, in the
    main process even if a library reset them.

    Call once per run (``cli.main``): it also forgets an interrupt of an earlier run in the same
    process. A signal whose action is "ignore" (SIGHUP under ``nohup``) stays ignored.
    """
    global _interrupted, _signal, _raised_at
    _interrupted = False
    _signal = None
    _raised_at = 0.0
    signal.signal(signal.SIGINT, _on_signal)
    for signum in _TERMINATING:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _on_signal)
    sys.unraisablehook = _quiet_lost_interrupt
    atexit.unregister(_ignore_interrupts_at_exit)
    atexit.register(_ignore_interrupts_at_exit)


# -- progress bars ---------------------------------------------------------------------------------

LABEL_WIDTH = 16
BAR_WIDTH = 12
TIME_WIDTH = 12
LABELS = {
    "count": "counting words",
    "replay": "replaying merges",
    "solve": "solving LP",
    "audit": "auditing",
    "trials": "simulating",
}
# Stages that run the others inside them (an audit counts, replays and solves once per tokenizer):
# their bars stay open while inner stages come and go.
OUTER_STAGES = frozenset({"audit", "trials"})
# Unknown totals are counted, not measured: "round 7", not "7 rounds".
_ORDINAL_UNITS = {"rounds": "round", "trials": "trial"}
_BYTE_SCALES = ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"))


def _bytes_scale(largest: float) -> tuple[float, str]:
    for factor, name in _BYTE_SCALES:
        if largest >= factor:
            return factor, name
    return 1.0, "B"


def format_amount(done: float, total: float | None, unit: str) -> str:
    """The progress of a stage in its unit: ``12.3/40.0 MB``, ``1,500/3,000 merges``, ``round 7``.

    A total below ``done`` (an estimate that came out short) shows as ``done``, so the text never
    reads "41/40".
    """
    if total is not None:
        total = max(total, done)
    if unit == "bytes":
        factor, name = _bytes_scale(total if total is not None else done)
        digits = 0 if factor == 1.0 else 1
        if total is None:
            return f"{done / factor:.{digits}f} {name}"
        return f"{done / factor:.{digits}f}/{total / factor:.{digits}f} {name}"
    if total is None:
        if unit in _ORDINAL_UNITS:
            return f"{_ORDINAL_UNITS[unit]} {int(done):,}"
        return f"{int(done):,} {unit}".rstrip()
    return f"{int(done):,}/{int(total):,} {unit}".rstrip()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class AmountColumn(ProgressColumn):
    """``done/total unit`` of a task (never cut: its column does not wrap or shrink)."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True, justify="right"))

    def render(self, task: Task) -> Text:
        total = task.total if task.fields.get("known_total") else None
        return Text(
            format_amount(task.completed, total, task.fields.get("unit", "")), style="progress.download"
        )


def _remaining(task: Task) -> float | None:
    """Seconds left at the stage's average rate so far (work found done at its start, such as
    cached categories, does not count as speed)."""
    done = task.completed - task.fields.get("start_done", 0)
    elapsed = task.elapsed
    if task.total is None or not elapsed or done <= 0:
        return None
    return max(task.total - task.completed, 0) * elapsed / done


class StageTimeColumn(ProgressColumn):
    """``eta H:MM:SS`` while a stage with a known total runs; its elapsed time otherwise.

    The elapsed time of a finished stage is frozen (rich stops a task's clock at ``stop_task``).
    An ETA is never shown for an unknown total (the LP's rounds).
    """

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True, justify="right", width=TIME_WIDTH))

    def render(self, task: Task) -> Text:
        if task.stop_time is not None or task.finished:
            seconds = task.finished_time if task.finished_time is not None else task.elapsed
            return Text(f"done {_clock(seconds)}", style="progress.elapsed")
        if task.fields.get("known_total"):
            return Text(f"eta {_clock(_remaining(task))}", style="progress.remaining")
        return Text(_clock(task.elapsed), style="progress.elapsed")


class ProgressView:
    """Renders library progress events as rich progress bars on stderr.

    One bar per stage, with the stage's unit (bytes shown as kB/MB/GB, merges, LP rounds) and an
    ETA when the total is known. A stage ends when it reaches its total or when an event of another
    (non-outer) stage arrives: its bar is then completed and its clock stopped. A stage that comes
    back with new work (the next tokenizer of an audit) restarts its bar.

    ``console`` and ``get_time`` are for tests (a fixed-width console, a fake clock).
    """

    LABELS = LABELS

    def __init__(
        self,
        enabled: bool,
        *,
        console: Console | None = None,
        get_time: Callable[[], float] | None = None,
    ) -> None:
        self.enabled = enabled
        self.bars = Progress(
            TextColumn("{task.description}", table_column=Column(width=LABEL_WIDTH, no_wrap=True)),
            BarColumn(bar_width=BAR_WIDTH),
            AmountColumn(),
            TextColumn(
                "{task.fields[detail]}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=0),
            ),
            StageTimeColumn(),
            console=console or stderr,
            transient=False,
            disable=not enabled,
            expand=True,
            get_time=get_time,
        )
        self.tasks: dict[str, TaskID] = {}
        self._ended: set[str] = set()
        self._inner: str | None = None

    def __call__(self, event: ProgressEvent) -> None:
        check_interrupted()
        if not self.enabled:
            return
        stage = event.stage
        if stage not in OUTER_STAGES:
            if self._inner is not None and self._inner != stage:
                self.end(self._inner)  # stages run one after another: the previous one is over
            self._inner = stage
        known = event.total is not None
        fields: dict[str, Any] = {"detail": escape(event.detail), "unit": event.unit, "known_total": known}
        # rich's bar needs a number: an unknown total pulses until the stage ends.
        total = max(event.total, event.done) if event.total is not None else None
        task = self.tasks.get(stage)
        if task is None or stage in self._ended:
            fields["start_done"] = event.done
        if task is None:
            label = self.LABELS.get(stage, stage)
            self.tasks[stage] = self.bars.add_task(label, total=total, completed=int(event.done), **fields)
        elif stage in self._ended:
            if event.total is not None and event.done >= event.total:
                return  # a closing event of a stage already closed
            self._ended.discard(stage)
            self.bars.reset(task, total=total, completed=int(event.done), **fields)
            self._task(task).stop_time = None  # rich's reset restarts the clock but keeps it stopped
        else:
            self.bars.update(task, total=total, completed=event.done, **fields)
        if event.total is not None and event.done >= event.total:
            self.end(stage)

    def end(self, stage: str) -> None:
        """Complete ``stage``'s bar (an unknown total becomes what was done) and stop its clock."""
        task = self.tasks.get(stage)
        if task is None or stage in self._ended:
            return
        self._ended.add(stage)
        current = self._task(task)
        total = current.total if current.total is not None else current.completed
        self.bars.update(task, total=total, completed=total)
        self.bars.stop_task(task)
        if self._inner == stage:
            self._inner = None

    def _task(self, task: TaskID) -> Task:
        return next(t for t in self.bars.tasks if t.id == task)

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        """Show the bars while the body runs; on success the last stage is completed, and in
        any case every clock is stopped before the display closes."""
        if not self.enabled:
            yield self
            return
        with self.bars:
            ok = False
            try:
                yield self
                ok = True
            finally:
                if ok and self._inner is not None:
                    self.end(self._inner)
                for task in self.tasks.values():
                    self.bars.stop_task(task)
