"""A content-addressed on-disk cache of numpy arrays (word counts and merge-replay traces).

Entries are ``<dir>/<kind>/<key>.npz``. The key is a hash of everything that changes the content
(the caller's job, see :func:`make_key`). Each entry carries a SHA-256 of every array it stores, so a
truncated or corrupt entry is detected on load, removed and recomputed. Entries are written to a
unique temporary file in the same directory and renamed into place, so concurrent writers of the same
key each leave a complete entry and readers never see a partial one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixinfer.errors import CacheError

# Bump when the layout or meaning of cached arrays changes; it is part of every key.
FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """``$MIXINFER_CACHE_DIR``, else ``$XDG_CACHE_HOME/mixinfer``, else ``~/.cache/mixinfer``."""
    env = os.environ.get("MIXINFER_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "mixinfer"


def make_key(*parts: object) -> str:
    """Hash the parts (strings, numbers, nested lists) and the cache format version into a key."""
    payload = json.dumps([FORMAT_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _digest(arr: np.ndarray) -> str:
    h = hashlib.sha256(str(arr.dtype).encode() + str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass
class CacheInfo:
    """What the cache holds: its directory, entries and bytes per kind."""

    directory: Path
    entries: dict[str, int]
    bytes: dict[str, int]


class Cache:
    """The on-disk cache; ``Cache(None)`` is a disabled cache that never stores anything."""

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0
        self.repaired = 0

    @property
    def enabled(self) -> bool:
        """Whether entries are read and written."""
        return self.directory is not None

    def _path(self, kind: str, key: str) -> Path:
        assert self.directory is not None
        return self.directory / kind / f"{key}.npz"

    def load(self, kind: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """Return ``(arrays, meta)`` for a valid entry, or ``None`` (missing, corrupt: removed)."""
        if self.directory is None:
            return None
        path = self._path(kind, key)
        if not path.exists():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(bytes(arrays.pop("__meta__")).decode())
            digests = meta.pop("__digests__")
            if set(digests) != set(arrays) or any(_digest(arrays[name]) != digests[name] for name in arrays):
                raise ValueError("checksum mismatch")
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
            # A damaged entry is never trusted: drop it and let the caller recompute.
            self.repaired += 1
            self.misses += 1
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return arrays, meta

    def store(
        self, kind: str, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None
    ) -> None:
        """Write an entry atomically (temporary file + rename)."""
        if self.directory is None:
            return
        path = self._path(kind, key)
        full_meta = dict(meta or {})
        full_meta["__digests__"] = {name: _digest(arr) for name, arr in arrays.items()}
        blob = np.frombuffer(json.dumps(full_meta, sort_keys=True).encode(), dtype=np.uint8)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise CacheError(
                f"cannot write to cache directory {self.directory} ({exc.strerror}); "
                f"pass --cache-dir DIR with a writable directory, or --no-cache"
            ) from exc
        try:
            with os.fdopen(fd, "wb") as fh:
                payload: dict[str, Any] = {"__meta__": blob, **arrays}
                np.savez(fh, **payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            # Interrupted or failed: leave no temporary litter and no partial entry.
            Path(tmp).unlink(missing_ok=True)
            raise

    def info(self) -> CacheInfo:
        """Count entries and bytes per kind."""
        entries: dict[str, int] = {}
        sizes: dict[str, int] = {}
        if self.directory is not None and self.directory.is_dir():
            for sub in sorted(p for p in self.directory.iterdir() if p.is_dir()):
                files = list(sub.glob("*.npz"))
                entries[sub.name] = len(files)
                sizes[sub.name] = sum(f.stat().st_size for f in files)
        return CacheInfo(self.directory or Path(), entries, sizes)

    def clear(self) -> int:
        """Remove every entry; return how many files were removed."""
        if self.directory is None or not self.directory.is_dir():
            return 0
        removed = 0
        for sub in [p for p in self.directory.iterdir() if p.is_dir()]:
            for f in sub.iterdir():
                if f.suffix in (".npz", ".tmp"):
                    f.unlink(missing_ok=True)
                    removed += 1
            if not any(sub.iterdir()):
                shutil.rmtree(sub, ignore_errors=True)
        return removed
