"""The progress view: units, ETA, 80-column rendering, and clocks that stop when a stage ends."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from mixinfer.progress import Progress
from mixinfer.terminal import ProgressView, format_amount

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    """A fake clock for rich (no sleeping, no timing in tests)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_view(clock: Clock, width: int = 80) -> tuple[ProgressView, Console]:
    console = Console(width=width, file=io.StringIO(), force_terminal=True)
    return ProgressView(True, console=console, get_time=clock), console


def render(view: ProgressView, console: Console) -> list[str]:
    """The bars as the terminal shows them, one string per line, escape codes removed."""
    file = console.file
    assert isinstance(file, io.StringIO)
    file.seek(0)
    file.truncate()
    console.print(view.bars.get_renderable())
    return [ANSI.sub("", line) for line in file.getvalue().splitlines() if line.strip()]


def line_of(lines: list[str], label: str) -> str:
    (line,) = [line for line in lines if line.startswith(label)]
    return line


def task_of(view: ProgressView, stage: str) -> object:
    return next(t for t in view.bars.tasks if t.id == view.tasks[stage])


@pytest.mark.parametrize(
    ("done", "total", "unit", "text"),
    [
        (12_300_000, 40_000_000, "bytes", "12.3/40.0 MB"),
        (512, 900, "bytes", "512/900 B"),
        (1_500, 250_000, "bytes", "1.5/250.0 kB"),
        (2_500_000_000, 3_000_000_000, "bytes", "2.5/3.0 GB"),
        (12_300_000, None, "bytes", "12.3 MB"),
        (41_000_000, 40_000_000, "bytes", "41.0/41.0 MB"),  # a short estimate never reads 41/40
        (1_500, 3_000, "merges", "1,500/3,000 merges"),
        (7, None, "rounds", "round 7"),
        (2, 5, "tokenizers", "2/5 tokenizers"),
        (3, None, "", "3"),
    ],
)
def test_amounts_carry_their_unit(done: float, total: float | None, unit: str, text: str) -> None:
    assert format_amount(done, total, unit) == text


def run_all_stages(view: ProgressView, clock: Clock) -> None:
    """What an audit of a tokenizer with long names, large samples and a deep LP reports."""
    label = "mistral-nemo-base-2407-tekken.json"
    view(Progress("audit", 0, 12, "tokenizers"))
    view(Progress("count", 0, 1_234_567_890, "bytes"))
    clock.now += 4
    view(Progress("count", 617_000_000, 1_234_567_890, "bytes", f"{label}: programming/javascript"))
    clock.now += 4
    view(Progress("count", 1_234_567_890, 1_234_567_890, "bytes"))
    view(Progress("replay", 0, 2_300_000, "merges", label))
    clock.now += 10
    view(Progress("replay", 1_150_000, 2_300_000, "merges", f"{label}: general/zh_hant"))


def run_solve(view: ProgressView, clock: Clock) -> None:
    label = "mistral-nemo-base-2407-tekken.json"
    clock.now += 1
    view(Progress("solve", 0, None, "rounds", f"{label}: 1234567 violated constraints"))
    clock.now += 3
    view(Progress("solve", 12, None, "rounds", f"{label}: 45678 violated constraints"))


@pytest.mark.parametrize("width", [80, 100])
def test_totals_are_whole_and_lines_fit_the_terminal(clock: Clock, width: int) -> None:
    view, console = make_view(clock, width)
    run_all_stages(view, clock)
    lines = render(view, console)
    assert len(lines) == 3
    assert all(len(line) <= width for line in lines), lines
    assert "1,150,000/2,300,000 merges" in line_of(lines, "replaying merges")
    assert line_of(lines, "replaying merges").endswith("eta 0:00:10")
    run_solve(view, clock)
    lines = render(view, console)
    assert len(lines) == 4
    assert all(len(line) <= width for line in lines), lines
    assert "0/12 tokenizers" in line_of(lines, "auditing")
    assert "1.2/1.2 GB" in line_of(lines, "counting words")
    assert "2,300,000/2,300,000 merges" in line_of(lines, "replaying merges")
    assert "round 12" in line_of(lines, "solving LP")


def test_eta_only_for_a_known_total(clock: Clock) -> None:
    view, console = make_view(clock)
    view(Progress("count", 0, 40_000_000, "bytes"))
    clock.now += 10
    view(Progress("count", 10_000_000, 40_000_000, "bytes", "de"))
    clock.now += 10
    view(Progress("count", 20_000_000, 40_000_000, "bytes", "fr"))
    line = line_of(render(view, console), "counting words")
    # 20 MB in 20 s, 20 MB to go: 20 s at the average rate of the stage.
    assert "20.0/40.0 MB" in line and line.endswith("eta 0:00:20")
    view(Progress("solve", 0, None, "rounds", "9 violated constraints"))
    clock.now += 65
    view(Progress("solve", 3, None, "rounds", "2 violated constraints"))
    line = line_of(render(view, console), "solving LP")
    assert "eta" not in line and line.endswith("0:01:05") and "round 3" in line


def test_a_new_stage_completes_the_previous_one_and_stops_its_clock(clock: Clock) -> None:
    view, console = make_view(clock)
    view(Progress("count", 0, 1000, "bytes"))
    clock.now += 5
    view(Progress("count", 600, 1000, "bytes", "en"))  # the estimate was generous: 600 of 1000
    clock.now += 2
    view(Progress("replay", 0, 3000, "merges"))
    count = task_of(view, "count")
    assert count.finished and count.stop_time is not None  # type: ignore[attr-defined]
    before = line_of(render(view, console), "counting words")
    assert before.endswith("done 0:00:07") and "1.0/1.0 kB" in before
    clock.now += 60
    lines = render(view, console)
    assert line_of(lines, "counting words") == before  # frozen
    assert not task_of(view, "replay").finished  # type: ignore[attr-defined]


def test_reaching_the_total_stops_the_clock(clock: Clock) -> None:
    view, console = make_view(clock)
    view(Progress("replay", 0, 3000, "merges", "en"))
    clock.now += 3
    view(Progress("replay", 3000, 3000, "merges", "en"))
    replay = task_of(view, "replay")
    assert replay.finished and replay.stop_time is not None  # type: ignore[attr-defined]
    clock.now += 100
    line = line_of(render(view, console), "replaying merges")
    assert line.endswith("done 0:00:03") and "3,000/3,000 merges" in line
    view(Progress("replay", 3000, 3000, "merges"))  # a closing event after the end changes nothing
    assert line_of(render(view, console), "replaying merges") == line


def test_an_unknown_total_ends_with_the_run(clock: Clock) -> None:
    view, console = make_view(clock)
    with view.running():
        view(Progress("solve", 0, None, "rounds", "40 violated constraints"))
        clock.now += 8
        view(Progress("solve", 5, None, "rounds", "0 violated constraints"))
    solve = task_of(view, "solve")
    assert solve.finished and solve.stop_time is not None  # type: ignore[attr-defined]
    clock.now += 30
    line = line_of(render(view, console), "solving LP")
    assert "round 5" in line and line.endswith("done 0:00:08")


def test_an_error_stops_every_clock_without_completing(clock: Clock) -> None:
    view, _ = make_view(clock)
    with pytest.raises(RuntimeError), view.running():
        view(Progress("count", 10, 1000, "bytes", "en"))
        raise RuntimeError("a failing stage")
    count = task_of(view, "count")
    assert count.stop_time is not None and not count.finished  # type: ignore[attr-defined]


def test_outer_stages_stay_open_and_inner_stages_restart(clock: Clock) -> None:
    """An audit: count, replay, solve per tokenizer, inside one `audit` bar."""
    view, console = make_view(clock)
    view(Progress("audit", 0, 2, "tokenizers"))
    for i, name in enumerate(["a.json", "b.json"]):
        view(Progress("count", 0, 500, "bytes", name))
        clock.now += 1
        view(Progress("count", 500, 500, "bytes", name))
        view(Progress("solve", 0, None, "rounds", name))
        clock.now += 2
        view(Progress("solve", 4 + i, None, "rounds", name))
        view(Progress("audit", i + 1, 2, "tokenizers", name))
        if i == 0:
            audit = task_of(view, "audit")
            assert not audit.finished and audit.stop_time is None  # type: ignore[attr-defined]
            assert task_of(view, "solve").stop_time is None  # type: ignore[attr-defined]
    lines = render(view, console)
    assert "2/2 tokenizers" in line_of(lines, "auditing")
    assert "round 5" in line_of(lines, "solving LP")  # the second tokenizer's bar, restarted
    assert line_of(lines, "counting words").endswith("done 0:00:01")  # its own time, not 4 s
    assert task_of(view, "audit").finished  # type: ignore[attr-defined]


def test_disabled_view_draws_nothing(clock: Clock) -> None:
    console = Console(width=80, file=io.StringIO(), force_terminal=True)
    view = ProgressView(False, console=console, get_time=clock)
    with view.running():
        view(Progress("count", 5, 10, "bytes"))
    assert view.tasks == {}
    assert isinstance(console.file, io.StringIO) and console.file.getvalue() == ""


def test_running_draws_to_the_console(clock: Clock) -> None:
    view, console = make_view(clock)
    with view.running():
        view(Progress("count", 0, 2_000_000, "bytes"))
        view(Progress("count", 2_000_000, 2_000_000, "bytes", "en"))
    assert isinstance(console.file, io.StringIO)
    shown = ANSI.sub("", console.file.getvalue())
    assert "counting words" in shown and "2.0/2.0 MB" in shown
