"""The on-disk cache never lies: atomic writes, corrupt entries recomputed, keys cover content."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer import cache as cache_mod
from mixinfer.cache import Cache, make_key
from mixinfer.cli import EXIT_CODES, app
from mixinfer.counting import count_key
from mixinfer.errors import CacheError
from mixinfer.pretokenizers import PRESETS, Pretokenizer
from mixinfer.replay import trace_key
from mixinfer.samples import discover
from mixinfer.tokenizer import load_tokenizer

PYLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
# Keys are 32 hex digits from make_key; the cache refuses anything else.
KEY = make_key("test", "k")
KEY1 = make_key("test", "k1")
SHARED = make_key("test", "shared")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> Path:
    """Two small categories of real text: English licences and Python source."""
    root = tmp_path_factory.mktemp("cache-samples")
    (root / "en").mkdir()
    (root / "code").mkdir()
    (root / "en" / "a.txt").write_text(license_text[:6000], encoding="utf-8")
    (root / "en" / "b.txt").write_text(license_text[100_000:106_000], encoding="utf-8")
    for name in ("textwrap.py", "shlex.py"):
        src = PYLIB / name
        text = src.read_text(encoding="utf-8")[:6000] if src.is_file() else license_text[:10]
        (root / "code" / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def entries(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.npz"))


def comparable(result: mixinfer.InferenceResult) -> dict[str, Any]:
    d = json.loads(result.to_json())
    d.pop("timing")
    d["solver"].pop("solver_seconds")
    return d


# --------------------------------------------------------------------------------------------------
# Store and load


def test_store_load_roundtrip(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c")
    arrays = {
        "ints": np.arange(1000, dtype=np.int64) * 3,
        "floats": np.linspace(0, 1, 77),
        "bytes": np.frombuffer("ünïcode".encode(), dtype=np.uint8),
        "empty": np.zeros(0, dtype=np.int32),
        "matrix": np.arange(12, dtype=np.int16).reshape(3, 4),
    }
    assert cache.load("words", KEY1) is None and cache.misses == 1
    cache.store("words", KEY1, arrays, {"bytes": 5, "warnings": ["ü"]})
    hit = cache.load("words", KEY1)
    assert hit is not None and cache.hits == 1
    got, meta = hit
    assert meta == {"bytes": 5, "warnings": ["ü"]}
    assert set(got) == set(arrays)
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape
        assert np.array_equal(got[name], arr)
    assert [p.name for p in entries(tmp_path / "c")] == [f"{KEY1}.npz"]
    assert not list((tmp_path / "c").rglob("*.tmp"))
    info = cache.info()
    assert info.entries == {"words": 1} and info.bytes["words"] > 0


def test_a_disabled_cache_stores_nothing(tmp_path: Path) -> None:
    cache = Cache(None)
    assert not cache.enabled
    cache.store("words", KEY, {"a": np.arange(3)})
    assert cache.load("words", KEY) is None
    assert cache.clear() == 0 and cache.info().entries == {}


def test_an_interrupted_store_leaves_no_entry_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Cache(tmp_path)
    real_savez = np.savez

    def savez_then_ctrl_c(fh: Any, **arrays: Any) -> None:
        real_savez(fh, **arrays)
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        cache.store("trace", KEY, {"a": np.arange(10_000)})
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["CACHEDIR.TAG", "mixinfer-cache.json", "trace"]


def test_an_unusable_cache_directory_is_a_cache_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CacheError, match=r"cannot use cache directory .* is a file.*--no-cache"):
        Cache(blocker / "cache").store("words", KEY, {"a": np.arange(3)})


# --------------------------------------------------------------------------------------------------
# Corruption


def _truncate_half(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _truncate_tail(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-30])


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _flip_middle(p: Path) -> None:
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 8):
        data[i] ^= 0xFF
    p.write_bytes(bytes(data))


def _flip_header(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[0] ^= 0xFF
    p.write_bytes(bytes(data))


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(4096))


def _no_meta(p: Path) -> None:
    np.savez(p.open("wb"), a=np.arange(5))


def _tampered_array(p: Path) -> None:
    # A well-formed entry whose data no longer matches the digest stored with it.
    with np.load(p, allow_pickle=False) as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    name = next(n for n in sorted(arrays) if n != "__meta__" and arrays[n].size)
    arrays[name].flat[0] += 1
    with p.open("wb") as fh:
        np.savez(fh, **arrays)


def _bad_meta_json(p: Path) -> None:
    with np.load(p, allow_pickle=False) as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    arrays["__meta__"] = np.frombuffer(b"{not json", dtype=np.uint8)
    with p.open("wb") as fh:
        np.savez(fh, **arrays)


CORRUPTIONS = [
    pytest.param(_truncate_half, id="truncated-half"),
    pytest.param(_truncate_tail, id="truncated-tail"),
    pytest.param(_empty, id="empty"),
    pytest.param(_flip_middle, id="flipped-bytes"),
    pytest.param(_flip_header, id="flipped-header"),
    pytest.param(_garbage, id="garbage"),
    pytest.param(_no_meta, id="no-meta"),
    pytest.param(_tampered_array, id="tampered-array"),
    pytest.param(_bad_meta_json, id="bad-meta-json"),
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_a_corrupt_entry_is_detected_and_removed(tmp_path: Path, corrupt: Any) -> None:
    cache = Cache(tmp_path)
    cache.store("words", KEY, {"a": np.arange(50_000), "b": np.ones(10)}, {"x": 1})
    path = tmp_path / "words" / f"{KEY}.npz"
    corrupt(path)
    assert cache.load("words", KEY) is None
    assert not path.exists()
    assert cache.repaired == 1 and cache.hits == 0
    cache.store("words", KEY, {"a": np.arange(3)})
    hit = cache.load("words", KEY)
    assert hit is not None and np.array_equal(hit[0]["a"], np.arange(3))


def test_an_entry_under_another_entrys_name_is_not_trusted(tmp_path: Path) -> None:
    """Intact, so its checksums pass, but copied over another key's file by hand (or a sync
    tool): it used to answer for that key, a wrong answer with exit 0."""
    other = "f" * 32
    cache = Cache(tmp_path)
    cache.store("words", KEY, {"a": np.arange(5)}, {"x": 1})
    cache.store("words", other, {"a": np.arange(7)}, {"x": 2})
    shutil.copyfile(tmp_path / "words" / f"{KEY}.npz", tmp_path / "words" / f"{other}.npz")
    assert cache.load("words", other) is None
    assert cache.repaired == 1 and not (tmp_path / "words" / f"{other}.npz").exists()
    hit = cache.load("words", KEY)
    assert hit is not None and hit[1] == {"x": 1} and np.array_equal(hit[0]["a"], np.arange(5))


def test_a_pickle_in_the_cache_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self) -> Any:
            return (open, (str(marker), "w"))

    cache = Cache(tmp_path / "c")
    path = tmp_path / "c" / "words" / f"{KEY}.npz"
    path.parent.mkdir(parents=True)
    meta = np.frombuffer(json.dumps({"__digests__": {}}).encode(), dtype=np.uint8)
    evil = np.empty(1, dtype=object)
    evil[0] = Evil()
    with path.open("wb") as fh:
        np.savez(fh, __meta__=meta, a=evil)
    with zipfile.ZipFile(path) as zf:
        assert pickle.dumps(Evil())[:2] in zf.read("a.npy")  # really holds a pickle
    assert cache.load("words", KEY) is None
    assert not marker.exists() and not path.exists()


@pytest.mark.parametrize("corrupt", [CORRUPTIONS[0], CORRUPTIONS[3], CORRUPTIONS[7]])
def test_inference_recomputes_corrupt_entries_and_gives_the_same_answer(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path, corrupt: Any
) -> None:
    kw: dict[str, Any] = {"merges": 60, "max_bytes": 8000, "workers": 1}
    cdir = tmp_path / "cache"
    first = mixinfer.infer(small_bpe_tokenizer_json, samples, cache_dir=cdir, **kw)
    stored = entries(cdir)
    assert {p.parent.name for p in stored} == {"words", "trace", "solution"} and len(stored) == 5
    for p in stored:
        corrupt(p)
    second = mixinfer.infer(small_bpe_tokenizer_json, samples, cache_dir=cdir, **kw)
    assert comparable(second) == comparable(first)
    assert entries(cdir) == stored
    for p in stored:
        assert Cache(cdir).load(p.parent.name, p.stem) is not None
    cold = mixinfer.infer(small_bpe_tokenizer_json, samples, use_cache=False, **kw)
    assert comparable(cold) == comparable(first)


# --------------------------------------------------------------------------------------------------
# Concurrency

WRITES = 20
SIZE = 300_000


def _writer(directory: str, ident: int, go: Any) -> None:
    cache = Cache(directory)
    go.wait()
    for i in range(WRITES):
        arr = np.full(SIZE, ident * 1000 + i, dtype=np.int64)
        cache.store("trace", SHARED, {"a": arr, "b": arr[:100] * 2}, {"writer": ident, "i": i})


def _reader(directory: str, go: Any, stop: Any, out: Any) -> None:
    cache = Cache(directory)
    go.wait()
    good = bad = 0
    while not stop.is_set() or good == 0:
        hit = cache.load("trace", SHARED)
        if hit is None:
            continue
        arrays, meta = hit
        value = meta["writer"] * 1000 + meta["i"]
        if (arrays["a"] == value).all() and (arrays["b"] == 2 * value).all():
            good += 1
        else:
            bad += 1
    out.put((good, bad, cache.repaired))


def test_two_writers_of_the_same_key_leave_one_valid_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    go, stop = ctx.Event(), ctx.Event()
    out = ctx.Queue()
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), k, go)) for k in (1, 2)]
    reader = ctx.Process(target=_reader, args=(str(tmp_path), go, stop, out))
    for p in [*writers, reader]:
        p.start()
    go.set()
    for p in writers:
        p.join(timeout=120)
        assert p.exitcode == 0
    stop.set()
    good, bad, repaired = out.get(timeout=120)
    reader.join(timeout=120)
    assert reader.exitcode == 0 and good > 0
    assert bad == 0 and repaired == 0, "a reader saw a partial or mixed entry"
    assert not list(tmp_path.rglob("*.tmp"))
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == sorted([f"{SHARED}.npz", "CACHEDIR.TAG", "mixinfer-cache.json"])
    hit = Cache(tmp_path).load("trace", SHARED)
    assert hit is not None
    arrays, meta = hit
    assert meta["writer"] in (1, 2) and meta["i"] == WRITES - 1
    assert (arrays["a"] == meta["writer"] * 1000 + WRITES - 1).all()


# --------------------------------------------------------------------------------------------------
# Keys


def test_count_key_covers_everything_that_changes_word_counts(
    samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = discover(samples)[0]
    base = PRESETS["default"]
    key = count_key(cat, base, 1000, "document")
    assert count_key(discover(samples)[0], base, 1000, "document") == key  # stable
    assert count_key(cat, replace(base, name="renamed", reason="cosmetic"), 1000, "document") == key
    variants = {
        "budget": count_key(cat, base, 1001, "document"),
        "unit": count_key(cat, base, 1000, "line"),
        "pretokenizer": count_key(cat, PRESETS["gpt2"], 1000, "document"),
        "normalizer": count_key(cat, replace(base, normalizer_json='{"type":"NFKC"}'), 1000, "document"),
        "byte-level flag": count_key(cat, replace(base, byte_level=False), 1000, "document"),
        "other category": count_key(discover(samples)[1], base, 1000, "document"),
    }
    monkeypatch.setattr(cache_mod, "FORMAT_VERSION", cache_mod.FORMAT_VERSION + 1)
    variants["format version"] = count_key(cat, base, 1000, "document")
    for what, other in variants.items():
        assert other != key, f"the word-count key ignores the {what}"
    assert len(set(variants.values())) == len(variants)


def test_count_key_follows_sample_files(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    f = tmp_path / "en" / "a.txt"
    f.write_text("first version")
    p = PRESETS["default"]

    def key() -> str:
        return count_key(discover(tmp_path)[0], p, 1000, "document")

    keys = [key()]
    f.write_text("second version, longer")  # size
    keys.append(key())
    st = f.stat()
    f.write_text("third version, longer!")  # same size: mtime
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    keys.append(key())
    (tmp_path / "en" / "b.txt").write_text("a new file")
    keys.append(key())
    (tmp_path / "en" / "b.txt").rename(tmp_path / "en" / "c.txt")
    keys.append(key())
    assert len(set(keys)) == len(keys)


def test_trace_key_covers_the_merges(small_bpe_tokenizer_json: Path) -> None:
    tok = load_tokenizer(small_bpe_tokenizer_json)
    words = "0" * 32
    key = trace_key(words, tok, 50)
    assert trace_key(words, tok, 50) == key
    assert trace_key(words, tok, 51) != key
    assert trace_key("1" * 32, tok, 50) != key
    changed = list(tok.merges)
    changed[10], changed[11] = changed[11], changed[10]
    assert trace_key(words, replace(tok, merges=changed), 50) != key
    # A merge beyond the ones replayed changes nothing as long as the token table keeps its size.
    later = list(tok.merges)
    later[-1], later[-2] = later[-2], later[-1]
    assert trace_key(words, replace(tok, merges=later), 50) == key
    # ...but a shorter or longer list renumbers the pair codes, so the trace cannot be shared.
    assert trace_key(words, replace(tok, merges=tok.merges[:200]), 50) != key


def test_a_cached_trace_is_not_reused_for_a_merge_list_of_another_length(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    doc = json.loads(small_bpe_tokenizer_json.read_text(encoding="utf-8"))
    doc["model"]["merges"] = doc["model"]["merges"][:150]
    short = tmp_path / "short" / "tokenizer.json"
    short.parent.mkdir()
    short.write_text(json.dumps(doc), encoding="utf-8")
    kw: dict[str, Any] = {"merges": 80, "max_bytes": 8000, "workers": 1}
    cdir = tmp_path / "cache"
    mixinfer.infer(small_bpe_tokenizer_json, samples, cache_dir=cdir, **kw)
    warm = mixinfer.infer(short, samples, cache_dir=cdir, **kw)
    cold = mixinfer.infer(short, samples, use_cache=False, **kw)
    assert comparable(warm) == comparable(cold)


def test_make_key_is_stable_and_sensitive() -> None:
    assert make_key("a", 1, [2, "x"]) == make_key("a", 1, [2, "x"])
    assert make_key("a", 1) != make_key("a", 2) != make_key("a", "1")
    assert len(make_key("x")) == 32


def test_pretokenizer_fingerprint_ignores_only_cosmetics() -> None:
    p = Pretokenizer("x", None, '{"type":"ByteLevel"}', True, "why")
    assert p.fingerprint() == replace(p, name="y", reason="other").fingerprint()
    assert p.fingerprint() != replace(p, normalizer_json='{"type":"NFC"}').fingerprint()


# --------------------------------------------------------------------------------------------------
# The cache commands


def test_cache_info_and_clear_from_the_command_line(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    cdir = tmp_path / "cache"
    empty = runner.invoke(app, ["cache", "info", "--cache-dir", str(cdir)])
    assert empty.exit_code == 0 and "(empty)" in empty.stdout
    run = runner.invoke(app, [
        "infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "40",
        "--max-bytes", "5000", "--cache-dir", str(cdir), "--quiet", "--format", "json",
    ])  # fmt: skip
    assert run.exit_code == 0, run.stderr
    leftover = cdir / "words" / f".{KEY}.{'0' * 16}.tmp"  # a killed writer's, an hour ago
    leftover.write_bytes(b"x")
    os.utime(leftover, (leftover.stat().st_atime - 3600, leftover.stat().st_mtime - 3600))
    info = runner.invoke(app, ["cache", "info", "--cache-dir", str(cdir)])
    assert info.exit_code == 0
    assert str(cdir) in info.stdout.replace("\n", "")
    rows = {line.split("│")[1].strip(): line for line in info.stdout.splitlines()
            if line.count("│") >= 3}  # fmt: skip
    assert "words" in rows and "trace" in rows
    assert rows["words"].split("│")[2].strip() == "2"
    assert rows["trace"].split("│")[2].strip() == "2"
    assert rows["solution"].split("│")[2].strip() == "1"
    cleared = runner.invoke(app, ["cache", "clear", "--cache-dir", str(cdir)])
    assert cleared.exit_code == 0
    assert "removed 6 cache entries" in cleared.stderr
    assert not list(cdir.rglob("*.npz")) and not list(cdir.rglob("*.tmp"))
    again = runner.invoke(app, ["cache", "info", "--cache-dir", str(cdir)])
    assert "(empty)" in again.stdout
    assert runner.invoke(app, ["cache", "clear", "--cache-dir", str(cdir)]).exit_code == 0


def test_cache_commands_use_the_environment_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXINFER_CACHE_DIR", str(tmp_path / "env-cache"))
    Cache(tmp_path / "env-cache").store("words", KEY, {"a": np.arange(3)})
    result = CliRunner().invoke(app, ["cache", "clear"])
    assert result.exit_code == 0 and "removed 1 cache entries" in result.stderr
    assert not (tmp_path / "env-cache" / "words" / f"{KEY}.npz").exists()


def test_infer_with_an_unwritable_cache_exits_with_the_cache_code(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, [
        "infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "20",
        "--max-bytes", "3000", "--cache-dir", str(blocker / "cache"), "-q", "-o", str(out),
    ])  # fmt: skip
    assert result.exit_code == EXIT_CODES[CacheError] == 6
    assert "cannot use cache directory" in result.stderr and "--no-cache" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
