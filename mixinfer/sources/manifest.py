"""Manifest files: categories whose samples come from local paths, globs and fsspec URLs.

A manifest (``.yaml`` / ``.yml`` / ``.json`` / ``.toml``, given as ``--samples``) lists each
category's sources::

    description: optional text
    categories:
      en:
        sources:
          - path: corpora/en/*.txt.gz                  # a local file, directory or glob
          - url: hf://datasets/ORG/NAME/PATH/*.parquet  # any fsspec URL (file, folder or glob)
            field: text                                # JSON field / Parquet column (default text)
        max_bytes: 100MB                               # this category's budget (optional)

Rules (all checked before anything is read; a violation is a :class:`SamplesError` naming the
manifest, the category and the key):

* only the keys above are allowed; every category has at least one source; each source has
  exactly one of ``path`` and ``url``, and optionally ``field``;
* relative paths resolve against the manifest's folder (``~`` is expanded); a path that does not
  exist, or a glob that matches nothing, is an error;
* ``max_bytes`` is a positive number of bytes or a size like ``100MB`` / ``1GiB``; a category reads
  the *smaller* of it and the run's ``--max-bytes``;
* category names are strings (quote YAML's ``no``, ``on``, numbers ...), without ``/``, not hidden.

Document order, which decides what the budget takes, is fixed: sources in manifest order; within a
directory, files sorted by their relative path (exactly as the directory source reads a category
folder, so ``path: samples/en`` gives the same documents as ``--samples samples`` does for ``en``);
within a glob or a remote folder, files sorted by path. A file reached twice (two entries, or a
link) is read once, with a warning. Categories are sorted by name.
"""

from __future__ import annotations

import glob as globmod
import itertools
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mixinfer.errors import MissingDependencyError, MixinferError, SamplesError
from mixinfer.sources import SourceType, is_url, local_path
from mixinfer.sources.base import (
    Category,
    SampleFile,
    display_path,
    file_kind_name,
    local_stamp,
    open_regular_file,
)
from mixinfer.sources.directory import walk_category
from mixinfer.sources.remote import ALL_SUFFIXES, LocalZstdFile, list_url
from mixinfer.strictload import DuplicateKeyError, json_loads, yaml_safe_load

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json", ".toml")
MAX_MANIFEST_BYTES = 16 << 20
TOP_KEYS = ("categories", "description")
CATEGORY_KEYS = ("sources", "max_bytes", "description")
SOURCE_KEYS = ("path", "url", "field")

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceEntry:
    """One source of a category: a local ``path`` or a ``url``, and the field holding the text."""

    path: str | None = None
    url: str | None = None
    field: str = "text"

    @property
    def where(self) -> str:
        """The path or URL as written."""
        return self.url if self.url is not None else str(self.path)


@dataclass(frozen=True)
class CategorySpec:
    """A category as the manifest declares it (nothing resolved yet)."""

    name: str
    sources: tuple[SourceEntry, ...]
    max_bytes: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated manifest. ``base`` is the folder relative paths resolve against."""

    where: str
    base: Path
    categories: tuple[CategorySpec, ...]
    description: str | None = None


def parse_size(value: object, where: str) -> int:
    """A byte count: a positive integer or a size text (``100MB``, ``1.5GB``, ``512KiB``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SamplesError(f"{where} must be a number of bytes or a size like 100MB, not {value!r}")
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.match(value)
        if not m:
            raise SamplesError(f"{where} {value!r} is not a size; use e.g. 5000000, 100MB, 1GB, 512KiB")
        unit = (m.group(2) or "").lower()
        factor = _UNITS.get(unit[:1], 1)
        if "i" in unit[1:2]:
            factor = 1 << {"k": 10, "m": 20, "g": 30, "t": 40}[unit[0]]
        n = int(float(m.group(1)) * factor)
    if n <= 0:
        raise SamplesError(f"{where} must be positive, not {value!r}")
    return n


# -- reading and validating ---------------------------------------------------------------------------


def _parse_text(text: str, suffix: str, where: str) -> Any:
    if suffix == ".json":
        try:
            return json_loads(text)
        except DuplicateKeyError as exc:
            raise SamplesError(f"manifest {where}: {exc}; give every category once") from exc
        except ValueError as exc:
            raise SamplesError(f"manifest {where} is not valid JSON ({exc}); fix it") from exc
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError as exc:
                raise MissingDependencyError(
                    f"manifest {where} is TOML, which needs tomli on Python 3.10; "
                    f"run: pip install 'mixinfer[toml]'"
                ) from exc
        try:
            return tomllib.loads(text)
        except ValueError as exc:
            raise SamplesError(f"manifest {where} is not valid TOML ({exc}); fix it") from exc
    try:
        import yaml
    except ImportError as exc:
        raise MissingDependencyError(
            f"manifest {where} is YAML, which needs PyYAML; run: pip install 'mixinfer[yaml]'"
        ) from exc
    try:
        return yaml_safe_load(text)
    except DuplicateKeyError as exc:
        raise SamplesError(f"manifest {where}: {exc}; give every category once") from exc
    except yaml.YAMLError as exc:
        raise SamplesError(f"manifest {where} is not valid YAML ({exc}); fix it") from exc


def _check_keys(mapping: dict[Any, Any], known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            raise SamplesError(f"{where}: unknown key {key!r} (known keys: {', '.join(known)})")


def _optional_text(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise SamplesError(f"{where} must be text, not {type(value).__name__}")


def _parse_source(raw: object, where: str) -> SourceEntry:
    if isinstance(raw, str):
        raise SamplesError(
            f"{where} must be a mapping like {{path: ...}} or {{url: ...}}, not the text {raw!r}"
        )
    if not isinstance(raw, dict):
        raise SamplesError(f"{where} must be a mapping like {{path: ...}} or {{url: ...}}")
    _check_keys(raw, SOURCE_KEYS, where)
    has_path, has_url = "path" in raw, "url" in raw
    if has_path == has_url:
        raise SamplesError(f"{where}: give exactly one of 'path' (local) and 'url' (fsspec URL)")
    key = "path" if has_path else "url"
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise SamplesError(f"{where}.{key} must be non-empty text, not {value!r}")
    field = raw.get("field", "text")
    if not isinstance(field, str) or not field:
        raise SamplesError(
            f"{where}.field must be non-empty text (a JSON field or Parquet column), not {field!r}"
        )
    if has_url and not is_url(value):
        raise SamplesError(f"{where}.url {value!r} is not a URL (scheme://...); use 'path' for local files")
    return SourceEntry(path=value if has_path else None, url=value if has_url else None, field=field)


def _check_name(name: object, where: str) -> str:
    if not isinstance(name, str):
        raise SamplesError(
            f"manifest {where}: category name {name!r} is a {type(name).__name__}, not text; quote it "
            f"(YAML reads no, yes, on, off and numbers as other types)"
        )
    if not name or name.startswith(".") or "/" in name or "\\" in name or name != name.strip():
        raise SamplesError(
            f"manifest {where}: category name {name!r} cannot be used (it names a folder in a pulled "
            f"snapshot: no '/', no leading '.', no surrounding spaces)"
        )
    return name


def parse_manifest(data: object, where: str, base: Path) -> Manifest:
    """Validate parsed manifest ``data`` (from ``where``, relative paths against ``base``)."""
    if not isinstance(data, dict):
        raise SamplesError(f"manifest {where} must be a mapping with a 'categories' key")
    _check_keys(data, TOP_KEYS, f"manifest {where}")
    cats = data.get("categories")
    if not isinstance(cats, dict) or not cats:
        raise SamplesError(
            f"manifest {where}: 'categories' must be a non-empty mapping of category name to "
            f"{{sources: [...]}}"
        )
    specs: list[CategorySpec] = []
    for name, body in cats.items():
        name = _check_name(name, where)
        at = f"manifest {where}: category '{name}'"
        if not isinstance(body, dict):
            raise SamplesError(f"{at} must be a mapping with a 'sources' list")
        _check_keys(body, CATEGORY_KEYS, at)
        sources = body.get("sources")
        if not isinstance(sources, list) or not sources:
            raise SamplesError(f"{at}: 'sources' must be a non-empty list of {{path: ...}} or {{url: ...}}")
        entries = tuple(_parse_source(s, f"{at}: sources[{i}]") for i, s in enumerate(sources))
        max_bytes = body.get("max_bytes")
        budget = None if max_bytes is None else parse_size(max_bytes, f"{at}: max_bytes")
        description = _optional_text(body.get("description"), f"{at}: description")
        specs.append(CategorySpec(name, entries, budget, description))
    specs.sort(key=lambda c: c.name)
    description = _optional_text(data.get("description"), f"manifest {where}: description")
    return Manifest(where, base, tuple(specs), description)


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a local manifest file (only a regular file, at most 16 MiB, is read)."""
    p = Path(path)
    where = display_path(p)
    suffix = p.suffix.lower()
    if suffix not in MANIFEST_SUFFIXES:
        raise SamplesError(f"manifest {where}: unknown type; name it *.yaml, *.yml, *.json or *.toml")
    try:
        with open_regular_file(p) as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise SamplesError(f"manifest {where} does not exist; check --samples") from None
    except OSError as exc:
        reason = exc.strerror or exc
        raise SamplesError(f"manifest {where} cannot be read ({reason}); check --samples") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise SamplesError(f"manifest {where} is larger than 16 MiB; it is not a manifest")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SamplesError(f"manifest {where} is not UTF-8 text ({exc})") from exc
    return parse_manifest(_parse_text(text, suffix, where), where, p.absolute().parent)


# -- resolving sources to files -----------------------------------------------------------------------


def _relname(path: Path, base: Path) -> str:
    try:
        return display_path(path.relative_to(base))
    except ValueError:
        return display_path(path)


def _local_file(path: Path, st: os.stat_result, base: Path, field: str) -> SampleFile:
    rel = _relname(path, base)
    cls = LocalZstdFile if path.name.endswith(".zst") else SampleFile
    return cls(path, rel, st.st_size, st.st_mtime_ns, field, stamp=local_stamp(st))


def _resolve_path(entry: SourceEntry, base: Path, at: str, name: str) -> tuple[list[SampleFile], list[str]]:
    assert entry.path is not None
    text = os.path.expanduser(entry.path)
    full = Path(text) if os.path.isabs(text) else base / text
    if _GLOB.search(text):
        matches = sorted(globmod.glob(str(full), recursive=True))
        if not matches:
            raise SamplesError(f"{at}: path {entry.path!r} matches no file (looked for {display_path(full)})")
        targets = [Path(m) for m in matches]
        from_glob = True
    else:
        targets = [full]
        from_glob = False
    files: list[SampleFile] = []
    skipped: list[str] = []
    for target in targets:
        shown = display_path(target)
        try:
            st = os.stat(target)
        except FileNotFoundError:
            raise SamplesError(
                f"{at}: path {entry.path!r} does not exist ({shown}); fix the manifest"
            ) from None
        except OSError as exc:
            raise SamplesError(f"{at}: path {shown} cannot be read ({exc.strerror or exc})") from None
        if stat.S_ISDIR(st.st_mode):
            # The directory source's own walk: same files, same order as a category folder.
            walked = walk_category(target, name)
            for f in walked.files:
                files.append(replace(f, relpath=_relname(Path(f.path), base), field=entry.field))
            skipped.extend(walked.skipped)
        elif not stat.S_ISREG(st.st_mode):
            msg = f"{shown}: {file_kind_name(st.st_mode)}, not a regular file; skipped (never opened)"
            if not from_glob:
                raise SamplesError(f"{at}: {msg.replace('; skipped (never opened)', '')}; name a file")
            skipped.append(msg)
        elif not target.name.endswith(ALL_SUFFIXES):
            msg = f"{shown}: not a sample file type (expected {', '.join(ALL_SUFFIXES)})"
            if not from_glob:
                raise SamplesError(f"{at}: {msg}; rename it or remove the entry")
            skipped.append(msg + "; skipped")
        else:
            files.append(_local_file(target, st, base, entry.field))
    return files, skipped


def resolve_category(spec: CategorySpec, manifest: Manifest) -> Category:
    """The category's files, in reading order (sources in manifest order, each sorted by path).

    Lists remote URLs (fsspec), but reads no content. Raises :class:`SamplesError` naming the
    manifest, the category and the entry when a source is missing, unreachable or empty.
    """
    at = f"manifest {manifest.where}: category '{spec.name}'"
    files: list[SampleFile] = []
    skipped: list[str] = []
    seen: dict[object, str] = {}
    for i, entry in enumerate(spec.sources):
        where = f"{at}: sources[{i}]"
        if entry.url is not None:
            try:
                found, skip = list_url(entry.url, entry.field)
            except SamplesError as exc:
                raise SamplesError(f"{where}: {exc}") from None
            got: list[SampleFile] = list(found)
        else:
            got, skip = _resolve_path(entry, manifest.base, where, spec.name)
        skipped.extend(skip)
        for f in got:
            if isinstance(f.path, Path):
                try:
                    st = os.stat(f.path)
                    key: object = (st.st_dev, st.st_ino)
                except OSError:
                    key = str(f.path)
            else:
                key = f.display
            if key in seen:
                skipped.append(f"{f.display}: already taken (as {seen[key]}) by an earlier source; read once")
                continue
            seen[key] = f.display
            files.append(f)
    if not files:
        problems = "".join(f"; {s}" for s in skipped[:3])
        raise SamplesError(f"{at} has no readable sample files ({', '.join(ALL_SUFFIXES)}){problems}")
    return Category(spec.name, files, skipped, spec.max_bytes)


@dataclass(frozen=True)
class ManifestSource:
    """The sample source of a manifest file."""

    path: Path

    @property
    def spec(self) -> str:
        """The manifest's path, as printable text."""
        return display_path(self.path)

    def manifest(self) -> Manifest:
        """The parsed, validated manifest."""
        return load_manifest(self.path)

    def categories(self) -> list[Category]:
        """Every category, sorted by name, with its files resolved (remote ones listed)."""
        manifest = self.manifest()
        return [resolve_category(spec, manifest) for spec in manifest.categories]


def _claims(spec: str) -> bool:
    path = local_path(spec)
    if path is None or not path.name.lower().endswith(MANIFEST_SUFFIXES):
        return False
    try:
        # A folder named like a manifest (``samples.json/``) is still a samples directory.
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return True  # a missing manifest gets the manifest's message


def _open(spec: str) -> ManifestSource:
    path = local_path(spec)
    assert path is not None  # claimed
    return ManifestSource(path)


# Before the directory source (100), which would call a manifest "a file, not a directory"; after 10,
# where a plugin may take some manifests for itself.
SOURCE_TYPES = (SourceType("manifest", _claims, _open, priority=15),)


def folder_holding(path: Path, folders: list[Path]) -> Path | None:
    """The first of ``folders`` that ``path`` is inside (links resolved), or ``None``."""
    resolved = path.resolve()
    return next((f for f in folders if resolved.is_relative_to(f.resolve())), None)


def local_inputs(spec: str | os.PathLike[str] | None) -> tuple[list[Path], list[Path]]:
    """The local files and folders that samples ``spec`` reads: ``(files, folders)``.

    A folder of samples is itself; a manifest is its own file plus every local ``path`` and
    ``file://`` ``url`` it names (a glob up to its first wildcard). Used to refuse an output
    written over or inside what is read (it would destroy a manifest, or be read as a sample by
    the next run). Never raises: a manifest that cannot be read yields just its file, and the run
    reports why.
    """
    if spec is None:
        return [], []
    where = local_path(os.fspath(spec))
    if where is None:
        return [], []
    try:
        if where.is_dir():
            return [], [where]
        if not where.is_file():
            return [], []
    except OSError:
        return [], []
    files: list[Path] = [where]
    folders: list[Path] = []
    if where.suffix.lower() not in MANIFEST_SUFFIXES:
        return files, folders
    try:
        manifest = load_manifest(where)
    except MixinferError:
        return files, folders
    for category in manifest.categories:
        for entry in category.sources:
            # A file:// URL is read from this machine like a path: an output inside it would be
            # read back as a sample just the same.
            named = entry.path if entry.url is None else local_path(entry.url)
            if named is None:
                continue
            fixed = list(itertools.takewhile(lambda p: not _GLOB.search(p), Path(named).parts))
            root = manifest.base / Path(*fixed) if fixed else manifest.base
            try:
                if root.is_dir():
                    folders.append(root)
                elif root.is_file():
                    files.append(root)
            except OSError:
                continue
    return files, folders
