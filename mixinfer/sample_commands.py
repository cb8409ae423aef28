"""``mixinfer samples``: pull a manifest into a local snapshot, print a recipe, describe samples.

* ``samples pull MANIFEST --output DIR [--max-bytes B]`` reads every category of a sample source
  (a manifest, a directory or a URL) within its budget and writes the documents it read to DIR in
  the usual layout, one folder per category, as ``part-NNNNN.jsonl.gz`` files (one JSON record per
  document, field ``text``; a new part every :data:`PART_TEXT_BYTES` of text; gzip headers without
  name or time, so the same input gives the same bytes), plus ``MANIFEST.json``: where each category
  came from (the source entries; each file's location, version, bytes and documents taken) and each
  written file's size, documents and sha256. DIR is written as a temporary sibling folder and
  renamed into place at the end, so an error or Ctrl-C leaves nothing; an existing, non-empty DIR
  is refused (exit 2). Because the snapshot holds exactly the documents that reading the source
  takes, ``--samples DIR`` gives the same counts as the source at that budget, offline.
* ``samples recipe NAME [--output FILE]`` prints (or writes) a shipped manifest
  (``mixinfer/data/recipe_NAME.yaml``); ``paper`` approximates the paper's categories with openly
  downloadable Hugging Face datasets and needs network access.
* ``samples info SPEC`` lists categories, sources, stored bytes (local: exact; remote: as listed)
  and, when the files are local and small enough to read quickly, text bytes and documents; the
  warnings of that reading (and a category without any text, which infer refuses) go to stderr.

The functions :func:`pull_samples` and :func:`describe_samples` do the work and return plain data
(they never print); the commands print it. Messages go to stderr; stdout carries the table, or
JSON with ``--format json``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from mixinfer import __version__
from mixinfer.errors import SamplesError, UsageError
from mixinfer.report import output_error
from mixinfer.sources import (
    DEFAULT_MAX_BYTES,
    Category,
    ReadStats,
    SampleFile,
    SampleSource,
    display_path,
    iter_documents,
    local_path,
    open_samples,
)
from mixinfer.sources.manifest import folder_holding, local_inputs

PULL_FORMAT = "mixinfer-pull/1"
PART_TEXT_BYTES = 64_000_000
"""Text bytes per written part file (before compression)."""
INFO_COUNT_LIMIT = 64_000_000
"""``samples info`` counts documents only when a category's local files total at most this size."""
RECORD_NAME = "MANIFEST.json"

samples_app = typer.Typer(
    no_args_is_help=True,
    help="Pull samples into a local snapshot, print a manifest recipe, or describe samples.",
)


# -- pull -------------------------------------------------------------------------------------------------


@dataclass
class _PartWriter:
    """Writes a category's documents as ``part-NNNNN.jsonl.gz`` files of bounded text size."""

    folder: Path
    part_bytes: int
    parts: list[dict[str, Any]] = field(default_factory=list)
    _raw: IO[bytes] | None = None
    _gz: gzip.GzipFile | None = None
    _text: int = 0
    _docs: int = 0

    def write(self, doc: str) -> None:
        if self._gz is None or self._text >= self.part_bytes:
            self.close()
            name = f"part-{len(self.parts):05d}.jsonl.gz"
            self._raw = open(self.folder / name, "xb")  # noqa: SIM115 - closed in close()
            # No file name and time 0 in the header: the same documents give the same bytes.
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0, compresslevel=6)
            self.parts.append({"path": f"{self.folder.name}/{name}"})
            self._text = self._docs = 0
        line = json.dumps({"text": doc}, ensure_ascii=False) + "\n"
        self._gz.write(line.encode("utf-8"))
        self._text += len(doc.encode("utf-8"))
        self._docs += 1

    def close(self) -> None:
        if self._gz is None or self._raw is None:
            return
        self._gz.close()
        self._raw.close()
        path = self.folder / Path(self.parts[-1]["path"]).name
        self.parts[-1].update(
            {
                "size": path.stat().st_size,
                "text_bytes": self._text,
                "documents": self._docs,
                "sha256": _sha256(path),
            }
        )
        self._gz = self._raw = None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _file_record(f: SampleFile) -> dict[str, Any]:
    record: dict[str, Any] = {"location": f.display, "size": f.size}
    version = getattr(f, "version", None)
    if version:
        record["version"] = version
    else:
        record["mtime_ns"] = f.mtime_ns
    if f.kind != "txt":
        record["field"] = f.field
    return record


def _declared_sources(source: SampleSource) -> dict[str, list[str]]:
    """Each category's source entries as its manifest writes them (empty for other sources)."""
    from mixinfer.sources.manifest import ManifestSource

    if not isinstance(source, ManifestSource):
        return {}
    return {cat.name: [e.where for e in cat.sources] for cat in source.manifest().categories}


def _sources_of(declared: dict[str, list[str]], category: Category) -> list[str]:
    """The category's manifest entries, else the folders its files are in."""
    if category.name in declared:
        return declared[category.name]
    folders = sorted({os.path.dirname(f.display) for f in category.files})
    if len(folders) > 1 and all(f.startswith(folders[0] + "/") for f in folders[1:]):
        return folders[:1]  # a directory category and its sub-folders: the category's folder
    return folders


def _check_new_folder(output: Path) -> None:
    try:
        if output.is_symlink() or (output.exists() and not output.is_dir()):
            raise UsageError(
                f"--output {display_path(output)} exists and is not a folder; choose a new folder"
            )
        if output.is_dir() and any(output.iterdir()):
            raise UsageError(
                f"--output {display_path(output)} exists and is not empty; pull never overwrites: choose "
                f"a new folder or remove it"
            )
    except OSError as exc:
        raise UsageError(f"--output {display_path(output)} cannot be used ({exc.strerror or exc})") from None


def pull_samples(
    spec: str,
    output: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    part_bytes: int = PART_TEXT_BYTES,
    on_category: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the documents of sample source ``spec`` to a new local folder ``output``.

    Each category takes at most ``max_bytes`` (default :data:`DEFAULT_MAX_BYTES`) and at most its
    own manifest budget. Returns the record also written as ``output/MANIFEST.json``. The folder
    appears only when everything is written (temporary sibling, then rename); on any error nothing
    is left. Raises :class:`UsageError` when ``output`` exists and is not an empty folder,
    :class:`SamplesError` for unusable samples. ``on_category(name, bytes, documents)`` is called
    after each category (for progress messages).
    """
    out = Path(output)
    _check_new_folder(out)
    inside = folder_holding(out, local_inputs(spec)[1])
    if inside is not None:
        raise UsageError(
            f"--output {display_path(out)} is inside {display_path(inside)}, which this pull reads: "
            "the snapshot would be read as a sample category next time; choose a folder elsewhere"
        )
    source = open_samples(spec)
    categories = source.categories()  # every listing error comes before anything is created
    declared = _declared_sources(source)
    budget = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(exc, out, "--output") from None
    tmp = out.parent / f".{out.name[:60]}.pull-{secrets.token_hex(6)}"
    record: dict[str, Any] = {
        "format": PULL_FORMAT,
        "mixinfer": __version__,
        "source": source.spec,
        "max_bytes": budget,
        "categories": {},
    }
    try:
        tmp.mkdir()
        for cat in categories:
            own = budget if cat.max_bytes is None else min(budget, cat.max_bytes)
            folder = tmp / cat.name
            folder.mkdir()
            writer = _PartWriter(folder, part_bytes)
            files: list[dict[str, Any]] = []
            warnings: list[str] = list(cat.skipped)
            remaining = own
            for f in cat.files:
                if remaining <= 0:
                    break
                # One file at a time with the budget left: the same documents as reading the whole
                # category (iter_documents carries the remainder from file to file the same way).
                stats = ReadStats()
                for doc in iter_documents(Category(cat.name, [f]), max_bytes=remaining, stats=stats):
                    writer.write(doc)
                # A budget that ends inside a character ends the category, as in iter_documents:
                # the bytes taken are then fewer than the budget, and must not start another file.
                remaining = 0 if stats.exhausted else remaining - stats.bytes
                warnings.extend(stats.warnings)
                files.append({**_file_record(f), "bytes": stats.bytes, "documents": stats.documents})
            writer.close()
            taken = sum(f["bytes"] for f in files)
            if taken == 0:
                raise SamplesError(
                    f"category '{cat.name}' has no readable text ({len(cat.files)} files, all empty, binary "
                    f"or unreadable); fix its sources"
                )
            record["categories"][cat.name] = {
                "sources": _sources_of(declared, cat),
                "max_bytes": own,
                "bytes": taken,
                "documents": sum(f["documents"] for f in files),
                "files": files,
                "output": writer.parts,
                "warnings": warnings,
            }
            if on_category is not None:
                on_category(cat.name, taken, record["categories"][cat.name]["documents"])
        (tmp / RECORD_NAME).write_text(
            json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        if out.is_dir():
            out.rmdir()  # checked empty above; rename cannot replace a folder on every system
        os.rename(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            # Reading the samples turns its OSErrors into SamplesError, so this one came from
            # writing: a folder without write permission, a full disk, /proc. A usage error
            # (exit 2) worded as write_atomic words it for the other commands' --output.
            raise output_error(exc, out, "--output") from exc
        raise
    return record


# -- info -------------------------------------------------------------------------------------------------


def describe_samples(spec: str, *, count_limit: int = INFO_COUNT_LIMIT) -> dict[str, Any]:
    """Categories, sources, stored bytes and (local and small: counted) text bytes and documents.

    Documents are counted by reading, within the category's own budget, only when every file of
    the category is local and they total at most ``count_limit`` bytes; otherwise they are ``None``.
    Each category's ``warnings`` hold what reading it reported (files skipped, bytes replaced) and,
    when it was read and has no text at all (``readable`` false), that infer would refuse it.
    """
    from mixinfer.sources.remote import RemoteFile

    source = open_samples(spec)
    categories = source.categories()
    declared = _declared_sources(source)
    out: dict[str, Any] = {"spec": source.spec, "kind": type(source).__name__, "categories": []}
    folder = local_path(spec)
    pulled = folder / RECORD_NAME if folder is not None else None
    if pulled is not None and pulled.is_file():
        try:
            out["pulled_from"] = json.loads(pulled.read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError):
            out["pulled_from"] = None
    for cat in categories:
        stored = sum(f.size for f in cat.files)
        local = not any(isinstance(f, RemoteFile) and not f.url.startswith("file://") for f in cat.files)
        entry: dict[str, Any] = {
            "name": cat.name,
            "files": len(cat.files),
            "stored_bytes": stored,
            "stored_bytes_exact": local,
            "max_bytes": cat.max_bytes,
            "sources": _sources_of(declared, cat),
            "text_bytes": None,
            "documents": None,
            "readable": None,
            "warnings": list(cat.skipped),
        }
        if local and stored <= count_limit:
            stats = ReadStats()
            for _ in iter_documents(cat, max_bytes=cat.max_bytes or DEFAULT_MAX_BYTES, stats=stats):
                pass
            entry.update(text_bytes=stats.bytes, documents=stats.documents, readable=stats.bytes > 0)
            entry["warnings"].extend(stats.warnings)
            if not entry["readable"]:
                # Said here, where it is cheap to know: infer and simulate stop at such a
                # category (exit 4), and 'info' is where a user checks samples before a long run.
                entry["warnings"].append(
                    f"category '{cat.name}' has no readable text ({len(cat.files)} file(s), all empty, "
                    "binary or unreadable): infer would refuse it; add text or remove the category"
                )
        out["categories"].append(entry)
    return out


# -- recipes ----------------------------------------------------------------------------------------------


def recipe_names() -> list[str]:
    """The shipped recipes (``mixinfer/data/recipe_NAME.yaml``)."""
    data = resources.files("mixinfer") / "data"
    return sorted(
        p.name[len("recipe_") : -len(".yaml")]
        for p in data.iterdir()
        if p.name.startswith("recipe_") and p.name.endswith(".yaml")
    )


def recipe_text(name: str) -> str:
    """The manifest text of recipe ``name`` (YAML, with its comments)."""
    names = recipe_names()
    if name not in names:
        raise UsageError(f"unknown recipe {name!r}; known recipes: {', '.join(names)}")
    return (resources.files("mixinfer") / "data" / f"recipe_{name}.yaml").read_text(encoding="utf-8")


# -- commands ---------------------------------------------------------------------------------------------

SpecArg = Annotated[
    str, typer.Argument(help="A manifest (.yaml/.yml/.json/.toml), a samples directory or a URL.")
]
FormatOpt = Annotated[
    str, typer.Option("--format", help="table (for people) or json (for programs), on stdout.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr unless it fails.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks.")]


def _check_format(fmt: str) -> str:
    if fmt not in ("table", "json"):
        raise UsageError(f"unknown --format {fmt!r}; use table or json")
    return fmt


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:,.1f} MB"


@contextmanager
def _spec_is_an_argument() -> Iterator[None]:
    """The sample sources' messages name ``--samples``, which ``samples pull|info`` do not have
    (their samples are an argument): say "the path" instead."""
    try:
        yield
    except SamplesError as exc:
        if exc.args and isinstance(exc.args[0], str):
            text = exc.args[0].replace("; check --samples", "; check the path")
            exc.args = (re.sub(r"(^|\s)--samples (?=\S)", r"\1samples ", text), *exc.args[1:])
        raise


@samples_app.command("pull")
def pull_command(
    manifest: SpecArg,
    output: Annotated[Path, typer.Option("--output", "-o", help="New folder for the snapshot.")],
    max_bytes: Annotated[
        str | None,
        typer.Option("--max-bytes", help="Bytes of text per category (e.g. 100MB).", show_default="1GB"),
    ] = None,
    fmt: FormatOpt = "table",
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Read every category of MANIFEST within its budget and write a local, offline snapshot."""
    from mixinfer import cli

    def run() -> None:
        _check_format(fmt)
        budget = None if max_bytes is None else cli.parse_size(max_bytes)  # at least 1 byte

        def said(name: str, nbytes: int, docs: int) -> None:
            cli.say(quiet, f"{name}: {_mb(nbytes)}, {docs:,} documents")

        with _spec_is_an_argument():
            record = pull_samples(manifest, output, max_bytes=budget, on_category=said)
        if fmt == "json":
            cli.write_stdout(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        total = sum(c["bytes"] for c in record["categories"].values())
        cli.say(
            quiet, f"pulled {len(record['categories'])} categories ({_mb(total)}) into {display_path(output)}"
        )

    cli.run_guarded(debug, run)


@samples_app.command("recipe")
def recipe_command(
    name: Annotated[str, typer.Argument(help="Recipe name (e.g. paper).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the manifest here (a new file).")
    ] = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Print (or write) the manifest of a named recipe; `paper` needs network access to use."""
    from mixinfer import cli
    from mixinfer.report import write_atomic

    def run() -> None:
        text = recipe_text(name)
        if output is None:
            cli.write_stdout(text)
            return
        if output.suffix.lower() not in (".yaml", ".yml"):
            raise UsageError(f"--output {display_path(output)}: a recipe is YAML; name the file *.yaml")
        if output.exists() or output.is_symlink():
            raise UsageError(f"--output {display_path(output)} exists; choose a new file name")
        write_atomic(output, text)
        cli.say(quiet, f"wrote recipe '{name}' to {display_path(output)}")

    cli.run_guarded(debug, run)


@samples_app.command("info")
def info_command(spec: SpecArg, fmt: FormatOpt = "table", debug: DebugOpt = False) -> None:
    """List categories, sources, bytes and documents of a samples directory, manifest or URL."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mixinfer import cli

    def run() -> None:
        _check_format(fmt)
        with _spec_is_an_argument():
            info = describe_samples(spec)
        if fmt == "json":
            cli.write_stdout(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
            return
        # As infer shows them: the table has no room for them, and JSON readers have the field.
        for c in info["categories"]:
            for warning in c["warnings"]:
                cli.say(False, f"[yellow]warning:[/yellow] {escape(warning)}")
        title = f"samples: {escape(info['spec'])}"
        if info.get("pulled_from"):
            title += f" (pulled from {escape(str(info['pulled_from']))})"
        table = Table(title=title, title_justify="left")
        for column, justify in (
            ("category", "left"),
            ("files", "right"),
            ("stored", "right"),
            ("text", "right"),
            ("documents", "right"),
            ("sources", "left"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for c in info["categories"]:
            stored = _mb(c["stored_bytes"]) + ("" if c["stored_bytes_exact"] else " (listed)")
            docs = "-" if c["documents"] is None else f"{c['documents']:,}"
            table.add_row(
                escape(c["name"]),
                str(c["files"]),
                stored,
                "[red]none[/red]" if c["readable"] is False else _mb(c["text_bytes"]),
                docs,
                escape(", ".join(c["sources"])),
            )
        Console(highlight=False, soft_wrap=True).print(table)

    cli.run_guarded(debug, run)
