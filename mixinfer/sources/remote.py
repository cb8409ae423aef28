"""Remote sample files through fsspec: ``hf://``, ``s3://``, ``gs://``, ``https://``, ``memory://`` ...

Two things live here:

* :class:`RemoteFile`, a :class:`~mixinfer.sources.base.SampleFile` read through fsspec. It holds
  only its URL and the facts that identify its version (size plus an etag, a Hugging Face blob id
  or LFS sha256, a generation, or an mtime, whichever the file system reports: never the local
  clock), so it pickles to worker processes and its category's fingerprint changes exactly when
  the remote content does. Reads are streamed (fsspec's buffered range reads): a text file is read
  only up to the byte budget, a JSONL file line by line, a Parquet file batch by batch.
* the ``fsspec`` source type: a URL given directly as ``--samples`` (other than ``file://``, which
  the directory source reads) is a remote folder in the usual layout, one sub-folder per category.
  Manifests (:mod:`mixinfer.sources.manifest`) list remote files with :func:`list_url`.

Formats, by name: ``.txt``, ``.txt.gz``, ``.txt.zst``, ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst`` and
``.parquet``; ``field`` names the JSON field or Parquet column (default ``text``).

Every failure to reach a URL (no network, ``HF_HUB_OFFLINE=1``, a missing bucket, no credentials)
is one :class:`~mixinfer.errors.SamplesError` naming the URL; a protocol whose fsspec back end is
not installed (``s3fs``, ``gcsfs``, ``huggingface_hub``) is a
:class:`~mixinfer.errors.MissingDependencyError` naming the package.
"""

from __future__ import annotations

import io
import os
import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from mixinfer.errors import MissingDependencyError, SamplesError
from mixinfer.sources import SourceType, is_url, local_path
from mixinfer.sources.base import SUFFIXES, Category, SampleFile, display_path, open_regular_file

ZSTD_SUFFIXES = (".txt.zst", ".jsonl.zst")
ALL_SUFFIXES = (*SUFFIXES, *ZSTD_SUFFIXES)
"""Every sample file type a manifest or a URL may name."""

# Facts a file system may report that change when a file's content does, in order of preference.
# The local clock never enters: the fingerprint must be the same on every machine and every run.
_VERSION_KEYS = (
    "blob_id",  # Hugging Face: the git blob id
    "ETag",
    "etag",
    "md5Hash",
    "md5",
    "generation",
    "VersionId",
    "version_id",
    "LastModified",
    "last_modified",
    "mtime",
    "updated",
    "created",  # memory://: set when the file is written
)


# -- zstandard ----------------------------------------------------------------------------------------


class _ZstdRaw(io.RawIOBase):
    """A zstd stream decompressed on the fly; damaged data is an ``OSError`` (which readers word)."""

    def __init__(self, raw: BinaryIO) -> None:
        try:
            import zstandard
        except ImportError as exc:
            raise MissingDependencyError(
                "reading .zst samples needs the zstandard package; run: pip install 'mixinfer[zstd]'"
            ) from exc
        self._error = zstandard.ZstdError
        self._raw = raw
        self._reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._reader.readinto(buffer))
        except self._error as exc:
            raise OSError(f"damaged zstd data ({exc})") from exc

    def close(self) -> None:
        if not self.closed:
            try:
                self._reader.close()
            finally:
                self._raw.close()
        super().close()


def decompress_zstd(raw: BinaryIO) -> BinaryIO:
    """``raw`` (zstd-compressed, closed with the result) as a buffered, decompressed stream."""
    return io.BufferedReader(_ZstdRaw(raw), buffer_size=1 << 16)


def _kind(name: str) -> str:
    if name.endswith((".jsonl", ".jsonl.gz", ".jsonl.zst")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    return "txt"


@dataclass(frozen=True)
class LocalZstdFile(SampleFile):
    """A local ``.txt.zst`` / ``.jsonl.zst`` sample file (decompressed while read)."""

    @property
    def kind(self) -> str:
        """The format, by name (``.zst`` included)."""
        return _kind(self.name)

    def open_raw(self) -> BinaryIO:
        """The decompressed content; only a regular file is opened."""
        return decompress_zstd(open_regular_file(self.path))


# -- remote files -------------------------------------------------------------------------------------


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependencyError(
            "remote samples (URLs) need fsspec; run: pip install 'mixinfer[remote]'"
        ) from exc
    return fsspec


# Protocols that never touch the network (memory:// lives in this process).
_LOCAL_PROTOCOLS = ("file", "local", "memory")


_TRUE = ("1", "true", "yes", "on")
# The value request_offline gives MIXINFER_OFFLINE: true like "1" (worker processes inherit it), and
# it lets the offline message name the option that turned offline mode on, not a variable the user
# never set.
OFFLINE_BY_OPTION = "--offline"
_OFFLINE_VARS = ("MIXINFER_OFFLINE", "HF_HUB_OFFLINE")


def offline_requested() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``MIXINFER_OFFLINE``) is set to a true value."""
    return bool(_offline_causes())


def request_offline() -> None:
    """Turn offline mode on for the sample sources of this process and those it starts (the
    CLI's ``--offline``); a MIXINFER_OFFLINE that already asks for it is left as it is."""
    if os.environ.get("MIXINFER_OFFLINE", "").strip().lower() not in _TRUE:
        os.environ["MIXINFER_OFFLINE"] = OFFLINE_BY_OPTION


def _offline_causes() -> list[str]:
    """What asks for offline mode: ``--offline``, or each variable set to a true value."""
    causes = []
    for var in _OFFLINE_VARS:
        value = os.environ.get(var, "").strip()
        if var == "MIXINFER_OFFLINE" and value == OFFLINE_BY_OPTION:
            causes.append(OFFLINE_BY_OPTION)
        elif value.lower() in _TRUE:
            causes.append(var)
    return causes


def _offline_message(url: str) -> str:
    causes = _offline_causes()
    variables = [c for c in causes if c != OFFLINE_BY_OPTION]
    why = [("--offline is given" if c == OFFLINE_BY_OPTION else f"{c} is set") for c in causes]
    undo = (["leave out --offline"] if OFFLINE_BY_OPTION in causes else []) + (
        [f"unset {' and '.join(variables)}"] if variables else []
    )
    return (
        f"{url}: remote samples need the network, and offline mode is on ({' and '.join(why)}); "
        f"{' and '.join(undo)}, or run `mixinfer samples pull` where the network is available and use "
        "the local snapshot"
    )


def url_to_fs(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path within it.

    Offline (``HF_HUB_OFFLINE=1`` or ``MIXINFER_OFFLINE=1``), a URL that needs the network is
    refused here, before any connection is tried. Raises :class:`SamplesError` for that and for a
    protocol fsspec does not know, :class:`MissingDependencyError` when the back end is missing.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    if offline_requested() and scheme not in _LOCAL_PROTOCOLS:
        raise SamplesError(_offline_message(url))
    fsspec = _fsspec()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{url}: reading {scheme}:// URLs needs a package that is not installed ({exc}); install it "
            f"(s3fs for s3://, gcsfs for gs://, aiohttp for https://, 'mixinfer[remote]' for hf://)"
        ) from exc
    except (ValueError, KeyError) as exc:
        raise SamplesError(f"{url}: not a URL fsspec can read ({exc}); check the scheme") from exc


def _unreachable(url: str, exc: BaseException) -> SamplesError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    if scheme in _LOCAL_PROTOCOLS:
        # No network between us and memory:// or file://: "need network access" would send the
        # user looking for the wrong problem.
        if isinstance(exc, FileNotFoundError):
            return SamplesError(f"{url} does not exist; check --samples")
        return SamplesError(f"{url}: cannot be read ({type(exc).__name__}: {detail}); check --samples")
    return SamplesError(
        f"{url}: cannot be reached ({type(exc).__name__}: {detail}); remote samples need network access "
        f"(and credentials for private data). Check the URL, or run `mixinfer samples pull` where the "
        f"network is available and use the local snapshot"
    )


def version_of(info: dict[str, Any]) -> str:
    """What identifies a listed file's content: its size plus etag / blob id / sha256 / mtime."""
    parts = [f"size={info.get('size')}"]
    lfs = info.get("lfs")
    if isinstance(lfs, dict) and lfs.get("sha256"):
        parts.append(f"sha256={lfs['sha256']}")
    for key in _VERSION_KEYS:
        value = info.get(key)
        if value is not None and value != "":
            parts.append(f"{key}={value}")
            break
    return ";".join(parts)


@dataclass(frozen=True)
class RemoteFile(SampleFile):
    """A sample file read through fsspec, identified by its URL and version (not the local clock).

    ``path`` is the path part of the URL (its name gives the format); ``relpath`` the URL itself.
    """

    url: str = ""
    version: str = ""

    @property
    def display(self) -> str:
        """The URL, for messages."""
        return self.url

    @property
    def kind(self) -> str:
        """The format, by name (``.zst`` included)."""
        return _kind(self.name)

    def identity(self) -> bytes:
        """URL, size and version facts (etag, blob id, mtime ...), and the field when not ``text``."""
        ident = f"\0url\0{self.url}\0{self.size}\0{self.version}"
        if self.field != "text":
            ident += f"\0field={self.field}"
        return ident.encode("utf-8", "surrogateescape")

    def open_raw(self) -> BinaryIO:
        """A streamed (block-buffered) reader of the file, decompressed when it is ``.zst``."""
        fs, path = url_to_fs(self.url)
        try:
            fh = fs.open(path, "rb")
        except OSError:
            raise  # the format readers word it, naming the file
        except Exception as exc:  # back ends raise their own types (HTTP errors, offline mode ...)
            raise _unreachable(self.url, exc) from exc
        if self.name.endswith(".zst"):
            return decompress_zstd(fh)
        return fh


def _join(protocol: str, path: str) -> str:
    # fsspec paths are "bucket/key" for object stores and "/abs/path" for file:// and memory://.
    return f"{protocol}://{path}"


def _protocol(fs: Any, url: str) -> str:
    proto = fs.protocol
    if isinstance(proto, (tuple, list)):
        scheme = url.split("://", 1)[0]
        return scheme if scheme in proto else str(proto[0])
    return str(proto)


def list_url(url: str, field: str = "text") -> tuple[list[RemoteFile], list[str]]:
    """The sample files at ``url`` (a file, a folder walked recursively, or a glob), sorted by path.

    Returns the files and warnings for entries of other types. Raises :class:`SamplesError`
    naming the URL when it cannot be reached or matches no sample file.
    """
    fs, path = url_to_fs(url)
    proto = _protocol(fs, url)
    skipped: list[str] = []
    try:
        # A glob is listed with one call; only a plain path is asked whether it exists.
        if not any(ch in path for ch in "*?[") and fs.exists(path):
            info = fs.info(path)
            found = fs.find(path, detail=True) if info.get("type") == "directory" else {path: info}
        else:
            found = fs.glob(path, detail=True)
    except (MissingDependencyError, SamplesError):
        raise
    except Exception as exc:  # any back end's failure to list: one message naming the URL
        raise _unreachable(url, exc) from exc
    files: list[RemoteFile] = []
    for name in sorted(found):
        info = found[name]
        if info.get("type") == "directory":
            continue
        base = posixpath.basename(name)
        if base.startswith("."):
            continue
        full = _join(proto, name)
        if not base.endswith(ALL_SUFFIXES):
            skipped.append(f"{full}: not a sample file type (expected {', '.join(ALL_SUFFIXES)}); skipped")
            continue
        size = int(info.get("size") or 0)
        version = version_of(info)
        files.append(RemoteFile(PurePosixPath(name), full, size, 0, field, url=full, version=version))
    if not files:
        raise SamplesError(
            f"{url} matches no sample file ({', '.join(ALL_SUFFIXES)}); check the path or the glob"
        )
    return files, skipped


@dataclass(frozen=True)
class RemoteFolderSource:
    """A remote folder in the ``--samples DIR`` layout (one sub-folder per category), by URL."""

    url: str

    @property
    def spec(self) -> str:
        """The URL."""
        return self.url

    def categories(self) -> list[Category]:
        """One category per sub-folder, sorted by name; files sorted by path within each."""
        fs, path = url_to_fs(self.url)
        try:
            entries = fs.ls(path, detail=True)
        except Exception as exc:
            raise _unreachable(self.url, exc) from exc
        subdirs = sorted(
            e["name"]
            for e in entries
            if e.get("type") == "directory" and not posixpath.basename(e["name"].rstrip("/")).startswith(".")
        )
        if not subdirs:
            raise SamplesError(
                f"{self.url} has no category sub-folders; put each category's files in "
                f"{self.url.rstrip('/')}/<category>/, or list them in a manifest"
            )
        proto = _protocol(fs, self.url)
        categories = []
        for sub in subdirs:
            name = posixpath.basename(sub.rstrip("/"))
            files, skipped = list_url(_join(proto, sub))
            categories.append(Category(name, list(files), skipped))
        return categories


# Claimed even without fsspec installed, so that opening says which extra to install.
_COMMON_SCHEMES = (
    "hf",
    "s3",
    "s3a",
    "gs",
    "gcs",
    "http",
    "https",
    "memory",
    "az",
    "abfs",
    "adl",
    "ftp",
    "sftp",
)


def _claims(spec: str) -> bool:
    # file:// URLs are local: the directory (or manifest) source reads them. Other schemes are
    # claimed when fsspec knows them: an unknown scheme keeps the registry's "no source" message.
    if not is_url(spec) or local_path(spec) is not None:
        return False
    scheme = spec.split("://", 1)[0].lower()
    try:
        import fsspec
    except ImportError:
        return scheme in _COMMON_SCHEMES
    return scheme in fsspec.available_protocols()


def _open(spec: str) -> RemoteFolderSource:
    _fsspec()
    return RemoteFolderSource(spec)


SOURCE_TYPES = (SourceType("fsspec", _claims, _open, priority=20),)

__all__ = [
    "ALL_SUFFIXES",
    "LocalZstdFile",
    "RemoteFile",
    "RemoteFolderSource",
    "decompress_zstd",
    "display_path",
    "list_url",
    "url_to_fs",
    "version_of",
]
