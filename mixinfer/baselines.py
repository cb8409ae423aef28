"""Baselines for mixture inference, as defined by Hayase et al. (2024), Section 4 / Table 1.

The LP attack (:func:`mixinfer.infer`) is compared with three simple alternatives:

* **random** (:func:`random_estimate`): a draw from the uniform distribution on the simplex
  (Dirichlet with all parameters 1); what guessing achieves.
* **TC**, token classification (:func:`tc_estimate`): every vocabulary token is assigned to the
  category in whose sample it is most frequent (relative to the number of tokens that sample
  encodes to); a category's estimated proportion is its share of the assigned tokens.
* **TEE**, tokenizer encoding efficiency (:class:`LogLogModel`, :func:`tee_feature`,
  :func:`tee_leave_one_out`): a tokenizer encodes a category more efficiently (more bytes per
  token) the more of that category it was trained on. The bytes-per-token of the tokenizer on each
  category's sample, divided by that of a reference tokenizer trained on that category alone, is
  mapped to a proportion by a linear model in log-log space (``log p = a log e + b``), fitted on
  tokenizers *other* than the one being scored, and the predictions are normalised to sum to 1.

Encoding samples needs a tokenizer; :func:`truncated_tokenizer` builds a HF ``tokenizers`` object
from a ``tokenizer.json``, whole or keeping only its first ``T`` merges (to give the baselines the
same merges as the LP), and :func:`token_counts` counts the tokens a sample encodes to.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixinfer.errors import TokenizerError, UsageError


def random_estimate(categories: Sequence[str], rng: np.random.Generator) -> dict[str, float]:
    """A uniform draw from the probability simplex over ``categories``."""
    if not categories:
        raise UsageError("the random baseline needs at least one category")
    weights = rng.dirichlet(np.ones(len(categories)))
    return {c: float(w) for c, w in zip(categories, weights, strict=True)}


# --------------------------------------------------------------------------------------------------
# Encoding samples


@dataclass
class TruncatedTokenizer:
    """A HF tokenizer applying only the first ``merges`` merges of a trained BPE.

    Attributes:
        tokenizer: the live ``tokenizers.Tokenizer``.
        merges: how many merges it applies.
        vocab_size: one more than the largest token id (length of :func:`token_counts` arrays).
        merged_ids: ids of the tokens the merges create (the candidates of token classification).
    """

    tokenizer: Any
    merges: int
    vocab_size: int
    merged_ids: np.ndarray


def truncated_tokenizer(tokenizer_json: str, merges: int | None = None) -> TruncatedTokenizer:
    """Rebuild a BPE ``tokenizer.json`` (text) keeping its first ``merges`` merges (all: ``None``).

    The vocabulary keeps the tokens merges never create (the initial alphabet, special tokens) and
    the results of the kept merges, with their original ids.

    Raises:
        TokenizerError: the JSON is not a BPE model with merges and a vocabulary.
    """
    from tokenizers import Tokenizer

    data = json.loads(tokenizer_json)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or "merges" not in model or "vocab" not in model:
        raise TokenizerError("not a BPE tokenizer.json with `merges` and `vocab`")
    pairs: list[tuple[str, str]] = []
    for m in model["merges"]:
        a, b = m if isinstance(m, list) else str(m).split(" ", 1)
        pairs.append((a, b))
    vocab: dict[str, int] = model["vocab"]
    created = [a + b for a, b in pairs]
    all_created = set(created)
    limit = len(pairs) if merges is None else max(min(merges, len(pairs)), 0)
    kept_created = created[:limit]
    keep = {tok: i for tok, i in vocab.items() if tok not in all_created}
    for token in kept_created:
        keep[token] = vocab[token]
    model["merges"] = [[a, b] for a, b in pairs[:limit]]
    model["vocab"] = keep
    try:
        tok = Tokenizer.from_str(json.dumps(data))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise TokenizerError(f"cannot rebuild the tokenizer with {limit} merges ({exc})") from exc
    ids = np.array(sorted({vocab[t] for t in kept_created}), dtype=np.int64)
    return TruncatedTokenizer(tok, len(kept_created), max(keep.values()) + 1, ids)


def token_counts(tok: TruncatedTokenizer, texts: Iterable[str], batch: int = 256) -> np.ndarray:
    """How often each token id occurs when ``texts`` are encoded (no special tokens)."""
    counts = np.zeros(tok.vocab_size, dtype=np.int64)
    encode = getattr(tok.tokenizer, "encode_batch_fast", tok.tokenizer.encode_batch)
    buf: list[str] = []

    def flush() -> None:
        if not buf:
            return
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encode(buf, add_special_tokens=False)]
        if ids:
            counts[:] += np.bincount(np.concatenate(ids), minlength=tok.vocab_size)[: tok.vocab_size]
        buf.clear()

    for text in texts:
        buf.append(text)
        if len(buf) >= batch:
            flush()
    flush()
    return counts


# --------------------------------------------------------------------------------------------------
# TC: token classification


def tc_estimate(counts: Mapping[str, np.ndarray], candidates: np.ndarray | None = None) -> dict[str, float]:
    """Token classification: proportions from the share of tokens each category "owns".

    Args:
        counts: per category, how often each token id occurs in its encoded sample.
        candidates: the token ids to classify (e.g. those created by the merges used); default
            every id.

    Each candidate token goes to the category where its relative frequency (count divided by the
    sample's total tokens) is highest; tokens absent from every sample, or tied exactly between
    categories, are left out. Proportions are the categories' shares of the classified tokens
    (uniform when no token could be classified).
    """
    names = list(counts)
    if not names:
        raise UsageError("token classification needs at least one category")
    matrix = np.vstack([np.asarray(counts[c], dtype=np.float64) for c in names])
    if candidates is not None:
        matrix = matrix[:, np.asarray(candidates, dtype=np.int64)]
    totals = matrix.sum(axis=1, keepdims=True)
    freq = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    best = freq.max(axis=0)
    winners = freq == best
    decided = (best > 0) & (winners.sum(axis=0) == 1)
    owned = winners[:, decided].sum(axis=1).astype(np.float64)
    total = owned.sum()
    if total == 0:
        return {c: 1.0 / len(names) for c in names}
    return {c: float(v / total) for c, v in zip(names, owned, strict=True)}


# --------------------------------------------------------------------------------------------------
# TEE: tokenizer encoding efficiency


def tee_feature(sample_bytes: int, tokens: int, reference_tokens: int) -> float:
    """``log`` of the normalised encoding efficiency of one category.

    Efficiency is bytes per token; normalised by the reference tokenizer's on the same sample it is
    ``reference_tokens / tokens``.

    Raises:
        UsageError: an empty sample (no bytes or no tokens).
    """
    if sample_bytes <= 0 or tokens <= 0 or reference_tokens <= 0:
        raise UsageError("encoding efficiency needs a non-empty sample")
    return math.log((sample_bytes / tokens) / (sample_bytes / reference_tokens))


@dataclass(frozen=True)
class LogLogModel:
    """``log p = slope * log e + intercept``: proportion from normalised encoding efficiency."""

    slope: float
    intercept: float
    points: int

    @classmethod
    def fit(cls, features: Sequence[float], proportions: Sequence[float]) -> LogLogModel:
        """Least-squares fit on (log efficiency, proportion) pairs; zero proportions are skipped.

        Raises:
            UsageError: fewer than two usable points, or no spread in the features.
        """
        xs, ys = [], []
        for x, p in zip(features, proportions, strict=True):
            if p > 0 and math.isfinite(x):
                xs.append(x)
                ys.append(math.log(p))
        if len(xs) < 2:
            raise UsageError("the TEE model needs at least two (efficiency, proportion) points")
        xa = np.asarray(xs)
        ya = np.asarray(ys)
        if float(np.ptp(xa)) == 0.0:
            raise UsageError("the TEE model cannot be fitted: all efficiencies are equal")
        slope, intercept = np.polyfit(xa, ya, 1)
        return cls(float(slope), float(intercept), len(xs))

    def predict(self, features: Mapping[str, float]) -> dict[str, float]:
        """Proportions for one tokenizer: ``exp`` of the fitted line, normalised to sum to 1."""
        names = list(features)
        logs = np.array([self.slope * features[c] + self.intercept for c in names])
        weights = np.exp(logs - logs.max())  # the intercept cancels in the normalisation
        weights /= weights.sum()
        return {c: float(w) for c, w in zip(names, weights, strict=True)}


@dataclass(frozen=True)
class TEEObservation:
    """One tokenizer's TEE data: per category the log normalised efficiency and the true share."""

    key: Any
    features: Mapping[str, float]
    truth: Mapping[str, float]


@dataclass(frozen=True)
class TEEEstimate:
    """The TEE estimate for one observation, the model used, and why it is missing if it is."""

    key: Any
    estimate: dict[str, float] | None
    model: LogLogModel | None
    note: str = ""


def tee_leave_one_out(observations: Sequence[TEEObservation]) -> list[TEEEstimate]:
    """Score every observation with a log-log model fitted on all the *other* observations.

    The observation being scored never contributes to its own model. With a single observation
    (nothing else to fit on) the estimate is ``None`` and ``note`` says why.
    """
    out = []
    for i, obs in enumerate(observations):
        xs: list[float] = []
        ps: list[float] = []
        for j, other in enumerate(observations):
            if j == i:
                continue
            for c, x in other.features.items():
                xs.append(x)
                ps.append(float(other.truth.get(c, 0.0)))
        try:
            model = LogLogModel.fit(xs, ps)
        except UsageError as exc:
            note = (
                "TEE needs other trials to fit its log-log model; run at least 2 trials"
                if len(observations) < 2
                else f"TEE model not fitted: {exc}"
            )
            out.append(TEEEstimate(obs.key, None, None, note))
            continue
        out.append(TEEEstimate(obs.key, model.predict(obs.features), model))
    return out
