"""What every sample source produces: categories of document files, and how documents are read.

A source (a directory today; manifests and fsspec URLs next) turns a ``--samples`` spec into
:class:`Category` objects. A category is a name plus a list of :class:`SampleFile` objects in
reading order. Categories are plain, picklable data: worker processes (or cluster workers) receive
them and call :func:`iter_documents`, which opens each file through :meth:`SampleFile.open_raw`, so
a source whose files live elsewhere only subclasses :class:`SampleFile` (its ``open_raw`` and
``identity``), and every format reader works unchanged.

Formats, by file name: ``*.txt`` / ``*.txt.gz`` (one file = one document), ``*.jsonl`` /
``*.jsonl.gz`` (one record = one document, field ``text`` unless the file says otherwise) and
``*.parquet`` (one row = one document, column ``text``; needs the ``parquet`` extra).

Reads are bounded: only regular files are opened (opened without blocking, then checked, so a
FIFO, socket or device that replaced a file is refused rather than read forever); a text file is
read only up to the byte budget; a JSONL record (one line) longer than :data:`MAX_RECORD_BYTES` is
skipped with a warning together with the rest of its file, so a file without newlines is never
held whole.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import itertools
import json
import os
import stat
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from mixinfer.errors import MissingDependencyError, SamplesError

DEFAULT_MAX_BYTES = 1_000_000_000
UNITS = ("document", "line")
SUFFIXES = (".txt", ".txt.gz", ".jsonl", ".jsonl.gz", ".parquet")
# The longest JSONL record (one line, in bytes, before decompression is irrelevant: after it) that is
# parsed. Longer records are skipped with the rest of their file: holding an unbounded line would
# let one file without newlines take all memory. A document this large belongs in a .txt file.
MAX_RECORD_BYTES = 16 << 20


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (kept by the OS as lone surrogates
    under ``surrogateescape``) are shown as ``\\xNN`` escapes, so messages and JSON never crash."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_valid_name(name: str) -> bool:
    """True when ``name`` (a file-system name) is valid UTF-8, i.e. holds no escaped bytes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_kind_name(mode: int) -> str:
    """What a non-regular file is, in words, for messages."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a local file for binary reading, refusing anything but a regular file.

    The file is opened non-blocking (a FIFO with no writer would otherwise block ``open`` forever)
    and checked with ``fstat`` on the open descriptor, so a file swapped for a FIFO or a device after
    discovery is refused too. Raises :class:`SamplesError` (or ``OSError`` for the caller to word).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SamplesError(
                f"{display_path(path)} is {file_kind_name(st.st_mode)}, not a regular file; only regular "
                f"files are read as samples: remove it from the samples directory"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class SampleFile:
    """One sample file of a category and the facts that identify its content for the cache.

    This class reads local files. A source whose files live elsewhere subclasses it and overrides
    :meth:`open_raw` and :meth:`identity` (for example a URL and its etag instead of a size and
    mtime); instances must stay picklable, since worker processes read them.

    Attributes:
        path: where the file is (a local ``Path``; for other sources, the path part of its
            location as a ``PurePosixPath``, whose name gives the format).
        relpath: its name within the category, printable (non-UTF-8 bytes escaped); part of the
            cache identity and of the reading order.
        size: its size in bytes (before decompression).
        mtime_ns: its modification time.
        field: the JSONL field or Parquet column holding the text.
        stamp: for a local file, its device, inode and inode change time (:func:`local_stamp`):
            part of the cache identity, since size and modification time alone can repeat for
            new text (archives that fix file times, fixed-size shards).
    """

    path: PurePath
    relpath: str
    size: int
    mtime_ns: int
    field: str = "text"
    stamp: str = ""

    @property
    def name(self) -> str:
        """The file name (its suffixes give the format)."""
        return self.path.name

    @property
    def display(self) -> str:
        """The file's location as printable text, for messages."""
        return display_path(self.path)

    @property
    def kind(self) -> str:
        """The format: ``txt``, ``jsonl`` or ``parquet`` (gzip is handled transparently)."""
        name = self.name
        if name.endswith((".jsonl", ".jsonl.gz")):
            return "jsonl"
        if name.endswith(".parquet"):
            return "parquet"
        return "txt"

    @property
    def compressed(self) -> bool:
        """Whether the file is gzip-compressed (by name)."""
        return self.name.endswith(".gz")

    def identity(self) -> bytes:
        """The bytes that identify this file's content in its category's fingerprint."""
        ident = f"\0{self.relpath}\0{self.size}\0{self.mtime_ns}"
        if self.field != "text":
            ident += f"\0field={self.field}"
        if self.stamp:
            ident += f"\0stamp={self.stamp}"
        return ident.encode("utf-8", "surrogateescape")

    def open_raw(self) -> BinaryIO:
        """The file's bytes as stored (still compressed); only a regular file is opened."""
        return open_regular_file(self.path)


def local_stamp(st: os.stat_result) -> str:
    """What tells a local file's content apart beyond its size and modification time: its device,
    inode and inode change time. The change time is set by the system whenever the file is
    written or replaced (unpacking an archive, copying), and cannot be set back like ``mtime``."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_ctime_ns}"


@dataclass
class Category:
    """A category: its name, its sample files in reading order, and the warnings of discovery.

    ``skipped`` holds one message per file or directory that discovery left out (unsupported
    types, loops, special files, ...); they end up in the result's warnings.
    """

    name: str
    files: list[SampleFile]
    skipped: list[str] = field(default_factory=list)
    # The category's own byte budget (a manifest's ``max_bytes``); reading takes the smaller of it and
    # the run's budget. ``None`` (every directory category) leaves the run's budget alone.
    max_bytes: int | None = None

    def fingerprint(self) -> str:
        """The cache identity: a hash of the name and every file's identity (path, size, mtime, stamp)."""
        h = hashlib.sha256(self.name.encode("utf-8", "surrogateescape"))
        for f in self.files:
            h.update(f.identity())
        if self.max_bytes is not None:
            # Only when set, so the fingerprints (and warm caches) of directory categories are unchanged.
            h.update(f"\0max_bytes={self.max_bytes}".encode())
        return h.hexdigest()[:24]


@dataclass
class ReadStats:
    """What reading a category found: bytes and documents taken, and problems worth a warning."""

    bytes: int = 0
    documents: int = 0
    replaced_chars: int = 0
    warnings: list[str] = field(default_factory=list)
    # The budget ended (reading stopped at it): no later document or file is read.
    exhausted: bool = False
    # A file's reading stopped early by rule (an over-long JSONL record skips the rest of its file):
    # later parts of that file give nothing (see :func:`iter_part_documents`).
    file_stopped: bool = False


# -- reading ------------------------------------------------------------------------------------------


def _decode(data: bytes, f: SampleFile, stats: ReadStats, *, final: bool = True) -> str:
    # Not final: the data was cut at the budget, so a character split there is not an error.
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=final)
    if "\ufffd" in text:
        # Count only replacements that came from invalid bytes, not literal U+FFFD in the input.
        bad = text.count("\ufffd") - data.count("\ufffd".encode())
        if bad > 0:
            stats.replaced_chars += bad
            stats.warnings.append(f"{f.display}: {bad} invalid UTF-8 byte sequence(s) replaced with U+FFFD")
    return text


@contextmanager
def _open_stream(f: SampleFile) -> Iterator[BinaryIO]:
    """The file's content, decompressed; both layers are closed on exit."""
    with f.open_raw() as raw:
        if not f.compressed:
            yield raw
            return
        # GzipFile does not close a file object it was given, hence the outer ``with``.
        with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
            yield gz  # type: ignore[misc]


def _cannot_read(f: SampleFile, exc: BaseException) -> SamplesError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return SamplesError(f"{f.display}: cannot read sample file ({reason}); fix or remove it")


def _looks_binary(head: bytes) -> bool:
    return b"\0" in head


_READ_CHUNK = 1 << 22


def _read_txt(f: SampleFile, stats: ReadStats, budget: int) -> Iterator[str]:
    try:
        with _open_stream(f) as fh:
            # Read a little past the budget so the cut can land on a character boundary, in chunks:
            # read(n) allocates n bytes up front, so a huge budget (--max-bytes 1TB) must not reach it.
            want, chunks = budget + 4, []
            while want > 0:
                chunk = fh.read(min(want, _READ_CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                want -= len(chunk)
            data = b"".join(chunks)
    except SamplesError:
        raise
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise _cannot_read(f, exc) from exc
    if _looks_binary(data[:8192]):
        stats.warnings.append(f"{f.display}: looks like a binary file (NUL bytes); skipped")
        return
    if data:
        yield _decode(data, f, stats, final=len(data) <= budget)


def read_bounded_lines(fh: BinaryIO, cap: int) -> Iterator[bytes]:
    """The lines of a binary stream, each at most ``cap`` bytes (newline excluded).

    A line longer than that raises :class:`RecordTooLongError` once ``cap + 1`` of its bytes are
    read: no more than that is ever held, however long the line (or the newline-free file).
    """
    lineno = 0
    while True:
        # A line of exactly ``cap`` bytes plus its newline is cap + 1 bytes long.
        line = fh.readline(cap + 1)
        if not line:
            return
        lineno += 1
        if len(line) > cap and not (len(line) == cap + 1 and line.endswith(b"\n")):
            raise RecordTooLongError(lineno, cap)
        yield line


class RecordTooLongError(Exception):
    """A JSONL line is longer than the record cap (internal: turned into a warning)."""

    def __init__(self, lineno: int, cap: int) -> None:
        super().__init__(f"line {lineno} is longer than {cap:,} bytes")
        self.lineno = lineno
        self.cap = cap


def _read_jsonl(f: SampleFile, stats: ReadStats, part: FilePart | None = None) -> Iterator[str]:
    key = f.field
    example = f'{{"{key}": "..."}}'
    lineno = 0
    # Line numbers in messages count from the start of the file; a part counts the lines before it
    # only when it has something to say (rare), never to read.
    origin = [0]  # where the first line read starts (set by _part_lines)

    def where(local: int) -> str:
        return f"{f.display}:{local + (_lines_before(f, origin[0]) if origin[0] else 0)}"

    try:
        with _open_stream(f) as fh:
            if part is None:
                lines = read_bounded_lines(fh, MAX_RECORD_BYTES)
            else:
                lines = _part_lines(fh, part, origin)
            for lineno, raw in enumerate(lines, 1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise SamplesError(
                        f"{where(lineno)}: not a JSON object ({exc}); each line of a .jsonl sample "
                        f"must be like {example}"
                    ) from exc
                text = record.get(key) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise SamplesError(
                        f"{where(lineno)}: record has no string field '{key}'; each line of a "
                        f".jsonl sample must be like {example}"
                    )
                yield text
    except RecordTooLongError as exc:
        stats.file_stopped = True
        stats.warnings.append(
            f"{where(exc.lineno)}: record longer than {exc.cap:,} bytes (the JSONL record "
            f"limit); it and the rest of the file are skipped. Put one document per line, and "
            f"documents this long in .txt files"
        )
    except SamplesError:
        raise
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise _cannot_read(f, exc) from exc


def _read_parquet(f: SampleFile, part: FilePart | None = None) -> Iterator[str]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependencyError(
            f"{f.display} is a Parquet file and pyarrow is not installed; "
            "run: pip install 'mixinfer[parquet]'"
        ) from exc
    column = f.field
    try:
        with f.open_raw() as raw:
            pf = pq.ParquetFile(raw)
            if column not in pf.schema_arrow.names:
                raise SamplesError(f"{f.display}: Parquet file has no '{column}' column")
            kind = pf.schema_arrow.field(column).type
            # Only text is read (null rows are skipped); a column of numbers or lists gave zero
            # documents without a word, where JSONL refuses a non-string field.
            text = kind.value_type if pa.types.is_dictionary(kind) else kind
            if not (pa.types.is_string(text) or pa.types.is_large_string(text) or str(text) == "string_view"):
                raise SamplesError(
                    f"{f.display}: Parquet column '{column}' holds {kind}, not text; name the text "
                    "column with the manifest's 'field'"
                )
            groups = None if part is None else list(range(part.start, min(part.end, pf.num_row_groups)))
            for batch in pf.iter_batches(row_groups=groups, columns=[column], batch_size=1024):
                for value in batch.column(0).to_pylist():
                    if isinstance(value, str):
                        yield value
    except SamplesError:
        raise
    except Exception as exc:  # pyarrow raises many types for damaged files
        raise SamplesError(f"{f.display}: cannot read Parquet file ({exc}); fix or remove it") from exc


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

    The budget (the smaller of ``max_bytes`` and the category's own ``max_bytes``) is taken
    deterministically: files in order, documents in file order, and the last unit cut at the budget
    on a character boundary. ``stats`` collects byte and document counts
    and warnings (invalid UTF-8, binary files and over-long records skipped).
    """
    if unit not in UNITS:
        raise SamplesError(f"unknown --unit {unit!r}; use one of {', '.join(UNITS)}")
    stats = stats if stats is not None else ReadStats()
    remaining = max_bytes if category.max_bytes is None else min(max_bytes, category.max_bytes)
    for f in category.files:
        if remaining <= 0:
            break
        remaining = yield from _file_units(f, None, remaining, unit, stats)


def iter_part_documents(
    f: SampleFile,
    part: FilePart | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    unit: str = "document",
    stats: ReadStats | None = None,
) -> Iterator[str]:
    """Yield the text units of one file, or of one part of it, as :func:`iter_documents` reads
    them when ``max_bytes`` of the budget is left at that point.

    :func:`iter_documents` of a category is exactly these, file after file (and part after part,
    for the parts :func:`file_parts` gives) with the budget carried over, stopping when
    ``stats.exhausted`` is set; a part after one that set ``stats.file_stopped`` gives nothing.
    This is what lets counting split a category into independent jobs.
    """
    if unit not in UNITS:
        raise SamplesError(f"unknown --unit {unit!r}; use one of {', '.join(UNITS)}")
    stats = stats if stats is not None else ReadStats()
    if max_bytes > 0:
        yield from _file_units(f, part, max_bytes, unit, stats)


def _file_units(
    f: SampleFile, part: FilePart | None, remaining: int, unit: str, stats: ReadStats
) -> Generator[str, None, int]:
    """The units of one file (or part) within ``remaining`` bytes; returns the budget left."""
    if f.kind == "txt":
        docs: Iterator[str] = _read_txt(f, stats, remaining)
    elif f.kind == "jsonl":
        docs = _read_jsonl(f, stats, part)
    else:
        docs = _read_parquet(f, part)
    try:
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
                    stats.exhausted = True
                    return remaining
    finally:
        # Close the file now (not when the generator is collected) when the budget ends in it.
        close = getattr(docs, "close", None)
        if close is not None:
            close()
    return remaining


# -- parts of a file ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilePart:
    """A deterministic part of one sample file, read on its own by :func:`iter_part_documents`.

    ``kind`` ``bytes``: the records (lines) of an uncompressed JSONL file that *start* at a byte
    offset in ``[start, end)``; ``rows``: the Parquet row groups ``start .. end - 1``. The parts
    :func:`file_parts` gives cover the file in order, each record exactly once.
    """

    kind: str
    start: int
    end: int


TO_END = 1 << 62
"""A :class:`FilePart` ``end`` meaning the end of the file."""


def file_parts(f: SampleFile, part_bytes: int) -> list[FilePart] | None:
    """Split ``f`` into parts of about ``part_bytes`` each, or ``None`` to read it whole.

    Only formats with random access split: uncompressed JSONL (by byte range, cut at records) and
    Parquet (by row group; its footer is read here). A text file is one document and never
    splits; compressed streams cannot be entered in the middle.
    """
    if f.size <= part_bytes or part_bytes <= 0:
        return None
    if f.kind == "jsonl" and f.name.endswith(".jsonl"):
        n = -(-f.size // part_bytes)
        # The last part runs to the end of the file, whatever its size is when it is read.
        bounds = [f.size * i // n for i in range(n)] + [TO_END]
        return [FilePart("bytes", a, b) for a, b in itertools.pairwise(bounds)]
    if f.kind == "parquet":
        try:
            import pyarrow.parquet as pq

            with f.open_raw() as raw:
                meta = pq.ParquetFile(raw).metadata
                sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
        except Exception:  # noqa: BLE001 - unreadable here: read whole, where the error is worded
            return None
        if len(sizes) < 2:
            return None
        parts: list[FilePart] = []
        start, acc = 0, 0
        for i, size in enumerate(sizes):
            acc += size
            if acc >= part_bytes or i == len(sizes) - 1:
                parts.append(FilePart("rows", start, i + 1))
                start, acc = i + 1, 0
        return parts if len(parts) > 1 else None
    return None


def _part_lines(fh: BinaryIO, part: FilePart, origin: list[int]) -> Iterator[bytes]:
    """The lines of ``fh`` that start in ``[part.start, part.end)``, bounded as in
    :func:`read_bounded_lines` (a line too long raises :class:`RecordTooLongError`); the offset
    of the first is put in ``origin[0]``."""
    pos = part.start
    if pos > 0:
        fh.seek(pos - 1)
        if fh.read(1) != b"\n":
            # Inside a line that belongs to an earlier part: skip to its end, in bounded chunks,
            # and no further than this part (a part with no line start in it is empty).
            while True:
                chunk = fh.readline(1 << 16)
                if not chunk:
                    return
                pos += len(chunk)
                if chunk.endswith(b"\n"):
                    break
                if pos >= part.end:
                    return
    origin[0] = pos
    lineno = 0
    cap = MAX_RECORD_BYTES
    while pos < part.end:
        line = fh.readline(cap + 1)
        if not line:
            return
        lineno += 1
        if len(line) > cap and not (len(line) == cap + 1 and line.endswith(b"\n")):
            raise RecordTooLongError(lineno, cap)
        pos += len(line)
        yield line


def _lines_before(f: SampleFile, offset: int) -> int:
    """How many lines of ``f`` end before ``offset``, the start of a line (for messages only)."""
    count = 0
    with _open_stream(f) as fh:
        left = offset
        while left > 0:
            chunk = fh.read(min(left, 1 << 20))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count
