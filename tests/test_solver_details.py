"""The solve result keeps the final LP's slacks, rows and duals (issue 11 item 2, for issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import mixinfer
from mixinfer import solver
from mixinfer.counting import count_words
from mixinfer.replay import TokenTable, replay
from mixinfer.report import CategoryStats, InferenceResult
from mixinfer.samples import discover

PYLIB = Path(json.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real_lp(
    small_bpe_tokenizer_json: Path, license_text: str, tmp_path_factory: pytest.TempPathFactory
) -> solver.MixtureLP:
    """English licences against Python source and licence text mixed, T=300, starting at merge 20."""
    root = tmp_path_factory.mktemp("details")
    code = "".join((PYLIB / n).read_text(encoding="utf-8") for n in ("textwrap.py", "shlex.py", "glob.py"))
    texts = {
        "en": license_text[:20_000],
        "code": code[:20_000],
        "mix": license_text[300_000:310_000] + code[-10_000:],
    }
    return _lp_of(small_bpe_tokenizer_json, texts, root, merges=300, start=20)[0]


def _lp_of(
    tok_path: Path, texts: dict[str, str], root: Path, *, merges: int, start: int = 0
) -> tuple[solver.MixtureLP, TokenTable]:
    """One file per category under ``root``, counted (40 kB each) and replayed for ``merges``."""
    for cat, text in texts.items():
        (root / cat).mkdir()
        (root / cat / "a.txt").write_text(text, encoding="utf-8")
    tok = mixinfer.load_tokenizer(tok_path)
    counts = count_words(discover(root), tok.pretokenizer, max_bytes=40_000, workers=1)
    table = TokenTable.build(tok)
    traces = [replay(wc.words, table, merges) for wc in counts]
    units = [int(tr.init_counts.sum()) for tr in traces]
    names = [wc.category for wc in counts]
    return solver.MixtureLP(traces, units, table.merge_codes, start=start, names=names), table


@pytest.mark.parametrize("backend", ["highs", "cbc"])
def test_details_hold_the_slacks_of_the_final_solution(real_lp: solver.MixtureLP, backend: str) -> None:
    lp = real_lp
    result, _ = solver.solve(lp, solver=backend, rows_per_round=200)
    d = result.details
    assert d is not None and result.status == "optimal"
    assert d.start == 20 and len(d.step_slack) == lp.steps == 280
    np.testing.assert_array_equal(d.units, lp.units)
    assert np.all(d.step_slack >= -1e-9) and np.all(d.pair_slack >= -1e-9)
    assert len(d.pair_codes) == len(d.pair_slack) > 0
    assert np.all(np.diff(d.pair_codes) > 0) and np.isin(d.pair_codes, lp.codes).all()
    # The objective is the sum of all slacks.
    assert d.step_slack.sum() + d.pair_slack.sum() == pytest.approx(result.objective, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("backend", ["highs", "cbc"])
def test_the_row_set_describes_constraints_the_solution_satisfies(
    real_lp: solver.MixtureLP, backend: str
) -> None:
    lp = real_lp
    result, _ = solver.solve(lp, solver=backend, rows_per_round=200)
    d = result.details
    assert d is not None
    k = len(d.row_pair_codes)
    assert k > 0 and len(d.row_first_step) == len(d.row_end_step) == k
    assert np.all(d.row_first_step < d.row_end_step)
    assert np.all(d.row_first_step >= lp.start) and np.all(d.row_end_step <= lp.T)
    # Every (step, pair) the rows stand for: v_t + v_p + sum_i alpha_i (c[i,m(t),t] - c[i,p,t]) >= 0.
    reps = d.row_end_step - d.row_first_step
    steps = np.concatenate([np.arange(a, b) for a, b in zip(d.row_first_step, d.row_end_step, strict=True)])
    pair_idx = np.searchsorted(lp.codes, np.repeat(d.row_pair_codes, reps))
    v_p = dict(zip(d.pair_codes.tolist(), d.pair_slack.tolist(), strict=True))
    slack_p = np.array([v_p.get(int(c), 0.0) for c in lp.codes[pair_idx]])
    lhs = d.step_slack[steps - lp.start] + slack_p + lp.coefficients(steps, pair_idx) @ result.proportions
    assert lhs.min() >= -1e-6 * max(1.0, float(np.abs(lhs).max()))


def test_highs_gives_duals_that_close_the_duality_gap(real_lp: solver.MixtureLP) -> None:
    lp = real_lp
    result, _ = solver.solve(lp, solver="highs", rows_per_round=200)
    d = result.details
    assert d is not None
    assert d.row_duals is not None and len(d.row_duals) == len(d.row_pair_codes)
    assert d.step_duals is not None and len(d.step_duals) == lp.steps
    assert d.alpha_reduced_costs is not None and len(d.alpha_reduced_costs) == lp.n
    assert d.simplex_dual is not None
    # Every row but sum(alpha) = 1 has a zero bound, so the dual objective is the simplex row's dual
    # plus the reduced cost of any alpha at its upper bound of 1.
    at_upper = result.proportions > 1 - 1e-9
    dual_objective = d.simplex_dual + float(d.alpha_reduced_costs[at_upper].sum())
    assert dual_objective == pytest.approx(result.objective, rel=1e-6, abs=1e-6)


def test_pulp_backends_have_no_duals(real_lp: solver.MixtureLP) -> None:
    result, _ = solver.solve(real_lp, solver="cbc", rows_per_round=200)
    d = result.details
    assert d is not None
    assert d.row_duals is d.step_duals is d.alpha_reduced_costs is d.simplex_dual is None


def test_the_inference_result_carries_details_without_serialising_them(real_lp: solver.MixtureLP) -> None:
    solved, _ = solver.solve(real_lp)
    fields = dict(
        proportions={"a": 0.75, "b": 0.25}, tokenizer="tok", merges_used=300, merges_total=1244,
        pretokenizer={"name": "default"}, solver={"name": "highs", "status": "optimal"}, timing={},
        samples={"a": CategoryStats(1, 1, 1), "b": CategoryStats(1, 1, 1)}, unit="document", max_bytes=10,
    )  # fmt: skip
    plain = InferenceResult(**fields)  # type: ignore[arg-type]
    rich = InferenceResult(**fields, lp=solved.details)  # type: ignore[arg-type]
    assert plain.lp is None and rich.lp is solved.details
    assert rich.to_json() == plain.to_json() and "lp" not in json.loads(rich.to_json())
    assert rich == plain  # the details are not part of equality either


def test_the_lp_bar_runs_in_seconds_against_an_estimate(real_lp: solver.MixtureLP) -> None:
    """Issue 16 item 3: an estimate before the first round, an ETA-able total, a closing event."""
    from mixinfer.progress import Progress

    events: list[Progress] = []
    result, _ = solver.solve(real_lp, rows_per_round=200, progress=events.append)
    assert [e.stage for e in events] == ["solve"] * len(events) and len(events) >= 2
    assert all(e.unit == "s" and e.total is not None for e in events)
    first, last = events[0], events[-1]
    assert first.detail.startswith("round 0:")
    assert "estimated" in first.detail and "280 merges" in first.detail
    # Only the last event completes the bar; the others stay below their total.
    assert all(e.done < e.total for e in events[:-1])  # type: ignore[operator]
    assert last.done == last.total and last.detail == f"optimal after {result.rounds} rounds"
    # The per-round profile the benchmark reads.
    solved = [h for h in result.history if "solve_seconds" in h]
    assert len(solved) == result.rounds
    assert all(h["added"] > 0 and h["iterations"] >= 0 and h["search_seconds"] >= 0 for h in solved)


def test_the_time_estimate_grows_with_the_lp() -> None:
    base = solver.estimate_seconds(3000, 5, 100_000)
    assert base > 0
    assert solver.estimate_seconds(30000, 5, 100_000) > 10 * base  # superlinear in merges
    assert solver.estimate_seconds(3000, 50, 100_000) > base
    assert solver.estimate_seconds(3000, 5, 400_000) > base


def test_a_mixture_that_sits_where_the_merges_are_not_is_flagged(
    small_bpe_tokenizer_json: Path, license_text: str, tmp_path: Path
) -> None:
    """English against text of characters the English tokenizer never merged: the solved mixture
    holds the merges (no warning); all weight on the other category explains the merges by
    nothing, and the diagnostics say so."""
    import dataclasses

    from mixinfer.diagnostics import diagnose

    texts = {
        "en": license_text[:30_000],
        "han": " ".join(
            "".join(chr(0x4E00 + (i * 7919 + j * 104729) % 3000) for j in range(1 + i % 4))
            for i in range(6000)
        ),
    }
    lp, table = _lp_of(small_bpe_tokenizer_json, texts, tmp_path, merges=400)
    names = lp.names
    result, _ = solver.solve(lp)
    solved = diagnose(lp, result, names, table)
    seen = solved["merges_seen"]
    assert seen["by_samples"] > 0.9
    assert seen["by_mixture"] == pytest.approx(seen["by_samples"])
    assert not any("carry the answer" in w for w in solved["warnings"])
    only_han = np.array([1.0 if n == "han" else 0.0 for n in names])
    forced = diagnose(lp, dataclasses.replace(result, proportions=only_han), names, table)
    assert forced["merges_seen"]["by_mixture"] < 0.05
    assert any("carry the answer" in w and "should not be trusted" in w for w in forced["warnings"])
    assert list(forced)[list(forced).index("share") + 1] == "merges_seen"
