"""The linear program of Hayase et al. (2024), solved by lazy constraint and variable generation.

Variables: ``alpha`` (one per category, on the simplex), a slack ``v_t`` per merge step and a slack
``v_p`` per pair. For every step ``t`` and pair ``p != m(t)``::

    v_t + v_p + sum_i alpha_i * (c[i, m(t), t] - c[i, p, t]) >= 0

minimising ``sum v_t + sum v_p``. Counts are per million *units* of each category's sample (the
caller's choice: bytes, or initial pairs), so ``alpha`` are proportions in those units (and the
numbers sit well above solver tolerances).

The full LP has (merges x pairs) rows. Two observations make it small:

* A pair's counts only change at the steps where a delta touches it, so over each *segment* (a
  stretch of steps with constant counts) its constraints read ``theta_t >= z_s - v_p`` for every
  step ``t`` of the segment, with ``theta_t = v_t + s_m(t)`` (the merge's mixture count plus its
  slack) and ``z_s`` the pair's mixture count over the segment.
* "``theta_t >= x`` for every t in a range" is written exactly with a segment tree over the steps:
  a variable ``mu_N <= theta_t`` per tree node ``N`` (``mu_N <= mu_child`` for inner nodes), and
  one row ``mu_N + v_p - z_s >= 0`` (``z_s`` written out as ``sum_i alpha_i c[i, p, s]``) per
  node of the range's canonical cover (at most 2 log2 T of them). A leaf's ``mu`` is ``theta_t``
  itself, written out, so a row at a leaf is the paper's constraint. The tree costs about 2T rows
  once; a whole segment then costs a few rows instead of one row per step, so the lazy loop no
  longer rediscovers the same pair step after step.

We start with the tree alone and repeat: solve the LP over the rows and columns generated so far,
find the (segment, node) rows the current solution violates (an exact, vectorised check of every
segment against the node minima of ``theta``), and add the worst ones with any new ``v_p``
columns they need. This plays the part of the priority queue over pairs of the paper's
implementation. When no row is violated (beyond a tolerance) the solution is optimal for the
full problem, and the objective equals that of the LP written out in full (a test checks this).

Two backends: :class:`HighsBackend` drives HiGHS through ``highspy`` incrementally (rows and columns
are added to the live model and the dual simplex warm-starts from the last basis; rows that left
the basis' binding set are pruned); :class:`PulpBackend` keeps a PuLP model, which PuLP hands to
its solver in full at every solve, so any solver PuLP supports can be used (CBC ships with PuLP;
Gurobi or CPLEX where installed).
"""

from __future__ import annotations

import copy
import ctypes
import os
import sys
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixinfer.errors import MissingDependencyError, SamplesError, SolverError, UsageError
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.replay import Trace

SOLVERS = ("auto", "highs", "cbc")
# Part of the cache key of stored solutions: bump when the LP or its tie-breaking changes.
LP_FORMULATION = "segment-tree-2"
# Counts are expressed per this many bytes of a category's sample.
SCALE = 1e6
# A constraint counts as violated only beyond this (in counts per million units).
TOLERANCE = 1e-6
# Rows added per round, the most violated first: larger batches change speed, not the optimum.
ROWS_PER_ROUND = 10_000
# Rows that are no longer binding (basic slack) are pruned after every round that still found
# more violated rows than it could add, once there are this many generated rows. Pruning never
# changes the optimum; it keeps each re-solve small. In the last rounds (few violations left) it
# stops, since rows pruned there tend to come straight back. Measured on GPT-2, 13 categories,
# T=30000: about 1.7x faster than pruning only when the generated rows outgrow twice the columns.
# A row pruned once and found violated again is never pruned again in that solve: without this
# rule, Llama 3's new merges (27,049 steps, 23 categories) pruned and re-added the same rows for
# 689 rounds and more than an hour; with it, 35 rounds and about 3 minutes (BENCHMARKS.md, lp).
PRUNE_MIN = 10_000

# The search covers every live segment with tree nodes in every round; when the cover of all segments
# has at most this many entries (two int32 each: 160 MB), it is computed once and kept.
COVER_CACHE_ENTRIES = 20_000_000
# Segments covered per step while that cover is built (and abandoned once past the cap).
COVER_CHUNK = 1_000_000

# A category whose sample holds fewer initial pairs than this (adjacent symbols inside words,
# counted with multiplicity; English text has about 0.8 per byte, so roughly 13 kB) gets a
# warning. Measured with the demo tokenizer (known mixture of 5 languages) against the 23 bundled
# categories, T=3000, the same budget for every category (log10 MSE; a uniform guess scores -2.0):
#   ~80 pairs: -1.3 (all weight on one category), 240: -2.2, 2,400: -2.3, 8,000: -2.5,
#   24,000: -3.0, 80,000: -3.2, 240,000: -3.3 (T=1000: -1.3, -2.1, -2.4, -2.5, -3.0, -3.2, -3.3).
# Below 10,000 pairs the estimate is within about half an order of magnitude of guessing.
MIN_SAMPLE_PAIRS = 10_000


def _flush_c_stdio() -> None:
    """Flush every C ``FILE*`` buffer (``fflush(NULL)``), where the C library can be found.

    C code writing to a pipe or file buffers its output; without this flush, text written while
    file descriptor 1 pointed at /dev/null could reach the real stdout later, at exit.
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None) if os.name == "posix" else False
        except OSError:  # pragma: no cover - a platform without a loadable C library
            _LIBC = False
    if _LIBC:
        _LIBC.fflush(None)


_LIBC: Any = None
# Threads inside quiet_c_stdout(): fd 1 is redirected by the first to enter and restored by the
# last to leave, so concurrent HiGHS constructions never restore each other's /dev/null.
_QUIET_LOCK = threading.Lock()
_QUIET_DEPTH = 0
_QUIET_SAVED: int | None = None


def _flush_python_stdout() -> None:
    for stream in (sys.stdout, sys.__stdout__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed or broken stdout: nothing of ours is pending
            pass


@contextmanager
def quiet_c_stdout() -> Iterator[None]:
    """Discard what native code writes to file descriptor 1 while the block runs.

    HiGHS prints its banner ("Running HiGHS ... Copyright") from C to stdout when a ``Highs``
    object is created, before any option can silence it, which would corrupt ``--format json``
    on stdout. Python's and C's buffers are flushed first (so nothing written before the block is
    lost), fd 1 is pointed at /dev/null, and restored afterwards whatever happens. Thread-safe for
    concurrent uses of this context manager; output that *other* threads write to stdout while
    a block runs is lost too, so keep the blocks short (object construction only).
    """
    global _QUIET_DEPTH, _QUIET_SAVED
    with _QUIET_LOCK:
        if _QUIET_DEPTH == 0:
            _flush_python_stdout()
            _flush_c_stdio()
            try:
                saved = os.dup(1)
            except OSError:  # no fd 1 at all: nothing can reach a stdout
                saved = -1
            if saved >= 0:
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, 1)
                    finally:
                        os.close(devnull)
                except OSError:
                    os.close(saved)
                    saved = -1
            _QUIET_SAVED = saved
        _QUIET_DEPTH += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_DEPTH -= 1
            if _QUIET_DEPTH == 0:
                _flush_c_stdio()
                saved = _QUIET_SAVED if _QUIET_SAVED is not None else -1
                _QUIET_SAVED = None
                if saved >= 0:
                    os.dup2(saved, 1)
                    os.close(saved)


def new_highs() -> Any:
    """A ``highspy.Highs`` that writes nothing to stdout, for every supported highspy (>= 1.7).

    Raises :class:`MissingDependencyError` when highspy is not installed.
    """
    try:
        import highspy
    except ImportError as exc:
        raise MissingDependencyError(
            "highspy is not installed; run: pip install highspy (or use --solver cbc)"
        ) from exc
    with quiet_c_stdout():
        h = highspy.Highs()
        # Silence it before it can print anything else (still inside the redirection).
        h.setOptionValue("output_flag", False)
        h.setOptionValue("log_to_console", False)
    return h


def check_samples(traces: Sequence[Trace], names: Sequence[str] | None = None) -> list[str]:
    """Refuse samples the LP cannot use, and warn about samples too small to trust.

    A category whose sample has no initial pair (a one-byte sample, or single characters between
    spaces) appears in no constraint, so the LP could give it any share, typically all of it:
    that is a :class:`SamplesError` naming the categories. A category with fewer than
    :data:`MIN_SAMPLE_PAIRS` initial pairs gives a warning (returned, one line for all such
    categories); see :data:`MIN_SAMPLE_PAIRS` for the measurements behind the threshold.
    """
    labels = list(names) if names is not None else [f"category {i + 1}" for i in range(len(traces))]
    if len(labels) != len(traces):
        raise ValueError(f"{len(labels)} names for {len(traces)} traces")
    pairs = [int(np.asarray(tr.init_counts).sum()) for tr in traces]
    empty = [name for name, n in zip(labels, pairs, strict=True) if n <= 0]
    if empty:
        which = ", ".join(f"'{name}'" for name in empty)
        raise SamplesError(
            f"{'category' if len(empty) == 1 else 'categories'} {which} "
            f"{'has' if len(empty) == 1 else 'have'} no pair of adjacent bytes inside a word in "
            f"the sample read (e.g. a sample of one byte, or --max-bytes too small), so no merge "
            f"constrains {'it' if len(empty) == 1 else 'them'} and the LP could give "
            f"{'it' if len(empty) == 1 else 'them'} any share; give every category real text "
            f"(at least about 15 kB; raise --max-bytes) or remove the category"
        )
    small = [(name, n) for name, n in zip(labels, pairs, strict=True) if n < MIN_SAMPLE_PAIRS]
    if not small:
        return []
    listed = ", ".join(f"'{name}' ({n:,} pairs)" for name, n in small)
    return [
        f"tiny samples: {listed} {'has' if len(small) == 1 else 'have'} fewer than "
        f"{MIN_SAMPLE_PAIRS:,} byte pairs; with so little text the proportions are little better "
        f"than a guess; give every category at least about 15 kB (raise --max-bytes or add text)"
    ]


# The LP's running time, fitted as ``c * (steps/1000)**a * (pairs/1e5)**b * categories**g`` to the
# GPT-2 grid of scripts/bench_lp.py (the bundled samples on a 2-core laptop; BENCHMARKS.md, "Where
# the LP's time goes"; refitted for the model without z_s and leaf columns). Pairs and categories
# grow together there, so pairs get a small fixed exponent and categories the rest. A guide for
# the user, not a promise: within 10% on that grid; merges past a base that already cut the text
# (Llama 3 past cl100k) run faster than estimated (2.8x).
_ESTIMATE = (0.155, 1.53, 0.1, 0.82)


def estimate_seconds(steps: int, categories: int, pairs: int) -> float:
    """A rough estimate of the LP's wall time from its size (see :data:`_ESTIMATE`)."""
    c, a, b, g = _ESTIMATE
    return float(c * (max(steps, 1) / 1000) ** a * (max(pairs, 1) / 1e5) ** b * max(categories, 1) ** g)


def _duration(seconds: float) -> str:
    """``40 s``, ``6 min``, ``1.5 h``: an estimate's precision, no more."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def rows_per_round_for(steps: int) -> int:
    """The default batch size for an LP over ``steps`` constrained merge steps.

    Measured on GPT-2 with 13 categories: about a third of the steps, within [2000, 10000], keeps
    both the number of rounds and the simplex work per round low.
    """
    return max(2_000, min(ROWS_PER_ROUND, steps // 3))


@dataclass
class LPDetails:
    """The final LP beyond the proportions: what diagnostics and the bootstrap need.

    Counts, slacks and duals are in the LP's units: per :data:`SCALE` units of each category's
    sample (``units``: bytes, or initial pairs with ``--normalize pairs``). Pair codes are those of
    the traces (:class:`mixinfer.replay.TokenTable` codes; ``TokenTable`` turns them back into
    token pairs). Arrays are numpy; nothing here goes into the default JSON.

    Attributes:
        start: the first constrained merge step; entry ``k`` of the per-step arrays is step
            ``start + k`` (0-based merge index).
        units: each category's unit count, in category order (counts are ``c * SCALE / units``).
        step_slack: ``v_t`` of every constrained step: how far the merge's mixture count falls
            short of the most frequent competing pair (large = a merge the samples do not explain).
        pair_codes: the pairs that have a slack column in the final LP, sorted.
        pair_slack: ``v_p`` of each of ``pair_codes`` (large = a pair the samples over-represent
            compared with the merges).
        row_pair_codes: the pair of each generated constraint row of the final LP.
        row_first_step / row_end_step: the merge steps ``[first, end)`` each such row constrains
            (a segment-tree node intersected with the pair's segment of constant counts); with
            ``row_pair_codes`` a portable description of the active row set (e.g. to warm-start
            a bootstrap replicate's LP).
        row_duals: the dual value of each generated row, as HiGHS reports it (None for PuLP
            backends, or when the final model has no valid dual solution).
        step_duals: the summed dual of the constraints of each step (one minus the reduced cost of
            its slack ``v_t``; HiGHS only): how much the objective depends on that merge's
            constraint.
        alpha_reduced_costs: the reduced cost of each category's ``alpha`` (HiGHS only): the
            objective's rate of change if that category's share were forced up.
        simplex_dual: the dual of ``sum alpha = 1`` (HiGHS only).
    """

    start: int
    units: np.ndarray
    step_slack: np.ndarray
    pair_codes: np.ndarray
    pair_slack: np.ndarray
    row_pair_codes: np.ndarray
    row_first_step: np.ndarray
    row_end_step: np.ndarray
    row_duals: np.ndarray | None = None
    step_duals: np.ndarray | None = None
    alpha_reduced_costs: np.ndarray | None = None
    simplex_dual: float | None = None


@dataclass
class _Duals:
    """Duals of the final model, as a backend reads them (keys align with ``row_duals``)."""

    row_keys: np.ndarray
    row_duals: np.ndarray | None = None
    step_duals: np.ndarray | None = None
    alpha_reduced_costs: np.ndarray | None = None
    simplex_dual: float | None = None


@dataclass
class SolveResult:
    """What the lazy LP found.

    Attributes:
        proportions: alpha, one per category, summing to 1.
        status: ``"optimal"`` (no violated constraint left) or ``"time_limit"``.
        objective: the LP objective of the final solve.
        rounds: LP solves performed.
        constraints: rows of the final LP (excluding the simplex row).
        variables: columns of the final LP.
        max_violation: the largest violation found by the last check (0 when optimal).
        backend: the solver used.
        seconds: wall time spent in the LP solver itself.
        history: per round: violated rows found, objective, largest violation.
        warnings: problems with the input the caller should show (tiny samples, see
            :func:`check_samples`).
        details: slacks, the final row set and duals (:class:`LPDetails`).
        snapshot: HiGHS's final model and basis, when asked for (``keep_snapshot``).
    """

    proportions: np.ndarray
    status: str
    objective: float
    rounds: int
    constraints: int
    variables: int
    max_violation: float
    backend: str
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: LPDetails | None = None
    snapshot: _Snapshot | None = field(default=None, repr=False, compare=False)


_Solution = tuple[str, float, np.ndarray, np.ndarray, dict[int, float]]


class MixtureLP:
    """The constraint data of the mixture LP for given traces, and the violation search.

    ``sample_bytes`` holds each category's unit count (bytes, or initial pairs): counts are per
    :data:`SCALE` of them. ``names`` (the categories, for messages) default to "category 1"...
    The traces are checked by :func:`check_samples` (raising :class:`SamplesError` for a
    category without pairs); its warnings are kept in :attr:`warnings`.
    """

    def __init__(
        self,
        traces: Sequence[Trace],
        sample_bytes: Sequence[float],
        merge_codes: np.ndarray,
        *,
        start: int = 0,
        names: Sequence[str] | None = None,
    ) -> None:
        if not traces:
            raise SamplesError("no category to infer a mixture of; add category folders to the samples")
        self.warnings: list[str] = check_samples(traces, names)
        self.names = list(names) if names is not None else [f"category {i + 1}" for i in range(len(traces))]
        self.units = np.array([float(u) for u in sample_bytes])
        self.n = len(traces)
        T = min(t.merges for t in traces)
        if not 0 <= start < T:
            raise UsageError(f"--start-merge {start} must be between 0 and the merges used ({T})")
        self.T, self.start = T, start
        merge_codes = np.asarray(merge_codes[:T], dtype=np.int64)
        pieces = [merge_codes]
        for tr in traces:
            pieces += [tr.init_codes, tr.code]
        self.codes = np.unique(np.concatenate(pieces))
        self.merge_pair = np.searchsorted(self.codes, merge_codes)

        pair_l, eff_l, cat_l, val_l = [], [], [], []
        for i, (tr, nbytes) in enumerate(zip(traces, sample_bytes, strict=True)):
            scale = SCALE / max(int(nbytes), 1)
            keep = tr.step < T - 1  # a delta of step t matters from step t + 1 on
            pair_l += [
                np.searchsorted(self.codes, tr.init_codes),
                np.searchsorted(self.codes, tr.code[keep]),
            ]
            eff_l += [np.zeros(len(tr.init_codes), np.int64), tr.step[keep].astype(np.int64) + 1]
            cat_l += [np.full(len(tr.init_codes) + int(keep.sum()), i, dtype=np.int16)]
            val_l += [tr.init_counts * scale, tr.delta[keep] * scale]
        pair = np.concatenate(pair_l)
        eff = np.concatenate(eff_l)
        cat = np.concatenate(cat_l)
        val = np.concatenate(val_l)
        key = pair * (T + 1) + eff
        order = np.argsort(key, kind="stable")
        key, pair, eff, cat, val = key[order], pair[order], eff[order], cat[order], val[order]
        del order

        new_seg = np.ones(len(key), dtype=bool)
        new_seg[1:] = key[1:] != key[:-1]
        self.seg_of_entry = np.cumsum(new_seg) - 1
        first = np.flatnonzero(new_seg)
        self.seg_key = key[first]
        self.seg_pair = pair[first]
        self.seg_start = eff[first]
        nseg = len(first)
        same_next = np.zeros(nseg, dtype=bool)
        same_next[:-1] = self.seg_pair[1:] == self.seg_pair[:-1]
        self.seg_end = np.where(same_next, np.roll(self.seg_start, -1), T)
        # First segment of each segment's pair, for cumulative sums within a pair.
        pair_first = np.ones(nseg, dtype=bool)
        pair_first[1:] = ~same_next[:-1]
        self.seg_pair_first = np.maximum.accumulate(np.where(pair_first, np.arange(nseg), 0))
        self.entry_cat = cat
        self.entry_val = val

        # Per category: sorted keys and running counts, for exact coefficients of new rows.
        self.cat_key: list[np.ndarray] = []
        self.cat_pair: list[np.ndarray] = []
        self.cat_entries: list[np.ndarray] = []  # each category's entries, in key order
        self._cat_base: list[np.ndarray] = []
        for i in range(self.n):
            sel = np.flatnonzero(cat == i)
            k_i, p_i = key[sel], pair[sel]
            # Several deltas of one pair at one step cannot happen (deltas are summed per step).
            pf = np.ones(len(p_i), dtype=bool)
            pf[1:] = p_i[1:] != p_i[:-1]
            self.cat_key.append(k_i)
            self.cat_pair.append(p_i)
            self.cat_entries.append(sel)
            self._cat_base.append(np.maximum.accumulate(np.where(pf, np.arange(len(p_i)), 0)))
        self.cat_count = self._running_counts()

        # The segment tree over the constrained steps start..T-1 (leaf k is step start + k).
        self.steps = T - start
        self.leaves = 1 << max(0, (self.steps - 1).bit_length())
        self.seg_lo = np.maximum(self.seg_start, start) - start
        self.seg_hi = self.seg_end - start
        # Estimator hooks (see mixinfer.estimators): which pairs may compete with a merge (None:
        # every pair; a bool per pair of :attr:`codes`) and each pair's slack cost (None: 1.0).
        self.allowed: np.ndarray | None = None
        self.pair_cost: np.ndarray | None = None
        # What the search computes from the structure alone, once (shared by with_counts's copies).
        self._structure: dict[str, Any] = {}

    def _running_counts(self) -> list[np.ndarray]:
        """Per category, each entry's pair count from its step on (cumulative within the pair)."""
        out = []
        for sel, base in zip(self.cat_entries, self._cat_base, strict=True):
            v_i = self.entry_val[sel]
            cs = np.cumsum(v_i)
            out.append(cs - cs[base] + v_i[base])
        return out

    def with_counts(self, raw: np.ndarray, sample_bytes: Sequence[float]) -> MixtureLP:
        """This LP's structure with other counts: ``raw[e]`` is entry ``e``'s unscaled count (an
        initial count or a delta, entries in :attr:`entry_cat` order) and ``sample_bytes`` the
        categories' units, as the constructor takes them.

        The bootstrap's replicates have the full sample's entries (zeros kept), so this gives the
        LP the constructor would build from the replicate's traces, bit for bit, without sorting
        the entries again; warnings are not checked again. The copy shares this LP's cached
        structure (:meth:`share_structure`).
        """
        if raw.shape != self.entry_val.shape or len(sample_bytes) != self.n:
            raise ValueError("with_counts needs one count per entry and one unit count per category")
        other = copy.copy(self)
        other.units = np.array([float(u) for u in sample_bytes])
        scale = np.array([SCALE / max(int(u), 1) for u in sample_bytes])
        other.entry_val = raw * scale[self.entry_cat]
        other.cat_count = other._running_counts()
        other.warnings = []
        return other

    @property
    def pairs(self) -> int:
        """Distinct pairs seen in any category or merge."""
        return len(self.codes)

    @property
    def segments(self) -> int:
        """Stretches of steps over which one pair's counts are constant."""
        return len(self.seg_key)

    def counts(self, cat: int, pairs: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Scaled count of each pair in category ``cat`` just before each step."""
        q = pairs * (self.T + 1) + steps
        idx = np.searchsorted(self.cat_key[cat], q, side="right") - 1
        ok = idx >= 0
        idx = np.where(ok, idx, 0)
        if len(self.cat_pair[cat]) == 0:
            return np.zeros(len(q))
        ok &= self.cat_pair[cat][idx] == pairs
        return np.where(ok, self.cat_count[cat][idx], 0.0)

    def _count_matrix(self, pairs: np.ndarray, steps: np.ndarray) -> np.ndarray:
        return np.stack([self.counts(i, pairs, steps) for i in range(self.n)], axis=1).reshape(
            len(pairs), self.n
        )

    def coefficients(self, steps: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """``c[i, m(t), t] - c[i, p, t]`` for each requested (t, p), shape (k, n)."""
        return self._count_matrix(self.merge_pair[steps], steps) - self._count_matrix(pairs, steps)

    def merge_counts(self) -> np.ndarray:
        """``c[i, m(t), t]`` for every constrained step, shape (steps, n)."""
        steps = np.arange(self.start, self.T)
        return self._count_matrix(self.merge_pair[steps], steps)

    def segment_counts(self, segments: np.ndarray) -> np.ndarray:
        """Per-category counts of each segment's pair over the segment, shape (k, n)."""
        first = self.seg_lo[segments] + self.start
        return self._count_matrix(self.seg_pair[segments], first)

    def node_bounds(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The range ``[lo, hi)`` of constrained steps (0 = ``start``) under each tree node."""
        depth = np.floor(np.log2(nodes)).astype(np.int64)
        width = self.leaves >> depth
        lo = (nodes - (1 << depth)) * width
        return lo, lo + width

    def tree_nodes(self) -> np.ndarray:
        """Tree nodes over at least one real step, in increasing order (leaves last)."""
        nodes = np.arange(1, 2 * self.leaves)
        return nodes[self.node_bounds(nodes)[0] < self.steps]

    def tree_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(parent, child) for every inner node and each of its children over real steps."""
        inner = np.arange(1, self.leaves)
        inner = inner[self.node_bounds(inner)[0] < self.steps]
        children = np.concatenate([2 * inner, 2 * inner + 1])
        parents = np.concatenate([inner, inner])
        real = self.node_bounds(children)[0] < self.steps
        return parents[real], children[real]

    def cover(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The canonical tree nodes covering each range ``[lo, hi)``: (range index, node) pairs."""
        passes = self._cover_passes(lo, hi)
        if not passes:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate([w for w, _ in passes]), np.concatenate([n for _, n in passes])

    def _cover_passes(self, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`cover`'s entries as found, pass by pass (two per tree level, leaves first)."""
        which = np.arange(len(lo))
        left, right = lo + self.leaves, hi + self.leaves
        out_i: list[np.ndarray] = []
        out_n: list[np.ndarray] = []
        while True:
            active = left < right
            if not active.any():
                break
            take = active & (left & 1 == 1)
            out_i.append(which[take])
            out_n.append(left[take])
            left = left + take
            take = active & (right & 1 == 1)
            right = right - take
            out_i.append(which[take])
            out_n.append(right[take])
            left, right = left >> 1, right >> 1
        return list(zip(out_i, out_n, strict=True))

    def _cover_all(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Every segment's canonical cover, computed once when it is small enough to keep.

        The search covers the live segments again in every round; segments and steps do not change
        between rounds (nor between bootstrap replicates, which share it: :meth:`with_counts`),
        so when the cover of all segments fits in :data:`COVER_CACHE_ENTRIES` entries it is kept.
        """
        if "cover" not in self._structure:
            # Built in chunks, given up as soon as it outgrows the cap: most segments are short,
            # so the real size is far below the bound of two nodes per tree level (Llama 3's new
            # merges: 8.7M entries for 1.4M segments, against a bound of 45M).
            # Kept pass by pass, so that the result has the order of one cover of every segment
            # (the search's rows, and so its ties, do not depend on the chunking).
            passes: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
            total = 0
            for lo in range(0, self.segments, COVER_CHUNK):
                hi = min(lo + COVER_CHUNK, self.segments)
                for k, (which, nodes) in enumerate(
                    self._cover_passes(self.seg_lo[lo:hi], self.seg_hi[lo:hi])
                ):
                    total += len(which)
                    if len(passes) <= k:
                        passes.append(([], []))
                    passes[k][0].append((which + lo).astype(np.int32))
                    passes[k][1].append(nodes.astype(np.int32))
                if total > COVER_CACHE_ENTRIES:
                    self._structure["cover"] = None
                    break
            else:
                self._structure["cover"] = (
                    np.concatenate([w for ws, _ in passes for w in ws] or [np.zeros(0, np.int32)]),
                    np.concatenate([n for _, ns in passes for n in ns] or [np.zeros(0, np.int32)]),
                )
        cover: tuple[np.ndarray, np.ndarray] | None = self._structure["cover"]
        return cover

    def _merge_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """For every constrained step: the segment of its merge's pair there, and whether it has one."""
        if "merge_segments" not in self._structure:
            steps = np.arange(self.start, self.T)
            q = self.merge_pair[steps] * (self.T + 1) + steps
            idx = np.searchsorted(self.seg_key, q, side="right") - 1
            idx_c = np.maximum(idx, 0)
            found = (idx >= 0) & (self.seg_pair[idx_c] == self.merge_pair[steps])
            self._structure["merge_segments"] = (idx_c, found)
        out: tuple[np.ndarray, np.ndarray] = self._structure["merge_segments"]
        return out

    def share_structure(self, other: MixtureLP) -> None:
        """Use ``other``'s cached structure (cover, merge segments): the LPs must have the same
        segments and steps (:func:`same_structure`); the bootstrap's replicates share them."""
        if not same_structure(self, other):
            raise ValueError("share_structure needs an LP with the same pairs, segments and steps")
        self._structure = other._structure

    def segment_values(self, alpha: np.ndarray) -> np.ndarray:
        """Mixture count of every segment under ``alpha``."""
        inc = np.bincount(
            self.seg_of_entry, weights=self.entry_val * alpha[self.entry_cat], minlength=self.segments
        )
        cs = np.cumsum(inc)
        return cs - cs[self.seg_pair_first] + inc[self.seg_pair_first]

    def violations(
        self, alpha: np.ndarray, v_step: np.ndarray, v_pair: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every violated (segment, tree node) row, with its violation.

        ``v_step`` holds the slack of each constrained step (length ``steps``), ``v_pair`` that of
        each pair. Exact: a constraint (t, p) is violated iff the row of the canonical node holding
        t in the cover of p's segment is.
        """
        if self.segments == 0:  # no pair anywhere (check_samples refuses this; kept total)
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0)
        seg_value = self.segment_values(alpha)
        idx_c, found = self._merge_segments()
        # theta at the leaves, then the minimum under every node (padding leaves never bind).
        node_min = np.full(2 * self.leaves, np.inf)
        node_min[self.leaves : self.leaves + self.steps] = np.where(found, seg_value[idx_c], 0.0) + v_step
        width = self.leaves // 2
        while width >= 1:
            inner = np.arange(width, 2 * width)
            node_min[inner] = np.minimum(node_min[2 * inner], node_min[2 * inner + 1])
            width //= 2
        y = seg_value - v_pair[self.seg_pair]
        cached = self._cover_all()
        if cached is not None and self.allowed is None:
            # Every kept entry at once, without first selecting the live segments (a large
            # compress per search): the same rows, in the same order, as the path below.
            all_segs, all_nodes = cached
            thr = node_min[all_nodes]
            viol = y[all_segs] - thr
            cand = np.flatnonzero(viol > TOLERANCE)
            s_c, t_c, v_c = all_segs[cand], thr[cand], viol[cand]
            bad = (v_c > TOLERANCE * np.maximum(1.0, np.abs(t_c))) & (y[s_c] > TOLERANCE)
            return s_c[bad].astype(np.int64), all_nodes[cand[bad]].astype(np.int64), v_c[bad]
        live_mask = (self.seg_lo < self.seg_hi) & (y > TOLERANCE)
        if self.allowed is not None:
            live_mask &= self.allowed[self.seg_pair]
        if cached is not None:
            # The same (segment, node) entries, in the same order, as covering the live ones.
            all_segs, all_nodes = cached
            keep = live_mask[all_segs]
            segs, nodes = all_segs[keep], all_nodes[keep]
        else:
            live = np.flatnonzero(live_mask)
            which, nodes = self.cover(self.seg_lo[live], self.seg_hi[live])
            segs = live[which]
        thr = node_min[nodes]
        viol = y[segs] - thr
        bad = viol > TOLERANCE * np.maximum(1.0, np.abs(thr))
        return segs[bad].astype(np.int64), nodes[bad].astype(np.int64), viol[bad]


def same_structure(a: MixtureLP, b: MixtureLP) -> bool:
    """Whether two LPs differ only in their counts: same steps, pair codes, merges and segments
    (as the bootstrap's replicates are, built with :func:`mixinfer.replay.sum_traces`'s ``keep_zeros``)."""
    return (
        a.n == b.n
        and a.T == b.T
        and a.start == b.start
        and np.array_equal(a.codes, b.codes)
        and np.array_equal(a.seg_key, b.seg_key)
    )


class _Backend(ABC):
    """Bookkeeping common to backends: generated rows and the pairs that have a slack column."""

    name = "base"

    def __init__(self, lp: MixtureLP) -> None:
        self.lp = lp
        self.n = lp.n
        # Keys (segment * 2 * leaves + node) of the generated rows present in the model.
        self.present: set[int] = set()
        self.pair_col: dict[int, Any] = {}

    def key(self, segments: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """One integer per (segment, node) row."""
        return segments * (2 * self.lp.leaves) + nodes

    @property
    @abstractmethod
    def rows(self) -> int:
        """Rows of the current LP (the simplex row excluded)."""

    @property
    @abstractmethod
    def columns(self) -> int:
        """Columns of the current LP."""

    def prune(self, *, every: bool = False) -> int:
        """Drop generated rows that are not binding; return how many. Default: keep all.

        Rows that came back after an earlier pruning are kept unless ``every`` is set (the
        bootstrap trims the final model once, where thrashing cannot happen).
        """
        return 0

    @property
    def iterations(self) -> int:
        """Simplex iterations run so far over every solve (0 where the backend does not say)."""
        return 0

    def final_rows(self) -> _Duals:
        """The generated rows of the current model, with duals where the backend has them."""
        return _Duals(np.array(sorted(self.present), dtype=np.int64))

    @abstractmethod
    def add_rows(self, segments: np.ndarray, nodes: np.ndarray) -> None:
        """Add the rows ``mu_node + v_p - z_segment >= 0``, creating missing columns."""

    @abstractmethod
    def solve(self, time_limit: float | None) -> _Solution:
        """Solve; return (status, objective, alpha, v per constrained step, v_p by pair)."""


@dataclass
class _Snapshot:
    """A HiGHS model at one moment (:meth:`HighsBackend.snapshot`)."""

    lp: MixtureLP
    model: Any
    basis: Any
    present: set[int]
    pair_col: dict[int, Any]
    row_keys: np.ndarray
    ncols: int


def snapshot_state(snap: _Snapshot) -> dict[str, Any]:
    """A snapshot as plain arrays (HiGHS's objects do not pickle), with its LP's structure in
    place of the LP: it can travel to another process (:func:`snapshot_from_state`)."""
    model, basis, a = snap.model, snap.basis, snap.model.a_matrix_
    return {
        "formulation": LP_FORMULATION,
        "structure": (snap.lp.n, snap.lp.T, snap.lp.start, snap.lp.codes, snap.lp.seg_key),
        "num_col": int(model.num_col_),
        "num_row": int(model.num_row_),
        "arrays": {
            k: np.asarray(getattr(model, k + "_"), dtype=float)
            for k in ("col_cost", "col_lower", "col_upper", "row_lower", "row_upper")
        },
        "matrix": tuple(np.asarray(x) for x in (a.start_, a.index_, a.value_)),
        "basis": (
            np.array([int(x) for x in basis.col_status], dtype=np.int8),
            np.array([int(x) for x in basis.row_status], dtype=np.int8),
        )
        if basis.valid
        else None,
        "books": (snap.present, snap.pair_col, snap.row_keys, snap.ncols),
    }


def snapshot_fits(state: dict[str, Any], lp: MixtureLP) -> bool:
    """Whether a :func:`snapshot_state` was taken of an LP with ``lp``'s structure (and of a model
    of this version's formulation)."""
    if state.get("formulation") != LP_FORMULATION:
        return False
    n, T, start, codes, seg_key = state["structure"]
    return bool(
        (n, T, start) == (lp.n, lp.T, lp.start)
        and np.array_equal(codes, lp.codes)
        and np.array_equal(seg_key, lp.seg_key)
    )


def snapshot_from_state(state: dict[str, Any], lp: MixtureLP) -> _Snapshot:
    """The snapshot of :func:`snapshot_state`, for ``lp`` (which must have its LP's structure)."""
    import highspy

    if not snapshot_fits(state, lp):
        raise ValueError("the snapshot belongs to an LP with other pairs, segments or steps")
    model = highspy.HighsLp()
    model.num_col_, model.num_row_ = state["num_col"], state["num_row"]
    for k, v in state["arrays"].items():
        setattr(model, k + "_", v)
    a = model.a_matrix_
    a.format_ = highspy.MatrixFormat.kColwise
    a.num_col_, a.num_row_ = state["num_col"], state["num_row"]
    a.start_, a.index_, a.value_ = state["matrix"]
    model.a_matrix_ = a
    basis = highspy.HighsBasis()
    if state["basis"] is not None:
        col, row = state["basis"]
        basis.col_status = [highspy.HighsBasisStatus(int(x)) for x in col]
        basis.row_status = [highspy.HighsBasisStatus(int(x)) for x in row]
        basis.valid = True
    present, pair_col, row_keys, ncols = state["books"]
    return _Snapshot(lp, model, basis, set(present), dict(pair_col), row_keys, ncols)


class HighsBackend(_Backend):
    """HiGHS through ``highspy``: one live model, grown in place and warm-started."""

    name = "highs"

    def __init__(self, lp: MixtureLP) -> None:
        super().__init__(lp)
        self.h = new_highs()
        import highspy

        self._hs = highspy
        # Re-solves start from the previous basis; presolve would only get in the way.
        self.h.setOptionValue("presolve", "off")
        self.h.setOptionValue("solver", "simplex")
        # Devex pricing: the LP has many more rows than columns, where steepest edge costs more
        # per iteration than it saves (measured about 1.6x faster on the demo LP).
        self.h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
        self.inf = highspy.kHighsInf
        n, steps = lp.n, lp.steps
        # alpha on the simplex.
        self.ncols = 0
        self._add_cols(n, 0.0, upper=1.0)
        self._add_rows(np.ones(1), np.ones(1), np.arange(n)[None, :], np.ones((1, n)))
        # v_t for every constrained step, and mu for every inner tree node. A leaf's mu would
        # equal theta_t = v_t + sum_i alpha_i c[i, m(t), t], so theta_t is written out in its
        # place: a row at a leaf is the paper's constraint itself. (A column and a row per leaf
        # made the model T rows and T columns larger for nothing: GPT-2, 13 categories, T=30000,
        # 304,199 iterations and 359 s with them, 261,772 and 276 s without; BENCHMARKS.md, lp.)
        self.step0 = self._add_cols(steps, 1.0)
        self.merge_counts = lp.merge_counts()
        self.node_col = np.full(2 * lp.leaves, -1, dtype=np.int64)
        nodes = lp.tree_nodes()
        nodes = nodes[nodes < lp.leaves]
        self.node_col[nodes] = self._add_cols(len(nodes), 0.0) + np.arange(len(nodes))
        # One row per step: mu_parent <= theta_t (with a single step, the tree is one leaf, and
        # the row only reads theta_t >= 0); its dual is not the step's (see final_rows).
        index = np.empty((steps, n + 2), dtype=np.int64)
        index[:, :n] = np.arange(n)
        index[:, n] = self.step0 + np.arange(steps)
        index[:, n + 1] = self.node_col[(lp.leaves + np.arange(steps)) >> 1]
        value = np.empty((steps, n + 2))
        value[:, :n] = self.merge_counts
        value[:, n] = 1.0
        value[:, n + 1] = -1.0 if lp.leaves > 1 else 0.0
        self._add_rows(np.zeros(steps), np.full(steps, self.inf), index, value)
        # Inner nodes: mu_node <= mu_child for inner children.
        parent, child = lp.tree_edges()
        inner = child < lp.leaves
        parent, child = parent[inner], child[inner]
        k = len(parent)
        if k:
            index = np.stack([self.node_col[child], self.node_col[parent]], axis=1)
            self._add_rows(np.zeros(k), np.full(k, self.inf), index, np.tile([1.0, -1.0], (k, 1)))
        self.base_rows = self.h.getNumRow()
        # Key (:meth:`key`) of every generated row, in model order after the base rows.
        self.row_keys = np.zeros(0, dtype=np.int64)
        # Whether HiGHS's solution belongs to the model as it is (no rows added or deleted since).
        self.solved = False
        self._iterations = 0
        # Keys of rows pruned at least once, and of those that were then found violated again:
        # the latter stay (see PRUNE_MIN), so a row cannot be pruned and re-added round after round.
        self._pruned: set[int] = set()
        self._returned: set[int] = set()

    @property
    def rows(self) -> int:
        return int(self.h.getNumRow()) - 1

    @property
    def columns(self) -> int:
        return self.ncols

    def _add_cols(self, count: int, cost: float | np.ndarray, upper: float | None = None) -> int:
        """Append ``count`` columns in [0, upper] (``cost``: one or per column); return the first's index."""
        first = self.ncols
        if count:
            empty_i = np.zeros(0, dtype=np.int32)
            self.h.addCols(
                count,
                np.broadcast_to(np.asarray(cost, dtype=float), (count,)).copy(),
                np.zeros(count),
                np.full(count, self.inf if upper is None else upper),
                0,
                empty_i,
                empty_i,
                np.zeros(0),
            )
            self.ncols += count
        return first

    def _add_rows(self, lower: np.ndarray, upper: np.ndarray, index: np.ndarray, value: np.ndarray) -> None:
        nonzero = value != 0.0
        k = len(lower)
        starts = np.zeros(k, dtype=np.int32)
        starts[1:] = np.cumsum(nonzero.sum(axis=1))[:-1]
        self.h.addRows(
            k, lower, upper, int(nonzero.sum()), starts, index[nonzero].astype(np.int32), value[nonzero]
        )

    def add_rows(self, segments: np.ndarray, nodes: np.ndarray) -> None:
        lp = self.lp
        pairs = lp.seg_pair[segments]
        new_pairs = [p for p in np.unique(pairs).tolist() if p not in self.pair_col]
        cost = 1.0 if lp.pair_cost is None else lp.pair_cost[np.array(new_pairs, dtype=np.int64)]
        first = self._add_cols(len(new_pairs), cost)
        for j, p in enumerate(new_pairs):
            self.pair_col[p] = first + j
        # mu_node + v_p - sum_i alpha_i c[i, p, segment] >= 0, the segment's counts written into
        # the row. (A column z_s per segment, defined once by an equality row and shared by the
        # segment's rows, keeps rows 3 entries long, but the model then carries a column and a
        # row per segment: GPT-2, 13 categories, T=10000, 1.2x slower and 14% more iterations.)
        k = len(segments)
        pc = np.fromiter((self.pair_col[p] for p in pairs.tolist()), np.int64, count=k)
        index = np.empty((k, self.n + 2), dtype=np.int64)
        index[:, : self.n] = np.arange(self.n)
        leaf = nodes >= lp.leaves
        index[:, self.n] = np.where(leaf, self.step0 + nodes - lp.leaves, self.node_col[nodes])
        index[:, self.n + 1] = pc
        value = np.empty((k, self.n + 2))
        value[:, : self.n] = self._row_counts(segments, nodes)
        value[:, self.n :] = 1.0
        self._add_rows(np.zeros(k), np.full(k, self.inf), index, value)
        keys = self.key(segments, nodes)
        if self._pruned:
            self._returned.update(k for k in keys.tolist() if k in self._pruned)
        self.row_keys = np.concatenate([self.row_keys, keys])
        self.present.update(keys.tolist())
        self.solved = False

    def _row_counts(self, segments: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """Generated rows' alpha coefficients: ``-c[i, p, s]``, plus ``c[i, m(t), t]`` at a leaf."""
        counts = -self.lp.segment_counts(segments)
        leaf = np.flatnonzero(nodes >= self.lp.leaves)
        counts[leaf] += self.merge_counts[nodes[leaf] - self.lp.leaves]
        return counts

    @property
    def iterations(self) -> int:
        return self._iterations

    def prune(self, *, every: bool = False) -> int:
        """Delete generated rows whose slack is basic, keeping re-solves fast.

        Such rows are not binding, so the current basis stays optimal without them; a deleted row
        that becomes violated again is found and re-added by the next search, so pruning never
        changes the optimum, only the LP size. A row that already came back once is kept (unless
        ``every``): pruning it again is what made some LPs re-add the same rows for hundreds of
        rounds.
        """
        status = self.h.getBasis().row_status[self.base_rows :]
        basic = self._hs.HighsBasisStatus.kBasic
        is_basic = np.fromiter((s == basic for s in status), bool, count=len(status))
        candidate = is_basic
        if not every and self._returned:
            returned = self._returned
            candidate &= np.fromiter(
                (k not in returned for k in self.row_keys.tolist()), bool, count=len(self.row_keys)
            )
        drop = np.flatnonzero(candidate)
        if len(drop):
            self.h.deleteRows(len(drop), (self.base_rows + drop).astype(np.int32))
            dropped = self.row_keys[drop].tolist()
            self.present.difference_update(dropped)
            if not every:
                self._pruned.update(dropped)
            self.row_keys = np.delete(self.row_keys, drop)
            self.solved = False
        return len(drop)

    def snapshot(self) -> _Snapshot:
        """The model, its basis and the bookkeeping of its rows, for :meth:`retarget`."""
        return _Snapshot(
            self.lp,
            self.h.getLp(),
            self.h.getBasis(),
            set(self.present),
            dict(self.pair_col),
            self.row_keys.copy(),
            self.ncols,
        )

    def retarget(self, lp: MixtureLP, origin: _Snapshot | None = None) -> None:
        """Put the counts of ``lp`` in place of the current LP's, keeping rows, columns and basis.

        ``lp`` must have the current LP's structure (the same pair codes, segments and steps; see
        :func:`same_structure`): then every row of the model is a constraint of ``lp``'s LP too,
        and only the coefficients of ``alpha`` change (in the leaf rows and the generated rows).
        The model is passed back to HiGHS with its last basis, so the next solve starts from it.
        With ``origin`` (a :meth:`snapshot`), the model and basis of the snapshot are used instead
        of the current ones: the bootstrap starts every replicate from the full sample's optimum,
        not from the previous replicate's larger model.
        """
        if not same_structure(self.lp if origin is None else origin.lp, lp):
            raise ValueError("retarget needs an LP with the same pairs, segments and steps")
        if origin is not None:
            # A new solve from the snapshot: no row of it has been pruned yet.
            self._pruned, self._returned = set(), set()
            self.present = set(origin.present)
            self.pair_col = dict(origin.pair_col)
            self.row_keys = origin.row_keys.copy()
            self.ncols = origin.ncols
        model = self.h.getLp() if origin is None else origin.model
        a = model.a_matrix_
        if a.format_ != self._hs.MatrixFormat.kColwise:
            raise SolverError("internal error: HiGHS returned a row-wise matrix")
        start = np.asarray(a.start_, dtype=np.int64)
        index = np.asarray(a.index_, dtype=np.int32)
        value = np.asarray(a.value_, dtype=float)
        n, steps = self.n, lp.steps
        width = 2 * lp.leaves
        rows = np.concatenate([[0], 1 + np.arange(steps), self.base_rows + np.arange(len(self.row_keys))])
        self.lp, self.merge_counts = lp, lp.merge_counts()
        counts = np.concatenate(
            [
                np.ones((1, n)),
                self.merge_counts,
                self._row_counts(self.row_keys // width, self.row_keys % width),
            ]
        )
        cols_i: list[np.ndarray] = []
        cols_v: list[np.ndarray] = []
        for i in range(n):
            keep = counts[:, i] != 0.0
            cols_i.append(rows[keep])
            cols_v.append(counts[keep, i])
        lengths = np.array([len(c) for c in cols_i], dtype=np.int64)
        new_start = np.concatenate([[0], np.cumsum(lengths), np.sum(lengths) + start[n + 1 :] - start[n]])
        a.start_ = new_start.astype(np.int32)
        a.index_ = np.concatenate([*cols_i, index[start[n] :]]).astype(np.int32)
        a.value_ = np.concatenate([*cols_v, value[start[n] :]])
        model.a_matrix_ = a
        basis = self.h.getBasis() if origin is None else origin.basis
        self.h.passModel(model)
        if basis.valid:
            self.h.setBasis(basis)
        self.lp = lp
        self.solved = False

    def final_rows(self) -> _Duals:
        """Generated rows in model order, and HiGHS's duals when they describe this model."""
        out = _Duals(self.row_keys.copy())
        if not self.solved:
            return out
        sol = self.h.getSolution()
        if not getattr(sol, "dual_valid", False):
            return out
        row_dual = np.asarray(sol.row_dual, dtype=float)
        col_dual = np.asarray(sol.col_dual, dtype=float)
        if len(row_dual) != self.h.getNumRow() or len(col_dual) != self.columns:
            return out
        steps = self.lp.steps
        out.row_duals = row_dual[self.base_rows :].copy()
        # Every constraint of step t holds v_t (cost 1): their duals sum to 1 - its reduced cost.
        out.step_duals = 1.0 - col_dual[self.step0 : self.step0 + steps]
        out.alpha_reduced_costs = col_dual[: self.n].copy()
        out.simplex_dual = float(row_dual[0])
        return out

    def solve(self, time_limit: float | None) -> _Solution:
        # HiGHS measures its time limit against the run time summed over every run of the model.
        limit = self.h.getRunTime() + float(time_limit) if time_limit is not None else self.inf
        self.h.setOptionValue("time_limit", limit)
        self.h.run()
        self._iterations += int(self.h.getInfo().simplex_iteration_count)
        status = self.h.getModelStatus()
        ms = self._hs.HighsModelStatus
        if status == ms.kOptimal:
            state = "optimal"
        elif status in (ms.kTimeLimit, ms.kIterationLimit):
            state = "time_limit"
        else:
            raise SolverError(
                f"internal error: HiGHS reported '{self.h.modelStatusToString(status)}' for the "
                f"mixture LP, which is always feasible and bounded; please report this with --debug "
                f"output"
            )
        x = np.asarray(self.h.getSolution().col_value)
        if len(x) != self.columns:
            raise SolverError("internal error: HiGHS returned no solution for the mixture LP")
        self.solved = True
        obj = float(self.h.getInfo().objective_function_value)
        vp = {k: float(x[c]) for k, c in self.pair_col.items()}
        return state, obj, x[: self.n].copy(), x[self.step0 : self.step0 + self.lp.steps].copy(), vp


# PuLP statuses (3.x ``LpStatus`` codes; 4.0's ``LpSolveStatus`` keeps their numbers) that mean
# "stopped early": 0 (Not Solved: CBC hit its time limit, 3.x), -4 TimeLimit, -8 IterationLimit (4.0).
_PULP_STOPPED = (0, -4, -8)


def pulp_cbc(pulp: Any, *, time_limit: float | None = None) -> Any:
    """CBC through the API the installed PuLP supports, silent (``msg=False``).

    ``COIN_CMD`` first: the only CBC interface of PuLP 4 (a ``cbc`` from the ``cbcbox`` wheel that
    ``pip install 'pulp[cbc]'`` brings, or one on PATH), and a ``cbc`` on PATH for PuLP 2.x/3.x.
    Then ``PULP_CBC_CMD``, the CBC binary bundled with PuLP < 4, deprecated in PuLP 3.3 (its
    DeprecationWarning is ours to heed, not the user's: it is silenced here since ``COIN_CMD`` was
    tried first). Raises :class:`MissingDependencyError` when neither finds a CBC.
    """
    coin = pulp.COIN_CMD(msg=False, timeLimit=time_limit)
    if coin.available():
        return coin
    legacy = getattr(pulp, "PULP_CBC_CMD", None)
    if legacy is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*PULP_CBC_CMD", category=DeprecationWarning)
            bundled = legacy(msg=False, timeLimit=time_limit)
        if bundled.available():
            return bundled
    raise MissingDependencyError(
        "PuLP finds no CBC solver here; run: pip install 'pulp[cbc]' (or put a cbc executable on "
        "PATH), or use --solver highs"
    )


def _pulp_status_text(pulp: Any, code: int) -> str:
    """The name PuLP gives a solve status (``LpStatus`` in 3.x, ``LpSolveStatus`` in 4.0)."""
    table = getattr(pulp, "LpStatus", None)
    if isinstance(table, dict) and code in table:
        return str(table[code])
    enum = getattr(pulp, "LpSolveStatus", None)
    try:
        return str(enum(code).name) if enum is not None else str(code)
    except ValueError:
        return str(code)


class PulpBackend(_Backend):
    """Any PuLP solver. PuLP hands the whole model to the solver at every solve.

    Written against the API common to PuLP 2.8 to 4.x: variables are created by the problem
    (``add_variable``, PuLP >= 3.3) where it can, expressions from term lists (``from_list`` in
    4.0), and ``solve`` returning an integer status (3.x) or an object with ``.status`` (4.0).
    """

    def __init__(self, lp: MixtureLP, solver: str) -> None:
        super().__init__(lp)
        try:
            import pulp
        except ImportError as exc:  # pragma: no cover - pulp is a core dependency
            raise MissingDependencyError("PuLP is not installed; run: pip install pulp") from exc
        self._pulp = pulp
        self.solver_name = solver
        self.name = f"pulp:{solver}"
        n, steps = lp.n, lp.steps
        prob = pulp.LpProblem("mixture", pulp.LpMinimize)
        self.prob = prob
        # LpVariable(...) is deprecated in PuLP 3.3 (one warning per variable) and gone in 4.0.
        add = getattr(prob, "add_variable", None)
        self._new_var: Any = add if add is not None else pulp.LpVariable
        self._expr: Any = getattr(pulp.LpAffineExpression, "from_list", pulp.LpAffineExpression)
        self.alpha = [self._new_var(f"a{i}", 0, 1) for i in range(n)]
        self.v_step = [self._new_var(f"t{k}", 0) for k in range(steps)]
        self.mu = {int(node): self._new_var(f"m{node}", 0) for node in lp.tree_nodes()}
        self.objective_terms: list[Any] = list(self.v_step)
        prob += pulp.lpSum(self.objective_terms)
        prob += pulp.lpSum(self.alpha) == 1
        for k, row in enumerate(lp.merge_counts().tolist()):
            terms = [(self.alpha[i], c) for i, c in enumerate(row) if c != 0.0]
            terms += [(self.v_step[k], 1.0), (self.mu[lp.leaves + k], -1.0)]
            prob += self._expr(terms) >= 0
        for parent, child in zip(*(e.tolist() for e in lp.tree_edges()), strict=True):
            prob += self.mu[child] - self.mu[parent] >= 0
        self.generated = 0

    @property
    def rows(self) -> int:
        return int(self.prob.numConstraints()) - 1

    @property
    def columns(self) -> int:
        return self.n + len(self.v_step) + len(self.mu) + len(self.pair_col)

    def _solver(self, time_limit: float | None) -> Any:
        pulp = self._pulp
        if self.solver_name in ("cbc", "COIN_CMD", "PULP_CBC_CMD"):
            return pulp_cbc(pulp, time_limit=time_limit)
        name = {"highs": "HiGHS"}.get(self.solver_name, self.solver_name)
        try:
            solver = pulp.getSolver(name, msg=False, timeLimit=time_limit)
        except Exception as exc:
            raise UsageError(
                f"PuLP does not know the solver {self.solver_name!r} ({exc}); "
                f"available here: {', '.join(pulp.listSolvers(onlyAvailable=True))}"
            ) from exc
        if not solver.available():
            raise MissingDependencyError(
                f"the PuLP solver {self.solver_name!r} is not available on this machine; "
                f"available: {', '.join(pulp.listSolvers(onlyAvailable=True))}"
            )
        return solver

    def add_rows(self, segments: np.ndarray, nodes: np.ndarray) -> None:
        pairs = self.lp.seg_pair[segments]
        for p in np.unique(pairs).tolist():
            if p not in self.pair_col:
                self.pair_col[p] = var = self._new_var(f"p{p}", 0)
                cost = 1.0 if self.lp.pair_cost is None else float(self.lp.pair_cost[p])
                self.objective_terms.append(var if cost == 1.0 else cost * var)
        counts = self.lp.segment_counts(segments).tolist()
        for p, node, row in zip(pairs.tolist(), nodes.tolist(), counts, strict=True):
            terms = [(a, -c) for a, c in zip(self.alpha, row, strict=True) if c != 0.0]
            terms += [(self.mu[node], 1.0), (self.pair_col[p], 1.0)]
            self.prob += self._expr(terms) >= 0
        self.present.update(self.key(segments, nodes).tolist())

    def solve(self, time_limit: float | None) -> _Solution:
        pulp = self._pulp
        self.prob.setObjective(pulp.lpSum(self.objective_terms))
        outcome = self.prob.solve(self._solver(time_limit))
        code = int(getattr(outcome, "status", outcome))  # PuLP 4.0 returns LpSolveStats
        if code == 1:
            state = "optimal"
        elif code in _PULP_STOPPED:
            state = "time_limit"
        else:
            raise SolverError(
                f"internal error: {self.name} reported '{_pulp_status_text(pulp, code)}' for the "
                f"mixture LP, which is always feasible and bounded; please report this with --debug output"
            )

        def val(v: Any) -> float:
            return float(v.value() or 0.0)

        return (
            state,
            float(pulp.value(self.prob.objective) or 0.0),
            np.array([val(a) for a in self.alpha]),
            np.array([val(v) for v in self.v_step]),
            {k: val(v) for k, v in self.pair_col.items()},
        )


def make_backend(solver: str, lp: MixtureLP) -> tuple[_Backend, list[str]]:
    """The backend for ``--solver`` (``auto``, ``highs``, ``cbc`` or ``pulp:NAME``), with notices."""
    notes: list[str] = []
    if solver in ("auto", "highs"):
        try:
            return HighsBackend(lp), notes
        except MissingDependencyError:
            if solver == "highs":
                raise
            notes.append("highspy is not installed: solving with CBC through PuLP (slower)")
            return PulpBackend(lp, "cbc"), notes
    if solver == "cbc":
        return PulpBackend(lp, "cbc"), notes
    if solver.startswith("pulp:") and len(solver) > 5:
        return PulpBackend(lp, solver[5:]), notes
    raise UsageError(f"unknown --solver {solver!r}; use auto, highs, cbc or pulp:NAME (a PuLP solver)")


def solve(
    lp: MixtureLP,
    *,
    solver: str = "auto",
    time_limit: float | None = None,
    rows_per_round: int | None = None,
    progress: ProgressCallback = noop,
    backend: _Backend | None = None,
    keep_snapshot: bool = False,
) -> tuple[SolveResult, list[str]]:
    """Solve the mixture LP lazily; return the result and notices (e.g. a solver fallback).

    ``keep_snapshot``: with HiGHS, keep the final model and basis in ``result.snapshot``.

    ``rows_per_round`` caps the rows added per round (default :func:`rows_per_round_for`).
    ``backend``: a backend already holding rows (and a basis) for an LP of the same structure,
    retargeted to ``lp`` (:meth:`HighsBackend.retarget`); it is solved first and grown from
    there (the bootstrap's warm start). Default: a new one for ``solver``.
    """
    if rows_per_round is None:
        rows_per_round = rows_per_round_for(lp.steps)
    t0 = time.monotonic()
    alpha = np.full(lp.n, 1.0 / lp.n)
    v_step = np.zeros(lp.steps)
    v_pair = np.zeros(lp.pairs)
    rounds = 0
    objective = 0.0
    status = "optimal"
    solver_seconds = 0.0
    if backend is None:
        backend, notes = make_backend(solver, lp)
    else:
        notes = []
        if backend.lp is not lp:
            raise ValueError("retarget the backend to this LP before solving it")
        state, objective, alpha, v_step, vp = backend.solve(time_limit)
        solver_seconds = time.monotonic() - t0
        alpha = np.clip(alpha, 0.0, None)
        alpha = alpha / alpha.sum() if alpha.sum() > 0 else np.full(lp.n, 1.0 / lp.n)
        if vp:
            v_pair[np.fromiter(vp.keys(), np.int64)] = np.fromiter(vp.values(), float)
        if state == "time_limit":
            status = "time_limit"
    max_violation = 0.0
    history: list[dict[str, float]] = []
    estimate = estimate_seconds(lp.steps, lp.n, lp.pairs)
    short = _duration(estimate)
    about = f"estimated {short} for {lp.steps:,} merges, {lp.n} categories, {lp.pairs:,} pairs"
    while status == "optimal":
        s0 = time.monotonic()
        segments, nodes, viol = lp.violations(alpha, v_step, v_pair)
        keys = backend.key(segments, nodes)
        fresh = np.fromiter((k not in backend.present for k in keys.tolist()), bool, count=len(keys))
        segments, nodes, viol = segments[fresh], nodes[fresh], viol[fresh]
        max_violation = float(viol.max()) if len(viol) else 0.0
        search = time.monotonic() - s0
        history.append(
            {
                "round": rounds,
                "violated": len(viol),
                "objective": objective,
                "max_violation": max_violation,
                "search_seconds": search,
            }
        )
        # The bar runs in seconds against the estimate (stretched while a run outlasts it), so the
        # terminal can show an ETA; the rounds and violations are in the text.
        elapsed = time.monotonic() - t0
        if len(viol):
            progress(
                Progress(
                    "solve",
                    elapsed,
                    max(estimate, 1.1 * elapsed + 1.0),
                    "s",
                    f"round {rounds}: {len(viol):,} violated; " + (about if rounds == 0 else f"est. {short}"),
                )
            )
        if len(viol) == 0:
            break
        if time_limit is not None and time.monotonic() - t0 > time_limit:
            status = "time_limit"
            break
        if len(viol) > rows_per_round:
            top = np.argpartition(-viol, rows_per_round)[:rows_per_round]
            segments, nodes = segments[top], nodes[top]
        order = np.lexsort((nodes, segments))
        s0 = time.monotonic()
        backend.add_rows(segments[order], nodes[order])
        history[-1]["added"] = len(segments)
        history[-1]["add_seconds"] = time.monotonic() - s0
        remaining = None if time_limit is None else max(time_limit - (time.monotonic() - t0), 1.0)
        s0 = time.monotonic()
        iterations = backend.iterations
        state, objective, alpha, v_step, vp = backend.solve(remaining)
        history[-1]["solve_seconds"] = time.monotonic() - s0
        history[-1]["iterations"] = backend.iterations - iterations
        history[-1]["rows"] = backend.rows
        solver_seconds += time.monotonic() - s0
        rounds += 1
        alpha = np.clip(alpha, 0.0, None)
        alpha = alpha / alpha.sum() if alpha.sum() > 0 else np.full(lp.n, 1.0 / lp.n)
        v_pair = np.zeros(lp.pairs)
        if vp:
            v_pair[np.fromiter(vp.keys(), np.int64)] = np.fromiter(vp.values(), float)
        if state == "time_limit":
            status = "time_limit"
            break
        if len(backend.present) > PRUNE_MIN and len(viol) > rows_per_round:
            history[-1]["pruned"] = backend.prune()
    elapsed = time.monotonic() - t0
    progress(Progress("solve", elapsed, elapsed, "s", f"{status} after {rounds} rounds"))
    result = SolveResult(
        proportions=alpha,
        status=status,
        objective=objective,
        rounds=rounds,
        constraints=backend.rows,
        variables=backend.columns,
        max_violation=max_violation,
        backend=backend.name,
        seconds=solver_seconds,
        history=history,
        warnings=list(lp.warnings),
        details=_details(lp, backend, v_step, v_pair),
        snapshot=backend.snapshot() if keep_snapshot and isinstance(backend, HighsBackend) else None,
    )
    return result, notes


def _details(lp: MixtureLP, backend: _Backend, v_step: np.ndarray, v_pair: np.ndarray) -> LPDetails:
    """Package the final solution's slacks, rows and duals (:class:`LPDetails`)."""
    columns = np.array(sorted(backend.pair_col), dtype=np.int64)
    final = backend.final_rows()
    width = 2 * lp.leaves
    segments, nodes = final.row_keys // width, final.row_keys % width
    node_lo, node_hi = lp.node_bounds(nodes) if len(nodes) else (nodes, nodes)
    first = np.maximum(node_lo, lp.seg_lo[segments]) + lp.start
    end = np.minimum(node_hi, lp.seg_hi[segments]) + lp.start
    return LPDetails(
        start=lp.start,
        units=lp.units.copy(),
        step_slack=np.asarray(v_step, dtype=float).copy(),
        pair_codes=lp.codes[columns],
        pair_slack=np.asarray(v_pair, dtype=float)[columns],
        row_pair_codes=lp.codes[lp.seg_pair[segments]],
        row_first_step=first.astype(np.int64),
        row_end_step=end.astype(np.int64),
        row_duals=final.row_duals,
        step_duals=final.step_duals,
        alpha_reduced_costs=final.alpha_reduced_costs,
        simplex_dual=final.simplex_dual,
    )
