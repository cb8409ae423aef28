"""The registry of tokenizer formats: one module per format, recognised by content, then by name.

A *file format* (:class:`FileFormat`) says whether a file is its own from the file's first bytes
(:meth:`~FileFormat.sniff`, :data:`files.HEAD_BYTES` of them) and turns the file's bytes into a
:class:`~mixinfer.tokenizer.BPETokenizer` (:meth:`~FileFormat.parse`; :meth:`~FileFormat.load`
reads the file, bounded, and parses it). A *source scheme* (:class:`SourceScheme`) loads tokenizers
named by something other than a local path (``tiktoken:NAME``, a Hub id).

A local file is given to the first format of :data:`FORMATS` whose ``sniff`` accepts its content
(so a tiktoken ranks file called ``tokenizer.model`` is read as ranks); when none does, to the first
whose ``suffixes`` end its name (so a broken ``tokenizer.json`` gets the JSON error, not a generic
one); a text file that still matches nothing is read as a headerless ``merges.txt``
(:data:`LAST_RESORT`). A directory is searched for the file names of :data:`DIRECTORY_FILES`, in order.

Adding a format: a module with a class following :class:`FileFormat` (or :class:`SourceScheme`),
registered with :func:`register`, and a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import mixinfer.tokenizer  # noqa: F401  (BPETokenizer first: the format modules import it)
from mixinfer.errors import TokenizerError, TokenizerNotFoundError
from mixinfer.formats import files
from mixinfer.formats.hf_json import HFJsonFormat
from mixinfer.formats.hub import HubSource
from mixinfer.formats.merges_txt import MergesTxtFormat
from mixinfer.formats.sentencepiece import SentencePieceFormat
from mixinfer.formats.tekken import TekkenFormat
from mixinfer.formats.tiktoken_file import TiktokenFileFormat
from mixinfer.formats.tiktoken_registry import TiktokenRegistry
from mixinfer.tokenizer import BPETokenizer


@runtime_checkable
class FileFormat(Protocol):
    """A tokenizer file format.

    Attributes:
        name: short name, also ``BPETokenizer.format`` of what it loads.
        suffixes: lower-case endings of file names that suggest the format when no content matches.
    """

    name: str
    suffixes: tuple[str, ...]

    def sniff(self, path: Path, head: bytes) -> bool:
        """Whether ``head`` (the file's first bytes) is this format's content."""
        ...

    def parse(self, data: bytes, *, source: str, where: str) -> BPETokenizer:
        """The tokenizer in ``data`` (``where`` names the file in messages, ``source`` is stored)."""
        ...

    def load(self, path: Path, source: str) -> BPETokenizer:
        """Read ``path`` (regular files only, bounded: :mod:`mixinfer.formats.files`) and parse it."""
        ...


@runtime_checkable
class SourceScheme(Protocol):
    """Tokenizers named by something other than a local path.

    Attributes:
        name: short name.
        prefixed: the scheme is a prefix (``tiktoken:``) and wins over a local path of that name;
            otherwise it is tried only when no such path exists (a Hub id).
    """

    name: str
    prefixed: bool

    def claims(self, source: str) -> bool:
        """Whether ``source`` is written in this scheme."""
        ...

    def open(self, source: str, *, offline: bool) -> BPETokenizer:
        """Load it (never using the network when ``offline``)."""
        ...


FORMATS: list[FileFormat] = [
    SentencePieceFormat(),
    TekkenFormat(),
    HFJsonFormat(),
    TiktokenFileFormat(),
    MergesTxtFormat(),
]
"""File formats in the order their ``sniff`` is tried."""

LAST_RESORT: FileFormat | None = FORMATS[-1]
"""The format of a text file that no content or name matches (a headerless ``merges.txt``)."""

SCHEMES: list[SourceScheme] = [TiktokenRegistry(), HubSource()]
"""Source schemes; a scheme whose ``claims`` names a prefix (``tiktoken:``) wins over local paths."""

DIRECTORY_FILES = ("tokenizer.json", "tekken.json", "merges.txt", "tokenizer.model")
"""File names looked for, in order, in a directory given as the tokenizer."""


def register(fmt: FileFormat | SourceScheme, *, first: bool = False) -> None:
    """Add a format (or a source scheme); ``first`` tries it before the others."""
    table: list = FORMATS if isinstance(fmt, FileFormat) else SCHEMES
    table.insert(0 if first else len(table), fmt)


def detect(path: Path, head: bytes) -> FileFormat:
    """The format of a file: by content, else by name.

    Raises:
        TokenizerError: neither content nor name matches any format.
    """
    for fmt in FORMATS:
        if fmt.sniff(path, head):
            return fmt
    name = path.name.lower()
    for fmt in FORMATS:
        if name.endswith(fmt.suffixes):
            return fmt
    try:
        head.decode("utf-8")
        text = True
    except UnicodeDecodeError as exc:
        text = exc.start > len(head) - 4  # only a character cut at the end of the head
    if text and LAST_RESORT is not None:
        return LAST_RESORT
    raise TokenizerError(
        f"{path} is not a tokenizer file mixinfer recognises; expected one of: "
        + ", ".join(f.name for f in FORMATS)
        + " (see `mixinfer infer --help`)"
    )


def load_path(path: Path, source: str) -> BPETokenizer:
    """Load a local file or directory through the registry."""
    if path.is_dir():
        for filename in DIRECTORY_FILES:
            candidate = path / filename
            if candidate.is_file():
                return load_path(candidate, source)
        tiktoken_files = sorted(path.glob("*.tiktoken"))
        if len(tiktoken_files) == 1:
            return load_path(tiktoken_files[0], source)
        try:
            present = sorted(p.name for p in path.iterdir())[:8]
        except OSError:
            present = []
        raise TokenizerNotFoundError(
            f"{path} is a directory without tokenizer.json, tekken.json, merges.txt (+ vocab.json), "
            f"tokenizer.model or one .tiktoken file (it holds: {', '.join(present) or 'nothing'}); "
            "point at the tokenizer file itself"
        )
    head = files.read_head(path)
    return detect(path, head).load(path, source)


def scheme_for(source: str, *, exists: bool) -> SourceScheme | None:
    """The scheme that claims ``source``: a prefixed one always, the others when no path exists."""
    for scheme in SCHEMES:
        if scheme.claims(source) and (scheme.prefixed or not exists):
            return scheme
    return None
