"""Why the samples do not explain a tokenizer: readable diagnostics from the final LP.

The LP's objective is the sum of two kinds of slack (in counts per :data:`mixinfer.solver.SCALE`
units of each category's sample):

* a **step slack** ``v_t`` is how far merge ``t``'s pair falls short, in the inferred mixture, of
  the most frequent competing pair: an *unexplained merge*. Growing the categories in whose
  samples the merge beats that competitor would explain it (``would_grow``); ``blocked_by`` names,
  for such a category, the pair its own sample holds more often than the merge at that step (what
  keeps its weight down: often a pair peculiar to that sample, e.g. a formatting artefact);
* a **pair slack** ``v_p`` is how much a pair is *over-represented* in the samples compared with
  the merges the tokenizer made: the pair should have been merged earlier if the samples were the
  training text. ``category`` names the category contributing most of its count.

On matched samples (the controlled simulations) both are small; a large objective per merge says a
category may be missing or a sample is unrepresentative of the training text (see
:data:`RESIDUAL_WARN`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mixinfer.replay import TokenTable
from mixinfer.solver import MixtureLP, SolveResult

TOP = 10
"""Entries listed per kind."""

RESIDUAL_WARN = 100.0
"""Objective per constrained merge (counts per million units) above which a warning says the
samples do not explain the tokenizer. On matched samples (the controlled simulations of
``scripts/bench_trust.py``: bundled languages, n=5, T=3000, 8 trials) it was 25 to 51, median 32;
GPT-2 with the 23 bundled categories at T=3000 gives 131. See BENCHMARKS.md."""

WEIGHT_FLOOR = 0.01
"""Categories below this proportion do not count as carrying the mixture in :func:`diagnose`'s
``merges_seen`` (a weight of 1e-14 makes every count non-zero without explaining anything)."""

SEEN_WARN = 0.5
"""``merges_seen``: warn when the categories carrying the mixture hold fewer than this fraction of
the merges that the samples together hold. Measured on the T=30000 panel (BENCHMARKS.md): GPT-2,
cl100k and Llama 0.99-1.00 of it; Llama 3's new merges past cl100k 0.001 (the answer, 100% English,
came from English having the fewest pairs left after cl100k's merges, not from the merges)."""


def _token_text(token: bytes) -> str:
    return token.decode("utf-8", errors="backslashreplace")


class _Decoder:
    """Pair codes back to token text."""

    def __init__(self, table: TokenTable) -> None:
        self.size = table.size
        self.tokens = {v: k for k, v in table.ids.items()}

    def pair(self, code: int) -> list[str]:
        a, b = divmod(int(code), self.size)
        return [_token_text(self.tokens.get(a, b"?")), _token_text(self.tokens.get(b, b"?"))]


def diagnose(
    lp: MixtureLP,
    result: SolveResult,
    names: Sequence[str],
    table: TokenTable,
    *,
    top: int = TOP,
) -> dict[str, Any]:
    """The diagnostics of a solved LP (JSON-ready); empty lists when nothing is unexplained."""
    details = result.details
    objective = float(result.objective)
    steps = lp.T - lp.start
    out: dict[str, Any] = {
        "objective": objective,
        "objective_per_merge": objective / max(steps, 1),
        "unexplained_merges": [],
        "overrepresented_pairs": [],
        "share": {"merges": 0.0, "pairs": 0.0, "top_merges": 0.0, "top_pairs": 0.0},
        "warnings": [],
    }
    alpha = np.asarray(result.proportions, dtype=float)
    _merges_seen(lp, alpha, out)
    if details is None:
        return canonical(out)
    decode = _Decoder(table)
    v_step = np.asarray(details.step_slack, dtype=float)
    v_pair = np.asarray(details.pair_slack, dtype=float)
    total = objective if objective > 0 else 1.0
    tol = 1e-9

    # Pair slacks on every LP pair (0 where the pair has no slack column).
    slack_of_pair = np.zeros(lp.pairs)
    if len(details.pair_codes):
        slack_of_pair[np.searchsorted(lp.codes, details.pair_codes)] = v_pair
    every_pair = np.arange(lp.pairs)

    merges_order = [int(k) for k in np.argsort(-v_step, kind="stable")[:top] if v_step[k] > tol]
    for k in merges_order:
        t = lp.start + k
        counts = lp._count_matrix(every_pair, np.full(lp.pairs, t))  # (pairs, n)
        merge = int(lp.merge_pair[t])
        rival_score = counts @ alpha - slack_of_pair
        rival_score[merge] = -np.inf
        rival = int(np.argmax(rival_score))
        margin = counts[merge] - counts[rival]
        grow_idx = [int(i) for i in np.argsort(-margin, kind="stable") if margin[i] > 0][:3]
        # Why a category that would explain the merge is not grown: in its own sample, some
        # other pair is more frequent than the merge at this step (a pair peculiar to that sample).
        blocked: dict[str, list[str]] = {}
        for i in grow_idx:
            own = counts[:, i].copy()
            own[merge] = -np.inf
            blocker = int(np.argmax(own))
            if own[blocker] > counts[merge, i]:
                blocked[names[i]] = decode.pair(lp.codes[blocker])
        out["unexplained_merges"].append(
            {
                "step": t,
                "merge": decode.pair(lp.codes[merge]),
                "competitor": decode.pair(lp.codes[rival]),
                "slack": float(v_step[k]),
                "share": float(v_step[k] / total),
                "would_grow": [names[i] for i in grow_idx],
                "blocked_by": blocked,
            }
        )

    pairs_order = [int(k) for k in np.argsort(-v_pair, kind="stable")[:top] if v_pair[k] > tol]
    for k in pairs_order:
        code = int(details.pair_codes[k])
        rows = np.flatnonzero(details.row_pair_codes == code)
        t = int(details.row_first_step[rows].min()) if len(rows) else lp.start
        index = int(np.searchsorted(lp.codes, code))
        counts = lp._count_matrix(np.array([index]), np.array([t]))[0]
        contribution = alpha * counts
        out["overrepresented_pairs"].append(
            {
                "pair": decode.pair(code),
                "step": t,
                "slack": float(v_pair[k]),
                "share": float(v_pair[k] / total),
                "category": names[int(np.argmax(contribution))] if contribution.max() > 0 else None,
            }
        )

    out["share"] = {
        "merges": float(v_step.sum() / total),
        "pairs": float(v_pair.sum() / total),
        "top_merges": float(sum(e["share"] for e in out["unexplained_merges"])),
        "top_pairs": float(sum(e["share"] for e in out["overrepresented_pairs"])),
    }
    if out["objective_per_merge"] > RESIDUAL_WARN:
        out["warnings"].append(
            f"the samples leave {out['objective_per_merge']:.0f} counts per million per merge "
            f"unexplained, far above the 25-51 of matched samples in simulations: a category "
            f"may be missing or a sample unrepresentative of the training text (see "
            f"'mixinfer explain' on the JSON result)"
        )
    return canonical(out)


def _merges_seen(lp: MixtureLP, alpha: np.ndarray, out: dict[str, Any]) -> None:
    """How many constrained merges occur (at their step) in any sample, and in the samples of the
    categories that carry the mixture; a warning when the mixture sits where the merges are not.

    An LP answer can explain the merges by nothing: a category whose text earlier merges already
    cut into whole words has almost no pairs left, so putting the weight there leaves almost no
    constraint violated. The objective is then small and looks like a good fit.
    """
    counts = lp.merge_counts()  # (constrained steps, categories)
    if counts.size == 0:
        return
    by_samples = float((counts > 0).any(axis=1).mean())
    carrying = alpha >= WEIGHT_FLOOR
    by_mixture = float((counts[:, carrying] > 0).any(axis=1).mean()) if carrying.any() else 0.0
    out["merges_seen"] = {"by_samples": by_samples, "by_mixture": by_mixture}
    if by_samples > 0 and by_mixture < SEEN_WARN * by_samples:
        out["warnings"].append(
            f"the categories that carry the answer hold only {100 * by_mixture:.1f}% of the "
            f"constrained merges in their samples (all samples together: {100 * by_samples:.0f}%): "
            f"the proportions follow which categories have the fewest pairs left, not the merges, "
            f"and should not be trusted. This happens when earlier merges (e.g. a --base) already "
            f"cut those categories' text into whole words, or when the samples are too small for "
            f"late merges; try larger samples or fewer --merges"
        )


def summary_lines(diagnostics: dict[str, Any], limit: int = 3) -> list[str]:
    """A few readable lines for the table footer."""
    lines = []
    for e in diagnostics.get("unexplained_merges", [])[:limit]:
        grow = ", ".join(e["would_grow"])
        need = f"would need more {grow}" if grow else "no category of the samples would explain it"
        blocked = "; ".join(f"{c} held down by {_show(p)}" for c, p in e.get("blocked_by", {}).items())
        lines.append(
            f"unexplained merge #{e['step']} {_show(e['merge'])} (beaten by {_show(e['competitor'])}): "
            f"slack {e['slack']:.3g}, {100 * e['share']:.1f}% of the objective; {need}"
            + (f" ({blocked})" if blocked else "")
        )
    for e in diagnostics.get("overrepresented_pairs", [])[:limit]:
        lines.append(
            f"over-represented pair {_show(e['pair'])}: slack {e['slack']:.3g}, "
            f"{100 * e['share']:.1f}% of the objective; mostly from {e['category']}"
        )
    return lines


def show_token(text: str) -> str:
    """A token's text quoted for display: control characters escaped once (bytes that are not
    UTF-8 already read as ``\\xNN``), so ``'\\n'`` and ``'\\xc3'`` print as such."""
    return "'" + text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + "'"


def _show(pair: Sequence[str]) -> str:
    return show_token(pair[0]) + "+" + show_token(pair[1])


_ORDER = {
    "top": (
        "objective",
        "objective_per_merge",
        "unexplained_merges",
        "overrepresented_pairs",
        "share",
        "merges_seen",
        "warnings",
    ),
    "unexplained_merges": ("step", "merge", "competitor", "slack", "share", "would_grow", "blocked_by"),
    "overrepresented_pairs": ("pair", "step", "slack", "share", "category"),
    "share": ("merges", "pairs", "top_merges", "top_pairs"),
    "merges_seen": ("by_samples", "by_mixture"),
}


def _ordered(d: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    out = {k: d[k] for k in keys if k in d}
    out.update({k: v for k, v in d.items() if k not in out})
    return out


def canonical(diagnostics: dict[str, Any]) -> dict[str, Any]:
    """The diagnostics with keys in their documented order (the cache stores them sorted)."""
    d = _ordered(diagnostics, _ORDER["top"])
    for kind in ("unexplained_merges", "overrepresented_pairs"):
        if kind in d:
            d[kind] = [_ordered(e, _ORDER[kind]) for e in d[kind]]
    for part in ("share", "merges_seen"):
        if isinstance(d.get(part), dict):
            d[part] = _ordered(d[part], _ORDER[part])
    return d
