"""The ``dask`` executor: counting and replay jobs on a ``dask.distributed`` cluster.

It keeps the contract of :mod:`mixinfer.executors` (see there): one ``client.submit`` per job,
results yielded as they complete (``as_completed``), the first job error raised in the caller with
its type and the other jobs cancelled, and everything cancelled when the iteration is closed early
(``break``, an exception, Ctrl-C). A job whose workers keep dying (``KilledWorker``) is a
:class:`~mixinfer.errors.WorkerError`, exit 8, as a dead local worker process is.

It also keeps results on the workers (:meth:`DaskExecutor.map_kept`, :meth:`DaskExecutor.reducer`,
see :func:`mixinfer.executors.map_kept`): counting sends one task per file or file part, the client
receives only each task's summary (bytes, documents, warnings), and the partial word counts it
takes are merged pairwise by tasks on the workers (:class:`TreeReducer`), so only one dict per
category comes back.

Every value a task returns is held and moved by the cluster inside a :class:`_Boxed`, unboxed only
where it is used (in the client, in a merge, in a summary): see there for why.

The initializer's arguments (a pretokenizer, a token table) are scattered to every worker once per
:meth:`DaskExecutor.map_unordered` call, not sent with each job, and the initializer runs once per
worker process and call (a call token in the worker's module state); with threaded workers
(``processes=False``) the threads of one process share it, which an idempotent initializer allows.

``address``: ``None`` or ``"local"`` starts a :class:`~dask.distributed.LocalCluster` of
``workers`` single-threaded worker processes (closed with the executor); any other value is the
address of a running scheduler (``tcp://host:8786``), whose workers must have mixinfer installed
and reach the sample files (shared storage, or URLs: remote samples are read by the workers).
Needs ``pip install 'mixinfer[dask]'``.

Registered as ``dask`` in the executor registry when this module is imported.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, TypeVar

from mixinfer.errors import MissingDependencyError, UsageError, WorkerError
from mixinfer.executors import register_executor
from mixinfer.options import valid_dask_address

R = TypeVar("R")

# Call tokens whose initializer already ran in this (worker) process.
_INITIALISED: set[str] = set()
_INIT_LOCK = threading.Lock()


def _submit_jobs(
    client: Any,
    fn: Callable[..., Any],
    jobs: Sequence[Sequence[Any]],
    initializer: Callable[..., object] | None,
    initargs: Sequence[Any],
) -> tuple[str, list[Any]]:
    """Submit ``fn(*job)`` for every job under a fresh call token; return the token and the futures."""
    token = secrets.token_hex(8)
    # Sent to every worker once, not with each job (a pretokenizer, a token table). Under a fresh
    # key (hash=False): a content key is shared with the previous call's, whose release can
    # reach the scheduler after this scatter and drop the data under the new jobs.
    shared = client.scatter(list(initargs), broadcast=True, hash=False) if initargs else []
    futures = [
        client.submit(_run_job, token, initializer, shared, fn, job, pure=False, key=f"mixinfer-{token}-{i}")
        for i, job in enumerate(jobs)
    ]
    return token, futures


class _Boxed:
    """A task's result as the cluster holds and moves it: one object, pickled whole.

    Dask's transport (worker to worker, worker to client) serializes a bare ``list``, ``tuple``,
    ``set`` or ``dict`` (one whose keys msgpack takes, as it takes bytes and strings) element by
    element, one header and one frame per entry. A partial word count of 130,000 words then cost
    its sending worker about 120 MB and 3 s to serialize (500,000 words: 450 MB, 12 s), against
    12 MB and 0.04 s pickled whole; worker memory grew with the number of distinct words, i.e.
    with the input. Inside this box the value is one pickle (numpy buffers still travel out of
    band), whatever its type.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __reduce__(self) -> tuple[type[_Boxed], tuple[Any]]:
        return (_Boxed, (self.value,))

    def __sizeof__(self) -> int:
        # What Dask counts as the worker's managed memory (``dask.sizeof`` falls back to
        # ``sys.getsizeof``): the value's size, not the box's.
        from dask.sizeof import sizeof

        return int(sizeof(self.value))


def _unboxed(value: Any) -> Any:
    """The value inside a :class:`_Boxed` (anything else, e.g. data scattered by a caller, as is)."""
    return value.value if isinstance(value, _Boxed) else value


def _summarize_boxed(summarize: Callable[[Any], Any], value: Any) -> _Boxed:
    """Runs on a worker: the summary of a job's result (both boxed)."""
    return _Boxed(summarize(_unboxed(value)))


def _merge_boxed(merge: Callable[[Any, Any], Any], a: Any, b: Any) -> _Boxed:
    """Runs on a worker: the merge of two results (boxed, as its inputs may be)."""
    return _Boxed(merge(_unboxed(a), _unboxed(b)))


class ClusterError(UsageError):
    """The Dask scheduler cannot be reached or the cluster cannot be started (a bad ``--dask``, exit 2)."""


def _run_job(
    token: str,
    initializer: Callable[..., object] | None,
    initargs: Sequence[Any],
    fn: Callable[..., Any],
    job: Sequence[Any],
) -> _Boxed:
    """Runs on a worker: the call's initializer once per process, then the job (its result boxed)."""
    if initializer is not None and token not in _INITIALISED:
        with _INIT_LOCK:
            if token not in _INITIALISED:
                initializer(*initargs)
                _INITIALISED.add(token)
    return _Boxed(fn(*job))


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _distributed() -> Any:
    try:
        import dask.distributed
    except ImportError as exc:
        raise MissingDependencyError(
            "the dask executor needs dask.distributed; run: pip install 'mixinfer[dask]'"
        ) from exc
    return dask.distributed


def _result(future: Any) -> Any:
    """A future's result, unboxed; a job whose workers kept dying is a :class:`WorkerError` (exit 8)."""
    try:
        return _unboxed(future.result())
    except _distributed().KilledWorker as exc:
        raise WorkerError(
            f"Dask workers died while running a job ({exc}); this usually means they ran out of "
            f"memory: give the workers more memory, lower --max-bytes or use fewer workers per "
            f"machine, then run again"
        ) from exc


class TreeReducer:
    """Merges futures' results on the workers in a binary tree, as they are added.

    Like a binary counter: level ``n`` holds at most one future, the merge of ``2**n`` added
    results; adding a second at a level submits their merge, which moves up one level. Merges run
    while later jobs still count, every merge is of two values of about the same size, and the
    client receives only the final value (one ``result()``), never the partial ones.
    """

    def __init__(self, client: Any, merge: Callable[[Any, Any], Any]) -> None:
        self.client = client
        self.merge = merge
        self.levels: list[Any] = []

    def add(self, handle: Any) -> None:
        """Add a future (of a job result or of a merge)."""
        carry = handle
        for level, held in enumerate(self.levels):
            if held is None:
                self.levels[level] = carry
                return
            self.levels[level] = None
            carry = self.client.submit(_merge_boxed, self.merge, held, carry, pure=False)
        self.levels.append(carry)

    def result(self) -> Any:
        """Merge what is left (at most one future per level) and fetch the one merged value."""
        pending = [f for f in self.levels if f is not None]
        self.levels = []
        if not pending:
            return None
        carry = pending[0]
        for other in pending[1:]:
            carry = self.client.submit(_merge_boxed, self.merge, carry, other, pure=False)
        return _result(carry)

    def cancel(self) -> None:
        """Cancel the merges still held."""
        pending = [f for f in self.levels if f is not None]
        self.levels = []
        if pending:
            with suppress(Exception):
                self.client.cancel(pending)


class DaskExecutor:
    """Runs jobs on a Dask cluster: a local one it starts, or a running scheduler by address."""

    name = "dask"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        processes: bool = True,
        client: Any | None = None,
        timeout: float = 10.0,
    ) -> None:
        if address not in (None, "local") and not valid_dask_address(str(address)):
            raise UsageError(
                f"--dask {address!r} is not a scheduler address; give tcp://HOST:PORT (e.g. "
                "tcp://10.0.0.5:8786), or local for a cluster on this machine"
            )
        self.address = address
        self.timeout = timeout
        self.processes = processes
        self._client = client
        self._owned: list[Any] = []  # cluster and client started here, closed in close()
        self._futures: list[Any] = []
        requested = workers or os.cpu_count() or 1
        self.workers = requested

    def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        distributed = _distributed()
        try:
            if self.address in (None, "local"):
                # Worker processes start with SIGINT ignored (they inherit it): Ctrl-C in the
                # terminal reaches the whole process group, and only this process should handle it
                # (it closes the cluster); workers would otherwise print their own tracebacks.
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
                try:
                    cluster = distributed.LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=self.processes,
                        dashboard_address=None,
                        # A failing job is raised in the caller; the workers' own logs would repeat it.
                        silence_logs=logging.CRITICAL,
                    )
                finally:
                    if previous is not None:
                        signal.signal(signal.SIGINT, previous)
                self._owned.append(cluster)
                self._client = distributed.Client(cluster)
            else:
                self._client = distributed.Client(self.address, timeout=f"{self.timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            where = (
                "a local Dask cluster"
                if self.address in (None, "local")
                else f"Dask scheduler {self.address}"
            )
            raise ClusterError(
                f"cannot use {where} ({exc}); check the address (tcp://HOST:8786) and that the scheduler "
                f"is running, or use --dask local"
            ) from exc
        self._owned.append(self._client)
        if self.address not in (None, "local"):
            n = len(self._client.scheduler_info().get("workers", {}))
            self.workers = max(1, n)
        return self._client

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[Sequence[Any]],
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, R], None, None]:
        """Submit ``fn(*job)`` for every job; yield ``(index of the job, result)`` as they complete."""
        todo = [tuple(job) for job in jobs]
        if not todo:
            return
        client = self._get_client()
        distributed = _distributed()
        _, futures = _submit_jobs(client, fn, todo, initializer, initargs)
        index = {f.key: i for i, f in enumerate(futures)}
        self._futures = futures
        finished = False
        try:
            for future in distributed.as_completed(futures):
                yield index[future.key], _result(future)
            finished = True
        finally:
            if not finished:
                client.cancel(futures)
            self._futures = []

    def map_kept(
        self,
        fn: Callable[..., R],
        jobs: Iterable[Sequence[Any]],
        *,
        summarize: Callable[[R], Any],
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, Any, Any], None, None]:
        """Submit ``fn(*job)`` for every job and ``summarize`` of each result as a task after it;
        yield ``(index, summary, future of the result)`` as summaries complete.

        Results stay on the workers: only summaries come back. A future the caller drops is
        released by the cluster; one it keeps goes to :meth:`reducer`.
        """
        todo = [tuple(job) for job in jobs]
        if not todo:
            return
        client = self._get_client()
        distributed = _distributed()
        token, futures = _submit_jobs(client, fn, todo, initializer, initargs)
        summaries = [
            client.submit(_summarize_boxed, summarize, f, pure=False, key=f"mixinfer-{token}-{i}-summary")
            for i, f in enumerate(futures)
        ]
        index = {s.key: i for i, s in enumerate(summaries)}
        self._futures = futures + summaries
        finished = False
        try:
            for summary in distributed.as_completed(summaries):
                i = index[summary.key]
                value = _result(summary)
                handle, futures[i] = futures[i], None  # the caller's now: its reference keeps it
                yield i, value, handle
            finished = True
        finally:
            if not finished:
                client.cancel([f for f in futures + summaries if f is not None])
            self._futures = []

    def reducer(self, merge: Callable[[Any, Any], Any]) -> TreeReducer:
        """A reducer merging futures pairwise on the workers (see :class:`TreeReducer`)."""
        return TreeReducer(self._get_client(), merge)

    def close(self) -> None:
        """Cancel running jobs; close the client and the local cluster if this executor started them."""
        if self._futures and self._client is not None:
            with suppress(Exception):  # closing must not fail on a dead scheduler
                self._client.cancel(self._futures)
            self._futures = []
        for owned in reversed(self._owned):
            with suppress(Exception):
                owned.close()
        if self._owned:
            self._client = None
        self._owned = []

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskExecutor(workers={self.workers}, address={self.address!r})"


register_executor("dask", DaskExecutor)
