"""Manifest files as --samples (issue 13): local paths, directories and globs, strict validation,
per-category budgets, and equality with the directory form."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer.cli import app
from mixinfer.errors import SamplesError
from mixinfer.sources import Category, ReadStats, iter_documents, open_samples
from mixinfer.sources.directory import DirectorySource
from mixinfer.sources.manifest import ManifestSource, load_manifest, parse_size

yaml = pytest.importorskip("yaml")


def write_samples(root: Path, text: str) -> Path:
    """Two categories in several formats and nested folders (real English text)."""
    en = root / "en"
    (en / "sub").mkdir(parents=True)
    (en / "a.txt").write_text(text[:5000], encoding="utf-8")
    (en / "sub" / "b.jsonl").write_text(
        "".join(json.dumps({"text": p}) + "\n" for p in text[5000:12000].split("\n\n") if p), encoding="utf-8"
    )
    (en / "c.txt.gz").write_bytes(gzip.compress(text[12000:16000].encode()))
    legal = root / "legal"
    legal.mkdir()
    (legal / "z.txt").write_text(text[-9000:-4000], encoding="utf-8")
    (legal / "y.txt").write_text(text[-4000:], encoding="utf-8")
    return root


def write_manifest(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(data), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def docs(categories: list[Category], **kw: int) -> dict[str, list[str]]:
    return {c.name: list(iter_documents(c, **kw)) for c in categories}  # type: ignore[arg-type]


@pytest.fixture
def samples(tmp_path: Path, license_text: str) -> Path:
    return write_samples(tmp_path / "samples", license_text)


def test_a_directory_and_its_manifest_infer_identically(
    tmp_path: Path, samples: Path, small_bpe_tokenizer_json: Path
) -> None:
    manifest = write_manifest(
        tmp_path / "m.yaml",
        {
            "categories": {
                "legal": {"sources": [{"path": "samples/legal"}]},
                "en": {"sources": [{"path": "samples/en"}]},
            }
        },
    )
    assert isinstance(open_samples(manifest), ManifestSource)
    assert isinstance(open_samples(samples), DirectorySource)
    d_cats, m_cats = open_samples(samples).categories(), open_samples(manifest).categories()
    assert [c.name for c in m_cats] == [c.name for c in d_cats] == ["en", "legal"]
    # Same files, same order, same documents (in full and under a budget that cuts a file).
    assert [[f.path for f in c.files] for c in m_cats] == [[f.path for f in c.files] for c in d_cats]
    assert docs(m_cats) == docs(d_cats)
    assert docs(m_cats, max_bytes=7000) == docs(d_cats, max_bytes=7000)
    for spec_budget in (mixinfer.sources.DEFAULT_MAX_BYTES, 9000):
        a = mixinfer.infer(
            small_bpe_tokenizer_json, samples, merges=60, max_bytes=spec_budget, use_cache=False
        )
        b = mixinfer.infer(
            small_bpe_tokenizer_json, manifest, merges=60, max_bytes=spec_budget, use_cache=False
        )
        assert a.proportions == b.proportions
        assert a.samples == b.samples
        assert a.merges_used == b.merges_used


def test_yaml_json_and_toml_forms_are_the_same_manifest(tmp_path: Path, samples: Path) -> None:
    data = {"categories": {"en": {"sources": [{"path": "samples/en/*.txt"}], "max_bytes": "3kB"}}}
    y = write_manifest(tmp_path / "m.yml", data)
    j = write_manifest(tmp_path / "m.json", data)
    t = tmp_path / "m.toml"
    t.write_text(
        '[categories.en]\nsources = [{path = "samples/en/*.txt"}]\nmax_bytes = "3kB"\n', encoding="utf-8"
    )
    got = [docs(open_samples(p).categories()) for p in (y, j, t)]
    assert got[0] == got[1] == got[2]
    assert sum(len(d.encode()) for d in got[0]["en"]) == 3000


def test_order_is_sources_in_manifest_order_and_globs_sorted_by_path(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    for name in ("b.txt", "a.txt", "c.txt", "10.txt", "9.txt"):
        (root / name).write_text(f"doc {name}", encoding="utf-8")
    (root / "notes.md").write_text("ignored", encoding="utf-8")
    m = write_manifest(
        tmp_path / "m.yaml",
        {
            "categories": {
                "x": {"sources": [{"path": "c/c.txt"}, {"path": "c/*"}, {"path": str(root / "a.txt")}]}
            }
        },
    )
    (cat,) = open_samples(m).categories()
    assert list(iter_documents(cat)) == ["doc c.txt", "doc 10.txt", "doc 9.txt", "doc a.txt", "doc b.txt"]
    # The glob's unsupported file and the files reached twice are warnings, not documents.
    assert any("notes.md" in s and "not a sample file type" in s for s in cat.skipped)
    assert sum("already taken" in s for s in cat.skipped) == 2


def test_relative_paths_resolve_against_the_manifest_folder(
    tmp_path: Path, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = write_manifest(
        tmp_path / "conf" / "m.yaml", {"categories": {"en": {"sources": [{"path": "../samples/en"}]}}}
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (cat,) = open_samples(os.path.relpath(m)).categories()
    assert [f.relpath for f in cat.files] == [
        "../samples/en/a.txt",
        "../samples/en/c.txt.gz",
        "../samples/en/sub/b.jsonl",
    ]


def test_fields_and_zstd_files(tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.jsonl").write_text('{"content": "first"}\n{"content": "second"}\n', encoding="utf-8")
    (d / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b'{"content": "third"}\n'))
    (d / "c.txt.zst").write_bytes(zstandard.ZstdCompressor().compress(b"fourth"))
    m = write_manifest(
        tmp_path / "m.yaml", {"categories": {"x": {"sources": [{"path": "d/*", "field": "content"}]}}}
    )
    (cat,) = open_samples(m).categories()
    assert list(iter_documents(cat)) == ["first", "second", "third", "fourth"]
    # The field is part of the cache identity; a record without it is a clear error.
    m2 = write_manifest(tmp_path / "m2.yaml", {"categories": {"x": {"sources": [{"path": "d/a.jsonl"}]}}})
    (cat2,) = open_samples(m2).categories()
    with pytest.raises(SamplesError, match="no string field 'text'"):
        list(iter_documents(cat2))
    assert cat2.fingerprint() != Category("x", cat.files[:1]).fingerprint()
    (d / "bad.jsonl.zst").write_bytes(b"not zstd at all")
    m3 = write_manifest(
        tmp_path / "m3.yaml", {"categories": {"x": {"sources": [{"path": "d/bad.jsonl.zst"}]}}}
    )
    with pytest.raises(SamplesError, match=r"bad\.jsonl\.zst.*zstd"):
        list(iter_documents(open_samples(m3).categories()[0]))


def test_a_category_budget_takes_the_smaller_of_its_own_and_the_runs(tmp_path: Path, samples: Path) -> None:
    m = write_manifest(
        tmp_path / "m.yaml",
        {
            "categories": {
                "en": {"sources": [{"path": "samples/en"}], "max_bytes": 6000},
                "legal": {"sources": [{"path": "samples/legal"}]},
            }
        },
    )
    en, legal = open_samples(m).categories()
    assert en.max_bytes == 6000 and legal.max_bytes is None
    for run_budget, expect_en in ((10**9, 6000), (4000, 4000)):
        stats = ReadStats()
        list(iter_documents(en, max_bytes=run_budget, stats=stats))
        assert stats.bytes == expect_en
    # The budget is part of a manifest category's identity; a directory category's fingerprint is
    # the unchanged formula (name, then each file's identity), so warm caches stay valid.
    assert en.fingerprint() != Category(en.name, en.files, en.skipped).fingerprint()
    (d_en, _) = open_samples(samples).categories()
    h = hashlib.sha256(b"en")
    for f in d_en.files:
        h.update(f.identity())
    assert d_en.fingerprint() == h.hexdigest()[:24]


def test_sizes() -> None:
    assert parse_size("100MB", "x") == 100_000_000
    assert parse_size("1KiB", "x") == 1024
    assert parse_size(5, "x") == 5
    for bad in ("lots", 0, True, -3, 1.5, "0"):
        with pytest.raises(SamplesError, match="^x "):
            parse_size(bad, "x")


BAD = [
    (
        {"categories": {"en": {"sources": [{"path": "s/en"}]}}, "extra": 1},
        r"manifest .*m\.yaml: unknown key 'extra'",
    ),
    (
        {"categories": {"en": {"sources": [{"path": "s/en"}], "maxbytes": 5}}},
        r"category 'en': unknown key 'maxbytes'",
    ),
    (
        {"categories": {"en": {"sources": [{"path": "s/en", "feild": "x"}]}}},
        r"category 'en': sources\[0\]: unknown key 'feild'",
    ),
    ({"categories": {"en": {"max_bytes": 5}}}, r"category 'en': 'sources' must be a non-empty list"),
    ({"categories": {"en": {"sources": []}}}, r"category 'en': 'sources' must be a non-empty list"),
    (
        {"categories": {"en": {"sources": [{"field": "text"}]}}},
        r"category 'en': sources\[0\]: give exactly one of 'path'",
    ),
    ({"categories": {"en": {"sources": [{"path": "s/en", "url": "memory://x"}]}}}, r"exactly one of 'path'"),
    ({"categories": {"en": {"sources": [{"path": 3}]}}}, r"sources\[0\]\.path must be non-empty text"),
    ({"categories": {"en": {"sources": [{"url": "s/en"}]}}}, r"sources\[0\]\.url 's/en' is not a URL"),
    (
        {"categories": {"en": {"sources": [{"path": "s/en", "field": ""}]}}},
        r"sources\[0\]\.field must be non-empty",
    ),
    ({"categories": {"en": {"sources": ["s/en"]}}}, r"sources\[0\] must be a mapping"),
    (
        {"categories": {"en": {"sources": [{"path": "s/en"}], "max_bytes": "big"}}},
        r"category 'en': max_bytes 'big' is not a size",
    ),
    (
        {"categories": {"en": {"sources": [{"path": "missing/dir"}]}}},
        r"category 'en': sources\[0\]: path 'missing/dir' does not exist",
    ),
    (
        {"categories": {"en": {"sources": [{"path": "s/en/*.parquet"}]}}},
        r"category 'en': sources\[0\]: path 's/en/\*\.parquet' matches no file",
    ),
    (
        {"categories": {"en": {"sources": [{"path": "s/notes.md"}]}}},
        r"category 'en': sources\[0\]: .*notes\.md: not a sample file type",
    ),
    (
        {"categories": {"en": {"sources": [{"path": "s/empty"}]}}},
        r"category 'en' has no readable sample files",
    ),
    ({"categories": {}}, r"'categories' must be a non-empty mapping"),
    ({"categories": {"a/b": {"sources": [{"path": "s/en"}]}}}, r"category name 'a/b' cannot be used"),
    (["not", "a", "mapping"], r"must be a mapping with a 'categories' key"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_manifests_are_refused_naming_manifest_category_and_key(
    tmp_path: Path, data: object, message: str
) -> None:
    (tmp_path / "s" / "en").mkdir(parents=True)
    (tmp_path / "s" / "en" / "a.txt").write_text("text", encoding="utf-8")
    (tmp_path / "s" / "empty").mkdir()
    (tmp_path / "s" / "notes.md").write_text("x", encoding="utf-8")
    m = write_manifest(tmp_path / "m.yaml", data)
    with pytest.raises(SamplesError, match=message):
        open_samples(m).categories()


def test_yaml_pitfalls_and_syntax_errors(tmp_path: Path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("categories:\n  no:\n    sources: [{path: x}]\n", encoding="utf-8")
    with pytest.raises(SamplesError, match=r"category name False is a bool, not text; quote it"):
        load_manifest(m)
    m.write_text("categories: [unclosed\n", encoding="utf-8")
    with pytest.raises(SamplesError, match=r"m\.yaml is not valid YAML"):
        load_manifest(m)
    j = tmp_path / "m.json"
    j.write_text("{", encoding="utf-8")
    with pytest.raises(SamplesError, match=r"m\.json is not valid JSON"):
        load_manifest(j)
    with pytest.raises(SamplesError, match=r"manifest .*gone\.yaml does not exist"):
        open_samples(tmp_path / "gone.yaml").categories()


def test_a_folder_named_like_a_manifest_is_still_a_directory(tmp_path: Path, samples: Path) -> None:
    renamed = samples.rename(tmp_path / "samples.json")
    assert isinstance(open_samples(renamed), DirectorySource)


def test_cli_bad_manifest_exits_4_with_the_message_and_writes_nothing(
    tmp_path: Path, small_bpe_tokenizer_json: Path
) -> None:
    m = write_manifest(tmp_path / "m.yaml", {"categories": {"en": {"sources": [{"path": "nope/*.txt"}]}}})
    out = tmp_path / "result.json"
    result = CliRunner().invoke(
        app, ["infer", str(small_bpe_tokenizer_json), "--samples", str(m), "--no-cache", "-o", str(out)]
    )
    assert result.exit_code == 4, result.output
    assert "category 'en': sources[0]: path 'nope/*.txt' matches no file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
