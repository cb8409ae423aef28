"""End to end: real text, real trained tokenizers, the lazy LP against the full LP and two solvers."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mixinfer
from mixinfer.counting import count_words
from mixinfer.replay import TokenTable, replay
from mixinfer.samples import discover
from mixinfer.simulate import train_bpe
from mixinfer.solver import SCALE, MixtureLP, solve

ROOT = Path(__file__).resolve().parents[1]
GENERAL = ROOT / "data_samples" / "general"


def _documents(category: str, limit: int) -> list[str]:
    import gzip

    docs = []
    size = 0
    for path in sorted((GENERAL / category).glob("*.txt.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
        docs.append(text)
        size += len(text.encode())
        if size >= limit:
            break
    return docs


def _train(docs: list[str], vocab: int, path: Path) -> None:
    """The controlled setting's tokenizer (the one ``mixinfer simulate`` trains), saved to ``path``."""
    path.write_text(train_bpe(docs, vocab), encoding="utf-8")


@pytest.fixture(scope="module")
def mixture_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, float]]:
    """A tokenizer trained on a known mixture of 4 real categories, and disjoint attack samples."""
    cats = ["en", "de", "code", "ru"]
    if not all((GENERAL / c).is_dir() for c in cats):
        pytest.skip("bundled samples data_samples/general are not built")
    weights = {"en": 0.45, "de": 0.25, "code": 0.2, "ru": 0.1}
    root = tmp_path_factory.mktemp("mixture")
    train_docs: list[str] = []
    true_bytes: dict[str, int] = {}
    total = 2_400_000
    for c in cats:
        docs = _documents(c, 900_000)
        half = len(docs) // 2
        train, attack = docs[:half], docs[half:]
        (root / "samples" / c).mkdir(parents=True)
        for i, d in enumerate(attack):
            (root / "samples" / c / f"{i:04d}.txt").write_text(d, encoding="utf-8")
        got = 0
        for d in itertools.cycle(train):
            if got >= weights[c] * total:
                break
            train_docs.append(d)
            got += len(d.encode())
        true_bytes[c] = got
    tok_path = root / "tokenizer.json"
    _train(train_docs, 256 + 1200, tok_path)
    s = sum(true_bytes.values())
    return tok_path, root / "samples", {c: b / s for c, b in true_bytes.items()}


@pytest.mark.slow
def test_recovers_a_known_mixture_of_real_text(
    mixture_case: tuple[Path, Path, dict[str, float]], tmp_path: Path
) -> None:
    tok_path, samples, truth = mixture_case
    events: list[str] = []
    result = mixinfer.infer(
        tok_path,
        samples,
        merges=1000,
        cache_dir=tmp_path / "cache",
        truth=truth,
        progress=lambda p: events.append(p.stage),
    )
    assert result.solver["status"] == "optimal"
    assert set(result.proportions) == set(truth)
    assert math.isclose(sum(result.proportions.values()), 1.0, rel_tol=1e-9)
    # The reference prototype reached about -4.7 at 30 MB; this is 2.4 MB and T=1000.
    assert result.log10_mse is not None and result.log10_mse < -3.0, result.to_frame()
    assert {"count", "replay", "solve"} <= set(events)
    frame = result.to_frame()
    assert list(frame.columns) == ["category", "proportion", "truth", "error"]
    assert frame["proportion"].is_monotonic_decreasing

    # A second run reads words and traces from the cache and gives the same answer.
    again = mixinfer.infer(tok_path, samples, merges=1000, cache_dir=tmp_path / "cache")
    assert again.proportions == result.proportions


def _lp_inputs(tok_path: Path, samples: Path, merges: int, start: int = 0) -> tuple[MixtureLP, list[str]]:
    tok = mixinfer.load_tokenizer(tok_path)
    cats = discover(samples)
    counts = count_words(cats, tok.pretokenizer, max_bytes=60_000, workers=1)
    table = TokenTable.build(tok)
    traces = [replay(wc.words, table, merges) for wc in counts]
    lp = MixtureLP(traces, [wc.bytes for wc in counts], table.merge_codes, start=start)
    return lp, [wc.category for wc in counts]


def _full_lp_objective(lp: MixtureLP) -> tuple[float, np.ndarray]:
    """Every constraint of the LP, written out densely and solved once with HiGHS."""
    import highspy

    n, T, P = lp.n, lp.T, lp.pairs
    pairs = np.arange(P)
    if lp.allowed is not None:
        pairs = pairs[lp.allowed]
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    ncols = n + T + P
    pair_cost = np.ones(P) if lp.pair_cost is None else lp.pair_cost
    cost = np.concatenate([np.zeros(n), np.ones(T), pair_cost])
    upper = np.concatenate([np.ones(n), np.full(T + P, inf)])
    empty = np.zeros(0, dtype=np.int32)
    h.addCols(ncols, cost, np.zeros(ncols), upper, 0, empty, empty, np.zeros(0))
    h.addRows(
        1,
        np.ones(1),
        np.ones(1),
        n,
        np.zeros(1, np.int32),
        np.arange(n, dtype=np.int32),
        np.ones(n),
    )
    for t in range(lp.start, T):  # steps before --start-merge are not constrained
        others = pairs[pairs != lp.merge_pair[t]]
        steps = np.full(len(others), t)
        coefs = lp.coefficients(steps, others)
        k = len(others)
        idx = np.empty((k, n + 2), dtype=np.int32)
        idx[:, :n] = np.arange(n)
        idx[:, n] = n + t
        idx[:, n + 1] = n + T + others
        val = np.ones((k, n + 2))
        val[:, :n] = coefs
        h.addRows(
            k,
            np.zeros(k),
            np.full(k, inf),
            k * (n + 2),
            np.arange(0, k * (n + 2), n + 2, dtype=np.int32),
            idx.ravel(),
            val.ravel(),
        )
    h.run()
    x = np.asarray(h.getSolution().col_value)
    return float(h.getInfo().objective_function_value), x[:n]


@pytest.mark.parametrize("solver", [pytest.param("highs", id="highspy"), pytest.param("cbc", id="pulp-cbc")])
def test_lazy_lp_reaches_the_full_lp_optimum(
    mixture_case: tuple[Path, Path, dict[str, float]], solver: str
) -> None:
    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=60)
    full_obj, _ = _full_lp_objective(lp)
    result, _ = solve(lp, solver=solver, rows_per_round=300)
    assert result.status == "optimal"
    assert result.rounds >= 1
    assert result.constraints < lp.T * lp.pairs  # lazily: far fewer rows than the full LP
    assert math.isclose(result.objective, full_obj, rel_tol=1e-6, abs_tol=1e-6 * SCALE / 1e3)


@pytest.mark.parametrize(("merges", "start"), [(1, 0), (2, 0), (3, 0), (9, 0), (40, 39), (40, 37), (33, 0)])
def test_the_lazy_lp_is_exact_on_trees_of_every_shape(
    mixture_case: tuple[Path, Path, dict[str, float]], merges: int, start: int
) -> None:
    """One constrained step (the tree is a single leaf), two, three, and step counts just past a
    power of two (padding leaves): HiGHS's model, with a leaf's constraint written out in place of
    its node, reaches the full LP's optimum."""
    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=merges, start=start)
    full_obj, _ = _full_lp_objective(lp)
    result, _ = solve(lp, solver="highs", rows_per_round=50)
    assert result.status == "optimal"
    assert math.isclose(result.objective, full_obj, rel_tol=1e-6, abs_tol=1e-6 * SCALE / 1e3)
    if merges == 40:
        assert full_obj > 0  # a problem with something to explain


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_estimator_hooks_keep_the_lazy_lp_exact(
    mixture_case: tuple[Path, Path, dict[str, float]], solver: str
) -> None:
    """Competitors restricted to some pairs, and per-pair slack costs: still the full LP's optimum."""
    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=60)
    rng = np.random.default_rng(7)
    lp.allowed = rng.random(lp.pairs) < 0.6
    lp.pair_cost = rng.uniform(0.5, 2.0, lp.pairs)
    full_obj, _ = _full_lp_objective(lp)
    result, _ = solve(lp, solver=solver, rows_per_round=300)
    assert result.status == "optimal"
    assert math.isclose(result.objective, full_obj, rel_tol=1e-6, abs_tol=1e-6 * SCALE / 1e3)
    unrestricted, _ = _full_lp_objective(_lp_inputs(tok_path, samples, merges=60)[0])
    assert full_obj != pytest.approx(unrestricted)  # the hooks change the problem


def test_highspy_and_pulp_paths_agree(mixture_case: tuple[Path, Path, dict[str, float]]) -> None:
    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=150)
    fast, _ = solve(lp, solver="highs")
    portable, _ = solve(lp, solver="cbc")
    assert fast.backend == "highs" and portable.backend == "pulp:cbc"
    assert math.isclose(fast.objective, portable.objective, rel_tol=1e-6)
    np.testing.assert_allclose(fast.proportions, portable.proportions, atol=1e-4)


def test_demo_tokenizer_recovers_its_truth(tmp_path: Path) -> None:
    """The README's first command, through the library: the shipped demo against shipped samples."""
    demo = ROOT / "data_samples" / "demo" / "tokenizer.json"
    if not demo.is_file() or not GENERAL.is_dir():
        pytest.skip("bundled demo tokenizer or samples are not built")
    result = mixinfer.infer(demo, cache_dir=tmp_path / "cache")
    assert result.truth is not None  # found beside the tokenizer
    truth = json.loads((demo.parent / "truth.json").read_text())["proportions"]
    assert result.truth == pytest.approx(truth)
    assert result.log10_mse is not None and result.log10_mse <= -4.0, result.to_frame()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tree_cover_splits_a_range_into_disjoint_nodes(data: st.DataObject) -> None:
    steps = data.draw(st.integers(1, 3000), label="steps")
    lo = data.draw(st.integers(0, steps - 1), label="lo")
    hi = data.draw(st.integers(lo + 1, steps), label="hi")
    lp = _tree_only_lp(steps)
    which, nodes = lp.cover(np.array([lo]), np.array([hi]))
    assert (which == 0).all()
    n_lo, n_hi = lp.node_bounds(nodes)
    covered = np.concatenate([np.arange(a, b) for a, b in zip(n_lo, n_hi, strict=True)])
    assert sorted(covered.tolist()) == list(range(lo, hi))  # disjoint, and exactly the range
    assert len(nodes) <= 2 * max(1, (hi - lo).bit_length())
    # Every covering node is a node of the tree the backends build.
    assert set(nodes.tolist()) <= set(lp.tree_nodes().tolist())


def _tree_only_lp(steps: int) -> MixtureLP:
    from mixinfer.replay import Trace

    empty = np.zeros(0, dtype=np.int64)
    trace = Trace(steps, np.array([1]), np.array([1]), empty, empty, empty)
    return MixtureLP([trace], [10**6], np.arange(2, steps + 2))


@pytest.mark.parametrize("start", [pytest.param(0, id="from-step-0"), pytest.param(17, id="from-step-17")])
def test_violation_search_matches_a_brute_force_check(
    mixture_case: tuple[Path, Path, dict[str, float]], start: int
) -> None:
    """At random points, the rows found are exactly the segments with a violated (t, p)."""
    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=80, start=start)
    rng = np.random.default_rng(7)
    pairs = np.arange(lp.pairs)
    for _ in range(4):
        alpha = rng.dirichlet(np.ones(lp.n))
        v_step = rng.exponential(20.0, lp.steps) * (rng.random(lp.steps) < 0.5)
        v_pair = rng.exponential(20.0, lp.pairs) * (rng.random(lp.pairs) < 0.5)
        segments, nodes, viol = lp.violations(alpha, v_step, v_pair)
        found: dict[tuple[int, int], float] = {}
        for s, node, v in zip(segments.tolist(), nodes.tolist(), viol.tolist(), strict=True):
            found[(int(lp.seg_pair[s]), node)] = max(found.get((int(lp.seg_pair[s]), node), 0.0), v)
        # Brute force: every (t, p) constraint, grouped by the pair and the node holding t.
        expected: dict[tuple[int, int], float] = {}
        for t in range(lp.start, lp.T):
            others = pairs[pairs != lp.merge_pair[t]]
            coefs = lp.coefficients(np.full(len(others), t), others)
            slack = coefs @ alpha + v_step[t - lp.start] + v_pair[others]
            for p, sl in zip(others.tolist(), slack.tolist(), strict=True):
                if -sl > 1e-6 * max(1.0, abs(sl)) + 1e-6:
                    seg = np.searchsorted(lp.seg_key, p * (lp.T + 1) + t, side="right") - 1
                    lo, hi = max(int(lp.seg_start[seg]), lp.start) - lp.start, int(lp.seg_hi[seg])
                    _, cover = lp.cover(np.array([lo]), np.array([hi]))
                    n_lo, n_hi = lp.node_bounds(cover)
                    k = t - lp.start
                    node = int(cover[(n_lo <= k) & (k < n_hi)][0])
                    expected[(p, node)] = max(expected.get((p, node), 0.0), -sl)
        assert expected, "the random points should violate some constraints"
        # Borderline rows (violated by about the tolerance) may fall either way.
        assert {k for k, v in expected.items() if v > 1e-3} <= set(found)
        assert {k for k, v in found.items() if v > 1e-3} <= set(expected)
        for key in set(found) & set(expected):
            assert math.isclose(found[key], expected[key], rel_tol=1e-6, abs_tol=1e-5)


@pytest.fixture(scope="module")
def exact_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, float]]:
    """A tokenizer whose samples are exactly its training text, so the LP has no noise to absorb."""
    cats = {"en": 120_000, "ja": 90_000, "code": 60_000}
    if not all((GENERAL / c).is_dir() for c in cats):
        pytest.skip("bundled samples data_samples/general are not built")
    root = tmp_path_factory.mktemp("exact")
    train: list[str] = []
    sizes: dict[str, int] = {}
    for c, limit in cats.items():
        docs = _documents(c, limit)
        (root / "samples" / c).mkdir(parents=True)
        for i, d in enumerate(docs):
            (root / "samples" / c / f"{i:04d}.txt").write_text(d, encoding="utf-8")
        train += docs
        sizes[c] = sum(len(d.encode()) for d in docs)
    _train(train, 256 + 400, root / "tokenizer.json")
    total = sum(sizes.values())
    return root / "tokenizer.json", root / "samples", {c: b / total for c, b in sizes.items()}


@pytest.mark.parametrize(
    "normalize", [pytest.param("bytes", id="per-byte"), pytest.param("pairs", id="per-pair")]
)
def test_both_count_units_recover_a_noise_free_mixture_in_bytes(
    exact_case: tuple[Path, Path, dict[str, float]], normalize: str, tmp_path: Path
) -> None:
    tok_path, samples, truth = exact_case
    result = mixinfer.infer(tok_path, samples, merges=300, normalize=normalize, cache_dir=tmp_path)
    assert result.solver["status"] == "optimal" and result.solver["normalize"] == normalize
    for c, p in truth.items():
        assert abs(result.proportions[c] - p) < 1e-6, (c, result.proportions, truth)


def test_unknown_normalize_is_a_usage_error(exact_case: tuple[Path, Path, dict[str, float]]) -> None:
    from mixinfer.errors import UsageError
    from mixinfer.options import OptionError

    tok_path, samples, _ = exact_case
    with pytest.raises(UsageError, match="normalize must be one of pairs, bytes") as info:
        mixinfer.infer(tok_path, samples, merges=10, normalize="tokens", use_cache=False)
    # The library names the option; the CLI turns the name into --normalize.
    assert isinstance(info.value, OptionError) and info.value.option == "normalize"


def test_pruning_never_drops_a_returned_row_and_keeps_the_optimum(
    mixture_case: tuple[Path, Path, dict[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prune after every round (tiny batches, no minimum): rows come back, are then kept, and the
    lazy LP still reaches the full LP's optimum."""
    from mixinfer import solver as solver_module

    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=60)
    full_obj, _ = _full_lp_objective(lp)
    monkeypatch.setattr(solver_module, "PRUNE_MIN", 0)
    backend = solver_module.HighsBackend(lp)
    dropped: list[list[int]] = []
    original = solver_module.HighsBackend.prune

    def recording(self: solver_module.HighsBackend, *, every: bool = False) -> int:
        before = set(self.present)
        count = original(self, every=every)
        dropped.append(sorted(before - self.present))
        return count

    monkeypatch.setattr(solver_module.HighsBackend, "prune", recording)
    result, _ = solve(lp, rows_per_round=15, backend=backend)
    assert result.status == "optimal"
    assert math.isclose(result.objective, full_obj, rel_tol=1e-6, abs_tol=1e-6 * SCALE / 1e3)
    assert sum(len(d) for d in dropped) > 0
    assert backend._returned  # some pruned rows were needed again ...
    seen: set[int] = set()
    for keys in dropped:  # ... and none was pruned a second time
        assert not seen.intersection(keys)
        seen.update(keys)
    assert backend._returned <= seen
    # The bootstrap's final trim still drops every non-binding row, returned or not.
    status = backend.h.getBasis().row_status[backend.base_rows :]
    basic = [s == backend._hs.HighsBasisStatus.kBasic for s in status]
    slack_rows = sum(b and k >= 0 for b, k in zip(basic, backend.row_keys.tolist(), strict=True))
    assert backend.prune(every=True) == slack_rows
    again, _ = solve(lp, backend=backend)
    assert math.isclose(again.objective, full_obj, rel_tol=1e-6, abs_tol=1e-6 * SCALE / 1e3)


def test_the_kept_cover_is_built_in_chunks_in_the_order_of_one_cover(
    mixture_case: tuple[Path, Path, dict[str, float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunking the cover of every segment changes neither its entries nor their order, and a cover
    past the cap is given up (the search then covers the live segments each round, same rows)."""
    from mixinfer import solver as solver_module

    tok_path, samples, _ = mixture_case
    lp, _ = _lp_inputs(tok_path, samples, merges=80, start=5)
    which, nodes = lp.cover(lp.seg_lo, lp.seg_hi)
    monkeypatch.setattr(solver_module, "COVER_CHUNK", 37)
    kept = lp._cover_all()
    assert kept is not None
    assert np.array_equal(kept[0], which) and np.array_equal(kept[1], nodes)
    rng = np.random.default_rng(3)
    point = (rng.dirichlet(np.ones(lp.n)), rng.exponential(5.0, lp.steps), np.zeros(lp.pairs))
    with_cover = lp.violations(*point)
    assert len(with_cover[0])
    small, _ = _lp_inputs(tok_path, samples, merges=80, start=5)
    monkeypatch.setattr(solver_module, "COVER_CACHE_ENTRIES", len(which) - 1)
    assert small._cover_all() is None
    without = small.violations(*point)
    for a, b in zip(with_cover, without, strict=True):
        assert np.array_equal(a, b)
