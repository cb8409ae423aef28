"""The dask executor (issue 13 item 3): the executor contract on a LocalCluster, and counting and
replay on a 2-process LocalCluster equal to the serial run."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from mixinfer import executors
from mixinfer.cache import Cache
from mixinfer.counting import count_words
from mixinfer.errors import SamplesError, UsageError
from mixinfer.pretokenizers import PRESETS
from mixinfer.replay import build_traces
from mixinfer.samples import discover
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
