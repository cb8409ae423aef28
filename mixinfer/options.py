"""What a run does (:class:`Options`) and what it runs with (:class:`Runtime`).

Options are one typed, frozen, validated object, in the manner of scikit-learn's declared parameter
constraints: every check lives in :meth:`Options.__post_init__`, and a bad value raises
:class:`OptionError` naming the option (the CLI turns the name into its flag). The runtime holds
what changes how a run is carried out but never its answer: the cache, the executor, progress.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from mixinfer.cache import Cache, default_cache_dir
from mixinfer.errors import UsageError
from mixinfer.progress import ProgressCallback, noop
from mixinfer.samples import DEFAULT_MAX_BYTES

Unit = Literal["document", "line"]
"""How text is cut before pretokenization: whole documents, or lines (HF ``train(files)``)."""
Normalize = Literal["pairs", "bytes"]
"""The unit of each category's counts in the LP: its initial pair count, or its bytes (the paper's)."""

UNITS: tuple[str, ...] = get_args(Unit)
NORMALIZE: tuple[str, ...] = get_args(Normalize)

DEFAULT_MERGES = 30000
"""Leading merges used by ``infer`` and ``audit`` (the paper's T)."""

# Simulation defaults (mixinfer.simulate.SimulationSettings), kept here with the other defaults so
# that the CLI does not import the simulation machinery to declare its options.
DEFAULT_TRAIN_BYTES = 30_000_000
DEFAULT_ATTACK_BYTES = 2_000_000
DEFAULT_VOCAB = 30_000
SIMULATION_MERGES = 3_000
"""The LP's T in simulations (the controlled setting of the accuracy grid), not infer's default."""

MAX_BOOTSTRAP = 10_000
"""The most bootstrap replicates a run may ask for.

Each replicate is one LP solve (a second or more on a real tokenizer) and one row of every
category's proportions kept in memory, so a mistyped count (``--bootstrap 100000000000``) would
otherwise run out of memory or for years before saying anything. Percentile intervals settle
within a few hundred replicates; 10,000 is far beyond what any interval needs."""


# A Dask scheduler address: [protocol://]host:port (Dask's in-process addresses have no port).
_DASK_ADDRESS = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?\[?[^\s/\[\]]+\]?:\d+$|^inproc://\S+$")


def valid_dask_address(address: str) -> bool:
    """Whether ``address`` has the shape of a Dask scheduler address (``tcp://HOST:PORT``...)."""
    return _DASK_ADDRESS.match(address) is not None


class OptionError(UsageError):
    """An option has a value no run can use.

    Attributes:
        option: the option's field name in :class:`Options` (``max_bytes``); the CLI shows it
            as its flag (``--max-bytes``).
        problem: what is wrong, phrased to follow the option's name.
    """

    def __init__(self, option: str, problem: str) -> None:
        self.option = option
        self.problem = problem
        super().__init__(f"{option} {problem}")


def _positive_int(name: str, value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OptionError(name, f"must be a positive number of {what}, not {value!r}")


def bootstrap_too_many(replicates: int) -> str:
    """The problem with a replicate count over :data:`MAX_BOOTSTRAP` (shared by simulate's check)."""
    return (
        f"{replicates} is more replicates than the limit of {MAX_BOOTSTRAP:,} (each is one LP solve); "
        "intervals settle within a few hundred: use e.g. 100 or 1000"
    )


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise OptionError(name, f"must be one of {', '.join(allowed)}, not {value!r}")


@dataclass(frozen=True, kw_only=True)
class Options:
    """Everything that changes the answer of an inference (and so its cache keys).

    Attributes:
        merges: how many leading merges to use (capped at the merge list's length).
        max_bytes: per-category byte budget, taken deterministically.
        solver: ``auto`` (HiGHS via highspy, else CBC), ``highs``, ``cbc`` or ``pulp:NAME``.
        pretokenizer: a preset name overriding the tokenizer's own pretokenizer.
        time_limit: seconds for the LP; when hit, the best proportions so far are returned with
            ``solver["status"] == "time_limit"``.
        unit: ``document`` or ``line`` (see :data:`Unit`).
        normalize: ``pairs`` or ``bytes`` (see :data:`Normalize`). Without sampling noise both
            give the same mixture; with real, mismatched samples ``pairs`` stops scripts with
            several bytes per character from soaking up weight in character-level tokenizers.
            Proportions are reported in bytes either way.
        start_merge: replay merges before this without constraints (extended tokenizers).
        clean: clean the merge list first (:func:`mixinfer.cleaning.clean_merges`).
        offline: never use the network (``None``: follow ``HF_HUB_OFFLINE``).
        bootstrap: replicates of the document bootstrap (0: none); gives each category an
            interval (:mod:`mixinfer.bootstrap`).
        confidence: the intervals' nominal coverage, in (0, 1).
        seed: the seed of the bootstrap draws.
        estimator: how the mixture is read off the traces, a name of
            :data:`mixinfer.estimators.ESTIMATORS` (``lp``: the paper's exact LP).
    """

    merges: int = DEFAULT_MERGES
    max_bytes: int = DEFAULT_MAX_BYTES
    solver: str = "auto"
    pretokenizer: str | None = None
    time_limit: float | None = None
    unit: Unit = "document"
    normalize: Normalize = "pairs"
    start_merge: int = 0
    clean: bool = True
    offline: bool | None = None
    bootstrap: int = 0
    confidence: float = 0.9
    seed: int = 0
    estimator: str = "lp"

    def __post_init__(self) -> None:
        _positive_int("merges", self.merges, "merges")
        _positive_int("max_bytes", self.max_bytes, "bytes")
        _choice("unit", self.unit, UNITS)
        _choice("normalize", self.normalize, NORMALIZE)
        if not isinstance(self.solver, str) or not (
            self.solver in ("auto", "highs", "cbc")
            or (self.solver.startswith("pulp:") and len(self.solver) > 5)
        ):
            raise OptionError("solver", f"must be auto, highs, cbc or pulp:NAME, not {self.solver!r}")
        if self.time_limit is not None and (
            isinstance(self.time_limit, bool)
            or not isinstance(self.time_limit, int | float)
            or not math.isfinite(self.time_limit)
            or self.time_limit <= 0
        ):
            raise OptionError("time_limit", f"must be a positive number of seconds, not {self.time_limit!r}")
        if (
            isinstance(self.start_merge, bool)
            or not isinstance(self.start_merge, int)
            or self.start_merge < 0
        ):
            raise OptionError("start_merge", f"must be a merge index of at least 0, not {self.start_merge!r}")
        if self.start_merge >= self.merges:
            raise OptionError(
                "start_merge",
                f"{self.start_merge} must be below --merges {self.merges}: constraints start there",
            )
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, int) or self.bootstrap < 0:
            raise OptionError(
                "bootstrap", f"must be a number of replicates of at least 0, not {self.bootstrap!r}"
            )
        if self.bootstrap == 1:
            raise OptionError("bootstrap", "1 gives no interval; use 0 (none) or at least 2 (e.g. 20, 100)")
        if self.bootstrap > MAX_BOOTSTRAP:
            raise OptionError("bootstrap", bootstrap_too_many(self.bootstrap))
        if (
            isinstance(self.confidence, bool)
            or not isinstance(self.confidence, int | float)
            or not 0 < self.confidence < 1
        ):
            raise OptionError(
                "confidence", f"must be a fraction between 0 and 1 (e.g. 0.9), not {self.confidence!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise OptionError("seed", f"must be a non-negative integer, not {self.seed!r}")
        from mixinfer.estimators import ESTIMATORS  # here: estimators import the solver

        if self.estimator not in ESTIMATORS:
            raise OptionError("estimator", f"must be one of {', '.join(ESTIMATORS)}, not {self.estimator!r}")
        if self.bootstrap and self.estimator != "lp":
            raise OptionError(
                "estimator",
                f"{self.estimator} cannot be combined with --bootstrap yet (the replicates solve the "
                "exact LP); use --estimator lp for intervals",
            )
        if self.pretokenizer is not None:
            from mixinfer.pretokenizers import PRESETS

            if self.pretokenizer not in PRESETS:
                raise OptionError(
                    "pretokenizer",
                    f"must be a preset, one of {', '.join(PRESETS)}, not {self.pretokenizer!r}",
                )

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    def with_(self, **changes: Any) -> Options:
        """A validated copy with some options changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The options as a JSON-ready dictionary."""
        return {name: getattr(self, name) for name in self.names()}


@dataclass
class Runtime:
    """How a run is carried out, never what it answers: cache, parallelism, progress.

    Attributes:
        cache: the on-disk cache (``Cache(None)`` for none).
        workers: processes for counting and replay (``None``: all cores).
        executor: which executor runs parallel work: ``auto`` (each stage picks serial or a
            process pool by the work at hand), or a name of :func:`mixinfer.executors.get_executor`
            (``serial``, ``process``, ``dask``), created once and shared by the stages.
        executor_options: passed to that executor (``{"address": "tcp://host:8786"}`` for Dask;
            ``"local"`` starts a local cluster).
        progress: called with :class:`mixinfer.progress.Progress` updates.

    A runtime that created an executor holds it until :meth:`close` (or the end of a ``with``).
    """

    cache: Cache = field(default_factory=lambda: Cache(None))
    workers: int | None = None
    executor: str = "auto"
    progress: ProgressCallback = noop
    executor_options: dict[str, Any] = field(default_factory=dict)
    _pool: Any = field(default=None, init=False, repr=False, compare=False)

    def pool(self) -> Any:
        """The executor for the stages: ``"auto"``, or the shared executor (created on first use)."""
        if self.executor == "auto":
            return "auto"
        if self._pool is None:
            from mixinfer.executors import get_executor

            self._pool = get_executor(self.executor, self.workers, **self.executor_options)
        return self._pool

    def with_progress(self, progress: ProgressCallback) -> Runtime:
        """The same runtime (cache and shared executor) reporting to another callback."""
        other = replace(self, progress=progress)
        other._pool = self.pool() if self.executor != "auto" else None
        return other

    def close(self) -> None:
        """Shut down an executor this runtime created (a Dask cluster it started, a process pool)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __post_init__(self) -> None:
        if self.workers is not None and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise OptionError("workers", f"must be a positive number of processes, not {self.workers!r}")

    @classmethod
    def create(
        cls,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        cache: Cache | None = None,
        workers: int | None = None,
        executor: str = "auto",
        progress: ProgressCallback = noop,
        dask: str | None = None,
    ) -> Runtime:
        """A runtime from the usual knobs: a cache directory (default: :func:`default_cache_dir`)
        or none, or a ready cache object; ``dask`` (a scheduler address, or ``local``) selects
        the Dask executor."""
        if cache is None:
            cache = Cache((cache_dir or default_cache_dir()) if use_cache else None)
        if dask is not None:
            if not dask.strip():
                raise OptionError("dask", "needs a scheduler address (tcp://HOST:8786) or 'local'")
            if dask != "local" and not valid_dask_address(dask):
                # Here, not when the first job goes out: a run answered from the cache would
                # otherwise accept an address that the next uncached run refuses.
                raise OptionError(
                    "dask",
                    f"{dask!r} is not a scheduler address; give tcp://HOST:PORT "
                    "(e.g. tcp://10.0.0.5:8786) or 'local'",
                )
            return cls(cache=cache, workers=workers, executor="dask", progress=progress,
                       executor_options={"address": dask})  # fmt: skip
        return cls(cache=cache, workers=workers, executor=executor, progress=progress)


def options_from(options: Options | None, **given: Any) -> Options:
    """``options``, or an :class:`Options` built from keyword arguments (library entry points
    accept either; mixing both is a programming error, not a user's)."""
    if options is None:
        return Options(**given)
    defaults = Options()
    changed = sorted(k for k, v in given.items() if v != getattr(defaults, k))
    if changed:
        raise TypeError(f"pass either options= or option keywords, not both (got {', '.join(changed)})")
    return options
