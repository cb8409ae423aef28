"""The cache only ever touches what it wrote, survives a clear during a run and reports unusable
directories as cache errors (exit 6), never as internal errors."""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer import cache as cache_mod
from mixinfer.cache import FORMAT_VERSION, Cache, default_cache_dir, make_key
from mixinfer.cli import EXIT_CODES, app
from mixinfer.errors import CacheError
from mixinfer.progress import Progress

TAG = "CACHEDIR.TAG"
MARKER = "mixinfer-cache.json"
TAG_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55"
K = [make_key("test-entry", i) for i in range(6)]
CACHE_EXIT = EXIT_CODES[CacheError]


def payload(n: int = 10) -> dict[str, np.ndarray]:
    return {"a": np.arange(n, dtype=np.int64)}


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file, folder and symlink under ``root`` (symlinks not followed) with its content."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes()
    return out


def filled(directory: Path) -> Cache:
    cache = Cache(directory)
    cache.store("words", K[0], payload())
    cache.store("trace", K[1], payload(20), {"merges": 3})
    return cache


def make_legacy(directory: Path) -> None:
    """A cache as mixinfer wrote it before the marker existed: kind folders of key-named entries."""
    filled(directory)
    (directory / TAG).unlink()
    (directory / MARKER).unlink()
    # mkstemp's leftover of an interrupted old writer: .<key>.<8 random [a-z0-9_]>.tmp
    old_temp(directory / "trace" / f".{K[2]}.x_9abc1d.tmp")


def old_temp(path: Path) -> None:
    """A temporary file its writer left an hour ago (killed): clear removes it."""
    path.write_bytes(b"partial")
    os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))


# --------------------------------------------------------------------------------------------------
# What is a cache: markers, foreign folders, old caches


def test_a_missing_folder_becomes_a_tagged_cache_on_first_write(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "cache"
    cache = Cache(directory)
    assert cache.load("words", K[0]) is None
    assert not directory.exists(), "a lookup must not create the cache folder"
    cache.store("words", K[0], payload())
    assert (directory / TAG).read_text().startswith(TAG_SIGNATURE)
    marker = json.loads((directory / MARKER).read_text())
    assert marker["format"] == "mixinfer-cache" and marker["layout"] == cache_mod.LAYOUT_VERSION
    assert cache.load("words", K[0]) is not None


def test_an_empty_folder_becomes_a_cache(tmp_path: Path) -> None:
    Cache(tmp_path).store("solution", K[0], payload())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([TAG, MARKER, "solution"])


FOREIGN: dict[str, dict[str, bytes]] = {
    "user npz files": {"results/run1.npz": b"PK mine", "results/run2.tmp": b"x", "notes.txt": b"n"},
    "home folder": {".bashrc": b"export A=1", "thesis/chapter1.tex": b"\\section{}"},
    "old layout plus a user file": {f"words/{K[0]}.npz": b"PK", "todo.txt": b"buy milk"},
    "old layout plus a user file in a kind folder": {f"trace/{K[0]}.npz": b"PK", "trace/a.npz": b"m"},
    "unknown kind folder": {f"models/{K[0]}.npz": b"PK"},
    "nested folder": {f"words/sub/{K[0]}.npz": b"PK"},
    "tag of another tool": {TAG: TAG_SIGNATURE.encode() + b"\n# other tool\n", "blob.bin": b"x"},
}


@pytest.fixture(params=sorted(FOREIGN))
def foreign(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    root = tmp_path / "mine"
    for rel, data in FOREIGN[request.param].items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_a_folder_that_is_not_a_cache_is_refused_and_left_alone(foreign: Path) -> None:
    before = snapshot(foreign)
    actions: dict[str, Callable[[Cache], object]] = {
        "clear": lambda c: c.clear(),
        "info": lambda c: c.info(),
        "load": lambda c: c.load("words", K[0]),
        "store": lambda c: c.store("words", K[3], payload()),
    }
    for what, action in actions.items():
        with pytest.raises(CacheError, match=r"is not a mixinfer cache.*--cache-dir") as caught:
            action(Cache(foreign))
        assert str(foreign) in str(caught.value), what
        assert snapshot(foreign) == before, f"{what} changed a folder that is not a cache"


def test_commands_on_a_foreign_folder_exit_6_and_change_nothing(
    foreign: Path, small_bpe_tokenizer_json: Path, tmp_path: Path
) -> None:
    samples = tmp_path / "samples"
    for cat in ("a", "b"):
        (samples / cat).mkdir(parents=True)
        (samples / cat / "x.txt").write_text(f"some text of category {cat}\n" * 200)
    before = snapshot(foreign)
    commands = [
        ["cache", "clear"],
        ["cache", "info"],
        ["infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "20", "-q"],
    ]
    for command in commands:
        result = CliRunner().invoke(app, [*command, "--cache-dir", str(foreign)])
        assert result.exit_code == CACHE_EXIT, (command, result.stderr)
        assert "not a mixinfer cache" in result.stderr and "Traceback" not in result.stderr
        assert snapshot(foreign) == before, command


def test_an_old_cache_without_a_marker_is_recognised_and_adopted(tmp_path: Path) -> None:
    make_legacy(tmp_path)
    hit = Cache(tmp_path).load("trace", K[1])
    assert hit is not None and hit[1] == {"merges": 3}
    assert not (tmp_path / MARKER).exists(), "reading an old cache does not change it"
    assert Cache(tmp_path).info().entries == {"trace": 1, "words": 1}
    assert Cache(tmp_path).clear() == 3  # two entries and the old temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == [TAG, MARKER]


def test_writing_to_an_old_cache_adopts_it(tmp_path: Path) -> None:
    make_legacy(tmp_path)
    Cache(tmp_path).store("words", K[4], payload())
    assert (tmp_path / MARKER).is_file() and (tmp_path / TAG).is_file()
    assert Cache(tmp_path).load("words", K[0]) is not None


def test_an_old_cache_holding_a_symlink_is_not_adopted(tmp_path: Path) -> None:
    cdir = tmp_path / "cache"
    make_legacy(cdir)
    (tmp_path / "data.npz").write_bytes(b"precious")
    (cdir / "words" / f"{K[5]}.npz").symlink_to(tmp_path / "data.npz")
    with pytest.raises(CacheError, match="not a mixinfer cache"):
        Cache(cdir).clear()
    assert (tmp_path / "data.npz").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("marker", "needle"),
    [
        pytest.param('{"format": "mixinfer-cache", "layout": 99}', "newer", id="newer-layout"),
        pytest.param("{damaged", "marker", id="damaged-marker"),
        pytest.param('{"format": "something-else", "layout": 1}', "marker", id="foreign-marker"),
    ],
)
def test_a_marker_this_version_cannot_read_is_a_cache_error(tmp_path: Path, marker: str, needle: str) -> None:
    filled(tmp_path)
    (tmp_path / MARKER).write_text(marker)
    before = snapshot(tmp_path)
    for action in (
        lambda c: c.clear(),
        lambda c: c.load("words", K[0]),
        lambda c: c.store("words", K[2], {}),
    ):
        with pytest.raises(CacheError, match=needle):
            action(Cache(tmp_path))
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------------
# clear removes only what the cache wrote


def test_clear_removes_only_entries_and_temporary_files(tmp_path: Path) -> None:
    filled(tmp_path)
    mine = {
        "todo.txt": b"user",
        "words/notes.txt": b"user",
        "words/README.npz": b"user",
        f"words/{K[4]}.npz.bak": b"user",
        f"words/{K[4]}.tmp": b"user",
        f"words/sub/{K[4]}.npz": b"user",
        f"mine/{K[4]}.npz": b"user",
    }
    for rel, data in mine.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    old_temp(tmp_path / "trace" / f".{K[1]}.{'ab' * 8}.tmp")
    (tmp_path / "words" / f".{K[2]}.{'cd' * 8}.tmp").write_bytes(b"being written")
    mine[f"words/.{K[2]}.{'cd' * 8}.tmp"] = b"being written"
    assert Cache(tmp_path).clear() == 3
    left = snapshot(tmp_path)
    for rel, data in mine.items():
        assert left[rel] == data, f"clear removed {rel}"
    assert not list(tmp_path.rglob(f"{K[0]}.npz")) and not (tmp_path / "trace").exists()
    assert (tmp_path / MARKER).is_file() and (tmp_path / TAG).is_file()
    assert Cache(tmp_path).info().entries == {"words": 0}


def test_clear_never_follows_symlinks_out_of_the_cache(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in (f"{K[3]}.npz", f".{K[3]}.abcdefgh.tmp", "data.npz"):
        (victim / name).write_bytes(b"precious")
    cdir = tmp_path / "cache"
    filled(cdir)
    (cdir / "solution").symlink_to(victim, target_is_directory=True)
    (cdir / "words" / f"{K[5]}.npz").symlink_to(victim / "data.npz")
    before = snapshot(victim)
    assert Cache(cdir).clear() == 2
    assert snapshot(victim) == before
    assert "solution" not in Cache(cdir).info().entries


def test_a_missing_cache_is_cleared_without_creating_it(tmp_path: Path) -> None:
    assert Cache(tmp_path / "none").clear() == 0
    assert Cache(tmp_path / "none").info().entries == {}
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("kind", "key"),
    [("../escape", K[0]), ("words", "../../escape"), ("words", K[0].upper()), ("", K[0]), ("nope", K[0])],
)
def test_kinds_and_keys_cannot_name_paths_outside_the_cache(tmp_path: Path, kind: str, key: str) -> None:
    cache = Cache(tmp_path / "cache")
    with pytest.raises(ValueError):
        cache.store(kind, key, payload())
    with pytest.raises(ValueError):
        cache.load(kind, key)
    assert not (tmp_path / "escape").exists() and not list(tmp_path.rglob("*.npz"))


# --------------------------------------------------------------------------------------------------
# A clear (or rm -rf) during a run does not crash it


def test_an_entry_removed_just_before_it_is_read_is_a_plain_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled(tmp_path)
    real_load = np.load

    def clear_then_load(*args: Any, **kwargs: Any) -> Any:
        Cache(tmp_path).clear()
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", clear_then_load)
    cache = Cache(tmp_path)
    hit = cache.load("trace", K[1])  # the open file may still be read, or it is gone: never "damaged"
    assert hit is None or np.array_equal(hit[0]["a"], np.arange(20))
    assert cache.repaired == 0 and cache.hits + cache.misses == 1


def test_store_recreates_the_folders_removed_during_a_run(tmp_path: Path) -> None:
    cdir = tmp_path / "cache"
    cache = filled(cdir)
    assert cache.load("words", K[0]) is not None
    Cache(cdir).clear()
    cache.store("trace", K[2], payload())
    shutil.rmtree(cdir)
    assert cache.load("words", K[0]) is None
    cache.store("words", K[3], payload(7))
    hit = Cache(cdir).load("words", K[3])
    assert hit is not None and np.array_equal(hit[0]["a"], np.arange(7))
    assert (cdir / MARKER).is_file() and (cdir / TAG).is_file()


def _clear(directory: Path) -> None:
    assert Cache(directory).clear() == 2  # both entries; the temporary file being written stays


def _remove_temporaries(directory: Path) -> None:
    for tmp in directory.rglob("*.tmp"):
        tmp.unlink()


@pytest.mark.parametrize("meddle", [_clear, shutil.rmtree, _remove_temporaries])
def test_a_clear_during_a_write_does_not_fail_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meddle: Callable[[Path], None]
) -> None:
    cache = filled(tmp_path / "c")
    real_savez = np.savez
    calls: list[int] = []

    def savez_then_meddle(fh: Any, **arrays: Any) -> None:
        real_savez(fh, **arrays)
        if not calls:
            meddle(tmp_path / "c")
        calls.append(1)

    monkeypatch.setattr(np, "savez", savez_then_meddle)
    cache.store("words", K[2], payload(5))
    hit = cache.load("words", K[2])
    assert hit is not None and np.array_equal(hit[0]["a"], np.arange(5))
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / "c" / MARKER).is_file()


def _churn_writer(directory: str, ident: int, go: Any) -> None:
    cache = Cache(directory)
    go.wait()
    for i in range(40):
        key = K[i % 3]
        cache.store("trace", key, {"a": np.full(20_000, ident * 100 + i)}, {"v": ident * 100 + i})
        hit = cache.load("trace", key)
        if hit is not None:
            assert (hit[0]["a"] == hit[1]["v"]).all()
        assert cache.repaired == 0


def _churn_clearer(directory: str, go: Any, stop: Any) -> None:
    go.wait()
    while not stop.is_set():
        Cache(directory).clear()
        Cache(directory).info()


def test_writers_survive_a_clear_running_in_a_loop(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    go, stop = ctx.Event(), ctx.Event()
    writers = [ctx.Process(target=_churn_writer, args=(str(tmp_path), k, go)) for k in (1, 2)]
    clearer = ctx.Process(target=_churn_clearer, args=(str(tmp_path), go, stop))
    for p in [*writers, clearer]:
        p.start()
    go.set()
    for p in writers:
        p.join(timeout=120)
    stop.set()
    clearer.join(timeout=120)
    assert [p.exitcode for p in writers] == [0, 0] and clearer.exitcode == 0
    Cache(tmp_path).clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == [TAG, MARKER]


# --------------------------------------------------------------------------------------------------
# Unusable directories are cache errors; damaged or odd entries are recomputed


def test_a_cache_directory_that_is_a_file_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for directory in (blocker, blocker / "cache"):
        actions: list[Callable[[Cache], object]] = [
            lambda c: c.load("words", K[0]),
            lambda c: c.store("words", K[0], payload()),
            lambda c: c.clear(),
            lambda c: c.info(),
        ]
        for action in actions:
            with pytest.raises(CacheError, match=r"cache directory .*--cache-dir DIR.*--no-cache"):
                action(Cache(directory))
    assert blocker.read_text() == "mine"


def test_an_entry_that_is_a_folder_is_a_miss_and_left_alone(tmp_path: Path) -> None:
    cache = filled(tmp_path)
    odd = tmp_path / "words" / f"{K[2]}.npz"
    odd.mkdir()
    (odd / "inside").write_text("x")
    assert cache.load("words", K[2]) is None and cache.repaired == 0
    with pytest.raises(CacheError, match=r"cannot write.*--no-cache"):
        cache.store("words", K[2], payload())
    assert (odd / "inside").read_text() == "x"


@pytest.fixture
def alarm() -> Iterator[list[int]]:
    """Interrupts a read blocked for 10 s (a FIFO opened for reading waits for a writer forever)."""
    fired: list[int] = []

    def boom(*_: Any) -> None:
        fired.append(1)
        raise TimeoutError("blocked on a FIFO")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(10)
    yield fired
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_a_fifo_in_place_of_an_entry_is_not_read(tmp_path: Path, alarm: list[int]) -> None:
    cache = filled(tmp_path)
    fifo = tmp_path / "words" / f"{K[2]}.npz"
    os.mkfifo(fifo)
    assert cache.load("words", K[2]) is None
    assert not alarm, "the load blocked on the FIFO"
    assert cache.repaired == 0 and stat.S_ISFIFO(fifo.stat().st_mode)
    cache.store("words", K[2], payload(4))
    hit = cache.load("words", K[2])
    assert hit is not None and np.array_equal(hit[0]["a"], np.arange(4))


def test_an_unreadable_entry_is_recomputed_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = filled(tmp_path)
    entry = tmp_path / "words" / f"{K[0]}.npz"
    real_open = os.open

    def denied(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(entry) and not flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    real_np_load = np.load

    def np_load(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == str(entry):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_np_load(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", np_load)
    assert cache.load("words", K[0]) is None
    assert cache.repaired == 0 and entry.exists(), "an unreadable entry is not damaged: keep it"
    monkeypatch.undo()
    cache.store("words", K[0], payload(3))
    hit = cache.load("words", K[0])
    assert hit is not None and np.array_equal(hit[0]["a"], np.arange(3))


def test_a_directory_that_cannot_be_written_is_a_cache_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled(tmp_path)
    real_open = os.open

    def read_only(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and str(tmp_path) in os.fspath(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    cache = Cache(tmp_path)
    assert cache.load("words", K[0]) is not None  # a read-only cache still serves its entries
    with pytest.raises(CacheError, match=r"cannot write to cache directory .*Permission denied.*--no-cache"):
        cache.store("words", K[3], payload())
    assert not list(tmp_path.rglob("*.tmp"))


# --------------------------------------------------------------------------------------------------
# Real permissions, as another user (root drops to nobody in a forked child)

NOBODY = 65534


def _as_nobody(fn: Callable[[], str]) -> str:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()

    def child() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        try:
            out.put(fn())
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            out.put(f"{type(exc).__name__}: {exc}")

    proc = ctx.Process(target=child)
    proc.start()
    result = out.get(timeout=60)
    proc.join(timeout=60)
    return str(result)


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A folder every user can reach (pytest's own temporary folders are private to root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    root = Path(tempfile.mkdtemp(prefix="mixinfer-shared-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def test_a_cache_written_by_one_user_is_readable_by_another(shared_root: Path) -> None:
    old = os.umask(0o022)
    try:
        filled(shared_root / "cache")
    finally:
        os.umask(old)

    def read() -> str:
        cache = Cache(shared_root / "cache")
        hit = cache.load("trace", K[1])
        return f"hit={hit is not None} repaired={cache.repaired}"

    assert _as_nobody(read) == "hit=True repaired=0"


def test_another_users_read_only_cache_is_a_cache_error_naming_the_owner(shared_root: Path) -> None:
    filled(shared_root / "cache")
    for p in [shared_root / "cache", *(shared_root / "cache").rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)

    def write() -> str:
        Cache(shared_root / "cache").store("words", K[4], payload())
        return "stored"

    message = _as_nobody(write)
    assert message.startswith("CacheError: cannot write to cache directory"), message
    assert "Permission denied" in message and "owned by" in message and "--no-cache" in message


def test_a_cache_under_another_users_folder_is_a_cache_error_naming_the_owner(shared_root: Path) -> None:
    def write() -> str:
        Cache(shared_root / "new" / "cache").store("words", K[0], payload())
        return "stored"

    message = _as_nobody(write)
    assert message.startswith("CacheError: cannot write to cache directory"), message
    assert "owned by user 'root'" in message and not (shared_root / "new").exists()


def test_clearing_another_users_cache_is_a_cache_error(shared_root: Path) -> None:
    filled(shared_root / "cache")
    for p in [shared_root / "cache", *(shared_root / "cache").rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    before = snapshot(shared_root / "cache")

    def clear() -> str:
        return str(Cache(shared_root / "cache").clear())

    message = _as_nobody(clear)
    assert message.startswith("CacheError: cannot clear cache directory"), message
    assert "Permission denied" in message and "owned by" in message
    assert snapshot(shared_root / "cache") == before


def test_an_entry_another_user_cannot_read_is_recomputed_in_a_shared_cache(shared_root: Path) -> None:
    filled(shared_root / "cache")
    for p in [shared_root / "cache", *(shared_root / "cache").rglob("*")]:
        # world-writable folders and entries private to their writer (mkstemp's 0600 before the fix)
        p.chmod(0o777 if p.is_dir() else 0o600 if p.suffix == ".npz" else 0o644)

    def use() -> str:
        cache = Cache(shared_root / "cache")
        first = cache.load("words", K[0])
        cache.store("words", K[0], payload(2))
        second = cache.load("words", K[0])
        return f"{first is None} {second is not None} {cache.repaired}"

    assert _as_nobody(use) == "True True 0"


def test_a_cache_directory_another_user_cannot_read_is_a_cache_error(shared_root: Path) -> None:
    filled(shared_root / "cache")
    (shared_root / "cache").chmod(0o700)

    def read() -> str:
        return str(Cache(shared_root / "cache").load("words", K[0]))

    message = _as_nobody(read)
    assert message.startswith("CacheError: cannot read cache directory"), message
    assert "--no-cache" in message


# --------------------------------------------------------------------------------------------------
# Disk full


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
@pytest.mark.parametrize("where", ["savez", "fsync"])
def test_a_full_disk_is_a_cache_error_leaving_no_partial_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, where: str
) -> None:
    cache = filled(tmp_path)
    before = snapshot(tmp_path)

    def full(*args: Any, **kwargs: Any) -> None:
        if where == "savez":
            args[0].write(b"PK\x03\x04 partial")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(np if where == "savez" else os, where, full)
    with pytest.raises(
        CacheError, match=rf"cannot write to cache directory .*{os.strerror(code)}.*--no-cache"
    ):
        cache.store("words", K[3], payload())
    assert snapshot(tmp_path) == before


def test_a_full_disk_during_inference_exits_6(
    small_bpe_tokenizer_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, license_text: str
) -> None:
    samples = tmp_path / "samples"
    for cat in ("a", "b"):
        (samples / cat).mkdir(parents=True)
    (samples / "a" / "x.txt").write_text(license_text[:4000])
    (samples / "b" / "y.txt").write_text(license_text[50_000:54_000])

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, [
        "infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "20",
        "--max-bytes", "3000", "--cache-dir", str(tmp_path / "cache"), "-q", "-o", str(out),
    ])  # fmt: skip
    assert result.exit_code == CACHE_EXIT, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists() and not list((tmp_path / "cache").rglob("*.tmp"))


# --------------------------------------------------------------------------------------------------
# Permissions follow the umask


@pytest.mark.parametrize(("umask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_cache_files_and_folders_follow_the_umask(
    tmp_path: Path, umask: int, file_mode: int, dir_mode: int
) -> None:
    old = os.umask(umask)
    try:
        filled(tmp_path / "new" / "cache")
    finally:
        os.umask(old)
    made = [tmp_path / "new", *(tmp_path / "new").rglob("*")]
    for p in made:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (dir_mode if p.is_dir() else file_mode), (p, oct(mode))
    assert len(made) == 8  # new/, cache/, two markers, two kind folders, two entries


# --------------------------------------------------------------------------------------------------
# Keys and the default directory


@pytest.mark.parametrize(
    "parts",
    [
        ("trace", "0" * 32, "1" * 32, 30000),
        ("words", [["a/b.txt", 123, 456]] * 5, "fp", 1000, "document", ["0.20", "2024.1"]),
        ({"b": 1, "a": [1.5, None, True]}, Path("/x/y"), "ünï"),
        (),
    ],
)
def test_make_key_is_the_documented_hash(parts: tuple[object, ...]) -> None:
    """Keys must not change when make_key is optimised, or every user's cache goes cold."""
    payload_text = json.dumps([FORMAT_VERSION, *parts], sort_keys=True, default=str)
    assert make_key(*parts) == hashlib.sha256(payload_text.encode()).hexdigest()[:32]


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MIXINFER_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec says: ignore it
    assert default_cache_dir() == tmp_path / ".cache" / "mixinfer"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "mixinfer"


def test_inference_still_uses_the_cache(
    small_bpe_tokenizer_json: Path, tmp_path: Path, license_text: str
) -> None:
    samples = tmp_path / "samples"
    for cat, start in (("a", 0), ("b", 50_000)):
        (samples / cat).mkdir(parents=True)
        (samples / cat / "x.txt").write_text(license_text[start : start + 4000])
    kw: dict[str, Any] = {"merges": 20, "max_bytes": 3000, "workers": 1, "cache_dir": tmp_path / "cache"}
    first = mixinfer.infer(small_bpe_tokenizer_json, samples, **kw)
    assert (tmp_path / "cache" / MARKER).is_file()
    second = mixinfer.infer(small_bpe_tokenizer_json, samples, **kw)
    assert second.proportions == first.proportions


@pytest.mark.parametrize("meddle", ["clear", "rm -rf"])
def test_clearing_the_cache_during_inference_does_not_change_the_answer(
    small_bpe_tokenizer_json: Path, tmp_path: Path, license_text: str, meddle: str
) -> None:
    samples = tmp_path / "samples"
    for cat, start in (("a", 0), ("b", 50_000), ("c", 100_000)):
        (samples / cat).mkdir(parents=True)
        (samples / cat / "x.txt").write_text(license_text[start : start + 4000])
    cdir = tmp_path / "cache"
    calls: list[str] = []

    def meddling(update: Progress) -> None:
        calls.append(update.stage)
        if meddle == "clear":
            Cache(cdir).clear()
        elif cdir.exists():
            shutil.rmtree(cdir)

    kw: dict[str, Any] = {"merges": 30, "max_bytes": 3000, "workers": 1}
    for _ in range(2):  # cold, then with whatever survived
        result = mixinfer.infer(small_bpe_tokenizer_json, samples, cache_dir=cdir, progress=meddling, **kw)
        cold = mixinfer.infer(small_bpe_tokenizer_json, samples, use_cache=False, **kw)
        assert result.proportions == cold.proportions
    assert {"count", "replay"} <= set(calls)
