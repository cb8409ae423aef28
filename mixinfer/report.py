"""The result of an inference, and its machine-readable forms (JSON, CSV, a pandas frame)."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import math
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixinfer.errors import UsageError
from mixinfer.strictload import DuplicateKeyError, json_loads

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
    intervals: dict[str, tuple[float, float]] | None = None
    bootstrap: dict[str, Any] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

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
            # Which estimator read the mixture off the merges (mixinfer.estimators; lp: the exact LP).
            "estimator": self.solver.get("estimator", "lp"),
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
        out["diagnostics"] = self.diagnostics
        if self.intervals is not None:
            out["intervals"] = {c: list(self.intervals[c]) for c in self.categories}
            out["bootstrap"] = self.bootstrap
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
        """``category,proportion`` rows, sorted by proportion, descending (with ``low,high`` when
        the bootstrap gave intervals)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        iv = self.intervals
        writer.writerow(["category", "proportion", *(["low", "high"] if iv else [])])
        for c in self.categories:
            writer.writerow([c, repr(self.proportions[c]), *([repr(iv[c][0]), repr(iv[c][1])] if iv else [])])
        return buf.getvalue()

    def to_frame(self) -> pd.DataFrame:
        """A pandas DataFrame with one row per category (and truth/error columns when known)."""
        import pandas as pd

        rows = []
        for c in self.categories:
            row: dict[str, Any] = {"category": c, "proportion": self.proportions[c]}
            if self.intervals is not None:
                row["low"], row["high"] = self.intervals[c]
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


def output_error(exc: OSError, target: Path, what: str) -> UsageError:
    """A clear message for an output that cannot be written (exit 2, never a traceback).

    ``target`` is the path the user gave and ``what`` its option; used by :func:`write_atomic`
    and by ``samples pull`` for its output folder, so both word the same failures alike.
    """
    where = f"cannot write {what} {target}"
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return UsageError(
            f"{where}: no space left on the device (or the disk quota is used up); nothing was "
            f"written; free some space or write the output elsewhere"
        )
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), target.parent)
        return UsageError(f"{where}: {blocker} is a file, not a folder; choose another output path")
    if code == errno.ENAMETOOLONG:
        return UsageError(
            f"{where}: the path or file name is too long for the file system; choose a shorter name"
        )
    if code == errno.EISDIR:
        return UsageError(f"{where}: it is a directory; give a file name such as {target / 'result.json'}")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return UsageError(f"{where}: {exc.strerror}; choose a folder you can write to")
    return UsageError(f"{where} ({exc.strerror or exc}); nothing was written; choose another output path")


# fsync errors that only mean "this file system cannot sync": the data was written.
_NO_FSYNC = (errno.EINVAL, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP))


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or unknown: the usual limit
        return 255


def check_output_path(path: str | os.PathLike[str], *, what: str = "--output") -> Path:
    """Refuse, without writing anything, an output path that cannot be a file: empty, a
    directory, under a regular file, or with a name over the file system's limit.

    Raises :class:`UsageError` (never :class:`OSError`) naming ``what``; returns the path.
    """
    raw = os.fspath(path)
    if raw.strip() == "":
        raise UsageError(f"{what} is empty; give a file name such as result.json")
    target = Path(raw)
    try:
        if raw.endswith(("/", os.sep)) or target.name in ("", ".", "..") or target.is_dir():
            raise UsageError(
                f"{what} {target} is a directory; give a file name such as {target / 'result.json'}"
            )
        ancestor = target.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if ancestor.exists() and not ancestor.is_dir():
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), raw)
        limit = _name_max(ancestor)
        if any(len(os.fsencode(part)) > limit for part in target.parts):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), raw)
    except OSError as exc:
        raise output_error(exc, target, what) from exc
    return target


def write_special(target: Path, data: bytes, what: str = "--output") -> None:
    """Write ``data`` into an existing device or pipe ``target`` (opened as is, never created)."""
    try:
        fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise output_error(exc, target, what) from exc


def write_atomic(path: str | os.PathLike[str], text: str, *, what: str = "--output") -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file, so no partial file is ever left.

    The file gets the usual permissions: those of the file it replaces, else 0666 minus the
    umask (not mkstemp's 0600). Every condition the user can cause is a :class:`UsageError`
    (exit 2) naming ``what`` (the option) and the path: an empty path, a directory, a path under
    a regular file, a name over the file system's limit, no permission, a full disk (the
    temporary file is removed and an existing file at ``path`` is left as it was). An existing
    device or pipe (``/dev/null``, ``/dev/stdout``, a FIFO) is written to directly.
    """
    target = check_output_path(path, what=what)
    data = text.encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        existing = target.stat() if target.exists() else None
    except OSError as exc:
        raise output_error(exc, target, what) from exc
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        # A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written to, never replaced:
        # renaming a file over it would, for root, turn /dev/null into a regular file.
        write_special(target, data, what)
        return
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    # A short, random sibling name: the target's own name may already be near the length limit.
    tmp = target.parent / f".{target.name[:40]}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
    except OSError as exc:
        raise output_error(exc, target, what) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            try:
                os.fsync(fd)  # a full disk can surface only here (delayed allocation, NFS)
            except OSError as exc:
                if exc.errno not in _NO_FSYNC:
                    raise
        finally:
            os.close(fd)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise output_error(exc, target, what) from exc
        raise


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_truth(
    path: str | os.PathLike[str], *, implicit: bool = False, notes: list[str] | None = None
) -> dict[str, float]:
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
        data = json_loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except DuplicateKeyError as exc:
        raise UsageError(f"{label}: {exc}; {fix}") from exc
    except (ValueError, RecursionError) as exc:  # includes UnicodeDecodeError
        raise UsageError(f"{label} is not a readable UTF-8 JSON file ({exc}); {fix}") from exc
    props = data.get("proportions", data) if isinstance(data, dict) else None
    return validate_truth(props, label=label, fix=fix, notes=notes)


def validate_truth(
    props: Any, *, label: str = "truth", fix: str = "fix the mixture", notes: list[str] | None = None
) -> dict[str, float]:
    """Check a true mixture (category -> share) and normalise it to sum to 1.

    Shares must be finite, non-negative numbers (not booleans), not all zero;
    names non-empty strings. Raises :class:`UsageError` starting with ``label`` and ending with
    ``fix`` (for a mapping given to :func:`mixinfer.infer` as ``truth=``, the defaults). Shares
    are scaled to sum to 1; ``notes`` (when given) gets a line when fractions miss 1 (sum
    between 0.5 and 2), which looks like a typo.
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
    elif notes is not None and 0.5 < total < 2 and abs(total - 1) > 1e-3:
        # Percentages and byte counts are scaled without a word; fractions that miss 1 look
        # like a typo, so the user hears of it.
        notes.append(f"{label} sums to {total:.6g}, not 1: its shares were scaled to sum to 1; check them")
    return {k: v / total for k, v in truth.items()}
