"""The directory source on hostile trees (issues 11 and 17): links followed once, loops and second
paths skipped with a warning, FIFOs / sockets / devices never opened, bounded JSONL reads, names
that are not UTF-8, and paths over the name-length limit."""

from __future__ import annotations

import base64
import errno
import gzip
import io
import json
import os
import random
import signal
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from mixinfer.errors import SamplesError
from mixinfer.sources import base
from mixinfer.sources.base import Category, ReadStats, SampleFile, iter_documents, read_bounded_lines
from mixinfer.sources.directory import discover

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and names")


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def read_all(cat: Category, **kw: object) -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    docs = list(iter_documents(cat, stats=stats, **kw))  # type: ignore[arg-type]
    return docs, stats


def one(root: Path) -> Category:
    (cat,) = discover(root)
    return cat


@pytest.fixture(autouse=True)
def never_hang() -> Iterator[None]:
    """Opening a FIFO by mistake blocks forever: turn that into a failure, not a stuck suite."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fail(signum: int, frame: object) -> None:
        raise AssertionError("blocked: a FIFO or device was opened")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------------------------------
# Symbolic links: followed once


def test_a_symlink_loop_is_followed_once_and_reported(tmp_path: Path) -> None:
    # The reproduction: 10 files with a link back to the category were counted ~40 times.
    cat_dir = tmp_path / "samples" / "en"
    for i in range(10):
        write(cat_dir / f"{i:02d}.txt", f"document {i} " * 50)
    (cat_dir / "again").symlink_to(cat_dir, target_is_directory=True)
    (cat_dir / "deep").mkdir()
    (cat_dir / "deep" / "up").symlink_to("../..", target_is_directory=True)  # to the samples root
    cat = one(tmp_path / "samples")
    assert [f.relpath for f in cat.files] == [f"{i:02d}.txt" for i in range(10)]
    docs, stats = read_all(cat)
    assert docs == [f"document {i} " * 50 for i in range(10)]
    assert stats.documents == 10
    loops = [s for s in cat.skipped if "symbolic link loop" in s]
    assert len(loops) == 2, cat.skipped
    assert any("again" in s for s in loops) and any("deep/up/en" in s for s in loops)


def test_a_second_path_to_a_directory_or_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write(store / "shared" / "s.txt", "shared directory")
    write(store / "one.txt", "one file")
    cat_dir = tmp_path / "samples" / "en"
    write(cat_dir / "own.txt", "own file")
    (cat_dir / "a-link").symlink_to(store / "shared", target_is_directory=True)
    (cat_dir / "b-link").symlink_to(store / "shared", target_is_directory=True)
    (cat_dir / "file-1.txt").symlink_to(store / "one.txt")
    (cat_dir / "file-2.txt").symlink_to(store / "one.txt")
    os.link(cat_dir / "own.txt", cat_dir / "own-hardlink.txt")
    cat = one(tmp_path / "samples")
    assert [f.relpath for f in cat.files] == ["a-link/s.txt", "file-1.txt", "own-hardlink.txt"]
    assert read_all(cat)[0] == ["shared directory", "one file", "own file"]
    assert any("b-link" in s and "a second path to 'a-link'" in s for s in cat.skipped), cat.skipped
    assert any("file-2.txt" in s and "the same file as file-1.txt" in s for s in cat.skipped)
    assert any("own.txt" in s and "the same file as own-hardlink.txt" in s for s in cat.skipped)


def test_a_link_to_itself_is_skipped_not_an_error(tmp_path: Path) -> None:
    write(tmp_path / "en" / "good.txt", "text")
    (tmp_path / "en" / "self.txt").symlink_to("self.txt")
    cat = one(tmp_path)
    assert [f.relpath for f in cat.files] == ["good.txt"]
    assert any("self.txt" in s and "loop" in s for s in cat.skipped), cat.skipped


def test_the_same_category_twice_through_links_is_counted_in_each(tmp_path: Path) -> None:
    # Two category names for one directory is the user's choice; each is read once.
    write(tmp_path / "store" / "a.txt", "text")
    root = tmp_path / "samples"
    root.mkdir()
    (root / "x").symlink_to(tmp_path / "store", target_is_directory=True)
    (root / "y").symlink_to(tmp_path / "store", target_is_directory=True)
    cats = discover(root)
    assert [(c.name, [f.relpath for f in c.files], c.skipped) for c in cats] == [
        ("x", ["a.txt"], []),
        ("y", ["a.txt"], []),
    ]


# --------------------------------------------------------------------------------------------------
# Special files: never opened


@posix_only
def test_fifo_socket_and_devices_in_a_category_are_skipped_unopened(tmp_path: Path) -> None:
    cat_dir = tmp_path / "en"
    write(cat_dir / "good.txt", "real text")
    os.mkfifo(cat_dir / "pipe.txt")
    os.mkfifo(cat_dir / "pipe.jsonl")
    (cat_dir / "null.txt").symlink_to("/dev/null")
    (cat_dir / "zero.jsonl").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(cat_dir / "sock.txt"))
        cat = one(tmp_path)
    finally:
        sock.close()
    assert [f.relpath for f in cat.files] == ["good.txt"]
    assert read_all(cat)[0] == ["real text"]
    skipped = {s.split(":")[0].rsplit("/", 1)[1]: s for s in cat.skipped}
    assert set(skipped) == {"pipe.txt", "pipe.jsonl", "null.txt", "zero.jsonl", "sock.txt"}
    assert "named pipe (FIFO)" in skipped["pipe.txt"] and "never opened" in skipped["pipe.txt"]
    assert "character device" in skipped["null.txt"] and "character device" in skipped["zero.jsonl"]
    assert "socket" in skipped["sock.txt"]


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_as_the_samples_directory_is_refused(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        target = tmp_path / "samples"
        os.mkfifo(target)
        expected = r"is a named pipe \(FIFO\), not a directory"
    else:
        target = Path("/dev/null")
        expected = "is a character device, not a directory"
    with pytest.raises(SamplesError, match=expected):
        discover(target)


@posix_only
def test_a_file_replaced_by_a_fifo_after_discovery_is_refused_not_read(tmp_path: Path) -> None:
    f = write(tmp_path / "en" / "a.txt", "text")
    cat = one(tmp_path)
    f.unlink()
    os.mkfifo(f)  # nobody ever writes to it: a blocking read would never return
    with pytest.raises(SamplesError, match=r"a\.txt is a named pipe \(FIFO\), not a regular file"):
        read_all(cat)


# --------------------------------------------------------------------------------------------------
# Bounded reads


class CountingReader(io.RawIOBase):
    """A raw stream over ``data`` that counts the bytes handed out."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@dataclass(frozen=True)
class CountingFile(SampleFile):
    """A sample file whose reads are counted (the source-extension path: override ``open_raw``)."""

    readers: list[CountingReader] | None = None

    def open_raw(self) -> BinaryIO:
        assert self.readers is not None
        reader = CountingReader(self.path.read_bytes())
        self.readers.append(reader)
        return io.BufferedReader(reader)  # type: ignore[return-value]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_a_jsonl_file_without_newlines_is_not_read_whole(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 10_000
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", cap)
    # One 3 MB record, no newline at all; random letters, so gzip cannot shrink it much either.
    noise = base64.b64encode(random.Random(0).randbytes(2_250_000)).decode()
    huge = json.dumps({"text": noise}).encode()
    good = b"".join(json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(3))
    if suffix.endswith(".gz"):
        huge, good = gzip.compress(huge, mtime=0), gzip.compress(good, mtime=0)
    write(tmp_path / "en" / f"a{suffix}", huge)
    write(tmp_path / "en" / f"b{suffix}", good)
    readers: list[CountingReader] = []
    real = one(tmp_path)
    counted = Category(real.name, [CountingFile(f.path, f.relpath, f.size, f.mtime_ns, readers=readers)
                                   for f in real.files])  # fmt: skip
    docs, stats = read_all(counted, max_bytes=1_000_000)
    assert docs == ["doc 0", "doc 1", "doc 2"]
    assert len(stats.warnings) == 1, stats.warnings
    assert f"a{suffix}:1: record longer than 10,000 bytes" in stats.warnings[0]
    # The huge record was given up after about the cap (plus read buffers), not read whole.
    assert len(huge) > 2_000_000
    assert readers[0].pos < 200_000, readers[0].pos
    assert readers[1].pos == len(good)


def test_records_up_to_the_cap_are_read_and_longer_ones_skip_the_rest_of_their_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 200
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", cap)

    def line(n: int) -> bytes:
        # A record of exactly n bytes (without its newline).
        skeleton = json.dumps({"text": ""}).encode()
        return json.dumps({"text": "y" * (n - len(skeleton))}).encode()

    exact = line(cap)
    assert len(exact) == cap
    write(tmp_path / "en" / "a.jsonl", exact + b"\n" + line(50) + b"\n")
    write(tmp_path / "en" / "b.jsonl", line(cap + 1) + b"\n" + line(60) + b"\n")
    write(tmp_path / "en" / "c.jsonl", line(70) + b"\n" + exact)  # the last line needs no newline
    docs, stats = read_all(one(tmp_path))
    sizes = [len(json.dumps({"text": d})) for d in docs]
    assert sizes == [cap, 50, 70, cap]
    assert len(stats.warnings) == 1 and "b.jsonl:1: record longer than 200 bytes" in stats.warnings[0]


@pytest.mark.parametrize("cap", [1, 5, 64])
def test_bounded_lines_match_splitlines_below_the_cap(cap: int) -> None:
    data = b"a\nbb\n\nccc\r\nlast"
    lines = data.splitlines(keepends=True)
    longest = max(len(x.rstrip(b"\n")) for x in lines)
    got: list[bytes] = []
    try:
        for x in read_bounded_lines(io.BytesIO(data), cap):  # type: ignore[arg-type]
            got.append(x)
    except base.RecordTooLongError as exc:
        assert longest > cap
        # Every line before the long one was returned intact.
        assert got == lines[: exc.lineno - 1]
        assert len(lines[exc.lineno - 1].rstrip(b"\n")) > cap
    else:
        assert longest <= cap and got == lines


def test_the_default_record_cap_is_documented() -> None:
    from mixinfer import samples

    assert base.MAX_RECORD_BYTES == 16 << 20
    assert samples.__doc__ is not None and "16 MiB" in samples.__doc__


# --------------------------------------------------------------------------------------------------
# Names that are not UTF-8, and over-long paths


def _mkdir_bytes(path: bytes) -> None:
    try:
        os.makedirs(path)
    except OSError as exc:
        if exc.errno in (errno.EILSEQ, errno.EINVAL):
            pytest.skip("this file system refuses names that are not UTF-8")
        raise


@posix_only
def test_category_and_file_names_that_are_not_utf8_are_used_escaped(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path / "samples")
    _mkdir_bytes(root + b"/caf\xe9")
    write(Path(os.fsdecode(root + b"/caf\xe9/r\xe9sum\xe9.txt")), "caf\u00e9 text")
    write(Path(os.fsdecode(root + b"/en/a.txt")), "plain")
    write(Path(os.fsdecode(root + b"/cafe/a.txt")), "plain")
    cats = discover(os.fsdecode(root))
    # Sorted by the printable name ("\\" sorts before "e"; the raw byte 0xE9 would sort after it).
    assert [c.name for c in cats] == ["caf\\xe9", "cafe", "en"]
    cafe = cats[0]
    assert cafe.name.encode("utf-8")  # printable: no lone surrogates left
    assert [f.relpath for f in cafe.files] == ["r\\xe9sum\\xe9.txt"]
    assert any("directory name is not valid UTF-8" in s and "'caf\\xe9'" in s for s in cafe.skipped)
    assert any("r\\xe9sum\\xe9.txt: file name is not valid UTF-8" in s for s in cafe.skipped)
    for s in cafe.skipped:
        s.encode("utf-8")  # every warning is printable and JSON-safe
    assert read_all(cafe)[0] == ["caf\u00e9 text"]
    assert len(cafe.fingerprint()) == 24 and cafe.fingerprint() != cats[2].fingerprint()


@posix_only
def test_two_categories_with_the_same_escaped_name_are_refused(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    _mkdir_bytes(root + b"/caf\xe9")
    write(Path(os.fsdecode(root + b"/caf\xe9/a.txt")), "one")
    write(tmp_path / "caf\\xe9" / "a.txt", "two")
    with pytest.raises(SamplesError, match=r"have the same name once non-UTF-8 bytes are escaped"):
        discover(tmp_path)


@posix_only
def test_messages_about_a_missing_non_utf8_directory_are_printable(tmp_path: Path) -> None:
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/m\xff")
    with pytest.raises(SamplesError) as info:
        discover(missing)
    message = str(info.value)
    message.encode("utf-8")
    assert "m\\xff does not exist" in message


def test_a_samples_path_over_the_name_length_limit_is_a_samples_error(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="longer than the system allows"):
        discover(tmp_path / ("n" * 300))
    with pytest.raises(SamplesError, match="longer than the system allows"):
        discover(tmp_path / ("n" * 300) / "more")


@posix_only
def test_a_directory_too_deep_for_the_path_limit_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "en" / "a.txt", "shallow text")
    # Build a chain of directories whose full path exceeds PATH_MAX (4096 on Linux) using
    # descriptors, then put a sample file at its bottom.
    part = "d" * 200
    fd = os.open(tmp_path / "en", os.O_RDONLY)
    try:
        for _ in range(25):
            os.mkdir(part, dir_fd=fd)
            nxt = os.open(part, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        deep = os.open("deep.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(deep, b"deep text")
        os.close(deep)
    finally:
        os.close(fd)
    cat = one(tmp_path)
    assert [f.relpath for f in cat.files] == ["a.txt"]
    assert any("longer than the system allows" in s for s in cat.skipped), cat.skipped
