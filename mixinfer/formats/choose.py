"""Which pretokenizer a tokenizer file gets (the rule is in :mod:`mixinfer.tokenizer`'s docstring)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from mixinfer.formats.common import describe
from mixinfer.formats.identify import identify_from_merges, identify_pattern
from mixinfer.pretokenizers import (
    PRESETS,
    Pretokenizer,
    build,
    canonical_json,
    pretokenize,
    regex_pretokenizer,
)

_PROBE = "Hello world, this is 42 tests."  # used to see whether a file's pipeline splits words


def choose_for_json(
    data: dict[str, Any],
    own: Pretokenizer | None,
    byte_level: bool,
    vocab: dict[str, Any],
    pairs: list[tuple[bytes, bytes]],
    notes: list[str],
) -> Pretokenizer:
    """The pretokenizer of a ``tokenizer.json``: its own pipeline when that splits words, else a preset."""
    if own is not None:
        pieces = _probe(own)
        if byte_level or pieces is None or len(pieces) > 1:
            notes.append(
                "pretokenizer: the tokenizer file's own normalizer and pre_tokenizer "
                f"(normalizer: {describe(data.get('normalizer'))})"
            )
            if pieces is not None and len(pieces) <= 1:
                notes.append(
                    "warning: the file's pre_tokenizer does not split text into words; "
                    "counting will treat each document as one word"
                )
            return own
        why = "the file's pre_tokenizer never splits text into words (SentencePiece conversion)"
    else:
        why = "the file has no pre_tokenizer"
    if byte_level:
        found = identify_from_merges(pairs)
        if found is not None:
            name, evidence = found
            kind = f"the vocabulary is byte-level and its merges show the `{name}` split ({evidence})"
        else:
            name = "gpt2"
            kind = "the vocabulary is byte-level"
    else:
        name = sentencepiece_preset(data, own, vocab)
        kind = "the vocabulary is SentencePiece-style (character-level, ▁ for spaces)"
        if name == "gemma":
            kind += " and the file's pipeline adds no leading ▁ (as Gemma's)"
    chosen = PRESETS[name]
    reason = f"{chosen.reason}; chosen because {why} and {kind}"
    file_norm = data.get("normalizer")
    if file_norm is not None and canonical_json(file_norm) == chosen.normalizer_json:
        norm_note = "its normalizer is the same as the file's"
    else:
        norm_note = f"the file's normalizer ({describe(file_norm)}) is not applied"
    notes.append(
        f"pretokenizer: {why} and {kind}: using preset `{name}`; the preset replaces the file's "
        f"whole pipeline ({norm_note}); override with --pretokenizer NAME"
    )
    return replace(chosen, reason=reason)


def _probe(p: Pretokenizer) -> list[str] | None:
    """The pretokens of a fixed sentence, or ``None`` when ``tokenizers`` cannot run it."""
    try:
        return pretokenize(build(p), _PROBE)
    except BaseException as exc:  # a Rust panic arrives as a BaseException subclass
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        return None


def sentencepiece_preset(data: dict[str, Any], own: Pretokenizer | None, vocab: dict[str, Any]) -> str:
    """``gemma`` if the file turns spaces into ``▁`` without a leading ``▁``; else llama/mistral."""
    normalizer = data.get("normalizer")
    probe_doc = Pretokenizer(
        "probe",
        json.dumps(normalizer) if isinstance(normalizer, dict) else None,
        own.pre_tokenizer_json if own is not None else None,
        byte_level=False,
    )
    pieces = _probe(probe_doc)
    if pieces and "▁" in "".join(pieces) and not pieces[0].startswith("▁"):
        return "gemma"
    return "mistral" if "[INST]" in vocab else "llama"


def for_ranks(
    pairs: list[tuple[bytes, bytes]], pattern: str | None, what: str, notes: list[str]
) -> Pretokenizer:
    """The pretokenizer of a byte-level rank file (tiktoken, Tekken), recorded in ``notes``.

    A split regex the file (or registry) carries is used: as the preset of the same regex when
    there is one, else as it is. Without a regex, the split is identified from the merges
    (:func:`identify_from_merges`); failing that, the ``default`` preset.
    """
    if pattern is not None:
        known = identify_pattern(pattern)
        if known is not None:
            chosen = PRESETS[known]
            why = f"{what} carries a split regex, the same as preset `{known}`'s"
            notes.append(f"pretokenizer: {why}: using it (then ByteLevel)")
            return replace(chosen, reason=f"{chosen.reason}; {why}")
        notes.append(f"pretokenizer: {what}'s own split regex (then ByteLevel)")
        return regex_pretokenizer(
            pattern, name="tokenizer", reason=f"{what}'s own split regex, then ByteLevel"
        )
    found = identify_from_merges(pairs)
    if found is not None:
        name, evidence = found
        why = f"{what} carries no split regex and its merges show the `{name}` split ({evidence})"
    else:
        name = "default"
        why = f"{what} carries no split regex and its merges do not identify a known one"
    chosen = PRESETS[name]
    notes.append(f"pretokenizer: {why}: using preset `{name}`; override with --pretokenizer NAME")
    return replace(chosen, reason=f"{chosen.reason}; chosen because {why}")
