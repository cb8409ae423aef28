"""The ``mixinfer`` command line: parse, call the library, render. Nothing else lives here."""

from __future__ import annotations

import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mixinfer import errors
from mixinfer.cache import Cache, default_cache_dir
from mixinfer.pipeline import DEFAULT_MERGES, infer
from mixinfer.progress import Progress as ProgressEvent
from mixinfer.report import InferenceResult, format_for, write_atomic
from mixinfer.samples import DEFAULT_MAX_BYTES

# The one place where errors become exit codes (documented in the README).
EXIT_CODES: dict[type[errors.MixinferError], int] = {
    errors.UsageError: 2,
    errors.TokenizerError: 3,
    errors.SamplesError: 4,
    errors.SolverError: 5,
    errors.CacheError: 6,
    errors.MissingDependencyError: 7,
}
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Infer the training-data mixture of a BPE tokenizer from its merge list.",
    pretty_exceptions_enable=False,
)
cache_app = typer.Typer(no_args_is_help=True, help="Show or empty the on-disk cache.")
app.add_typer(cache_app, name="cache")

stderr = Console(stderr=True, highlight=False)
T = TypeVar("T")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_size(text: str) -> int:
    """``"5MB"``, ``"500k"``, ``"1GiB"`` or a plain number of bytes."""
    m = _SIZE.match(text)
    if not m:
        raise errors.UsageError(f"--max-bytes {text!r} is not a size; use e.g. 5000000, 5MB, 1GB")
    unit = (m.group(2) or "").lower()
    factor = _UNITS[unit[:1]] if unit[:1] in _UNITS else 1
    if "i" in unit[1:2]:
        factor = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit[0]]
    return int(float(m.group(1)) * factor)


def exit_code_for(exc: BaseException) -> int:
    """Map an exception to the process exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]  # type: ignore[index]
    return EXIT_INTERNAL


def run_guarded(debug: bool, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn errors into one clear message on stderr and the mapped exit code."""
    try:
        return fn()
    except KeyboardInterrupt:
        stderr.print("[red]interrupted[/red]: no output written")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except errors.MixinferError as exc:
        if debug:
            traceback.print_exc()
        stderr.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(exit_code_for(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if debug:
            traceback.print_exc()
        stderr.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {exc}\n"
            f"This is a bug in mixinfer; run again with --debug and report the traceback.",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


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
        if not self.enabled:
            return
        task = self.tasks.get(event.stage)
        if task is None:
            label = self.LABELS.get(event.stage, event.stage)
            task = self.bars.add_task(label, total=event.total, detail="")
            self.tasks[event.stage] = task
        self.bars.update(task, completed=event.done, total=event.total, detail=event.detail)

    @contextmanager
    def running(self) -> Iterator[ProgressView]:
        if not self.enabled:
            yield self
            return
        with self.bars:
            yield self


def _bar(fraction: float, width: int = 30) -> str:
    full = max(0.0, min(1.0, fraction)) * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def render_table(result: InferenceResult, console: Console) -> None:
    """The human-readable result: one row per category, a bar, truth and error when known."""
    table = Table(title=f"Inferred training mixture of {result.tokenizer}", title_justify="left")
    table.add_column("category")
    table.add_column("proportion", justify="right")
    if result.truth is not None:
        table.add_column("truth", justify="right")
        table.add_column("error", justify="right")
    table.add_column("")
    for c in result.categories:
        p = result.proportions[c]
        row = [c, f"{100 * p:.2f}%"]
        if result.truth is not None:
            t = result.truth.get(c, 0.0)
            row += [f"{100 * t:.2f}%", f"{100 * (p - t):+.2f}"]
        row.append(_bar(p))
        table.add_row(*row)
    solver = result.solver
    lines = [
        f"merges used: {result.merges_used} of {result.merges_total}; pretokenizer: "
        f"{result.pretokenizer['name']}; unit: {result.unit}",
        f"solver: {solver['name']} {solver['status']} after {solver['rounds']} rounds, "
        f"{solver['constraints']} constraints, {solver['variables']} variables; "
        f"{result.timing.get('total', 0.0):.1f} s",
    ]
    if result.truth is not None:
        lines.append(f"log10 MSE against the truth ({result.truth_source}): {result.log10_mse:.2f}")
    console.print(table)
    for line in lines:
        console.print(line, soft_wrap=True)


def _emit(result: InferenceResult, output: Path | None, fmt: str, quiet: bool) -> None:
    for note in result.notes:
        if not quiet:
            stderr.print(f"[cyan]note:[/cyan] {note}", soft_wrap=True)
    for warning in result.warnings:
        stderr.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if output is not None:
        write_atomic(output, result.render(fmt))
        if not quiet:
            stderr.print(f"wrote {output}")
    elif fmt == "table":
        render_table(result, Console(highlight=False))
    else:
        sys.stdout.write(result.render(fmt))
        sys.stdout.flush()


@app.command("infer")
def infer_command(
    tokenizer: Annotated[
        str,
        typer.Argument(
            help="tokenizer.json; a directory with tokenizer.json or vocab.json+merges.txt; "
            "merges.txt; a .tiktoken file; tiktoken:NAME; or a Hugging Face Hub id ORG/NAME."
        ),
    ],
    samples: Annotated[
        Path | None,
        typer.Option("--samples", help="Directory with one sub-directory of text per category "
                     "[default: the bundled samples]."),
    ] = None,
    merges: Annotated[int, typer.Option("--merges", help="Leading merges to use.")] = DEFAULT_MERGES,
    max_bytes: Annotated[
        str, typer.Option("--max-bytes", help="Per-category byte budget, e.g. 5MB.")
    ] = str(DEFAULT_MAX_BYTES),
    solver: Annotated[
        str, typer.Option("--solver", help="auto | highs | cbc | pulp:NAME (any PuLP solver).")
    ] = "auto",
    pretokenizer: Annotated[
        str | None, typer.Option("--pretokenizer", help="Preset overriding the tokenizer's own.")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Seconds for the LP solver.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write JSON or CSV here.")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="table | json | csv [default: by extension].")
    ] = None,
    unit: Annotated[
        str, typer.Option("--unit", help="document | line: how text is cut before counting.")
    ] = "document",
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")] = False,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="JSON with the true mixture, for comparison.")
    ] = None,
    start_merge: Annotated[
        int, typer.Option("--start-merge", help="Build constraints from this merge on.")
    ] = 0,
    offline: Annotated[bool, typer.Option("--offline", help="Never use the network.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Infer what fraction of TOKENIZER's training bytes came from each sample category."""

    def run() -> None:
        out_fmt = format_for(output, fmt)
        budget = parse_size(max_bytes)
        view = ProgressView(enabled=not quiet)
        with view.running():
            result = infer(
                tokenizer, samples, merges=merges, max_bytes=budget, solver=solver,
                pretokenizer=pretokenizer, time_limit=time_limit, unit=unit,
                cache_dir=cache_dir, use_cache=not no_cache, truth=truth,
                start_merge=start_merge, offline=True if offline else None, progress=view,
            )
        _emit(result, output, out_fmt, quiet)

    run_guarded(debug, run)


@cache_app.command("info")
def cache_info(
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Show where the cache is and what it holds."""

    def run() -> None:
        info = Cache(cache_dir or default_cache_dir()).info()
        table = Table(title=f"cache: {info.directory}", title_justify="left")
        table.add_column("kind")
        table.add_column("entries", justify="right")
        table.add_column("size", justify="right")
        for kind in sorted(info.entries):
            table.add_row(kind, str(info.entries[kind]), f"{info.bytes[kind] / 1e6:.1f} MB")
        if not info.entries:
            table.add_row("(empty)", "0", "0.0 MB")
        Console(highlight=False).print(table)

    run_guarded(debug, run)


@cache_app.command("clear")
def cache_clear(
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Remove every cache entry."""

    def run() -> None:
        cache = Cache(cache_dir or default_cache_dir())
        removed = cache.clear()
        stderr.print(f"removed {removed} cache entries from {cache.directory}")

    run_guarded(debug, run)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``mixinfer`` command."""
    # Ctrl-C must raise KeyboardInterrupt in the main process even if a library reset it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return app(args=argv, prog_name="mixinfer")


if __name__ == "__main__":  # pragma: no cover
    main()
