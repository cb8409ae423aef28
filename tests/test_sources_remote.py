"""Remote samples through fsspec (issue 13): memory:// and file:// URLs (never the network), each
format and field, versions in the cache identity, offline failures for hf:// that name the URL."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer.cli import app
from mixinfer.errors import MissingDependencyError, SamplesError
from mixinfer.sources import ReadStats, iter_documents, open_samples
from mixinfer.sources.remote import RemoteFile, RemoteFolderSource, list_url

fsspec = pytest.importorskip("fsspec")
yaml = pytest.importorskip("yaml")


@pytest.fixture
def mem() -> Iterator[str]:
    """A fresh memory:// folder (the memory file system is global to the process)."""
    root = f"/mixinfer-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def put(path: str, data: bytes) -> None:
    fsspec.filesystem("memory").pipe(path, data)


def jsonl(texts: list[str], key: str = "text") -> bytes:
    return "".join(json.dumps({key: t}) + "\n" for t in texts).encode()


def parquet(texts: list[str], column: str) -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    buf = io.BytesIO()
    pq.write_table(pa.table({column: texts, "other": list(range(len(texts)))}), buf)
    return buf.getvalue()


def test_each_format_and_field_from_memory_urls(mem: str, tmp_path: Path) -> None:
    zstandard = pytest.importorskip("zstandard")
    put(f"{mem}/a/1.txt", b"plain text")
    put(f"{mem}/a/2.txt.gz", gzip.compress(b"gzipped text"))
    put(f"{mem}/a/3.jsonl", jsonl(["j1", "j2"], "content"))
    put(f"{mem}/a/4.jsonl.gz", gzip.compress(jsonl(["g1"], "content")))
    put(f"{mem}/a/5.jsonl.zst", zstandard.ZstdCompressor().compress(jsonl(["z1", "z2"], "content")))
    put(f"{mem}/a/6.parquet", parquet(["p1", "p2", "p3"], "content"))
    put(f"{mem}/a/README.md", b"not a sample")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "categories": {
                    "txt": {"sources": [{"url": f"memory://{mem}/a/*.txt*"}]},
                    "rec": {"sources": [{"url": f"memory://{mem}/a/[3-6].*", "field": "content"}]},
                }
            }
        ),
        encoding="utf-8",
    )
    rec, txt = open_samples(manifest).categories()
    assert list(iter_documents(txt)) == ["plain text", "gzipped text"]
    assert list(iter_documents(rec)) == ["j1", "j2", "g1", "z1", "z2", "p1", "p2", "p3"]
    # A whole folder: README.md is a warning, the rest in path order.
    files, skipped = list_url(f"memory://{mem}/a", "content")
    assert [f.name for f in files] == [
        "1.txt",
        "2.txt.gz",
        "3.jsonl",
        "4.jsonl.gz",
        "5.jsonl.zst",
        "6.parquet",
    ]
    assert len(skipped) == 1 and "README.md" in skipped[0]
    # Budget: the same bytes every time, cut on the budget.
    stats = ReadStats()
    assert "".join(iter_documents(rec, max_bytes=5, stats=stats)) == "j1j2g"
    assert stats.bytes == 5


def test_a_remote_folder_reads_like_the_same_local_folder(
    mem: str, tmp_path: Path, license_text: str, small_bpe_tokenizer_json: Path
) -> None:
    local = tmp_path / "samples"
    layout = {
        "en/a.txt": license_text[:6000].encode(),
        "en/b/c.jsonl": jsonl([p for p in license_text[6000:12000].split("\n\n") if p]),
        "legal/x.txt.gz": gzip.compress(license_text[-7000:].encode()),
    }
    for rel, data in layout.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)
        put(f"{mem}/{rel}", data)
    source = open_samples(f"memory://{mem}")
    assert isinstance(source, RemoteFolderSource)
    remote_cats, local_cats = source.categories(), open_samples(local).categories()
    assert [c.name for c in remote_cats] == [c.name for c in local_cats] == ["en", "legal"]
    for r, lc in zip(remote_cats, local_cats, strict=True):
        assert list(iter_documents(r)) == list(iter_documents(lc))
    a = mixinfer.infer(small_bpe_tokenizer_json, local, merges=50, use_cache=False)
    b = mixinfer.infer(small_bpe_tokenizer_json, f"memory://{mem}", merges=50, use_cache=False)
    assert a.proportions == b.proportions and a.samples == b.samples


def test_file_urls_read_like_paths(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "b.jsonl").write_bytes(jsonl(["second", "third"]))
    (d / "a.txt").write_text("first", encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text(
        yaml.safe_dump(
            {"categories": {"p": {"sources": [{"path": "d"}]}, "u": {"sources": [{"url": f"file://{d}"}]}}}
        ),
        encoding="utf-8",
    )
    p, u = open_samples(m).categories()
    assert list(iter_documents(p)) == list(iter_documents(u)) == ["first", "second", "third"]
    assert all(isinstance(f, RemoteFile) and f.url.startswith("file:///") for f in u.files)


def test_the_fingerprint_follows_the_remote_version_and_files_pickle(mem: str) -> None:
    put(f"{mem}/c/a.txt", b"version one")
    (cat,) = open_samples(f"memory://{mem}").categories()
    again = open_samples(f"memory://{mem}").categories()[0]
    assert again.fingerprint() == cat.fingerprint()  # listing twice: same identity
    clone = pickle.loads(pickle.dumps(cat))
    assert clone == cat and list(iter_documents(clone)) == ["version one"]
    put(f"{mem}/c/a.txt", b"version two")  # same size, new content
    changed = open_samples(f"memory://{mem}").categories()[0]
    assert changed.fingerprint() != cat.fingerprint()


def test_missing_urls_and_backends_fail_with_one_clear_error(mem: str) -> None:
    with pytest.raises(SamplesError, match=rf"memory://{mem}/nothing/\*\.txt matches no sample file"):
        list_url(f"memory://{mem}/nothing/*.txt")
    with pytest.raises(SamplesError, match=rf"memory://{mem} has no category sub-folders"):
        put(f"{mem}/loose.txt", b"x")
        open_samples(f"memory://{mem}").categories()
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(
            MissingDependencyError, match=r"gs://bucket/x/\*\.txt: reading gs:// URLs needs a package.*gcsfs"
        ):
            list_url("gs://bucket/x/*.txt")
    with pytest.raises(SamplesError, match=r"no sample source reads this URL"):
        open_samples("nosuchscheme://x/y")


HF_URL = "hf://datasets/HuggingFaceFW/fineweb-2/data/deu_Latn/train/*.parquet"


def run_cli(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    env.pop("MIXINFER_OFFLINE", None)
    code = "import sys; from mixinfer.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_hf_urls_offline_exit_4_naming_the_url_and_write_nothing(
    tmp_path: Path, small_bpe_tokenizer_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub")
    m = tmp_path / "m.yaml"
    m.write_text(yaml.safe_dump({"categories": {"de": {"sources": [{"url": HF_URL}]}}}), encoding="utf-8")
    out = tmp_path / "result.json"
    cache = tmp_path / "cache"
    r = run_cli(
        [
            "infer",
            str(small_bpe_tokenizer_json),
            "--samples",
            str(m),
            "-o",
            str(out),
            "--cache-dir",
            str(cache),
        ],
        {"HF_HUB_OFFLINE": "1"},
        tmp_path,
    )
    assert r.returncode == 4, r.stderr
    assert f"category 'de': sources[0]: {HF_URL}: remote samples need the network" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr  # one message
    assert r.stdout == ""
    assert not out.exists()
    assert not cache.exists() or not any(cache.rglob("*.npz"))
    # A URL given directly as the samples (through the library: the CLI's --samples is a path today).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        SamplesError, match=r"hf://datasets/HuggingFaceFW/fineweb-2/data: remote samples need"
    ):
        open_samples("hf://datasets/HuggingFaceFW/fineweb-2/data").categories()


def test_hf_file_system_offline_error_is_worded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without our own offline check, huggingface_hub's own refusal becomes the same kind of error."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("MIXINFER_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SamplesError, match=r"hf://datasets/HuggingFaceFW/fineweb-2/.*cannot be reached"):
        list_url(HF_URL)


def test_offline_refuses_network_urls_but_not_memory(mem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIXINFER_OFFLINE", "1")
    with pytest.raises(SamplesError, match=r"s3://bucket/de/\*\.jsonl\.zst: remote samples need the network"):
        list_url("s3://bucket/de/*.jsonl.zst")
    put(f"{mem}/x/a.txt", b"in memory")
    assert [c.name for c in open_samples(f"memory://{mem}").categories()] == ["x"]


def test_cli_infer_on_a_manifest_of_memory_urls(
    mem: str, tmp_path: Path, license_text: str, small_bpe_tokenizer_json: Path
) -> None:
    put(f"{mem}/en/a.txt", license_text[:8000].encode())
    put(f"{mem}/legal/a.jsonl.gz", gzip.compress(jsonl([license_text[-8000:]])))
    m = tmp_path / "m.json"
    cats = {name: {"sources": [{"url": f"memory://{mem}/{name}"}]} for name in ("en", "legal")}
    m.write_text(json.dumps({"categories": cats}), encoding="utf-8")
    args = ["infer", str(small_bpe_tokenizer_json), "--samples", str(m), "--merges", "40", "--no-cache"]
    r = CliRunner().invoke(app, [*args, "--format", "json"])
    assert r.exit_code == 0, r.stderr
    assert set(json.loads(r.stdout)["proportions"]) == {"en", "legal"}


def test_reads_are_streamed_within_the_budget(mem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 6 MB remote JSONL (and a 6 MB text file) read with a 2 kB budget: only a little is fetched."""
    from mixinfer.sources import remote

    put(f"{mem}/big/a.jsonl", jsonl([f"document number {i} " * 20 for i in range(15_000)]))
    put(f"{mem}/big/b.txt", b"x" * 6_000_000)
    fetched: list[int] = []

    class Counting(io.RawIOBase):
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data = self.inner.read(len(buffer))
            buffer[: len(data)] = data
            fetched[-1] += len(data)
            return len(data)

    real = remote.url_to_fs

    def counting_fs(url: str) -> tuple[Any, str]:
        fs, path = real(url)

        class Wrapped:
            protocol = fs.protocol

            def open(self, p: str, mode: str) -> Any:
                fetched.append(0)
                return io.BufferedReader(Counting(fs.open(p, mode)), buffer_size=1 << 16)

        return Wrapped(), path

    (cat,) = open_samples(f"memory://{mem}").categories()
    monkeypatch.setattr(remote, "url_to_fs", counting_fs)
    for f in cat.files:
        stats = ReadStats()
        docs = list(iter_documents(type(cat)(cat.name, [f]), max_bytes=2_000, stats=stats))
        assert stats.bytes == 2_000 and docs
    assert len(fetched) == 2 and all(n < 200_000 for n in fetched), fetched
