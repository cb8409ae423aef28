"""Pictures of audit reports: stacked bars of group (or category) proportions per tokenizer.

matplotlib is an optional extra (``pip install 'mixinfer[plot]'``); it is imported only here and
only when a picture is drawn, with the non-interactive ``Agg`` backend.
"""

from __future__ import annotations

import csv
import io
import math
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mixinfer.errors import MissingDependencyError, UsageError
from mixinfer.groups import DEFAULT_GROUPS, group_bounds, group_categories, group_order, load_groups
from mixinfer.report import write_special

FORMATS = (".png", ".svg", ".pdf")
WHISKER_MIN = 0.005
"""Intervals narrower than this (half a point) are not drawn: they would be a dot."""
ORIENTATIONS = ("horizontal", "vertical")
# Segments at least this large get their percentage printed on them.
LABEL_MIN = 0.05
# Reports hold each proportion to full precision; a tokenizer's total above 1 by more than rounding
# means rows were repeated or edited.
_SUM_TOLERANCE = 1e-3
# Proportions rounded by hand (a spreadsheet) may sum a little short of 1; more than this is a
# truncated or edited report, whose bars would be drawn short without a word.
_SHORT_TOLERANCE = 1e-2
GROUP_COLORS = {
    "English": "#4C72B0",
    "Code": "#DD8452",
    "Latin/Cyrillic languages": "#55A868",
    "Other languages": "#C44E52",
}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("plotting needs matplotlib: pip install 'mixinfer[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _colors(columns: Sequence[str], plt: Any) -> list[Any]:
    cmap = plt.get_cmap("tab20")
    extra = plt.get_cmap("tab20b")
    out = []
    k = 0
    for c in columns:
        if c in GROUP_COLORS:
            out.append(GROUP_COLORS[c])
        else:
            out.append(cmap(k % 20) if k < 20 else extra((k - 20) % 20))
            k += 1
    return out


def check_output(output: str | os.PathLike[str]) -> Path:
    """Refuse, before anything is drawn, a picture path that cannot be written.

    A missing folder is created when writing (as for ``infer -o``); the nearest existing ancestor
    must be a folder this process may create files in.

    Raises:
        UsageError: no or an unknown extension, an existing directory, a path under a file, an
            ancestor that is not writable, or a file name too long for the file system.
    """
    text = os.fspath(output)
    path = Path(text)
    if not text.strip():
        raise UsageError("the picture's file name is empty; give one such as mixtures.png")
    if path.suffix.lower() not in FORMATS:
        raise UsageError(
            f"cannot tell the picture format of {text} from its extension; use {', '.join(FORMATS)}"
        )
    try:
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        name_max = os.pathconf(ancestor, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
        if any(len(part.encode("utf-8", "surrogateescape")) > name_max for part in path.parts):
            raise UsageError(f"cannot write {text}: a name in it is longer than {name_max} bytes")
        if path.is_dir():
            raise UsageError(
                f"{text} is a directory; give a picture file name such as {path / 'mixtures.png'}"
            )
        if not ancestor.is_dir():
            raise UsageError(f"cannot write {text}: {ancestor} is a file, not a folder")
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write {text}: no permission to create files in {ancestor}")
    except OSError as exc:
        raise UsageError(f"cannot write {text} ({exc.strerror or exc})") from None
    return path


def _save_atomic(fig: Any, path: Path) -> None:
    """Save through a temporary file in the same folder then rename: never a partial picture.

    The temporary file is created with mode 0666 so the umask applies, as for any new file (not
    the 0600 of ``tempfile.mkstemp``); its name is short, so a long target name still fits.
    """
    fmt = path.suffix[1:].lower()
    try:
        if path.exists() and not stat.S_ISREG(path.stat().st_mode):
            # A device or a pipe is written to, never replaced (see report.write_special).
            buffer = io.BytesIO()
            fig.savefig(buffer, dpi=150, bbox_inches="tight", format=fmt)
            write_special(path, buffer.getvalue())
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".mixinfer-{os.getpid()}-{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, dpi=150, bbox_inches="tight", format=fmt)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path} ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


def _check_values(table: Mapping[str, Mapping[str, float]]) -> None:
    """Proportions must be finite, non-negative and sum to 1 per tokenizer (within
    :data:`_SUM_TOLERANCE` above, :data:`_SHORT_TOLERANCE` below), over the same columns."""
    every = {c for props in table.values() for c in props}
    for label, props in table.items():
        missing = sorted(every - set(props))
        if missing:
            raise UsageError(
                f"{label!r} has no proportion for {', '.join(missing[:5])}"
                f"{', ...' if len(missing) > 5 else ''}, which other tokenizers of the report have: "
                "the report looks truncated or edited; write it again with `mixinfer audit`"
            )
        for column, value in props.items():
            if not math.isfinite(value) or value < 0:
                raise UsageError(
                    f"the proportion of {column!r} for {label!r} is {value}; proportions must be "
                    "finite and non-negative (is the report from `mixinfer audit`?)"
                )
        total = sum(props.values())
        if total > 1 + _SUM_TOLERANCE:
            raise UsageError(
                f"the proportions of {label!r} sum to {total:.4g}, more than 1; is the report from "
                "`mixinfer audit`, each tokenizer listed once?"
            )
        if total < 1 - _SHORT_TOLERANCE:
            raise UsageError(
                f"the proportions of {label!r} sum to {total:.4g}, not 1: the report looks truncated "
                "or edited; write it again with `mixinfer audit`"
            )


def plot_mixtures(
    table: Mapping[str, Mapping[str, float]],
    output: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    orientation: str = "horizontal",
    intervals: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
) -> Path:
    """Draw one stacked bar per tokenizer and write it to ``output`` (``.png``, ``.svg``, ``.pdf``).

    Args:
        table: ``{tokenizer: {segment: proportion}}`` (segments are groups or categories).
        output: the picture file; written atomically.
        columns: segment order (default: the order of first appearance).
        title: the figure title.
        orientation: ``horizontal`` (bars left to right, tokenizers top to bottom) or
            ``vertical``.
        intervals: ``{tokenizer: {segment: (low, high)}}``: each segment's interval is drawn as a
            black whisker where the segment's far end could lie, given where it starts.

    Returns:
        The path written.

    Raises:
        UsageError: empty table, unknown orientation, proportions that are not a mixture, or an
            output path that cannot be written (see :func:`check_output`).
        MissingDependencyError: matplotlib is not installed.
    """
    path = check_output(output)
    if orientation not in ORIENTATIONS:
        raise UsageError(f"unknown orientation {orientation!r}; use horizontal or vertical")
    if not table:
        raise UsageError("nothing to plot: the report holds no tokenizer")
    _check_values(table)
    if columns is None:
        seen: dict[str, None] = {}
        for props in table.values():
            seen.update(dict.fromkeys(props))
        columns = list(seen)
    plt = _pyplot()
    labels = list(table)
    colors = _colors(columns, plt)
    n = len(labels)
    horizontal = orientation == "horizontal"
    legend_height = 0.25 * min(len(columns), 16)
    if horizontal:
        size = (9.0, max(1.6 + 0.55 * n, 0.8 + legend_height))
    else:
        size = (max(4.0, 1.5 + 1.1 * n), max(5.5, 0.8 + legend_height))
    fig, ax = plt.subplots(figsize=size)
    # Top-to-bottom in the given order for horizontal bars.
    positions = list(range(n))[::-1] if horizontal else list(range(n))
    starts = [0.0] * n
    for col, color in zip(columns, colors, strict=True):
        values = [float(table[t].get(col, 0.0)) for t in labels]
        if horizontal:
            bars = ax.barh(
                positions,
                values,
                left=starts,
                color=color,
                label=col,
                edgecolor="white",
                linewidth=0.6,
                height=0.7,
            )
        else:
            bars = ax.bar(
                positions,
                values,
                bottom=starts,
                color=color,
                label=col,
                edgecolor="white",
                linewidth=0.6,
                width=0.7,
            )
        r, g, b = plt.matplotlib.colors.to_rgb(color)
        ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.6 else "white"
        for bar, v in zip(bars, values, strict=True):
            if v >= LABEL_MIN:
                x = bar.get_x() + bar.get_width() / 2
                y = bar.get_y() + bar.get_height() / 2
                ax.text(
                    x,
                    y,
                    f"{100 * v:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=ink,
                    fontweight="bold",
                )
        for k, t in enumerate(labels):
            iv = (intervals or {}).get(t, {}).get(col)
            if iv is None or iv[1] - iv[0] < WHISKER_MIN or values[k] < LABEL_MIN / 2:
                continue  # too narrow to see, or a sliver whose whisker would only clutter
            lo, hi = starts[k] + iv[0], starts[k] + iv[1]
            if horizontal:
                ax.errorbar(
                    (lo + hi) / 2, positions[k], xerr=(hi - lo) / 2, fmt="none", ecolor="black",
                    elinewidth=1.0, capsize=3, zorder=3,
                )  # fmt: skip
            else:
                ax.errorbar(
                    positions[k], (lo + hi) / 2, yerr=(hi - lo) / 2, fmt="none", ecolor="black",
                    elinewidth=1.0, capsize=3, zorder=3,
                )  # fmt: skip
        starts = [s + v for s, v in zip(starts, values, strict=True)]
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
        ax.set_xlabel("share of training bytes")
    else:
        tilt = n > 4
        ax.set_xticks(positions, labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{100 * v:.0f}%"))
        ax.set_ylabel("share of training bytes")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    # Beside the axes; for vertical bars listed top-down like the stack.
    handles, names = ax.get_legend_handles_labels()
    if not horizontal:
        handles, names = handles[::-1], names[::-1]
    ax.legend(
        handles,
        names,
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        ncol=1 if len(columns) <= 16 else 2,
        frameon=False,
        fontsize=9,
    )
    ax.set_title(title or "Inferred training mixtures", loc="left")
    if intervals:
        fig.text(
            0.01, 0.005, "whiskers: bootstrap intervals of each segment, given where it starts",
            fontsize=7, color="dimgray", ha="left", va="bottom",
        )  # fmt: skip
    fig.tight_layout()
    try:
        _save_atomic(fig, path)
    finally:
        plt.close(fig)
    return path


def group_table(
    table: Mapping[str, Mapping[str, float]],
    groups: Mapping[str, str],
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Sum category proportions into groups: ``({tokenizer: {group: total}}, group order)``."""
    order = group_order(groups.values())
    out: dict[str, dict[str, float]] = {}
    for label, props in table.items():
        totals = dict.fromkeys(order, 0.0)
        for cat, v in props.items():
            totals[groups[cat]] += v
        out[label] = totals
    return out, order


def plot_report(
    report: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    by: str = "group",
    groups: Mapping[str, str] | str | os.PathLike[str] | None = None,
    title: str | None = None,
    orientation: str = "horizontal",
) -> Path:
    """Draw an audit CSV (long or wide) as stacked bars by ``group`` or ``category``.

    Groups come from the long CSV's ``group`` column; a user mapping (``groups``) overrides it;
    for a wide CSV by category the default grouping applies. A wide CSV already by group can
    only be drawn by group.
    """
    from mixinfer.audit import read_intervals, read_report

    if by not in ("group", "category"):
        raise UsageError(f"unknown --by {by!r}; use group or category")
    check_output(output)
    source = Path(report)
    if source.exists() and not source.is_file():
        # A FIFO or a device would be read forever; a directory cannot be read at all.
        raise UsageError(f"report {report} is not a regular file; give the CSV written by `mixinfer audit`")
    try:
        table, csv_groups = read_report(report)
    except csv.Error as exc:
        raise UsageError(f"{report} is not a valid audit report (CSV: {exc})") from None
    intervals = read_intervals(report)
    _check_values(table)  # per category, before groups sum them (a missing one is then seen)
    mapping = load_groups(groups) if isinstance(groups, str | os.PathLike) else dict(groups or {})
    columns: list[str] = []
    for props in table.values():
        columns += [c for c in props if c not in columns]
    known_groups = set(DEFAULT_GROUPS) | set(mapping.values()) | set(csv_groups.values())
    already_groups = not csv_groups and all(c in known_groups for c in columns)
    if by == "category":
        if already_groups:
            raise UsageError(
                f"{report} holds group totals only; write the audit by category (the default, "
                "or without --by group) to plot categories"
            )
        return plot_mixtures(
            table, output, columns=columns, title=title, orientation=orientation, intervals=intervals
        )
    if already_groups:
        order = group_order(columns)
        return plot_mixtures(
            table, output, columns=order, title=title, orientation=orientation, intervals=intervals
        )
    cat_groups = {**csv_groups, **group_categories([c for c in columns if c not in csv_groups])}
    cat_groups.update({c: g for c, g in mapping.items() if c in cat_groups})
    grouped, order = group_table(table, cat_groups)
    group_iv = {t: group_bounds(per_cat, cat_groups) for t, per_cat in intervals.items()}
    return plot_mixtures(
        grouped, output, columns=order, title=title, orientation=orientation, intervals=group_iv
    )
