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
# A truth file is a small JSON mapping; anything larger is not one (and is not read whole).
TRUTH_MAX_BYTES = 16 * 1024 * 1024


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None`` (and numpy scalars and
    arrays turned into Python numbers and lists), ready for standard JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array
        return finite_json(value.tolist())
    return value


def dumps_json(value: Any, *, indent: int | None = 2) -> str:
    """Standard JSON text of ``value`` (NaN and infinities as ``null``, never bare ``NaN``)."""
    return json.dumps(finite_json(value), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


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
        """The result as indented, standard JSON (keys in a fixed order, so runs compare byte for
        byte). A number that is undefined or infinite (``log10_mse`` of an exact answer) is
        written as ``null``: JSON has no NaN or Infinity."""
        return dumps_json(self.to_dict(), indent=2)

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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_truth(path: str | os.PathLike[str], *, implicit: bool = False) -> dict[str, float]:
    """Read a true mixture: JSON ``{"proportions": {category: share}}`` or a flat mapping.

    Shares must be finite, non-negative numbers, not all zero; they are normalised to sum
    to 1 (so fractions, percentages or byte counts all work). Category names must be non-empty.
    ``NaN``, ``Infinity`` and numbers that overflow (``1e400``) are refused.

    Raises :class:`UsageError` naming the file. With ``implicit`` (a ``truth.json`` found beside
    the tokenizer rather than given with ``--truth``) the message names the file as found, not
    the option, so the caller can show it as a warning and go on without a truth.
    """
    p = Path(path)
    label = f"the truth file {p} found beside the tokenizer" if implicit else f"--truth {p}"
    fix = "fix or remove it (it only scores the result)" if implicit else "fix the file or leave out --truth"
    try:
        if not p.exists():
            raise UsageError(f"{label} does not exist")
        if not p.is_file():
            raise UsageError(f"{label} is not a regular file; {fix}")
        with p.open("rb") as fh:
            raw = fh.read(TRUTH_MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{label} cannot be read ({exc.strerror or exc}); {fix}") from exc
    if len(raw) > TRUTH_MAX_BYTES:
        raise UsageError(f"{label} is larger than {TRUTH_MAX_BYTES // 2**20} MiB, not a truth file; {fix}")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # includes UnicodeDecodeError
        raise UsageError(f"{label} is not a readable UTF-8 JSON file ({exc}); {fix}") from exc
    props = data.get("proportions", data) if isinstance(data, dict) else None
    return validate_truth(props, label=label, fix=fix)


def validate_truth(props: Any, *, label: str = "truth", fix: str = "fix the mixture") -> dict[str, float]:
    """Check a true mixture (category -> share) and normalise it to sum to 1.

    Shares must be finite, non-negative numbers (not booleans), not all zero;
    names non-empty strings. Raises :class:`UsageError` starting with ``label`` and ending with
    ``fix`` (for a mapping given to :func:`mixinfer.infer` as ``truth=``, the defaults).
    """
    if not isinstance(props, dict) or not props:
        raise UsageError(f'{label} must be JSON like {{"proportions": {{"en": 0.6, "code": 0.4}}}}; {fix}')
    truth: dict[str, float] = {}
    for name, share in props.items():
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"{label}: category names must be non-empty strings; {fix}")
        if isinstance(share, bool) or not isinstance(share, (int, float)):
            raise UsageError(f"{label}: the share of '{name}' is {share!r}, not a number; {fix}")
        try:
            value = float(share)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise UsageError(f"{label}: the share of '{name}' is not a finite number; {fix}")
        if value < 0:
            raise UsageError(f"{label}: the share of '{name}' is negative ({value:g}); {fix}")
        truth[name] = value
    largest = max(truth.values())
    if not largest > 0:
        raise UsageError(f"{label}: the shares are all zero; {fix}")
    total = sum(truth.values())
    if not math.isfinite(total):  # finite shares whose sum overflows: scale them down first
        truth = {k: v / largest for k, v in truth.items()}
        total = sum(truth.values())
    return {k: v / total for k, v in truth.items()}
