"""How sure is the answer: a bootstrap over documents, made cheap by linearity.

A document is the resampling unit (words within one are correlated). Each category's documents are
dealt, in reading order, into ``K`` blocks (document ``i`` to block ``i mod K``); a category of
fewer than ``K`` documents is cut into ``K`` runs of consecutive lines instead. A replicate draws
``K`` blocks with replacement per category; since a trace is linear in the word counts, the
replicate's trace is the multiplicity-weighted sum of the block traces
(:func:`mixinfer.replay.sum_traces`), and all block traces come from one replay per category
(:func:`mixinfer.replay.replay_blocks`). Each replicate's LP has the full sample's pairs and
segments (zero counts kept), so with HiGHS it is solved from the rows and basis of the full sample's
optimum (:meth:`mixinfer.solver.HighsBackend.retarget`), not from scratch. Replicates are jobs on an
executor: each worker solves the full sample's LP once (its initializer), then each of its
replicates from that optimum, so the answer does not depend on the executor. The reported interval
is the calibrated basic interval of :func:`calibrated_intervals`. Draws come from
``numpy.random.default_rng([seed, replicate])``: the same seed gives the same intervals.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixinfer.counting import count_documents
from mixinfer.errors import UsageError
from mixinfer.executors import Executor, SerialExecutor
from mixinfer.pretokenizers import Pretokenizer
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.replay import TokenTable, Trace, replay_blocks, sum_traces
from mixinfer.samples import Category, ReadStats, iter_documents
from mixinfer.solver import HighsBackend, MixtureLP, make_backend, snapshot_fits, snapshot_from_state, solve

WIDEN = 2.0
"""Half-width multiplier of the intervals, calibrated on simulations (see the module docstring)."""

DEFAULT_BLOCKS = 32
"""Blocks per category: enough draws per replicate for the sum of blocks to behave like a sum of
documents, few enough for the block replay to cost little more than one replay."""


MIN_BLOCKS = 8
"""Below this many blocks a category's interval understates its uncertainty: a warning says so
(with one block, every replicate draws the same text and the interval has no width at all)."""


@dataclass(frozen=True)
class Blocks:
    """One category's documents dealt into blocks: each block's words and bytes.

    ``cut``: the category held fewer documents than blocks, so its text was cut into runs of
    consecutive lines instead (see :func:`count_blocks`).
    """

    category: str
    words: list[dict[bytes, int]]
    bytes: np.ndarray
    documents: int
    cut: bool = False


def _split_lines(text: str) -> list[str]:
    # As reading with unit="line" does: only "\n" ends a line (str.splitlines also cuts at \f, \v...).
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return [line for line in out if line]


def count_blocks(
    category: Category, pretok: Pretokenizer, *, max_bytes: int, unit: str, blocks: int = DEFAULT_BLOCKS
) -> Blocks:
    """Read ``category`` exactly as counting does (same budget) and count each block's words.

    Documents are read whole and, with ``unit="line"``, cut into lines afterwards: the budget
    falls on the same byte either way, so the blocks hold exactly the counted text. A category of
    fewer documents than ``blocks`` is cut into runs of lines (:func:`_runs_of_lines`): with
    ``unit="document"``, a word that spans a cut is then counted as two (at most one per cut).
    """
    docs = list(iter_documents(category, max_bytes=max_bytes, unit="document", stats=ReadStats()))
    if len(docs) >= blocks:
        groups: list[list[str]] = [[] for _ in range(blocks)]
        for i, doc in enumerate(docs):
            groups[i % blocks].extend(_split_lines(doc) if unit == "line" else [doc])
        cut = False
    else:
        groups = _runs_of_lines(docs, blocks, whole=unit != "line")
        cut = True
    words = [count_documents(g, pretok) for g in groups]
    sizes = np.array([sum(len(u.encode("utf-8")) for u in g) for g in groups], dtype=np.int64)
    return Blocks(category.name, words, sizes, len(docs), cut)


def _runs_of_lines(docs: list[str], blocks: int, *, whole: bool = True) -> list[list[str]]:
    """Up to ``blocks`` runs of consecutive lines of ``docs``, of about equal bytes.

    A category of one large document (one ``.txt`` per category is common) used to make one
    block: every replicate drew the same text and its interval had no width. Runs of consecutive
    lines keep most of the correlation between neighbouring words inside one unit, as documents
    do. With ``whole``, a run's lines of one document are one text again, so the counts differ
    from the document's only at the cuts; otherwise every line is a text (``unit="line"``).
    """
    lines = [(d, line) for d, doc in enumerate(docs) for line in _split_lines(doc)]
    if not lines:
        return [[]]
    k = min(blocks, len(lines))
    sizes = np.fromiter((len(line.encode("utf-8")) for _, line in lines), dtype=np.int64, count=len(lines))
    # Cut where the running total of bytes passes each k-th of the whole.
    ends = np.cumsum(sizes)
    bounds = np.searchsorted(ends, ends[-1] * np.arange(1, k) / k, side="left") + 1
    cuts = [0, *sorted(set(int(b) for b in bounds if 0 < b < len(lines))), len(lines)]
    runs = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        if not whole:
            runs.append([line for _, line in lines[a:b]])
            continue
        by_doc = itertools.groupby(lines[a:b], key=lambda item: item[0])
        runs.append(["".join(line for _, line in group) for _, group in by_doc])
    return runs


@dataclass
class BootstrapResult:
    """Replicate proportions, from which :meth:`around` builds the reported intervals.

    Attributes:
        replicates: how many replicates were solved (B).
        confidence: the interval's nominal coverage (e.g. 0.9).
        seed: the seed of the draws.
        blocks: blocks per category (the resampling units: groups of documents), in category
            order.
        proportions: ``(B, n)`` replicate proportions in bytes, categories in that order.
        statuses: each replicate's LP status.
        seconds: wall time of the whole bootstrap.
    """

    replicates: int
    confidence: float
    seed: int
    blocks: dict[str, int]
    proportions: np.ndarray
    statuses: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cut: list[str] = field(default_factory=list)

    @property
    def optimal(self) -> int:
        """How many replicates' LPs reached their optimum (the others hit the time limit)."""
        return sum(s == "optimal" for s in self.statuses)

    def around(self, estimate: dict[str, float]) -> dict[str, tuple[float, float]] | None:
        """The reported intervals for the full-sample ``estimate`` (:func:`calibrated_intervals`),
        from the replicates that reached their optimum; ``None`` when fewer than two did (a
        replicate stopped by the time limit is not a draw of the estimator)."""
        if self.optimal < 2:
            return None
        keep = np.array([s == "optimal" for s in self.statuses], dtype=bool)
        return calibrated_intervals(list(self.blocks), self.proportions[keep], estimate, self.confidence)

    def warnings(self) -> list[str]:
        """What makes the intervals less trustworthy than their confidence says."""
        out = []
        if self.optimal < self.replicates:
            out.append(
                f"only {self.optimal} of {self.replicates} bootstrap replicates reached their optimum "
                f"before the time limit; "
                + ("the intervals come from those alone" if self.optimal >= 2 else "there are no intervals")
                + ": raise --time-limit (or drop it) for trustworthy intervals"
            )
        few = [f"{c} ({k})" for c, k in self.blocks.items() if k < MIN_BLOCKS]
        if few:
            out.append(
                f"the bootstrap had fewer than {MIN_BLOCKS} blocks of text to resample in "
                f"{len(few)} categor{'y' if len(few) == 1 else 'ies'}: {', '.join(few[:10])}"
                f"{', ...' if len(few) > 10 else ''}; their intervals understate the uncertainty "
                f"(one block gives none at all): give them more documents or lines of text"
            )
        return out

    def notes(self) -> list[str]:
        """How the resampling units were made where documents were too few."""
        if not self.cut:
            return []
        which = ", ".join(self.cut[:10]) + (", ..." if len(self.cut) > 10 else "")
        return [
            f"the bootstrap cut {len(self.cut)} categor{'y' if len(self.cut) == 1 else 'ies'} with fewer "
            f"than {DEFAULT_BLOCKS} documents ({which}) into runs of consecutive lines, resampled as "
            "documents are"
        ]

    def to_dict(self) -> dict[str, Any]:
        """The ``bootstrap`` object of the JSON result."""
        return {
            "replicates": self.replicates,
            "confidence": self.confidence,
            "unit": "document",
            "seed": self.seed,
            "interval": f"basic bootstrap, half-width x{WIDEN:g} (calibrated on simulations)",
            "blocks": self.blocks,
            "cut_into_lines": self.cut,
            "optimal": self.optimal,
            "seconds": self.seconds,
        }


def calibrated_intervals(
    names: Sequence[str], samples: np.ndarray, estimate: dict[str, float], confidence: float
) -> dict[str, tuple[float, float]]:
    """Per category: the basic bootstrap interval, half-width times :data:`WIDEN`, holding the
    estimate, within [0, 1]."""
    lo_q, hi_q = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    out = {}
    for i, n in enumerate(names):
        est = estimate[n]
        q_lo, q_hi = float(np.percentile(samples[:, i], lo_q)), float(np.percentile(samples[:, i], hi_q))
        low, high = 2 * est - q_hi, 2 * est - q_lo
        center, half = (low + high) / 2, (high - low) / 2 * WIDEN
        out[n] = (max(0.0, min(center - half, est)), min(1.0, max(center + half, est)))
    return out


def count_and_replay_blocks(
    category: Category, pretok: Pretokenizer, max_bytes: int, unit: str, table: TokenTable, merges: int
) -> tuple[Blocks, list[Trace]]:
    """One category's blocks and their traces: a job of its own (categories run in parallel)."""
    blocks = count_blocks(category, pretok, max_bytes=max_bytes, unit=unit)
    return blocks, replay_blocks(blocks.words, table, merges)


# Per worker process: the full sample's LP, solved once, that every replicate of the same call starts
# from (set by _setup_replicates, an executor initializer; read by _replicate).
_STATE: dict[str, Any] = {}


def _setup_replicates(
    per_block: Sequence[list[Trace]],
    sizes: Sequence[np.ndarray],
    codes: np.ndarray,
    start: int,
    normalize: str,
    solver: str,
    time_limit: float | None,
    seed: int,
    token: str,
    warm: dict[str, Any] | None = None,
) -> None:
    """Executor initializer: build and (with HiGHS) solve the full sample's LP once per worker.

    Every worker solves the same LP the same way, so each replicate starts from the same optimum
    wherever it runs: the results do not depend on how replicates are dealt to workers. ``warm``
    (:func:`mixinfer.solver.snapshot_state` of the same LP solved before, e.g. by the inference
    itself) is the start of that solve when the structures agree: it then takes no simplex
    iteration instead of the whole lazy loop.
    """
    if _STATE.get("token") == token:  # idempotent: this call's state is already here
        return
    _STATE.clear()
    _STATE.update(
        token=token, per_block=per_block, sizes=sizes, codes=codes, start=start, normalize=normalize,
        solver=solver, time_limit=time_limit, seed=seed, backend=None, origin=None,
    )  # fmt: skip
    full, _, _ = _lp_from_traces([np.ones(len(b), dtype=np.int64) for b in per_block])
    _STATE.update(full=full, **_entries_of_blocks(full, per_block))
    made, _ = make_backend(solver, full)
    if isinstance(made, HighsBackend):
        if warm is not None and snapshot_fits(warm, full):
            made.retarget(full, snapshot_from_state(warm, full))
        solve(full, time_limit=time_limit, backend=made)
        # Rows that do not bind at the optimum only slow every replicate down (the lazy loop stops
        # pruning in its last rounds, so the final model can hold many).
        if made.prune(every=True):
            solve(full, time_limit=time_limit, backend=made)
        # From a warm start, HiGHS's scaling (computed again for every replicate's model) costs
        # more than it saves: 13% fewer simplex iterations without it on the demo's replicates.
        made.h.setOptionValue("simplex_scale_strategy", 0)
        _STATE.update(backend=made, origin=made.snapshot())


def _entries_of_blocks(full: MixtureLP, per_block: Sequence[list[Trace]]) -> dict[str, np.ndarray]:
    """Where each block's counts go among the full LP's entries, so that a replicate's counts are
    one weighted :func:`numpy.bincount` (see :meth:`MixtureLP.with_counts`).

    Returns ``entry``, ``value`` and ``block`` (a block's index over all categories) per block
    count, and each block's initial pairs ``init``.
    """
    T = full.T
    entry_l, value_l, block_l, init = [], [], [], []
    g = 0
    for i, traces in enumerate(per_block):
        for tr in traces:
            keep = tr.step < T - 1  # as MixtureLP keeps them: a delta of step t matters from t + 1
            pair = np.searchsorted(full.codes, np.concatenate([tr.init_codes, tr.code[keep]]))
            eff = np.concatenate([np.zeros(len(tr.init_codes), np.int64), tr.step[keep].astype(np.int64) + 1])
            pos = np.searchsorted(full.cat_key[i], pair * (T + 1) + eff)
            entry_l.append(full.cat_entries[i][pos])
            value_l.append(np.concatenate([tr.init_counts, tr.delta[keep]]).astype(float))
            block_l.append(np.full(len(pos), g, dtype=np.int64))
            init.append(int(tr.init_counts.sum()))
            g += 1
    return {
        "entry": np.concatenate(entry_l),
        "value": np.concatenate(value_l),
        "block": np.concatenate(block_l),
        "init": np.array(init, dtype=np.int64),
    }


def _replicate_lp(weights: list[np.ndarray]) -> tuple[MixtureLP, np.ndarray, np.ndarray]:
    """The LP of the blocks weighted by ``weights``, its categories' bytes and its units: the
    full LP's structure with the weighted sum of the block counts (the LP
    :func:`_lp_from_traces` builds, without summing traces or sorting entries)."""
    full: MixtureLP = _STATE["full"]
    w = np.concatenate(weights)
    raw = np.bincount(
        _STATE["entry"], weights=_STATE["value"] * w[_STATE["block"]], minlength=len(full.entry_val)
    )
    nbytes = np.array([float(wc @ b) for wc, b in zip(weights, _STATE["sizes"], strict=True)])
    units = nbytes
    if _STATE["normalize"] == "pairs":
        starts = np.cumsum([0, *(len(wc) for wc in weights[:-1])])
        units = np.maximum(np.add.reduceat(w * _STATE["init"], starts), 1).astype(float)
    return full.with_counts(raw, units.tolist()), nbytes, units


def _lp_from_traces(weights: list[np.ndarray]) -> tuple[MixtureLP, np.ndarray, np.ndarray]:
    """The LP of the blocks weighted by ``weights``, its categories' bytes and its units."""
    per_block, sizes = _STATE["per_block"], _STATE["sizes"]
    # Zeros are kept, so every replicate's LP has the full sample's pairs and segments.
    traces = [sum_traces(per_block[i], w, keep_zeros=True) for i, w in enumerate(weights)]
    nbytes = np.array([float(w @ b) for w, b in zip(weights, sizes, strict=True)])
    units = nbytes
    if _STATE["normalize"] == "pairs":
        units = np.array([max(int(tr.init_counts.sum()), 1) for tr in traces], dtype=float)
    return MixtureLP(traces, units.tolist(), _STATE["codes"], start=_STATE["start"]), nbytes, units


def _replicate(r: int) -> tuple[np.ndarray, str]:
    """Executor job: replicate ``r``'s proportions in bytes and its LP status."""
    rng = np.random.default_rng([_STATE["seed"], r])
    draws = [np.bincount(rng.integers(0, len(b), size=len(b)), minlength=len(b)) for b in _STATE["per_block"]]
    lp, nbytes, units = _replicate_lp(draws)
    backend: HighsBackend | None = _STATE["backend"]
    if backend is not None:
        backend.retarget(lp, _STATE["origin"])
        result, _ = solve(lp, time_limit=_STATE["time_limit"], backend=backend)
    else:
        result, _ = solve(lp, solver=_STATE["solver"], time_limit=_STATE["time_limit"])
    alpha = result.proportions
    if _STATE["normalize"] == "pairs":
        alpha = alpha * nbytes / units
        alpha = alpha / alpha.sum()
    return alpha, result.status


def bootstrap(
    blocks: Sequence[Blocks],
    table: TokenTable,
    merges: int,
    *,
    start: int,
    normalize: str,
    replicates: int,
    confidence: float,
    seed: int,
    solver: str = "auto",
    time_limit: float | None = None,
    progress: ProgressCallback = noop,
    block_traces: Sequence[list[Trace]] | None = None,
    executor: Executor | None = None,
    warm: dict[str, Any] | None = None,
) -> BootstrapResult:
    """Solve ``replicates`` resampled LPs; return their proportions and percentile intervals.

    ``block_traces``: each category's block traces when already replayed
    (:func:`count_and_replay_blocks`); replayed here otherwise. ``executor``: where the
    replicates are solved (default: this process); each of its workers solves the full sample's
    LP once (from ``warm`` when given: :func:`_setup_replicates`) and then one replicate per job,
    each from that optimum, so the proportions are the same on any executor.
    """
    if replicates < 1:
        raise UsageError(f"bootstrap needs at least 1 replicate, not {replicates}")
    t0 = time.monotonic()
    per_block: list[list[Trace]] = list(block_traces) if block_traces is not None else []
    for b in blocks[len(per_block) :]:
        progress(Progress("bootstrap", 0, replicates, "replicates", f"block traces of {b.category}"))
        per_block.append(replay_blocks(b.words, table, merges))
    out = np.zeros((replicates, len(blocks)))
    statuses = [""] * replicates
    setup = (
        per_block, [b.bytes for b in blocks], table.merge_codes, start, normalize, solver, time_limit, seed,
        os.urandom(8).hex(), warm,
    )  # fmt: skip
    pool = executor if executor is not None else SerialExecutor()
    progress(Progress("bootstrap", 0, replicates, "replicates", "the full sample's LP"))
    done = 0
    try:
        jobs = [(r,) for r in range(replicates)]
        results = pool.map_unordered(_replicate, jobs, initializer=_setup_replicates, initargs=setup)
        with closing(results) as it:
            for r, (alpha, status) in it:
                out[r] = alpha
                statuses[r] = status
                done += 1
                progress(Progress("bootstrap", done, replicates, "replicates"))
    finally:
        _STATE.clear()  # the serial executor ran the setup here: free the full LP
    return BootstrapResult(
        replicates,
        confidence,
        seed,
        {b.category: len(b.words) for b in blocks},
        out,
        statuses,
        time.monotonic() - t0,
        [b.category for b in blocks if b.cut],
    )
