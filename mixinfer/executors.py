"""Executors: where the parallel stages run (this process, a pool of local processes, a Dask cluster).

Counting words is one independent job per file or file part, replaying merges one per category.
A stage hands an executor a module-level function and one tuple of arguments per job, and takes
the results back as they complete::

    with get_executor("process", workers=4) as executor:
        for index, result in executor.map_unordered(work, [(a,), (b,)], initializer=setup, initargs=(x,)):
            ...  # index: the job's position in the list

The contract, which a cluster executor can keep too (``dask.distributed``: ``client.submit`` per
job, ``as_completed`` for the results, a worker plugin whose ``setup`` runs the initializer):

* ``fn``, the job arguments, ``initializer`` and ``initargs`` are picklable: ``fn`` and
  ``initializer`` are module-level functions, because jobs may run in another process or machine.
* ``initializer(*initargs)`` runs in every worker before its first job of that call; it builds
  state every job needs (a pretokenizer, a token table) in module globals that ``fn`` reads, so
  that state is sent once per worker instead of once per job. It must be idempotent.
* An exception raised by ``fn`` is raised again in the caller (the same type, when it pickles),
  and the remaining jobs are cancelled.
* Closing the iterator early (``break``, an exception in the caller's loop, Ctrl-C) stops every
  worker before ``close()`` returns; callers wrap it in :func:`contextlib.closing` so that happens
  at once, not when the iterator is garbage-collected.
* Workers ignore Ctrl-C: only the caller's process is interrupted, and it stops the workers.

Adding an executor is one class with these methods plus :func:`register_executor`, and a test
running the shared contract tests of ``tests/test_executors.py`` on it.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import traceback
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Protocol, TypeVar, cast

from mixinfer.errors import WorkerError
from mixinfer.options import OptionError

R = TypeVar("R")

# How long a worker may take to exit after it was told to stop, or after SIGKILL.
_JOIN_SECONDS = 5.0


class Executor(Protocol):
    """Runs independent jobs, possibly in parallel, and yields their results as they complete.

    Attributes:
        name: the registry name (``serial``, ``process``).
        workers: how many jobs may run at once.
    """

    name: str
    workers: int

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[Sequence[Any]],
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, R], None, None]:
        """Run ``fn(*job)`` for every job; yield ``(index of the job, result)`` in completion order."""
        ...

    def close(self) -> None:
        """Stop any worker still running and release what the executor holds."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _Base:
    """Context-manager plumbing shared by the executors here."""

    name = ""
    workers = 1

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self: _E) -> _E:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workers={self.workers})"


_E = TypeVar("_E", bound=_Base)


class SerialExecutor(_Base):
    """Runs every job in this process, in order (the initializer too, once per call)."""

    name = "serial"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = 1

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[Sequence[Any]],
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, R], None, None]:
        """Run ``fn(*job)`` for every job here, in order; yield ``(index, result)``."""
        if initializer is not None:
            initializer(*initargs)
        for index, job in enumerate(jobs):
            yield index, fn(*job)


class ProcessExecutor(_Base):
    """Runs jobs in a pool of local worker processes, started for each :meth:`map_unordered` call.

    Why a small pool of its own instead of :class:`concurrent.futures.ProcessPoolExecutor` or
    :class:`multiprocessing.Pool`: both move jobs and results through background threads (a queue
    feeder, a manager or result-handler thread) that are joined when the interpreter exits. After
    Ctrl-C, with the workers gone, a feeder thread blocked writing a large job (a category's word
    counts) to a pipe nobody reads any more never finishes, and the process prints "interrupted"
    and then hangs at exit; ``shutdown(wait=False, cancel_futures=True)`` does not stop it, and
    killing ``pool._processes`` relies on private attributes. Here the calling thread does all the
    talking, one duplex pipe per worker, and no thread is left behind: teardown is SIGKILL to
    each worker we started (it holds nothing that needs flushing; SIGTERM could be caught) and a
    bounded join.
    """

    name = "process"

    def __init__(self, workers: int | None = None, *, start_method: str | None = None) -> None:
        self.workers = _check_workers(workers) or os.cpu_count() or 1
        # fork needs no importable __main__ (scripts without a main guard work) and starts fast;
        # workers only read and compute, so inheriting the parent's state is harmless.
        self.start_method = start_method or ("fork" if "fork" in get_all_start_methods() else "spawn")
        self._live: list[list[_Worker]] = []
        # close() may run in one thread while another collects (ProcessExecutor.start): stopping
        # a set of workers twice at once would close their pipes twice.
        self._stopping = threading.Lock()

    def map_unordered(
        self,
        fn: Callable[..., R],
        jobs: Iterable[Sequence[Any]],
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, R], None, None]:
        """Run ``fn(*job)`` in ``min(workers, jobs)`` processes; yield ``(index, result)`` as they end."""
        todo = [tuple(job) for job in jobs]
        if not todo:
            return
        yield from self.start(fn, todo, initializer=initializer, initargs=initargs)

    def start(
        self,
        fn: Callable[..., R],
        jobs: Iterable[Sequence[Any]],
        *,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] = (),
    ) -> Generator[tuple[int, R], None, None]:
        """As :meth:`map_unordered`, but the workers start now, in the calling thread, and get their
        first jobs; the returned generator collects the results, and may run in another thread.

        Why: forking while another thread of this process holds a lock (an import, an allocator
        lock in a C library) copies the lock held into the child, which can then wait for it
        forever. A caller that collects in a background thread starts here, in its main thread,
        and must :meth:`close` the executor if it never iterates the generator.
        """
        todo = [tuple(job) for job in jobs]
        ctx = get_context(self.start_method)
        fork = self.start_method == "fork"
        workers: list[_Worker] = []
        self._live.append(workers)
        queue = iter(enumerate(todo))
        running: dict[_Worker, int] = {}
        try:
            # Ctrl-C is held back while processes fork: a child forked with SIGINT blocked cannot
            # be interrupted before it ignores SIGINT, and the parent never loses track of a
            # child it half started.
            with _sigint_deferred():
                for _ in range(min(self.workers, len(todo))):
                    workers.append(_Worker.start(ctx, fork, initializer, tuple(initargs)))
            for worker in workers:
                _dispatch(worker, fn, queue, running)
        except BaseException:
            with _sigint_deferred(), self._stopping:
                _stop(workers, graceful=False)
            self._live.remove(workers)
            raise
        return self._collect(fn, workers, queue, running)

    def _collect(
        self,
        fn: Callable[..., R],
        workers: list[_Worker],
        queue: Iterator[tuple[int, tuple[Any, ...]]],
        running: dict[_Worker, int],
    ) -> Generator[tuple[int, R], None, None]:
        finished = False
        try:
            while running:
                ready = set(wait([w.conn for w in running] + [w.process.sentinel for w in running]))
                for worker in [w for w in running if w.conn in ready or w.process.sentinel in ready]:
                    index = running.pop(worker)
                    yield index, worker.receive(fn, index)
                    _dispatch(worker, fn, queue, running)
            finished = True
        finally:
            with _sigint_deferred(), self._stopping:
                _stop(workers, graceful=finished)
            with suppress(ValueError):
                self._live.remove(workers)

    def kill(self) -> None:
        """Send SIGKILL to every running worker, leaving their pipes to whoever collects them.

        For a caller whose results are collected in another thread (:meth:`start`): that thread
        sees the workers die, stops and reaps them; :meth:`close` afterwards finds nothing left.
        """
        for workers in list(self._live):
            for w in list(workers):
                if w.process.exitcode is None:
                    with suppress(OSError, ValueError):  # already reaped, or closed meanwhile
                        w.process.kill()

    def close(self) -> None:
        """Kill the workers of any :meth:`map_unordered` call still running."""
        for workers in list(self._live):
            with _sigint_deferred(), self._stopping:
                _stop(workers, graceful=False)


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    @classmethod
    def start(
        cls, ctx: Any, fork: bool, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
    ) -> _Worker:
        parent_end, child_end = ctx.Pipe(duplex=True)
        # A forked child inherits parent_end and closes it, so that it sees EOF if the parent dies.
        args = (child_end, parent_end if fork else None, initializer, initargs)
        process = ctx.Process(target=_worker_main, args=args, daemon=True, name="mixinfer-worker")
        try:
            process.start()
        finally:
            # Only the child may hold child_end: a dead worker then means EOF/EPIPE here, and
            # workers forked later do not inherit it.
            child_end.close()
        return cls(process, parent_end)

    def send(self, message: Any) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise self.death(message[1] if message else None) from None

    def receive(self, fn: Callable[..., Any], index: int) -> Any:
        try:
            reply = self.conn.recv() if self.conn.poll() else None
        except (EOFError, ConnectionResetError):
            reply = None
        if reply is None:
            raise self.death(fn)
        status, _, payload, remote_tb = reply
        if status == "ok":
            return payload
        exc = payload if isinstance(payload, BaseException) else WorkerError(str(payload))
        exc.__cause__ = _RemoteTraceback(remote_tb)
        raise exc

    def death(self, fn: Any) -> WorkerError:
        self.process.join(_JOIN_SECONDS)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit status {code}"
        what = getattr(fn, "__qualname__", "a job")
        return WorkerError(
            f"a worker process stopped unexpectedly ({how}) while running {what}; this usually means "
            f"the system ran out of memory: free memory, lower --max-bytes or use fewer workers, "
            f"then run again"
        )


def _dispatch(
    worker: _Worker,
    fn: Callable[..., Any],
    queue: Iterator[tuple[int, tuple[Any, ...]]],
    running: dict[_Worker, int],
) -> None:
    """Send the worker its next job, or tell it to stop when there is none."""
    item = next(queue, None)
    if item is None:
        with suppress(OSError):  # already gone: _stop reaps it
            worker.conn.send(None)
        return
    index, args = item
    running[worker] = index
    worker.send((index, fn, args))


def _stop(workers: list[_Worker], *, graceful: bool) -> None:
    """End every worker: wait for those told to stop (graceful), kill the rest; reap them all."""
    if graceful:
        for w in workers:
            w.process.join(_JOIN_SECONDS)
    for w in workers:
        if w.process.exitcode is None:
            w.process.kill()
    for w in workers:
        w.process.join(_JOIN_SECONDS)
        w.conn.close()
    workers.clear()


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (shown as its cause with ``--debug``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _worker_main(
    conn: Connection,
    parent_end: Connection | None,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> None:
    """A worker's life: ignore Ctrl-C, initialise, then run jobs until told to stop or orphaned."""
    # The terminal sends Ctrl-C to the whole process group; the parent alone handles it (and
    # kills us). SIGINT was blocked when we were forked, so none can arrive before this line, and
    # one pending since then is discarded by SIG_IGN.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # The CLI turns SIGTERM and SIGHUP into an exception so that it can clean up; a forked worker
    # inherits that handler, but has nothing to clean up and is stopped by its parent: told to end,
    # it just ends, as it did before the CLI caught these signals.
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) not in (signal.SIG_IGN, signal.SIG_DFL, None):
            signal.signal(signum, signal.SIG_DFL)
    if parent_end is not None:
        parent_end.close()
    try:
        if initializer is not None:
            initializer(*initargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        failed = _error_reply(-1, exc)
        while _reply(conn, failed) and _next_message(conn) is not None:
            pass  # answer every job with the initializer's error until told to stop
        return
    while True:
        message = _next_message(conn)
        if message is None:
            return
        index, fn, args = message
        try:
            reply: tuple[str, int, Any, str] = ("ok", index, fn(*args), "")
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
            reply = _error_reply(index, exc)
        if not _reply(conn, reply):
            return


def _next_message(conn: Connection) -> Any:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None  # the parent went away


def _error_reply(index: int, exc: BaseException) -> tuple[str, int, Any, str]:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(pickle.dumps(exc))
        payload: Any = exc
    except Exception:  # noqa: BLE001 - an exception that cannot cross processes: send its text
        payload = f"{type(exc).__name__}: {exc}"
    return ("error", index, payload, text)


def _reply(conn: Connection, reply: tuple[str, int, Any, str]) -> bool:
    """Send a reply; False when the parent is gone."""
    try:
        # send() pickles before writing, so a result that cannot be pickled writes nothing.
        conn.send(reply)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return False
    except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
        return _reply(
            conn, ("error", reply[1], f"cannot send the result back: {type(exc).__name__}: {exc}", "")
        )
    return True


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C back during a block that must not be cut short, then deliver it.

    SIGINT is blocked in this thread (so processes forked here start with it blocked) and, in the
    main thread, a handler that only records it is installed (a signal taken by another thread
    still runs Python's handler in the main thread). At the end the previous handler and mask
    come back and a recorded Ctrl-C is raised again through the previous handler.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no fork, no signal masks
        yield
        return
    caught: list[int] = []
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
        if previous is not None:  # None: a handler installed from C that Python cannot restore
            signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        # A SIGINT that arrived while blocked is delivered here, to the previous handler.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if caught:
            signal.raise_signal(signal.SIGINT)


# -- results kept where they were computed, merged in a tree -----------------------------------------
#
# Counting splits a category into many jobs (files, parts of files) whose results (word counts) are
# summed. A cluster should not send every partial result to the client: :func:`map_kept` yields a
# small *summary* of each result (computed where the result is) and a *handle* to it, and a
# :func:`reducer` merges the handles the caller chooses where they live (on a cluster: pairwise merge
# tasks on the workers, a tree), so only the merged result comes back. An executor offers this by
# having ``map_kept`` and ``reducer`` methods (the dask executor does); for any other, the result
# is its own handle and the reducer merges in this process as handles are added.


class Reducer(Protocol):
    """Merges the results behind handles from :func:`map_kept` (in any order: ``merge`` must be
    commutative and associative)."""

    def add(self, handle: Any) -> None:
        """Merge the result behind ``handle`` in (possibly later, possibly elsewhere)."""
        ...

    def result(self) -> Any:
        """The merge of everything added (``None`` when nothing was), here in this process."""
        ...

    def cancel(self) -> None:
        """Drop everything added and any merge still running."""
        ...


class LocalReducer:
    """Merges results in this process as they are added: a flat merge, holding one running value.

    ``merge(a, b)`` returns a new value; ``merge_into(a, b)``, when given, may update and return
    ``a`` (the reducer owns it), which avoids a copy per merge.
    """

    def __init__(
        self, merge: Callable[[Any, Any], Any], merge_into: Callable[[Any, Any], Any] | None = None
    ) -> None:
        self._merge = merge_into or merge
        self._value: Any = None
        self._empty = True

    def add(self, handle: Any) -> None:
        """Merge ``handle`` (a result) into the running value."""
        if self._empty:
            self._value, self._empty = handle, False
        else:
            self._value = self._merge(self._value, handle)

    def result(self) -> Any:
        """The running value."""
        return self._value

    def cancel(self) -> None:
        """Forget the running value."""
        self._value, self._empty = None, True


def map_kept(
    executor: Executor,
    fn: Callable[..., R],
    jobs: Iterable[Sequence[Any]],
    *,
    summarize: Callable[[R], Any],
    initializer: Callable[..., object] | None = None,
    initargs: Sequence[Any] = (),
) -> Generator[tuple[int, Any, Any], None, None]:
    """Run ``fn(*job)`` for every job; yield ``(index, summarize(result), handle)`` as jobs complete.

    ``summarize`` is a module-level function (it may run on a worker). The handle is for
    :func:`reducer`'s ``add``; dropping it releases the result. The error and early-close
    behaviour is :meth:`Executor.map_unordered`'s.
    """
    method = getattr(executor, "map_kept", None)
    if method is not None:
        results: Generator[tuple[int, Any, Any], None, None] = method(
            fn, jobs, summarize=summarize, initializer=initializer, initargs=initargs
        )
        with closing(results):
            yield from results
        return
    with closing(executor.map_unordered(fn, jobs, initializer=initializer, initargs=initargs)) as plain:
        for index, result in plain:
            yield index, summarize(result), result


def reducer(
    executor: Executor,
    merge: Callable[[Any, Any], Any],
    *,
    merge_into: Callable[[Any, Any], Any] | None = None,
) -> Reducer:
    """A :class:`Reducer` for handles of :func:`map_kept` on ``executor``.

    ``merge`` (module-level, pure: it may run on a worker, on stored results) combines two results
    or merged values; ``merge_into`` is its in-place form for a merge in this process.
    """
    method = getattr(executor, "reducer", None)
    if method is not None:
        return cast(Reducer, method(merge))
    return LocalReducer(merge, merge_into)


# -- the registry -------------------------------------------------------------------------------------

ExecutorFactory = Callable[..., Executor]
_REGISTRY: dict[str, ExecutorFactory] = {}


def register_executor(name: str, factory: ExecutorFactory) -> None:
    """Make ``get_executor(name, workers, **options)`` call ``factory(workers, **options)``."""
    if name == "auto":
        raise ValueError("'auto' is reserved: it picks serial or process from the number of workers")
    _REGISTRY[name] = factory


def executor_names() -> list[str]:
    """The names :func:`get_executor` accepts (``auto`` first)."""
    return ["auto", *sorted(_REGISTRY)]


def auto_executor(workers: int | None, jobs: int) -> Executor:
    """The ``auto`` choice for ``jobs`` independent jobs: that many processes (at most ``workers``,
    default one per core) when more than one would run, else this process. The caller closes it."""
    n = min(workers or os.cpu_count() or 1, jobs)
    return ProcessExecutor(n) if n > 1 else SerialExecutor()


def get_executor(name: str = "auto", workers: int | None = None, **options: Any) -> Executor:
    """The executor registered as ``name``, for ``workers`` parallel jobs (``None``: all cores).

    ``auto`` is ``process`` when more than one worker is available, else ``serial``. Unknown
    names raise :class:`~mixinfer.options.OptionError` naming the ``executor`` option.
    """
    workers = _check_workers(workers)
    if name == "auto":
        name = "process" if (workers or os.cpu_count() or 1) > 1 else "serial"
    factory = _REGISTRY.get(name)
    if factory is None:
        raise OptionError("executor", f"must be one of {', '.join(executor_names())}, not {name!r}")
    return factory(workers, **options)


def _check_workers(workers: int | None) -> int | None:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise OptionError("workers", f"must be a positive number of processes, not {workers!r}")
    return workers


register_executor("serial", SerialExecutor)
register_executor("process", ProcessExecutor)


def _dask(workers: int | None, **options: Any) -> Executor:
    # Imported on first use: dask is an optional extra (pip install 'mixinfer[dask]').
    from mixinfer.dask_executor import DaskExecutor

    return DaskExecutor(workers, **options)


register_executor("dask", _dask)
