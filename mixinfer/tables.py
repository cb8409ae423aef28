"""The human-readable tables of results (inference, audit, simulation), drawn with rich.

Only the CLI calls these; they write to the console they are given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mixinfer.cleaning import CleaningReport
from mixinfer.diagnostics import show_token, summary_lines
from mixinfer.report import InferenceResult

if TYPE_CHECKING:
    from mixinfer.audit import AuditResult
    from mixinfer.simulate import SimulationResult


def render_table(result: InferenceResult, console: Console, *, warnings: bool = False) -> None:
    """The human-readable result: one row per category, a bar, truth and error when known.

    With ``warnings``, the result's warnings are part of the footer (``--quiet`` sends nothing to
    stderr, so they are shown with the answer they qualify).
    """
    table = Table(title=f"Inferred training mixture of {escape(result.tokenizer)}", title_justify="left")
    table.add_column("category")
    table.add_column("proportion", justify="right")
    iv = result.intervals
    if iv is not None and result.bootstrap is not None:
        table.add_column(f"{100 * result.bootstrap['confidence']:.0f}% interval", justify="right")
    if result.truth is not None:
        table.add_column("truth", justify="right")
        table.add_column("error", justify="right")
    table.add_column("")
    for c in result.categories:
        p = result.proportions[c]
        row = [escape(c), f"{100 * p:.2f}%"]
        if iv is not None:
            row.append(f"{100 * iv[c][0]:.2f}-{100 * iv[c][1]:.2f}%")
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
        # The run's time, not the LP's alone: the line used to read as if the LP took all of it.
        f"total {result.timing.get('total', 0.0):.1f} s",
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
    if result.bootstrap is not None:
        b = result.bootstrap
        lines.append(
            f"intervals: {b.get('interval', 'bootstrap')} over documents, {b['replicates']} replicates, "
            f"seed {b['seed']}"
        )
    if result.truth is not None:
        lines.append(f"log10 MSE against the truth ({result.truth_source}): {result.log10_mse:.2f}")
    if result.diagnostics:
        d = result.diagnostics
        lines.append(
            f"unexplained by the samples: {d['objective_per_merge']:.3g} counts per million per merge "
            f"(merges {100 * d['share']['merges']:.0f}%, pairs {100 * d['share']['pairs']:.0f}% of it); "
            f"top items (mixinfer explain on the JSON lists more):"
        )
        lines += ["  " + line for line in summary_lines(d, limit=2)]
    if warnings:
        lines += [f"warning: {w}" for w in result.warnings]
    console.print(table)
    for line in lines:
        console.print(line, soft_wrap=True, markup=False)


def _bar(fraction: float, width: int = 30) -> str:
    full = max(0.0, min(1.0, fraction)) * width
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


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


def _fmt_log(x: float) -> str:
    return f"{x:.2f}" if x == x and abs(x) != float("inf") else "n/a"


def render_simulation_table(result: SimulationResult, console: Console) -> None:
    """Table 1 style: per method the mean (± std), median and range of log10 MSE over trials."""
    s = result.settings
    offered = (
        f" + {s.distractors} distractors (true share 0; MSE over all {s.n + s.distractors})"
        if s.distractors
        else ""
    )
    table = Table(
        title=f"Mixture inference on {s.trials} simulated tokenizer(s), n={s.n} categories each"
        f"{offered} (log10 MSE, lower is better)",
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
    if s.bootstrap:
        table.add_column(f"{100 * s.confidence:.0f}% coverage", justify="right")
        table.add_column("median width", justify="right")
    labels = {"lp": "LP (ours)", "tee": "TEE", "tc": "TC", "random": "random"}
    for m in result.summary():
        row = [
            labels.get(m.method, m.method),
            str(m.trials),
            _fmt_log(m.mean),
            _fmt_log(m.std),
            _fmt_log(m.median),
            _fmt_log(m.best),
            _fmt_log(m.worst),
            f"{m.seconds:.1f}",
        ]
        if s.bootstrap:
            row += [
                "-" if m.coverage is None else f"{100 * m.coverage:.0f}%",
                "-" if m.median_width is None else f"{100 * m.median_width:.2f} pts",
            ]
        table.add_row(*row)
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


def render_explanation(label: str, diagnostics: dict[str, Any], console: Console) -> None:
    """The diagnostics of one saved result, as two tables and its warnings."""
    d = diagnostics
    console.print(
        f"[bold]{escape(label)}[/bold]: objective {d['objective']:.4g} "
        f"({d['objective_per_merge']:.3g} counts per million per merge); step slacks carry "
        f"{100 * d['share']['merges']:.1f}% of it, pair slacks {100 * d['share']['pairs']:.1f}%",
        soft_wrap=True,
    )
    merges = Table(title="Unexplained merges (largest step slack first)", title_justify="left")
    for col in ("step", "merge", "beaten by", "slack", "share", "would need more", "held down by"):
        merges.add_column(col, justify="right" if col in ("step", "slack", "share") else "left")
    for e in d.get("unexplained_merges", []):
        merges.add_row(
            str(e["step"]),
            escape(_pair(e["merge"])),
            escape(_pair(e["competitor"])),
            f"{e['slack']:.3g}",
            f"{100 * e['share']:.1f}%",
            escape(", ".join(e["would_grow"]) or "-"),
            escape("; ".join(f"{c}: {_pair(p)}" for c, p in e.get("blocked_by", {}).items()) or "-"),
        )
    pairs = Table(title="Over-represented sample pairs (largest pair slack first)", title_justify="left")
    for col in ("pair", "from step", "slack", "share", "mostly from"):
        pairs.add_column(col, justify="right" if col in ("from step", "slack", "share") else "left")
    for e in d.get("overrepresented_pairs", []):
        pairs.add_row(
            escape(_pair(e["pair"])),
            str(e["step"]),
            f"{e['slack']:.3g}",
            f"{100 * e['share']:.1f}%",
            escape(str(e["category"] or "-")),
        )
    console.print(merges)
    console.print(pairs)
    for w in d.get("warnings", []):
        console.print(f"warning: {escape(w)}", soft_wrap=True)


def _pair(pair: list[str]) -> str:
    return f"{show_token(pair[0])} + {show_token(pair[1])}"
