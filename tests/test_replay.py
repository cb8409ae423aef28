"""Replayed pair counts equal a brute-force recount, on random and real merge lists."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixinfer.pretokenizers import Pretokenizer
from mixinfer.replay import TokenTable, Trace, replay, replay_blocks, sum_traces
from mixinfer.tokenizer import BPETokenizer

_PRETOK = Pretokenizer("test", None, None, byte_level=True)


def apply_merges(word: bytes, merges: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Reference BPE: apply each merge in order, left to right, to the whole word."""
    parts = [bytes([b]) for b in word]
    for a, b in merges:
        out: list[bytes] = []
        i = 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


def brute_counts(words: dict[bytes, int], merges: list[tuple[bytes, bytes]]) -> Counter[tuple[bytes, bytes]]:
    counts: Counter[tuple[bytes, bytes]] = Counter()
    for w, n in words.items():
        parts = apply_merges(w, merges)
        for x, y in zip(parts, parts[1:], strict=False):
            counts[(x, y)] += n
    return counts


def train_naive(words: dict[bytes, int], n_merges: int) -> list[tuple[bytes, bytes]]:
    """A tiny reference BPE trainer: most frequent pair, ties to the smallest pair."""
    merges: list[tuple[bytes, bytes]] = []
    for _ in range(n_merges):
        counts = brute_counts(words, merges)
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], [-x for x in kv[0][0] + kv[0][1]]))
        merges.append(best[0])
    return merges


def check(words: dict[bytes, int], merges: list[tuple[bytes, bytes]], steps: list[int]) -> None:
    tok = BPETokenizer("test", merges, True, _PRETOK)
    table = TokenTable.build(tok)
    trace = replay(words, table, len(merges))
    inv = {v: k for k, v in table.ids.items()}
    for t in steps:
        got = {(inv[c // table.size], inv[c % table.size]): n for c, n in trace.counts_at(t).items()}
        assert got == dict(brute_counts(words, merges[:t])), f"step {t}"


words_strategy = st.dictionaries(
    st.binary(min_size=1, max_size=12).map(lambda b: bytes(x % 4 + 97 for x in b)),
    st.integers(min_value=1, max_value=50),
    min_size=1,
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(words=words_strategy, n=st.integers(min_value=1, max_value=25))
def test_replay_matches_brute_force_on_trained_merges(words: dict[bytes, int], n: int) -> None:
    merges = train_naive(words, n)
    if merges:
        check(words, merges, list(range(len(merges) + 1)))


@settings(max_examples=100, deadline=None)
@given(words=words_strategy, seed=st.integers(0, 10_000))
def test_replay_matches_brute_force_on_arbitrary_merges(words: dict[bytes, int], seed: int) -> None:
    """Merges in any order (not the training order), including repeated symbols like 'aa'."""
    rng = random.Random(seed)
    tokens = [b"a", b"b", b"c", b"d"]
    merges = []
    for _ in range(rng.randint(1, 15)):
        a, b = rng.choice(tokens), rng.choice(tokens)
        merges.append((a, b))
        if a + b not in tokens:
            tokens.append(a + b)
    check(words, merges, list(range(len(merges) + 1)))


@pytest.mark.parametrize(
    "word",
    [
        pytest.param(b"aaaa", id="even-run"),
        pytest.param(b"aaaaa", id="odd-run"),
        pytest.param(b"abababab", id="alternating"),
        pytest.param(b"aabaa", id="two-runs"),
    ],
)
def test_runs_of_one_symbol(word: bytes) -> None:
    merges = [(b"a", b"a"), (b"aa", b"aa"), (b"a", b"b"), (b"ab", b"ab")]
    check({word: 3, b"ba": 1}, merges, list(range(len(merges) + 1)))


def _same_trace(a: Trace, b: Trace) -> None:
    assert a.merges == b.merges
    for t in range(a.merges + 1):
        assert a.counts_at(t) == b.counts_at(t), f"step {t}"


@settings(max_examples=100, deadline=None)
@given(
    blocks=st.lists(words_strategy, min_size=1, max_size=5),
    multiplicity=st.lists(st.integers(0, 3), min_size=5, max_size=5),
    n=st.integers(min_value=1, max_value=15),
)
def test_block_traces_sum_to_the_trace_of_their_union(
    blocks: list[dict[bytes, int]], multiplicity: list[int], n: int
) -> None:
    """One replay gives every block's trace; weighted sums equal replaying the weighted union."""
    union: Counter[bytes] = Counter()
    for b in blocks:
        union.update(b)
    merges = train_naive(dict(union), n)
    if not merges:
        return
    tok = BPETokenizer("test", merges, True, _PRETOK)
    table = TokenTable.build(tok)
    per_block = replay_blocks(blocks, table, len(merges))
    assert len(per_block) == len(blocks)
    for block, trace in zip(blocks, per_block, strict=True):
        _same_trace(trace, replay(block, table, len(merges)))
    _same_trace(sum_traces(per_block), replay(dict(union), table, len(merges)))
    # A bootstrap replicate: blocks drawn with multiplicities.
    weights = multiplicity[: len(blocks)]
    weighted: Counter[bytes] = Counter()
    for block, k in zip(blocks, weights, strict=True):
        for word, c in block.items():
            weighted[word] += c * k
    weighted_words = {w: c for w, c in weighted.items() if c}
    combined = sum_traces(per_block, weights)
    if weighted_words:
        _same_trace(combined, replay(weighted_words, table, len(merges)))
    else:
        assert combined.counts_at(0) == {}
    assert np.all(np.diff(combined.step) >= 0)
