"""Executors (issue 11, item 2): the shared contract on every registered executor, the process
pool's behaviour on errors, dead workers and Ctrl-C, the registry, and the stages that use them."""

from __future__ import annotations

import multiprocessing
import operator
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mixinfer import executors
from mixinfer.cache import Cache
from mixinfer.counting import count_words
from mixinfer.errors import MissingDependencyError, SamplesError
from mixinfer.executors import (
    Executor,
    ProcessExecutor,
    SerialExecutor,
    WorkerError,
    executor_names,
    get_executor,
    register_executor,
)
from mixinfer.options import OptionError
from mixinfer.pretokenizers import PRESETS
from mixinfer.replay import build_traces
from mixinfer.samples import discover
from mixinfer.tokenizer import load_tokenizer

NAMES = [name for name in executor_names() if name != "auto"]

# Jobs run in other processes, so they are module-level functions reading module-level state.
_FACTOR = 0


def _set_factor(factor: int) -> None:
    global _FACTOR
    _FACTOR = factor


def _scaled(i: int) -> tuple[int, int]:
    return i * _FACTOR, os.getpid()


def _fail_on_three(i: int) -> int:
    if i == 3:
        raise SamplesError(f"category 'c{i}' is broken; fix it")
    return i


def _fail_to_initialise() -> None:
    raise SamplesError("cannot set up: the pretokenizer is bad")


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")
        self.lock = threading.Lock()  # no pickler can send a lock, whatever it does for exceptions


def _raise_unpicklable(i: int) -> int:
    raise _Unpicklable(i, 2)


def _die(i: int) -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return i


def _interrupt_self(i: int) -> str:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # let a handler, if one ran, raise
    return "survived"


def _interrupt_parent_then_hang(i: int) -> int:
    if i == 0:
        os.kill(os.getppid(), signal.SIGINT)
    time.sleep(60)
    return i


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class _Interrupted(Exception):
    pass


@pytest.fixture
def ctrl_c_raises(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ctrl-C raises _Interrupted in this process (not KeyboardInterrupt, which stops pytest)."""

    def handler(signum: int, frame: Any) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def make(name: str, workers: int) -> Executor:
    """The registered executor ``name``; skips when its optional dependency is not installed."""
    try:
        return get_executor(name, workers=workers)
    except MissingDependencyError as exc:
        pytest.skip(str(exc))


def no_workers_left() -> bool:
    return multiprocessing.active_children() == []


# -- the contract, on every registered executor -------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_job_runs_once_with_the_state_its_initializer_built(name: str) -> None:
    with make(name, 2) as ex:
        got = dict(
            ex.map_unordered(_scaled, [(i,) for i in range(7)], initializer=_set_factor, initargs=(3,))
        )
    assert sorted(got) == list(range(7))
    assert [got[i][0] for i in range(7)] == [3 * i for i in range(7)]
    pids = {pid for _, pid in got.values()}
    if name == "process":
        assert os.getpid() not in pids and len(pids) <= 2
    assert no_workers_left()


@pytest.mark.parametrize("name", NAMES)
def test_no_jobs_yield_nothing(name: str) -> None:
    with make(name, 2) as ex:
        assert list(ex.map_unordered(_scaled, [])) == []


@pytest.mark.parametrize("name", NAMES)
def test_a_job_error_reaches_the_caller_with_its_type_and_message(name: str) -> None:
    with make(name, 2) as ex, pytest.raises(SamplesError, match="category 'c3' is broken"):
        list(ex.map_unordered(_fail_on_three, [(i,) for i in range(6)]))
    assert no_workers_left()


@pytest.mark.parametrize("name", NAMES)
def test_an_initializer_error_reaches_the_caller(name: str) -> None:
    with make(name, 2) as ex, pytest.raises(SamplesError, match="pretokenizer is bad"):
        list(ex.map_unordered(_scaled, [(i,) for i in range(4)], initializer=_fail_to_initialise))
    assert no_workers_left()


def _counts(i: int) -> dict[str, int]:
    return {f"w{i % 3}": i * _FACTOR, "all": 1}


def _added(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


@pytest.mark.parametrize("name", NAMES)
def test_kept_results_are_summarised_and_the_chosen_ones_merged(name: str) -> None:
    # map_kept + reducer: what counting uses to merge partial counts where they were computed.
    with make(name, 2) as ex:
        red = executors.reducer(ex, _added)
        summaries = {}
        jobs = [(i,) for i in range(9)]
        kept = executors.map_kept(ex, _counts, jobs, summarize=len, initializer=_set_factor, initargs=(2,))
        with closing(kept):
            for index, summary, handle in kept:
                summaries[index] = summary
                if index % 2 == 0:
                    red.add(handle)
        assert summaries == {i: 2 for i in range(9)}
        expected: dict[str, int] = {}
        for i in range(0, 9, 2):
            expected = _added(expected, {f"w{i % 3}": 2 * i, "all": 1})
        assert red.result() == expected
        assert executors.reducer(ex, _added).result() is None
    assert no_workers_left()


# -- the process pool -----------------------------------------------------------------------------------


def test_an_exception_that_cannot_be_pickled_arrives_as_its_text() -> None:
    with ProcessExecutor(2) as ex, pytest.raises(WorkerError, match=r"_Unpicklable: 1/2"):
        list(ex.map_unordered(_raise_unpicklable, [(1,)]))
    assert no_workers_left()


def test_a_killed_worker_is_reported_not_waited_for() -> None:
    with ProcessExecutor(2) as ex, pytest.raises(WorkerError, match="SIGKILL.*_die.*out of memory"):
        list(ex.map_unordered(_die, [(1,), (2,)]))
    assert no_workers_left()


def test_workers_ignore_ctrl_c(ctrl_c_raises: None) -> None:
    # A terminal sends Ctrl-C to every process of the job; workers leave it to the parent.
    with ProcessExecutor(2) as ex:
        assert [r for _, r in ex.map_unordered(_interrupt_self, [(i,) for i in range(4)])] == ["survived"] * 4


def test_ctrl_c_in_the_caller_kills_busy_workers_at_once(ctrl_c_raises: None) -> None:
    # Every job sleeps 60 s; the test ends at once only because the workers are killed.
    with ProcessExecutor(2) as ex, pytest.raises(_Interrupted):
        list(ex.map_unordered(_interrupt_parent_then_hang, [(i,) for i in range(3)]))
    assert no_workers_left()


def test_closing_the_results_early_kills_the_remaining_workers() -> None:
    with ProcessExecutor(3) as ex:
        results = ex.map_unordered(_sleep, [(0.0,), (60.0,), (60.0,)])
        assert next(results) == (0, 0.0)
        results.close()
        assert no_workers_left()


def test_close_kills_the_workers_of_an_abandoned_iteration() -> None:
    ex = ProcessExecutor(2)
    results = ex.map_unordered(_sleep, [(0.0,), (60.0,)])
    assert next(results) == (0, 0.0)
    ex.close()
    assert no_workers_left()
    results.close()


def test_spawned_workers_give_the_same_results() -> None:
    with ProcessExecutor(2, start_method="spawn") as ex:
        got = dict(ex.map_unordered(operator.mul, [(i, i) for i in range(5)]))
    assert got == {i: i * i for i in range(5)}


def test_ctrl_c_while_workers_start_or_stop_is_held_back_then_delivered() -> None:
    seen: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        with executors._sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            inside = list(seen)
        after = list(seen)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert inside == [] and after == [signal.SIGINT]


# -- the registry -----------------------------------------------------------------------------------


def test_auto_is_serial_for_one_worker_and_a_process_pool_for_more() -> None:
    assert isinstance(get_executor("auto", 1), SerialExecutor)
    pool = get_executor("auto", 3)
    assert isinstance(pool, ProcessExecutor) and pool.workers == 3
    assert get_executor("process").workers == (os.cpu_count() or 1)
    assert {"auto", "serial", "process"} <= set(executor_names())


@pytest.mark.parametrize(
    ("name", "workers", "option", "message"),
    [
        ("threads", None, "executor", "must be one of auto, .*process, serial.*not 'threads'"),
        ("process", 0, "workers", "positive number"),
        ("auto", -2, "workers", "positive number"),
    ],
)
def test_a_bad_executor_or_worker_count_names_the_option(
    name: str, workers: int | None, option: str, message: str
) -> None:
    with pytest.raises(OptionError, match=message) as info:
        get_executor(name, workers)
    assert info.value.option == option


def test_a_new_executor_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    class Reversed(SerialExecutor):
        name = "reversed"

        def map_unordered(self, fn, jobs, *, initializer=None, initargs=()):  # type: ignore[no-untyped-def]
            done = list(super().map_unordered(fn, jobs, initializer=initializer, initargs=initargs))
            yield from reversed(done)

    monkeypatch.setattr(executors, "_REGISTRY", dict(executors._REGISTRY))
    register_executor("reversed", Reversed)
    with get_executor("reversed") as ex:
        assert list(ex.map_unordered(operator.neg, [(1,), (2,)])) == [(1, -2), (0, -1)]
    with pytest.raises(ValueError, match="reserved"):
        register_executor("auto", Reversed)


# -- the stages on each executor ----------------------------------------------------------------------


def test_counting_and_replay_agree_on_every_executor(
    three_categories: Path, small_bpe_tokenizer_json: Path
) -> None:
    categories = discover(three_categories)
    pretok = PRESETS["default"]
    tok = load_tokenizer(small_bpe_tokenizer_json)
    choices: list[Any] = [None, "serial", "process", ProcessExecutor(2), SerialExecutor()]
    answers = []
    for choice in choices:
        counts = count_words(categories, pretok, max_bytes=30_000, workers=2, executor=choice)
        keys = [f"k{i}" for i in range(len(counts))]
        traces = build_traces(counts, keys, tok, 300, Cache(None), workers=2, executor=choice)
        answers.append(
            (
                [(wc.category, wc.words, wc.bytes, wc.documents) for wc in counts],
                [[t.to_arrays()[k].tolist() for k in sorted(t.to_arrays())] for t in traces],
            )
        )
        assert no_workers_left()
    assert all(a == answers[0] for a in answers[1:])
    assert sum(len(words) for _, words, _, _ in answers[0][0]) > 1000
    assert all(np.asarray(t[0]).size > 0 for t in answers[0][1])


def _workers_alive() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "mixinfer-worker" and p.is_alive()]


def test_start_forks_in_the_calling_thread_and_a_thread_may_collect() -> None:
    """ProcessExecutor.start forks now (in this thread); another thread collects the results.

    A worker forked from a background thread can inherit a lock the main thread holds (an import
    lock did it: the bootstrap's blocks hung forever), so the forking must happen here."""
    executor = ProcessExecutor(2)
    results = executor.start(operator.mul, [(i, 3) for i in range(7)])
    assert len(_workers_alive()) == 2  # started before anything is iterated
    got: dict[int, int] = {}

    def collect() -> None:
        with closing(results):
            for index, value in results:
                got[index] = value

    thread = threading.Thread(target=collect)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert got == {i: 3 * i for i in range(7)}
    executor.close()
    assert not _workers_alive()


def test_started_workers_never_collected_are_stopped_by_close() -> None:
    executor = ProcessExecutor(2)
    executor.start(operator.mul, [(i, 3) for i in range(4)])
    assert len(_workers_alive()) == 2
    executor.close()
    deadline = time.monotonic() + 10
    while _workers_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _workers_alive()


def test_kill_leaves_the_collecting_thread_to_reap_the_workers() -> None:
    """kill() from one thread while another collects: the collector sees the deaths (WorkerError),
    reaps the workers and closes their pipes itself; nothing is closed twice."""
    executor = ProcessExecutor(2)
    results = executor.start(time.sleep, [(30,)] * 4)
    errors: list[BaseException] = []

    def collect() -> None:
        try:
            with closing(results):
                for _ in results:
                    pass
        except WorkerError as exc:
            errors.append(exc)

    thread = threading.Thread(target=collect)
    thread.start()
    time.sleep(0.5)
    executor.kill()
    thread.join(20)
    assert not thread.is_alive()
    assert len(errors) == 1 and "stopped unexpectedly" in str(errors[0])
    executor.close()
    assert not _workers_alive()
