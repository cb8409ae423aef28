"""Identifying a byte-level tokenizer's split regex: from the regex a file carries, or its merges.

**From a regex** (Tekken's ``config.pattern``, tiktoken's ``pat_str``): the regex is compared,
after removing what does not change the split (possessive quantifiers ``?+ ++ *+``, which match the
same text here, and the order-free spelling of the contraction group), with the pattern of every
preset that splits by a regex; an equal one names the preset.

**From the merges** (rank files carry no regex): each preset's regex leaves marks on the tokens
the merges build, because no token crosses a pretoken boundary:

* a space followed by digits (``" 2019"``), or a digit run of 4 or more, only the GPT-2 regex
  (``gpt2``, `` ?\\p{N}+``) allows;
* no token of two digits at all: digits are split one by one (``qwen``, ``tekken``);
* tokens of at most 3 digits: ``\\p{N}{1,3}`` (``cl100k`` / Llama 3, ``o200k`` / Llama 4);
* no token with a lower-case letter followed by an upper-case one (``aB``) among thousands of
  letter tokens: the o200k-style word rule, which ends a word before an upper-case letter
  (``o200k`` / Llama 4 with 1-3 digits, ``tekken`` with single digits); otherwise the cl100k-style
  ``\\p{L}+`` (``cl100k`` / Llama 3, ``qwen``).

The merges are only read that way when there are at least :data:`MIN_MERGES` of them (small
lists do not show enough digits and letters); otherwise, or when the marks disagree, nothing is
identified and the caller says so.
"""

from __future__ import annotations

import regex

from mixinfer.pretokenizers import read_pattern

MIN_MERGES = 10_000
"""Fewest merges read for identification."""

MIN_LETTER_TOKENS = 2_000
"""Fewest tokens of two or more letters needed to conclude that no ``aB`` token means case split."""

# Presets whose split is a regex, with the data file of the regex.
REGEX_PRESETS = {
    "gpt2": "gpt2",
    "cl100k": "cl100k",
    "o200k": "o200k",
    "llama3": "llama3",
    "qwen": "qwen",
    "tekken": "tekken",
}

_POSSESSIVE = regex.compile(r"(?<!\\)([?+*}])\+")
_CONTRACTIONS = regex.compile(r"\(\?i:(?:'s\|'t\|'re\|'ve\|'m\|'ll\|'d|'\[sdmt\]\|ll\|ve\|re)\)")
_DIGITS = regex.compile(rb"[0-9]+")
_LOWER_UPPER = regex.compile(r"\p{Ll}\p{Lu}")
_LETTERS = regex.compile(r"\p{L}\p{L}")


def _canonical(pattern: str) -> str:
    """The regex with possessive quantifiers and the contraction group's spelling normalised."""
    out = _POSSESSIVE.sub(r"\1", pattern)
    out = out.replace("'(?i:[sdmt]|ll|ve|re)", "(?i:'s|'t|'re|'ve|'m|'ll|'d)")
    return _CONTRACTIONS.sub("(?i:CONTRACTION)", out)


def identify_pattern(pattern: str) -> str | None:
    """The preset whose regex equals ``pattern`` (up to spelling that splits the same), or ``None``."""
    wanted = _canonical(pattern)
    for name, data in REGEX_PRESETS.items():
        try:
            if _canonical(read_pattern(data)) == wanted:
                return name
        except (FileNotFoundError, RuntimeError):  # a preset whose data file is not installed
            continue
    return None


def identify_from_merges(merges: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """``(preset, evidence)`` for the split regex the merges' tokens show, or ``None`` (see module)."""
    if len(merges) < MIN_MERGES:
        return None
    space_digits = 0
    longest = 0
    lower_upper = 0
    letter_tokens = 0
    for a, b in merges:
        token = a + b
        for run in _DIGITS.findall(token):
            longest = max(longest, len(run))
        if token[:1] == b" " and token[1:].isdigit():
            space_digits += 1
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if _LETTERS.search(text):
            letter_tokens += 1
            if _LOWER_UPPER.search(text):
                lower_upper += 1
    if space_digits or longest > 3:
        if not space_digits:
            return None  # long digit runs but never after a space: no preset of ours
        return "gpt2", f"{space_digits} tokens are a space and digits, which only the GPT-2 regex allows"
    if letter_tokens < MIN_LETTER_TOKENS:
        return None
    case_split = lower_upper == 0
    if longest <= 1:
        name = "tekken" if case_split else "qwen"
        digits = "no token joins two digits (digits are split one by one)"
    else:
        name = "o200k" if case_split else "cl100k"
        digits = "digit tokens are at most 3 digits long"
    letters = (
        f"none of {letter_tokens} letter tokens has a lower-case letter before an upper-case one"
        if case_split
        else f"{lower_upper} tokens have a lower-case letter before an upper-case one"
    )
    return name, f"{digits}; {letters}"
