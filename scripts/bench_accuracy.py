#!/usr/bin/env python3
"""Regenerate the accuracy section of BENCHMARKS.md: controlled experiments (issues 2 and 5).

Runs :func:`mixinfer.simulate.simulate` -- tokenizers trained on random known mixtures of the
bundled sample categories, attacked with disjoint samples -- over a grid of settings for natural
languages (``data_samples/general`` without ``code``) and programming languages
(``data_samples/programming``), and rewrites the part of BENCHMARKS.md between
``<!-- accuracy:start -->`` and ``<!-- accuracy:end -->`` (creating the file if needed and leaving
every other section alone).

The grid varies one factor at a time around the acceptance setting of issue 2 (n=5, 30 MB of
training text, attack samples of up to 2 MB per category, T=3000 merges, vocabulary 30000):
T in {1000, 3000, 10000}, two attack-sample sizes, and n in {5, 10}. Every cell with the same
categories, n and training settings reuses the same tokenizers (trial k is the same mixture in
every cell), so only the first cell pays for training; everything is cached on disk, so a re-run
only re-solves the LPs.

    python scripts/bench_accuracy.py                  # full grid (about an hour on 2 cores)
    python scripts/bench_accuracy.py --acceptance-only  # the two acceptance cells (~15 min)
    python scripts/bench_accuracy.py --quick          # small settings, a few minutes
    python scripts/bench_accuracy.py --robustness     # every estimator, in-domain and shifted

``--robustness`` (issue 15) rewrites the part between ``<!-- robustness:start -->`` and
``<!-- robustness:end -->`` instead: every estimator of :mod:`mixinfer.estimators` on the
in-domain pools above and on the *shift* benchmark (tokenizers trained on one source of each
category, attacked with another: ``scripts/shift_samples.py``), n=5 and n=10, languages and code,
T=3000, 8 trials each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from mixinfer.estimators import DEFAULT_ESTIMATOR, ESTIMATORS, Context, Estimator, Run  # noqa: E402
from mixinfer.progress import Progress  # noqa: E402
from mixinfer.simulate import SimulationResult, SimulationSettings, simulate  # noqa: E402
from mixinfer.solver import MixtureLP, SolveResult, solve  # noqa: E402

START = "<!-- accuracy:start -->"
END = "<!-- accuracy:end -->"
TITLE = "# Benchmarks\n"

# Hayase et al. (2024), Table 1 (1 GB of data per category; mean log10 MSE).
PAPER = {
    ("languages", 5): "−7.30",
    ("languages", 112): "−7.69",
    ("code", 5): "−6.46",
}
PAPER_RANDOM_N5 = "−1.39"
PAPER_BASELINES = "≈ −2"

# Issue 2's acceptance targets for the LP's mean log10 MSE (n=5, T=3000, ~30 MB, ~2 MB attack).
TARGETS = {"languages": -4.5, "code": -3.5}


@dataclass(frozen=True)
class Group:
    """A pool of categories: where they are and which to leave out."""

    name: str
    samples: str  # relative to the repository root
    exclude: tuple[str, ...] = ()


GROUPS = {
    "languages": Group("languages", "data_samples/general", ("code",)),
    "code": Group("code", "data_samples/programming"),
}


@dataclass(frozen=True)
class Cell:
    """One simulation of the grid."""

    group: str
    n: int
    merges: int
    attack_bytes: int
    trials: int
    train_bytes: int
    vocab: int
    acceptance: bool = False

    def settings(self, seed: int, **overrides: object) -> SimulationSettings:
        values: dict[str, object] = {
            "n": self.n,
            "trials": self.trials,
            "train_bytes": self.train_bytes,
            "attack_bytes": self.attack_bytes,
            "vocab": self.vocab,
            "merges": self.merges,
            "seed": seed,
        }
        values.update(overrides)
        return SimulationSettings(**values)  # type: ignore[arg-type]

    def command(self, seed: int) -> str:
        g = GROUPS[self.group]
        exclude = f" --exclude {','.join(g.exclude)}" if g.exclude else ""
        return (
            f"mixinfer simulate --samples {g.samples}{exclude} --n {self.n} "
            f"--trials {self.trials} --train-bytes {size(self.train_bytes)} "
            f"--attack-bytes {size(self.attack_bytes)} --vocab {self.vocab} "
            f"--merges {self.merges} --seed {seed}"
        )


def size(n: int) -> str:
    """A byte count as the CLI accepts it (30MB, 200kB, 1234)."""
    for unit, factor in (("MB", 10**6), ("kB", 10**3)):
        if n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


def human(n: float) -> str:
    """A byte count for tables (30 MB, 0.72 MB, 200 kB)."""
    if n >= 10**6:
        return f"{n / 1e6:.3g} MB"
    return f"{n / 1e3:.3g} kB"


def full_grid() -> list[Cell]:
    """Acceptance cells first (n=5, T=3000, 2 MB), then one factor at a time around them."""
    mb = 10**6
    groups = ("languages", "code")
    cells = [Cell(g, 5, 3000, 2 * mb, 8, 30 * mb, 30000, acceptance=True) for g in groups]
    for g in groups:
        cells += [
            Cell(g, 5, 1000, 2 * mb, 5, 30 * mb, 30000),
            Cell(g, 5, 10000, 2 * mb, 3, 30 * mb, 30000),
            Cell(g, 5, 3000, 200_000, 5, 30 * mb, 30000),
            Cell(g, 10, 3000, 2 * mb, 5, 30 * mb, 30000),
            Cell(g, 10, 3000, 200_000, 5, 30 * mb, 30000),
        ]
    return cells


def quick_grid() -> list[Cell]:
    """Small settings: 3 MB of training, vocabulary 3256, 3 trials."""
    groups = ("languages", "code")
    cells = [Cell(g, 5, 1000, 300_000, 3, 3_000_000, 3256, acceptance=True) for g in groups]
    for g in groups:
        cells += [
            Cell(g, 5, 300, 300_000, 3, 3_000_000, 3256),
            Cell(g, 5, 1000, 60_000, 3, 3_000_000, 3256),
        ]
    return cells


# --------------------------------------------------------------------------------------------------
# Machine facts


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024**2:.0f} GiB RAM"
                break
    except OSError:
        pass
    try:
        import importlib.metadata as md

        versions = ", ".join(f"{p} {md.version(p)}" for p in ("tokenizers", "highspy", "numpy"))
    except Exception:  # noqa: BLE001 - informational only
        versions = ""
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"`nproc` {nproc}, {cpu}, {ram}; Python {platform.python_version()}"
        + (f", {versions}" if versions else "")
        + "; the machine was shared with other jobs, so seconds are indicative"
    )


# --------------------------------------------------------------------------------------------------
# Rendering


def fmt(x: float, digits: int = 2) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:.{digits}f}".replace("-", "−")


def mean_std(result: SimulationResult, method: str) -> str:
    for s in result.summary():
        if s.method == method:
            if s.trials == 0:
                return "n/a"
            if s.trials == 1 or not math.isfinite(s.std):
                return fmt(s.mean)
            return f"{fmt(s.mean)} ± {fmt(s.std)}"
    return "–"


def stat(result: SimulationResult, method: str, what: str) -> float:
    for s in result.summary():
        if s.method == method:
            return float(getattr(s, what))
    return float("nan")


def expected_random(n: int, draws: int = 200_000) -> float:
    """Mean log10 MSE of guessing uniformly on the simplex, over many draws (seeded)."""
    import numpy as np

    rng = np.random.default_rng(12345)
    a = rng.dirichlet(np.ones(n), draws)
    b = rng.dirichlet(np.ones(n), draws)
    return float(np.mean(np.log10(((a - b) ** 2).mean(axis=1))))


def render(
    runs: list[tuple[Cell, SimulationResult]],
    prefix_runs: dict[Cell, SimulationResult],
    seed: int,
    mode: str,
    minutes: float,
    argv: str,
) -> str:
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        START,
        "## Accuracy: controlled experiments",
        "",
        f"Generated by `{argv}` ({mode}) on {today} in {minutes:.0f} min. Machine: {machine()}.",
        "",
        "Each trial draws *n* categories and their weights uniformly from the simplex, trains a "
        "byte-level BPE with HF `tokenizers` (`Digits` + `ByteLevel` with the GPT-2 regex, one "
        "document per training item) on the weighted mixture of the categories' *training* "
        "documents, and asks every method for the mixture from the categories' *attack* "
        "documents (disjoint from the training ones: documents alternate between the two parts). "
        "Scores are log10 of the MSE over the *n* categories of byte proportions, averaged over "
        "trials (± standard deviation); lower is better. LP is `mixinfer infer` with the first T "
        "merges; TEE, TC and random are the paper's baselines (`mixinfer/baselines.py`); TEE and "
        "TC use the whole trained tokenizer (vocabulary 30000, or the row's), and TEE's log-log "
        "model is fitted on the other trials of the same row.",
        "",
    ]
    sizes: dict[str, list[float]] = {}
    for cell, res in runs:
        sizes.setdefault(cell.group, []).append(res.mean_attack_bytes())

    acc = [(c, r) for c, r in runs if c.acceptance]
    if acc:
        lines += ["### Acceptance", ""]
        if mode == "quick":
            lines += [
                "*Quick settings* (`--quick`): smaller than the acceptance settings of issues 2 "
                "and 5, so the verdicts below are indicative only; run without `--quick`.",
                "",
            ]
        lines += [
            "| categories | setting | LP | TEE | TC | random | issue 2: LP ≤ target | "
            "issue 5: LP ≥ 2 below TEE and TC, all beat random |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for cell, res in acc:
            lp = stat(res, "lp", "mean")
            tee = stat(res, "tee", "mean")
            tc = stat(res, "tc", "mean")
            rnd = stat(res, "random", "mean")
            target = TARGETS[cell.group]
            ok2 = lp <= target
            verdict2 = (
                f"{fmt(target, 1)}: **met**" if ok2 else f"{fmt(target, 1)}: **missed** by {lp - target:.2f}"
            )
            gap = min(tee, tc) - lp
            ok5 = gap >= 2 and max(lp, tee, tc) < rnd
            beat = "all beat random" if max(lp, tee, tc) < rnd else "not all beat random"
            verdict5 = f"{'**met**' if ok5 else '**missed**'}: gap {gap:.2f}, {beat}"
            setting = (
                f"n={cell.n}, {human(cell.train_bytes)} training, attack ≤ "
                f"{human(cell.attack_bytes)} (mean used {human(res.mean_attack_bytes())}), "
                f"T={cell.merges}, vocab {cell.vocab}, {cell.trials} mixtures"
            )
            lines.append(
                f"| {cell.group} | {setting} | {mean_std(res, 'lp')} | {mean_std(res, 'tee')} | "
                f"{mean_std(res, 'tc')} | {mean_std(res, 'random')} | {verdict2} | {verdict5} |"
            )
        lines.append("")
        for cell, res in acc:
            alt = prefix_runs.get(cell)
            if alt is None:
                continue
            lp = stat(res, "lp", "mean")
            tee, tc = stat(alt, "tee", "mean"), stat(alt, "tc", "mean")
            lines.append(
                f"- {cell.group}: with TEE and TC restricted to the LP's first {cell.merges} "
                f"merges (`--baseline-merges {cell.merges}`) instead of the whole vocabulary: "
                f"TEE {mean_std(alt, 'tee')}, TC {mean_std(alt, 'tc')}; LP is "
                f"{min(tee, tc) - lp:.2f} below the better of the two."
            )
        n_values = sorted({c.n for c, _ in acc})
        lines.append(
            "- random guessing: these trials' draws give the random column; its expectation over "
            "many draws is "
            + ", ".join(f"{fmt(expected_random(n))} for n={n}" for n in n_values)
            + f" (the paper: {PAPER_RANDOM_N5} for n=5)."
        )
        lines.append("")

    lines += [
        "### Grid, next to the paper's Table 1",
        "",
        "| categories | n | train bytes | attack bytes: cap (mean used) | T | vocab | trials | "
        "LP | LP median | TEE | TC | random | paper LP | s/trial (LP) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = list(GROUPS)
    for cell, res in sorted(
        runs, key=lambda r: (order.index(r[0].group), r[0].n, -r[0].attack_bytes, r[0].merges)
    ):
        paper = PAPER.get((cell.group, cell.n), "–")
        lines.append(
            f"| {cell.group} | {cell.n} | {human(cell.train_bytes)} | "
            f"{human(cell.attack_bytes)} ({human(res.mean_attack_bytes())}) | {cell.merges} | "
            f"{cell.vocab} | {cell.trials} | {mean_std(res, 'lp')} | "
            f"{fmt(stat(res, 'lp', 'median'))} | {mean_std(res, 'tee')} | "
            f"{mean_std(res, 'tc')} | {mean_std(res, 'random')} | {paper} | "
            f"{stat(res, 'lp', 'seconds'):.0f} |"
        )
    lines += [
        "",
        f"Paper (Hayase et al. 2024, Table 1, 1 GB of data per category): languages n=5 "
        f"{PAPER[('languages', 5)]}, n=112 {PAPER[('languages', 112)]}; code n=5 "
        f"{PAPER[('code', 5)]}; random guessing n=5 {PAPER_RANDOM_N5}; the TEE and TC baselines "
        f"{PAPER_BASELINES}.",
        "",
        "Why our numbers are lower than the paper's: the bundled samples hold about 0.6–1.5 MB of "
        "text per natural language and 0.7–4 MB per programming language (4 MB for 8 of the 13; "
        "the build machine has less sql, shell, json, xml and rst source), so each category's "
        "training part is only ~0.3–2 MB, fed repeatedly to reach the training budget (a "
        "tokenizer trained on 30 MB has seen at most a few MB of *distinct* text), and the attack "
        "part is the other half (“2 MB” is capped at what is there, see the mean used). The LP "
        "recovers the mixture of the text the tokenizer was trained on essentially exactly (the "
        "test suite checks this with the training text itself as the sample); what limits it "
        "here is how well a MB-sized attack sample represents a MB-sized training sample of the "
        "same category. Programming languages are less homogeneous across files than natural "
        "languages, hence worse. The paper's 1 GB per category removes most of that sampling "
        "noise.",
        "",
        "Commands (one per row; add `--output results.csv` for one row per trial and method):",
        "",
        "```sh",
    ]
    seen = set()
    for cell, _ in runs:
        cmd = cell.command(seed)
        if cmd not in seen:
            seen.add(cmd)
            lines.append(cmd)
    lines += ["```", "", END]
    return "\n".join(lines) + "\n"


def update_benchmarks(path: Path, section: str) -> None:
    """Replace the text between the markers (or append the section); keep everything else."""
    text = path.read_text(encoding="utf-8") if path.exists() else TITLE
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END) + r"\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text, count=1)
    else:
        if not text.endswith("\n"):
            text += "\n"
        text += "\n" + section
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Robustness: estimators on in-domain and shifted samples (issue 15)

ROBUST_START = "<!-- robustness:start -->"
ROBUST_END = "<!-- robustness:end -->"
# Issue 15's acceptance for a new default: at least this much lower mean log10 MSE on the shifted
# rows, and in-domain no more than TOLERANCE_IN_DOMAIN worse than the exact LP.
SHIFT_GAIN = 0.4
TOLERANCE_IN_DOMAIN = 0.1


@dataclass(frozen=True)
class RobustCell:
    """One row of the robustness table: a pool, in-domain or shifted, n, distractors offered."""

    group: str
    shift: bool
    n: int
    trials: int = 8
    distractors: int = 0
    merges: int = 3000
    train_bytes: int = 30 * 10**6
    attack_bytes: int = 2 * 10**6
    vocab: int = 30000

    def label(self) -> str:
        base = "shifted" if self.shift else "in-domain"
        return f"{base} + {self.distractors} distractors" if self.distractors else base

    def slug(self) -> str:
        return self.label().replace(" + ", "-").replace(" ", "")

    def settings(self, seed: int, estimator: str) -> SimulationSettings:
        return SimulationSettings(
            n=self.n,
            trials=self.trials,
            train_bytes=self.train_bytes,
            attack_bytes=self.attack_bytes,
            vocab=self.vocab,
            merges=self.merges,
            methods=("lp", "random"),
            seed=seed,
            estimator=estimator,
            distractors=self.distractors,
        )

    def command(self, seed: int, shift_dir: Path, estimator: str) -> str:
        if self.shift:
            where = (
                f"--samples {shift_dir}/{self.group}/train --attack-samples {shift_dir}/{self.group}/attack"
            )
        else:
            g = GROUPS[self.group]
            where = f"--samples {g.samples}" + (f" --exclude {','.join(g.exclude)}" if g.exclude else "")
        return (
            f"mixinfer simulate {where} --n {self.n} --trials {self.trials} "
            f"--train-bytes {size(self.train_bytes)} --attack-bytes {size(self.attack_bytes)} "
            f"--vocab {self.vocab} --merges {self.merges} --methods lp,random --seed {seed} "
            f"--estimator {estimator}" + (f" --distractors {self.distractors}" if self.distractors else "")
        )


def merged_pairs(lp: MixtureLP, all_merge_codes: np.ndarray | None, *, within_t: bool) -> np.ndarray:
    """A bool per pair of ``lp.codes``: is it a merge of the tokenizer (within the first T, or
    anywhere in its merge list)?"""
    allowed = np.zeros(lp.pairs, dtype=bool)
    allowed[lp.merge_pair] = True
    if not within_t and all_merge_codes is not None and lp.pairs:
        codes = np.asarray(all_merge_codes, dtype=np.int64)
        idx = np.clip(np.searchsorted(lp.codes, codes), 0, lp.pairs - 1)
        allowed[idx[lp.codes[idx] == codes]] = True
    return allowed


def _restricted(within_t: bool) -> Run:
    def run(lp: MixtureLP, ctx: Context) -> tuple[SolveResult, list[str]]:
        lp.allowed, lp.pair_cost = merged_pairs(lp, ctx.all_merge_codes, within_t=within_t), None
        return solve(lp, solver=ctx.solver, time_limit=ctx.time_limit, progress=ctx.progress)

    return run


def _soft(cost: float) -> Run:
    def run(lp: MixtureLP, ctx: Context) -> tuple[SolveResult, list[str]]:
        merged = merged_pairs(lp, ctx.all_merge_codes, within_t=False)
        lp.allowed, lp.pair_cost = None, np.where(merged, 1.0, cost)
        return solve(lp, solver=ctx.solver, time_limit=ctx.time_limit, progress=ctx.progress)

    return run


# Measured here, not shipped (see the robustness section): registered in this process only.
EXPERIMENTAL = (
    Estimator(
        "merged",
        "only pairs the tokenizer merges (anywhere in its merge list) compete with a merge",
        _restricted(within_t=False),
    ),
    Estimator(
        "merged-t", "only pairs among the first T merges compete with a merge", _restricted(within_t=True)
    ),
    Estimator(
        "soft-merged",
        "every pair competes, but the slack of a pair the tokenizer never merges costs 0.25 instead of 1",
        _soft(0.25),
        "unmerged_cost=0.25",
    ),
)


# Categories offered besides the mixture's in the distractor rows (n=5): the code pool's shifted
# side has 11 categories, so 5 + 5 fit in every pool.
DISTRACTORS = 5


def robust_cells(trials: int) -> list[RobustCell]:
    """The 8 rows of issue 15's acceptance, then 4 rows with distractors (the real-audit guard)."""
    plain = [
        RobustCell(g, shift, n, trials)
        for g in ("languages", "code")
        for n in (5, 10)
        for shift in (False, True)
    ]
    offered = [
        RobustCell(g, shift, 5, trials, DISTRACTORS) for g in ("languages", "code") for shift in (False, True)
    ]
    return plain + offered


def render_robustness(
    results: dict[tuple[RobustCell, str], SimulationResult],
    cells: list[RobustCell],
    estimators: list[str],
    shift_summary: dict[str, object],
    shift_dir: Path,
    seed: int,
    minutes: float,
    argv: str,
) -> str:
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
    pools = shift_summary["pools"]  # type: ignore[index]

    def left(group: str) -> str:
        info = pools[group]  # type: ignore[index]
        return ", ".join(sorted(info["left_out"])) or "none"

    lines = [
        ROBUST_START,
        "## Robustness: estimators on in-domain and shifted samples (issue 15)",
        "",
        f"Generated by `{argv}` on {today} in {minutes:.0f} min. Machine: {machine()}.",
        "",
        "*In-domain* rows are the accuracy section's setting (documents of each bundled category "
        "alternate between training and attack). *Shifted* rows train every tokenizer on one "
        "source of each category and attack it with another (`mixinfer simulate --samples TRAIN "
        "--attack-samples ATTACK`; the folders are built by `python scripts/shift_samples.py "
        f"--output {shift_dir}` from the provenance in `data_samples/MANIFEST.json`): languages "
        "train on translated manual pages and are attacked with gettext catalogues (English: "
        "with `/usr/share/doc` prose); programming languages train on some projects and are "
        "attacked with others (projects by source directory, dealt to balance bytes). A category "
        "enters the shifted pool only with at least 100 kB on both sides, so the shifted pools are "
        f"smaller: languages without {left('languages')} (19 of 22), code without "
        f"{left('code')} (11 of 13). All rows: 30 MB of training text, attack samples of up to "
        "2 MB per category, vocabulary 30000, T=3000, seed 0; mean log10 MSE ± sd (trials), lower "
        "is better. Every estimator scores the same tokenizers and attack samples of a row. Rows "
        f"*+ {DISTRACTORS} distractors* offer {DISTRACTORS} more categories of the pool that the "
        "tokenizer never saw (true share 0; `mixinfer simulate --distractors`), as a real audit "
        "does; their tokenizers and mixtures are those of the n=5 rows, and the error is taken over "
        "all 10 categories.",
        "",
        "| pool | samples | n | " + " | ".join(f"`{e}`" for e in estimators) + " | random |",
        "|---|---|---:|" + "---:|" * (len(estimators) + 1),
    ]
    for cell in cells:
        row = [cell.group, cell.label(), str(cell.n)]
        for e in estimators:
            res = results[cell, e]
            s = next(x for x in res.summary() if x.method == "lp")
            row.append(f"{fmt(s.mean)} ± {fmt(s.std)} ({s.trials})")
        row.append(mean_std(results[cell, estimators[0]], "random"))
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "Change against `lp` (negative: better), and issue 15's test for a new default "
        f"(at least {SHIFT_GAIN} lower on the shifted rows on average, no in-domain row more "
        f"than {TOLERANCE_IN_DOMAIN} worse), to which this table adds: no row with distractors "
        f"more than {TOLERANCE_IN_DOMAIN} worse either:",
        "",
    ]
    lines += [
        "| estimator | "
        + " | ".join(f"{c.group} {c.label()} n={c.n}" for c in cells)
        + " | mean shifted | worst in-domain | worst with distractors | new default? |",
        "|---|" + "---:|" * (len(cells) + 3) + "---|",
    ]
    base = DEFAULT_ESTIMATOR
    for e in estimators:
        if e == base:
            continue
        deltas = []
        for cell in cells:
            a = stat(results[cell, e], "lp", "mean")
            b = stat(results[cell, base], "lp", "mean")
            deltas.append(a - b)
        pairs = list(zip(deltas, cells, strict=True))
        shifted = [d for d, c in pairs if c.shift and not c.distractors]
        indomain = [d for d, c in pairs if not c.shift and not c.distractors]
        offered = [d for d, c in pairs if c.distractors]
        gain = -sum(shifted) / len(shifted)
        worst = max(indomain)
        worst_offered = max(offered) if offered else float("nan")
        ok = gain >= SHIFT_GAIN and worst <= TOLERANCE_IN_DOMAIN and not worst_offered > TOLERANCE_IN_DOMAIN
        cols = [*deltas, -gain, worst, worst_offered]
        signed = ["n/a" if not math.isfinite(d) else f"{d:+.2f}".replace("-", "−") for d in cols]
        lines.append(f"| `{e}` | " + " | ".join(signed) + f" | {'**yes**' if ok else 'no'} |")
    lines += ["", "Estimators (all but `lp` are registered by this script only, not shipped):", ""]
    for e in estimators:
        lines.append(f"- `{e}`: {ESTIMATORS[e].summary}.")
    lines += [
        "",
        "Commands (one per row, `lp`; the others through this script):",
        "",
        "```sh",
    ]
    for cell in cells:
        lines.append(cell.command(seed, shift_dir, base))
    lines += ["```", "", ROBUST_END]
    return "\n".join(lines) + "\n"


def robustness(args: argparse.Namespace, argv_text: str) -> int:
    sys.path.insert(0, str(ROOT / "scripts"))
    from shift_samples import build  # the split is rebuilt only where files changed

    for est in EXPERIMENTAL:
        ESTIMATORS.setdefault(est.name, est)
    shift_dir: Path = args.shift_dir
    summary = build(shift_dir)
    estimators = args.estimators.split(",") if args.estimators else list(ESTIMATORS)
    if DEFAULT_ESTIMATOR in estimators:
        estimators.remove(DEFAULT_ESTIMATOR)
    estimators.insert(0, DEFAULT_ESTIMATOR)
    cells = robust_cells(args.trials)
    if args.only:
        cells = [c for c in cells if c.group == args.only]
    t0 = time.monotonic()
    results: dict[tuple[RobustCell, str], SimulationResult] = {}
    # lp first over every row: it trains the tokenizers the other estimators reuse.
    for e in estimators:
        for cell in cells:
            print(f"[{e}] {cell.command(args.seed, shift_dir, e)}", file=sys.stderr, flush=True)
            t = time.monotonic()
            g = GROUPS[cell.group]
            if cell.shift:
                samples, attack, exclude = (
                    shift_dir / cell.group / "train",
                    shift_dir / cell.group / "attack",
                    (),
                )
            else:
                samples, attack, exclude = ROOT / g.samples, None, g.exclude
            res = simulate(
                samples,
                cell.settings(args.seed, e),
                attack_samples=attack,
                exclude=exclude,
                cache_dir=args.cache_dir,
                workers=args.workers,
            )
            results[cell, e] = res
            s = next(x for x in res.summary() if x.method == "lp")
            print(
                f"    {fmt(s.mean)} ± {fmt(s.std)} ({time.monotonic() - t:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            if args.csv_dir is not None:
                args.csv_dir.mkdir(parents=True, exist_ok=True)
                name = f"robust-{cell.group}-{cell.slug()}-n{cell.n}-{e}.csv"
                (args.csv_dir / name).write_text(res.to_csv(), encoding="utf-8")
    section = render_robustness(
        results, cells, estimators, summary, shift_dir, args.seed, (time.monotonic() - t0) / 60, argv_text
    )
    from _sections import replace_section

    replace_section(args.benchmarks, ROBUST_START, ROBUST_END, section)
    print(f"updated {args.benchmarks}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small settings, a few minutes")
    mode.add_argument("--acceptance-only", action="store_true", help="only the two acceptance cells")
    mode.add_argument("--robustness", action="store_true", help="estimators, in-domain and shifted")
    parser.add_argument("--estimators", default=None, help="comma-separated (default: all)")
    parser.add_argument("--trials", type=int, default=8, help="trials per robustness row")
    parser.add_argument(
        "--shift-dir", type=Path, default=Path("/tmp/mixinfer-shift"), help="where the shifted split goes"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None, help="mixinfer cache directory")
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md", help="file to update")
    parser.add_argument("--csv-dir", type=Path, default=None, help="also write each row's per-trial CSV here")
    parser.add_argument("--workers", type=int, default=1, help="processes for counting/replay (default 1)")
    parser.add_argument("--only", choices=sorted(GROUPS), help="one category group only")
    args = parser.parse_args(argv)
    if args.robustness:
        given = argv if argv is not None else sys.argv[1:]
        return robustness(args, "python scripts/bench_accuracy.py " + " ".join(given))

    cells = quick_grid() if args.quick else full_grid()
    if args.acceptance_only:
        cells = [c for c in cells if c.acceptance]
    if args.only:
        cells = [c for c in cells if c.group == args.only]
    label = "quick" if args.quick else ("acceptance cells" if args.acceptance_only else "full grid")

    t0 = time.monotonic()
    runs: list[tuple[Cell, SimulationResult]] = []
    prefix_runs: dict[Cell, SimulationResult] = {}
    for i, cell in enumerate(cells, 1):
        group = GROUPS[cell.group]
        print(f"[{i}/{len(cells)}] {cell.command(args.seed)}", file=sys.stderr, flush=True)
        t = time.monotonic()

        def show(p: Progress, t: float = t) -> None:
            if p.stage == "trials" and p.detail.endswith("done"):
                print(f"    {p.detail} ({time.monotonic() - t:.0f} s)", file=sys.stderr, flush=True)

        result = simulate(
            ROOT / group.samples,
            cell.settings(args.seed),
            exclude=group.exclude,
            cache_dir=args.cache_dir,
            workers=args.workers,
            progress=show,
        )
        runs.append((cell, result))
        summary = ", ".join(f"{s.method} {fmt(s.mean)}" for s in result.summary())
        print(f"    {summary} ({time.monotonic() - t:.0f} s)", file=sys.stderr, flush=True)
        if cell.acceptance:
            # The baselines again, restricted to the LP's merge prefix (cheap: all cached but
            # the encodings).
            prefix_runs[cell] = simulate(
                ROOT / group.samples,
                cell.settings(args.seed, baseline_merges=cell.merges, methods=("tee", "tc")),
                exclude=group.exclude,
                cache_dir=args.cache_dir,
                workers=args.workers,
            )
            summary = ", ".join(f"{s.method} {fmt(s.mean)}" for s in prefix_runs[cell].summary())
            print(f"    baselines on {cell.merges} merges: {summary}", file=sys.stderr, flush=True)
        if args.csv_dir is not None:
            args.csv_dir.mkdir(parents=True, exist_ok=True)
            name = (
                f"{cell.group}-n{cell.n}-T{cell.merges}-a{size(cell.attack_bytes)}"
                f"-k{cell.trials}-s{args.seed}.csv"
            )
            (args.csv_dir / name).write_text(result.to_csv(), encoding="utf-8")

    argv_text = "python scripts/bench_accuracy.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    section = render(runs, prefix_runs, args.seed, label, (time.monotonic() - t0) / 60, argv_text)
    update_benchmarks(args.benchmarks, section)
    print(f"updated {args.benchmarks}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
