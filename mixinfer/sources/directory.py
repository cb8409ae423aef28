"""The directory source: one sub-directory per category, named by the category.

Inside a category, sample files are found recursively and read in sorted order of their relative
path. The walk is safe on hostile trees:

* symbolic links are followed once: a link back to a directory above it (a loop), a second path
  to a directory already walked, or a second path (link or hard link) to a file already taken is
  skipped with a warning in ``Category.skipped``;
* only regular files are taken: a FIFO, socket or device is skipped with a warning and never
  opened;
* names that are not valid UTF-8 are used, shown with ``\\xNN`` escapes (a category named so is
  called by its escaped name, with a warning);
* paths the system cannot resolve (too long, unreadable) are skipped with a warning, or, for the
  samples directory itself, refused with :class:`~mixinfer.errors.SamplesError`.

Hidden entries (names starting with ``.``) are ignored.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from mixinfer.errors import SamplesError
from mixinfer.sources import SourceType, local_path
from mixinfer.sources.base import (
    Category,
    SampleFile,
    display_path,
    file_kind_name,
    is_valid_name,
    local_stamp,
)
from mixinfer.sources.remote import ALL_SUFFIXES, LocalZstdFile

# Every file type a manifest's path or URL takes (zstd included): one folder read as --samples
# DIR or through a manifest must give the same files.
EXPECTED = "*.txt, *.txt.gz, *.txt.zst, *.jsonl[.gz|.zst], *.parquet"


@dataclass(frozen=True)
class DirectorySource:
    """A local samples directory (the ``--samples DIR`` layout)."""

    root: Path

    @property
    def spec(self) -> str:
        """The directory, as printable text."""
        return display_path(self.root)

    def categories(self) -> list[Category]:
        """The categories, sorted by name (see :func:`discover`)."""
        return discover(self.root)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the path is longer than the system allows"
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop (too many levels of links)"
    return exc.strerror or str(exc)


def _stat_root(root: Path) -> os.stat_result:
    shown = display_path(root)
    try:
        return os.stat(root)
    except FileNotFoundError:
        raise SamplesError(f"samples directory {shown} does not exist; check --samples") from None
    except OSError as exc:
        raise SamplesError(
            f"samples directory {shown} cannot be used: {_why(exc)}; pass --samples a directory "
            f"with one sub-directory of text per category"
        ) from None


def _scandir_sorted(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as it:
        return sorted(it, key=lambda e: e.name)


def discover(samples_dir: str | os.PathLike[str]) -> list[Category]:
    """List the categories of a samples directory, sorted by name.

    Raises :class:`SamplesError` when the directory is missing, is not a directory (a file, a FIFO,
    a device), cannot be read, or holds no category with a readable sample file.
    """
    root = Path(samples_dir)
    shown = display_path(root)
    st = _stat_root(root)
    if stat.S_ISREG(st.st_mode):
        raise SamplesError(
            f"--samples {shown} is a file; it must be a directory with one sub-directory per category"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise SamplesError(
            f"--samples {shown} is {file_kind_name(st.st_mode)}, not a directory; it is not opened. "
            f"Pass a directory with one sub-directory per category"
        )
    try:
        entries = _scandir_sorted(root)
    except OSError as exc:
        raise SamplesError(
            f"samples directory {shown} cannot be read: {_why(exc)}; check --samples"
        ) from None
    subdirs: list[Path] = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir()  # follows symbolic links
        except OSError:
            is_dir = False
        if is_dir:
            subdirs.append(Path(entry.path))
    if not subdirs:
        raise SamplesError(
            f"samples directory {shown} has no category sub-directories; put each category's text "
            f"in {shown}/<category>/ ({EXPECTED})"
        )
    categories: list[Category] = []
    names: dict[str, Path] = {}
    for sub in subdirs:
        name = display_path(sub.name)
        if name in names:
            raise SamplesError(
                f"category directories {display_path(names[name])} and {display_path(sub)} have the same "
                f"name once non-UTF-8 bytes are escaped; rename one of them"
            )
        names[name] = sub
        category = walk_category(sub, name)
        if not is_valid_name(sub.name):
            category.skipped.insert(
                0,
                f"{display_path(sub)}: the category's directory name is not valid UTF-8; the category "
                f"is called '{name}' (rename the directory to choose its name)",
            )
        if not category.files:
            problems = "".join(f"; {s}" for s in category.skipped[:3])
            raise SamplesError(
                f"category '{name}' ({display_path(sub)}) has no readable sample files; add {EXPECTED} "
                f"files, or remove the directory{problems}"
            )
        categories.append(category)
    # By the printable name (the escaped form of a non-UTF-8 name may sort elsewhere than its raw form).
    categories.sort(key=lambda c: c.name)
    return categories


def walk_category(top: Path, name: str) -> Category:
    """The sample files under ``top`` (recursively, links followed once) as category ``name``."""
    skipped: list[str] = []
    found: list[tuple[str, Path, os.stat_result]] = []
    try:
        top_st = os.stat(top)
    except OSError as exc:
        return Category(name, [], [f"{display_path(top)}: cannot be read ({_why(exc)})"])
    # Directories by (device, inode): the first path that reached each one.
    seen_dirs: dict[tuple[int, int], str] = {(top_st.st_dev, top_st.st_ino): "."}

    def walk(directory: Path, rel: str, ancestors: frozenset[tuple[int, int]]) -> None:
        try:
            entries = _scandir_sorted(directory)
        except OSError as exc:
            skipped.append(f"{display_path(directory)}: directory cannot be read ({_why(exc)}); skipped")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            relpath = f"{rel}/{entry.name}" if rel else entry.name
            shown = display_path(path)
            try:
                st = os.stat(path)  # follows symbolic links
            except OSError as exc:
                skipped.append(f"{shown}: cannot be read ({_why(exc)}); skipped")
                continue
            if stat.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                first = seen_dirs.get(ident)
                where = "the category's directory" if first == "." else f"'{display_path(first or '')}'"
                if ident in ancestors:
                    skipped.append(f"{shown}: symbolic link loop (leads back to {where}); skipped")
                elif first is not None:
                    skipped.append(f"{shown}: a second path to {where}, already read; skipped")
                else:
                    seen_dirs[ident] = relpath
                    walk(path, relpath, ancestors | {ident})
            elif not stat.S_ISREG(st.st_mode):
                skipped.append(
                    f"{shown}: {file_kind_name(st.st_mode)}, not a regular file; skipped (never opened)"
                )
            elif not entry.name.endswith(ALL_SUFFIXES):
                skipped.append(f"{shown}: not a sample file type (expected {', '.join(ALL_SUFFIXES)})")
            else:
                found.append((relpath, path, st))

    walk(top, "", frozenset(seen_dirs))
    files: list[SampleFile] = []
    taken: dict[tuple[int, int], str] = {}
    # Sorted by relative path (of the escaped, printable names: the order is the same on every run).
    for relpath, path, st in sorted(found, key=lambda item: display_path(item[0])):
        shown_rel = display_path(relpath)
        ident = (st.st_dev, st.st_ino)
        if ident in taken:
            skipped.append(
                f"{display_path(path)}: the same file as {taken[ident]} (a link), already taken; skipped"
            )
            continue
        taken[ident] = shown_rel
        if not is_valid_name(relpath):
            skipped.append(f"{display_path(path)}: file name is not valid UTF-8 (shown escaped); read anyway")
        cls = LocalZstdFile if relpath.endswith(".zst") else SampleFile
        files.append(cls(path, shown_rel, st.st_size, st.st_mtime_ns, stamp=local_stamp(st)))
    return Category(name, files, skipped)


def _claims(spec: str) -> bool:
    # Any local path (or file:// URL): a missing or wrong one gets discover's precise message.
    return local_path(spec) is not None


def _open(spec: str) -> DirectorySource:
    path = local_path(spec)
    assert path is not None  # claimed
    return DirectorySource(path)


# Tried last: more specific local types (manifest files) claim their specs first.
SOURCE_TYPES = (SourceType("directory", _claims, _open, priority=100),)
