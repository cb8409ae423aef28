"""Merges recovered from mergeable ranks (tiktoken files, tiktoken's registry, Tekken JSON).

A rank file lists tokens in order of creation. For each token of two or more bytes, byte-level BPE
is run on its bytes using only lower-ranked tokens; when it ends in exactly two parts, that pair is
the token's merge (as Hugging Face's tiktoken converter does). A token that does not end in two
parts was not made by a merge: tiktoken looks a whole piece up before running BPE, so such a token
(Llama 3 has 678, added after training) is reachable only as a whole piece. It gives no merge and
is *skipped*; :func:`recover` reports where in the merge list each one sat, so that a run can say
how many merges its stretch lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mixinfer.errors import TokenizerError
from mixinfer.pretokenizers import Pretokenizer
from mixinfer.tokenizer import BPETokenizer

MAX_SKIPPED_SHARE = 0.05
"""Above this share of skipped multi-byte tokens the ranks are refused as not BPE ranks."""


@dataclass
class Recovered:
    """Merges recovered from ranks, and the tokens skipped.

    Attributes:
        merges: the ordered merge list.
        skipped: ``(rank, token, position)`` of each skipped token; ``position`` is the number of
            merges before it (where its merge would have been).
    """

    merges: list[tuple[bytes, bytes]]
    skipped: list[tuple[int, bytes, int]] = field(default_factory=list)

    @property
    def gaps(self) -> tuple[int, ...]:
        """The merge-list positions of the skipped tokens (see ``BPETokenizer.gaps``)."""
        return tuple(pos for _, _, pos in self.skipped)


def recover(ranks: dict[bytes, int], where: str = "mergeable ranks") -> Recovered:
    """Recover the ordered merge list from tiktoken-style mergeable ranks, skipping tokens that
    no merge of two lower-ranked tokens builds.

    Raises:
        TokenizerError: no multi-byte token, or more than :data:`MAX_SKIPPED_SHARE` of them skipped
            (these are not BPE ranks).
    """
    get = ranks.get
    out = Recovered([])
    multi = 0
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        n = len(token)
        if n < 2:
            continue
        multi += 1
        parts = [token[i : i + 1] for i in range(n)]
        if n > 2:
            # Plain tiktoken BPE (lowest rank first), stopped before the token's own rank. Tokens
            # are short (6-7 bytes on average), so a quadratic scan beats a heap in Python.
            while True:
                best = -1
                best_rank = rank
                for i in range(len(parts) - 1):
                    r = get(parts[i] + parts[i + 1])
                    if r is not None and r < best_rank:
                        best_rank = r
                        best = i
                if best < 0:
                    break
                parts[best : best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) != 2 or get(parts[0]) is None or get(parts[1]) is None:
            out.skipped.append((rank, token, len(out.merges)))
            continue
        out.merges.append((parts[0], parts[1]))
    if len(out.skipped) > MAX_SKIPPED_SHARE * multi:
        rank, token, _ = out.skipped[0]
        raise TokenizerError(
            f"{where}: {len(out.skipped)} of {multi} tokens cannot be built by merging two "
            f"lower-ranked tokens (the first: {token!r}, rank {rank}); these are not BPE mergeable "
            "ranks in order of creation"
        )
    if not out.merges:
        raise TokenizerError(f"{where}: no token longer than one byte, so there are no merges")
    return out


def recover_merges(ranks: dict[bytes, int], where: str = "mergeable ranks") -> list[tuple[bytes, bytes]]:
    """Recover the ordered merge list from tiktoken-style mergeable ranks, strictly.

    For each token of two or more bytes, in rank order, byte-level BPE is run on its bytes using
    only lower-ranked tokens; it must end in exactly two parts, and that pair is the token's merge.
    (Loading a file skips such tokens instead, with a note: see :func:`recover`.)

    Raises:
        TokenizerError: a token cannot be derived that way (or no multi-byte token exists).
    """
    got = recover(ranks, where) if ranks else None
    if got is None:
        raise TokenizerError(f"{where}: no token longer than one byte, so there are no merges")
    if got.skipped:
        rank, token, _ = got.skipped[0]
        raise TokenizerError(
            f"{where}: token {token!r} (rank {rank}) cannot be built by merging two lower-ranked "
            "tokens; these are not BPE mergeable ranks"
        )
    return got.merges


def skipped_notes(got: Recovered, what: str) -> list[str]:
    """Notes saying which tokens were skipped and which merge positions they would have taken."""
    if not got.skipped:
        return []
    rank, token, first = got.skipped[0]
    last = got.skipped[-1][2]
    return [
        f"{len(got.skipped)} token(s) of {what} cannot be built by merging two lower-ranked tokens "
        f"(tiktoken looks whole pieces up before BPE; the first is {token!r}, rank {rank}); they "
        f"give no merge and are skipped. They sit between merges {first} and {last}: with "
        f"--merges {first} or fewer none is missing; with more, the replayed merges lack the "
        "skipped tokens that fall before that count"
    ]


def ranks_tokenizer(
    got: Recovered, *, source: str, pretokenizer: Pretokenizer, notes: list[str], fmt: str, counted: str
) -> BPETokenizer:
    """The byte-level tokenizer of recovered merges; ``counted`` says what was read ("128000
    mergeable ranks") for the closing note."""
    return BPETokenizer(
        source=source,
        merges=got.merges,
        byte_level=True,
        pretokenizer=pretokenizer,
        notes=[*notes, f"merges recovered from {counted}"],
        format=fmt,
        gaps=got.gaps,
    )
