"""Estimators: how the mixture is read off the traces (``--estimator NAME``).

Every estimator starts from the same :class:`mixinfer.solver.MixtureLP` (the paper's constraints
over the traces) and returns a :class:`mixinfer.solver.SolveResult`. The default, ``lp``, is the
exact LP of the paper, unchanged, and for now the only one shipped: the variants measured for
samples that do not match the tokenizer's training text (issue 15; they use the LP's estimator
hooks :attr:`MixtureLP.allowed` and :attr:`MixtureLP.pair_cost`) are registered by
``scripts/bench_accuracy.py --robustness`` only, and BENCHMARKS.md (the robustness section) says
why none was kept: their gains on shifted simulations were small, and those that relax the
constraints of pairs the tokenizer never merges let a category it never saw absorb weight in real
audits (GPT-2 comes out 15-98% Korean). A new estimator is one :class:`Estimator` entry here.

The registry :data:`ESTIMATORS` maps a name to an :class:`Estimator`; :func:`check_estimator`
validates a name (the CLI's ``--estimator``, :class:`mixinfer.options.Options`), and
:func:`estimate` runs one. An estimator's name is part of the solution cache key
(:func:`mixinfer.keys.solution_key`), so one estimator's answer is never returned for another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mixinfer.errors import UsageError
from mixinfer.progress import ProgressCallback, noop
from mixinfer.solver import MixtureLP, SolveResult, solve

DEFAULT_ESTIMATOR = "lp"


@dataclass(frozen=True)
class Context:
    """What an estimator may use beyond the LP.

    Attributes:
        all_merge_codes: pair codes of *every* merge of the tokenizer, in order (the LP holds only
            the first T); ``None`` when unknown.
        solver / time_limit / progress / keep_snapshot: passed to :func:`mixinfer.solver.solve`.
    """

    all_merge_codes: np.ndarray | None = None
    solver: str = "auto"
    time_limit: float | None = None
    progress: ProgressCallback = noop
    keep_snapshot: bool = False


Run = Callable[[MixtureLP, Context], tuple[SolveResult, list[str]]]


@dataclass(frozen=True)
class Estimator:
    """A named way to estimate the mixture: ``run(lp, context) -> (result, notes)``.

    ``params`` spells out its settings; with the name it goes into the solution cache key
    (:func:`cache_tag`), so changing a setting never returns answers computed with the old one.
    """

    name: str
    summary: str
    run: Run
    params: str = ""


def _solve(lp: MixtureLP, ctx: Context) -> tuple[SolveResult, list[str]]:
    return solve(
        lp,
        solver=ctx.solver,
        time_limit=ctx.time_limit,
        progress=ctx.progress,
        keep_snapshot=ctx.keep_snapshot,
    )


def _exact(lp: MixtureLP, ctx: Context) -> tuple[SolveResult, list[str]]:
    lp.allowed, lp.pair_cost = None, None
    return _solve(lp, ctx)


ESTIMATORS: dict[str, Estimator] = {
    e.name: e
    for e in (Estimator("lp", "the paper's LP, exact (every pair competes with every merge)", _exact),)
}
"""Every estimator, by name (``--estimator``)."""


def cache_tag(name: str) -> str:
    """What of estimator ``name`` enters the solution cache key: its name and settings."""
    est = ESTIMATORS[check_estimator(name)]
    return f"{est.name}({est.params})" if est.params else est.name


def check_estimator(name: object) -> str:
    """``name`` if it names an estimator; otherwise :class:`UsageError` listing the names."""
    if not isinstance(name, str) or name not in ESTIMATORS:
        raise UsageError(f"unknown --estimator {name!r}; use one of {', '.join(ESTIMATORS)}")
    return name


def estimate(
    name: str,
    lp: MixtureLP,
    *,
    all_merge_codes: np.ndarray | None = None,
    solver: str = "auto",
    time_limit: float | None = None,
    progress: ProgressCallback = noop,
    keep_snapshot: bool = False,
) -> tuple[SolveResult, list[str]]:
    """Run estimator ``name`` on ``lp``: the result (proportions in the LP's units) and notes.

    ``keep_snapshot``: keep HiGHS's final model in ``result.snapshot`` (for the bootstrap)."""
    est = ESTIMATORS[check_estimator(name)]
    ctx = Context(all_merge_codes, solver, time_limit, progress, keep_snapshot)
    return est.run(lp, ctx)
