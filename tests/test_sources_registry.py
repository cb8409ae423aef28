"""The sample-source registry: specs choose a source type, a new type is one module (or one
``register_source`` call), and categories are plain data any worker can read."""

from __future__ import annotations

import importlib
import io
import json
import pickle
import pkgutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import pytest

import mixinfer.sources as sources
from mixinfer import samples
from mixinfer.errors import SamplesError
from mixinfer.sources import (
    Category,
    ReadStats,
    SampleFile,
    SampleSource,
    SourceType,
    iter_documents,
    open_samples,
    register_source,
    source_types,
)
from mixinfer.sources.directory import DirectorySource, discover


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def samples_dir(tmp_path: Path) -> Path:
    write(tmp_path / "s" / "en" / "a.txt", "English text")
    write(tmp_path / "s" / "de" / "a.txt", "Deutscher Text")
    return tmp_path / "s"


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins registered by a test disappear after it."""
    monkeypatch.setattr(sources, "_REGISTERED", [])


def test_a_directory_spec_opens_the_directory_source(samples_dir: Path) -> None:
    for spec in (samples_dir, str(samples_dir), f"file://{samples_dir}"):
        source = open_samples(spec)
        assert isinstance(source, DirectorySource) and isinstance(source, SampleSource)
        assert source.spec == str(samples_dir)
        cats = source.categories()
        assert [c.name for c in cats] == ["de", "en"]
        assert [c.fingerprint() for c in cats] == [c.fingerprint() for c in discover(samples_dir)]


def test_no_spec_means_the_bundled_samples() -> None:
    source = open_samples(None)
    assert source.spec == str(samples.bundled_samples_dir())
    names = [c.name for c in source.categories()]
    assert {"en", "de", "fr", "ru", "code"} <= set(names)


@pytest.mark.parametrize("spec", ["", "  "])
def test_an_empty_spec_is_refused_not_read_as_the_current_directory(spec: str) -> None:
    with pytest.raises(SamplesError, match="--samples is empty"):
        open_samples(spec)


def test_a_missing_directory_keeps_its_precise_message(tmp_path: Path) -> None:
    with pytest.raises(SamplesError, match="does not exist; check --samples"):
        open_samples(tmp_path / "nope").categories()


@pytest.mark.parametrize("spec", ["nosuch://bucket/corpus", "x-unknown://datasets/org/name"])
def test_a_url_no_type_claims_is_refused_naming_it(spec: str) -> None:
    with pytest.raises(SamplesError, match=r"no sample source reads this URL \(known kinds: .*directory"):
        open_samples(spec)


def test_every_module_of_the_package_registers_its_types() -> None:
    # "Adding a source = one module": each module (but the shared base) declares SOURCE_TYPES.
    names = [m.name for m in pkgutil.iter_modules(sources.__path__) if m.name != "base"]
    assert "directory" in names
    declared = []
    for name in names:
        module = importlib.import_module(f"mixinfer.sources.{name}")
        types = module.SOURCE_TYPES
        assert types and all(isinstance(t, SourceType) for t in types), name
        declared.extend(types)
    assert {t.name for t in declared} <= {t.name for t in source_types()}
    priorities = [t.priority for t in source_types()]
    assert priorities == sorted(priorities)
    # The directory type is the fallback for local paths: tried last among the built-in types.
    assert source_types()[-1].name == "directory" or any(t.priority > 100 for t in source_types())


# -- a plugin source, as the manifest and fsspec sources will be ----------------------------------


@dataclass(frozen=True)
class MemoryFile(SampleFile):
    """A document held in the spec itself: reads bytes that are not on disk."""

    content: bytes = b""

    def identity(self) -> bytes:
        return b"\0mem\0" + self.relpath.encode() + b"\0" + self.content

    def open_raw(self) -> BinaryIO:
        return io.BytesIO(self.content)


@dataclass(frozen=True)
class MemorySource:
    """``mem:NAME=TEXT;NAME=TEXT``: one category per pair, one document each."""

    text: str

    @property
    def spec(self) -> str:
        return self.text

    def categories(self) -> list[Category]:
        cats = []
        for part in sorted(self.text[len("mem:") :].split(";")):
            name, _, body = part.partition("=")
            jsonl = (json.dumps({"text": body}) + "\n").encode()
            path = PurePosixPath(f"{name}.jsonl")
            f = MemoryFile(path, path.name, len(jsonl), 0, content=jsonl)
            cats.append(Category(name, [f]))
        return cats


def read(cat: Category) -> list[str]:
    stats = ReadStats()
    return list(iter_documents(cat, stats=stats))


def read_in_worker(cat: Category) -> tuple[str, list[str]]:
    return cat.fingerprint(), read(cat)


@pytest.mark.usefixtures("clean_registry")
def test_a_registered_type_claims_its_specs_and_its_files_read_like_local_ones() -> None:
    register_source(SourceType("memory", lambda s: s.startswith("mem:"), MemorySource, priority=10))
    assert [t.name for t in source_types()][:1] == ["memory"]
    source = open_samples("mem:en=hello world;fr=bonjour")
    assert isinstance(source, MemorySource) and isinstance(source, SampleSource)
    cats = source.categories()
    assert [(c.name, read(c)) for c in cats] == [("en", ["hello world"]), ("fr", ["bonjour"])]
    # The content is the cache identity, whatever the file's size and mtime say.
    other = open_samples("mem:en=hello there;fr=bonjour").categories()
    assert other[0].fingerprint() != cats[0].fingerprint()
    assert other[1].fingerprint() == cats[1].fingerprint()


@pytest.mark.usefixtures("clean_registry")
def test_categories_are_picklable_and_read_the_same_in_a_worker_process(samples_dir: Path) -> None:
    cats = [*discover(samples_dir), *MemorySource("mem:x=in memory").categories()]
    for cat in cats:
        clone = pickle.loads(pickle.dumps(cat))
        assert clone == cat and clone.fingerprint() == cat.fingerprint()
    with ProcessPoolExecutor(max_workers=1) as pool:
        got = list(pool.map(read_in_worker, cats))
    assert got == [(c.fingerprint(), read(c)) for c in cats]
    assert [docs for _, docs in got] == [["Deutscher Text"], ["English text"], ["in memory"]]


@pytest.mark.usefixtures("clean_registry")
def test_a_higher_priority_type_wins_and_the_directory_type_is_the_fallback(samples_dir: Path) -> None:
    calls: list[str] = []

    def claims(spec: str) -> bool:
        calls.append(spec)
        return spec.endswith(".yaml")

    register_source(SourceType("yaml-only", claims, lambda s: MemorySource("mem:y=yaml"), priority=10))
    assert isinstance(open_samples(samples_dir), DirectorySource)
    assert isinstance(open_samples(samples_dir / "m.yaml"), MemorySource)
    assert calls == [str(samples_dir), str(samples_dir / "m.yaml")]
