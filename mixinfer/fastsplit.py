"""Pretokenizing with the ``regex`` module where it provably cuts exactly as ``tokenizers`` does.

``tokenizers`` hands every pretoken back to Python as a tuple with its offsets, and that
per-pretoken cost bounds word counting at about 5 MB/s. For the pre-tokenizers that are one
known regex (GPT-2's ``ByteLevel``, the paper's ``Digits`` + ``ByteLevel``, the tiktoken and
Llama 3 ``Split`` patterns, our SentencePiece split), ``regex.findall`` over a whole document
gives the same pieces at two to three times the speed: the patterns use only constructs that
Oniguruma (which ``tokenizers`` compiles them with) and ``regex`` define alike -- ordered
alternation, greedy, possessive and atomic repetition, lookahead -- over a handful of character
classes.

What the two engines do *not* share is their Unicode tables: they are built from different
Unicode versions, so a recently assigned letter may be ``\\p{L}`` in one and unassigned in the
other. :meth:`FastSplit.disagreements` therefore asks ``tokenizers`` itself how it classifies
every distinct character of the text, and documents holding a character on which the engines
disagree are left to ``tokenizers``. What remains is exact, which the tests check against
``tokenizers`` on random strings and on every bundled sample category.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mixinfer import pretokenizers
from mixinfer.pretokenizers import Pretokenizer

# The classes the supported patterns are built from. ``(?i:...)`` covers the letters of the
# case-insensitive contractions (``ſ`` folds to ``s``, the Kelvin sign to ``k``).
_CLASSES = (
    r"\p{L}",
    r"\p{N}",
    r"\s",
    r"\p{M}",
    r"\p{Lu}",
    r"\p{Ll}",
    r"\p{Lt}",
    r"\p{Lm}",
    r"\p{Lo}",
    r"(?i:[sdmtlvre])",
)

# GPT-2's regex with the letter alternative first: the contractions start with an apostrophe,
# which ` ?\p{L}+` never matches, so at any position the same alternative wins and the pieces
# are the same; letters are the commonest pretoken and are tried first.
_BYTE_LEVEL = r""" ?\p{L}+|'s|'t|'re|'ve|'m|'ll|'d| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# ``Digits`` then GPT-2's regex. Digits cuts the text into digit runs and the stretches between
# them, and the regex runs inside each stretch, so (1) a digit run is one piece, (2) no
# alternative may reach into a digit run (the ` ?\p{N}+` alternative is gone, the others
# exclude digits), and (3) a whitespace run just before a digit run ends its stretch, where
# `(?!\S)` holds: the lookahead also accepts a digit.
_DIGITS_BYTE_LEVEL = r"""\p{N}+| ?\p{L}+|'s|'t|'re|'ve|'m|'ll|'d| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""
_DIGIT_EACH_BYTE_LEVEL = (
    r"""\p{N}| ?\p{L}+|'s|'t|'re|'ve|'m|'ll|'d| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""
)


def _known_split_patterns() -> dict[str, str]:
    """``Split`` regexes as stored in tokenizer files -> the same regex for the ``regex`` module.

    Only patterns that Oniguruma and ``regex`` read alike are listed: the onig-compatible forms
    (possessive intervals written as atomic groups) and patterns without possessive intervals.
    A raw tiktoken pattern with ``{1,3}+`` is *not* listed: Oniguruma reads it as a repetition.
    """
    known: dict[str, str] = {}
    for pattern in (
        pretokenizers.GPT2_PATTERN,
        pretokenizers.CL100K_PATTERN,
        pretokenizers.O200K_PATTERN,
        pretokenizers.LLAMA3_PATTERN,
    ):
        compatible = pretokenizers.onig_compatible(pattern)
        known[compatible] = compatible
    return known


_BYTE_LEVEL_SPLITS = _known_split_patterns()


def _byte_level_plain(node: Any, *, use_regex: bool) -> bool:
    """A ``ByteLevel`` step without a prefix space, with or without its own regex."""
    return (
        isinstance(node, dict)
        and node.get("type") == "ByteLevel"
        and not node.get("add_prefix_space", True)
        and bool(node.get("use_regex", True)) == use_regex
    )


def _pattern_for(spec: Any, byte_level: bool) -> str | None:
    """The ``regex`` pattern equivalent to a pre-tokenizer (JSON), or ``None``."""
    if not isinstance(spec, dict):
        return None
    nodes = spec.get("pretokenizers") if spec.get("type") == "Sequence" else [spec]
    if not isinstance(nodes, list):
        return None
    if byte_level:
        if len(nodes) == 1 and _byte_level_plain(nodes[0], use_regex=True):
            return _BYTE_LEVEL
        if len(nodes) == 2 and _byte_level_plain(nodes[1], use_regex=True):
            first = nodes[0]
            if isinstance(first, dict) and first.get("type") == "Digits":
                return _DIGIT_EACH_BYTE_LEVEL if first.get("individual_digits") else _DIGITS_BYTE_LEVEL
            return None
        if len(nodes) == 2 and _byte_level_plain(nodes[1], use_regex=False):
            split = nodes[0]
            if _isolated_split(split):
                return _BYTE_LEVEL_SPLITS.get(split["pattern"]["Regex"])
        return None
    spm = pretokenizers.SENTENCEPIECE_PATTERN
    if len(nodes) == 1 and _isolated_split(nodes[0]) and nodes[0]["pattern"]["Regex"] == spm:
        return spm
    return None


def _isolated_split(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.get("type") == "Split"
        and isinstance(node.get("pattern"), dict)
        and isinstance(node["pattern"].get("Regex"), str)
        and node.get("behavior") == "Isolated"
        and not node.get("invert")
    )


# ``\p{..}`` restricted to ASCII, for the stdlib ``re`` variant used on pure-ASCII documents.
_ASCII_CLASSES = {"L": "A-Za-z", "N": "0-9", "Lu": "A-Z", "Ll": "a-z", "Lt": "", "Lm": "", "Lo": "", "M": ""}
_PROPERTY = re.compile(r"\\p\{(\w+)\}")


def ascii_pattern(source: str) -> str | None:
    """``source`` for the stdlib ``re`` module, equivalent on pure-ASCII text.

    With ``re.ASCII``, ``\\s`` and case-insensitive matching are ASCII-only, as in Oniguruma on
    ASCII text; the Unicode properties become their ASCII members. ``None`` if ``source`` uses a
    property not listed or ``re`` cannot compile the result (before Python 3.11 it has neither
    possessive quantifiers nor atomic groups).
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            prop = _PROPERTY.match(source, i)
            if prop is None:
                out.append(source[i : i + 2])
                i += 2
                continue
            members = _ASCII_CLASSES.get(prop.group(1))
            if members is None:
                return None
            out.append(members if in_class else f"[{members}]" if members else "(?!)")
            i = prop.end()
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    translated = "".join(out)
    try:
        re.compile(translated, re.ASCII)
    except re.error:
        return None
    return translated


@dataclass
class FastSplit:
    """A pre-tokenizer as one ``regex`` pattern, and the characters it may not be trusted on.

    Attributes:
        pattern: the ``regex`` pattern; ``findall`` over a document gives its pretokens in
            order, and every character of the document belongs to exactly one of them.
        ascii: the same for the stdlib ``re`` module, valid on pure-ASCII text only.
        digits: the pre-tokenizer starts with a ``Digits`` step, which classifies with Rust's
            ``char::is_numeric`` rather than the regex's ``\\p{N}``.
    """

    pattern: Any
    ascii: re.Pattern[str] | None
    digits: bool
    _checked: set[str]
    _dubious: set[str]

    def findall(self, text: str) -> list[str]:
        """The pretokens of ``text`` (already normalised)."""
        if self.ascii is not None and text.isascii():
            # The stdlib engine is about twice as fast, and ASCII is where the text mostly is.
            return self.ascii.findall(text)
        result: list[str] = self.pattern.findall(text)
        return result

    def disagreements(self, chars: Iterable[str]) -> set[str]:
        """The characters, among ``chars``, that ``regex`` and ``tokenizers`` classify differently.

        Each character is checked once; the answer covers every character seen so far.
        """
        new = set(chars) - self._checked
        if new:
            self._dubious |= _classify_differently(sorted(new), digits=self.digits)
            self._checked |= new
        return self._dubious


def _classify_differently(chars: list[str], *, digits: bool) -> set[str]:
    import regex
    from tokenizers import Regex, pre_tokenizers

    # Surrogates cannot cross into Rust; they never come out of UTF-8 decoding anyway.
    dubious = {c for c in chars if 0xD800 <= ord(c) < 0xE000}
    chars = [c for c in chars if c not in dubious]
    if not chars:
        return dubious
    text = "".join(chars)
    everything = set(chars)
    for cls in _CLASSES:
        # "removed": what survives is exactly the characters outside the class.
        kept = pre_tokenizers.Split(Regex(cls), behavior="removed").pre_tokenize_str(text)
        theirs = everything - set("".join(piece for piece, _ in kept))
        ours = set(regex.findall(cls, text))
        dubious |= theirs ^ ours
    if digits:
        # Each character followed by "a": a digit comes out as a piece of its own, anything
        # else is glued to its neighbouring "a"s.
        probe = "".join(c + "a" for c in chars)
        pieces = pre_tokenizers.Digits(individual_digits=True).pre_tokenize_str(probe)
        theirs = {piece for piece, _ in pieces if len(piece) == 1 and piece != "a"}
        ours = {c for c in chars if regex.match(r"\p{N}", c)}
        dubious |= theirs ^ ours
    return dubious


def fast_split(pretok: Pretokenizer) -> FastSplit | None:
    """The ``regex`` equivalent of ``pretok``'s pre-tokenizer, or ``None`` when there is none.

    The normalizer is not replaced: it still runs in ``tokenizers``.
    """
    if pretok.pre_tokenizer_json is None:
        return None
    spec = json.loads(pretok.pre_tokenizer_json)
    source = _pattern_for(spec, pretok.byte_level)
    if source is None:
        return None
    import regex

    digits = source in (_DIGITS_BYTE_LEVEL, _DIGIT_EACH_BYTE_LEVEL)
    plain = ascii_pattern(source)
    return FastSplit(
        regex.compile(source), None if plain is None else re.compile(plain, re.ASCII), digits, set(), set()
    )
