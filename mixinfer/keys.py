"""Every cache key mixinfer builds, in one place.

A key is a hash of everything that changes the cached content (see :func:`mixinfer.cache.make_key`).
Keeping them together makes it possible to check, in one reading, that a key covers its inputs,
and lets the stages share keys instead of predicting each other's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from mixinfer.cache import make_key
from mixinfer.pretokenizers import Pretokenizer
from mixinfer.samples import Category
from mixinfer.tokenizer import BPETokenizer

# Bump when what a cached solution holds changes (slacks were added in version 2).
SOLUTION_LAYOUT = 2


@lru_cache(maxsize=1)
def engine_versions() -> tuple[str, str]:
    """Versions of the libraries that cut words (``tokenizers``, ``regex``): part of word-count keys.

    A new ``tokenizers`` may pretokenize differently (Unicode tables, regex engine); ``regex`` splits
    the known patterns on the fast path.
    """
    import regex
    import tokenizers

    return tokenizers.__version__, str(getattr(regex, "__version__", "?"))


def words_key(category: Category, pretok: Pretokenizer, max_bytes: int, unit: str) -> str:
    """The cache key of a category's word counts (sample files, pretokenizer, budget, unit, engines)."""
    return make_key(
        "words", category.fingerprint(), pretok.fingerprint(), max_bytes, unit, list(engine_versions())
    )


def texts_words_key(content_key: str, pretok: Pretokenizer, max_bytes: int, unit: str) -> str:
    """The cache key of the word counts of texts identified by content (simulated attack samples)."""
    return make_key(
        "words-texts", content_key, pretok.fingerprint(), max_bytes, unit, list(engine_versions())
    )


# A tokenizer's merge-prefix key is asked for once per category and per stage; hashing 30,000
# merges each time was about 30% of a warm run. Keyed by the merge list object and the prefix
# length; the merge list of a BPETokenizer is never mutated in place.
_MERGES_KEYS: dict[tuple[int, int], tuple[object, str]] = {}


def merges_key(tok: BPETokenizer, merges: int) -> str:
    """A key of the first ``merges`` merges of ``tok`` and of its token-table size.

    Pair codes are ``a * size + b`` with ``size`` the number of tokens of the *whole* merge list,
    so the size is part of the key: two lists sharing their first ``merges`` merges but not their
    length must not share traces.
    """
    memo = (id(tok.merges), merges)
    hit = _MERGES_KEYS.get(memo)
    if hit is not None and hit[0] is tok.merges:
        return hit[1]
    tokens = {bytes([b]) for b in range(256)} | set(tok.alphabet)
    size = len(tokens | {a + b for a, b in tok.merges})
    key = make_key("merges", tok.merges_fingerprint(merges), merges, size)
    if len(_MERGES_KEYS) > 64:
        _MERGES_KEYS.clear()
    _MERGES_KEYS[memo] = (tok.merges, key)
    return key


def trace_key(words: str, tok: BPETokenizer, merges: int) -> str:
    """The cache key of a trace: the word counts it came from and the merges replayed."""
    return make_key("trace", words, merges_key(tok, merges), merges)


def solution_key(
    trace_keys: Sequence[str], start_merge: int, solver: str, normalize: str, estimator: str = "lp"
) -> str:
    """The cache key of an optimal LP solution: a pure function of its traces and settings.

    Trace keys fix the words (and so the bytes read) and the merges replayed, so a solution can be
    found before any word count or trace is loaded. The estimator is part of it: one estimator's
    answer must never be returned for another's.
    """
    from mixinfer.solver import LP_FORMULATION  # here: the solver imports replay, which imports keys

    return make_key(
        "solution",
        LP_FORMULATION,
        SOLUTION_LAYOUT,
        list(trace_keys),
        start_merge,
        solver,
        normalize,
        *([] if estimator == "lp" else [estimator]),  # lp keeps the keys of earlier versions
    )


def simulated_tokenizer_key(
    split_rule: str,
    tokenizers_version: str,
    vocab: int,
    unit: str,
    seed: int,
    trial: int,
    budgets: Sequence[tuple[str, str, int]],
) -> str:
    """A simulated mixture tokenizer: trainer version, vocabulary, unit, draw, and each category's
    training part (name, content fingerprint, bytes)."""
    return make_key(
        "simulate-tokenizer",
        split_rule,
        tokenizers_version,
        vocab,
        unit,
        seed,
        trial,
        [list(b) for b in budgets],
    )


def reference_tokenizer_key(
    split_rule: str, tokenizers_version: str, vocab: int, unit: str, name: str, fingerprint: str
) -> str:
    """TEE's reference tokenizer of one category's training part."""
    return make_key("simulate-reference", split_rule, tokenizers_version, vocab, unit, name, fingerprint)


def baseline_counts_key(
    tokenizer_key: str,
    limit: int | None,
    attack_bytes: int,
    unit: str,
    name: str,
    fingerprint: str,
    split_rule: str,
) -> str:
    """Token counts of a category's attack sample under a (possibly truncated) simulated tokenizer."""
    return make_key(
        "simulate-counts",
        tokenizer_key,
        "all" if limit is None else limit,
        attack_bytes,
        unit,
        name,
        fingerprint,
        split_rule,
    )


def attack_content_key(split_rule: str, name: str, fingerprint: str) -> str:
    """A simulated category's attack text: its source category's fingerprint and the split rule."""
    return make_key("simulate-attack", split_rule, name, fingerprint)


def bootstrap_key(solution: str, replicates: int, seed: int, blocks: int) -> str:
    """Bootstrap replicates of a solution: its inputs (the solution key), B, the seed, the blocks.

    The confidence level is not part of it: intervals are recomputed from the stored replicates.
    """
    # "runs-of-lines": categories of fewer documents than blocks are cut into runs of lines.
    return make_key("bootstrap", solution, replicates, seed, blocks, "runs-of-lines")
