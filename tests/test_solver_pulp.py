"""CBC through whichever PuLP API is installed (issue 11, item 6): no deprecated calls on PuLP 3.3,
COIN_CMD first (the only CBC of PuLP 4), the bundled binary of older PuLP as a fallback."""

from __future__ import annotations

import types
import warnings
from typing import Any

import numpy as np
import pytest

from mixinfer import errors, solver
from mixinfer.replay import Trace


def _lp() -> solver.MixtureLP:
    def trace(counts: list[int]) -> Trace:
        empty = np.zeros(0, dtype=np.int64)
        return Trace(2, np.array([1, 2]), np.array(counts), empty, empty, empty)

    return solver.MixtureLP([trace([50, 10]), trace([10, 50])], [10**6, 10**6], np.array([1, 3]))


def test_a_cbc_solve_makes_no_deprecated_pulp_call() -> None:
    lp = _lp()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        cbc, _ = solver.solve(lp, solver="cbc")
    highs, _ = solver.solve(lp, solver="highs")
    assert cbc.status == "optimal" and cbc.backend == "pulp:cbc"
    assert cbc.objective == pytest.approx(highs.objective, abs=1e-6)
    np.testing.assert_allclose(cbc.proportions, highs.proportions, atol=1e-6)


class _FakeSolver:
    def __init__(self, available: bool, **kwargs: Any) -> None:
        self._available = available
        self.kwargs = kwargs

    def available(self) -> bool:
        return self._available


def _fake_pulp(coin: bool, legacy: bool | None) -> Any:
    """A stand-in for the pulp module: COIN_CMD available or not; PULP_CBC_CMD absent (None)."""
    ns = types.SimpleNamespace()
    ns.COIN_CMD = lambda **kw: _FakeSolver(coin, name="COIN_CMD", **kw)
    if legacy is not None:

        def bundled(**kw: Any) -> _FakeSolver:
            warnings.warn("PULP_CBC_CMD is deprecated (PuLP 4.0).", DeprecationWarning, stacklevel=2)
            return _FakeSolver(legacy, name="PULP_CBC_CMD", **kw)

        ns.PULP_CBC_CMD = bundled
    return ns


def test_coin_cmd_is_preferred_when_it_finds_cbc() -> None:
    chosen = solver.pulp_cbc(_fake_pulp(coin=True, legacy=True), time_limit=5.0)
    assert chosen.kwargs == {"name": "COIN_CMD", "msg": False, "timeLimit": 5.0}


def test_older_pulp_falls_back_to_its_bundled_cbc_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        chosen = solver.pulp_cbc(_fake_pulp(coin=False, legacy=True))
    assert chosen.kwargs["name"] == "PULP_CBC_CMD" and chosen.kwargs["msg"] is False


@pytest.mark.parametrize("legacy", [None, False], ids=["pulp4-without-cbcbox", "bundled-binary-missing"])
def test_no_cbc_anywhere_names_the_extra_to_install(legacy: bool | None) -> None:
    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'pulp\[cbc\]'"):
        solver.pulp_cbc(_fake_pulp(coin=False, legacy=legacy))


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (1, "optimal"),
        (0, "time_limit"),  # PuLP 3.x: CBC stopped by its time limit
        (types.SimpleNamespace(status=1), "optimal"),  # PuLP 4.0: LpSolveStats
        (types.SimpleNamespace(status=-4), "time_limit"),  # LpSolveStatus.TimeLimit
    ],
)
def test_solve_outcomes_of_pulp_3_and_4(outcome: Any, state: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import pulp

    lp = _lp()
    backend = solver.PulpBackend(lp, "cbc")
    segments, nodes, _ = lp.violations(np.array([0.5, 0.5]), np.zeros(lp.steps), np.zeros(lp.pairs))
    backend.add_rows(segments, nodes)
    monkeypatch.setattr(pulp.LpProblem, "solve", lambda self, *a, **k: outcome)
    assert backend.solve(None)[0] == state


def test_an_impossible_pulp_4_status_is_named() -> None:
    fake = types.SimpleNamespace(LpSolveStatus=lambda code: types.SimpleNamespace(name="NumericalError"))
    assert solver._pulp_status_text(fake, -12) == "NumericalError"
