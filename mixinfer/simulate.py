"""Controlled experiments: how precisely is a known training mixture recovered?

This reproduces the structure of Table 1 of Hayase et al. (2024). For each trial:

1. draw ``n`` categories from the pool and their weights uniformly from the simplex (a numpy
   ``Generator`` seeded with ``(seed, trial)``, so trial ``k`` is the same whatever the number of
   trials);
2. split every category's documents into a *training* part and an *attack* part, disjoint and
   deterministic: documents in reading order alternate, even positions train, odd positions attack
   (:data:`SPLIT_RULE`; each part is then used in a fixed pseudo-random order). With
   ``attack_samples`` (the *shift* benchmark) a category trains on all documents of ``samples``
   and is attacked with all documents of the category of the same name in ``attack_samples``
   (:data:`SHIFT_RULE`): e.g. man pages against gettext catalogues, or code of other projects
   (``scripts/shift_samples.py`` builds such a pair of folders from the bundled samples);
3. train a HF ``tokenizers`` BPE (pretokenizer ``Sequence([Digits(individual_digits=False),
   ByteLevel(add_prefix_space=False, use_regex=True)])`` -- the ``default`` preset -- with the
   256-byte initial alphabet) on the weighted mixture of the training parts: ``weight *
   train_bytes`` bytes per category, taking a category's training documents in an order drawn for
   the trial, repeating them when the category is short and cutting the last one at a character
   boundary (as the paper's scripts do); fed to ``train_from_iterator`` one
   document (``unit="document"``) or one line (``unit="line"``) per item. The *true* proportions
   are the UTF-8 bytes actually fed;
4. run every method on the attack parts (at most ``attack_bytes`` per category): the LP
   (the stages of :func:`mixinfer.infer` with the first ``merges`` merges), and the baselines of
   :mod:`mixinfer.baselines` -- TEE, TC and random. As the paper defines them, TEE and TC use the
   tokenizer as trained (its whole vocabulary; TEE's references have the same vocabulary size);
   ``baseline_merges`` restricts them to a merge prefix instead (e.g. the LP's ``T``);
5. record the MSE over the ``n`` categories and its ``log10``.

TEE's log-log model is fitted, for each trial, on the other trials of the same run (never the one
being scored), so it needs at least two trials.

Trained tokenizers (mixtures and TEE's single-category references) and token counts are cached in
the on-disk cache, content-addressed by the data fingerprints, the settings that shape them, the
seed and the trial (``sim-tokenizer`` and ``sim-counts`` entries); the LP composes the stages of
:mod:`mixinfer.stages` on the attack texts, whose word counts are keyed by content. Re-running a
table is therefore cheap, and a run with the same seed and settings gives the same numbers (HF BPE
training is deterministic for a given input).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mixinfer import baselines, keys, stages
from mixinfer.cache import Cache
from mixinfer.errors import SamplesError, UsageError
from mixinfer.options import (
    DEFAULT_ATTACK_BYTES,
    DEFAULT_TRAIN_BYTES,
    DEFAULT_VOCAB,
    MAX_BOOTSTRAP,
    SIMULATION_MERGES,
    Options,
    Runtime,
    bootstrap_too_many,
)
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.report import InferenceResult
from mixinfer.samples import (
    UNITS,
    Category,
    ReadStats,
    discover,
    iter_documents,
)
from mixinfer.tokenizer import tokenizer_from_json

if TYPE_CHECKING:
    import pandas as pd

METHODS = ("lp", "tee", "tc", "random")
"""The methods a simulation can compare (``--methods``)."""

SPLIT_RULE = "alternate-documents-v2"
"""Documents in reading order alternate: even positions train, odd positions attack. The attack
part is then put in a fixed pseudo-random order (seeded by the category name), so that a cap on
the attack bytes takes a spread-out subset rather than the first files; each trial feeds the
training part in its own pseudo-random order (seeded by the seed, the trial and the name)."""

SHIFT_RULE = "whole-samples-v1"
"""With ``attack_samples``: every document of a ``samples`` category trains, every document of the
same category in ``attack_samples`` attacks (attack order pseudo-random, as with
:data:`SPLIT_RULE`)."""

CSV_COLUMNS = (
    "trial",
    "method",
    "n",
    "distractors",
    "categories",
    "truth",
    "estimate",
    "mse",
    "log10_mse",
    "seconds",
    "residual",
    "intervals",
)
"""Columns of :meth:`SimulationResult.to_csv`, one row per trial and method."""


@dataclass(frozen=True)
class SimulationSettings:
    """What a simulation does; see :func:`simulate`.

    Attributes:
        n: categories per mixture.
        trials: how many mixtures (tokenizers) to train and attack.
        train_bytes: UTF-8 bytes of training text per tokenizer.
        attack_bytes: cap on the attack sample per category.
        vocab: vocabulary size of the trained tokenizers (256 bytes + merges).
        merges: how many leading merges the LP uses (``T``).
        baseline_merges: how many leading merges TEE and TC use (their tokenizers truncated to
            that prefix); ``None`` (the default): all of them, i.e. the whole vocabulary.
        methods: which of :data:`METHODS` to run, in report order.
        seed: seeds the category and weight draws (and the random baseline).
        unit: ``document`` or ``line``: training items, and how inference cuts the attack text.
        solver / time_limit: passed to :func:`mixinfer.infer` for the LP.
        bootstrap / confidence: LP intervals from this many document-bootstrap replicates, and
            their nominal coverage; the summary reports how often they cover the truth.
        estimator: how the LP method turns traces into a mixture (a name of
            :data:`mixinfer.estimators.ESTIMATORS`; ``lp`` is the exact LP).
        distractors: categories of the pool outside a trial's mixture that every method is
            offered as well (their true share is 0), as in a real audit, where most categories
            offered were never trained on. Drawn per trial independently of the mixture, so the
            trained tokenizers are the same with and without them.
    """

    n: int
    trials: int
    train_bytes: int = DEFAULT_TRAIN_BYTES
    attack_bytes: int = DEFAULT_ATTACK_BYTES
    vocab: int = DEFAULT_VOCAB
    merges: int = SIMULATION_MERGES
    baseline_merges: int | None = None
    methods: tuple[str, ...] = METHODS
    seed: int = 0
    unit: str = "document"
    solver: str = "auto"
    time_limit: float | None = None
    bootstrap: int = 0
    confidence: float = 0.9
    estimator: str = "lp"
    distractors: int = 0

    def validate(self) -> None:
        """Raise :class:`UsageError` for values that cannot be simulated."""
        if self.n < 2:
            raise UsageError(f"--n must be at least 2 categories per mixture, not {self.n}")
        if self.trials < 1:
            raise UsageError(f"--trials must be at least 1, not {self.trials}")
        if self.train_bytes <= 0:
            raise UsageError(f"--train-bytes must be positive, not {self.train_bytes}")
        if self.attack_bytes <= 0:
            raise UsageError(f"--attack-bytes must be positive, not {self.attack_bytes}")
        if self.vocab <= 256:
            raise UsageError(
                f"--vocab {self.vocab} leaves no room for merges; it counts the 256 byte tokens, "
                f"so use e.g. --vocab {256 + max(self.merges, 1000)}"
            )
        if self.merges <= 0:
            raise UsageError(f"--merges must be a positive number of merges, not {self.merges}")
        if self.merges > self.vocab - 256:
            raise UsageError(
                f"--merges {self.merges} is more than a vocabulary of {self.vocab} can hold "
                f"({self.vocab - 256} merges after the 256 byte tokens); raise --vocab to at "
                f"least {self.merges + 256} or lower --merges"
            )
        if self.baseline_merges is not None and self.baseline_merges <= 0:
            raise UsageError(
                f"--baseline-merges must be a positive number of merges, not {self.baseline_merges}"
            )
        if self.baseline_merges is not None and self.baseline_merges > self.vocab - 256:
            raise UsageError(
                f"--baseline-merges {self.baseline_merges} is more than a vocabulary of {self.vocab} "
                f"can hold ({self.vocab - 256} merges); leave it out to use the whole vocabulary"
            )
        if not self.methods:
            raise UsageError(f"--methods is empty; use some of {','.join(METHODS)}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UsageError(
                f"unknown method(s) {', '.join(unknown)} in --methods; use some of {','.join(METHODS)}"
            )
        if len(set(self.methods)) != len(self.methods):
            raise UsageError(f"--methods lists a method twice: {','.join(self.methods)}")
        if self.seed < 0:
            raise UsageError(f"--seed must be a non-negative integer, not {self.seed}")
        if self.distractors < 0:
            raise UsageError(f"--distractors must be 0 or more categories, not {self.distractors}")
        if self.unit not in UNITS:
            raise UsageError(f"unknown --unit {self.unit!r}; use one of {', '.join(UNITS)}")
        if self.time_limit is not None and self.time_limit <= 0:
            raise UsageError(f"--time-limit must be positive, not {self.time_limit}")
        if self.bootstrap < 0 or self.bootstrap == 1:
            raise UsageError(f"--bootstrap must be 0 (none) or at least 2 replicates, not {self.bootstrap}")
        if self.bootstrap > MAX_BOOTSTRAP:
            raise UsageError(f"--bootstrap {bootstrap_too_many(self.bootstrap)}")
        if not 0 < self.confidence < 1:
            raise UsageError(f"--confidence must be between 0 and 1 (e.g. 0.9), not {self.confidence}")
        from mixinfer.estimators import check_estimator

        check_estimator(self.estimator)
        if self.bootstrap and self.estimator != "lp":
            raise UsageError(
                f"--estimator {self.estimator} cannot be combined with --bootstrap yet (the "
                "replicates solve the exact LP); use --estimator lp for intervals"
            )

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dictionary."""
        return {
            "n": self.n,
            "trials": self.trials,
            "train_bytes": self.train_bytes,
            "attack_bytes": self.attack_bytes,
            "vocab": self.vocab,
            "merges": self.merges,
            "baseline_merges": self.baseline_merges,
            "methods": list(self.methods),
            "seed": self.seed,
            "unit": self.unit,
            "solver": self.solver,
            "time_limit": self.time_limit,
            "bootstrap": self.bootstrap,
            "confidence": self.confidence,
            "estimator": self.estimator,
            "distractors": self.distractors,
            "split": SPLIT_RULE,
        }


@dataclass
class TrialRecord:
    """One method's answer on one trial.

    ``estimate`` is ``None`` (and ``mse`` NaN) when the method could not answer; ``note`` says why.
    """

    trial: int
    method: str
    categories: list[str]
    truth: dict[str, float]
    estimate: dict[str, float] | None
    seconds: float
    note: str = ""
    residual: float | None = None
    intervals: dict[str, tuple[float, float]] | None = None

    @property
    def mixed(self) -> int:
        """Categories in the trial's mixture (``--n``); the others offered are distractors."""
        return sum(1 for share in self.truth.values() if share > 0)

    @property
    def covered(self) -> list[bool]:
        """Per category, whether its interval holds the truth (empty without intervals)."""
        if self.intervals is None:
            return []
        return [
            self.intervals[c][0] - 1e-12 <= self.truth[c] <= self.intervals[c][1] + 1e-12
            for c in self.categories
        ]

    @property
    def widths(self) -> list[float]:
        """Per category, the width of its interval."""
        return (
            []
            if self.intervals is None
            else [self.intervals[c][1] - self.intervals[c][0] for c in self.categories]
        )

    @property
    def mse(self) -> float:
        """Mean squared error over the trial's categories (NaN without an estimate)."""
        if self.estimate is None:
            return float("nan")
        return float(np.mean([(self.estimate.get(c, 0.0) - self.truth[c]) ** 2 for c in self.categories]))

    @property
    def log10_mse(self) -> float:
        """``log10`` of :attr:`mse` (``-inf`` for an exact answer, NaN without an estimate)."""
        mse = self.mse
        if math.isnan(mse):
            return mse
        return math.log10(mse) if mse > 0 else float("-inf")


@dataclass
class MethodSummary:
    """Statistics of one method's ``log10`` MSE over the trials it answered."""

    method: str
    trials: int
    mean: float
    std: float
    median: float
    best: float
    worst: float
    seconds: float
    coverage: float | None = None
    median_width: float | None = None


@dataclass
class TrialInfo:
    """What one trial trained on: categories, true proportions, bytes fed, attack bytes used, and
    the categories offered besides them (``distractors``, true share 0)."""

    trial: int
    categories: list[str]
    weights: dict[str, float]
    truth: dict[str, float]
    train_bytes: dict[str, int]
    attack_bytes: dict[str, int]
    merges: int
    tokenizer_key: str
    distractors: list[str] = field(default_factory=list)

    @property
    def offered(self) -> list[str]:
        """Every category the methods infer over: the mixture's and the distractors, sorted."""
        return sorted([*self.categories, *self.distractors])

    @property
    def scored_truth(self) -> dict[str, float]:
        """The true share of every offered category (0 for a distractor)."""
        return {c: self.truth.get(c, 0.0) for c in self.offered}


@dataclass
class SimulationResult:
    """All records of a simulation, the settings, the category pool and remarks."""

    settings: SimulationSettings
    samples: str
    pool: list[str]
    records: list[TrialRecord]
    trials: list[TrialInfo]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    attack_samples: str | None = None

    def summary(self) -> list[MethodSummary]:
        """Per method (in the order of ``settings.methods``): statistics of ``log10`` MSE."""
        out = []
        for method in self.settings.methods:
            recs = [r for r in self.records if r.method == method]
            vals = np.array([r.log10_mse for r in recs], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            secs = float(np.mean([r.seconds for r in recs])) if recs else float("nan")
            if vals.size == 0:
                nan = float("nan")
                out.append(MethodSummary(method, 0, nan, nan, nan, nan, nan, secs))
                continue
            std = float(np.std(vals, ddof=1)) if vals.size > 1 else float("nan")
            covered = [c for r in recs for c in r.covered]
            widths = [w for r in recs for w in r.widths]
            out.append(
                MethodSummary(
                    method,
                    int(vals.size),
                    float(np.mean(vals)),
                    std,
                    float(np.median(vals)),
                    float(np.min(vals)),
                    float(np.max(vals)),
                    secs,
                    float(np.mean(covered)) if covered else None,
                    float(np.median(widths)) if widths else None,
                )
            )
        return out

    def mean_attack_bytes(self) -> float:
        """Mean attack-sample bytes per category over all trials."""
        sizes = [b for t in self.trials for b in t.attack_bytes.values()]
        return float(np.mean(sizes)) if sizes else 0.0

    def to_csv(self) -> str:
        """One row per trial and method (:data:`CSV_COLUMNS`); dicts as JSON, floats exact."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.records:
            writer.writerow(
                [
                    r.trial,
                    r.method,
                    r.mixed,
                    len(r.categories) - r.mixed,
                    json.dumps(r.categories),
                    json.dumps(r.truth, sort_keys=True),
                    json.dumps(r.estimate, sort_keys=True) if r.estimate is not None else "null",
                    repr(r.mse),
                    repr(r.log10_mse),
                    f"{r.seconds:.3f}",
                    "" if r.residual is None else repr(r.residual),
                    json.dumps(r.intervals, sort_keys=True) if r.intervals is not None else "",
                ]
            )
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        """Settings, summary, trials and records as a JSON-ready dictionary."""

        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        settings = self.settings.to_dict()
        if self.attack_samples is not None:
            settings["split"] = SHIFT_RULE
        return {
            "settings": settings,
            "samples": self.samples,
            "attack_samples": self.attack_samples,
            "pool": self.pool,
            "summary": [
                {
                    "method": s.method,
                    "trials": s.trials,
                    "mean_log10_mse": num(s.mean),
                    "std_log10_mse": num(s.std),
                    "median_log10_mse": num(s.median),
                    "best_log10_mse": num(s.best),
                    "worst_log10_mse": num(s.worst),
                    "mean_seconds": num(s.seconds),
                    "coverage": s.coverage,
                    "median_interval_width": s.median_width,
                }
                for s in self.summary()
            ],
            "trials": [
                {
                    "trial": t.trial,
                    "categories": t.categories,
                    "weights": t.weights,
                    "truth": t.truth,
                    "train_bytes": t.train_bytes,
                    "attack_bytes": t.attack_bytes,
                    "merges": t.merges,
                    "distractors": t.distractors,
                }
                for t in self.trials
            ],
            "records": [
                {
                    "trial": r.trial,
                    "method": r.method,
                    "estimate": r.estimate,
                    "mse": num(r.mse),
                    "log10_mse": num(r.log10_mse),
                    "seconds": r.seconds,
                    "note": r.note,
                    "residual": r.residual,
                    "intervals": None
                    if r.intervals is None
                    else {c: list(v) for c, v in r.intervals.items()},
                }
                for r in self.records
            ],
            "notes": self.notes,
            "warnings": self.warnings,
            "timing": self.timing,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON (NaN and infinities as ``null``)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def render(self, fmt: str) -> str:
        """The result as ``csv`` (one row per trial and method) or ``json`` text."""
        if fmt == "csv":
            return self.to_csv()
        if fmt == "json":
            return self.to_json()
        raise UsageError(f"unknown format {fmt!r}; use csv or json")

    def to_frame(self) -> pd.DataFrame:
        """A pandas DataFrame with one row per trial and method."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "trial": r.trial,
                    "method": r.method,
                    "n": r.mixed,
                    "distractors": len(r.categories) - r.mixed,
                    "categories": r.categories,
                    "truth": r.truth,
                    "estimate": r.estimate,
                    "mse": r.mse,
                    "log10_mse": r.log10_mse,
                    "seconds": r.seconds,
                }
                for r in self.records
            ]
        )


# --------------------------------------------------------------------------------------------------
# Data: splitting categories, materialising attack samples, building training streams


@dataclass
class CategorySplit:
    """A category's disjoint training and attack documents.

    Attributes:
        name: the category name.
        fingerprint: the source category's fingerprint (files, sizes, times).
        train: the training documents.
        attack_dir: a directory holding only the attack documents (one JSONL file), usable as a
            category sub-directory of a samples directory.
        attack_fingerprint: the fingerprint of the category the attack documents came from (the
            same as ``fingerprint`` unless attack samples are separate).
        rule: how training and attack documents were chosen (:data:`SPLIT_RULE` or
            :data:`SHIFT_RULE`); part of every cache key built from the split.
    """

    name: str
    fingerprint: str
    train: list[str]
    attack_dir: Path
    attack_fingerprint: str = ""
    rule: str = SPLIT_RULE

    def __post_init__(self) -> None:
        if not self.attack_fingerprint:
            self.attack_fingerprint = self.fingerprint

    @property
    def train_size(self) -> int:
        """UTF-8 bytes of the training documents."""
        return sum(len(d.encode("utf-8")) for d in self.train)


def split_documents(documents: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split documents by position (:data:`SPLIT_RULE`): even positions train, odd attack."""
    return list(documents[0::2]), list(documents[1::2])


def shuffled(items: Sequence[str], *key: object) -> list[str]:
    """``items`` in a pseudo-random order that depends only on ``key`` (deterministic)."""
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    return [items[int(i)] for i in rng.permutation(len(items))]


def write_attack_sample(directory: Path, documents: Sequence[str]) -> Path:
    """Write ``documents`` as one JSONL file in ``directory`` (its name carries a content hash).

    The file is read back exactly as inference reads samples (budget, unit); cache keys of what is
    computed from it come from content (:func:`mixinfer.keys.attack_content_key`), not from it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in documents)
    data = text.encode("utf-8")
    path = directory / f"attack-{hashlib.sha256(data).hexdigest()[:16]}.jsonl"
    path.write_bytes(data)
    return path


def _units(documents: Sequence[str], unit: str) -> list[str]:
    if unit == "document":
        return [d for d in documents if d]
    lines: list[str] = []
    for d in documents:
        lines.extend(line for line in d.splitlines(keepends=True) if line)
    return lines


def training_stream(documents: Sequence[str], budget: int, unit: str) -> tuple[list[str], int]:
    """Training items for one category: its units in order, repeated, up to ``budget`` bytes.

    Units are documents or lines (with their newline). The last unit is cut at a character
    boundary, so ``budget`` bytes are fed, or up to 3 fewer when the cut falls inside a
    character. Returns the items and their
    UTF-8 bytes.

    Raises:
        SamplesError: the documents hold no text.
    """
    units = _units(documents, unit)
    if budget <= 0:
        return [], 0
    if not units:
        raise SamplesError("a category's training part holds no text")
    sizes = [len(u.encode("utf-8")) for u in units]
    out: list[str] = []
    size = 0
    i = 0
    while size < budget:
        k = i % len(units)
        u, b = units[k], sizes[k]
        if size + b > budget:
            # The last unit: cut at a character boundary at (or just before) the budget.
            u = u.encode("utf-8")[: budget - size].decode("utf-8", errors="ignore")
            if u:
                out.append(u)
                size += len(u.encode("utf-8"))
            break
        out.append(u)
        size += b
        i += 1
    return out, size


def train_bpe(texts: Sequence[str], vocab: int) -> str:
    """Train a byte-level BPE with the ``default`` pretokenizer; return its ``tokenizer.json``.

    Pretokenizer ``Sequence([Digits(individual_digits=False), ByteLevel(add_prefix_space=False,
    use_regex=True)])``, initial alphabet the 256 bytes, no special tokens, one item of ``texts``
    per ``train_from_iterator`` item.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return str(tok.to_str())


def _tokenizers_version() -> str:
    import tokenizers

    return str(tokenizers.__version__)


def _store_text(cache: Cache, kind: str, key: str, text: str, meta: dict[str, Any]) -> None:
    cache.store(kind, key, {"text": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}, meta)


def _load_text(cache: Cache, kind: str, key: str) -> tuple[str, dict[str, Any]] | None:
    hit = cache.load(kind, key)
    if hit is None:
        return None
    arrays, meta = hit
    return arrays["text"].tobytes().decode("utf-8"), meta


# --------------------------------------------------------------------------------------------------
# The simulation


def draw_mixture(pool: Sequence[str], n: int, seed: int, trial: int) -> tuple[list[str], dict[str, float]]:
    """Trial ``trial``'s categories (sorted) and weights, uniform on the simplex.

    Drawn from ``numpy.random.default_rng([seed, trial])``: independent of other trials.
    """
    rng = np.random.default_rng([seed, trial])
    chosen = sorted(pool[int(i)] for i in rng.choice(len(pool), size=n, replace=False))
    weights = rng.dirichlet(np.ones(n))
    return chosen, {c: float(w) for c, w in zip(chosen, weights, strict=True)}


def draw_distractors(pool: Sequence[str], chosen: Sequence[str], k: int, seed: int, trial: int) -> list[str]:
    """Trial ``trial``'s ``k`` distractors (sorted): categories of ``pool`` not in ``chosen``.

    Drawn from ``numpy.random.default_rng([seed, trial, 3])``, a stream of its own, so the mixture
    drawn by :func:`draw_mixture` (and the tokenizer trained on it) does not depend on ``k``.
    """
    if k == 0:
        return []
    taken = set(chosen)
    rest = [c for c in pool if c not in taken]
    rng = np.random.default_rng([seed, trial, 3])
    return sorted(rest[int(i)] for i in rng.choice(len(rest), size=k, replace=False))


class _Simulator:
    """State shared by the trials of one simulation: splits, cache, temporary directory."""

    def __init__(
        self,
        settings: SimulationSettings,
        categories: dict[str, Category],
        cache: Cache,
        workdir: Path,
        attack_categories: dict[str, Category] | None = None,
    ) -> None:
        self.s = settings
        self.categories = categories
        self.attack_categories = attack_categories
        self.rule = SPLIT_RULE if attack_categories is None else SHIFT_RULE
        self.cache = cache
        self.workdir = workdir
        self.splits: dict[str, CategorySplit] = {}
        self.split_sizes: dict[str, int] = {}
        self.warnings: list[str] = []
        self.version = _tokenizers_version()

    # -- data ------------------------------------------------------------------------------------

    def split(self, name: str) -> CategorySplit:
        """The category's split, read and materialised on first use."""
        if name in self.splits:
            return self.splits[name]
        cat = self.categories[name]
        docs = self._documents(cat)
        if self.attack_categories is not None:
            other = self.attack_categories[name]
            train, attack = docs, self._documents(other)
            if not train or not attack:
                raise SamplesError(
                    f"category '{name}' has no text in the "
                    f"{'training samples' if not train else 'attack samples'}; give it documents "
                    f"there or leave it out with --exclude {name}"
                )
            attack_fingerprint = other.fingerprint()
        else:
            if len(docs) < 2:
                raise SamplesError(
                    f"category '{name}' has {len(docs)} document(s); a simulation needs at least 2 "
                    f"to split into disjoint training and attack parts: put its text in several "
                    f"files (one document each) or in a .jsonl file with one record per document"
                )
            train, attack = split_documents(docs)
            attack_fingerprint = ""
        attack_dir = self.workdir / "pool" / name
        write_attack_sample(attack_dir, shuffled(attack, "attack", name))
        split = CategorySplit(name, cat.fingerprint(), train, attack_dir, attack_fingerprint, self.rule)
        self.splits[name] = split
        self.split_sizes[name] = split.train_size
        return split

    def _documents(self, cat: Category) -> list[str]:
        stats = ReadStats()
        docs = list(iter_documents(cat, unit="document", stats=stats))
        for w in stats.warnings + cat.skipped:
            if w not in self.warnings:
                self.warnings.append(w)
        return docs

    def attack_texts(self, name: str) -> list[str]:
        """The attack units of a category, within the byte cap, exactly as inference reads them."""
        mine = next(c for c in discover(self.workdir / "pool") if c.name == name)
        return list(iter_documents(mine, max_bytes=self.s.attack_bytes, unit=self.s.unit))

    # -- tokenizers ------------------------------------------------------------------------------

    def mixture_tokenizer(
        self, trial: int, names: Sequence[str], weights: dict[str, float]
    ) -> tuple[str, str, dict[str, int], float]:
        """Train (or load) the mixture tokenizer: ``(json, cache key, bytes fed, seconds)``."""
        budgets = {c: int(round(weights[c] * self.s.train_bytes)) for c in names}
        key = keys.simulated_tokenizer_key(
            self.rule,
            self.version,
            self.s.vocab,
            self.s.unit,
            self.s.seed,
            trial,
            [(c, self.split(c).fingerprint, budgets[c]) for c in names],
        )
        hit = _load_text(self.cache, "sim-tokenizer", key)
        if hit is not None:
            text, meta = hit
            return text, key, {c: int(v) for c, v in meta["bytes"].items()}, 0.0
        t = time.monotonic()
        stream: list[str] = []
        fed: dict[str, int] = {}
        for c in names:
            docs = shuffled(self.split(c).train, "train", self.s.seed, trial, c)
            items, size = training_stream(docs, budgets[c], self.s.unit)
            stream.extend(items)
            fed[c] = size
        text = train_bpe(stream, self.s.vocab)
        del stream
        seconds = time.monotonic() - t
        _store_text(self.cache, "sim-tokenizer", key, text, {"bytes": fed, "seconds": seconds})
        return text, key, fed, seconds

    def reference_tokenizer(self, name: str) -> tuple[str, str, float]:
        """TEE's reference: a tokenizer trained on the category's training part alone.

        The training part is fed once: repeating a whole text scales every pair count alike and
        so leaves BPE's merges unchanged. Returns ``(json, cache key, seconds)``.
        """
        split = self.split(name)
        key = keys.reference_tokenizer_key(
            self.rule, self.version, self.s.vocab, self.s.unit, name, split.fingerprint
        )
        hit = _load_text(self.cache, "sim-tokenizer", key)
        if hit is not None:
            return hit[0], key, 0.0
        t = time.monotonic()
        text = train_bpe(_units(split.train, self.s.unit), self.s.vocab)
        seconds = time.monotonic() - t
        _store_text(self.cache, "sim-tokenizer", key, text, {"category": name})
        return text, key, seconds

    def infer_lp(
        self, trial: int, tokenizer_json: str, names: Sequence[str], truth: dict[str, float], runtime: Runtime
    ) -> InferenceResult:
        """The LP's inference for one trial, composed from the stages on the attack texts.

        The attack texts are counted from memory, keyed by their content (the source category's
        fingerprint and the split rule), so no file metadata enters a cache key.
        """
        options = Options(
            merges=self.s.merges,
            max_bytes=self.s.attack_bytes,
            solver=self.s.solver,
            time_limit=self.s.time_limit,
            unit=self.s.unit,  # type: ignore[arg-type]  # validated by SimulationSettings
            bootstrap=self.s.bootstrap,
            confidence=self.s.confidence,
            seed=self.s.seed,
            estimator=self.s.estimator,
        )
        timer = stages.Timer()
        tok = tokenizer_from_json(json.loads(tokenizer_json), source=f"simulated tokenizer (trial {trial})")
        prepared = stages.prepare(tok, options)
        timer.lap("clean")
        content = {c: keys.attack_content_key(self.rule, c, self.split(c).attack_fingerprint) for c in names}
        pretok = prepared.tok.pretokenizer
        words = [keys.texts_words_key(content[c], pretok, options.max_bytes, options.unit) for c in names]
        solution = stages.lookup(names, words, prepared, options, runtime)
        if solution is None:
            texts = {c: self.attack_texts(c) for c in names}
            counted = stages.count_texts(texts, content, pretok, options, runtime)
            timer.lap("count")
            traces = stages.replay(counted, prepared, runtime)
            timer.lap("replay")
            solution = stages.solve(traces, counted, prepared, options, runtime)
        timer.lap("solve")
        boot = None
        if options.bootstrap:
            # The attack samples as categories: blocks are read exactly as attack_texts reads them.
            pool = {c.name: c for c in discover(self.workdir / "pool")}
            boot = stages.bootstrap([pool[c] for c in names], words, prepared, options, runtime)
        timer.lap("bootstrap")
        known = stages.Truth(dict(truth), "given")
        return stages.report(prepared, solution, options, known, timer.done(), boot)

    def counts(self, tokenizer_json: str, tokenizer_key: str, name: str) -> tuple[np.ndarray, int, float]:
        """Token counts of a category's attack sample, encoded by the baselines' tokenizer.

        That is the tokenizer as trained, or its first ``baseline_merges`` merges. Returns
        ``(counts per token id, sample bytes, seconds)``.
        """
        limit = self.s.baseline_merges
        key = keys.baseline_counts_key(
            tokenizer_key,
            limit,
            self.s.attack_bytes,
            self.s.unit,
            name,
            self.split(name).attack_fingerprint,
            self.rule,
        )
        hit = self.cache.load("sim-counts", key)
        if hit is not None:
            arrays, meta = hit
            return arrays["counts"], int(meta["bytes"]), 0.0
        t = time.monotonic()
        trunc = baselines.truncated_tokenizer(tokenizer_json, limit)
        texts = self.attack_texts(name)
        counts = baselines.token_counts(trunc, texts)
        size = sum(len(x.encode("utf-8")) for x in texts)
        seconds = time.monotonic() - t
        self.cache.store("sim-counts", key, {"counts": counts}, {"bytes": size})
        return counts, size, seconds


def simulate(
    samples: str | os.PathLike[str] | None,
    settings: SimulationSettings,
    *,
    attack_samples: str | os.PathLike[str] | None = None,
    categories: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: ProgressCallback = noop,
) -> SimulationResult:
    """Train tokenizers on random known mixtures and measure how well each method recovers them.

    Args:
        samples: a samples directory (one sub-directory per category); default: the bundled
            ``data_samples/general``.
        settings: see :class:`SimulationSettings`.
        attack_samples: another samples directory to attack with (the shift benchmark): each
            category then trains on all of ``samples`` and is attacked with the category of the
            same name here; the pool is the categories found in both (default: none, documents
            of ``samples`` alternate between training and attack).
        categories: restrict the pool to these category names (default: all).
        exclude: leave these categories out of the pool.
        cache_dir / use_cache: the on-disk cache (trained tokenizers, token counts, word counts,
            traces), or none.
        workers: processes for word counting and replay in the LP (default: all cores).
        progress: called with :class:`mixinfer.progress.Progress` updates: stage ``trials`` (one
            per trial) and the LP's own ``count``/``replay``/``solve`` stages.

    Returns:
        A :class:`SimulationResult`.

    Raises:
        UsageError: bad settings, unknown category names, or fewer categories than ``n``.
        SamplesError: a category cannot be read or split.
    """
    settings.validate()
    t0 = time.monotonic()
    where, source_categories = stages.samples(samples)
    found = {c.name: c for c in source_categories}
    wanted = list(categories) if categories else sorted(found)
    unknown = [c for c in [*wanted, *exclude] if c not in found]
    if unknown:
        raise UsageError(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} in "
            f"--categories/--exclude; {where} has: {', '.join(sorted(found))}"
        )
    pool = sorted(c for c in dict.fromkeys(wanted) if c not in set(exclude))
    attack_found: dict[str, Category] | None = None
    attack_where: str | None = None
    shift_notes: list[str] = []
    if attack_samples is not None:
        try:
            attack_where, attack_categories = stages.samples(attack_samples)
        except SamplesError as exc:
            # The sources' messages say "check --samples"; the folder at fault is the other one.
            raise SamplesError(re.sub(r"(?<![\w-])--samples\b", "--attack-samples", str(exc))) from exc
        attack_found = {c.name: c for c in attack_categories}
        missing = [c for c in pool if c not in attack_found]
        if categories and missing:
            raise UsageError(
                f"--categories names {', '.join(missing)}, which --attack-samples {attack_where} does "
                f"not have; it has: {', '.join(sorted(attack_found))}"
            )
        if missing:
            shift_notes.append(
                f"left out of the pool: {', '.join(missing)} (not in the attack samples {attack_where})"
            )
        pool = [c for c in pool if c in attack_found]
    if len(pool) < settings.n + settings.distractors:
        wanted_n = settings.n + settings.distractors
        what = (
            f"--n {settings.n} and --distractors {settings.distractors} need"
            if settings.distractors
            else f"--n {settings.n} needs"
        )
        raise UsageError(
            f"{what} at least {wanted_n} categories, but the pool has "
            f"{len(pool)} ({', '.join(pool) or 'none'}); lower them or add categories"
        )
    runtime = Runtime.create(cache_dir=cache_dir, use_cache=use_cache, workers=workers, progress=progress)
    cache = runtime.cache
    s = settings
    found_records: dict[tuple[int, str], TrialRecord] = {}
    infos: list[TrialInfo] = []
    notes: list[str] = []
    warnings: list[str] = []
    tee_obs: list[baselines.TEEObservation] = []
    tee_seconds: dict[int, float] = {}
    timing = {"train": 0.0, "lp": 0.0, "baselines": 0.0}

    def step(trial: int, what: str, done: int | None = None) -> None:
        progress(
            Progress(
                "trials",
                trial if done is None else done,
                s.trials,
                "trials",
                f"trial {trial + 1}: {what}",
            )
        )

    workdir = Path(tempfile.mkdtemp(prefix="mixinfer-simulate-"))
    try:
        sim = _Simulator(
            s,
            {c: found[c] for c in pool},
            cache,
            workdir,
            None if attack_found is None else {c: attack_found[c] for c in pool},
        )
        for trial in range(s.trials):
            step(trial, "training tokenizer")
            names, weights = draw_mixture(pool, s.n, s.seed, trial)
            tok_json, tok_key, fed, secs = sim.mixture_tokenizer(trial, names, weights)
            timing["train"] += secs
            total = sum(fed.values())
            truth = {c: fed[c] / total for c in names}
            info = TrialInfo(trial, names, weights, truth, fed, {}, 0, tok_key)
            info.distractors = draw_distractors(pool, names, s.distractors, s.seed, trial)
            offered, scored = info.offered, info.scored_truth
            n_merges = len(json.loads(tok_json)["model"]["merges"])
            if n_merges < s.merges:
                notes.append(
                    f"trial {trial}: the trained tokenizer has only {n_merges} merges (the "
                    f"training text ran out of pairs); all methods use those"
                )
            attack_sizes: dict[str, int] = {}

            if "lp" in s.methods:
                step(trial, "LP")
                t = time.monotonic()
                result = sim.infer_lp(trial, tok_json, offered, scored, runtime)
                secs = time.monotonic() - t
                timing["lp"] += secs
                attack_sizes = {c: st.bytes for c, st in result.samples.items()}
                warnings.extend(f"trial {trial} (lp): {w}" for w in result.warnings)
                found_records[trial, "lp"] = TrialRecord(
                    trial,
                    "lp",
                    offered,
                    scored,
                    dict(result.proportions),
                    secs,
                    note=str(result.solver.get("status", "")),
                    residual=result.diagnostics.get("objective_per_merge"),
                    intervals=result.intervals,
                )

            if "tc" in s.methods or "tee" in s.methods:
                step(trial, "baselines")
                t = time.monotonic()
                mix: dict[str, np.ndarray] = {}
                shared = 0.0  # encoding with the mixture tokenizer serves both baselines
                for c in offered:
                    counts, size, secs = sim.counts(tok_json, tok_key, c)
                    mix[c] = counts
                    attack_sizes.setdefault(c, size)
                    shared += secs
                if "tc" in s.methods:
                    t_tc = time.monotonic()
                    estimate = baselines.tc_estimate(mix)
                    found_records[trial, "tc"] = TrialRecord(
                        trial, "tc", offered, scored, estimate, shared + time.monotonic() - t_tc
                    )
                if "tee" in s.methods:
                    own = 0.0
                    features: dict[str, float] = {}
                    for c in offered:
                        ref_json, ref_key, secs = sim.reference_tokenizer(c)
                        own += secs
                        ref_counts, size, secs = sim.counts(ref_json, ref_key, c)
                        own += secs
                        features[c] = baselines.tee_feature(size, int(mix[c].sum()), int(ref_counts.sum()))
                    tee_obs.append(baselines.TEEObservation(trial, features, scored))
                    tee_seconds[trial] = shared + own
                timing["baselines"] += time.monotonic() - t

            if "random" in s.methods:
                t = time.monotonic()
                rng = np.random.default_rng([s.seed, trial, 1])
                found_records[trial, "random"] = TrialRecord(
                    trial,
                    "random",
                    offered,
                    scored,
                    baselines.random_estimate(offered, rng),
                    time.monotonic() - t,
                )

            info.attack_bytes, info.merges = attack_sizes, n_merges
            infos.append(info)
            step(trial, "done", done=trial + 1)
        warnings = sim.warnings + warnings
        split_sizes = dict(sim.split_sizes)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    if "tee" in s.methods:
        # Scored only now: each trial's model is fitted on all the other trials.
        t = time.monotonic()
        fits = baselines.tee_leave_one_out(tee_obs)
        fit_seconds = (time.monotonic() - t) / max(len(fits), 1)
        for f in fits:
            info = infos[int(f.key)]
            found_records[info.trial, "tee"] = TrialRecord(
                info.trial,
                "tee",
                info.offered,
                info.scored_truth,
                f.estimate,
                tee_seconds[info.trial] + fit_seconds,
                note=f.note,
            )
        for note in sorted({f.note for f in fits if f.estimate is None}):
            notes.append(f"tee: {note}; its log10 MSE is reported as NaN")
    records = [
        found_records[trial, m] for trial in range(s.trials) for m in s.methods if (trial, m) in found_records
    ]

    sizes = [b for info in infos for b in info.attack_bytes.values()]
    # A budget ends at a character boundary: up to 3 bytes short is the budget met.
    if sizes and min(sizes) < s.attack_bytes - 3:
        notes.append(
            f"attack samples are smaller than --attack-bytes {s.attack_bytes:,} where a "
            f"category's attack part is: {min(sizes):,} to {max(sizes):,} bytes per category "
            f"(mean {np.mean(sizes):,.0f}); the attack part is "
            + ("its attack samples" if attack_found is not None else "half of each category's documents")
        )
    repeats = [info.train_bytes[c] / max(split_sizes[c], 1) for info in infos for c in info.categories]
    if repeats and max(repeats) > 1:
        notes.append(
            f"training repeated documents: a category's training part was fed up to "
            f"{max(repeats):.1f} times (median {np.median(repeats):.1f}) to reach "
            f"--train-bytes {s.train_bytes:,}"
        )
    timing["total"] = time.monotonic() - t0
    return SimulationResult(
        s, where, pool, records, infos, shift_notes + notes, warnings, timing, attack_where
    )
