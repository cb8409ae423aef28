"""Hugging Face ``tokenizer.json`` (BPE models only).

``model.type`` may be ``"BPE"`` or absent (GPT-2's file); merges as ``"a b"`` strings or
``["a", "b"]`` lists. Byte-level vocabularies (a ``ByteLevel`` pre-tokenizer or decoder, or merges
written entirely in GPT-2's 256-character byte alphabet) are mapped back to raw bytes.
Character-level vocabularies (SentencePiece conversions) keep the UTF-8 bytes of each token, ``▁``
included, and byte-fallback tokens ``<0xNN>`` become that byte. The pretokenizer is chosen by
:func:`mixinfer.formats.choose.choose_for_json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixinfer.errors import TokenizerError
from mixinfer.formats import files
from mixinfer.formats.choose import choose_for_json
from mixinfer.formats.common import (
    BYTE_FALLBACK,
    byte_level_token,
    char_level_token,
    check_buildable,
    check_in_vocab,
    describe,
    merges_to_bytes,
    note_duplicates,
)
from mixinfer.pretokenizers import BYTE_DECODER, from_tokenizer_json, has_byte_level
from mixinfer.tokenizer import BPETokenizer


class HFJsonFormat:
    """A Hugging Face ``tokenizer.json`` (recognised by content: a JSON object)."""

    name: str = "tokenizer.json"
    suffixes: tuple[str, ...] = (".json",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """A JSON object (the Tekken format, also JSON, is tried first)."""
        return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")

    def parse(self, data: bytes, *, source: str, where: str) -> BPETokenizer:
        """Build the tokenizer from the file's bytes."""
        return tokenizer_from_json(files.parse_json(data, where), source=source, origin=where)

    def load(self, path: Path, source: str) -> BPETokenizer:
        """Read and parse ``path``."""
        return self.parse(files.read_bytes(path), source=source, where=str(path))


def tokenizer_from_json(data: Any, *, source: str, origin: str | None = None) -> BPETokenizer:
    """Build a :class:`BPETokenizer` from a parsed ``tokenizer.json``.

    Args:
        data: the parsed JSON document.
        source: what the user gave, stored in the result.
        origin: the file name used in error messages (defaults to ``source``).

    Raises:
        TokenizerError: the document is not a usable BPE ``tokenizer.json``.
    """
    where = origin or source
    if not isinstance(data, dict):
        raise TokenizerError(f"{where}: expected a JSON object (a Hugging Face tokenizer.json)")
    model = data.get("model")
    if not isinstance(model, dict):
        raise TokenizerError(
            f"{where}: no `model` object, so this is not a Hugging Face tokenizer.json; mixinfer also "
            "reads Mistral's Tekken JSON (`config` + `vocab` of ranks), and for GPT-2 style "
            "files pass the directory holding vocab.json + merges.txt"
        )
    mtype = model.get("type")
    if mtype is None:
        # GPT-2's file has no "type"; tokenizers then infers BPE from the keys present.
        if "merges" not in model or "vocab" not in model:
            raise TokenizerError(
                f"{where}: `model` has no `type` and no `merges` + `vocab`; "
                "not a BPE tokenizer, and mixinfer needs an ordered BPE merge list"
            )
    elif mtype != "BPE":
        raise TokenizerError(
            f"{where}: the model is {mtype!r}, not BPE; mixinfer needs a BPE tokenizer's ordered "
            "merge list (WordPiece, Unigram and WordLevel tokenizers have none)"
        )
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        value = model.get(key)
        if value is not None and not isinstance(value, str):
            raise TokenizerError(f"{where}: `model.{key}` must be a string or null")
        if value:
            raise TokenizerError(
                f"{where}: `model.{key}` is {value!r}; BPE with word-boundary markers is not "
                "supported (only plain byte-level and SentencePiece-style merge lists are)"
            )
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{where}: `model.vocab` must be an object mapping tokens to ids")
    merges = parse_json_merges(model.get("merges"), where)

    notes: list[str] = []
    byte_level = _detect_byte_level(data, model, vocab, merges, notes)
    if byte_level:
        pairs = merges_to_bytes(merges, where, byte_level_token)
        alphabet: frozenset[bytes] = frozenset()
        known = {bytes([b]) for b in range(256)}
    else:
        pairs = merges_to_bytes(merges, where, char_level_token)
        # A lone surrogate (valid JSON, invalid text) can never occur in text: leave it out.
        alphabet = frozenset(
            k.encode("utf-8") for k in vocab if len(k) == 1 and not 0xD800 <= ord(k) <= 0xDFFF
        )
        fallback = {bytes([int(m.group(1), 16)]) for k in vocab if (m := BYTE_FALLBACK.match(k)) is not None}
        known = set(alphabet) | fallback
    check_in_vocab(merges, vocab, where)
    check_buildable(pairs, known, where, merges, strict_order=byte_level, notes=notes)
    note_duplicates(pairs, notes)

    own = from_tokenizer_json(data, source=where)
    pre = choose_for_json(data, own, byte_level, vocab, pairs, notes)
    token_ids, reserved = merge_token_ids(merges, pairs, vocab, sentencepiece=not byte_level)
    return BPETokenizer(
        source=source,
        merges=pairs,
        byte_level=byte_level,
        pretokenizer=pre,
        alphabet=alphabet,
        notes=notes,
        format="tokenizer.json",
        token_ids=token_ids,
        reserved=reserved,
    )


def merge_token_ids(
    merges: list[tuple[str, str]],
    pairs: list[tuple[bytes, bytes]],
    vocab: dict[str, Any],
    *,
    sentencepiece: bool,
) -> tuple[dict[bytes, int] | None, frozenset[bytes]]:
    """Vocabulary ids of the merges' tokens (as bytes), and the reserved merge results.

    Returns ``(None, frozenset())`` when an id is not an integer. For SentencePiece conversions
    with byte fallback, pieces numbered before the first ``<0xNN>`` token are user-defined (the
    learned pieces follow the byte pieces), so the merges producing them are reserved.
    """
    ids: dict[bytes, int] = {}
    for (a, b), (ba, bb) in zip(merges, pairs, strict=True):
        for text, raw in ((a, ba), (b, bb), (a + b, ba + bb)):
            tid = vocab.get(text)
            if not isinstance(tid, int) or isinstance(tid, bool):
                return None, frozenset()
            ids.setdefault(raw, tid)
    reserved: frozenset[bytes] = frozenset()
    if sentencepiece:
        fallback = [
            i
            for k, i in vocab.items()
            if isinstance(i, int) and isinstance(k, str) and BYTE_FALLBACK.match(k)
        ]
        if fallback:
            start = min(fallback)
            reserved = frozenset(ba + bb for ba, bb in pairs if ids[ba + bb] < start)
    return ids, reserved


def parse_json_merges(merges: Any, where: str) -> list[tuple[str, str]]:
    """``model.merges`` as text pairs (``"a b"`` or ``["a", "b"]`` entries)."""
    if not isinstance(merges, list):
        raise TokenizerError(f"{where}: `model.merges` must be a list of merges")
    if not merges:
        raise TokenizerError(f"{where}: the merge list `model.merges` is empty; nothing to infer from")
    out: list[tuple[str, str]] = []
    for i, m in enumerate(merges):
        if isinstance(m, str):
            parts = m.split(" ")
        elif isinstance(m, list):
            parts = m
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise TokenizerError(
                f'{where}: merge #{i} ({describe(m)}) is not a pair of tokens; expected "a b" or ["a", "b"]'
            )
        out.append((parts[0], parts[1]))
    return out


def _detect_byte_level(
    data: dict[str, Any],
    model: dict[str, Any],
    vocab: dict[str, Any],
    merges: list[tuple[str, str]],
    notes: list[str],
) -> bool:
    if has_byte_level(data.get("pre_tokenizer")) or has_byte_level(data.get("decoder")):
        return True
    sentencepiece = (
        model.get("byte_fallback") is True
        or any(BYTE_FALLBACK.match(k) for k in vocab if isinstance(k, str) and k.startswith("<0x"))
        or any("▁" in a or "▁" in b for a, b in merges)
    )
    if sentencepiece:
        return False
    if all(ch in BYTE_DECODER for a, b in merges for ch in a + b):
        notes.append(
            "no ByteLevel step in the file, but every merge is written in the GPT-2 byte "
            "alphabet: reading the merges as byte-level"
        )
        return True
    return False
