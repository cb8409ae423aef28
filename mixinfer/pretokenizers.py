"""Pretokenizer specifications: the tokenizer's own normalizer/pre-tokenizer, or a named preset.

A :class:`Pretokenizer` is a plain, hashable description (JSON of the HF ``tokenizers``
components) so that it can be fingerprinted for the cache and shipped to worker processes.
:func:`build` turns it back into live ``tokenizers`` objects, always by deserialising the JSON
through ``tokenizers`` itself, so the pretokens are exactly those the library produces.

Presets (see :data:`PRESETS`; ``--pretokenizer NAME`` selects one). Their table (names, regex
patterns, descriptions) is package data, ``mixinfer/data/presets.csv`` and ``regex_<name>.txt``;
the code here turns each row into ``tokenizers`` objects:

``default``
    The controlled setting of Hayase et al. (2024): no normalizer;
    ``Digits(individual_digits=False)`` then ``ByteLevel(add_prefix_space=False, use_regex=True)``
    (the GPT-2 regex). The test and demo tokenizers are trained with exactly this pipeline.
``gpt2``
    ``ByteLevel(add_prefix_space=False, use_regex=True)``: GPT-2, GPT-3, RoBERTa and other
    ``vocab.json`` + ``merges.txt`` tokenizers.
``cl100k``, ``o200k``
    tiktoken's ``pat_str`` for ``cl100k_base`` (GPT-3.5/4) and ``o200k_base`` (GPT-4o), applied
    with ``Split(..., behavior="isolated")`` then ``ByteLevel(use_regex=False)``, as HF's tiktoken
    converter does.
``llama3``
    The cl100k-style regex of Llama 3's ``tokenizer.json`` (``\\p{N}{1,3}``, no possessive
    quantifiers), then ``ByteLevel(use_regex=False)``.
``qwen``
    Qwen's tiktoken ``pat_str``: cl100k's rule with single digits (``\\p{N}``), then
    ``ByteLevel(use_regex=False)``.
``tekken``
    Mistral's Tekken regex (``config.pattern`` of Mistral NeMo's ``tekken.json``): o200k's word rule
    without the contraction suffixes, single digits, then ``ByteLevel(use_regex=False)``. (Llama 4
    uses o200k's regex exactly, so it needs no preset of its own.)
``llama``, ``mistral``
    SentencePiece BPE with ``add_dummy_prefix``, ``split_by_whitespace``, ``split_digits``,
    ``split_by_unicode_script``/``split_by_number`` and ``allow_whitespace_only_pieces``, as used
    by Llama 1/2 and Mistral 7B. Normalizer: ``Prepend("▁")`` + ``Replace(" ", "▁")`` (the files'
    own normalizer). Pre-tokenizer: ``Split`` with :data:`SENTENCEPIECE_PATTERN`, which cuts the
    ``▁``-text where SentencePiece's trainer never lets a piece cross: each digit alone; a letter
    run, or a run of other symbols, with at most one leading ``▁``; a run of several ``▁`` alone
    (leaving the last ``▁`` to the word that follows). This is deliberately not
    ``Metaspace(split=True)``: that would make the whitespace-only pieces (``▁▁``, ``▁▁▁▁``, ...
    present in both vocabularies) impossible to form, and would let letters and punctuation pair
    up, which neither vocabulary ever does.
``gemma``
    Gemma's SentencePiece settings as converted by ``transformers`` (``GemmaConverter``):
    normalizer ``Replace(" ", "▁")`` with *no* dummy prefix. The converter's own pre-tokenizer,
    ``Split(" ", "merged_with_previous")``, is a no-op once spaces became ``▁``, so we use the same
    SentencePiece split as ``llama`` (Gemma's trainer spec also has ``split_digits``,
    ``split_by_whitespace`` and ``allow_whitespace_only_pieces``).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from mixinfer.errors import TokenizerError, UsageError


@dataclass(frozen=True)
class Pretokenizer:
    """How text is cut into pretokens ("words") before BPE merges apply.

    Attributes:
        name: ``"tokenizer"`` when taken from the tokenizer file, else the preset name.
        normalizer_json: JSON of a HF ``tokenizers`` normalizer, or ``None``.
        pre_tokenizer_json: JSON of a HF ``tokenizers`` pre-tokenizer, or ``None`` (whole text is
            one word).
        byte_level: ``True`` when the pre-tokenizer emits GPT-2 byte-to-unicode strings (a
            ``ByteLevel`` step), which must be mapped back to raw bytes; ``False`` when pretokens
            are plain text.
        reason: one sentence saying why this pretokenizer was chosen (shown in reports).
    """

    name: str
    normalizer_json: str | None
    pre_tokenizer_json: str | None
    byte_level: bool
    reason: str = ""

    def fingerprint(self) -> str:
        """A stable hash of everything that changes the pretokens (not ``name``/``reason``)."""
        payload = json.dumps([self.normalizer_json, self.pre_tokenizer_json, self.byte_level], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# GPT-2 byte <-> unicode alphabet


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


BYTE_ENCODER: dict[int, str] = _bytes_to_unicode()
"""Byte value -> its character in the GPT-2 byte-level alphabet (``32`` -> ``"Ġ"``)."""

BYTE_DECODER: dict[str, int] = {c: b for b, c in BYTE_ENCODER.items()}
"""Character of the GPT-2 byte-level alphabet -> its byte value (``"Ġ"`` -> ``32``)."""


def decode_byte_level(text: str) -> bytes:
    """Map a string in the GPT-2 byte-level alphabet back to raw bytes.

    Raises:
        ValueError: a character is not one of the 256 characters of the alphabet.
    """
    try:
        return bytes(BYTE_DECODER[ch] for ch in text)
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the GPT-2 byte alphabet") from None


def encode_byte_level(data: bytes) -> str:
    """Map raw bytes to the GPT-2 byte-level alphabet (inverse of :func:`decode_byte_level`)."""
    return "".join(BYTE_ENCODER[b] for b in data)


# --------------------------------------------------------------------------------------------------
# Patterns

# The patterns and the preset table are package data (mixinfer/data/), not code: one file per
# pattern (regex_<name>.txt, one alternative per line, verbatim: no escaping) and presets.csv.


def _data_text(name: str) -> str:
    return resources.files("mixinfer").joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def read_pattern(name: str) -> str:
    """The regex of ``mixinfer/data/regex_<name>.txt``: its lines (after the leading ``#`` comment
    lines) joined with ``|``, leading spaces kept."""
    lines = _data_text(f"regex_{name}.txt").split("\n")
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines or not all(lines):
        raise RuntimeError(
            f"mixinfer/data/regex_{name}.txt holds no pattern or an empty line (a packaging bug)"
        )
    return "|".join(lines)


GPT2_PATTERN = read_pattern("gpt2")
"""The original GPT-2 pre-tokenization regex (what ``ByteLevel(use_regex=True)`` applies)."""

CL100K_PATTERN = read_pattern("cl100k")
"""tiktoken's ``pat_str`` for ``cl100k_base`` (verbatim, from tiktoken_ext/openai_public.py)."""

O200K_PATTERN = read_pattern("o200k")
"""tiktoken's ``pat_str`` for ``o200k_base`` (verbatim, from tiktoken_ext/openai_public.py)."""

LLAMA3_PATTERN = read_pattern("llama3")
"""The ``Split`` regex of Meta Llama 3's ``tokenizer.json``."""

SENTENCEPIECE_PATTERN = read_pattern("sentencepiece")
"""Where SentencePiece BPE (split_digits, split_by_whitespace, allow_whitespace_only_pieces,
split_by_unicode_script) can put piece boundaries, over text whose spaces are already ``▁``."""


# --------------------------------------------------------------------------------------------------
# JSON <-> live objects


def canonical_json(obj: Any) -> str | None:
    """Serialise a component as stored in :class:`Pretokenizer` (stable across key orders)."""
    if obj is None:
        return None
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (valid JSON, invalid UTF-8) would break fingerprinting: keep it escaped.
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return text


def _components_json(normalizer: Any, pre_tokenizer: Any) -> tuple[str | None, str | None]:
    """Serialise live ``tokenizers`` components through a throwaway ``Tokenizer``."""
    from tokenizers import Tokenizer, models

    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    if pre_tokenizer is not None:
        tok.pre_tokenizer = pre_tokenizer
    data = json.loads(tok.to_str())
    return canonical_json(data.get("normalizer")), canonical_json(data.get("pre_tokenizer"))


# An atom (\p{..}, an escape, a bracket class or a plain character), then a possessive interval.
_POSSESSIVE_INTERVAL = re.compile(
    r"(\\[pP]\{[^}]*\}|\\.|\[(?:\\.|[^\]\\])*\]|[^\\()\[\]{}|])\{(\d+(?:,\d*)?)\}\+"
)


def onig_compatible(pattern: str) -> str:
    """Rewrite a tiktoken-style (fancy-regex/PCRE) pattern so Oniguruma matches the same text.

    ``tokenizers`` compiles ``Split`` regexes with Oniguruma's Ruby syntax, where ``X{1,3}+`` is
    not possessive but means ``(?:X{1,3})+`` -- so cl100k's ``\\p{N}{1,3}+`` would swallow a
    whole digit run instead of three digits. The possessive interval becomes the equivalent atomic
    group ``(?>X{1,3})``. Other possessive forms (``?+``, ``*+``, ``++``) mean the same in both.
    """
    return _POSSESSIVE_INTERVAL.sub(r"(?>\1{\2})", pattern)


def _split_then_bytes(pattern: str) -> Any:
    """``Split(pattern, isolated)`` then ``ByteLevel(use_regex=False)``, as for tiktoken."""
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(onig_compatible(pattern)), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def regex_pretokenizer(pattern: str, *, name: str = "tokenizer", reason: str = "") -> Pretokenizer:
    """A byte-level pretokenizer that splits with ``pattern`` (e.g. a tiktoken ``pat_str``).

    Raises:
        TokenizerError: the installed ``tokenizers`` cannot compile the pattern.
    """
    try:
        pre = _split_then_bytes(pattern)
    except Exception as exc:
        raise TokenizerError(
            f"the pre-tokenization regex {pattern!r} cannot be compiled by the installed "
            f"`tokenizers` ({exc}); try `--pretokenizer NAME` with one of: {', '.join(PRESETS)}"
        ) from exc
    norm_json, pre_json = _components_json(None, pre)
    return Pretokenizer(name, norm_json, pre_json, byte_level=True, reason=reason)


PRESETS_FILE = "presets.csv"
"""The preset table in ``mixinfer/data/``: ``name,normalizer,pre_tokenizer,pattern,description``."""


def _normalizer(kind: str) -> Any:
    """The normalizer a preset row names (see the comments of :data:`PRESETS_FILE`)."""
    from tokenizers import normalizers

    if kind == "":
        return None
    if kind == "metaspace":
        return normalizers.Replace(" ", "▁")
    if kind == "metaspace_prefix":
        return normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    raise RuntimeError(f"mixinfer/data/{PRESETS_FILE}: unknown normalizer {kind!r} (a packaging bug)")


# Pre-tokenizer kinds of the preset table -> whether their pretokens are byte-level.
_PRE_TOKENIZER_KINDS = {
    "byte_level": True,
    "digits_byte_level": True,
    "split_byte_level": True,
    "split": False,
}


def _pre_tokenizer(kind: str, pattern: str | None) -> Any:
    """The pre-tokenizer a preset row names (see the comments of :data:`PRESETS_FILE`)."""
    from tokenizers import Regex, pre_tokenizers

    if kind.startswith("split") != (pattern is not None):
        raise RuntimeError(
            f"mixinfer/data/{PRESETS_FILE}: pre_tokenizer {kind!r} "
            f"{'needs' if pattern is None else 'takes no'} pattern (a packaging bug)"
        )
    if kind == "byte_level":
        return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if kind == "digits_byte_level":
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    if kind == "split_byte_level" and pattern is not None:
        return _split_then_bytes(pattern)
    if kind == "split" and pattern is not None:
        return pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)
    raise RuntimeError(f"mixinfer/data/{PRESETS_FILE}: unknown pre_tokenizer {kind!r} (a packaging bug)")


def _make_presets() -> dict[str, Pretokenizer]:
    """Build every preset of the table (names, patterns and descriptions are data; objects are code)."""
    text = _data_text(PRESETS_FILE)
    rows = list(csv.reader(line for line in text.splitlines() if line and not line.startswith("#")))
    if not rows or rows[0] != ["name", "normalizer", "pre_tokenizer", "pattern", "description"]:
        raise RuntimeError(f"mixinfer/data/{PRESETS_FILE}: unexpected header (a packaging bug)")
    presets: dict[str, Pretokenizer] = {}
    for row in rows[1:]:
        if len(row) != 5 or not row[0] or row[0] in presets or row[2] not in _PRE_TOKENIZER_KINDS:
            raise RuntimeError(f"mixinfer/data/{PRESETS_FILE}: bad row {row!r} (a packaging bug)")
        name, norm_kind, pre_kind, pattern_name, why = row
        pattern = read_pattern(pattern_name) if pattern_name else None
        norm_json, pre_json = _components_json(_normalizer(norm_kind), _pre_tokenizer(pre_kind, pattern))
        presets[name] = Pretokenizer(
            name, norm_json, pre_json, _PRE_TOKENIZER_KINDS[pre_kind], f"preset `{name}`: {why}"
        )
    return presets


PRESETS: dict[str, Pretokenizer] = _make_presets()
"""Named pretokenizers (``--pretokenizer NAME``); see the module docstring for each."""


def preset(name: str) -> Pretokenizer:
    """The preset called ``name``.

    Raises:
        UsageError: no preset has that name (the message lists the valid names).
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UsageError(
            f"unknown pretokenizer preset {name!r} (--pretokenizer); valid names: {', '.join(PRESETS)}"
        ) from None


def _has_type(component: Any, wanted: str) -> bool:
    """Whether a component JSON contains a step of type ``wanted`` (searching nested Sequences)."""
    if isinstance(component, dict):
        if component.get("type") == wanted:
            return True
        return any(_has_type(v, wanted) for v in component.values() if isinstance(v, list | dict))
    if isinstance(component, list):
        return any(_has_type(v, wanted) for v in component)
    return False


def has_byte_level(component: Any) -> bool:
    """Whether a ``tokenizer.json`` pre-tokenizer or decoder has a ``ByteLevel`` step."""
    return _has_type(component, "ByteLevel")


def from_tokenizer_json(data: dict[str, Any], *, source: str = "tokenizer.json") -> Pretokenizer | None:
    """The pretokenizer a ``tokenizer.json`` carries: its own normalizer and pre-tokenizer.

    Args:
        data: the parsed ``tokenizer.json``.
        source: the file name, for error messages.

    Returns:
        ``None`` when the file has no ``pre_tokenizer`` (a preset is needed then).

    Raises:
        TokenizerError: ``normalizer`` or ``pre_tokenizer`` is neither an object nor null.
    """
    if not isinstance(data, dict):
        raise TokenizerError(f"{source}: expected a JSON object at the top level")
    normalizer = data.get("normalizer")
    pre_tokenizer = data.get("pre_tokenizer")
    for key, value in (("normalizer", normalizer), ("pre_tokenizer", pre_tokenizer)):
        if value is not None and not isinstance(value, dict):
            raise TokenizerError(
                f"{source}: `{key}` must be an object or null, not {type(value).__name__}; "
                f"fix the file or pass `--pretokenizer NAME` ({', '.join(PRESETS)})"
            )
    if pre_tokenizer is None:
        return None
    return Pretokenizer(
        name="tokenizer",
        normalizer_json=canonical_json(normalizer),
        pre_tokenizer_json=canonical_json(pre_tokenizer),
        byte_level=has_byte_level(pre_tokenizer),
        reason="the tokenizer file's own normalizer and pre_tokenizer",
    )


_MINIMAL_MODEL = {"type": "BPE", "vocab": {}, "merges": []}


def build(p: Pretokenizer) -> tuple[Any, Any]:
    """The live ``tokenizers`` normalizer and pre-tokenizer of ``p`` (each may be ``None``).

    They are deserialised by ``tokenizers`` itself from a minimal ``tokenizer.json``, so what runs
    is exactly what the library would run for the original file.

    Raises:
        TokenizerError: the installed ``tokenizers`` cannot build them.
    """
    from tokenizers import Tokenizer

    try:
        normalizer = None if p.normalizer_json is None else json.loads(p.normalizer_json)
        pre_tokenizer = None if p.pre_tokenizer_json is None else json.loads(p.pre_tokenizer_json)
        doc: dict[str, Any] = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [],
            "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": None,
            "decoder": None,
            "model": _MINIMAL_MODEL,
        }
        tok = Tokenizer.from_str(json.dumps(doc))
        return tok.normalizer, tok.pre_tokenizer
    except BaseException as exc:  # a Rust panic arrives as a BaseException subclass
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        what = "preset" if p.name in PRESETS else "file's"
        raise TokenizerError(
            f"the {what} normalizer/pre_tokenizer ({p.name}) is not supported by the installed "
            f"`tokenizers` ({type(exc).__name__}: {exc}); try `--pretokenizer NAME` with one of: "
            f"{', '.join(PRESETS)}"
        ) from exc


def pretokenize(built: tuple[Any, Any], text: str) -> list[str]:
    """Normalise ``text`` and cut it into pretokens with components from :func:`build`."""
    normalizer, pre_tokenizer = built
    if normalizer is not None:
        text = normalizer.normalize_str(text)
    if pre_tokenizer is None:
        return [text] if text else []
    return [piece for piece, _ in pre_tokenizer.pre_tokenize_str(text)]


def pretoken_bytes(p: Pretokenizer, pretoken: str) -> bytes:
    """The raw bytes of one pretoken: byte-decoded for byte-level pretokenizers, else UTF-8."""
    if p.byte_level:
        return decode_byte_level(pretoken)
    return pretoken.encode("utf-8")
