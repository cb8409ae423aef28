"""The linear program of Hayase et al. (2024), solved by lazy constraint and variable generation.

Variables: ``alpha`` (one per category, on the simplex), a slack ``v_t`` per merge step and a slack
``v_p`` per pair. For every step ``t`` and pair ``p != m(t)``::

    v_t + v_p + sum_i alpha_i * (c[i, m(t), t] - c[i, p, t]) >= 0

minimising ``sum v_t + sum v_p``. Counts are per million bytes of each category's sample, so
``alpha`` are byte proportions (and the numbers sit well above solver tolerances).

The full LP has (merges x pairs) rows. We start with none and repeat: solve the LP over the rows and
columns generated so far, then find the constraints the current solution violates and add the worst
ones (with any new ``v_t``/``v_p`` columns they need). The search for violations is exact and walks
the merge steps through the per-step deltas, in vectorised form: a pair's mixture count is
piecewise constant between the steps where a delta touches it (a *segment*), so over a segment the
most violated constraint is the one at the step with the smallest threshold ``s_m(t) + v_t``, which
a sparse range-minimum table over the steps returns in O(1). This plays the part of the priority
queue over pairs of the paper's implementation (each segment is an insertion into that queue) with
one numpy pass per round and no restart cost. When no constraint is violated (beyond a tolerance),
the LP solution is optimal for the full problem.

Two backends: :class:`HighsBackend` drives HiGHS through ``highspy`` incrementally (rows and columns
are added to the live model and the dual simplex warm-starts from the last basis); :class:`PulpBackend`
rebuilds the model through PuLP each round, so any solver PuLP supports can be used (CBC ships with
PuLP; Gurobi or CPLEX where installed).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixinfer.errors import MissingDependencyError, SolverError, UsageError
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.replay import Trace

SOLVERS = ("auto", "highs", "cbc")
# Counts are expressed per this many bytes of a category's sample.
SCALE = 1e6
# A constraint counts as violated only beyond this (in counts per million bytes).
TOLERANCE = 1e-6
# Rows added per round: the most violated first. Larger batches change speed, not the optimum.
ROWS_PER_ROUND = 4000
PER_STEP = 16
PRUNE_FACTOR = 2
PRUNE_SLACK = 1e-3


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


@dataclass
class RowData:
    """The per-category counts behind a batch of rows (scaled; shape (k, n) each).

    ``segment`` identifies the stretch of steps over which a pair's counts are constant, so rows of
    one pair within one segment can share a single expression for its mixture count.
    """

    merge: np.ndarray
    pair: np.ndarray
    segment: np.ndarray

    @property
    def coefficients(self) -> np.ndarray:
        """``c[i, m(t), t] - c[i, p, t]``."""
        return self.merge - self.pair


_Solution = tuple[str, float, np.ndarray, dict[int, float], dict[int, float]]


class _Backend(ABC):
    """Bookkeeping common to backends: which steps and pairs already have a slack column."""

    name = "base"

    def __init__(self, n: int) -> None:
        self.n = n
        self.step_col: dict[int, int] = {}
        self.pair_col: dict[int, int] = {}
        self.ncols = n
        self.rows = 0
        # (step, pair) of every constraint row, in row order (the simplex row excluded).
        self.row_steps = np.zeros(0, dtype=np.int64)
        self.row_pairs = np.zeros(0, dtype=np.int64)

    @property
    def columns(self) -> int:
        return self.ncols

    def _columns_for(self, steps: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Column indices of the slacks of these rows, creating the missing ones (appended)."""
        before = self.ncols
        for keys, table in ((steps, self.step_col), (pairs, self.pair_col)):
            for k in np.unique(keys).tolist():
                if k not in table:
                    table[k] = self.ncols
                    self.ncols += 1
        sc = np.fromiter((self.step_col[k] for k in steps.tolist()), np.int32, count=len(steps))
        pc = np.fromiter((self.pair_col[k] for k in pairs.tolist()), np.int32, count=len(pairs))
        return sc, pc, self.ncols - before

    def _record(self, steps: np.ndarray, pairs: np.ndarray) -> None:
        self.row_steps = np.concatenate([self.row_steps, steps])
        self.row_pairs = np.concatenate([self.row_pairs, pairs])
        self.rows = len(self.row_steps)

    def prune(self, slack_tol: float) -> tuple[np.ndarray, np.ndarray]:
        """Drop rows that are not binding; return their (steps, pairs). Default: keep all."""
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    @abstractmethod
    def add_rows(self, steps: np.ndarray, pairs: np.ndarray, rows: RowData) -> None:
        """Add rows ``v_t + v_p + (merge - pair) . alpha >= 0``, creating missing columns."""

    @abstractmethod
    def solve(self, time_limit: float | None) -> _Solution:
        """Solve; return (status, objective, alpha, v_t by step, v_p by pair)."""


class HighsBackend(_Backend):
    """HiGHS through ``highspy``: one live model, grown in place and warm-started."""

    name = "highs"

    def __init__(self, n: int) -> None:
        super().__init__(n)
        try:
            import highspy
        except ImportError as exc:
            raise MissingDependencyError(
                "highspy is not installed; run: pip install highspy (or use --solver cbc)"
            ) from exc
        self._hs = highspy
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        # Re-solves start from the previous basis; presolve would only get in the way.
        self.h.setOptionValue("presolve", "off")
        self.h.setOptionValue("solver", "simplex")
        # Devex pricing: the LP has many more rows than columns, where steepest edge costs more
        # per iteration than it saves (measured about 1.6x faster on the demo LP).
        self.h.setOptionValue("simplex_dual_edge_weight_strategy", 1)
        self.inf = highspy.kHighsInf
        self.merge_col: dict[int, int] = {}
        self.segment_col: dict[int, int] = {}
        # Per HiGHS row: True for a constraint row, False for the simplex and definition rows.
        self.is_constraint = np.zeros(1, dtype=bool)
        empty_i = np.zeros(0, dtype=np.int32)
        self.h.addCols(n, np.zeros(n), np.zeros(n), np.ones(n), 0, empty_i, empty_i, np.zeros(0))
        self.h.addRows(
            1,
            np.ones(1),
            np.ones(1),
            n,
            np.zeros(1, dtype=np.int32),
            np.arange(n, dtype=np.int32),
            np.ones(n),
        )

    def _add_cols(self, count: int, cost: float) -> None:
        if count:
            empty_i = np.zeros(0, dtype=np.int32)
            self.h.addCols(
                count,
                np.full(count, cost),
                np.zeros(count),
                np.full(count, self.inf),
                0,
                empty_i,
                empty_i,
                np.zeros(0),
            )

    def _add_sparse_rows(
        self, lower: np.ndarray, upper: np.ndarray, index: np.ndarray, value: np.ndarray
    ) -> None:
        nonzero = value != 0.0
        k = len(lower)
        starts = np.zeros(k, dtype=np.int32)
        starts[1:] = np.cumsum(nonzero.sum(axis=1))[:-1]
        self.h.addRows(k, lower, upper, int(nonzero.sum()), starts, index[nonzero], value[nonzero])

    def _definitions(self, keys: np.ndarray, counts: np.ndarray, table: dict[int, int]) -> np.ndarray:
        """Columns holding ``sum_i counts_i alpha_i`` for each key, defined once per key."""
        uniq, first = np.unique(keys, return_index=True)
        fresh = np.fromiter((k not in table for k in uniq.tolist()), bool, count=len(uniq))
        new_keys, new_rows = uniq[fresh], first[fresh]
        m = len(new_keys)
        if m:
            cols = np.arange(self.ncols, self.ncols + m)
            for k, c in zip(new_keys.tolist(), cols.tolist(), strict=True):
                table[k] = c
            self.ncols += m
            self._add_cols(m, 0.0)
            # Row: column - sum_i counts_i alpha_i = 0.
            index = np.empty((m, self.n + 1), dtype=np.int32)
            index[:, : self.n] = np.arange(self.n, dtype=np.int32)
            index[:, self.n] = cols
            value = np.empty((m, self.n + 1))
            value[:, : self.n] = -counts[new_rows]
            value[:, self.n] = 1.0
            self._add_sparse_rows(np.zeros(m), np.zeros(m), index, value)
            self.is_constraint = np.concatenate([self.is_constraint, np.zeros(m, dtype=bool)])
        return np.fromiter((table[k] for k in keys.tolist()), np.int32, count=len(keys))

    def add_rows(self, steps: np.ndarray, pairs: np.ndarray, rows: RowData) -> None:
        # Each row is v_t + v_p + w_t - z_s >= 0, with w_t (the merge's mixture count at step t)
        # and z_s (the pair's mixture count over its segment) defined once and shared: rows stay
        # 4 entries long instead of one entry per category, which makes simplex steps cheap.
        sc, pc, new = self._columns_for(steps, pairs)
        self._add_cols(new, 1.0)
        wc = self._definitions(steps, rows.merge, self.merge_col)
        zc = self._definitions(rows.segment, rows.pair, self.segment_col)
        k = len(steps)
        index = np.stack([sc, pc, wc, zc], axis=1).astype(np.int32)
        value = np.tile(np.array([1.0, 1.0, 1.0, -1.0]), (k, 1))
        self._add_sparse_rows(np.zeros(k), np.full(k, self.inf), index, value)
        self.is_constraint = np.concatenate([self.is_constraint, np.ones(k, dtype=bool)])
        self._record(steps, pairs)

    def prune(self, slack_tol: float) -> tuple[np.ndarray, np.ndarray]:
        """Delete rows with slack (not binding at the current optimum) to keep re-solves fast.

        A deleted row whose constraint becomes violated again is found and re-added by the next
        violation search, so pruning never changes the optimum, only the LP size.
        """
        rows = np.flatnonzero(self.is_constraint)
        activity = np.asarray(self.h.getSolution().row_value)[rows]
        drop = np.flatnonzero(activity > slack_tol)
        if len(drop) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        self.h.deleteRows(len(drop), rows[drop].astype(np.int32))
        self.is_constraint = np.delete(self.is_constraint, rows[drop])
        gone_s, gone_p = self.row_steps[drop], self.row_pairs[drop]
        keep = np.ones(len(self.row_steps), dtype=bool)
        keep[drop] = False
        self.row_steps, self.row_pairs = self.row_steps[keep], self.row_pairs[keep]
        self.rows = len(self.row_steps)
        return gone_s, gone_p

    def solve(self, time_limit: float | None) -> _Solution:
        self.h.setOptionValue("time_limit", float(time_limit) if time_limit else self.inf)
        self.h.run()
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
        obj = float(self.h.getInfo().objective_function_value)
        vt = {k: float(x[c]) for k, c in self.step_col.items()}
        vp = {k: float(x[c]) for k, c in self.pair_col.items()}
        return state, obj, x[: self.n].copy(), vt, vp


class PulpBackend(_Backend):
    """Any PuLP solver; the model is rebuilt from all rows at every solve."""

    def __init__(self, n: int, solver: str) -> None:
        super().__init__(n)
        try:
            import pulp
        except ImportError as exc:  # pragma: no cover - pulp is a core dependency
            raise MissingDependencyError("PuLP is not installed; run: pip install pulp") from exc
        self._pulp = pulp
        self.solver_name = solver
        self.name = f"pulp:{solver}"
        self.all_steps: list[np.ndarray] = []
        self.all_pairs: list[np.ndarray] = []
        self.all_coefs: list[np.ndarray] = []

    def _solver(self, time_limit: float | None) -> Any:
        pulp = self._pulp
        name = {"cbc": "PULP_CBC_CMD", "highs": "HiGHS"}.get(self.solver_name, self.solver_name)
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

    def add_rows(self, steps: np.ndarray, pairs: np.ndarray, rows: RowData) -> None:
        self._columns_for(steps, pairs)
        self.all_steps.append(steps)
        self.all_pairs.append(pairs)
        self.all_coefs.append(rows.coefficients)
        self._record(steps, pairs)

    def solve(self, time_limit: float | None) -> _Solution:
        pulp = self._pulp
        prob = pulp.LpProblem("mixture", pulp.LpMinimize)
        alpha = [pulp.LpVariable(f"a{i}", 0, 1) for i in range(self.n)]
        vt = {k: pulp.LpVariable(f"t{k}", 0) for k in self.step_col}
        vp = {k: pulp.LpVariable(f"p{k}", 0) for k in self.pair_col}
        prob += pulp.lpSum(vt.values()) + pulp.lpSum(vp.values())
        prob += pulp.lpSum(alpha) == 1
        if self.all_steps:
            steps = np.concatenate(self.all_steps).tolist()
            pairs = np.concatenate(self.all_pairs).tolist()
            coefs = np.concatenate(self.all_coefs).tolist()
            for s, p, row in zip(steps, pairs, coefs, strict=True):
                terms = [(alpha[i], c) for i, c in enumerate(row) if c != 0.0]
                terms += [(vt[s], 1.0), (vp[p], 1.0)]
                prob += pulp.LpAffineExpression(terms) >= 0
        status = prob.solve(self._solver(time_limit))
        name = pulp.LpStatus[status]
        if name == "Optimal":
            state = "optimal"
        elif name == "Not Solved":
            state = "time_limit"
        else:
            raise SolverError(
                f"internal error: {self.name} reported '{name}' for the mixture LP, which is always "
                f"feasible and bounded; please report this with --debug output"
            )

        def val(v: Any) -> float:
            return float(v.value() or 0.0)

        return (
            state,
            float(pulp.value(prob.objective) or 0.0),
            np.array([val(a) for a in alpha]),
            {k: val(v) for k, v in vt.items()},
            {k: val(v) for k, v in vp.items()},
        )


def make_backend(solver: str, n: int) -> tuple[_Backend, list[str]]:
    """The backend for ``--solver`` (``auto``, ``highs``, ``cbc`` or ``pulp:NAME``), with notices."""
    notes: list[str] = []
    if solver in ("auto", "highs"):
        try:
            return HighsBackend(n), notes
        except MissingDependencyError:
            if solver == "highs":
                raise
            notes.append("highspy is not installed: solving with CBC through PuLP (slower)")
            return PulpBackend(n, "cbc"), notes
    if solver == "cbc":
        return PulpBackend(n, "cbc"), notes
    if solver.startswith("pulp:") and len(solver) > 5:
        return PulpBackend(n, solver[5:]), notes
    raise UsageError(f"unknown --solver {solver!r}; use auto, highs, cbc or pulp:NAME (a PuLP solver)")


class _SparseMin:
    """Range minimum (and its position) over a fixed array, O(1) per query after O(n log n)."""

    def __init__(self, values: np.ndarray) -> None:
        self.levels = [values]
        self.where = [np.arange(len(values))]
        width = 1
        while 2 * width <= len(values):
            prev, pw = self.levels[-1], self.where[-1]
            a, b = prev[: len(prev) - width], prev[width:]
            take_b = b < a
            self.levels.append(np.where(take_b, b, a))
            self.where.append(np.where(take_b, pw[width:], pw[: len(pw) - width]))
            width *= 2

    def query(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Minimum of ``values[lo:hi]`` and its index, for arrays of non-empty ranges."""
        length = hi - lo
        k = np.floor(np.log2(length)).astype(np.int64)
        out_v = np.empty(len(lo))
        out_i = np.empty(len(lo), dtype=np.int64)
        for level in np.unique(k).tolist():
            sel = k == level
            vals, idx = self.levels[level], self.where[level]
            l1 = lo[sel]
            l2 = hi[sel] - (1 << level)
            first = vals[l1] <= vals[l2]
            out_v[sel] = np.where(first, vals[l1], vals[l2])
            out_i[sel] = np.where(first, idx[l1], idx[l2])
        return out_v, out_i


def _cover_argmax(lo: np.ndarray, hi: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """For each position in ``range(n)``, the largest ``rank`` of the ranges ``[lo, hi)`` covering it.

    Each range is written into the two power-of-two blocks that cover it (as in a sparse table),
    then blocks are pushed down level by level; -1 where no range covers a position.
    """
    k = np.floor(np.log2(hi - lo)).astype(np.int64)
    top = int(k.max()) if len(k) else 0
    levels = [np.full(n - (1 << j) + 1, -1, dtype=np.int64) for j in range(top + 1)]
    for j in np.unique(k).tolist():
        sel = k == j
        np.maximum.at(levels[j], lo[sel], rank[sel])
        np.maximum.at(levels[j], hi[sel] - (1 << j), rank[sel])
    for j in range(top, 0, -1):
        half = 1 << (j - 1)
        upper, lower = levels[j], levels[j - 1]
        m = len(upper)
        np.maximum(lower[:m], upper, out=lower[:m])
        np.maximum(lower[half : half + m], upper, out=lower[half : half + m])
    return levels[0]


class MixtureLP:
    """The constraint data of the mixture LP for given traces, and the violation search."""

    def __init__(
        self,
        traces: Sequence[Trace],
        sample_bytes: Sequence[int],
        merge_codes: np.ndarray,
        *,
        start: int = 0,
    ) -> None:
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
        self.cat_count: list[np.ndarray] = []
        for i in range(self.n):
            sel = cat == i
            k_i, p_i, v_i = key[sel], pair[sel], val[sel]
            # Several deltas of one pair at one step cannot happen (deltas are summed per step).
            cs = np.cumsum(v_i)
            pf = np.ones(len(p_i), dtype=bool)
            pf[1:] = p_i[1:] != p_i[:-1]
            base = np.maximum.accumulate(np.where(pf, np.arange(len(p_i)), 0))
            self.cat_key.append(k_i)
            self.cat_pair.append(p_i)
            self.cat_count.append(cs - cs[base] + v_i[base])

    @property
    def pairs(self) -> int:
        """Distinct pairs seen in any category or merge."""
        return len(self.codes)

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

    def row_data(self, steps: np.ndarray, pairs: np.ndarray) -> RowData:
        """Per-category counts of the merge and of the pair for each requested (t, p)."""
        merge = np.empty((len(steps), self.n))
        pair = np.empty((len(steps), self.n))
        mp = self.merge_pair[steps]
        for i in range(self.n):
            merge[:, i] = self.counts(i, mp, steps)
            pair[:, i] = self.counts(i, pairs, steps)
        idx = np.searchsorted(self.seg_key, pairs * (self.T + 1) + steps, side="right") - 1
        ok = idx >= 0
        ok[ok] = self.seg_pair[idx[ok]] == pairs[ok]
        # A pair with no count anywhere gets a key of its own (its mixture count is 0).
        segment = np.where(ok, idx, -1 - pairs)
        return RowData(merge, pair, segment)

    def coefficients(self, steps: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """``c[i, m(t), t] - c[i, p, t]`` for each requested (t, p), shape (k, n)."""
        return self.row_data(steps, pairs).coefficients

    def violations(
        self, alpha: np.ndarray, v_step: np.ndarray, v_pair: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (step, pair) whose constraint is violated, one per segment, with its violation."""
        inc = np.bincount(
            self.seg_of_entry,
            weights=self.entry_val * alpha[self.entry_cat],
            minlength=len(self.seg_key),
        )
        cs = np.cumsum(inc)
        seg_value = cs - cs[self.seg_pair_first] + inc[self.seg_pair_first]
        steps = np.arange(self.T)
        q = self.merge_pair * (self.T + 1) + steps
        idx = np.searchsorted(self.seg_key, q, side="right") - 1
        idx_c = np.maximum(idx, 0)
        found = (idx >= 0) & (self.seg_pair[idx_c] == self.merge_pair)
        s_merge = np.where(found, seg_value[idx_c], 0.0)
        thr = (s_merge + v_step)[self.start :]
        lo = np.maximum(self.seg_start, self.start)
        hi = self.seg_end
        live = (lo < hi) & (seg_value - v_pair[self.seg_pair] > TOLERANCE)
        segs = np.flatnonzero(live)
        if len(segs) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        y = seg_value[segs] - v_pair[self.seg_pair[segs]]
        lo_s, hi_s = lo[segs] - self.start, hi[segs] - self.start
        # Per segment: its most violated step (the step of smallest threshold in its range).
        mins, where = _SparseMin(thr).query(lo_s, hi_s)
        viol = y - mins
        bad = viol > TOLERANCE * np.maximum(1.0, np.abs(mins))
        out_t = [where[bad]]
        out_p = [self.seg_pair[segs][bad]]
        out_v = [viol[bad]]
        # Per step: its most violating pair (the segment of largest value covering it), so that
        # one round reaches every violated step, not only the few with the lowest thresholds.
        # Only segments violated somewhere can be a step's violating pair.
        y, lo_s, hi_s, cand = y[bad], lo_s[bad], hi_s[bad], segs[bad]
        order = np.argsort(y, kind="stable")
        rank = np.empty(len(y), dtype=np.int64)
        rank[order] = np.arange(len(y))
        active = np.ones(len(y), dtype=bool)
        for _ in range(PER_STEP):
            best = _cover_argmax(lo_s[active], hi_s[active], rank[active], len(thr))
            steps = np.flatnonzero(best >= 0)
            seg = order[best[steps]]
            viol2 = y[seg] - thr[steps]
            bad2 = viol2 > TOLERANCE * np.maximum(1.0, np.abs(thr[steps]))
            if not bad2.any():
                break
            out_t.append(steps[bad2])
            out_p.append(self.seg_pair[cand][seg[bad2]])
            out_v.append(viol2[bad2])
            active[seg[bad2]] = False
        t_all = np.concatenate(out_t) + self.start
        p_all = np.concatenate(out_p)
        v_all = np.concatenate(out_v)
        # The two searches often find the same constraint; keep one copy.
        _, first = np.unique(t_all * self.pairs + p_all, return_index=True)
        return t_all[first], p_all[first], v_all[first]


def solve(
    lp: MixtureLP,
    *,
    solver: str = "auto",
    time_limit: float | None = None,
    rows_per_round: int = ROWS_PER_ROUND,
    progress: ProgressCallback = noop,
) -> tuple[SolveResult, list[str]]:
    """Solve the mixture LP lazily; return the result and notices (e.g. a solver fallback)."""
    backend, notes = make_backend(solver, lp.n)
    t0 = time.monotonic()
    alpha = np.full(lp.n, 1.0 / lp.n)
    v_step = np.zeros(lp.T)
    v_pair = np.zeros(lp.pairs)
    seen: set[int] = set()
    rounds = 0
    objective = 0.0
    status = "optimal"
    solver_seconds = 0.0
    max_violation = 0.0
    history: list[dict[str, float]] = []
    while True:
        steps, pairs, viol = lp.violations(alpha, v_step, v_pair)
        keys = steps * lp.pairs + pairs
        fresh = np.fromiter((k not in seen for k in keys.tolist()), dtype=bool, count=len(keys))
        steps, pairs, viol, keys = steps[fresh], pairs[fresh], viol[fresh], keys[fresh]
        max_violation = float(viol.max()) if len(viol) else 0.0
        history.append(
            {
                "round": rounds,
                "violated": len(viol),
                "objective": objective,
                "max_violation": max_violation,
            }
        )
        progress(Progress("solve", rounds, None, "rounds", f"{len(viol)} violated constraints"))
        if len(viol) == 0:
            break
        if time_limit is not None and time.monotonic() - t0 > time_limit:
            status = "time_limit"
            break
        if len(viol) > rows_per_round:
            top = np.argpartition(-viol, rows_per_round)[:rows_per_round]
            steps, pairs, keys = steps[top], pairs[top], keys[top]
        order = np.lexsort((pairs, steps))
        steps, pairs, keys = steps[order], pairs[order], keys[order]
        seen.update(keys.tolist())
        backend.add_rows(steps, pairs, lp.row_data(steps, pairs))
        remaining = None if time_limit is None else max(time_limit - (time.monotonic() - t0), 1.0)
        s0 = time.monotonic()
        state, objective, alpha, vt, vp = backend.solve(remaining)
        solver_seconds += time.monotonic() - s0
        rounds += 1
        alpha = np.clip(alpha, 0.0, None)
        alpha = alpha / alpha.sum() if alpha.sum() > 0 else np.full(lp.n, 1.0 / lp.n)
        v_step = np.zeros(lp.T)
        v_pair = np.zeros(lp.pairs)
        if vt:
            v_step[np.fromiter(vt.keys(), np.int64)] = np.fromiter(vt.values(), float)
        if vp:
            v_pair[np.fromiter(vp.keys(), np.int64)] = np.fromiter(vp.values(), float)
        if state == "time_limit":
            status = "time_limit"
            break
        if backend.rows > PRUNE_FACTOR * backend.columns:
            gone_s, gone_p = backend.prune(PRUNE_SLACK)
            seen.difference_update((gone_s * lp.pairs + gone_p).tolist())
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
    )
    return result, notes
