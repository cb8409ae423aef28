"""How sure is the answer: bootstrap intervals, diagnostics, `explain` and simulated coverage."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer.bootstrap import count_blocks
from mixinfer.cli import EXIT_CODES, app
from mixinfer.counting import count_words
from mixinfer.errors import UsageError
from mixinfer.options import OptionError, Options
from mixinfer.samples import discover
from mixinfer.simulate import train_bpe
from mixinfer.tokenizer import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
# Python source that nobody edits (the bundled samples): the tests' thresholds hold for this text,
# where mixinfer's own source changed under them with every commit.
CODE = sorted((ROOT / "data_samples" / "programming" / "python").glob("*.txt.gz"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> dict[str, Path]:
    """Three categories (English licences, Python source, licences upper-cased), many documents
    each; a tokenizer trained on a known mixture of their first halves; samples from the rest."""
    root = tmp_path_factory.mktemp("trust")
    paras = [p for p in license_text.split("\n\n") if len(p) > 200]
    code = [gzip.decompress(p.read_bytes()).decode("utf-8") for p in CODE]
    code_docs = [d[i : i + 1500] for d in code for i in range(0, len(d), 1500)]
    upper = [p.upper() for p in paras[1::2]]
    cats = {"en": paras[0::2], "code": code_docs, "caps": upper}
    train: list[str] = []
    weights = {"en": 3, "code": 2, "caps": 1}
    for name, docs in cats.items():
        half = docs[: len(docs) // 2]
        train += half * weights[name]
        folder = root / "samples" / name
        folder.mkdir(parents=True)
        for i, doc in enumerate(docs[len(docs) // 2 :][:120]):
            (folder / f"{i:04d}.txt").write_text(doc, encoding="utf-8")
    tok = root / "tok" / "tokenizer.json"
    tok.parent.mkdir()
    tok.write_text(train_bpe(train, 256 + 700), encoding="utf-8")
    return {"root": root, "samples": root / "samples", "tok": tok}


def run(world: dict[str, Path], **kw: object) -> mixinfer.InferenceResult:
    return mixinfer.infer(world["tok"], world["samples"], merges=600, use_cache=False, **kw)  # type: ignore[arg-type]


def test_bootstrap_options_are_validated() -> None:
    for bad in ({"bootstrap": -1}, {"bootstrap": 1}, {"confidence": 1.0}, {"confidence": 0}, {"seed": -2}):
        with pytest.raises(OptionError):
            Options(**bad)  # type: ignore[arg-type]
    result = CliRunner().invoke(app, ["infer", "x.json", "--bootstrap", "1"])
    assert result.exit_code == EXIT_CODES[UsageError]
    assert "--bootstrap 1 gives no interval" in result.stderr


def test_blocks_hold_exactly_the_counted_text(world: dict[str, Path]) -> None:
    tok = load_tokenizer(world["tok"])
    for unit in ("document", "line"):
        for cat in discover(world["samples"]):
            blocks = count_blocks(cat, tok.pretokenizer, max_bytes=100_000, unit=unit, blocks=7)
            whole = count_words([cat], tok.pretokenizer, max_bytes=100_000, unit=unit, workers=1)[0]
            summed: dict[bytes, int] = {}
            for b in blocks.words:
                for w, c in b.items():
                    summed[w] = summed.get(w, 0) + c
            assert summed == whole.words
            assert int(blocks.bytes.sum()) == whole.bytes
            assert len(blocks.words) == 7


def test_intervals_are_deterministic_and_hold_the_estimate(world: dict[str, Path]) -> None:
    a = run(world, bootstrap=6, seed=3)
    b = run(world, bootstrap=6, seed=3)
    c = run(world, bootstrap=6, seed=4)
    assert a.intervals is not None and a.intervals == b.intervals
    assert a.intervals != c.intervals
    assert a.bootstrap is not None
    assert {k: a.bootstrap[k] for k in ("replicates", "confidence", "unit", "seed")} == {
        "replicates": 6, "confidence": 0.9, "unit": "document", "seed": 3,
    }  # fmt: skip
    for cat, (low, high) in a.intervals.items():
        assert 0.0 <= low <= a.proportions[cat] <= high <= 1.0
    # A wider confidence never gives narrower intervals (same replicates).
    wide = run(world, bootstrap=6, seed=3, confidence=0.99)
    assert wide.intervals is not None
    for cat in a.intervals:
        assert wide.intervals[cat][0] <= a.intervals[cat][0] and wide.intervals[cat][1] >= a.intervals[cat][1]


def test_bootstrap_output_in_json_csv_and_table(world: dict[str, Path], tmp_path: Path) -> None:
    args = ["infer", str(world["tok"]), "--samples", str(world["samples"]), "--merges", "600",
            "--bootstrap", "4", "--cache-dir", str(tmp_path / "c"), "-q"]  # fmt: skip
    out = tmp_path / "r.json"
    assert CliRunner().invoke(app, [*args, "-o", str(out)]).exit_code == 0
    data = json.loads(out.read_text())
    assert set(data["intervals"]) == set(data["proportions"])
    assert data["bootstrap"]["replicates"] == 4 and "diagnostics" in data
    csv_out = tmp_path / "r.csv"
    assert CliRunner().invoke(app, [*args, "-o", str(csv_out)]).exit_code == 0
    assert csv_out.read_text().splitlines()[0] == "category,proportion,low,high"
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and "90% interval" in table.stdout


def test_diagnostics_name_a_pair_planted_in_one_sample(world: dict[str, Path], tmp_path: Path) -> None:
    """A sample doctored with a pair the tokenizer never merges: that pair, from that category."""
    samples = tmp_path / "samples"
    for cat in ("en", "code", "caps"):
        (samples / cat).mkdir(parents=True)
        for f in sorted((world["samples"] / cat).iterdir()):
            text = f.read_text(encoding="utf-8")
            if cat == "caps":
                text += " qzqzqzqzqzqzqzqz" * 40
            (samples / cat / f.name).write_text(text, encoding="utf-8")
    clean = run(world)
    result = mixinfer.infer(world["tok"], samples, merges=600, use_cache=False)
    # The LP answers a doctored sample by dropping its category; the diagnostics say which
    # category the unexplained merges need, and which of its pairs holds it down.
    assert result.proportions["caps"] < clean.proportions["caps"] / 3
    needing_caps = [e for e in result.diagnostics["unexplained_merges"] if "caps" in e["would_grow"]]
    assert len(needing_caps) >= 3
    blockers = [e["blocked_by"].get("caps") for e in needing_caps]
    assert all(b is not None and set("".join(b)) <= set("qz") for b in blockers), blockers


def test_diagnostics_flag_a_missing_category(world: dict[str, Path], tmp_path: Path) -> None:
    """Leave code out: the residual jumps, and the unexplained merges are code's."""
    samples = tmp_path / "samples"
    samples.mkdir()
    for cat in ("en", "caps"):
        (samples / cat).symlink_to(world["samples"] / cat, target_is_directory=True)
    full = run(world)
    missing = mixinfer.infer(world["tok"], samples, merges=600, use_cache=False)
    assert missing.diagnostics["objective_per_merge"] > 2 * full.diagnostics["objective_per_merge"]
    code_text = "".join(p.read_text(encoding="utf-8") for p in (world["samples"] / "code").iterdir())
    prose = "".join(
        p.read_text(encoding="utf-8") for c in ("en", "caps") for p in (world["samples"] / c).iterdir()
    )
    top = missing.diagnostics["unexplained_merges"][:5]
    assert top
    in_code = [e for e in top if code_text.count("".join(e["merge"])) > 3 * prose.count("".join(e["merge"]))]
    assert len(in_code) >= 2, top


def test_explain_shows_a_saved_result(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = [
        "infer",
        str(world["tok"]),
        "--samples",
        str(world["samples"]),
        "--merges",
        "600",
        "--no-cache",
        "-q",
    ]
    assert CliRunner().invoke(app, [*args, "-o", str(out)]).exit_code == 0
    shown = CliRunner().invoke(app, ["explain", str(out)])
    assert shown.exit_code == 0, shown.stderr
    assert "Unexplained merges" in shown.stdout and "Over-represented sample pairs" in shown.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    res = CliRunner().invoke(app, ["explain", str(bad)])
    assert res.exit_code == EXIT_CODES[UsageError] and "holds no diagnostics" in res.stderr


def test_simulated_coverage_is_reported(tmp_path: Path, world: dict[str, Path]) -> None:
    from mixinfer.simulate import SimulationSettings, simulate

    settings = SimulationSettings(
        n=2, trials=2, train_bytes=300_000, attack_bytes=60_000, vocab=256 + 400, merges=300,
        methods=("lp",), bootstrap=4,
    )  # fmt: skip
    result = simulate(world["samples"], settings, cache_dir=tmp_path / "c")
    lp = result.summary()[0]
    assert lp.coverage is not None and 0.0 <= lp.coverage <= 1.0
    assert lp.median_width is not None and lp.median_width >= 0
    rec = result.records[0]
    assert rec.intervals is not None and rec.residual is not None
    assert len(rec.covered) == 2
    assert np.isfinite(rec.residual)


def test_calibrated_intervals_reflect_the_replicates_and_double_the_half_width() -> None:
    from mixinfer.bootstrap import WIDEN, calibrated_intervals

    rng = np.random.default_rng(0)
    # Replicates sit below the estimate for "a" (resampling pushes the LP further down): the basic
    # interval reflects them above it.
    samples = np.column_stack([0.40 + rng.uniform(-0.06, -0.02, 200), 0.60 + rng.uniform(0.02, 0.06, 200)])
    iv = calibrated_intervals(["a", "b"], samples, {"a": 0.40, "b": 0.60}, 0.9)
    q = np.percentile(samples[:, 0], [5, 95])
    low, high = 2 * 0.40 - q[1], 2 * 0.40 - q[0]
    center, half = (low + high) / 2, (high - low) / 2 * WIDEN
    assert iv["a"] == pytest.approx((min(center - half, 0.40), center + half))
    assert iv["a"][1] > 0.42 and iv["b"][0] < 0.58
    # Always within [0, 1] and holding the estimate.
    edge = calibrated_intervals(["z"], np.full((50, 1), 0.3), {"z": 0.0}, 0.9)
    assert edge["z"][0] == 0.0 and 0.0 <= edge["z"][1] <= 1.0


def test_a_replicate_solved_from_the_full_samples_basis_reaches_its_own_optimum(
    world: dict[str, Path],
) -> None:
    """The warm start (rows and basis of the full sample's LP, counts swapped in) stays exact."""
    from mixinfer.replay import TokenTable, replay_blocks, sum_traces
    from mixinfer.solver import HighsBackend, MixtureLP, solve

    tok = load_tokenizer(world["tok"])
    table = TokenTable.build(tok)
    per_block = [
        replay_blocks(
            count_blocks(c, tok.pretokenizer, max_bytes=100_000, unit="document", blocks=8).words, table, 400
        )
        for c in discover(world["samples"])
    ]

    def lp_of(weights: list[np.ndarray]) -> MixtureLP:
        traces = [sum_traces(pb, w, keep_zeros=True) for pb, w in zip(per_block, weights, strict=True)]
        return MixtureLP(traces, [float(t.init_counts.sum()) for t in traces], table.merge_codes, start=5)

    full = lp_of([np.ones(8, dtype=np.int64)] * 3)
    backend = HighsBackend(full)
    full_result, _ = solve(full, backend=backend, rows_per_round=300)
    # The same entries as the plain sum, only zeros added: the same LP.
    plain = MixtureLP(
        [sum_traces(pb) for pb in per_block],
        [float(sum_traces(pb).init_counts.sum()) for pb in per_block],
        table.merge_codes,
        start=5,
    )
    assert solve(plain)[0].objective == pytest.approx(full_result.objective, rel=1e-7)
    snap = backend.snapshot()
    rng = np.random.default_rng(0)
    for i in range(4):
        replicate = lp_of([np.bincount(rng.integers(0, 8, 8), minlength=8) for _ in per_block])
        # From the previous replicate's model, or from the full sample's (as the bootstrap does).
        backend.retarget(replicate, snap if i % 2 else None)
        warm, _ = solve(replicate, backend=backend, rows_per_round=300)
        cold, _ = solve(replicate, rows_per_round=300)
        assert warm.status == cold.status == "optimal"
        assert warm.objective == pytest.approx(cold.objective, rel=1e-7)
        assert warm.objective != pytest.approx(full_result.objective, rel=1e-4)  # a different LP
    other = lp_of([np.ones(8, dtype=np.int64)] * 3)
    other.start = 6
    with pytest.raises(ValueError, match="same pairs"):
        backend.retarget(other)


def _world_blocks(world: dict[str, Path]) -> tuple[list, object, list]:
    from mixinfer.bootstrap import count_and_replay_blocks
    from mixinfer.replay import TokenTable

    tok = load_tokenizer(world["tok"])
    table = TokenTable.build(tok)
    done = [
        count_and_replay_blocks(c, tok.pretokenizer, 100_000, "document", table, 400)
        for c in discover(world["samples"])
    ]
    return [b for b, _ in done], table, [t for _, t in done]


def test_replicates_are_the_same_on_any_executor(world: dict[str, Path]) -> None:
    """Each worker solves the full LP itself and every replicate starts from it: proportions do
    not depend on where, or in which order, replicates run."""
    from mixinfer.bootstrap import _STATE, bootstrap
    from mixinfer.executors import ProcessExecutor, SerialExecutor

    blocks, table, traces = _world_blocks(world)
    kw = dict(start=0, normalize="pairs", replicates=5, confidence=0.9, seed=7, block_traces=traces)
    serial = bootstrap(blocks, table, 400, executor=SerialExecutor(), **kw)  # type: ignore[arg-type]
    with ProcessExecutor(2) as pool:
        parallel = bootstrap(blocks, table, 400, executor=pool, **kw)  # type: ignore[arg-type]
    assert serial.statuses == parallel.statuses == ["optimal"] * 5
    assert np.array_equal(serial.proportions, parallel.proportions)
    assert np.allclose(serial.proportions.sum(axis=1), 1.0)
    assert len({tuple(row) for row in serial.proportions.round(9)}) > 1  # replicates differ
    assert not _STATE  # the full LP is not kept in this process after the call


def test_the_kept_cover_finds_the_same_violations(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search with every segment's cover kept equals the search covering live segments anew."""
    from mixinfer import solver as solver_module
    from mixinfer.replay import sum_traces
    from mixinfer.solver import MixtureLP

    _, table, traces = _world_blocks(world)
    summed = [sum_traces(t, keep_zeros=True) for t in traces]

    def lp() -> MixtureLP:
        return MixtureLP(summed, [float(t.init_counts.sum()) for t in summed], table.merge_codes, start=3)

    kept, fresh = lp(), lp()
    rng = np.random.default_rng(1)
    for _ in range(5):
        alpha = rng.dirichlet(np.ones(kept.n))
        v_step = rng.exponential(2.0, kept.steps) * (rng.random(kept.steps) < 0.5)
        v_pair = rng.exponential(2.0, kept.pairs) * (rng.random(kept.pairs) < 0.5)
        got = kept.violations(alpha, v_step, v_pair)
        monkeypatch.setattr(solver_module, "COVER_CACHE_ENTRIES", 0)
        want = fresh.violations(alpha, v_step, v_pair)
        monkeypatch.undo()
        assert len(want[0]) > 0
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(g, w)
    assert kept._structure["cover"] is not None and fresh._structure.get("cover") is None
    other = lp()
    other.share_structure(kept)
    assert other._structure is kept._structure
    assert kept.with_counts(kept.entry_val, kept.units)._structure is kept._structure


def test_a_replicate_lp_from_entry_counts_equals_the_lp_of_its_summed_traces(world: dict[str, Path]) -> None:
    """MixtureLP.with_counts (one weighted bincount per replicate) builds, bit for bit, the LP
    the constructor builds from the replicate's summed block traces."""
    from mixinfer import bootstrap as boot

    blocks, table, traces = _world_blocks(world)
    for normalize in ("pairs", "bytes"):
        args = (traces, [b.bytes for b in blocks], table.merge_codes, 4, normalize, "auto", None, 0, "test")
        try:
            boot._setup_replicates(*args)  # type: ignore[arg-type]
            rng = np.random.default_rng(5)
            for _ in range(3):
                w = [np.bincount(rng.integers(0, len(t), len(t)), minlength=len(t)) for t in traces]
                fast, fast_bytes, fast_units = boot._replicate_lp(w)
                slow, slow_bytes, slow_units = boot._lp_from_traces(w)
                assert np.array_equal(fast_bytes, slow_bytes) and np.array_equal(fast_units, slow_units)
                assert np.array_equal(fast.units, slow.units)
                assert np.array_equal(fast.entry_val, slow.entry_val)
                assert np.array_equal(fast.seg_key, slow.seg_key)
                for a, b in zip(fast.cat_count, slow.cat_count, strict=True):
                    assert np.array_equal(a, b)
                assert np.array_equal(fast.merge_counts(), slow.merge_counts())
                assert not np.array_equal(fast.entry_val, boot._STATE["full"].entry_val)
        finally:
            boot._STATE.clear()


def test_blocks_counted_beside_the_lp_give_the_same_intervals(world: dict[str, Path]) -> None:
    """With two workers the blocks are counted in the background while the LP solves; with one,
    after it: the same intervals either way."""
    background = run(world, bootstrap=4, seed=2, workers=2)
    sequential = run(world, bootstrap=4, seed=2, workers=1)
    assert background.intervals is not None and background.intervals == sequential.intervals
    assert background.proportions == sequential.proportions


def test_a_failing_solve_stops_the_background_blocks(
    world: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    from mixinfer import stages
    from mixinfer.errors import SolverError

    started: list[stages.BlocksInBackground] = []
    real_start = stages.BlocksInBackground.start.__func__  # type: ignore[attr-defined]

    def start(cls: type, *args: object, **kw: object) -> object:
        pending = real_start(cls, *args, **kw)
        started.append(pending)
        return pending

    def fail(*args: object, **kw: object) -> None:
        raise SolverError("planted failure")

    monkeypatch.setattr(stages.BlocksInBackground, "start", classmethod(start))
    monkeypatch.setattr(stages, "solve", fail)
    with pytest.raises(SolverError, match="planted"):
        run(world, bootstrap=4, workers=2)
    assert len(started) == 1 and started[0] is not None
    assert not started[0].thread.is_alive()
    assert not [p for p in multiprocessing.active_children() if p.name == "mixinfer-worker"]


def test_the_workers_start_from_the_inferences_own_optimum(world: dict[str, Path]) -> None:
    """The inference's final HiGHS model travels to the workers as arrays; the full LP then
    solves in no simplex iteration, and the replicates are the same as from a cold full solve."""
    import pickle

    from mixinfer import bootstrap as boot
    from mixinfer.replay import sum_traces
    from mixinfer.solver import MixtureLP, snapshot_fits, snapshot_state, solve

    blocks, table, traces = _world_blocks(world)
    summed = [sum_traces(t) for t in traces]
    main = MixtureLP(summed, [float(t.init_counts.sum()) for t in summed], table.merge_codes)
    result, _ = solve(main, keep_snapshot=True)
    assert result.snapshot is not None
    state = pickle.loads(pickle.dumps(snapshot_state(result.snapshot)))  # it travels
    answers = []
    for warm in (None, state):
        args = (traces, [b.bytes for b in blocks], table.merge_codes, 0, "pairs", "auto", None, 3, "t", warm)
        try:
            boot._setup_replicates(*args)  # type: ignore[arg-type]
            backend = boot._STATE["backend"]
            assert snapshot_fits(state, boot._STATE["full"])
            if warm is not None:
                assert backend.iterations == 0  # started at the optimum
            else:
                assert backend.iterations > 100
            answers.append(np.array([boot._replicate(r)[0] for r in range(3)]))
        finally:
            boot._STATE.clear()
    assert np.allclose(answers[0], answers[1], atol=1e-9)
    other = MixtureLP(summed, [1.0] * len(summed), table.merge_codes, start=2)
    assert not snapshot_fits(state, other)
