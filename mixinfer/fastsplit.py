r"""Pretokenizing with Python's regex engines where they provably cut exactly as ``tokenizers`` does.

``tokenizers`` hands every pretoken back to Python as a tuple with its offsets, and that
per-pretoken cost bounds word counting at about 5 MB/s. For the pre-tokenizers that are one
known regex (GPT-2's ``ByteLevel``, the paper's ``Digits`` + ``ByteLevel``, the tiktoken and
Llama 3 ``Split`` patterns, our SentencePiece split), ``findall`` over a whole document gives the
same pieces two to four times faster. The patterns use only constructs that Oniguruma (which
``tokenizers`` compiles them with), the ``regex`` module and, from Python 3.11, the stdlib ``re``
define alike -- ordered alternation, greedy, possessive and atomic repetition, lookahead -- over a
handful of character classes. ``re`` is the faster engine and is used where the classes can be
written for it (``\p{L}`` and ``\p{N}`` only), ``regex`` otherwise; pure-ASCII documents always
go to ``re`` with ASCII classes.

What the engines do *not* share is their Unicode tables: they come from different Unicode
versions (a recently assigned letter may be ``\p{L}`` in one and unassigned in the other), and
``re``'s classes are only approximations of the properties (``²`` is a number to Oniguruma, a
word character that is not a decimal digit to ``re``). :meth:`FastSplit.disagreements`
therefore asks ``tokenizers`` itself how it classifies every distinct character of the text,
and documents holding a character on which the engines disagree are left to ``tokenizers``.
What remains is exact, which the tests check against ``tokenizers`` on random strings and on
every bundled sample category.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mixinfer import pretokenizers
from mixinfer.pretokenizers import Pretokenizer

# The classes the supported patterns are built from. ``(?i:...)`` covers the letters of the
# case-insensitive contractions, to which other characters may fold (``ſ`` folds to ``s``).
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


# ``Split`` regexes (as stored in tokenizer files) that Oniguruma and Python's engines read alike:
# the onig-compatible forms, with possessive intervals written as atomic groups (the others have
# none). A raw tiktoken pattern with ``{1,3}+`` is *not* one: Oniguruma reads it as a repetition.
_BYTE_LEVEL_SPLITS = frozenset(
    pretokenizers.onig_compatible(pattern)
    for pattern in (
        pretokenizers.GPT2_PATTERN,
        pretokenizers.CL100K_PATTERN,
        pretokenizers.O200K_PATTERN,
        pretokenizers.LLAMA3_PATTERN,
        pretokenizers.read_pattern("qwen"),
        pretokenizers.read_pattern("tekken"),
    )
)


def _byte_level_plain(node: Any, *, use_regex: bool) -> bool:
    """A ``ByteLevel`` step without a prefix space, with or without its own regex."""
    return (
        isinstance(node, dict)
        and node.get("type") == "ByteLevel"
        and not node.get("add_prefix_space", True)
        and bool(node.get("use_regex", True)) == use_regex
    )


def _pattern_for(spec: Any, byte_level: bool) -> str | None:
    """The pattern (``regex`` syntax) equivalent to a pre-tokenizer (JSON), or ``None``."""
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
            if _isolated_split(split) and split["pattern"]["Regex"] in _BYTE_LEVEL_SPLITS:
                return str(split["pattern"]["Regex"])
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


# How each engine writes the classes the checked characters are compared on: (``tokenizers``
# (Oniguruma) class, the same class for the engine). ``re`` has no ``\p{..}``: a letter is a word
# character that is neither a decimal digit nor ``_``, a number a decimal digit; where that is
# not what Oniguruma says (``²`` is a number to Oniguruma, a "letter" to this definition), the
# check finds it.
_REGEX_CHECKS = tuple((cls, cls) for cls in _CLASSES)
_RE_CHECKS = (
    (r"\p{L}", r"[^\W\d_]"),
    (r"\p{N}", r"\d"),
    (r"\s", r"\s"),
    (r"(?i:[sdmtlvre])", r"(?i:[sdmtlvre])"),
)

# ``\p{..}`` restricted to ASCII, for the ``re.ASCII`` variant used on pure-ASCII documents.
_ASCII_CLASSES = {"L": "A-Za-z", "N": "0-9", "Lu": "A-Z", "Ll": "a-z", "Lt": "", "Lm": "", "Lo": "", "M": ""}
_PROPERTY = re.compile(r"\\p\{(\w+)\}")
_CLASS = re.compile(r"\[((?:\\.|[^\]\\])*)\]")


def _translate(source: str, *, ascii: bool) -> str | None:
    r"""``source`` rewritten for the stdlib ``re`` module, or ``None`` where it cannot be.

    ``ascii``: for ``re.ASCII`` on pure-ASCII text, where every property becomes its ASCII
    members. Otherwise for Unicode text: ``\p{L}`` and ``\p{N}`` become ``[^\W\d_]`` and ``\d``,
    in a class ``\p{N}`` becomes ``\d``, and a negated class holding both becomes ``\w`` in the
    class, with ``_`` added back; any other property cannot be written. ``None`` also when ``re``
    cannot compile the result (before Python 3.11 it has neither possessive quantifiers nor
    atomic groups).
    """
    out: list[str] = []
    i = 0
    while i < len(source):
        bracket = _CLASS.match(source, i) if source[i] == "[" else None
        prop = _PROPERTY.match(source, i) if source[i] == "\\" else None
        if bracket is not None:
            body = bracket.group(1)
            names = _PROPERTY.findall(body)
            if not names:
                out.append(bracket.group(0))
            elif ascii:
                members = _PROPERTY.sub(lambda m: _ASCII_CLASSES.get(m.group(1), "\0"), body)
                if "\0" in members:
                    return None
                if members in ("", "^"):  # no ASCII members: nothing, or anything
                    out.append("(?!)" if members == "" else r"[\s\S]")
                else:
                    out.append(f"[{members}]")
            elif body.startswith("^") and sorted(names) == ["L", "N"]:
                rest = _PROPERTY.sub("", body[1:])
                out.append(rf"(?:[^{rest}\w]|_)")
            elif names == ["N"]:
                out.append("[" + body.replace(r"\p{N}", r"\d") + "]")
            else:
                return None
            i = bracket.end()
        elif prop is not None:
            name = prop.group(1)
            if ascii:
                ascii_members = _ASCII_CLASSES.get(name)
                if ascii_members is None:
                    return None
                out.append(f"[{ascii_members}]" if ascii_members else "(?!)")
            elif name in ("L", "N"):
                out.append(r"[^\W\d_]" if name == "L" else r"\d")
            else:
                return None
            i = prop.end()
        elif source[i] == "\\":
            out.append(source[i : i + 2])
            i += 2
        else:
            out.append(source[i])
            i += 1
    translated = "".join(out)
    try:
        re.compile(translated, re.ASCII if ascii else 0)
    except re.error:
        return None
    return translated


def ascii_pattern(source: str) -> str | None:
    """``source`` for ``re`` with ``re.ASCII``, equivalent on pure-ASCII text (or ``None``).

    With ``re.ASCII``, ``\\s`` and case-insensitive matching are ASCII-only, as in Oniguruma on
    ASCII text; the Unicode properties become their ASCII members.
    """
    return _translate(source, ascii=True)


def unicode_pattern(source: str) -> str | None:
    """``source`` for ``re`` on any text, if its properties are only ``\\p{L}`` and ``\\p{N}``."""
    return _translate(source, ascii=False)


@dataclass
class FastSplit:
    """A pre-tokenizer as one compiled pattern, and the characters it may not be trusted on.

    Attributes:
        pattern: the pattern, compiled by ``engine``; ``findall`` over a document gives its
            pretokens in order, and every character of the document belongs to exactly one.
        ascii: the same for ``re`` with ``re.ASCII``, valid on pure-ASCII text only.
        engine: the module that compiled ``pattern``: ``re`` (faster) where the pattern can be
            written for it, else ``regex``.
        checks: pairs of (``tokenizers`` class, the same class for ``engine``) to compare.
        number: ``engine``'s class for Rust's ``char::is_numeric`` when the pre-tokenizer starts
            with a ``Digits`` step (which classifies with it), else ``None``.
    """

    pattern: Any
    ascii: re.Pattern[str] | None
    engine: Any
    checks: tuple[tuple[str, str], ...]
    number: str | None
    _checked: set[str] = field(default_factory=set, init=False)
    _dubious: set[str] = field(default_factory=set, init=False)

    def findall(self, text: str) -> list[str]:
        """The pretokens of ``text`` (already normalised)."""
        if self.ascii is not None and text.isascii():
            return self.ascii.findall(text)
        result: list[str] = self.pattern.findall(text)
        return result

    def disagreements(self, chars: Iterable[str]) -> set[str]:
        """The characters, among ``chars``, that ``engine`` and ``tokenizers`` classify differently.

        Each character is checked once; the answer covers every character seen so far.
        """
        new = set(chars) - self._checked
        if new:
            self._dubious |= self._classify_differently(sorted(new))
            self._checked |= new
        return self._dubious

    def _classify_differently(self, chars: list[str]) -> set[str]:
        from tokenizers import Regex, pre_tokenizers

        # Surrogates cannot cross into Rust; they never come out of UTF-8 decoding anyway.
        dubious = {c for c in chars if 0xD800 <= ord(c) < 0xE000}
        chars = [c for c in chars if c not in dubious]
        if not chars:
            return dubious
        text = "".join(chars)
        everything = set(chars)
        for theirs_cls, ours_cls in self.checks:
            # "removed": what survives is exactly the characters outside the class.
            kept = pre_tokenizers.Split(Regex(theirs_cls), behavior="removed").pre_tokenize_str(text)
            theirs = everything - set("".join(piece for piece, _ in kept))
            ours = set(self.engine.findall(ours_cls, text))
            dubious |= theirs ^ ours
        if self.number is not None:
            # Each character followed by "a": a digit comes out as a piece of its own, anything
            # else is glued to its neighbouring "a"s.
            probe = "".join(c + "a" for c in chars)
            pieces = pre_tokenizers.Digits(individual_digits=True).pre_tokenize_str(probe)
            theirs = {piece for piece, _ in pieces if len(piece) == 1 and piece != "a"}
            ours = {c for c in chars if self.engine.match(self.number, c)}
            dubious |= theirs ^ ours
        return dubious


def fast_split(pretok: Pretokenizer, *, prefer_re: bool = True) -> FastSplit | None:
    """A pattern equivalent to ``pretok``'s pre-tokenizer, or ``None`` when there is none.

    The pattern is compiled by ``re`` when it can be written for it and ``prefer_re`` is set,
    else by ``regex``. The normalizer is not replaced: it still runs in ``tokenizers``.
    """
    if pretok.pre_tokenizer_json is None:
        return None
    spec = json.loads(pretok.pre_tokenizer_json)
    source = _pattern_for(spec, pretok.byte_level)
    if source is None:
        return None
    digits = source in (_DIGITS_BYTE_LEVEL, _DIGIT_EACH_BYTE_LEVEL)
    plain = ascii_pattern(source)
    ascii = None if plain is None else re.compile(plain, re.ASCII)
    unicode = unicode_pattern(source) if prefer_re else None
    if unicode is not None:
        return FastSplit(re.compile(unicode), ascii, re, _RE_CHECKS, r"\d" if digits else None)
    import regex

    number = r"\p{N}" if digits else None
    return FastSplit(regex.compile(source), ascii, regex, _REGEX_CHECKS, number)
