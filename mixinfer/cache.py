"""A content-addressed on-disk cache of numpy arrays (word counts, merge-replay traces, LP solutions).

Layout::

    <dir>/mixinfer-cache.json      marker: {"format": "mixinfer-cache", "layout": 1}
    <dir>/CACHEDIR.TAG             the Cache Directory Tagging signature (backup tools skip the folder)
    <dir>/<kind>/<key>.npz         one entry; <kind> is one of KINDS, <key> 32 lowercase hex digits
    <dir>/<kind>/.<key>.<16 hex>.tmp   an entry being written

The key is a hash of everything that changes the content (the caller's job, see :func:`make_key`).
Each entry carries a SHA-256 of every array it stores, so a truncated or corrupt entry is detected on
load, removed and recomputed. Entries are written to a unique temporary file in the same folder and
renamed into place, so concurrent writers of the same key each leave a complete entry and readers
never see a partial one. Files and folders are created with the usual permissions (``0666``/``0777``
less the umask, like any ``open(..., "w")``), so a cache can be shared by a group.

Only what the cache wrote is ever touched. A folder is used as a cache when it is missing, empty, or
holds the marker; the marker is written with the first entry. ``clear`` removes only entry and
temporary files of the cache's own names, in its own kind folders, never following a symlink.
Any other non-empty folder is refused with a :class:`~mixinfer.errors.CacheError` (nothing is read,
written or removed there), so ``--cache-dir ~`` cannot delete anything.

Caches written before the marker existed (mixinfer up to this layout, e.g. ``~/.cache/mixinfer``) are
recognised conservatively and adopted (the marker is added on the next write or clear): the folder may
hold only the old kind folders (``words``, ``trace``, ``solution``, ``sim-tokenizer``, ``sim-counts``,
real folders, not symlinks) holding only regular files named like entries or like the old temporary
files. A folder with anything else in it is refused; the message tells the user to move their files
out or delete the folder.

A ``mixinfer cache clear`` (or an ``rm -rf``) while a run uses the cache does not break the run: an
entry that vanishes is a miss, and a write recreates the folders it needs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixinfer.errors import CacheError

# Bump when the layout or meaning of cached arrays changes; it is part of every key.
FORMAT_VERSION = 1

# Bump when the folder layout changes (file names, marker); a newer layout is refused, not guessed at.
LAYOUT_VERSION = 1

# Every kind of entry the cache holds: the only folders it creates, lists or clears. A new kind
# must be added here (load and store refuse others, so a typo cannot scatter entries).
KINDS = frozenset({"words", "trace", "solution", "bootstrap", "sim-tokenizer", "sim-counts"})
# The kinds of the layout before the marker: what an unmarked old cache may hold (never extended).
_LEGACY_KINDS = frozenset({"words", "trace", "solution", "sim-tokenizer", "sim-counts"})

MARKER_NAME = "mixinfer-cache.json"
TAG_NAME = "CACHEDIR.TAG"
_MARKER_FORMAT = "mixinfer-cache"
_MARKER_TEXT = json.dumps({"format": _MARKER_FORMAT, "layout": LAYOUT_VERSION}) + "\n"
# https://bford.info/cachedir/: the first line is fixed; the rest is free text.
_TAG_TEXT = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by mixinfer.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)

_KEY_RE = re.compile(r"[0-9a-f]{32}")
_ENTRY_RE = re.compile(r"[0-9a-f]{32}\.npz")
# Ours: .<key>.<16 hex>.tmp. Before the marker, tempfile.mkstemp's: .<key>.<8 of [a-z0-9_]>.tmp.
_TEMP_RE = re.compile(r"\.[0-9a-f]{32}\.(?:[0-9a-f]{16}|[a-z0-9_]{8})\.tmp")
_MARKER_TEMP_RE = re.compile(r"\.(?:CACHEDIR\.TAG|mixinfer-cache\.json)\.[0-9a-f]{16}\.tmp")

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Reading never follows a symlink and never blocks on a FIFO planted where an entry belongs.
_READ_FLAGS = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
# O_EXCL: a fresh file (never an existing one or a symlink); 0o666 less the umask, as open(..., "w").
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
_CREATE_MODE = 0o666
# clear() works relative to open folder descriptors, so a folder swapped for a symlink is never followed.
_FD_WALK = os.scandir in os.supports_fd and os.unlink in os.supports_dir_fd and os.open in os.supports_dir_fd

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_WRITE_ATTEMPTS = 10
# clear() leaves temporary files younger than this: they belong to writes in progress (the file's
# mtime moves with every write), which a clear must not break. Older ones are a killed writer's litter.
_FRESH_TEMP_SECONDS = 120.0

# What a folder is, as far as the cache is concerned.
_MISSING, _EMPTY, _MARKED, _LEGACY = "missing", "empty", "marked", "legacy"

# One encoder for every key: json.dumps builds a new one per call (a third of make_key's time).
_KEY_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def default_cache_dir() -> Path:
    """``$MIXINFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/mixinfer``, else ``~/.cache/mixinfer``.

    A relative ``$XDG_CACHE_HOME`` is ignored, as the XDG Base Directory specification requires.
    """
    env = os.environ.get("MIXINFER_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "mixinfer"


def make_key(*parts: object) -> str:
    """Hash the parts (strings, numbers, nested lists) and the cache format version into a key.

    The key is the first 32 hex digits of the SHA-256 of
    ``json.dumps([FORMAT_VERSION, *parts], sort_keys=True, default=str)``; it must never change for
    the same parts, or every existing cache goes cold.
    """
    payload = _KEY_ENCODER.encode([FORMAT_VERSION, *parts])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _digest(arr: np.ndarray) -> str:
    h = hashlib.sha256(str(arr.dtype).encode() + str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _owner_note(path: Path) -> str:
    """Who owns ``path`` (or its nearest existing parent) when it is not us: the usual reason a
    shared cache cannot be written."""
    geteuid = getattr(os, "geteuid", None)
    for candidate in (path, *path.parents):
        try:
            uid = os.stat(candidate).st_uid
            break
        except OSError:
            continue
    else:
        return ""
    if geteuid is None or uid == geteuid():
        return ""
    try:
        import pwd

        name = pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        name = "?"
    return f"; it is owned by user {name!r} (uid {uid})"


@dataclass
class CacheInfo:
    """What the cache holds: its directory, entries and bytes per kind."""

    directory: Path
    entries: dict[str, int]
    bytes: dict[str, int]


class Cache:
    """The on-disk cache; ``Cache(None)`` is a disabled cache that never stores anything.

    Creating the object touches nothing on disk. The folder is checked on first use (and refused with
    a :class:`CacheError` if it cannot be a cache); it is created, with its marker, on the first write.
    """

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0
        self.repaired = 0
        self._checked = False  # the folder was found usable (missing, empty, marked or an old cache)
        self._ready = False  # ... and it exists with its marker: entries can be written

    @property
    def enabled(self) -> bool:
        """Whether entries are read and written."""
        return self.directory is not None

    # -- public operations ------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`CacheError` now if the folder cannot be a cache; create nothing.

        Lets a caller fail before any work rather than at the first lookup; the other methods check
        on first use anyway.
        """
        if self.directory is not None and not self._checked:
            self._ready = self._inspect() == _MARKED
            self._checked = True

    def load(self, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Return ``(arrays, meta)`` for a valid entry, or ``None`` (missing, unreadable or damaged).

        A damaged entry is removed and counted in :attr:`repaired`; the caller recomputes and stores it.
        """
        if self.directory is None:
            return None
        path = self._entry_path(kind, key)
        self.check()
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError:
            # Never written, removed by a `cache clear` since, unreadable (another user's entry) or a
            # symlink: a miss, not damage. store() replaces it, or says why it cannot.
            self.misses += 1
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            # A folder or FIFO where an entry belongs was not written by us: never read it.
            os.close(fd)
            self.misses += 1
            return None
        with os.fdopen(fd, "rb") as fh:
            try:
                with np.load(fh, allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
                meta = json.loads(bytes(arrays.pop("__meta__")).decode())
                digests = meta.pop("__digests__")
                if set(digests) != set(arrays) or any(_digest(arrays[n]) != digests[n] for n in arrays):
                    raise ValueError("checksum mismatch")
                # An intact entry under another entry's name (copied or renamed by hand, or by a
                # sync tool) would pass the checksums; entries written before keys were stored
                # have none to compare.
                if meta.pop("__key__", key) != key:
                    raise ValueError("entry stored under another key")
            except Exception:  # noqa: BLE001 - whatever a damaged file makes numpy or json raise
                # A damaged entry is never trusted: drop it and let the caller recompute.
                self.repaired += 1
                self.misses += 1
                self._discard(path, st)
                return None
        self.hits += 1
        return arrays, meta

    def store(
        self, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None
    ) -> None:
        """Write an entry atomically (temporary file + rename); :class:`CacheError` if it cannot be
        written (no permission, disk full), leaving no partial entry and no temporary file."""
        if self.directory is None:
            return
        path = self._entry_path(kind, key)
        full_meta = dict(meta or {})
        full_meta["__digests__"] = {name: _digest(arr) for name, arr in arrays.items()}
        full_meta["__key__"] = key
        blob = np.frombuffer(json.dumps(full_meta, sort_keys=True).encode(), dtype=np.uint8)
        payload: dict[str, Any] = {"__meta__": blob, **arrays}
        for _ in range(_WRITE_ATTEMPTS):
            try:
                self._prepare()
                self._write_entry(path, key, payload)
                return
            except FileNotFoundError:
                # The folder (or our temporary file) was removed under us, by `mixinfer cache clear`
                # or rm -rf during the run: check the folder again, recreate it and write again.
                self._checked = self._ready = False
        raise CacheError(
            f"cannot write to cache directory {self.directory}: it was removed {_WRITE_ATTEMPTS} times "
            f"while an entry was being written (is another program deleting it?); "
            f"pass --cache-dir DIR with another directory, or --no-cache"
        )

    def info(self) -> CacheInfo:
        """Count entries and bytes per kind (a missing folder is an empty cache)."""
        entries: dict[str, int] = {}
        sizes: dict[str, int] = {}
        if self.directory is None:
            return CacheInfo(Path(), entries, sizes)
        if self._inspect() in (_MARKED, _LEGACY):
            for kind in self._kind_folders():
                count = size = 0
                try:
                    with os.scandir(self.directory / kind) as it:
                        for e in it:
                            if _ENTRY_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False):
                                try:
                                    size += e.stat(follow_symlinks=False).st_size
                                except FileNotFoundError:  # removed by a concurrent clear
                                    continue
                                count += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._read_error(exc, self.directory / kind) from exc
                entries[kind] = count
                sizes[kind] = size
        return CacheInfo(self.directory, entries, sizes)

    def clear(self) -> int:
        """Remove every entry and leftover temporary file; return how many files were removed.

        Only files of the cache's own names in its own kind folders go; emptied kind folders are
        removed; the marker stays. Temporary files of writes still in progress (modified in the last
        two minutes) are left to their writers, so a clear during a run does not break it. A folder
        that is not a cache raises :class:`CacheError` and is left untouched; an old unmarked cache
        is adopted (marked) first.
        """
        if self.directory is None:
            return 0
        state = self._inspect()
        if state in (_MISSING, _EMPTY):
            return 0
        if state == _LEGACY:
            try:
                self._write_markers()
            except FileNotFoundError:  # removed meanwhile: nothing left to clear
                return 0
        return self._remove_entries_fd() if _FD_WALK else self._remove_entries_paths()

    # -- what the folder is -------------------------------------------------------------------------

    def _entry_path(self, kind: str, key: str) -> Path:
        # Kinds and keys come from code, never from users; checking them keeps every path inside
        # the cache and every file clear() may remove recognisable by its name.
        if kind not in KINDS:
            raise ValueError(f"unknown cache kind {kind!r}: add it to mixinfer.cache.KINDS")
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise ValueError(f"cache key {key!r} is not 32 lowercase hex digits: build it with make_key")
        assert self.directory is not None
        return self.directory / kind / f"{key}.npz"

    def _inspect(self) -> str:
        """Missing, empty, marked or an old cache; :class:`CacheError` for anything else."""
        d = self.directory
        assert d is not None
        try:
            st = os.stat(d)
        except FileNotFoundError:
            return _MISSING
        except NotADirectoryError:
            raise self._not_a_folder_error() from None
        except OSError as exc:
            raise self._read_error(exc, d) from exc
        if not stat.S_ISDIR(st.st_mode):
            raise self._not_a_folder_error()
        if self._read_marker():
            return _MARKED
        try:
            with os.scandir(d) as it:
                found = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return _MISSING  # removed since the stat
        except OSError as exc:
            raise self._read_error(exc, d) from exc
        if not found:
            return _EMPTY
        # Another process may have marked the folder between the marker check and the listing
        # (a first write racing this one): look again before calling anything a stranger.
        if any(e.name == MARKER_NAME for e in found) and self._read_marker():
            return _MARKED
        strangers = [s for s in self._strangers(found) if s != TAG_NAME]
        if not strangers:
            return _LEGACY
        shown = ", ".join(repr(s) for s in strangers[:3]) + (", ..." if len(strangers) > 3 else "")
        raise CacheError(
            f"{d} is not a mixinfer cache: it holds files mixinfer did not write ({shown}), so "
            f"nothing in it was read, written or removed; pass --cache-dir DIR with a new or empty "
            f"folder (or an existing mixinfer cache), or --no-cache. If it is an old mixinfer cache you "
            f"put other files into, move them out or delete the folder yourself"
        )

    def _read_marker(self) -> bool:
        """Whether the folder holds our marker; :class:`CacheError` for one we cannot use."""
        assert self.directory is not None
        path = self.directory / MARKER_NAME
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink: not something the cache wrote
                raise self._marker_error() from exc
            raise self._read_error(exc, self.directory) from exc
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise self._marker_error()
            data = fh.read(4096)
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise self._marker_error() from exc
        if not isinstance(doc, dict) or doc.get("format") != _MARKER_FORMAT:
            raise self._marker_error()
        layout = doc.get("layout")
        if type(layout) is not int or layout < 1:
            raise self._marker_error()
        if layout > LAYOUT_VERSION:
            raise CacheError(
                f"cache directory {self.directory} was written by a newer mixinfer (cache layout "
                f"{layout}; this version reads layout {LAYOUT_VERSION}); upgrade mixinfer, or pass "
                f"--cache-dir DIR with another directory, or --no-cache"
            )
        return True

    def _strangers(self, found: list[os.DirEntry[str]]) -> list[str]:
        """What an unmarked folder holds that the old layout never wrote (empty: an old cache)."""
        strangers: list[str] = []
        for e in found:
            if e.name in _LEGACY_KINDS and e.is_dir(follow_symlinks=False):
                try:
                    with os.scandir(e.path) as it:
                        inner = sorted(it, key=lambda f: f.name)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise self._read_error(exc, Path(e.path)) from exc
                for f in inner:
                    ours = _ENTRY_RE.fullmatch(f.name) or _TEMP_RE.fullmatch(f.name)
                    if not (ours and f.is_file(follow_symlinks=False)):
                        strangers.append(f"{e.name}/{f.name}")
            elif not (_MARKER_TEMP_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False)):
                strangers.append(e.name + ("/" if e.is_dir(follow_symlinks=False) else ""))
        return strangers

    def _kind_folders(self) -> list[str]:
        assert self.directory is not None
        try:
            with os.scandir(self.directory) as it:
                return sorted(e.name for e in it if e.name in KINDS and e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._read_error(exc, self.directory) from exc

    # -- writing ----------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Make the folder ready for entries: check it, create it, add the markers it lacks."""
        if self._ready:
            return
        assert self.directory is not None
        state = self._inspect()
        if state == _MISSING:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._write_error(exc, self.directory) from exc
        if state != _MARKED or not (self.directory / TAG_NAME).is_file():
            self._write_markers()
        self._checked = self._ready = True

    def _write_markers(self) -> None:
        # The marker first: a crash between the two leaves a recognised cache without its tag,
        # which the next write adds; never a tag without the marker.
        assert self.directory is not None
        for name, text in ((MARKER_NAME, _MARKER_TEXT), (TAG_NAME, _TAG_TEXT)):
            path = self.directory / name
            tmp = self.directory / f".{name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(tmp, _CREATE_FLAGS, _CREATE_MODE)
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(text.encode())
                    os.replace(tmp, path)
                except BaseException:
                    _unlink_quietly(tmp)
                    raise
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise self._write_error(exc, path) from exc

    def _write_entry(self, path: Path, key: str, payload: dict[str, Any]) -> None:
        tmp = path.parent / f".{key}.{secrets.token_hex(8)}.tmp"
        try:
            try:
                fd = os.open(tmp, _CREATE_FLAGS, _CREATE_MODE)
            except FileNotFoundError:
                # The kind folder is new, or a clear removed it. If the cache folder itself is gone
                # this raises FileNotFoundError again and store() starts over.
                # FileExistsError: made, and perhaps removed again, by a concurrent writer or clear.
                with contextlib.suppress(FileExistsError):
                    path.parent.mkdir(exist_ok=True)
                fd = os.open(tmp, _CREATE_FLAGS, _CREATE_MODE)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self._write_error(exc, path) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except FileNotFoundError:
            _unlink_quietly(tmp)  # a clear removed the temporary file or its folder: store() retries
            raise
        except OSError as exc:
            # Disk full, quota, I/O error: no partial entry and no temporary litter.
            _unlink_quietly(tmp)
            raise self._write_error(exc, path) from exc
        except BaseException:
            # Interrupted or failed: leave no temporary litter and no partial entry.
            _unlink_quietly(tmp)
            raise

    def _discard(self, path: Path, seen: os.stat_result) -> None:
        """Remove a damaged entry, unless a writer has replaced it with a new one meanwhile."""
        try:
            now = os.stat(path, follow_symlinks=False)
            if (now.st_ino, now.st_dev) == (seen.st_ino, seen.st_dev):
                os.unlink(path)
        except OSError:
            pass  # gone already, or a read-only cache: store() replaces it or reports why not

    # -- clearing ---------------------------------------------------------------------------------

    def _remove_entries_fd(self) -> int:
        assert self.directory is not None
        removed = 0
        try:
            top = os.open(self.directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        except OSError as exc:
            raise self._read_error(exc, self.directory) from exc
        try:
            try:
                with os.scandir(top) as it:
                    found = list(it)
            except OSError as exc:
                raise self._read_error(exc, self.directory) from exc
            for e in found:
                if _MARKER_TEMP_RE.fullmatch(e.name) and e.is_file(follow_symlinks=False):
                    removed += self._unlink_at(e.name, top, removed)
            for kind in sorted(e.name for e in found if e.name in KINDS and e.is_dir(follow_symlinks=False)):
                try:
                    sub = os.open(kind, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=top)
                except OSError:
                    continue  # gone, or swapped for a symlink since the listing: never followed
                try:
                    try:
                        with os.scandir(sub) as it:
                            names = [f.name for f in it if self._removable(f)]
                    except OSError as exc:
                        raise self._read_error(exc, self.directory / kind) from exc
                    for name in names:
                        removed += self._unlink_at(name, sub, removed)
                finally:
                    os.close(sub)
                # Fails when not empty: files the cache did not write, or an entry written meanwhile.
                with contextlib.suppress(OSError):
                    os.rmdir(kind, dir_fd=top)
        finally:
            os.close(top)
        return removed

    def _remove_entries_paths(self) -> int:
        # Platforms without descriptor-relative calls: the same rules on paths.
        assert self.directory is not None
        removed = 0
        for kind in self._kind_folders():
            sub = self.directory / kind
            if sub.is_symlink():
                continue
            try:
                with os.scandir(sub) as it:
                    names = [f.name for f in it if self._removable(f)]
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._read_error(exc, sub) from exc
            for name in names:
                try:
                    os.unlink(sub / name)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise self._remove_error(exc, removed) from exc
            with contextlib.suppress(OSError):
                os.rmdir(sub)
        return removed

    @staticmethod
    def _removable(f: os.DirEntry[str]) -> bool:
        """An entry, or a temporary file no writer is still writing; a regular file, not a symlink."""
        if _ENTRY_RE.fullmatch(f.name):
            return f.is_file(follow_symlinks=False)
        if not _TEMP_RE.fullmatch(f.name) or not f.is_file(follow_symlinks=False):
            return False
        try:
            return f.stat(follow_symlinks=False).st_mtime < time.time() - _FRESH_TEMP_SECONDS
        except FileNotFoundError:
            return False  # renamed into place meanwhile

    def _unlink_at(self, name: str, dir_fd: int, removed: int) -> int:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return 0  # removed meanwhile (another clear, or a writer's rename)
        except OSError as exc:
            raise self._remove_error(exc, removed) from exc
        return 1

    # -- messages ---------------------------------------------------------------------------------

    def _not_a_folder_error(self) -> CacheError:
        d = self.directory
        assert d is not None
        blocker = next((p for p in (d, *d.parents) if p.exists() or p.is_symlink()), d)
        what = "it is a file" if blocker == d else f"{blocker} is a file"
        return CacheError(
            f"cannot use cache directory {d}: {what}, not a folder; pass --cache-dir DIR with a folder, "
            f"or --no-cache"
        )

    def _marker_error(self) -> CacheError:
        return CacheError(
            f"cannot use cache directory {self.directory}: its marker file {MARKER_NAME} is damaged or "
            f"not mixinfer's; if the folder is a mixinfer cache, delete it and run again, otherwise "
            f"pass --cache-dir DIR with another folder, or --no-cache"
        )

    def _read_error(self, exc: OSError, where: Path) -> CacheError:
        note = _owner_note(where) if exc.errno in _DENIED else ""
        return CacheError(
            f"cannot read cache directory {self.directory} ({exc.strerror or exc}{note}); pass "
            f"--cache-dir DIR with a folder you can read and write, or --no-cache"
        )

    def _write_error(self, exc: OSError, path: Path) -> CacheError:
        assert self.directory is not None
        reason = exc.strerror or str(exc)
        if path != self.directory:
            with contextlib.suppress(ValueError):
                reason += f", writing {path.relative_to(self.directory)}"
        if exc.errno in _DENIED:
            reason += _owner_note(path.parent if path != self.directory else path)
        if exc.errno in _DISK_FULL:
            advice = "free some space, or pass --cache-dir DIR on another disk, or --no-cache"
        else:
            advice = "pass --cache-dir DIR with a writable directory, or --no-cache"
        return CacheError(f"cannot write to cache directory {self.directory} ({reason}); {advice}")

    def _remove_error(self, exc: OSError, removed: int) -> CacheError:
        assert self.directory is not None
        note = _owner_note(self.directory) if exc.errno in _DENIED else ""
        return CacheError(
            f"cannot clear cache directory {self.directory} ({exc.strerror or exc}{note}; {removed} "
            f"files were removed before this one); ask its owner to clear it, or pass --cache-dir DIR "
            f"with a cache of your own"
        )
