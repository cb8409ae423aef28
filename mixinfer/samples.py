"""Category samples: where they come from, how their documents are read, and the bundled set.

This module is the stable entry point; the machinery lives in :mod:`mixinfer.sources`:

* :func:`open_samples` chooses a :class:`SampleSource` by the ``--samples`` spec (a directory
  today; see :mod:`mixinfer.sources` for the registry) and ``source.categories()`` lists the
  :class:`Category` objects;
* :func:`discover` is the directory source (one sub-directory per category, files read in sorted
  order of their relative path; see :mod:`mixinfer.sources.directory` for links, special files
  and odd names);
* :func:`iter_documents` reads a category's documents within a byte budget, so the same budget
  always takes the same bytes:

  - ``*.txt`` / ``*.txt.gz``: one file is one document;
  - ``*.jsonl`` / ``*.jsonl.gz``: one record (field ``text``) is one document; a record (line)
    longer than :data:`MAX_RECORD_BYTES` (16 MiB) is skipped with a warning, with the rest of its
    file;
  - ``*.parquet``: one row (column ``text``) is one document (needs the ``parquet`` extra).

  Other files are skipped with a warning; only regular files are ever opened.

The bundled samples (Debian man pages and gettext catalogues, see ``data_samples/MANIFEST.md``)
and the demo tokenizer ship inside the package: :func:`bundled_samples_dir` and
:func:`bundled_demo_tokenizer` find them in an installed wheel, an editable install or a source
checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mixinfer.errors import SamplesError, TokenizerNotFoundError
from mixinfer.sources import SampleSource, open_samples
from mixinfer.sources.base import (
    DEFAULT_MAX_BYTES,
    MAX_RECORD_BYTES,
    UNITS,
    Category,
    ReadStats,
    SampleFile,
    iter_documents,
)
from mixinfer.sources.directory import DirectorySource, discover

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_RECORD_BYTES",
    "UNITS",
    "Category",
    "DirectorySource",
    "ReadStats",
    "SampleFile",
    "SampleSource",
    "bundled_data_dir",
    "bundled_demo_tokenizer",
    "bundled_samples_dir",
    "discover",
    "iter_documents",
    "open_samples",
]

# The bundled data's directory name: ``data_samples/`` at the top of the repository, installed as
# the package data ``mixinfer/data_samples/`` (pyproject maps one onto the other).
BUNDLED_DIR = "data_samples"


def _bundled_candidates() -> list[Path]:
    """Where the bundled data may be, most specific first."""
    candidates: list[Path] = []
    # 1. Installed from a wheel (or sdist): package data inside the package directory.
    installed = resources.files("mixinfer").joinpath(BUNDLED_DIR)
    if isinstance(installed, Path):
        candidates.append(installed)
    # 2. A source checkout, run in place or through an editable install (whose import finder maps
    #    the package onto mixinfer/ of the checkout, not onto data_samples/).
    candidates.append(Path(__file__).resolve().parent.parent / BUNDLED_DIR)
    return candidates


def bundled_data_dir() -> Path:
    """The bundled data directory (``general/``, ``programming/``, ``demo/``, ``MANIFEST.md``).

    Found through the installed package (``importlib.resources``), then next to the package in a
    source checkout (editable installs); never in the current directory. Raises :class:`SamplesError`
    when none holds it (a zipped install, or a checkout without the data).
    """
    candidates = _bundled_candidates()
    for candidate in candidates:
        if (candidate / "general").is_dir():
            return candidate
    raise SamplesError(
        "the bundled samples (data_samples/general) were not found in the installed mixinfer package "
        f"(looked in {', '.join(str(c) for c in dict.fromkeys(candidates))}); reinstall mixinfer "
        "from a wheel or a full checkout, or pass --samples DIR with one sub-directory of text per "
        "category"
    )


def bundled_samples_dir() -> Path:
    """The default samples: the bundled ``data_samples/general`` categories (see :func:`bundled_data_dir`)."""
    return bundled_data_dir() / "general"


def bundled_demo_tokenizer() -> Path:
    """The bundled demo tokenizer (``data_samples/demo/tokenizer.json``, with ``truth.json`` beside it).

    Raises :class:`~mixinfer.errors.TokenizerNotFoundError` when it is not installed.
    """
    try:
        path = bundled_data_dir() / "demo" / "tokenizer.json"
    except SamplesError:
        raise TokenizerNotFoundError(
            "the bundled demo tokenizer (data_samples/demo/tokenizer.json) was not found in the installed "
            "mixinfer package; reinstall mixinfer from a wheel or a full checkout, or name a tokenizer "
            "(e.g. mixinfer infer tokenizer.json)"
        ) from None
    if not path.is_file():
        raise TokenizerNotFoundError(
            f"the bundled demo tokenizer {path} is missing; reinstall mixinfer, or name a tokenizer "
            f"(e.g. mixinfer infer tokenizer.json)"
        )
    return path
