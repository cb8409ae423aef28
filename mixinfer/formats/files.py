"""Reading tokenizer files: regular files only, bounded, with errors that say what to do.

Every format reads through :func:`read_bytes` (or :func:`read_head` to sniff), so that a FIFO, a
device (``/dev/zero``) or a socket given as the tokenizer is refused before anything is read from
it (a ``stat`` of the path comes first: such a file is never even opened), and no file larger
than :data:`MAX_TOKENIZER_BYTES` is read into memory. The file is then opened with ``O_NONBLOCK``
and checked again with ``fstat`` on the open descriptor, so even a FIFO swapped in after the check
is never waited on.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from mixinfer.errors import TokenizerError, TokenizerNotFoundError

MAX_TOKENIZER_BYTES = 1 << 30
"""Largest tokenizer file read (1 GiB). The largest published tokenizer files are about 15 MB
(Mistral NeMo's Tekken JSON); anything near this cap is not a tokenizer, and reading it whole
would only exhaust memory."""

HEAD_BYTES = 64 * 1024
"""How much of a file is read to recognise its format by content."""

_KIND = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def _refuse(path: Path, st: os.stat_result) -> None:
    """Raise unless ``st`` is a regular file of at most :data:`MAX_TOKENIZER_BYTES`."""
    if not stat.S_ISREG(st.st_mode):
        kind = _KIND.get(stat.S_IFMT(st.st_mode), "not a regular file")
        raise TokenizerError(
            f"{path} is {kind}, not a tokenizer file; mixinfer reads tokenizers only from regular "
            "files (save the tokenizer to a file and pass that)"
        )
    if st.st_size > MAX_TOKENIZER_BYTES:
        raise TokenizerError(_too_large(path, st.st_size))


def _open_regular(path: Path) -> tuple[int, int]:
    """Open ``path`` for reading without blocking; return ``(fd, size)`` of a regular file.

    The path is checked with ``stat`` first, so a FIFO or device is never opened at all; the open
    descriptor is checked again (``fstat``), in case the path was replaced in between.
    """
    try:
        _refuse(path, os.stat(path))
    except FileNotFoundError:
        raise TokenizerNotFoundError(f"tokenizer not found: {path} does not exist") from None
    except OSError as exc:
        raise TokenizerError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TokenizerNotFoundError(f"tokenizer not found: {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO on some systems
            raise TokenizerError(f"{path} is not a regular file; give a tokenizer file") from None
        raise TokenizerError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise TokenizerError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None
    try:
        _refuse(path, st)
    except TokenizerError:
        os.close(fd)
        raise
    return fd, st.st_size


def _too_large(path: Path, size: int | None) -> str:
    shown = f"{size / 2**30:.1f} GiB" if size is not None else "more than 1 GiB"
    return (
        f"{path} is {shown}, larger than the {MAX_TOKENIZER_BYTES >> 30} GiB a tokenizer file may be; "
        "it is not a tokenizer (published tokenizer files are a few MB)"
    )


def _read_fd(fd: int, path: Path, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    try:
        while total < limit:
            chunk = os.read(fd, min(1 << 24, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise TokenizerError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a regular file (to recognise its format).

    Raises:
        TokenizerNotFoundError: ``path`` does not exist.
        TokenizerError: it is not a regular file, is too large, or cannot be read.
    """
    fd, _ = _open_regular(path)
    return _read_fd(fd, path, size)


def read_bytes(path: Path) -> bytes:
    """The whole content of a regular file of at most :data:`MAX_TOKENIZER_BYTES`.

    Raises:
        TokenizerNotFoundError: ``path`` does not exist.
        TokenizerError: it is not a regular file, is too large (also when it grows while being
            read, e.g. a file in ``/proc``), or cannot be read.
    """
    fd, _ = _open_regular(path)
    data = _read_fd(fd, path, MAX_TOKENIZER_BYTES + 1)
    if len(data) > MAX_TOKENIZER_BYTES:
        raise TokenizerError(_too_large(path, None))
    return data


def decode_text(data: bytes, where: str, expected: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped).

    Raises:
        TokenizerError: not UTF-8; the message names the offset and what was ``expected``.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TokenizerError(
            f"{where} is not UTF-8 text (bad byte at offset {exc.start}); expected {expected}"
        ) from None


def read_text(path: Path, expected: str = "a tokenizer.json, merges.txt or .tiktoken file") -> str:
    """A regular file's content as UTF-8 text (see :func:`read_bytes`)."""
    return decode_text(read_bytes(path), str(path), expected)


def parse_json(data: bytes, where: str, expected: str = "a tokenizer.json") -> Any:
    """Parse a JSON document.

    Raises:
        TokenizerError: not UTF-8, or not valid JSON (with line and column).
    """
    text = decode_text(data, where, expected)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenizerError(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            f"is the file truncated, or not {expected}?"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise TokenizerError(f"{where} is not usable JSON ({exc}); expected {expected}") from None


def read_json(path: Path, expected: str = "a tokenizer.json") -> Any:
    """A regular file parsed as JSON (see :func:`parse_json`)."""
    return parse_json(read_bytes(path), str(path), expected)
