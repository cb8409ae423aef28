"""Counting split into one job per file or file part (issue 13): exactly the straight read's counts.

The straight read (``executor="serial"``) takes a category's documents in order until the budget
ends. The split path counts every file, and every part of a large file (JSONL byte ranges, Parquet
row groups), as its own job, speculatively, then applies the budget in reading order and recounts
the unit the budget ends in. These tests compare the two on random categories built to hit every
corner of the budget: budgets ending inside a file, a multi-byte character, a part, exactly at a
file's end; text and gzip files, JSONL with blank lines, an over-long record and a damaged record
(before or past the budget), binary and empty files, invalid UTF-8, Parquet row groups; and jobs
completing in random order. Then the reducers (a tree of merges on a cluster, a flat merge here)
against a plain sum, and a dying worker.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixinfer import counting
from mixinfer.cache import Cache
from mixinfer.errors import MixinferError, WorkerError
from mixinfer.executors import LocalReducer, ProcessExecutor
from mixinfer.pretokenizers import PRESETS
from mixinfer.samples import Category, SampleFile, discover
from mixinfer.sources import base, file_parts, iter_part_documents, open_samples

PRETOK = PRESETS["gpt2"]
MULTI = "Привет, мир! Ελληνικά κείμενο. 中文 混合 English 🙂👍🏽 e\u0301 "


class ShuffledExecutor:
    """Runs jobs in this process, in a random order: results arrive out of reading order."""

    name = "shuffled"

    def __init__(self, seed: int) -> None:
        self.workers = 4
        self.rng = random.Random(seed)
        self.jobs_run = 0

    def map_unordered(
        self,
        fn: Callable[..., Any],
        jobs: Iterable[Sequence[Any]],
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, Any], None, None]:
        if initializer is not None:
            initializer(*initargs)
        todo = list(enumerate(jobs))
        self.rng.shuffle(todo)
        for index, job in todo:
            self.jobs_run += 1
            yield index, fn(*job)

    def close(self) -> None:
        pass

    def __enter__(self) -> ShuffledExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of a few hundred bytes, groups of a few files, and a 300-byte record cap, so small
    files exercise all three."""
    monkeypatch.setattr(counting, "_PART_BYTES", 700)
    monkeypatch.setattr(counting, "_GROUP_BYTES", 600)
    monkeypatch.setattr(base, "MAX_RECORD_BYTES", 300)


def _doc(rng: random.Random, text: str) -> str:
    start = rng.randrange(0, len(text) - 400)
    doc = text[start : start + rng.randrange(20, 260)]
    if rng.random() < 0.4:
        cut = rng.randrange(len(doc) + 1)
        doc = doc[:cut] + MULTI[: rng.randrange(len(MULTI))] + doc[cut:]
    if rng.random() < 0.3:
        doc = doc.replace(" ", "\n", 3)
    return doc


def make_category(root: Path, seed: int, text: str, *, errors: bool = True) -> Path:
    """A category folder of assorted files (sorted names give the reading order)."""
    rng = random.Random(seed)
    folder = root / f"c{seed}"
    folder.mkdir(parents=True)
    kinds = ["txt", "txt.gz", "jsonl", "jsonl", "jsonl.gz", "parquet", "empty", "binary", "badutf8"]
    if errors:
        kinds += ["longrecord", "badjson"]
    for k in range(rng.randrange(3, 9)):
        kind = rng.choice(kinds)
        name = folder / f"f{k:02d}"
        docs = [_doc(rng, text) for _ in range(rng.randrange(1, 14))]
        if kind == "txt":
            name.with_suffix(".txt").write_text("".join(docs), encoding="utf-8")
        elif kind == "txt.gz":
            (folder / f"f{k:02d}.txt.gz").write_bytes(gzip.compress("".join(docs).encode()))
        elif kind in ("jsonl", "longrecord", "badjson"):
            lines = [json.dumps({"text": d}, ensure_ascii=rng.random() < 0.5) for d in docs]
            if rng.random() < 0.3:
                lines.insert(rng.randrange(len(lines) + 1), "   ")
            if kind == "longrecord":
                lines.insert(rng.randrange(len(lines) + 1), json.dumps({"text": "x" * 400}))
            if kind == "badjson":
                lines.insert(rng.randrange(len(lines) + 1), '{"text": broken')
            name.with_suffix(".jsonl").write_text(
                "\n".join(lines) + "\n" * rng.randrange(2), encoding="utf-8"
            )
        elif kind == "jsonl.gz":
            data = "".join(json.dumps({"text": d}) + "\n" for d in docs).encode()
            (folder / f"f{k:02d}.jsonl.gz").write_bytes(gzip.compress(data))
        elif kind == "parquet":
            pa = pytest.importorskip("pyarrow")
            pq = pytest.importorskip("pyarrow.parquet")
            table = pa.table({"text": docs * 3, "n": list(range(len(docs) * 3))})
            pq.write_table(table, name.with_suffix(".parquet"), row_group_size=rng.randrange(2, 6))
        elif kind == "empty":
            name.with_suffix(".txt").write_bytes(b"")
        elif kind == "binary":
            data = "".join(docs).encode()
            at = rng.randrange(len(data) + 1)
            name.with_suffix(".txt").write_bytes(data[:at] + b"\0" + data[at:])
        else:  # invalid UTF-8: a lone continuation byte and a cut multi-byte sequence
            data = "".join(docs).encode()
            at = rng.randrange(len(data) + 1)
            name.with_suffix(".txt").write_bytes(data[:at] + b"\x80 ok \xe2\x82" + data[at:])
    # Always one JSONL file large enough for several parts, among the others.
    docs = [_doc(rng, text) for _ in range(rng.randrange(20, 40))]
    (folder / "f03b.jsonl").write_text(
        "".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8"
    )
    return folder


def outcome(run: Callable[[], list[counting.WordCounts]]) -> Any:
    """What a count gives: every category's words, bytes, documents and warnings, or its error."""
    try:
        return [(wc.category, wc.words, wc.bytes, wc.documents, wc.warnings) for wc in run()]
    except MixinferError as exc:
        return (type(exc).__name__, str(exc))


def budgets(rng: random.Random, categories: list[Category], unit: str) -> list[int]:
    """Random budgets, budgets at every file's end in the straight read, and one past everything."""
    out = {rng.randrange(1, 4000) for _ in range(4)} | {10**9}
    for cat in categories:
        stats = base.ReadStats()
        try:
            for f in cat.files:
                before = stats.bytes
                for _ in iter_part_documents(f, max_bytes=10**9, unit=unit, stats=stats):
                    pass
                if stats.bytes > before:
                    out |= {stats.bytes - 1, stats.bytes, stats.bytes + 1}
        except MixinferError:
            pass
    return sorted(b for b in out if b > 0)


@pytest.mark.parametrize("unit", ["document", "line"])
@pytest.mark.parametrize("seed", range(12))
def test_units_counted_out_of_order_equal_the_straight_read(
    seed: int, unit: str, tmp_path: Path, license_text: str
) -> None:
    for c in range(3):
        make_category(tmp_path, seed * 10 + c, license_text)
    categories = discover(tmp_path)
    rng = random.Random(seed)
    split = 0
    for budget in budgets(rng, categories, unit):
        shuffled = ShuffledExecutor(seed + budget)
        straight, units = (
            outcome(
                lambda ex=ex, b=budget: counting.count_words(
                    categories, PRETOK, max_bytes=b, unit=unit, executor=ex
                )
            )
            for ex in ("serial", shuffled)
        )
        assert units == straight, (seed, unit, budget)
        split += shuffled.jobs_run > len(categories)
    assert split  # the categories really were split into several jobs


def test_the_corner_cases_really_occur(tmp_path: Path, license_text: str) -> None:
    # Guard against the property test above running without parts, errors or warnings.
    for seed in range(12):
        make_category(tmp_path, seed, license_text)
    categories = discover(tmp_path)
    files = [f for cat in categories for f in cat.files]
    assert sum(1 for f in files if (file_parts(f, 700) or []) and f.kind == "jsonl") >= 3
    assert any(f.kind == "parquet" and file_parts(f, 700) for f in files)
    warnings = outcome(
        lambda: counting.count_words(categories[:1], PRETOK, max_bytes=10**9, executor="serial")
    )
    messages = []
    for cat in categories:
        got = outcome(lambda c=cat: counting.count_words([c], PRETOK, max_bytes=10**9, executor="serial"))
        messages.append(got[1] if isinstance(got, tuple) else " ".join(got[0][4]))
    text = " ".join(messages)
    assert "not a JSON object" in text and "record longer than" in text
    assert "binary file" in text and "invalid UTF-8" in text
    assert warnings


def test_a_part_error_names_the_line_of_the_whole_file(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    lines = [json.dumps({"text": f"document {i} " * 5}) for i in range(60)]
    lines[47] = '{"text": broken'
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    categories = discover(tmp_path)
    assert len(file_parts(categories[0].files[0], 700) or []) > 3
    straight = outcome(lambda: counting.count_words(categories, PRETOK, max_bytes=10**9, executor="serial"))
    units = outcome(
        lambda: counting.count_words(categories, PRETOK, max_bytes=10**9, executor=ShuffledExecutor(0))
    )
    assert straight == units
    assert "a.jsonl:48: not a JSON object" in straight[1]


def test_a_budget_far_below_the_category_reads_few_files(tmp_path: Path, license_text: str) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for k in range(40):
        (folder / f"{k:02d}.txt").write_text(license_text[k * 1000 : k * 1000 + 1000], encoding="utf-8")
    categories = discover(tmp_path)
    ex = ShuffledExecutor(1)
    got = counting.count_words(categories, PRETOK, max_bytes=2500, executor=ex)
    assert got[0].bytes == 2500
    assert ex.jobs_run <= 6  # three files and the recount of the one the budget ends in, not 40
    assert got == counting.count_words(categories, PRETOK, max_bytes=2500, executor="serial")


def test_a_manifest_of_several_sources_counts_the_same_on_processes(
    tmp_path: Path, license_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    yaml = pytest.importorskip("yaml")
    pytest.importorskip("fsspec")
    a = make_category(tmp_path / "src", 1, license_text, errors=False)
    b = make_category(tmp_path / "src", 2, license_text, errors=False)
    c = make_category(tmp_path / "src", 3, license_text, errors=False)
    manifest = {
        "categories": {
            "en": {"sources": [{"path": str(a)}, {"url": f"file://{b}"}, {"path": f"{c}/*.jsonl"}]},
            "xx": {"sources": [{"url": f"file://{c}"}, {"path": str(a / "*.txt")}], "max_bytes": 1500},
        }
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    categories = open_samples(path).categories()
    assert any(f.kind == "jsonl" and file_parts(f, 700) for f in categories[0].files)
    total = sum(
        wc.bytes for wc in counting.count_words(categories, PRETOK, max_bytes=10**9, executor="serial")
    )
    with ProcessExecutor(2) as pool:
        for budget in (777, 2222, total // 2, total - 1, 10**9):
            straight, parallel = (
                outcome(
                    lambda ex=ex, b=budget: counting.count_words(categories, PRETOK, max_bytes=b, executor=ex)
                )
                for ex in ("serial", pool)
            )
            assert parallel == straight, budget


# -- reducers -----------------------------------------------------------------------------------------

_counts = st.dictionaries(st.binary(min_size=1, max_size=3), st.integers(1, 50), max_size=30)


def _plain_sum(parts: list[dict[bytes, int]]) -> dict[bytes, int]:
    total: Counter[bytes] = Counter()
    for p in parts:
        total.update(p)
    return dict(total)


@settings(max_examples=60, deadline=None)
@given(st.lists(_counts, max_size=12))
def test_the_local_reducer_is_the_plain_sum(parts: list[dict[bytes, int]]) -> None:
    red = LocalReducer(counting._merged, counting._merge_into)
    for p in parts:
        red.add(dict(p))
    assert counting._words_of(red.result()) == _plain_sum(parts)


def test_parts_are_not_changed_by_the_pure_merge() -> None:
    a, b = {b"x": 1, b"y": 2}, {b"y": 3}
    assert counting._merged(a, b) == {b"x": 1, b"y": 5}
    assert a == {b"x": 1, b"y": 2} and b == {b"y": 3}


# -- a dying worker -----------------------------------------------------------------------------------


class DyingFile(SampleFile):
    """A sample file whose reading kills the worker process (as the kernel's OOM killer would)."""

    def open_raw(self) -> Any:
        os._exit(9)


def test_a_worker_dying_mid_category_is_a_worker_error_and_nothing_is_cached(
    tmp_path: Path, license_text: str
) -> None:
    make_category(tmp_path, 1, license_text, errors=False)
    make_category(tmp_path, 2, license_text, errors=False)
    categories = discover(tmp_path)
    dying = DyingFile(tmp_path / "zz.txt", "zz.txt", 10, 0)
    categories[1] = Category(categories[1].name, [*categories[1].files, dying])
    cache = Cache(tmp_path / "cache")
    with ProcessExecutor(2) as pool, pytest.raises(WorkerError, match="stopped unexpectedly"):
        counting.count_words(categories, PRETOK, max_bytes=10**9, executor=pool, cache=cache)
    assert sum(cache.info().entries.values()) == 0
    # The same categories without the dying file count and are cached.
    categories[1] = Category(categories[1].name, categories[1].files[:-1])
    with ProcessExecutor(2) as pool:
        counting.count_words(categories, PRETOK, max_bytes=10**9, executor=pool, cache=cache)
    assert cache.info().entries.get("words") == 2
