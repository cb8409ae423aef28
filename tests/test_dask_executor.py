"""The dask executor (issue 13 item 3): the executor contract on a LocalCluster, counting and
replay on a 2-process LocalCluster equal to the serial run, counting as one task per file or part
with partial counts merged in a tree of tasks on the workers, and a dying worker."""

from __future__ import annotations

import operator
import os
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixinfer import executors
from mixinfer.cache import Cache
from mixinfer.counting import _merged as _REAL_MERGE
from mixinfer.counting import count_words
from mixinfer.errors import SamplesError, UsageError, WorkerError
from mixinfer.pretokenizers import PRESETS
from mixinfer.replay import build_traces
from mixinfer.samples import Category, SampleFile, discover
from mixinfer.tokenizer import load_tokenizer

pytest.importorskip("dask.distributed")

# Jobs of threaded workers (processes=False) share this module's state, as in one worker process.
_OFFSET = 0


def _set_offset(offset: int) -> None:
    global _OFFSET
    _OFFSET = offset


def _shifted(i: int) -> int:
    return i + _OFFSET


def _fail_on_two(i: int) -> int:
    if i == 2:
        raise SamplesError("category 'c2' is broken; fix it")
    return i


def _fail_to_initialise() -> None:
    raise SamplesError("cannot set up: the pretokenizer is bad")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The dask executor registered in a copy of the registry (other tests see the original)."""
    monkeypatch.setattr(executors, "_REGISTRY", dict(executors._REGISTRY))
    from mixinfer import dask_executor

    executors.register_executor("dask", dask_executor.DaskExecutor)
    yield dask_executor


def test_the_executor_contract_on_a_threaded_local_cluster(registry: Any) -> None:
    assert "dask" in executors.executor_names()
    with executors.get_executor("dask", 2, processes=False) as ex:
        assert list(ex.map_unordered(operator.neg, [])) == []
        assert ex._client is None  # nothing started for no jobs
        got = dict(
            ex.map_unordered(_shifted, [(i,) for i in range(8)], initializer=_set_offset, initargs=(100,))
        )
        assert got == {i: i + 100 for i in range(8)}
        with pytest.raises(SamplesError, match="category 'c2' is broken; fix it"):
            list(ex.map_unordered(_fail_on_two, [(i,) for i in range(5)]))
        with pytest.raises(SamplesError, match="cannot set up"):
            list(ex.map_unordered(_shifted, [(1,)], initializer=_fail_to_initialise))
        # Closing early cancels the rest; the executor is still usable afterwards.
        with closing(ex.map_unordered(operator.neg, [(i,) for i in range(20)])) as results:
            first = next(results)
        assert first[1] == -first[0]
        assert sorted(ex.map_unordered(operator.neg, [(1,), (2,)])) == [(0, -1), (1, -2)]
    assert ex._client is None


def test_an_unreachable_scheduler_is_a_usage_error(registry: Any) -> None:
    ex = registry.DaskExecutor(2, address="tcp://127.0.0.1:9", timeout=1.0)
    with pytest.raises(UsageError, match=r"cannot use Dask scheduler tcp://127.0.0.1:9"):
        list(ex.map_unordered(operator.neg, [(1,)]))
    ex.close()


def test_counting_and_replay_on_two_worker_processes_equal_the_serial_run(
    registry: Any, tmp_path: Path, license_text: str, small_bpe_tokenizer_json: Path
) -> None:
    third = len(license_text) // 3
    for k, name in enumerate(("a", "b", "c")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "t.txt").write_text(license_text[k * third : k * third + 40_000], encoding="utf-8")
    categories = discover(tmp_path)
    pretok = PRESETS["default"]
    tok = load_tokenizer(small_bpe_tokenizer_json)
    answers = []
    with registry.DaskExecutor(2, processes=True) as dask_ex:
        for choice in ("serial", dask_ex):
            counts = count_words(categories, pretok, max_bytes=30_000, executor=choice)
            keys = [f"k{i}" for i in range(len(counts))]
            traces = build_traces(counts, keys, tok, 300, Cache(None), executor=choice)
            answers.append(
                (
                    [(wc.category, wc.words, wc.bytes, wc.documents) for wc in counts],
                    [sorted((k, v.tolist()) for k, v in t.to_arrays().items()) for t in traces],
                )
            )
        assert len(dask_ex._client.scheduler_info()["workers"]) == 2
    assert answers[0] == answers[1]
    assert sum(len(words) for _, words, _, _ in answers[0][0]) > 1000


# -- counting: one task per file or part, partial counts merged in a tree on the workers ---------------


@pytest.fixture(scope="module")
def threaded() -> Iterator[Any]:
    """A 2-thread LocalCluster shared by the tests below (jobs run in this process: spies work)."""
    from mixinfer import dask_executor

    with dask_executor.DaskExecutor(2, processes=False) as ex:
        yield ex


def _parts_folder(root: Path, text: str) -> Path:
    """Two categories: several text files, and a JSONL file split into many parts."""
    import json

    (root / "a").mkdir(parents=True)
    for k in range(5):
        (root / "a" / f"{k}.txt").write_text(text[k * 3000 : k * 3000 + 3000], encoding="utf-8")
    (root / "b").mkdir()
    lines = [json.dumps({"text": text[i : i + 300]}) for i in range(0, 60_000, 250)]
    (root / "b" / "docs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


_MERGES: list[int] = []


def _spied_merge(a: Any, b: Any) -> dict[bytes, int]:
    _MERGES.append(1)
    return _REAL_MERGE(a, b)


def test_per_part_tasks_merged_on_the_workers_equal_the_local_count(
    threaded: Any, tmp_path: Path, license_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mixinfer import counting

    monkeypatch.setattr(counting, "_PART_BYTES", 4000)
    monkeypatch.setattr(counting, "_GROUP_BYTES", 1)  # every text file a task of its own
    categories = discover(_parts_folder(tmp_path, license_text))
    units = [len(counting._units(cat)) for cat in categories]
    assert units[0] == 5 and units[1] > 8
    # The client never merges: every merge is a task (here on threads of this process).
    monkeypatch.setattr(counting, "_merged", _spied_merge)
    monkeypatch.setattr(counting, "_merge_into", None)
    pretok = PRESETS["gpt2"]
    for budget in (10**9, 11_111, 40_000):
        _MERGES.clear()
        straight = count_words(categories, pretok, max_bytes=budget, executor="serial")
        got = count_words(categories, pretok, max_bytes=budget, executor=threaded)
        assert [(w.category, w.words, w.bytes, w.documents, w.warnings) for w in got] == [
            (w.category, w.words, w.bytes, w.documents, w.warnings) for w in straight
        ]
        if budget == 10**9:
            assert len(_MERGES) == sum(units) - len(units)  # n - 1 merges per category of n units


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.dictionaries(st.binary(min_size=1, max_size=2), st.integers(1, 9), max_size=20), max_size=17)
)
def test_the_tree_of_merges_equals_the_flat_merge(threaded: Any, parts: list[dict[bytes, int]]) -> None:
    from mixinfer import counting

    client = threaded._get_client()
    red = threaded.reducer(counting._merged)
    for p in client.scatter([dict(p) for p in parts], hash=False) if parts else []:
        red.add(p)
    flat: dict[bytes, int] = {}
    for p in parts:
        counting._merge(flat, p)
    assert counting._words_of(red.result()) == flat


def _many_words(n: int, start: int) -> dict[bytes, int]:
    return {b"w%d" % i: 1 for i in range(start, start + n)}


def _held_on_workers(dask_worker: Any) -> list[tuple[str, int]]:
    """Every value a worker holds: its type and how many frames Dask's transport sends it in."""
    from distributed.protocol import dumps, to_serialize

    return [
        (type(value).__name__, len(dumps({"data": {str(key): to_serialize(value)}})))
        for key, value in list(dask_worker.data.items())
    ]


def test_results_summaries_and_merges_travel_as_one_object_each(threaded: Any) -> None:
    """Dask's transport sends a bare dict with bytes keys as one frame per entry: a partial count of
    130,000 words cost its worker 120 MB to send, and worker memory grew with the input. Every
    value the cluster holds for us is boxed, so it goes as one pickle whatever its size."""
    client = threaded._get_client()
    handles = []
    with closing(threaded.map_kept(_many_words, [(4000, 0), (3000, 2000)], summarize=len)) as results:
        for _, summary, handle in results:
            assert summary in (4000, 3000)  # summaries come back unboxed
            handles.append(handle)
    red = threaded.reducer(_REAL_MERGE)
    for h in handles:
        red.add(h)
    merge = next(f for f in red.levels if f is not None)
    merge.result()  # the merge task has run and is held on a worker
    held = [v for per_worker in client.run(_held_on_workers).values() for v in per_worker]
    assert len(held) >= 3  # two job results and their merge
    assert all(kind == "_Boxed" for kind, _ in held), held
    assert max(frames for _, frames in held) < 10, held
    handles.clear()
    words = red.result()
    assert words == {
        **_many_words(2000, 0),
        **{b"w%d" % i: 2 for i in range(2000, 4000)},
        **_many_words(1000, 4000),
    }


def _held_keys(dask_worker: Any) -> int:
    return len(dask_worker.data)


def test_nothing_stays_on_the_workers_after_a_count(
    threaded: Any, tmp_path: Path, license_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every job result, summary, merge and the scattered pretokenizer is released once counted:
    a worker's memory does not grow with the runs or the parts it has counted."""
    import time

    from mixinfer import counting

    monkeypatch.setattr(counting, "_PART_BYTES", 4000)
    categories = discover(_parts_folder(tmp_path, license_text))
    client = threaded._get_client()
    for budget in (10**9, 40_000):  # with a budget, speculative jobs past it are dropped too
        counts = count_words(categories, PRESETS["gpt2"], max_bytes=budget, executor=threaded)
        assert all(wc.words for wc in counts)
        # Releases reach the scheduler asynchronously: wait for them (not a timing assertion).
        deadline = time.monotonic() + 30
        while sum(client.run(_held_keys).values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sum(client.run(_held_keys).values()) == 0


class _DyingFile(SampleFile):
    """Reading it kills the worker process, as the kernel's OOM killer would."""

    def open_raw(self) -> Any:
        os._exit(9)


def test_a_worker_dying_mid_category_is_a_worker_error_and_nothing_is_cached(
    registry: Any, tmp_path: Path, license_text: str
) -> None:
    import cloudpickle
    import dask

    # The workers cannot import this test module: send the dying file's class by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        categories = discover(_parts_folder(tmp_path / "s", license_text))
        dying = _DyingFile(tmp_path / "z.txt", "z.txt", 10, 0)
        categories[0] = Category("a", [*categories[0].files[:2], dying, *categories[0].files[2:]])
        cache = Cache(tmp_path / "cache")
        with (
            dask.config.set({"distributed.scheduler.allowed-failures": 0}),
            registry.DaskExecutor(2, processes=True) as ex,
            pytest.raises(WorkerError, match="died"),
        ):
            count_words(categories, PRESETS["gpt2"], max_bytes=10**9, executor=ex, cache=cache)
        assert sum(cache.info().entries.values()) == 0
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
