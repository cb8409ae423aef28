"""The result of an inference, and its machine-readable forms (JSON, CSV, a pandas frame)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixinfer.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from mixinfer.solver import LPDetails

FORMATS = ("table", "json", "csv")


@dataclass
class CategoryStats:
    """What was read for one category."""

    bytes: int
    documents: int
    words: int


@dataclass
class InferenceResult:
    """An inferred mixture and everything needed to judge and reproduce it.

    ``proportions`` maps each category to its estimated fraction of the tokenizer's training bytes
    (summing to 1). ``truth``, when known, holds the true mixture for comparison. ``cleaning``
    reports what merge-list cleaning removed (:meth:`mixinfer.cleaning.CleaningReport.to_dict`);
    ``base``, for an extended tokenizer, the base and the shared merge prefix. ``lp``, when the LP
    was solved in this run (not read from the cache), holds its slacks, final rows and duals
    (:class:`mixinfer.solver.LPDetails`) for diagnostics and the bootstrap; it is not part of
    :meth:`to_dict` / :meth:`to_json`.
    """

    proportions: dict[str, float]
    tokenizer: str
    merges_used: int
    merges_total: int
    pretokenizer: dict[str, Any]
    solver: dict[str, Any]
    timing: dict[str, float]
    samples: dict[str, CategoryStats]
    unit: str
    max_bytes: int
    start_merge: int = 0
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    truth: dict[str, float] | None = None
    truth_source: str | None = None
    cleaning: dict[str, Any] | None = None
    base: dict[str, Any] | None = None
    lp: LPDetails | None = field(default=None, repr=False, compare=False)

    @property
    def categories(self) -> list[str]:
        """Category names, sorted by estimated proportion (descending), then name."""
        return sorted(self.proportions, key=lambda c: (-self.proportions[c], c))

    @property
    def mse(self) -> float | None:
        """Mean squared error against ``truth`` over all categories of either side."""
        if self.truth is None:
            return None
        names = set(self.proportions) | set(self.truth)
        return sum((self.proportions.get(c, 0.0) - self.truth.get(c, 0.0)) ** 2 for c in names) / len(names)

    @property
    def log10_mse(self) -> float | None:
        """``log10`` of :attr:`mse` (``-inf`` for an exact answer)."""
        mse = self.mse
        if mse is None:
            return None
        return math.log10(mse) if mse > 0 else float("-inf")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (proportions in descending order)."""
        out: dict[str, Any] = {
            "proportions": {c: self.proportions[c] for c in self.categories},
            "tokenizer": self.tokenizer,
            "merges_used": self.merges_used,
            "merges_total": self.merges_total,
            "start_merge": self.start_merge,
            "pretokenizer": self.pretokenizer,
            "unit": self.unit,
            "max_bytes": self.max_bytes,
            "solver": self.solver,
            "timing": self.timing,
            "samples": {
                c: {"bytes": s.bytes, "documents": s.documents, "words": s.words}
                for c, s in sorted(self.samples.items())
            },
            "notes": self.notes,
            "warnings": self.warnings,
        }
        if self.cleaning is not None:
            out["cleaning"] = self.cleaning
        if self.base is not None:
            out["base"] = self.base
        if self.truth is not None:
            out["truth"] = {
                "source": self.truth_source,
                "proportions": dict(sorted(self.truth.items())),
                "mse": self.mse,
                "log10_mse": self.log10_mse,
            }
        return out

    def to_json(self) -> str:
        """The result as indented JSON (keys in a fixed order, so runs compare byte for byte)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_csv(self) -> str:
        """``category,proportion`` rows, sorted by proportion, descending."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["category", "proportion"])
        for c in self.categories:
            writer.writerow([c, repr(self.proportions[c])])
        return buf.getvalue()

    def to_frame(self) -> pd.DataFrame:
        """A pandas DataFrame with one row per category (and truth/error columns when known)."""
        import pandas as pd

        rows = []
        for c in self.categories:
            row: dict[str, Any] = {"category": c, "proportion": self.proportions[c]}
            if self.truth is not None:
                row["truth"] = self.truth.get(c, 0.0)
                row["error"] = self.proportions[c] - row["truth"]
            rows.append(row)
        return pd.DataFrame(rows)

    def render(self, fmt: str) -> str:
        """The result as ``json`` or ``csv`` text."""
        if fmt == "json":
            return self.to_json()
        if fmt == "csv":
            return self.to_csv()
        raise UsageError(f"unknown format {fmt!r}; use json or csv for files")


def format_for(output: str | os.PathLike[str] | None, fmt: str | None) -> str:
    """The output format: ``fmt`` when given, else from the extension of ``output``, else table."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
        if fmt == "table" and output is not None:
            raise UsageError("--format table cannot be written to --output; use json or csv")
        return fmt
    if output is None:
        return "table"
    suffix = Path(output).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".csv":
        return "csv"
    raise UsageError(
        f"cannot tell the format of --output {output} from its extension; use .json or .csv, "
        f"or pass --format json|csv"
    )


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so no partial file is ever left."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise UsageError(f"cannot write --output {target} ({exc.strerror})") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_truth(path: str | os.PathLike[str]) -> dict[str, float]:
    """Read a true mixture: JSON ``{"proportions": {category: fraction}}`` or a flat mapping."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"--truth {p} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"--truth {p} is not a readable JSON file ({exc})") from exc
    props = data.get("proportions", data) if isinstance(data, dict) else None
    if not isinstance(props, dict) or not props:
        raise UsageError(f'--truth {p} must be JSON like {{"proportions": {{"en": 0.6, ...}}}}')
    try:
        truth = {str(k): float(v) for k, v in props.items()}
    except (TypeError, ValueError) as exc:
        raise UsageError(f"--truth {p}: every proportion must be a number") from exc
    total = sum(truth.values())
    if total <= 0 or any(v < 0 for v in truth.values()):
        raise UsageError(f"--truth {p}: proportions must be non-negative and not all zero")
    return {k: v / total for k, v in truth.items()}
