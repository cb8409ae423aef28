"""Sample sources: where the text of each category comes from, chosen by the ``--samples`` spec.

A source turns a spec (a directory today; manifest files and fsspec URLs next) into
:class:`Category` objects, each a list of document files that worker processes can read
(:class:`SampleFile`, picklable) plus the warnings of discovery. Every reader of samples goes
through :func:`open_samples`::

    source = open_samples("samples/")        # or None for the bundled samples
    for category in source.categories():
        texts = iter_documents(category, max_bytes=5_000_000)

The registry works like tiktoken's plugin registry: every module of this package (other than
:mod:`~mixinfer.sources.base`) may define ``SOURCE_TYPES``, a sequence of :class:`SourceType`;
they are collected on first use. A source type says which specs it *claims* (by name or content,
cheaply) and *opens* them. Types are tried in order of ``priority`` (lower first), so a manifest
type (``priority`` 10, claiming ``*.yaml``/``*.json``/``*.toml`` files) or a URL type (claiming
``scheme://``) goes before the directory type, which claims any other local path. Adding a source
is one module here and one test; :func:`register_source` adds one from outside the package.

A category's :meth:`~Category.fingerprint` is its cache identity, built from each file's
:meth:`~SampleFile.identity` (a local file's relative path, size and mtime; a remote file's URL
and revision or etag), so sources never need to know about the cache.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from mixinfer.errors import SamplesError
from mixinfer.sources.base import (
    DEFAULT_MAX_BYTES,
    MAX_RECORD_BYTES,
    SUFFIXES,
    UNITS,
    Category,
    FilePart,
    ReadStats,
    SampleFile,
    display_path,
    file_parts,
    iter_documents,
    iter_part_documents,
    open_regular_file,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_RECORD_BYTES",
    "SUFFIXES",
    "UNITS",
    "Category",
    "FilePart",
    "ReadStats",
    "SampleFile",
    "SampleSource",
    "SourceType",
    "display_path",
    "file_parts",
    "is_url",
    "local_path",
    "iter_documents",
    "iter_part_documents",
    "open_regular_file",
    "open_samples",
    "register_source",
    "source_types",
]


@runtime_checkable
class SampleSource(Protocol):
    """Where the samples of one run come from."""

    @property
    def spec(self) -> str:
        """The spec as printable text (for the result's ``samples`` field and for messages)."""
        ...

    def categories(self) -> list[Category]:
        """The categories, sorted by name, each with its files in reading order.

        Raises :class:`~mixinfer.errors.SamplesError` when the source cannot be used.
        """
        ...


@dataclass(frozen=True)
class SourceType:
    """One kind of sample source in the registry.

    Attributes:
        name: a short name for messages (``directory``, ``manifest``, ``fsspec``).
        claims: whether a spec (a string: a path or a URL) is for this type. Must be cheap, must
            not raise, and must not open FIFOs or devices (look at the name, or ``os.stat``).
        open: build the source for a claimed spec; may raise ``SamplesError``.
        priority: types are tried in increasing priority; the first that claims a spec opens it.
    """

    name: str
    claims: Callable[[str], bool]
    open: Callable[[str], SampleSource]
    priority: int = 50


_REGISTERED: list[SourceType] = []
_DISCOVERED: list[SourceType] | None = None
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(spec: str) -> bool:
    """True when ``spec`` looks like a URL (``scheme://...``), as opposed to a local path."""
    return _URL.match(spec) is not None


def register_source(source_type: SourceType) -> None:
    """Add a source type from outside this package (a plugin); it joins the built-in types."""
    _REGISTERED.append(source_type)


def _discover_builtin() -> list[SourceType]:
    global _DISCOVERED
    if _DISCOVERED is None:
        found: list[SourceType] = []
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if info.name == "base" or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.extend(getattr(module, "SOURCE_TYPES", ()))
        _DISCOVERED = found
    return _DISCOVERED


def source_types() -> list[SourceType]:
    """Every known source type, in the order they are tried."""
    return sorted([*_discover_builtin(), *_REGISTERED], key=lambda t: (t.priority, t.name))


def open_samples(spec: str | os.PathLike[str] | None) -> SampleSource:
    """The sample source for ``spec``: the first registered type that claims it.

    ``None`` means the bundled samples (``data_samples/general``, shipped with the package).
    Nothing is read here beyond what choosing the type needs; call ``categories()`` on the
    result. Raises :class:`SamplesError` when no type claims the spec.
    """
    if spec is None:
        from mixinfer.samples import bundled_samples_dir

        spec = bundled_samples_dir()
    text = os.fspath(spec)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        # An empty path would silently mean the current directory.
        raise SamplesError("--samples is empty; pass a directory with one sub-directory of text per category")
    types = source_types()
    for source_type in types:
        if source_type.claims(text):
            return source_type.open(text)
    kinds = ", ".join(t.name for t in types)
    what = "URL" if is_url(text) else "path"
    raise SamplesError(
        f"--samples {display_path(text)}: no sample source reads this {what} (known kinds: {kinds}); "
        f"pass a directory with one sub-directory of text per category"
    )


def local_path(spec: str) -> Path | None:
    """``spec`` as a local path (``file://`` URLs included), or ``None`` for other URLs."""
    if spec.startswith("file://"):
        return Path(spec[len("file://") :])
    if is_url(spec):
        return None
    return Path(spec)
