"""Category samples: discovering sample files and reading their documents within a byte budget.

A samples directory holds one sub-directory per category, named by the category. Inside, files are
read in sorted order of their relative path, so the same budget always takes the same bytes:

* ``*.txt`` / ``*.txt.gz``: one file is one document;
* ``*.jsonl`` / ``*.jsonl.gz``: one record (field ``text``) is one document;
* ``*.parquet``: one row (column ``text``) is one document (needs the ``parquet`` extra).

Other files are skipped with a warning. Symbolic links are followed.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mixinfer.errors import MissingDependencyError, SamplesError

DEFAULT_MAX_BYTES = 1_000_000_000
UNITS = ("document", "line")
_SUFFIXES = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".parquet")
# Files are read in bounded pieces so that one enormous line never has to be held twice.
_READ_PIECE = 8 << 20


def bundled_samples_dir() -> Path:
    """The default samples: ``data_samples/general`` of the source tree or the installed copy."""
    here = Path(__file__).resolve().parent
    # The source tree (editable installs), then the current directory (a plain install run from
    # the project's checkout, as the README does).
    for root in (here.parent, Path.cwd()):
        candidate = root / "data_samples" / "general"
        if candidate.is_dir():
            return candidate
    raise SamplesError(
        "the bundled samples (data_samples/general) were not found next to the mixinfer package "
        "or in the current directory; run from the project's checkout, or pass --samples DIR with "
        "one sub-directory of text per category"
    )


@dataclass(frozen=True)
class SampleFile:
    """One readable sample file and the facts that identify its content for the cache."""

    path: Path
    relpath: str
    size: int
    mtime_ns: int

    @property
    def kind(self) -> str:
        """The format: ``txt``, ``jsonl`` or ``parquet`` (gzip is handled transparently)."""
        name = self.path.name
        if name.endswith((".jsonl", ".jsonl.gz")):
            return "jsonl"
        if name.endswith(".parquet"):
            return "parquet"
        return "txt"


@dataclass
class Category:
    """A category: its name, its sample files in reading order, and the files it skipped."""

    name: str
    files: list[SampleFile]
    skipped: list[str] = field(default_factory=list)

    def fingerprint(self) -> str:
        """A hash of (relative path, size, mtime) of every file: changes whenever content may."""
        h = hashlib.sha256(self.name.encode())
        for f in self.files:
            h.update(f"\0{f.relpath}\0{f.size}\0{f.mtime_ns}".encode())
        return h.hexdigest()[:24]


def discover(samples_dir: str | os.PathLike[str]) -> list[Category]:
    """List the categories of a samples directory, sorted by name.

    Raises :class:`SamplesError` when the directory is missing or holds no category with a
    readable sample file.
    """
    root = Path(samples_dir)
    if not root.exists():
        raise SamplesError(f"samples directory {root} does not exist; check --samples")
    if not root.is_dir():
        raise SamplesError(
            f"--samples {root} is a file; it must be a directory with one sub-directory per category"
        )
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise SamplesError(
            f"samples directory {root} has no category sub-directories; put each category's text "
            f"in {root}/<category>/ (*.txt, *.txt.gz, *.jsonl[.gz], *.parquet)"
        )
    categories = []
    for sub in subdirs:
        files: list[SampleFile] = []
        skipped: list[str] = []
        for dirpath, dirnames, filenames in os.walk(sub, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                rel = path.relative_to(sub).as_posix()
                if fname.startswith("."):
                    continue
                if not fname.endswith(_SUFFIXES):
                    skipped.append(f"{path}: not a sample file type (expected {', '.join(_SUFFIXES)})")
                    continue
                try:
                    st = path.stat()
                except OSError as exc:
                    skipped.append(f"{path}: cannot be read ({exc.strerror})")
                    continue
                files.append(SampleFile(path, rel, st.st_size, st.st_mtime_ns))
        files.sort(key=lambda f: f.relpath)
        if not files:
            raise SamplesError(
                f"category '{sub.name}' ({sub}) has no readable sample files; add *.txt, *.txt.gz, "
                f"*.jsonl[.gz] or *.parquet files, or remove the directory"
            )
        categories.append(Category(sub.name, files, skipped))
    return categories


@dataclass
class ReadStats:
    """What reading a category found: bytes and documents taken, and problems worth a warning."""

    bytes: int = 0
    documents: int = 0
    replaced_chars: int = 0
    warnings: list[str] = field(default_factory=list)


def _decode(data: bytes, path: Path, stats: ReadStats, *, final: bool = True) -> str:
    # Not final: the data was cut at the budget, so a character split there is not an error.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=final)
    if "\ufffd" in text:
        # Count only replacements that came from invalid bytes, not literal U+FFFD in the input.
        bad = text.count("\ufffd") - data.count("\ufffd".encode())
        if bad > 0:
            stats.replaced_chars += bad
            stats.warnings.append(f"{path}: {bad} invalid UTF-8 byte sequence(s) replaced with U+FFFD")
    return text


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _looks_binary(head: bytes) -> bool:
    return b"\0" in head


def _read_txt(f: SampleFile, stats: ReadStats, budget: int) -> Iterator[str]:
    try:
        with _open_binary(f.path) as fh:
            # Read a little past the budget so the cut can land on a character boundary.
            data = fh.read(budget + 4)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SamplesError(f"{f.path}: cannot read sample file ({exc}); fix or remove it") from exc
    if _looks_binary(data[:8192]):
        stats.warnings.append(f"{f.path}: looks like a binary file (NUL bytes); skipped")
        return
    if data:
        yield _decode(data, f.path, stats, final=len(data) <= budget)


def _read_jsonl(f: SampleFile, stats: ReadStats) -> Iterator[str]:
    try:
        with _open_binary(f.path) as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise SamplesError(
                        f"{f.path}:{lineno}: not a JSON object ({exc}); each line of a .jsonl sample "
                        f'must be like {{"text": "..."}}'
                    ) from exc
                text = record.get("text") if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise SamplesError(
                        f"{f.path}:{lineno}: record has no string field 'text'; each line of a "
                        f'.jsonl sample must be like {{"text": "..."}}'
                    )
                yield text
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SamplesError(f"{f.path}: cannot read sample file ({exc}); fix or remove it") from exc


def _read_parquet(f: SampleFile) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            f"{f.path} is a Parquet file and pyarrow is not installed; run: pip install 'mixinfer[parquet]'"
        ) from exc
    try:
        pf = pq.ParquetFile(f.path)
        if "text" not in pf.schema_arrow.names:
            raise SamplesError(f"{f.path}: Parquet file has no 'text' column")
        for batch in pf.iter_batches(columns=["text"], batch_size=1024):
            for value in batch.column(0).to_pylist():
                if isinstance(value, str):
                    yield value
    except SamplesError:
        raise
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise SamplesError(f"{f.path}: cannot read Parquet file ({exc}); fix or remove it") from exc


def _split_lines(text: str) -> Iterator[str]:
    start = 0
    n = len(text)
    while start < n:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def iter_documents(
    category: Category,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    unit: str = "document",
    stats: ReadStats | None = None,
) -> Iterator[str]:
    """Yield the category's text units (documents or lines) up to ``max_bytes`` UTF-8 bytes.

    The budget is taken deterministically: files in sorted order, documents in file order, and the
    last unit cut at the budget on a character boundary. ``stats`` collects byte and document
    counts and warnings (invalid UTF-8, binary files skipped).
    """
    if unit not in UNITS:
        raise SamplesError(f"unknown --unit {unit!r}; use one of {', '.join(UNITS)}")
    stats = stats if stats is not None else ReadStats()
    remaining = max_bytes
    for f in category.files:
        if remaining <= 0:
            break
        if f.kind == "txt":
            docs: Iterator[str] = _read_txt(f, stats, remaining)
        elif f.kind == "jsonl":
            docs = _read_jsonl(f, stats)
        else:
            docs = _read_parquet(f)
        for doc in docs:
            pieces = _split_lines(doc) if unit == "line" else iter((doc,))
            for piece in pieces:
                if not piece:
                    continue
                size = len(piece.encode("utf-8"))
                if size > remaining:
                    piece = piece.encode("utf-8")[:remaining].decode("utf-8", errors="ignore")
                    size = len(piece.encode("utf-8"))
                    remaining = 0
                else:
                    remaining -= size
                if piece:
                    stats.bytes += size
                    stats.documents += 1
                    yield piece
                if remaining <= 0:
                    return
