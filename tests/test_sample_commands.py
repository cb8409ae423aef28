"""`mixinfer samples pull | recipe | info` (issue 13): snapshots that infer like their manifest,
atomic writes, recipes that are valid manifests, and descriptions that match what is read."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer.cli import app
from mixinfer.groups import default_group
from mixinfer.sample_commands import describe_samples, pull_samples, recipe_names, recipe_text
from mixinfer.sources import ReadStats, iter_documents, open_samples
from mixinfer.sources.manifest import parse_manifest

yaml = pytest.importorskip("yaml")
fsspec = pytest.importorskip("fsspec")


@pytest.fixture
def mem() -> Iterator[str]:
    root = f"/mixinfer-cmd-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


@pytest.fixture
def manifest(tmp_path: Path, mem: str, license_text: str) -> Path:
    """Three categories: a local folder, a glob with a budget, memory:// JSONL and Parquet."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    paras = [p for p in license_text.split("\n\n") if p.strip()]
    en = tmp_path / "corpora" / "en"
    (en / "sub").mkdir(parents=True)
    (en / "a.txt").write_text(license_text[:7000], encoding="utf-8")
    (en / "sub" / "b.jsonl").write_text(
        "".join(json.dumps({"text": p}) + "\n" for p in paras[40:90]), "utf-8"
    )
    legal = tmp_path / "corpora" / "legal"
    legal.mkdir()
    for i in range(3):
        (legal / f"{i}.txt.gz").write_bytes(gzip.compress(license_text[-(i + 1) * 6000 :][:6000].encode()))
    fs = fsspec.filesystem("memory")
    fs.pipe(f"{mem}/web/1.jsonl", "".join(json.dumps({"body": p}) + "\n" for p in paras[100:160]).encode())
    buf = io.BytesIO()
    pq.write_table(pa.table({"body": paras[160:220]}), buf)
    fs.pipe(f"{mem}/web/2.parquet", buf.getvalue())
    path = tmp_path / "m.yaml"
    data = {
        "categories": {
            "en": {"sources": [{"path": "corpora/en"}]},
            "legal": {"sources": [{"path": "corpora/legal/*.txt.gz"}], "max_bytes": "10kB"},
            "web": {"sources": [{"url": f"memory://{mem}/web", "field": "body"}]},
        }
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_pulled_snapshot_infers_exactly_like_its_manifest(
    tmp_path: Path, manifest: Path, small_bpe_tokenizer_json: Path
) -> None:
    budget = 20_000
    snap = tmp_path / "snap"
    record = pull_samples(str(manifest), snap, max_bytes=budget, part_bytes=8_000)
    assert sorted(p.name for p in snap.iterdir()) == ["MANIFEST.json", "en", "legal", "web"]
    assert json.loads((snap / "MANIFEST.json").read_text("utf-8")) == record
    # Same documents, in the same order, as reading the manifest at that budget.
    for m_cat, s_cat in zip(
        open_samples(manifest).categories(), open_samples(snap).categories(), strict=True
    ):
        assert m_cat.name == s_cat.name
        assert list(iter_documents(m_cat, max_bytes=budget)) == list(iter_documents(s_cat))
    assert record["categories"]["legal"]["bytes"] == 10_000  # its own budget
    assert record["categories"]["en"]["bytes"] == budget
    a = mixinfer.infer(small_bpe_tokenizer_json, manifest, merges=60, max_bytes=budget, use_cache=False)
    b = mixinfer.infer(small_bpe_tokenizer_json, snap, merges=60, use_cache=False)
    assert a.proportions == b.proportions and a.samples == b.samples
    # The record: sources as written, per-file bytes and versions, and sha256 of every written part.
    web = record["categories"]["web"]
    assert web["sources"][0].startswith("memory://") and all("version" in f for f in web["files"])
    assert sum(f["bytes"] for f in web["files"]) == web["bytes"]
    en = record["categories"]["en"]
    assert len(en["output"]) > 1  # parts of at most part_bytes of text
    for part in (p for c in record["categories"].values() for p in c["output"]):
        data = (snap / part["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == part["sha256"] and len(data) == part["size"]
    assert sum(p["documents"] for p in en["output"]) == en["documents"]
    # Deterministic: a second pull writes the same bytes.
    again = tmp_path / "again"
    assert pull_samples(str(manifest), again, max_bytes=budget, part_bytes=8_000) == record


def test_pull_cli_refuses_a_non_empty_folder_and_leaves_nothing_on_failure(
    tmp_path: Path, manifest: Path
) -> None:
    runner = CliRunner()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine", encoding="utf-8")
    r = runner.invoke(app, ["samples", "pull", str(manifest), "--output", str(busy)])
    assert r.exit_code == 2 and "is not empty" in r.stderr, r.output
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    # A failing source: exit 4, no folder and no temporary sibling left behind.
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"categories": {"x": {"sources": [{"path": "missing/*.txt"}]}}}), "utf-8")
    before = set(tmp_path.iterdir())
    r = runner.invoke(app, ["samples", "pull", str(bad), "--output", str(tmp_path / "out")])
    assert r.exit_code == 4 and "category 'x': sources[0]" in r.stderr, r.output
    assert set(tmp_path.iterdir()) == before
    # An empty existing folder is fine; --format json puts the record on stdout only.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(
        app, ["samples", "pull", str(manifest), "-o", str(empty), "--max-bytes", "5kB", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads((empty / "MANIFEST.json").read_text("utf-8"))
    assert "pulled 3 categories" in r.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    r = runner.invoke(
        app, ["samples", "pull", str(manifest), "-o", str(tmp_path / "o2"), "--max-bytes", "lots"]
    )
    assert r.exit_code == 2 and "--max-bytes 'lots' is not a size" in r.stderr


def test_pull_of_an_unreachable_url_offline_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = tmp_path / "m.yaml"
    url = "hf://datasets/HuggingFaceFW/fineweb-2/data/deu_Latn/train/*.parquet"
    m.write_text(yaml.safe_dump({"categories": {"de": {"sources": [{"url": url}]}}}), "utf-8")
    r = CliRunner().invoke(app, ["samples", "pull", str(m), "-o", str(tmp_path / "snap")])
    assert r.exit_code == 4 and url in r.stderr and "Traceback" not in r.stderr, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.yaml"]


def test_the_paper_recipe_is_a_valid_manifest_of_known_categories(tmp_path: Path) -> None:
    assert "paper" in recipe_names()
    text = recipe_text("paper")
    assert "NEEDS NETWORK ACCESS" in text
    parsed = parse_manifest(yaml.safe_load(text), "recipe_paper.yaml", tmp_path)
    names = [c.name for c in parsed.categories]
    assert {"web", "books", "academic", "wiki", "code", "de", "ru", "zh", "ja"} <= set(names)
    for cat in parsed.categories:
        assert all(s.url is not None and s.url.startswith("hf://datasets/") for s in cat.sources)
        assert default_group(cat.name) != cat.name, cat.name  # every name is in the category table
    groups = {default_group(n) for n in names}
    assert {"English", "Code"} <= groups and len(groups) >= 4


def test_recipe_cli_prints_writes_and_refuses(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["samples", "recipe", "paper"])
    assert r.exit_code == 0 and r.stdout == recipe_text("paper") and r.stderr == ""
    out = tmp_path / "paper.yaml"
    r = runner.invoke(app, ["samples", "recipe", "paper", "-o", str(out)])
    assert r.exit_code == 0 and out.read_text("utf-8") == recipe_text("paper")
    r = runner.invoke(app, ["samples", "recipe", "paper", "-o", str(out)])
    assert r.exit_code == 2 and "exists" in r.stderr
    r = runner.invoke(app, ["samples", "recipe", "nope"])
    assert r.exit_code == 2 and "unknown recipe 'nope'; known recipes: paper" in r.stderr


def test_info_counts_what_reading_takes(tmp_path: Path, manifest: Path) -> None:
    info = describe_samples(str(manifest))
    by_name = {c["name"]: c for c in info["categories"]}
    assert list(by_name) == ["en", "legal", "web"]
    for cat in open_samples(manifest).categories():
        entry = by_name[cat.name]
        assert entry["files"] == len(cat.files)
        assert entry["stored_bytes"] == sum(f.size for f in cat.files)
        if cat.name == "web":
            continue  # remote: listed, not read
        stats = ReadStats()
        list(iter_documents(cat, stats=stats))
        assert (entry["text_bytes"], entry["documents"]) == (stats.bytes, stats.documents)
    assert by_name["legal"]["text_bytes"] == 10_000 and by_name["legal"]["max_bytes"] == 10_000
    assert by_name["en"]["sources"] == ["corpora/en"]
    assert by_name["web"]["stored_bytes_exact"] is False and by_name["web"]["documents"] is None
    runner = CliRunner()
    r = runner.invoke(app, ["samples", "info", str(manifest), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == info
    r = runner.invoke(app, ["samples", "info", str(manifest)])
    assert r.exit_code == 0 and "legal" in r.stdout and "(listed)" in r.stdout
    r = runner.invoke(app, ["samples", "info", str(manifest), "--format", "xml"])
    assert r.exit_code == 2 and "unknown --format 'xml'" in r.stderr
    r = runner.invoke(app, ["samples", "info", str(tmp_path / "nothing")])
    assert r.exit_code == 4 and "does not exist" in r.stderr
