"""Cleaning published merge lists before inference: one merge per token, in order of creation.

Merge lists converted from SentencePiece (Llama, Mistral, Gemma) are not the list of merges the
tokenizer learned. The conversion writes *every* split of a piece into two vocabulary pieces
(``▁ the``, ``▁t he``, ``▁th e`` all producing ``▁the``) and sorts them by the piece's score. At
most one of them ever fires; the others would add false constraints to the LP. Some pieces were
also inserted or re-scored by hand (Llama's and Mistral's runs of ``▁``, whose merges sit at the
end of the list although their vocabulary ids are among the first; Gemma's user-defined runs of
whitespace, newlines and tabs, whose ids precede the byte-fallback block that starts the learned
pieces): they were not learned from data, so their merges are skipped.

The rule, for every token a merge produces, in order of its first merge in the file:

1. **inserted**: skipped when its vocabulary id breaks the vocabulary order (it is outside the
   longest run of tokens whose ids increase along the merge list), or when the loader marked it
   as reserved (``BPETokenizer.reserved``: SentencePiece user-defined pieces). Vocabulary ids
   are only trusted as the order of creation when that run holds at least
   :data:`ID_ORDER_SHARE` of the tokens (SentencePiece files: all but a handful; ids in random
   order: about ``2 * sqrt(n)`` of ``n``). Otherwise the
   ids say nothing about creation (e.g. a byte-level file whose ``model.vocab`` ids were
   renumbered): they are ignored, the merge list's own order (the merge ranks) is used, and the
   report carries a warning.
2. **unreachable**: skipped when none of its merges has both parts available (a base symbol or a
   token kept earlier), i.e. no merge path can create it at its place.
3. With one usable merge, that merge is kept. With several, the one the tokenizer actually uses
   is kept: BPE is run on the token's characters with the merges kept so far (lowest rank first);
   the two parts it stops at are the merge that creates the token. The others are **redundant**.
4. A pair listed twice is a **duplicate**; only its first occurrence counts.

The kept merges stay in the order of their tokens' first appearance, which (once out-of-order
tokens are gone) is the order of vocabulary ids: SentencePiece numbers pieces in order of creation,
so the cleaned list is in order of token creation and every merge's parts exist before it.
Byte-level lists trained with HF ``tokenizers`` or recovered from tiktoken ranks are already clean;
the same pass then removes nothing.

Cleaning never removes a large share of a list quietly: when merges removed as inserted or
unreachable exceed :data:`WARN_SHARE` of the list, or a byte-level list (which has no redundant
merges by construction) loses more than that share for any reason, ``CleaningReport.warnings``
says so (the pipeline copies the warnings into the result's).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mixinfer.tokenizer import BPETokenizer

REASONS = ("duplicate", "redundant", "inserted", "unreachable")
REASON_TEXT = {
    "duplicate": "listed twice",
    "redundant": "another merge creates the same token",
    "inserted": "inserted by hand (out of vocabulary order or reserved)",
    "unreachable": "no merge path creates the token at its place",
}
_EXAMPLES = 3

ID_ORDER_SHARE = 0.5
"""Vocabulary ids count as the order of creation when this share of the tokens follows them."""

WARN_SHARE = 0.05
"""Removing more than this share of a merge list (see the module docstring) gives a warning."""


@dataclass
class CleaningReport:
    """What cleaning did to a merge list.

    Attributes:
        enabled: whether cleaning ran (``False`` with ``clean=False`` / ``--no-clean``).
        merges_before: length of the merge list as loaded.
        merges_after: length of the cleaned list.
        removed: merges removed, by reason (see :data:`REASONS`).
        examples: a few removed merges per reason, as readable text.
        order: how the kept merges are ordered.
        ambiguous: tokens with several usable merges where BPE on the token's own characters did
            not end in one of them (the first usable merge was kept).
        warnings: loud remarks for the result's warnings (vocabulary ids ignored, a large share of
            the list removed).
    """

    enabled: bool
    merges_before: int
    merges_after: int
    removed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    order: str = "merge list"
    ambiguous: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def total_removed(self) -> int:
        """Number of merges removed."""
        return self.merges_before - self.merges_after

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the ``cleaning`` object of the JSON output)."""
        out: dict[str, Any] = {
            "enabled": self.enabled,
            "merges_before": self.merges_before,
            "merges_after": self.merges_after,
        }
        if self.enabled:
            out["removed"] = {r: self.removed.get(r, 0) for r in REASONS}
            out["examples"] = {r: list(v) for r, v in self.examples.items() if v}
            out["order"] = self.order
            out["ambiguous"] = self.ambiguous
            out["warnings"] = list(self.warnings)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningReport:
        """Rebuild from :meth:`to_dict` (e.g. ``InferenceResult.cleaning``)."""
        return cls(
            bool(data.get("enabled", False)),
            int(data.get("merges_before", 0)),
            int(data.get("merges_after", 0)),
            dict(data.get("removed", {})),
            {k: list(v) for k, v in data.get("examples", {}).items()},
            str(data.get("order", "merge list")),
            int(data.get("ambiguous", 0)),
            [str(w) for w in data.get("warnings", [])],
        )

    def summary(self) -> str:
        """One line for the table footer."""
        if not self.enabled:
            return f"merge-list cleaning: off ({self.merges_before} merges as loaded)"
        warned = f"; {len(self.warnings)} warning(s)" if self.warnings else ""
        if not self.total_removed:
            return f"merge-list cleaning: nothing to remove ({self.merges_before} merges{warned})"
        parts = ", ".join(f"{self.removed[r]} {r}" for r in REASONS if self.removed.get(r))
        return (
            f"merge-list cleaning: {self.merges_before} -> {self.merges_after} merges "
            f"(removed {parts}; kept in {self.order} order{warned})"
        )


def disabled_report(tok: BPETokenizer) -> CleaningReport:
    """The report for an inference run with cleaning turned off."""
    return CleaningReport(False, len(tok.merges), len(tok.merges))


def _show(tok: BPETokenizer, part: bytes) -> str:
    text = part.decode("utf-8", errors="backslashreplace")
    if tok.byte_level:
        # Make whitespace visible the way GPT-2 vocabularies do.
        text = text.replace(" ", "Ġ").replace("\n", "Ċ").replace("\t", "ĉ")
    return text


def _pair_text(tok: BPETokenizer, pair: tuple[bytes, bytes]) -> str:
    return f"{_show(tok, pair[0])} {_show(tok, pair[1])}"


def _increasing_subsequence(values: Sequence[int]) -> set[int]:
    """Indices of one longest strictly increasing subsequence of ``values`` (patience sorting)."""
    tails: list[int] = []
    tail_index: list[int] = []
    prev = [-1] * len(values)
    for i, v in enumerate(values):
        j = bisect.bisect_left(tails, v)
        if j == len(tails):
            tails.append(v)
            tail_index.append(i)
        else:
            tails[j] = v
            tail_index[j] = i
        prev[i] = tail_index[j - 1] if j > 0 else -1
    keep: set[int] = set()
    k = tail_index[-1] if tail_index else -1
    while k != -1:
        keep.add(k)
        k = prev[k]
    return keep


def _initial_symbols(tok: BPETokenizer, token: bytes) -> list[bytes]:
    """The symbols a word equal to ``token`` starts as (bytes, or characters with byte fallback)."""
    if tok.byte_level:
        return [token[i : i + 1] for i in range(len(token))]
    out: list[bytes] = []
    for ch in token.decode("utf-8", errors="surrogateescape"):
        raw = ch.encode("utf-8", errors="surrogateescape")
        if len(raw) == 1 or raw in tok.alphabet:
            out.append(raw)
        else:
            out.extend(raw[i : i + 1] for i in range(len(raw)))
    return out


def _bpe_parts(symbols: list[bytes], ranks: dict[tuple[bytes, bytes], int]) -> list[bytes]:
    """Plain BPE (lowest rank first, leftmost on ties) of one word with the given merge ranks."""
    parts = list(symbols)
    get = ranks.get
    while len(parts) > 1:
        best = -1
        best_rank = -1
        for i in range(len(parts) - 1):
            r = get((parts[i], parts[i + 1]))
            if r is not None and (best < 0 or r < best_rank):
                best, best_rank = i, r
        if best < 0:
            break
        parts[best : best + 2] = [parts[best] + parts[best + 1]]
    return parts


def clean_merges(tok: BPETokenizer) -> tuple[BPETokenizer, CleaningReport]:
    """Keep one merge per produced token, the one the tokenizer uses, in order of token creation.

    Returns the cleaned tokenizer (the same object when nothing is removed) and a report. See the
    module docstring for the rule.
    """
    merges = tok.merges
    removed = {r: 0 for r in REASONS}
    examples: dict[str, list[str]] = {r: [] for r in REASONS}

    def drop(reason: str, pair: tuple[bytes, bytes], note: str = "") -> None:
        removed[reason] += 1
        if len(examples[reason]) < _EXAMPLES:
            examples[reason].append(_pair_text(tok, pair) + note)

    # Group the merges by the token they produce, in order of the token's first merge.
    first: dict[bytes, int] = {}
    options: dict[bytes, list[tuple[bytes, bytes]]] = {}
    seen_pairs: set[tuple[bytes, bytes]] = set()
    for pair in merges:
        if pair in seen_pairs:
            drop("duplicate", pair)
            continue
        seen_pairs.add(pair)
        token = pair[0] + pair[1]
        if token not in first:
            first[token] = len(first)
            options[token] = []
        options[token].append(pair)
    order = list(first)

    # Tokens inserted by hand: reserved by the loader, or out of vocabulary order.
    inserted: set[bytes] = {t for t in order if t in tok.reserved}
    warnings: list[str] = []
    ids = tok.token_ids
    by_ids = False
    if ids is not None and all(t in ids for t in order):
        candidates = [t for t in order if t not in inserted]
        keep = _increasing_subsequence([ids[t] for t in candidates])
        if len(keep) >= ID_ORDER_SHARE * len(candidates):
            by_ids = True
            inserted.update(t for i, t in enumerate(candidates) if i not in keep)
        else:
            # Ids renumbered (or never in creation order): trusting them would drop nearly every
            # merge as "inserted". The merge list's own order is the creation order then.
            warnings.append(
                f"{tok.source}: the vocabulary ids are not in the order the merges create tokens "
                f"(only {len(keep)} of {len(candidates)} tokens follow it), so they were ignored "
                "and merge-list cleaning used the merge ranks; if the file was edited, check it"
            )
        ids = ids if by_ids else None

    if tok.byte_level:
        available: set[bytes] = {bytes([b]) for b in range(256)}
    else:
        available = set(tok.alphabet) | {bytes([b]) for b in range(256)}
    ranks: dict[tuple[bytes, bytes], int] = {}
    kept: list[tuple[bytes, bytes]] = []
    ambiguous = 0
    for token in order:
        pairs = options[token]
        if token in inserted:
            note = ""
            if ids is not None and token in ids:
                note = f" (id {ids[token]})"
            for pair in pairs:
                drop("inserted", pair, note)
            continue
        usable = [p for p in pairs if p[0] in available and p[1] in available]
        if not usable:
            for pair in pairs:
                drop("unreachable", pair)
            continue
        chosen = usable[0]
        if len(usable) > 1:
            parts = _bpe_parts(_initial_symbols(tok, token), ranks)
            if len(parts) == 2 and (parts[0], parts[1]) in usable:
                chosen = (parts[0], parts[1])
            else:
                ambiguous += 1
        for pair in pairs:
            if pair != chosen:
                drop("redundant", pair, f" (kept {_pair_text(tok, chosen)})")
        ranks[chosen] = len(kept)
        kept.append(chosen)
        available.add(token)

    order_name = "vocabulary id" if by_ids else "merge list"
    suspicious = removed["inserted"] + removed["unreachable"]
    lost = len(merges) - len(kept)
    if suspicious > WARN_SHARE * len(merges) or (tok.byte_level and lost > WARN_SHARE * len(merges)):
        what = ", ".join(f"{removed[r]} {r}" for r in REASONS if removed[r])
        warnings.append(
            f"{tok.source}: merge-list cleaning removed {lost} of {len(merges)} merges ({what}); "
            "that is far more than a published tokenizer needs, so the file may be damaged or "
            "unusual: compare with --no-clean"
        )
    report = CleaningReport(True, len(merges), len(kept), removed, examples, order_name, ambiguous, warnings)
    if kept == merges:
        return tok, report
    # The loader's hints that the list needs cleaning are settled now; the report replaces them.
    notes = [n for n in tok.notes if "cleaned" not in n and "cleaning" not in n]
    return replace(tok, merges=kept, notes=notes, gaps=_shifted_gaps(tok, kept)), report


def _shifted_gaps(tok: BPETokenizer, kept: list[tuple[bytes, bytes]]) -> tuple[int, ...]:
    """``tok.gaps`` as positions in the kept list (gaps come from rank files, which keep their order)."""
    if not tok.gaps:
        return tok.gaps
    index: dict[tuple[bytes, bytes], int] = {}
    for i, pair in enumerate(tok.merges):
        index.setdefault(pair, i)
    kept_at = sorted(index[pair] for pair in kept)
    return tuple(bisect.bisect_left(kept_at, gap) for gap in tok.gaps)
