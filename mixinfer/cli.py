"""The ``mixinfer`` command line: parse, call the library, render. Nothing else lives here."""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mixinfer import errors
from mixinfer.cache import Cache, default_cache_dir
from mixinfer.cleaning import CleaningReport
from mixinfer.pipeline import DEFAULT_MERGES, infer
from mixinfer.report import InferenceResult, format_for, write_atomic
from mixinfer.samples import DEFAULT_MAX_BYTES
from mixinfer.terminal import ProgressView, check_interrupted, install_interrupt_handlers, stderr

if TYPE_CHECKING:
    from mixinfer.audit import AuditEntry, AuditResult
    from mixinfer.simulate import SimulationResult

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

T = TypeVar("T")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


def parse_size(text: str) -> int:
    """``"5MB"``, ``"500k"``, ``"1GiB"`` or a plain number of bytes."""
    m = _SIZE.match(text)
    if not m:
        raise errors.UsageError(f"--max-bytes {text!r} is not a size; use e.g. 5000000, 5MB, 1GB")
    unit = (m.group(2) or "").lower()
    factor = _UNITS.get(unit[:1], 1)
    if "i" in unit[1:2]:
        factor = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit[0]]
    return int(float(m.group(1)) * factor)


def exit_code_for(exc: BaseException) -> int:
    """Map an exception to the process exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
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
        stderr.print(f"[red]error:[/red] {escape(str(exc))}", markup=True, soft_wrap=True)
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


def _bar(fraction: float, width: int = 30) -> str:
    full = max(0.0, min(1.0, fraction)) * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def render_table(result: InferenceResult, console: Console) -> None:
    """The human-readable result: one row per category, a bar, truth and error when known."""
    table = Table(title=f"Inferred training mixture of {escape(result.tokenizer)}", title_justify="left")
    table.add_column("category")
    table.add_column("proportion", justify="right")
    if result.truth is not None:
        table.add_column("truth", justify="right")
        table.add_column("error", justify="right")
    table.add_column("")
    for c in result.categories:
        p = result.proportions[c]
        row = [escape(c), f"{100 * p:.2f}%"]
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
    if result.cleaning is not None:
        lines.append(CleaningReport.from_dict(result.cleaning).summary())
    if result.base is not None:
        lines.append(
            f"base: {escape(str(result.base['source']))}; shared merge prefix: "
            f"{result.base['shared_prefix']} "
            f"merges (constraints from merge {result.start_merge} on)"
        )
    elif result.start_merge:
        lines.append(f"constraints from merge {result.start_merge} on (--start-merge)")
    if result.truth is not None:
        lines.append(f"log10 MSE against the truth ({result.truth_source}): {result.log10_mse:.2f}")
    console.print(table)
    for line in lines:
        console.print(line, soft_wrap=True, markup=False)


def _emit(result: InferenceResult, output: Path | None, fmt: str, quiet: bool) -> None:
    for note in result.notes:
        if not quiet:
            stderr.print(f"[cyan]note:[/cyan] {escape(note)}", soft_wrap=True)
    for warning in result.warnings:
        stderr.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if output is not None:
        write_atomic(output, result.render(fmt))
        if not quiet:
            stderr.print(f"wrote {escape(str(output))}")
    elif fmt == "table":
        render_table(result, Console(highlight=False))
    else:
        sys.stdout.write(result.render(fmt))
        sys.stdout.flush()


# Shared by infer and audit.
NormalizeOption = Annotated[
    str,
    typer.Option(
        "--normalize",
        help="pairs | bytes: the unit of each category's counts in the LP (pairs: less weight "
        "soaked up by multi-byte scripts in SentencePiece tokenizers; bytes: the paper's).",
    ),
]


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
        typer.Option(
            "--samples",
            help="Directory with one sub-directory of text per category [default: the bundled samples].",
        ),
    ] = None,
    merges: Annotated[int, typer.Option("--merges", help="Leading merges to use.")] = DEFAULT_MERGES,
    max_bytes: Annotated[str, typer.Option("--max-bytes", help="Per-category byte budget, e.g. 5MB.")] = str(
        DEFAULT_MAX_BYTES
    ),
    solver: Annotated[
        str, typer.Option("--solver", help="auto | highs | cbc | pulp:NAME (any PuLP solver).")
    ] = "auto",
    pretokenizer: Annotated[
        str | None, typer.Option("--pretokenizer", help="Preset overriding the tokenizer's own.")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Seconds for the LP solver.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write JSON or CSV here.")] = None,
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
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Tokenizer that TOKENIZER extends: infer from the merges after their shared prefix only.",
        ),
    ] = None,
    no_clean: Annotated[
        bool, typer.Option("--no-clean", help="Use the merge list as loaded, without cleaning.")
    ] = False,
    normalize: NormalizeOption = "pairs",
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
                tokenizer,
                samples,
                merges=merges,
                max_bytes=budget,
                solver=solver,
                pretokenizer=pretokenizer,
                time_limit=time_limit,
                unit=unit,
                cache_dir=cache_dir,
                use_cache=not no_cache,
                truth=truth,
                start_merge=start_merge,
                offline=True if offline else None,
                progress=view,
                clean=not no_clean,
                base=base,
                normalize=normalize,
            )
        check_interrupted()
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
def cache_clear(
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Remove every cache entry."""

    def run() -> None:
        cache = Cache(cache_dir or default_cache_dir())
        removed = cache.clear()
        stderr.print(f"removed {removed} cache entries from {escape(str(cache.directory))}")

    run_guarded(debug, run)


def _audit_format(output: str | None, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("csv", "json"):
            raise errors.UsageError(f"unknown --format {fmt!r}; use csv or json")
        return fmt
    if output is None or output == "-":
        return "csv"
    suffix = Path(output).suffix.lower()
    if suffix in (".csv", ".json"):
        return suffix[1:]
    raise errors.UsageError(
        f"cannot tell the format of --output {output} from its extension; use .csv or .json, "
        "or pass --format csv|json"
    )


def render_audit_table(result: AuditResult, console: Console) -> None:
    """The human-readable audit: one row per tokenizer, one column per group, status and time."""
    groups = result.group_names
    table = Table(
        title=f"Inferred training mixtures ({len(result.categories)} categories, "
        f"{len(groups)} groups, up to {result.merges} merges)",
        title_justify="left",
    )
    table.add_column("tokenizer")
    for g in groups:
        table.add_column(escape(g), justify="right")
    table.add_column("merges", justify="right")
    table.add_column("cleaning", justify="right")
    table.add_column("time", justify="right")
    by_group = result.proportions("group")
    for e in result.entries:
        if e.result is None:
            table.add_row(
                escape(e.label),
                *(["-"] * len(groups)),
                "-",
                "-",
                f"{e.seconds:.0f} s",
                style="red",
            )
            continue
        props = by_group[e.label]
        cleaning = e.result.cleaning or {}
        removed = cleaning.get("merges_before", 0) - cleaning.get("merges_after", 0)
        table.add_row(
            escape(e.label),
            *(f"{100 * props[g]:.1f}%" for g in groups),
            str(e.result.merges_used),
            f"-{removed}" if cleaning.get("enabled") else "off",
            f"{e.seconds:.0f} s",
        )
    console.print(table)
    for g in groups:
        members = [c for c in result.categories if result.groups[c] == g]
        console.print(f"{escape(g)}: {escape(', '.join(members))}", soft_wrap=True)
    console.print(f"total: {result.timing.get('total', 0.0):.0f} s", soft_wrap=True)


@app.command("audit")
def audit_command(
    tokenizers: Annotated[
        list[str], typer.Argument(help="Tokenizers to audit (any source `infer` accepts).")
    ],
    samples: Annotated[
        Path | None,
        typer.Option(
            "--samples",
            help="Directory with one sub-directory of text per category (default: the bundled samples).",
        ),
    ] = None,
    merges: Annotated[
        int, typer.Option("--merges", help="Leading merges to use per tokenizer.")
    ] = DEFAULT_MERGES,
    groups: Annotated[
        Path | None,
        typer.Option(
            "--groups",
            help="Category -> group mapping (.yaml, .json or .csv) "
            "(default: English, Code, Latin/Cyrillic, Other languages).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the report here (.csv or .json; - for "
            "stdout). Without it the summary table goes to stdout.",
        ),
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv | json (default: by extension).")] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="CSV with one row per tokenizer (columns: --by).")
    ] = False,
    by: Annotated[str, typer.Option("--by", help="Columns of --wide: category | group.")] = "category",
    max_bytes: Annotated[str, typer.Option("--max-bytes", help="Per-category byte budget, e.g. 5MB.")] = str(
        DEFAULT_MAX_BYTES
    ),
    solver: Annotated[
        str, typer.Option("--solver", help="auto | highs | cbc | pulp:NAME (any PuLP solver).")
    ] = "auto",
    time_limit: Annotated[
        float | None,
        typer.Option("--time-limit", help="Seconds for each tokenizer's LP solver."),
    ] = None,
    unit: Annotated[
        str, typer.Option("--unit", help="document | line: how text is cut before counting.")
    ] = "document",
    no_clean: Annotated[
        bool, typer.Option("--no-clean", help="Use merge lists as loaded, without cleaning.")
    ] = False,
    normalize: NormalizeOption = "pairs",
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write the on-disk cache.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Never use the network.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, notes or summary.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Infer the mixtures of several tokenizers over the same categories; write a CSV report.

    A tokenizer that fails is reported and skipped; the report holds the others, and the exit
    status is non-zero (that of the first failure) when any failed.
    """

    def run() -> int:
        from mixinfer.audit import audit

        out_fmt = _audit_format(output, fmt)
        if by not in ("category", "group"):
            raise errors.UsageError(f"unknown --by {by!r}; use category or group")
        budget = parse_size(max_bytes)
        view = ProgressView(enabled=not quiet)

        def report_entry(entry: AuditEntry) -> None:
            if entry.result is None:
                stderr.print(
                    f"[red]failed:[/red] {escape(entry.label)}: {escape(entry.error or '')}",
                    soft_wrap=True,
                )
            elif not quiet:
                stderr.print(
                    f"[green]done:[/green] {escape(entry.label)} in {entry.seconds:.0f} s "
                    f"({entry.result.merges_used} merges, solver {entry.result.solver['status']})",
                    soft_wrap=True,
                )
                for warning in entry.result.warnings:
                    stderr.print(
                        f"[yellow]warning:[/yellow] {escape(entry.label)}: {escape(warning)}",
                        soft_wrap=True,
                    )

        with view.running():
            result = audit(
                tokenizers,
                samples,
                merges=merges,
                max_bytes=budget,
                solver=solver,
                time_limit=time_limit,
                unit=unit,
                groups=groups,
                clean=not no_clean,
                normalize=normalize,
                cache_dir=cache_dir,
                use_cache=not no_cache,
                offline=True if offline else None,
                progress=view,
                on_entry=report_entry,
            )
        text = result.render(out_fmt, wide=wide, by=by)
        if output == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
            if not quiet:
                render_audit_table(result, stderr)
        elif output is not None:
            if result.succeeded:
                write_atomic(output, text)
            if not quiet:
                render_audit_table(result, stderr)
        else:
            render_audit_table(result, Console(highlight=False))
        failed = result.failed
        if failed:
            names = ", ".join(e.label for e in failed)
            if output is not None and output != "-" and result.succeeded:
                where = f"; {output} holds the other {len(result.succeeded)}"
            elif output is not None and output != "-":
                where = f"; nothing was written to {output}"
            else:
                where = ""
            stderr.print(
                f"[red]error:[/red] {len(failed)} of {len(result.entries)} tokenizer(s) failed "
                f"({escape(names)}){escape(where)}",
                soft_wrap=True,
            )
            first = failed[0].exception
            return exit_code_for(first) if first is not None else EXIT_INTERNAL
        if output is not None and output != "-" and not quiet:
            stderr.print(f"wrote {escape(output)}")
        return 0

    code = run_guarded(debug, run)
    if code:
        raise typer.Exit(code)


@app.command("plot")
def plot_command(
    report: Annotated[Path, typer.Argument(help="An audit CSV (long or --wide).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Picture to write: .png, .svg or .pdf.")],
    by: Annotated[str, typer.Option("--by", help="Bars split by group | category.")] = "group",
    groups: Annotated[
        Path | None,
        typer.Option("--groups", help="Category -> group mapping (.yaml, .json or .csv)."),
    ] = None,
    vertical: Annotated[
        bool, typer.Option("--vertical", help="Vertical bars (default: horizontal).")
    ] = False,
    title: Annotated[str | None, typer.Option("--title", help="Figure title.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No messages.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Draw an audit report as stacked bars of group (or category) proportions per tokenizer."""

    def run() -> None:
        from mixinfer.plot import plot_report

        path = plot_report(
            report,
            output,
            by=by,
            groups=groups,
            title=title,
            orientation="vertical" if vertical else "horizontal",
        )
        if not quiet:
            stderr.print(f"wrote {escape(str(path))}")

    run_guarded(debug, run)


def _simulate_size(option: str, text: str) -> int:
    try:
        return parse_size(text)
    except errors.UsageError:
        raise errors.UsageError(f"{option} {text!r} is not a size; use e.g. 300000, 300kB, 30MB") from None


def _names(option: str, text: str | None) -> list[str]:
    names = [] if text is None else [t.strip() for t in text.split(",") if t.strip()]
    if text is not None and not names:
        raise errors.UsageError(f"{option} is empty; give comma-separated names")
    return names


def _fmt_log(x: float) -> str:
    return f"{x:.2f}" if x == x and abs(x) != float("inf") else "n/a"


def render_simulation_table(result: SimulationResult, console: Console) -> None:
    """Table 1 style: per method the mean (± std), median and range of log10 MSE over trials."""
    s = result.settings
    table = Table(
        title=f"Mixture inference on {s.trials} simulated tokenizer(s), n={s.n} categories each "
        f"(log10 MSE, lower is better)",
        title_justify="left",
    )
    table.add_column("method")
    table.add_column("trials", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("std", justify="right")
    table.add_column("median", justify="right")
    table.add_column("best", justify="right")
    table.add_column("worst", justify="right")
    table.add_column("s/trial", justify="right")
    labels = {"lp": "LP (ours)", "tee": "TEE", "tc": "TC", "random": "random"}
    for m in result.summary():
        table.add_row(
            labels.get(m.method, m.method),
            str(m.trials),
            _fmt_log(m.mean),
            _fmt_log(m.std),
            _fmt_log(m.median),
            _fmt_log(m.best),
            _fmt_log(m.worst),
            f"{m.seconds:.1f}",
        )
    console.print(table)
    pool = ", ".join(result.pool)
    lines = [
        f"pool: {len(result.pool)} categories of {result.samples} ({pool})",
        f"training: {s.train_bytes:,} bytes per tokenizer, vocab {s.vocab}, unit {s.unit}; "
        f"attack: at most {s.attack_bytes:,} bytes per category"
        + (f" (mean used {used:,.0f})" if (used := result.mean_attack_bytes()) else "")
        + f"; LP merges T={s.merges}; TEE/TC: "
        + (f"first {s.baseline_merges} merges" if s.baseline_merges else "whole vocabulary")
        + f"; seed {s.seed}",
        f"total: {result.timing.get('total', 0.0):.0f} s",
    ]
    for line in lines:
        console.print(escape(line), soft_wrap=True)


@app.command("simulate")
def simulate_command(
    n: Annotated[int, typer.Option("--n", help="Categories per simulated mixture.")],
    trials: Annotated[int, typer.Option("--trials", help="Mixtures (tokenizers) to train and attack.")] = 5,
    samples: Annotated[
        Path | None,
        typer.Option(
            "--samples",
            help="Directory with one sub-directory of text per category (default: the bundled samples).",
        ),
    ] = None,
    train_bytes: Annotated[
        str, typer.Option("--train-bytes", help="Training text per tokenizer, e.g. 30MB.")
    ] = "30MB",
    attack_bytes: Annotated[
        str, typer.Option("--attack-bytes", help="Cap on each category's attack sample.")
    ] = "2MB",
    vocab: Annotated[int, typer.Option("--vocab", help="Vocabulary size of the trained tokenizers.")] = 30000,
    merges: Annotated[int, typer.Option("--merges", help="Leading merges the LP uses (T).")] = 3000,
    baseline_merges: Annotated[
        int | None,
        typer.Option(
            "--baseline-merges",
            help="Leading merges TEE and TC use (default: the whole vocabulary, as in the paper).",
        ),
    ] = None,
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated: lp, tee, tc, random.")
    ] = "lp,tee,tc,random",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mixture draws.")] = 0,
    unit: Annotated[
        str, typer.Option("--unit", help="document | line: training items and counting unit.")
    ] = "document",
    categories: Annotated[
        str | None,
        typer.Option("--categories", help="Comma-separated categories to draw from (default: all)."),
    ] = None,
    exclude: Annotated[
        str | None, typer.Option("--exclude", help="Comma-separated categories to leave out.")
    ] = None,
    solver: Annotated[
        str, typer.Option("--solver", help="auto | highs | cbc | pulp:NAME for the LP.")
    ] = "auto",
    time_limit: Annotated[
        float | None, typer.Option("--time-limit", help="Seconds for each LP solve.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write one row per trial and method (.csv or "
            ".json). Without it the summary table goes to stdout.",
        ),
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache directory.")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write the on-disk cache.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, notes or summary.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Train tokenizers on known random mixtures; score how LP, TEE, TC and random recover them."""

    def run() -> None:
        from mixinfer.simulate import SimulationSettings, simulate

        out_fmt = _audit_format(str(output), None) if output is not None else None
        settings = SimulationSettings(
            n=n,
            trials=trials,
            train_bytes=_simulate_size("--train-bytes", train_bytes),
            attack_bytes=_simulate_size("--attack-bytes", attack_bytes),
            vocab=vocab,
            merges=merges,
            baseline_merges=baseline_merges,
            methods=tuple(_names("--methods", methods)),
            seed=seed,
            unit=unit,
            solver=solver,
            time_limit=time_limit,
        )
        view = ProgressView(enabled=not quiet)
        with view.running():
            result = simulate(
                samples,
                settings,
                categories=_names("--categories", categories) or None,
                exclude=_names("--exclude", exclude),
                cache_dir=cache_dir,
                use_cache=not no_cache,
                progress=view,
            )
        check_interrupted()
        for note in result.notes:
            if not quiet:
                stderr.print(f"[cyan]note:[/cyan] {escape(note)}", soft_wrap=True)
        for warning in result.warnings:
            stderr.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
        if output is not None and out_fmt is not None:
            write_atomic(output, result.render(out_fmt))
            if not quiet:
                render_simulation_table(result, stderr)
                stderr.print(f"wrote {escape(str(output))}")
        else:
            render_simulation_table(result, Console(highlight=False))

    run_guarded(debug, run)


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``mixinfer`` command."""
    # Ctrl-C must raise KeyboardInterrupt in the main process even if a library reset it.
    install_interrupt_handlers()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return app(args=argv, prog_name="mixinfer")


if __name__ == "__main__":  # pragma: no cover
    main()
