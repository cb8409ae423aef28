"""Sample discovery and reading: order, budget, formats, symlinks and bad files."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from mixinfer.errors import SamplesError
from mixinfer.samples import Category, ReadStats, discover, iter_documents

ZH = "中文测试，混合 English 和数字 123。"
PYLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def read_all(cat: Category, **kw: object) -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    docs = list(iter_documents(cat, stats=stats, **kw))  # type: ignore[arg-type]
    return docs, stats


def one(root: Path) -> Category:
    cats = discover(root)
    assert len(cats) == 1
    return cats[0]


# --------------------------------------------------------------------------------------------------
# Discovery and order


def test_categories_and_files_are_sorted_and_hidden_entries_ignored(tmp_path: Path) -> None:
    for cat in ("zeta", "alpha", "mid"):
        write(tmp_path / cat / "b.txt", f"{cat} b")
        write(tmp_path / cat / "a.txt", f"{cat} a")
        write(tmp_path / cat / "sub" / "0.txt", f"{cat} sub")
        write(tmp_path / cat / ".hidden.txt", "hidden")
        write(tmp_path / cat / ".git" / "x.txt", "hidden dir")
    (tmp_path / ".cache").mkdir()
    write(tmp_path / "README.txt", "a file at the top level is not a category")
    cats = discover(tmp_path)
    assert [c.name for c in cats] == ["alpha", "mid", "zeta"]
    for c in cats:
        assert [f.relpath for f in c.files] == ["a.txt", "b.txt", "sub/0.txt"]
        docs, _ = read_all(c)
        assert docs == [f"{c.name} a", f"{c.name} b", f"{c.name} sub"]
        assert c.skipped == []


def test_the_same_budget_takes_identical_bytes_on_every_run(tmp_path: Path) -> None:
    sources = sorted(PYLIB.glob("*.py"))[:12] or [Path(__file__)]
    for i, src in enumerate(sources):
        write(tmp_path / "code" / f"{(i * 7919) % 97:02d}-{src.name}.txt", src.read_bytes())
    budget = 70_001
    first, st1 = read_all(one(tmp_path), max_bytes=budget)
    second, st2 = read_all(one(tmp_path), max_bytes=budget)
    assert first == second
    assert st1 == st2
    assert st1.bytes == sum(len(d.encode()) for d in first)
    if sum(p.stat().st_size for p in sources) > budget:
        assert st1.bytes == budget


@pytest.mark.parametrize("kind", ["txt", "txt.gz", "jsonl", "jsonl.gz"])
def test_budget_is_cut_on_a_utf8_character_boundary(tmp_path: Path, kind: str) -> None:
    docs = [ZH * 3, "é" * 7 + "🙂" * 5, ZH]
    folder = tmp_path / "zh"
    for i, doc in enumerate(docs):
        if kind.startswith("txt"):
            data = doc.encode()
        else:
            data = json.dumps({"text": doc}, ensure_ascii=False).encode() + b"\n"
        if kind.endswith(".gz"):
            data = gzip.compress(data, mtime=0)
        write(folder / f"{i}.{kind}", data)
    whole = "".join(docs).encode()
    cat = one(tmp_path)
    for budget in range(1, len(whole) + 10):
        got, stats = read_all(cat, max_bytes=budget)
        joined = "".join(got).encode()
        assert whole.startswith(joined)
        assert len(joined) <= budget
        # Never more than one character (at most 4 bytes) short of the budget.
        assert len(joined) > min(budget, len(whole)) - 4
        assert stats.bytes == len(joined)
        assert stats.warnings == [], f"spurious warning at budget {budget}: {stats.warnings}"


def test_budget_cut_inside_a_character_is_not_reported_as_invalid_utf8(tmp_path: Path) -> None:
    write(tmp_path / "zh" / "a.txt", "测" * 100)
    cat = one(tmp_path)
    for budget in (1, 2, 4, 5, 10, 100, 298, 299, 300):
        got, stats = read_all(cat, max_bytes=budget)
        assert stats.replaced_chars == 0 and not stats.warnings
        assert "".join(got) == "测" * (budget // 3)


def test_unit_line_keeps_newlines(tmp_path: Path) -> None:
    doc = "first line\nsecond\r\n\nfourth without end"
    write(tmp_path / "en" / "a.txt", doc)
    write(tmp_path / "en" / "b.jsonl", json.dumps({"text": "x\ny\n"}) + "\n")
    cat = one(tmp_path)
    lines, stats = read_all(cat, unit="line")
    assert lines == ["first line\n", "second\r\n", "\n", "fourth without end", "x\n", "y\n"]
    assert stats.documents == 6
    documents, stats_doc = read_all(cat, unit="document")
    assert documents == [doc, "x\ny\n"]
    assert "".join(lines) == "".join(documents) and stats.bytes == stats_doc.bytes
    cut, _ = read_all(cat, unit="line", max_bytes=14)
    assert cut == ["first line\n", "sec"]


def test_unknown_unit_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "en" / "a.txt", "text")
    with pytest.raises(SamplesError, match="unknown --unit 'word'"):
        read_all(one(tmp_path), unit="word")


# --------------------------------------------------------------------------------------------------
# Formats


def test_all_supported_formats_are_read(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "mixed"
    write(folder / "1.txt", "plain text")
    write(folder / "2.txt.gz", gzip.compress(b"gzipped text"))
    write(folder / "3.jsonl", '{"text": "json one", "id": 1}\n\n{"text": "json two"}\n')
    lines = "".join(json.dumps({"text": t}) + "\n" for t in ("gz json", "ünïcode"))
    write(folder / "4.jsonl.gz", gzip.compress(lines.encode()))
    table = pa.table({"text": ["row one", None, "row three"], "other": [1, 2, 3]})
    pq.write_table(table, folder / "5.parquet")
    cat = one(tmp_path)
    assert [f.kind for f in cat.files] == ["txt", "txt", "jsonl", "jsonl", "parquet"]
    docs, stats = read_all(cat)
    assert docs == [
        "plain text", "gzipped text", "json one", "json two", "gz json", "ünïcode", "row one",
        "row three",
    ]  # fmt: skip
    assert stats.documents == len(docs) and not stats.warnings


def test_parquet_without_a_text_column(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "p").mkdir()
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "p" / "a.parquet")
    with pytest.raises(SamplesError, match=r"a\.parquet: Parquet file has no 'text' column"):
        read_all(one(tmp_path))


def test_damaged_parquet_and_gzip_files(tmp_path: Path) -> None:
    write(tmp_path / "p" / "a.parquet", b"PAR1 this is not really parquet")
    with pytest.raises(SamplesError, match=r"a\.parquet: cannot read Parquet file"):
        read_all(one(tmp_path))
    os.unlink(tmp_path / "p" / "a.parquet")
    write(tmp_path / "p" / "a.txt.gz", gzip.compress(b"hello world" * 100)[:40])
    with pytest.raises(SamplesError, match=r"a\.txt\.gz: cannot read sample file"):
        read_all(one(tmp_path))
    write(tmp_path / "p" / "a.txt.gz", b"not gzip at all")
    with pytest.raises(SamplesError, match=r"a\.txt\.gz: cannot read sample file"):
        read_all(one(tmp_path))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("not json", r"b\.jsonl:2: not a JSON object", id="not-json"),
        pytest.param('{"body": "x"}', r"b\.jsonl:2: record has no string field 'text'",
                     id="no-text"),
        pytest.param('{"text": 5}', r"b\.jsonl:2: record has no string field 'text'",
                     id="text-not-string"),
        pytest.param('["text"]', r"b\.jsonl:2: record has no string field 'text'", id="array"),
        pytest.param('{"text": "x"', r"b\.jsonl:2: not a JSON object", id="truncated"),
    ],
)  # fmt: skip
def test_bad_jsonl_lines_name_the_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    write(tmp_path / "j" / "b.jsonl", '{"text": "fine"}\n' + line + "\n")
    with pytest.raises(SamplesError, match=message):
        read_all(one(tmp_path))


# --------------------------------------------------------------------------------------------------
# Links, odd files, bad directories


def test_symlinks_are_followed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write(store / "doc.txt", "linked file")
    write(store / "more" / "x.txt", "linked dir")
    write(store / "whole" / "w.txt", "linked category")
    root = tmp_path / "samples"
    (root / "a").mkdir(parents=True)
    (root / "a" / "doc.txt").symlink_to(store / "doc.txt")
    (root / "a" / "more").symlink_to(store / "more", target_is_directory=True)
    (root / "b").symlink_to(store / "whole", target_is_directory=True)
    cats = discover(root)
    assert [c.name for c in cats] == ["a", "b"]
    assert read_all(cats[0])[0] == ["linked file", "linked dir"]
    assert read_all(cats[1])[0] == ["linked category"]


def test_a_dangling_symlink_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "a" / "good.txt", "text")
    (tmp_path / "a" / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    cat = one(tmp_path)
    assert [f.relpath for f in cat.files] == ["good.txt"]
    assert any("gone.txt" in s and "cannot be read" in s for s in cat.skipped)


def test_unsupported_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    from mixinfer import counting
    from mixinfer.pretokenizers import PRESETS

    write(tmp_path / "en" / "a.txt", "some words here")
    write(tmp_path / "en" / "notes.md", "# markdown")
    write(tmp_path / "en" / "data.csv", "a,b")
    cat = one(tmp_path)
    assert [f.relpath for f in cat.files] == ["a.txt"]
    assert len(cat.skipped) == 2
    assert all("not a sample file type" in s for s in cat.skipped)
    assert any("notes.md" in s for s in cat.skipped) and any("data.csv" in s for s in cat.skipped)
    # The walk's warnings are reported from each run's own walk (stages.report), never stored
    # with the counts: a cached count would repeat them after the files are gone.
    (wc,) = counting.count_words([cat], PRESETS["default"], max_bytes=1000, workers=1)
    assert not any("notes.md" in w for w in wc.warnings)


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    write(tmp_path / "x" / "a.txt", b"caf\xe9 ok \xff\xfe and \xef\xbf\xbd literal")
    docs, stats = read_all(one(tmp_path))
    assert docs == ["caf\ufffd ok \ufffd\ufffd and \ufffd literal"]
    assert stats.replaced_chars == 3
    assert len(stats.warnings) == 1 and "a.txt: 3 invalid UTF-8" in stats.warnings[0]


def test_binary_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "x" / "a.txt", "real text")
    write(tmp_path / "x" / "b.txt", b"\x7fELF\x00\x00\x01" + bytes(range(256)) * 4)
    docs, stats = read_all(one(tmp_path))
    assert docs == ["real text"]
    assert any("b.txt: looks like a binary file" in w for w in stats.warnings)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        pytest.param("missing", "does not exist; check --samples", id="missing"),
        pytest.param("file", "is a file; it must be a directory", id="a-file"),
        pytest.param("flat", "has no category sub-directories", id="no-categories"),
        pytest.param("no-files", "category 'empty' .* has no readable sample files",
                     id="category-without-sample-files"),
    ],
)  # fmt: skip
def test_unusable_samples_directories(tmp_path: Path, layout: str, message: str) -> None:
    root = tmp_path / "samples"
    if layout == "file":
        write(root, "x")
    elif layout == "flat":
        write(root / "a.txt", "text in the wrong place")
    elif layout == "no-files":
        write(root / "good" / "a.txt", "text")
        write(root / "empty" / "readme.md", "no samples")
    with pytest.raises(SamplesError, match=message):
        discover(root)


def test_fingerprint_follows_size_and_mtime(tmp_path: Path) -> None:
    f = write(tmp_path / "a" / "a.txt", "version one")
    before = one(tmp_path).fingerprint()
    assert one(tmp_path).fingerprint() == before
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    touched = one(tmp_path).fingerprint()
    assert touched != before
    f.write_text("version two!")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert one(tmp_path).fingerprint() not in (before, touched)


# --------------------------------------------------------------------------------------------------
# The module's contract with the rest of the package


def test_public_names_stay_importable_from_mixinfer_samples() -> None:
    from mixinfer import samples, sources

    names = ["DEFAULT_MAX_BYTES", "UNITS", "Category", "ReadStats", "discover", "iter_documents"]
    names += ["bundled_samples_dir", "bundled_demo_tokenizer", "open_samples", "SampleSource"]
    for name in names:
        assert hasattr(samples, name), name
    assert samples.Category is sources.Category and samples.iter_documents is sources.iter_documents


def test_fingerprint_is_the_documented_hash(tmp_path: Path) -> None:
    """Name, then per file: path in the category, size, mtime and the local stamp (device, inode,
    inode change time; added so that new text with the same names, sizes and times is never
    taken for the old, which made caches of earlier versions miss once)."""
    import hashlib

    write(tmp_path / "en" / "b.txt", "second")
    write(tmp_path / "en" / "sub" / "a.jsonl", '{"text": "first"}\n')
    cat = one(tmp_path)
    h = hashlib.sha256(b"en")
    for rel in ("b.txt", "sub/a.jsonl"):
        st = (tmp_path / "en" / rel).stat()
        stamp = f"{st.st_dev}:{st.st_ino}:{st.st_ctime_ns}"
        h.update(f"\0{rel}\0{st.st_size}\0{st.st_mtime_ns}\0stamp={stamp}".encode())
    assert cat.fingerprint() == h.hexdigest()[:24]
