"""The ``mixinfer`` command line: parse, call the library, render. Nothing else lives here.

Every option shared by several commands is declared once below (as sqlite-utils' option groups
are) and reused by each command's signature; values go into one :class:`~mixinfer.options.Options`,
which validates them. Errors become exit codes in :data:`EXIT_CODES` and nowhere else.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import rich.console
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mixinfer import __version__, errors
from mixinfer.cache import Cache, default_cache_dir
from mixinfer.options import (
    DEFAULT_ATTACK_BYTES,
    DEFAULT_MERGES,
    DEFAULT_TRAIN_BYTES,
    DEFAULT_VOCAB,
    MAX_BOOTSTRAP,
    NORMALIZE,
    SIMULATION_MERGES,
    UNITS,
    OptionError,
    Options,
    Runtime,
)
from mixinfer.pretokenizers import PRESETS
from mixinfer.report import InferenceResult, format_for, write_atomic
from mixinfer.tables import render_audit_table, render_simulation_table, render_table
from mixinfer.terminal import (
    ProgressView,
    Terminated,
    check_interrupted,
    install_interrupt_handlers,
    stderr,
)

if TYPE_CHECKING:
    from mixinfer.audit import AuditEntry

# The one place where errors become exit codes (documented in the README).
EXIT_CODES: dict[type[errors.MixinferError], int] = {
    errors.UsageError: 2,
    errors.TokenizerError: 3,
    errors.SamplesError: 4,
    errors.SolverError: 5,
    errors.CacheError: 6,
    errors.MissingDependencyError: 7,
    errors.WorkerError: 8,
}
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
# SIGTERM and SIGHUP stop a run as Ctrl-C does (clean-up included) and exit with 128 + the signal's
# number (143, 129), the shell's status of a process killed by it: see exit_code_for.
EXIT_SIGNAL_BASE = 128
# The reader of stdout went away (``| head``): what it read is all it wanted. As if killed by
# SIGPIPE, the shell convention (128 + 13), without a traceback.
EXIT_BROKEN_PIPE = 141

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Infer the training-data mixture of a BPE tokenizer from its merge list.",
    pretty_exceptions_enable=False,
)
cache_app = typer.Typer(no_args_is_help=True, help="Show or empty the on-disk cache.")
app.add_typer(cache_app, name="cache")
from mixinfer.sample_commands import samples_app  # noqa: E402 - registered beside cache_app

app.add_typer(samples_app, name="samples")

T = TypeVar("T")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_size(text: str, option: str = "--max-bytes") -> int:
    """``"5MB"``, ``"500k"``, ``"1GiB"`` or a plain number of bytes: at least one byte."""
    m = _SIZE.match(text)
    if not m:
        raise errors.UsageError(f"{option} {text!r} is not a size; use e.g. 5000000, 5MB, 1GB")
    unit = (m.group(2) or "").lower()
    factor = _UNITS.get(unit[:1], 1)
    if "i" in unit[1:2]:
        factor = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit[0]]
    size = int(float(m.group(1)) * factor)
    if size < 1:
        # Checked here, with the text given: "0.5" comes to 0 bytes, and "not 0" would not say why.
        raise errors.UsageError(f"{option} must be a positive number of bytes, not {text!r}; use e.g. 5MB")
    return size


def flag(option: str) -> str:
    """The command-line flag of an :class:`Options` field (``max_bytes`` -> ``--max-bytes``)."""
    return "--" + option.replace("_", "-")


def exit_code_for(exc: BaseException) -> int:
    """Map an exception to the process exit code."""
    if isinstance(exc, Terminated):
        return EXIT_SIGNAL_BASE + exc.signum
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_INTERNAL


def message_for(exc: errors.MixinferError) -> str:
    """The user's message for a library error (option names become flags)."""
    if isinstance(exc, OptionError):
        return f"{flag(exc.option)} {exc.problem}"
    return str(exc)


def run_guarded(debug: bool, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn errors into one clear message on stderr and the mapped exit code."""
    try:
        return fn()
    except KeyboardInterrupt as exc:
        what = f"terminated ({exc.name})" if isinstance(exc, Terminated) else "interrupted"
        # After SIGHUP the terminal may be gone: the message is a courtesy, the exit code is not.
        with contextlib.suppress(OSError):
            stderr.print(f"[red]{what}[/red]: no output written")
        raise typer.Exit(exit_code_for(exc)) from None
    except BrokenPipeError:
        raise typer.Exit(EXIT_BROKEN_PIPE) from None
    except errors.MixinferError as exc:
        if debug:
            traceback.print_exc()
        stderr.print(f"[red]error:[/red] {escape(message_for(exc))}", markup=True, soft_wrap=True)
        raise typer.Exit(exit_code_for(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence for the user
        if debug:
            traceback.print_exc()
        stderr.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}\n"
            f"This is a bug in mixinfer; run again with --debug and report the traceback.",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


# -- output paths ----------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    output: str | os.PathLike[str] | None,
    *,
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    folders: Iterable[str | os.PathLike[str] | None] = (),
    example: str = "result.json",
) -> Path | None:
    """Refuse, before any work, an output path that cannot or must not be written.

    ``-o ''``, an existing directory, a path under a file, any of the
    ``inputs`` (the tokenizer, its base, the truth file...), or what the samples ``folders`` read
    (a samples folder or a manifest and the local paths it names: a result written inside them
    would be read as a sample next time, one written over a manifest would destroy it) are usage
    errors.
    """
    if output is None:
        return None
    text = os.fspath(output)
    if not text.strip():
        raise errors.UsageError(f"--output is empty; give a file name such as {example}")
    path = Path(text)
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long for the file system, a loop of links...
        raise errors.UsageError(f"--output {text} cannot be used ({exc.strerror})") from None
    if is_dir:
        raise errors.UsageError(f"--output {text} is a directory; give a file name such as {path / example}")
    # Missing folders are created when writing; an existing ancestor must be a folder.
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise errors.UsageError(f"--output {text}: {ancestor} is a file, not a folder")
    from mixinfer.sources.manifest import folder_holding, local_inputs

    # The samples are inputs too: a manifest file, and every local path it names.
    read_files: list[str | os.PathLike[str]] = [given for given in inputs if given is not None]
    read_folders: list[Path] = []
    for folder in folders:
        files, dirs = local_inputs(folder)
        read_files += files
        read_folders += dirs
    for given in read_files:
        if _same_file(path, Path(given)):
            raise errors.UsageError(
                f"--output {text} is an input of this run ({os.fspath(given)}); writing it would "
                "destroy the input: choose another file name"
            )
    folder = folder_holding(path, read_folders)
    if folder is not None:
        raise errors.UsageError(
            f"--output {text} is inside the samples folder {os.fspath(folder)}; it would be read as "
            "a sample next time: write it elsewhere"
        )
    return path


# -- shared options: each declared once ---------------------------------------------------------------

TokenizerArg = Annotated[
    str | None,
    typer.Argument(
        help="tokenizer.json; a directory with tokenizer.json or vocab.json+merges.txt; merges.txt; "
        "a tiktoken ranks file; tiktoken:NAME; or a Hugging Face Hub id ORG/NAME. "
        "Default: the bundled demo tokenizer.",
        show_default=False,
    ),
]
SamplesOpt = Annotated[
    str | None,
    typer.Option(
        "--samples",
        help="Directory with one sub-directory of text per category, a manifest "
        "(.yaml/.yml/.json/.toml) or an fsspec URL of such a directory.",
        show_default="the bundled samples",
    ),
]
DaskOpt = Annotated[
    str | None,
    typer.Option(
        "--dask",
        help="Count and replay on a Dask cluster: a scheduler address (tcp://HOST:8786) or 'local'.",
        show_default="this machine's processes",
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Parallel workers.", show_default="all cores")
]
MergesOpt = Annotated[int, typer.Option("--merges", help="Leading merges to use (T).")]
MaxBytesOpt = Annotated[
    str | None,
    typer.Option(
        "--max-bytes", help="Per-category byte budget, e.g. 5MB.", show_default="1GB: all of a smaller sample"
    ),
]
SolverOpt = Annotated[str, typer.Option("--solver", help="auto | highs | cbc | pulp:NAME (any PuLP solver).")]
TimeLimitOpt = Annotated[
    float | None, typer.Option("--time-limit", help="Seconds for each LP.", show_default="none")
]
UnitOpt = Annotated[
    str, typer.Option("--unit", help=f"{' | '.join(UNITS)}: how text is cut before counting.")
]
NormalizeOpt = Annotated[
    str,
    typer.Option(
        "--normalize",
        help=f"{' | '.join(NORMALIZE)}: the unit of each category's counts in the LP (pairs: less "
        "weight soaked up by multi-byte scripts in SentencePiece tokenizers; bytes: the paper's).",
    ),
]
PretokenizerOpt = Annotated[
    str | None,
    typer.Option(
        "--pretokenizer",
        help=f"Preset overriding the tokenizer's own: {', '.join(PRESETS)}.",
        show_default="the tokenizer's own",
    ),
]
NoCleanOpt = Annotated[bool, typer.Option("--no-clean", help="Use merge lists as loaded, without cleaning.")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never use the network.")]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option("--cache-dir", help="Cache directory.", show_default=str(default_cache_dir())),
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the on-disk cache.")]
BootstrapOpt = Annotated[
    int,
    typer.Option(
        "--bootstrap",
        help=f"Bootstrap replicates over documents, for intervals (0: none; at most {MAX_BOOTSTRAP:,}).",
    ),
]
ConfidenceOpt = Annotated[float, typer.Option("--confidence", help="Coverage of the bootstrap intervals.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")]
EstimatorOpt = Annotated[
    str,
    typer.Option(
        "--estimator",
        help="How the mixture is read off the merges: lp (the paper's exact LP) or a variant for "
        "mismatched samples (see mixinfer.estimators and BENCHMARKS.md).",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr unless it fails.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]
GroupsOpt = Annotated[
    Path | None,
    typer.Option(
        "--groups",
        help="Category -> group mapping (.yaml, .json or .csv).",
        show_default="English, Code, Latin/Cyrillic, Other languages",
    ),
]


def make_options(**values: Any) -> Options:
    """One :class:`Options` from command-line values (sizes parsed; flags' spelling kept)."""
    size = values.pop("max_bytes", None)
    if size is not None:
        values["max_bytes"] = parse_size(size)
    if values.pop("no_clean", False):
        values["clean"] = False
    if values.get("offline") is False:
        values["offline"] = None  # not given: follow HF_HUB_OFFLINE
    return Options(**values)


def make_runtime(
    cache_dir: Path | None,
    no_cache: bool,
    view: ProgressView,
    *,
    workers: int | None = None,
    dask: str | None = None,
    offline: bool = False,
) -> Runtime:
    """The runtime of a command: its cache, its executor and its progress bars."""
    if offline:
        from mixinfer.sources.remote import request_offline

        # The sample sources read MIXINFER_OFFLINE (HF_HUB_OFFLINE too); this process is the CLI's own.
        request_offline()
    return Runtime.create(
        cache_dir=cache_dir, use_cache=not no_cache, progress=view, workers=workers, dask=dask
    )


def say(quiet: bool, text: str) -> None:
    """A message on stderr, unless ``--quiet``."""
    if not quiet:
        stderr.print(text, soft_wrap=True)


def write_stdout(text: str) -> None:
    """Machine-readable output on stdout (nothing else ever goes there)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mixinfer {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Infer the training-data mixture of a BPE tokenizer from its merge list."""


# -- commands -------------------------------------------------------------------------------------------


def _default_tokenizer() -> str:
    from mixinfer import samples

    demo = getattr(samples, "bundled_demo_tokenizer", None)
    path = demo() if demo is not None else samples.bundled_samples_dir().parent / "demo" / "tokenizer.json"
    return os.fspath(path)


def emit_result(result: InferenceResult, output: Path | None, fmt: str, quiet: bool) -> None:
    """Notes and warnings to stderr; the result to ``output`` or stdout."""
    for note in result.notes:
        say(quiet, f"[cyan]note:[/cyan] {escape(note)}")
    for warning in result.warnings:
        say(quiet, f"[yellow]warning:[/yellow] {escape(warning)}")
    if output is not None:
        write_atomic(output, result.render(fmt))
        say(quiet, f"wrote {escape(str(output))}")
    elif fmt == "table":
        render_table(result, Console(highlight=False), warnings=quiet)
    else:
        write_stdout(result.render(fmt))


@app.command("infer")
def infer_command(
    tokenizer: TokenizerArg = None,
    samples: SamplesOpt = None,
    merges: MergesOpt = DEFAULT_MERGES,
    max_bytes: MaxBytesOpt = None,
    solver: SolverOpt = "auto",
    pretokenizer: PretokenizerOpt = None,
    time_limit: TimeLimitOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write JSON or CSV here (- for stdout, JSON by default).",
            show_default="stdout",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="table | json | csv.", show_default="by extension, else table"),
    ] = None,
    unit: UnitOpt = "document",
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", help="JSON with the true mixture.", show_default="truth.json beside TOKENIZER"
        ),
    ] = None,
    start_merge: Annotated[
        int, typer.Option("--start-merge", help="Build constraints from this merge on.")
    ] = 0,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Tokenizer that TOKENIZER extends: infer from the merges after their shared prefix.",
        ),
    ] = None,
    no_clean: NoCleanOpt = False,
    normalize: NormalizeOpt = "pairs",
    offline: OfflineOpt = False,
    dask: DaskOpt = None,
    workers: WorkersOpt = None,
    bootstrap: BootstrapOpt = 0,
    confidence: ConfidenceOpt = 0.9,
    seed: SeedOpt = 0,
    estimator: EstimatorOpt = "lp",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Infer what fraction of TOKENIZER's training bytes came from each sample category."""

    def run() -> None:
        from mixinfer.pipeline import run as run_pipeline

        source = tokenizer if tokenizer is not None else _default_tokenizer()
        options = make_options(
            merges=merges,
            max_bytes=max_bytes,
            solver=solver,
            pretokenizer=pretokenizer,
            time_limit=time_limit,
            unit=unit,
            start_merge=start_merge,
            no_clean=no_clean,
            normalize=normalize,
            offline=offline,
            bootstrap=bootstrap,
            confidence=confidence,
            seed=seed,
            estimator=estimator,
        )
        to_stdout = output is not None and os.fspath(output) == "-"  # as audit's `-o -`
        written = None if to_stdout else output
        target = check_output(written, inputs=[source, base, truth], folders=[samples])
        out_fmt = format_for(written, fmt or ("json" if to_stdout else None))
        view = ProgressView(enabled=not quiet)
        runtime = make_runtime(cache_dir, no_cache, view, workers=workers, dask=dask, offline=offline)
        with view.running(), runtime:
            result = run_pipeline(source, samples, options, runtime, truth=truth, base=base)
        check_interrupted()
        emit_result(result, target, out_fmt, quiet)

    run_guarded(debug, run)


@cache_app.command("info")
def cache_info(cache_dir: CacheDirOpt = None, debug: DebugOpt = False) -> None:
    """Show where the cache is and what it holds."""

    def run() -> None:
        info = Cache(cache_dir or default_cache_dir()).info()
        table = Table(title=f"cache: {escape(str(info.directory))}", title_justify="left")
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
def cache_clear(cache_dir: CacheDirOpt = None, quiet: QuietOpt = False, debug: DebugOpt = False) -> None:
    """Remove every cache entry (only files the cache wrote)."""

    def run() -> None:
        cache = Cache(cache_dir or default_cache_dir())
        removed = cache.clear()
        say(quiet, f"removed {removed} cache entries from {escape(str(cache.directory))}")

    run_guarded(debug, run)


def _report_format(output: str | None, fmt: str | None, *, default: str = "csv", option: bool = True) -> str:
    """The format of a report: ``fmt``, else ``output``'s extension, else ``default`` (for
    stdout, ``-``). ``option``: whether the command has ``--format`` (for the message)."""
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise errors.UsageError(f"unknown --format {fmt!r}; use csv or json")
        return fmt
    if output is None or output == "-":
        return default
    suffix = Path(output).suffix.lower()
    if suffix in (".csv", ".json"):
        return suffix[1:]
    raise errors.UsageError(
        f"cannot tell the format of --output {output} from its extension; use .csv or .json"
        + (", or pass --format csv|json" if option else "")
    )


@app.command("audit")
def audit_command(
    tokenizers: Annotated[
        list[str], typer.Argument(help="Tokenizers to audit (any source `infer` accepts).")
    ],
    samples: SamplesOpt = None,
    merges: MergesOpt = DEFAULT_MERGES,
    groups: GroupsOpt = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the report here (.csv or .json; - for stdout).",
            show_default="a table on stdout",
        ),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv | json.", show_default="by extension")
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="CSV with one row per tokenizer (columns: --by).")
    ] = False,
    by: Annotated[str, typer.Option("--by", help="Columns of --wide: category | group.")] = "category",
    max_bytes: MaxBytesOpt = None,
    solver: SolverOpt = "auto",
    time_limit: TimeLimitOpt = None,
    unit: UnitOpt = "document",
    no_clean: NoCleanOpt = False,
    normalize: NormalizeOpt = "pairs",
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    offline: OfflineOpt = False,
    dask: DaskOpt = None,
    workers: WorkersOpt = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="LPs solved at once, one process each (the LP is most of an audit's time); 1 "
            "solves them one by one, holding one tokenizer's traces at a time.",
            show_default="--workers",
        ),
    ] = None,
    bootstrap: BootstrapOpt = 0,
    confidence: ConfidenceOpt = 0.9,
    seed: SeedOpt = 0,
    estimator: EstimatorOpt = "lp",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Infer the mixtures of several tokenizers over the same categories; write a CSV report.

    A tokenizer that fails is reported and skipped; the report holds the others, and the exit
    status is non-zero (that of the first failure) when any failed.
    """

    def run() -> int:
        from mixinfer.audit import TokenizerSpec, audit

        options = make_options(
            merges=merges,
            max_bytes=max_bytes,
            solver=solver,
            time_limit=time_limit,
            unit=unit,
            no_clean=no_clean,
            normalize=normalize,
            offline=offline,
            bootstrap=bootstrap,
            confidence=confidence,
            seed=seed,
            estimator=estimator,
        )
        # --format (or --wide, a CSV shape) without --output means that format on stdout (as infer
        # does), never the table.
        output_to = "-" if output is None and (fmt is not None or wide) else output
        out_fmt = _report_format(output_to, fmt)
        if by not in ("category", "group"):
            raise errors.UsageError(f"unknown --by {by!r}; use category or group")
        # Refused, not ignored: a report without what was asked for would look like one with it.
        if wide and out_fmt == "json":
            raise errors.UsageError(
                "--wide shapes the CSV report; the JSON report has every tokenizer's full result"
            )
        if by != "category" and not wide:
            raise errors.UsageError(
                f"--by {by} chooses the columns of --wide; add --wide (or leave out --by)"
            )
        to_file = output_to is not None and output_to != "-"
        if to_file:
            specs = [TokenizerSpec.parse(t) for t in tokenizers]
            sources = [x for s in specs for x in (s.source, s.base) if isinstance(x, str | os.PathLike)]
            check_output(output_to, inputs=[*sources, groups], folders=[samples], example="report.csv")
        view = ProgressView(enabled=not quiet)

        def report_entry(entry: AuditEntry) -> None:
            if entry.result is None:
                stderr.print(
                    f"[red]failed:[/red] {escape(entry.label)}: {escape(entry.error or '')}", soft_wrap=True
                )
                return
            say(
                quiet,
                f"[green]done:[/green] {escape(entry.label)} in {entry.seconds:.0f} s "
                f"({entry.result.merges_used} merges, solver {entry.result.solver['status']})",
            )
            for warning in entry.result.warnings:
                say(quiet, f"[yellow]warning:[/yellow] {escape(entry.label)}: {escape(warning)}")

        if offline:
            from mixinfer.sources.remote import request_offline

            request_offline()  # for the sample sources, as make_runtime does
        with view.running():
            result = audit(
                tokenizers,
                samples,
                options=options,
                groups=groups,
                cache_dir=cache_dir,
                use_cache=not no_cache,
                workers=workers,
                dask=dask,
                jobs=jobs,
                progress=view,
                on_entry=report_entry,
            )
        check_interrupted()
        for note in result.notes:
            say(quiet, f"[cyan]note:[/cyan] {escape(note)}")
        text = result.render(out_fmt, wide=wide, by=by)
        if output_to == "-":
            write_stdout(text)
        elif to_file and result.succeeded:
            assert output_to is not None
            write_atomic(output_to, text)
        if output_to is None:
            render_audit_table(result, Console(highlight=False))
        elif not quiet:
            render_audit_table(result, stderr)
        failed = result.failed
        if failed:
            names = ", ".join(e.label for e in failed)
            where = ""
            if to_file:
                where = (
                    f"; {output_to} holds the other {len(result.succeeded)}"
                    if result.succeeded
                    else (f"; nothing was written to {output_to}")
                )
            stderr.print(
                f"[red]error:[/red] {len(failed)} of {len(result.entries)} tokenizer(s) failed "
                f"({escape(names)}){escape(where)}",
                soft_wrap=True,
            )
            first = failed[0].exception
            return exit_code_for(first) if first is not None else EXIT_INTERNAL
        if to_file:
            say(quiet, f"wrote {escape(str(output_to))}")
        return 0

    code = run_guarded(debug, run)
    if code:
        raise typer.Exit(code)


@app.command("plot")
def plot_command(
    report: Annotated[Path, typer.Argument(help="An audit CSV (long or --wide).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Picture to write: .png, .svg or .pdf.")],
    by: Annotated[str, typer.Option("--by", help="Bars split by group | category.")] = "group",
    groups: GroupsOpt = None,
    vertical: Annotated[
        bool, typer.Option("--vertical", help="Vertical bars (default: horizontal).")
    ] = False,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Draw an audit report as stacked bars of group (or category) proportions per tokenizer."""

    def run() -> None:
        from mixinfer.plot import plot_report

        check_output(output, inputs=[report, groups], example="mixtures.png")
        orientation = "vertical" if vertical else "horizontal"
        path = plot_report(report, output, by=by, groups=groups, title=title, orientation=orientation)
        say(quiet, f"wrote {escape(str(path))}")

    run_guarded(debug, run)


def read_diagnostics(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(label, diagnostics)`` of a saved ``infer`` result, or of each tokenizer of an audit."""
    from mixinfer.sources import open_regular_file

    try:
        if path.is_dir():
            raise errors.UsageError(
                f"{path} is a directory; give a file written by 'mixinfer infer -o result.json' or "
                "'mixinfer audit -o report.json'"
            )
        with open_regular_file(path) as fh:
            data = json.loads(fh.read(64 << 20).decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, errors.SamplesError) as exc:
        if isinstance(exc, errors.SamplesError):  # a FIFO or a device: never read
            reason: object = "not a regular file"
        else:
            reason = exc.strerror or exc if isinstance(exc, OSError) else exc
        raise errors.UsageError(
            f"{path}: cannot read a JSON result ({reason}); give a file written by "
            "'mixinfer infer -o result.json' or 'mixinfer audit -o report.json'"
        ) from exc
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(data, dict) and isinstance(data.get("diagnostics"), dict):
        found.append((str(data.get("tokenizer", path)), data["diagnostics"]))
    elif isinstance(data, dict) and isinstance(data.get("tokenizers"), list):
        for entry in data["tokenizers"]:
            result = entry.get("result") if isinstance(entry, dict) else None
            if isinstance(result, dict) and isinstance(result.get("diagnostics"), dict):
                found.append((str(entry.get("label")), result["diagnostics"]))
    if not found:
        raise errors.UsageError(
            f"{path} holds no diagnostics; results written by this version of 'mixinfer infer -o "
            "result.json' (or audit -o report.json) have them"
        )
    return found


@app.command("explain")
def explain_command(
    result: Annotated[Path, typer.Argument(help="A JSON result of infer (or an audit's JSON report).")],
    debug: DebugOpt = False,
) -> None:
    """Show why the samples do not fully explain a tokenizer: the diagnostics of a saved result."""

    def run() -> None:
        from mixinfer.tables import render_explanation

        found = read_diagnostics(result)
        # Drawn once into a buffer first: a hand-edited file with a field missing or of the wrong
        # type is then a usage error before any line reaches stdout, not a half-printed table.
        for label, diagnostics in found:
            try:
                render_explanation(label, diagnostics, Console(file=io.StringIO(), width=120))
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                what = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise errors.UsageError(
                    f"{result}: the diagnostics of {label!r} are not as mixinfer writes them (a field "
                    f"is missing or of the wrong type: {what}); give a result written by 'mixinfer "
                    "infer -o result.json', unedited"
                ) from exc
        console = Console(highlight=False)
        for label, diagnostics in found:
            render_explanation(label, diagnostics, console)

    run_guarded(debug, run)


def _names(option: str, text: str | None) -> list[str]:
    names = [] if text is None else [t.strip() for t in text.split(",") if t.strip()]
    if text is not None and not names:
        raise errors.UsageError(f"{option} is empty; give comma-separated names")
    return names


@app.command("simulate")
def simulate_command(
    n: Annotated[int, typer.Option("--n", help="Categories per simulated mixture.")],
    trials: Annotated[int, typer.Option("--trials", help="Mixtures (tokenizers) to train and attack.")] = 5,
    samples: SamplesOpt = None,
    train_bytes: Annotated[
        str, typer.Option("--train-bytes", help="Training text per tokenizer, e.g. 30MB.")
    ] = str(DEFAULT_TRAIN_BYTES),
    attack_bytes: Annotated[
        str, typer.Option("--attack-bytes", help="Cap on each category's attack sample.")
    ] = str(DEFAULT_ATTACK_BYTES),
    vocab: Annotated[
        int, typer.Option("--vocab", help="Vocabulary size of the trained tokenizers.")
    ] = DEFAULT_VOCAB,
    merges: Annotated[
        int, typer.Option("--merges", help="Leading merges the LP uses (T).")
    ] = SIMULATION_MERGES,
    baseline_merges: Annotated[
        int | None,
        typer.Option(
            "--baseline-merges", help="Leading merges TEE and TC use.", show_default="the whole vocabulary"
        ),
    ] = None,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated: lp, tee, tc, random.")
    ] = "lp,tee,tc,random",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mixture draws.")] = 0,
    unit: UnitOpt = "document",
    categories: Annotated[
        str | None,
        typer.Option("--categories", help="Comma-separated categories to draw from.", show_default="all"),
    ] = None,
    exclude: Annotated[
        str | None, typer.Option("--exclude", help="Comma-separated categories to leave out.")
    ] = None,
    solver: SolverOpt = "auto",
    time_limit: TimeLimitOpt = None,
    bootstrap: BootstrapOpt = 0,
    confidence: ConfidenceOpt = 0.9,
    estimator: EstimatorOpt = "lp",
    attack_samples: Annotated[
        str | None,
        typer.Option(
            "--attack-samples",
            help="Attack with these samples (same category names) instead of the held-out half of "
            "--samples: the shift benchmark (scripts/shift_samples.py builds one).",
            show_default="the other half of --samples",
        ),
    ] = None,
    distractors: Annotated[
        int,
        typer.Option(
            "--distractors",
            help="Also offer this many categories outside each mixture (true share 0), as a real "
            "audit offers categories the tokenizer never saw.",
        ),
    ] = 0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write one row per trial and method (.csv or .json; - for JSON on stdout).",
            show_default="a table on stdout",
        ),
    ] = None,
    cache_dir: CacheDirOpt = None,
    no_cache: NoCacheOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Train tokenizers on known random mixtures; score how LP, TEE, TC and random recover them."""

    def run() -> None:
        from mixinfer.simulate import SimulationSettings, simulate

        out_fmt = (
            _report_format(str(output), None, default="json", option=False) if output is not None else None
        )
        to_stdout = output is not None and str(output) == "-"
        settings = SimulationSettings(
            n=n,
            trials=trials,
            train_bytes=parse_size(train_bytes, "--train-bytes"),
            attack_bytes=parse_size(attack_bytes, "--attack-bytes"),
            vocab=vocab,
            merges=merges,
            baseline_merges=baseline_merges,
            methods=tuple(_names("--methods", methods)),
            seed=seed,
            unit=unit,
            solver=solver,
            time_limit=time_limit,
            bootstrap=bootstrap,
            confidence=confidence,
            estimator=estimator,
            distractors=distractors,
        )
        target = None if to_stdout else check_output(output, folders=[samples, attack_samples])
        view = ProgressView(enabled=not quiet)
        with view.running():
            result = simulate(
                samples,
                settings,
                attack_samples=attack_samples,
                categories=_names("--categories", categories) or None,
                exclude=_names("--exclude", exclude),
                cache_dir=cache_dir,
                use_cache=not no_cache,
                progress=view,
            )
        check_interrupted()
        for note in result.notes:
            say(quiet, f"[cyan]note:[/cyan] {escape(note)}")
        for warning in result.warnings:
            say(quiet, f"[yellow]warning:[/yellow] {escape(warning)}")
        if out_fmt is not None and (target is not None or to_stdout):
            if target is not None:
                write_atomic(target, result.render(out_fmt))
            else:
                write_stdout(result.render(out_fmt))
            if not quiet:
                render_simulation_table(result, stderr)
            if target is not None:
                say(quiet, f"wrote {escape(str(target))}")
        else:
            render_simulation_table(result, Console(highlight=False))

    run_guarded(debug, run)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``mixinfer`` command."""
    install_interrupt_handlers()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # rich answers a closed stdout (`mixinfer ... | head -1`) with exit 1, in our tables and in
    # typer's help alike; the documented code is 141, as for the JSON and CSV written directly.
    rich.console.Console.on_broken_pipe = _on_broken_pipe  # type: ignore[method-assign,assignment]
    try:
        return app(args=argv, prog_name="mixinfer")
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            # Python flushes stdout at exit too; point it at /dev/null so that flush is quiet.
            _silence_stdout()
            os._exit(EXIT_BROKEN_PIPE)
        except OSError as exc:  # e.g. ENOSPC on a redirected stdout
            if exc.errno != errno.EPIPE:
                raise


def _on_broken_pipe(console: rich.console.Console) -> None:
    console.quiet = True
    _silence_stdout()
    raise SystemExit(EXIT_BROKEN_PIPE)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    main()
