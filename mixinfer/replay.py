"""Replaying a merge list over word counts: exact pair-count traces.

For one category, the replay applies merges ``0..T-1`` in order to every distinct word (weighted by
its count) and records how the count of every adjacent token pair changes at each step. The trace
is the initial pair counts plus sparse per-step deltas: ``count(pair, t)`` (the count just before
merge ``t``) is the initial count plus every delta recorded at steps ``< t``.

The replay is vectorised with numpy over a flat array of all symbols of all distinct words (linked
by ``next``/``prev`` arrays, with separators between words). Only the positions of pairs that some
later merge will join are indexed, so a merge costs time proportional to the places it applies,
and the whole replay grows with the number of distinct words, not with corpus size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from mixinfer import keys
from mixinfer.cache import Cache
from mixinfer.counting import WordCounts
from mixinfer.errors import TokenizerError
from mixinfer.executors import Executor, SerialExecutor, auto_executor, get_executor
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.tokenizer import BPETokenizer

_SEP = -1
_GONE = -2
# How often (in merges) the replay reports progress.
_PROGRESS_EVERY = 250


@dataclass
class TokenTable:
    """Integer ids for every token a tokenizer can produce, and its merges as id triples.

    Ids ``0..255`` are single bytes (the byte-level alphabet, or byte fallback for character-level
    tokenizers); further ids are multi-byte alphabet characters and merge results, in order of
    first appearance. A pair ``(a, b)`` is encoded as the integer ``a * size + b``.
    """

    ids: dict[bytes, int]
    left: np.ndarray
    right: np.ndarray
    result: np.ndarray
    byte_level: bool
    alphabet: frozenset[bytes]

    @property
    def size(self) -> int:
        """Number of token ids."""
        return len(self.ids)

    @property
    def merge_codes(self) -> np.ndarray:
        """The pair code of every merge, in merge order."""
        return self.left.astype(np.int64) * self.size + self.right.astype(np.int64)

    @classmethod
    def build(cls, tok: BPETokenizer) -> TokenTable:
        """Assign ids to every token of ``tok``; a merge of an unknown token is an error."""
        ids: dict[bytes, int] = {bytes([b]): b for b in range(256)}
        for ch in sorted(tok.alphabet):
            ids.setdefault(ch, len(ids))
        n = len(tok.merges)
        left = np.empty(n, dtype=np.int64)
        right = np.empty(n, dtype=np.int64)
        result = np.empty(n, dtype=np.int64)
        for t, (a, b) in enumerate(tok.merges):
            ia = ids.get(a)
            ib = ids.get(b)
            if ia is None or ib is None:
                missing = a if ia is None else b
                raise TokenizerError(
                    f"{tok.source}: merge #{t} ({a!r} + {b!r}) uses the token {missing!r}, which no "
                    f"earlier merge or the alphabet produces; the merge list is damaged or not in order"
                )
            left[t] = ia
            right[t] = ib
            result[t] = ids.setdefault(a + b, len(ids))
        return cls(ids, left, right, result, tok.byte_level, tok.alphabet)

    def initial_symbols(self, word: bytes) -> list[int]:
        """The ids a word starts as, before any merge."""
        if self.byte_level:
            return list(word)
        out: list[int] = []
        for ch in word.decode("utf-8", errors="surrogateescape"):
            raw = ch.encode("utf-8", errors="surrogateescape")
            tid = self.ids.get(raw) if (len(raw) == 1 or raw in self.alphabet) else None
            if tid is None:
                # Byte fallback: unknown characters enter as their bytes, which never merge.
                out.extend(raw)
            else:
                out.append(tid)
        return out


@dataclass
class Trace:
    """Pair counts of one category under the first ``merges`` merges.

    Attributes:
        merges: number of merges replayed (T).
        init_codes: pair codes present before any merge (sorted).
        init_counts: their counts.
        step: merge step of each delta (non-decreasing).
        code: pair code of each delta.
        delta: change in count caused by merge ``step`` (applies from step ``step + 1`` on).
    """

    merges: int
    init_codes: np.ndarray
    init_counts: np.ndarray
    step: np.ndarray
    code: np.ndarray
    delta: np.ndarray

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for the cache."""
        return {
            "init_codes": self.init_codes,
            "init_counts": self.init_counts,
            "step": self.step,
            "code": self.code,
            "delta": self.delta,
        }

    @classmethod
    def from_arrays(cls, merges: int, arrays: Mapping[str, np.ndarray]) -> Trace:
        """Rebuild from :meth:`to_arrays`."""
        return cls(
            merges,
            arrays["init_codes"],
            arrays["init_counts"],
            arrays["step"],
            arrays["code"],
            arrays["delta"],
        )

    def counts_at(self, t: int) -> dict[int, int]:
        """Every nonzero pair count just before merge ``t`` (a slow reference, for tests)."""
        counts = dict(zip(self.init_codes.tolist(), self.init_counts.tolist(), strict=True))
        upto = int(np.searchsorted(self.step, t, side="left"))
        for code, d in zip(self.code[:upto].tolist(), self.delta[:upto].tolist(), strict=True):
            counts[code] = counts.get(code, 0) + d
        return {c: n for c, n in counts.items() if n}


def _sum_by_code(codes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``weights`` (one per code occurrence) per distinct code."""
    uniq, inv = np.unique(codes, return_inverse=True)
    sums = np.bincount(inv, weights=weights, minlength=len(uniq))
    return uniq, np.rint(sums).astype(np.int64)


def _sum_by_word(
    codes: np.ndarray, word: np.ndarray, word_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sum each column of ``word_weight[word]`` per distinct code (without building that array)."""
    uniq, inv = np.unique(codes, return_inverse=True)
    out = np.empty((len(uniq), word_weight.shape[1]), dtype=np.int64)
    for j, column in enumerate(np.ascontiguousarray(word_weight.T)):
        out[:, j] = np.rint(np.bincount(inv, weights=column[word], minlength=len(uniq)))
    return uniq, out


def _weigh_changes(
    step: np.ndarray, code: np.ndarray, word: np.ndarray, sign: np.ndarray, word_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum per-word pair changes into per-(step, code) deltas, one column per weight column.

    Rows come out in (step, code) order, as the per-step sums do; rows zero in every column are
    dropped (the traces drop each column's zeros).
    """
    k = word_weight.shape[1]
    columns = np.ascontiguousarray(word_weight.T)  # a column's weights, contiguous for the gathers
    if len(step) == 0:
        return step, code, np.zeros((0, k), dtype=np.int64)
    order = np.lexsort((code, step))
    step, code, word, sign = step[order], code[order], word[order], sign[order]
    first = np.ones(len(step), dtype=bool)
    first[1:] = (step[1:] != step[:-1]) | (code[1:] != code[:-1])
    group = np.cumsum(first) - 1
    groups = int(group[-1]) + 1
    delta = np.empty((groups, k), dtype=np.int64)
    # A column at a time: a (changes x K) array would be K times the memory of the changes.
    for j in range(k):
        delta[:, j] = np.rint(np.bincount(group, weights=sign * columns[j][word], minlength=groups))
    nz = (delta != 0).any(axis=1)
    starts = np.flatnonzero(first)
    return step[starts][nz], code[starts][nz], delta[nz]


def replay(
    words: Mapping[bytes, int],
    table: TokenTable,
    merges: int,
    *,
    progress: ProgressCallback = noop,
    label: str = "",
) -> Trace:
    """Replay the first ``merges`` merges of ``table`` over ``words`` (word -> count)."""
    # Sorted words make symbol positions, and so everything downstream, independent of dict order.
    keys = sorted(words)
    counts = np.fromiter((words[k] for k in keys), dtype=np.int64, count=len(keys))
    return replay_weighted(keys, counts[:, None], table, merges, progress=progress, label=label)[0]


def replay_blocks(
    blocks: Sequence[Mapping[bytes, int]],
    table: TokenTable,
    merges: int,
    *,
    progress: ProgressCallback = noop,
    label: str = "",
) -> list[Trace]:
    """One trace per block of words, from a single replay.

    Where merges apply depends only on the words, not on their counts, so the replay runs once over
    the union of the blocks' words with one weight column per block; the traces of the blocks sum
    exactly to the trace of their union (:func:`sum_traces`).
    """
    keys = sorted(set().union(*blocks)) if blocks else []
    index = {k: i for i, k in enumerate(keys)}
    counts = np.zeros((len(keys), len(blocks)), dtype=np.int64)
    for j, block in enumerate(blocks):
        if block:
            rows = np.fromiter((index[k] for k in block), dtype=np.int64, count=len(block))
            counts[rows, j] = np.fromiter(block.values(), dtype=np.int64, count=len(block))
    return replay_weighted(keys, counts, table, merges, progress=progress, label=label)


def replay_weighted(
    keys: Sequence[bytes],
    counts: np.ndarray,
    table: TokenTable,
    merges: int,
    *,
    progress: ProgressCallback = noop,
    label: str = "",
) -> list[Trace]:
    """Replay over sorted distinct ``keys`` with ``counts[i, j]``: word ``i``'s count in column ``j``.

    Returns one trace per column. With several columns (the bootstrap's blocks), each merge's
    pair changes are recorded per word (code, word, +-1) and weighted by every column once at the
    end, instead of summing K-wide rows at every step: the per-step work is then that of one
    column (the 32-block replay of the demo's categories went from 3.3 s to 2.0 s).
    """
    size = table.size
    n_cols = counts.shape[1]
    by_word = n_cols > 1
    if table.byte_level:
        lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
        flat = np.frombuffer(b"".join(keys), dtype=np.uint8).astype(np.int64)
    else:
        seqs = [table.initial_symbols(k) for k in keys]
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        flat = np.fromiter((x for s in seqs for x in s), dtype=np.int64, count=int(lengths.sum()))
    n_words = len(keys)
    total = int(lengths.sum()) + n_words + 1
    # Layout: [SEP] w0 [SEP] w1 [SEP] ... so that every word has a separator on both sides.
    starts = np.zeros(n_words, dtype=np.int64)
    if n_words:
        starts[1:] = np.cumsum(lengths + 1)[:-1]
    starts += 1
    sym = np.full(total, _SEP, dtype=np.int64)
    # A position's weight is its word's counts (a merge never moves a symbol to another word), so
    # positions hold their word's row of ``word_weight``; separators hold the extra zero row.
    # (A (positions, K) weight array would cost K times the memory: 256 MB per category at K=32.)
    word_weight = np.zeros((n_words + 1, n_cols), dtype=np.float64)
    word_weight[:n_words] = counts
    owner = np.full(total, n_words, dtype=np.int64)
    if n_words:
        word_of = np.repeat(np.arange(n_words), lengths)
        positions = starts[word_of] + (
            np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        )
        sym[positions] = flat
        owner[positions] = word_of
        del word_of, positions
    nxt = np.arange(1, total + 1, dtype=np.int64)
    nxt[-1] = total - 1
    prv = np.arange(-1, total - 1, dtype=np.int64)
    prv[0] = 0

    left = np.arange(total - 1)
    ok = (sym[:-1] >= 0) & (sym[1:] >= 0)
    pos0 = left[ok]
    codes0 = sym[pos0] * size + sym[pos0 + 1]
    init_codes, init_counts = _sum_by_word(codes0, owner[pos0], word_weight)

    merges = min(merges, len(table.left))
    mcodes = table.merge_codes[:merges]
    wanted = np.unique(mcodes)

    index: dict[int, list[np.ndarray]] = {}

    def add_to_index(pos: np.ndarray, codes: np.ndarray) -> None:
        # Membership by binary search: np.isin re-sorts ``wanted`` on every call.
        at = np.minimum(np.searchsorted(wanted, codes), len(wanted) - 1)
        keep = wanted[at] == codes
        if not keep.any():
            return
        pos, codes = pos[keep], codes[keep]
        order = np.argsort(codes, kind="stable")
        pos, codes = pos[order], codes[order]
        uniq, first = np.unique(codes, return_index=True)
        for code, chunk in zip(uniq.tolist(), np.split(pos, first[1:]), strict=True):
            index.setdefault(code, []).append(chunk)

    add_to_index(pos0, codes0)
    del pos0, codes0, left, ok

    d_step: list[np.ndarray] = []
    d_code: list[np.ndarray] = []
    d_val: list[np.ndarray] = []
    d_word: list[np.ndarray] = []  # by_word: the word of each change (its sign is in d_val)
    a_ids, b_ids, c_ids = table.left, table.right, table.result
    for t in range(merges):
        if t % _PROGRESS_EVERY == 0:
            progress(Progress("replay", t, merges, "merges", label))
        chunks = index.pop(int(mcodes[t]), None)
        if chunks is None:
            continue
        cand = np.unique(np.concatenate(chunks)) if len(chunks) > 1 else np.unique(chunks[0])
        a, b, c = int(a_ids[t]), int(b_ids[t]), int(c_ids[t])
        cand = cand[sym[cand] == a]
        cand = cand[sym[nxt[cand]] == b]
        if a == b and len(cand) > 1:
            # Runs like "aaa": merge left to right without overlap (every other position of a run).
            cont = np.zeros(len(cand), dtype=bool)
            cont[1:] = prv[cand[1:]] == cand[:-1]
            run_start = np.maximum.accumulate(np.where(~cont, np.arange(len(cand)), 0))
            cand = cand[(np.arange(len(cand)) - run_start) % 2 == 0]
        if len(cand) == 0:
            continue
        i_pos = cand
        j_pos = nxt[i_pos]
        l_pos = prv[i_pos]
        r_pos = nxt[j_pos]

        old = np.unique(np.concatenate([l_pos, i_pos, j_pos]))
        old = old[(sym[old] >= 0) & (sym[nxt[old]] >= 0)]
        old_codes = sym[old] * size + sym[nxt[old]]

        sym[i_pos] = c
        sym[j_pos] = _GONE
        nxt[i_pos] = r_pos
        prv[r_pos] = i_pos

        new = np.unique(np.concatenate([l_pos, i_pos]))
        new = new[(sym[new] >= 0) & (sym[nxt[new]] >= 0)]
        new_codes = sym[new] * size + sym[nxt[new]]

        if by_word:
            d_step.append(np.full(len(old) + len(new), t, dtype=np.int32))
            d_code.append(np.concatenate([old_codes, new_codes]))
            d_word.append(owner[np.concatenate([old, new])])
            d_val.append(np.concatenate([np.full(len(old), -1.0), np.ones(len(new))]))
        else:  # one column
            codes, sums = _sum_by_code(
                np.concatenate([old_codes, new_codes]),
                np.concatenate([-word_weight[owner[old], 0], word_weight[owner[new], 0]]),
            )
            nz = sums != 0
            if nz.any():
                d_step.append(np.full(int(nz.sum()), t, dtype=np.int32))
                d_code.append(codes[nz])
                d_val.append(sums[nz, None])
        add_to_index(new, new_codes)
    progress(Progress("replay", merges, merges, "merges", label))

    step = np.concatenate(d_step) if d_step else np.zeros(0, dtype=np.int32)
    code = np.concatenate(d_code) if d_code else np.zeros(0, dtype=np.int64)
    if by_word:
        step, code, delta = _weigh_changes(
            step,
            code,
            np.concatenate(d_word) if d_word else code,
            np.concatenate(d_val) if d_val else np.zeros(0),
            word_weight,
        )
    else:
        delta = np.concatenate(d_val) if d_val else np.zeros((0, n_cols), dtype=np.int64)
    traces = []
    for j in range(n_cols):
        # Per column, only what is nonzero in it (a block's trace is as sparse as its own words).
        keep_init = init_counts[:, j] != 0
        keep = delta[:, j] != 0
        traces.append(
            Trace(
                merges,
                init_codes[keep_init],
                init_counts[keep_init, j],
                step[keep],
                code[keep],
                delta[keep, j],
            )
        )
    return traces


def sum_traces(
    traces: Sequence[Trace], weights: Sequence[float] | np.ndarray | None = None, *, keep_zeros: bool = False
) -> Trace:
    """The trace of a weighted union of samples: ``sum_j weights[j] * traces[j]`` (exact, linear).

    Weights are whole numbers (bootstrap multiplicities); the counts stay integers. With
    ``keep_zeros`` every entry of every trace is kept, zero or not, so sums of the same traces
    under any weights have the same entries (and their LPs the same structure: the bootstrap
    solves every replicate from the full sample's basis).
    """
    if not traces:
        raise ValueError("sum_traces needs at least one trace")
    w = np.ones(len(traces), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    merges = traces[0].merges
    use = [j for j in range(len(traces)) if w[j] or keep_zeros]
    if not use:
        empty = np.zeros(0, dtype=np.int64)
        return Trace(merges, empty, empty, np.zeros(0, dtype=np.int32), empty, empty)
    init_codes, init_counts = _sum_by_code(
        np.concatenate([traces[j].init_codes for j in use]),
        np.concatenate([traces[j].init_counts * w[j] for j in use]).astype(np.float64),
    )
    step = np.concatenate([traces[j].step for j in use]).astype(np.int64)
    code = np.concatenate([traces[j].code for j in use])
    delta = np.concatenate([traces[j].delta * w[j] for j in use])
    # Group by (step, code): steps stay non-decreasing, as a trace requires.
    key = step * (int(code.max()) + 1 if len(code) else 1) + code
    uniq, inv = np.unique(key, return_inverse=True)
    sums = np.rint(np.bincount(inv, weights=delta.astype(np.float64), minlength=len(uniq))).astype(np.int64)
    first = np.zeros(len(uniq), dtype=np.int64)
    first[inv] = np.arange(len(key))
    nz = (sums != 0) | keep_zeros
    keep_init = (init_counts != 0) | keep_zeros
    return Trace(
        merges,
        init_codes[keep_init],
        init_counts[keep_init],
        step[first][nz].astype(np.int32),
        code[first][nz],
        sums[nz],
    )


def trace_key(words_key: str, tok: BPETokenizer, merges: int) -> str:
    """The cache key of a trace (see :func:`mixinfer.keys.trace_key`)."""
    return keys.trace_key(words_key, tok, merges)


def cached_replay(
    words: Mapping[bytes, int],
    words_key: str,
    tok: BPETokenizer,
    table: TokenTable,
    merges: int,
    cache: Cache,
    *,
    progress: ProgressCallback = noop,
    label: str = "",
) -> Trace:
    """:func:`replay`, through the cache."""
    key = trace_key(words_key, tok, merges)
    hit = cache.load("trace", key)
    if hit is not None:
        progress(Progress("replay", merges, merges, "merges", label))
        return Trace.from_arrays(merges, hit[0])
    trace = replay(words, table, merges, progress=progress, label=label)
    cache.store("trace", key, trace.to_arrays(), {"merges": merges})
    return trace


# The token table of a replay worker, set once per worker by _init_replay_worker.
_TABLE: TokenTable | None = None


def _init_replay_worker(table: TokenTable) -> None:
    global _TABLE
    _TABLE = table


def _replay_job(words: dict[bytes, int], merges: int) -> Trace:
    assert _TABLE is not None, "the executor did not run _init_replay_worker"
    return replay(words, _TABLE, merges)


def build_traces(
    counts: Sequence[WordCounts],
    keys: Sequence[str],
    tok: BPETokenizer,
    merges: int,
    cache: Cache,
    *,
    workers: int | None = None,
    executor: Executor | str | None = None,
    progress: ProgressCallback = noop,
) -> list[Trace]:
    """Replay ``merges`` merges over every category's words (cached; one job per category).

    Jobs run on ``executor`` (an :class:`~mixinfer.executors.Executor`, or a registry name for
    :func:`~mixinfer.executors.get_executor`; the caller closes an executor it passes). By default
    (``None`` or ``"auto"``) they run in ``workers`` processes (default: all cores) when more than
    one category needs replaying, else in this process.
    """
    table = TokenTable.build(tok)
    traces: dict[int, Trace] = {}
    todo = []
    for i, key in enumerate(keys):
        hit = cache.load("trace", trace_key(key, tok, merges))
        if hit is not None:
            traces[i] = Trace.from_arrays(merges, hit[0])
        else:
            todo.append(i)
    total = merges * len(counts)
    done = merges * (len(counts) - len(todo))
    progress(Progress("replay", done, total, "merges"))

    owned: Executor | None = None
    if executor is None or executor == "auto":
        executor = owned = auto_executor(workers, len(todo))
    elif isinstance(executor, str):
        executor = owned = get_executor(executor, workers)
    try:
        if executor is None or isinstance(executor, SerialExecutor):
            # In this process, with progress every few hundred merges rather than per category.
            for k, i in enumerate(todo):
                base = done
                label = f"category {k + 1}/{len(todo)}: {counts[i].category}"

                def step(p: Progress, base: int = base, name: str = label) -> None:
                    progress(Progress("replay", base + p.done, total, "merges", name))

                traces[i] = cached_replay(
                    counts[i].words,
                    keys[i],
                    tok,
                    table,
                    merges,
                    cache,
                    progress=step,
                    label=counts[i].category,
                )
                done += merges
        elif todo:
            # The table goes to each worker once; each job carries one category's words.
            jobs = [(counts[i].words, merges) for i in todo]
            results = executor.map_unordered(
                _replay_job, jobs, initializer=_init_replay_worker, initargs=(table,)
            )
            with closing(results):
                for finished, (k, trace) in enumerate(results, start=1):
                    i = todo[k]
                    cache.store(
                        "trace", trace_key(keys[i], tok, merges), trace.to_arrays(), {"merges": merges}
                    )
                    traces[i] = trace
                    done += merges
                    detail = f"category {finished}/{len(todo)} done: {counts[i].category}"
                    progress(Progress("replay", done, total, "merges", detail))
    finally:
        if owned is not None:
            owned.close()
    progress(Progress("replay", total, total, "merges"))
    return [traces[i] for i in range(len(counts))]
