"""The ``regex`` split (:mod:`mixinfer.fastsplit`) cuts exactly where ``tokenizers`` cuts.

Checked on random strings over an alphabet chosen to hit every boundary case of the patterns
(contractions and their case-folded look-alikes, every kind of whitespace, digits of all kinds,
marks, CJK, characters too new for one of the two engines' Unicode tables), and on real text of
every bundled sample category.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_counting import reference_counts  # the slow, obviously right way

from mixinfer import counting, fastsplit, pretokenizers
from mixinfer.pretokenizers import PRESETS, Pretokenizer, build, pretoken_bytes, pretokenize
from mixinfer.samples import discover, iter_documents

ROOT = Path(__file__).resolve().parents[1]

ALPHABET = (
    list("abcXYZ st'dmlvre")
    + list("0123456789")
    + [" ", "  ", "\n", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028", "\u3000"]
    + list(".,;:!?-_/()[]{}\"'`~@#$%^&*+=<>|\\")
    + ["ſ", "\u212a", "İ", "ß", "Ǆ", "ǅ", "ʰ", "\u0301", "\u0903", "é", "Ж", "ж", "中", "の", "한"]
    + ["²", "½", "Ⅷ", "٣", "१", "①", "〇", "𝟙"]
    + ["▁", "▁▁", "🙂", "👍🏽", "\u200b", "\ufeff"]
    # Letters and digits of recent Unicode versions, on which the engines' tables may differ,
    # and unassigned code points.
    + ["\u0c5c", "\u0cdd", "\U0001e4d0", "\U00011f50", "\U0001e5d0", "\U0001ccf0", "\U00031350"]
    + ["\U000e0080", "\U0010fffd", "\ue000"]
)
TEXT = st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join)

# Each supported pre-tokenizer once: the presets, plus the JSON forms found in published files.
FILE_FORMS = {
    "gpt-2.json": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
    "gpt-neox.json": {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": True,
        "use_regex": True,
    },
    "digits-each": {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ],
    },
}


def _file_form(name: str) -> Pretokenizer:
    return Pretokenizer(name, None, pretokenizers.canonical_json(FILE_FORMS[name]), byte_level=True)


SUPPORTED = [pytest.param(p, id=f"preset-{name}") for name, p in PRESETS.items()] + [
    pytest.param(_file_form(name), id=name) for name in FILE_FORMS
]


@pytest.mark.parametrize("prefer_re", [pytest.param(True, id="re"), pytest.param(False, id="regex")])
@pytest.mark.parametrize("pretok", SUPPORTED)
@settings(max_examples=150, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_regex_split_equals_tokenizers_on_random_text(
    pretok: Pretokenizer, prefer_re: bool, texts: list[str]
) -> None:
    counter = counting._Counter(pretok)
    counter.fast = fastsplit.fast_split(pretok, prefer_re=prefer_re)
    assert counter.fast is not None
    assert counter.count(texts) == reference_counts(pretok, texts)


def test_the_byte_level_regexes_run_on_re_and_the_others_on_regex() -> None:
    import re

    engines = {name: fastsplit.fast_split(p).engine for name, p in PRESETS.items()}  # type: ignore[union-attr]
    expected = {"default", "gpt2", "llama3", "qwen"}
    if sys.version_info >= (3, 11):  # cl100k's possessive quantifiers need re from 3.11
        expected.add("cl100k")
    assert {name for name, e in engines.items() if e is re} == expected


@pytest.mark.parametrize("pretok", SUPPORTED)
@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_ascii_pattern_equals_tokenizers_on_any_ascii(pretok: Pretokenizer, text: str) -> None:
    split = fastsplit.fast_split(pretok)
    assert split is not None
    if split.ascii is None:
        pytest.skip("re cannot compile this pattern on this Python (no possessive quantifiers)")
    built = build(pretok)
    normalised = built[0].normalize_str(text) if built[0] is not None else text
    if not normalised.isascii():
        return
    expected = [pretoken_bytes(pretok, w) for w in pretokenize(built, text)]
    assert [w.encode() for w in split.ascii.findall(normalised)] == expected


@pytest.mark.parametrize("preset", ["default", "cl100k", "o200k", "llama"])
def test_regex_split_equals_tokenizers_on_every_sample_category(preset: str) -> None:
    pretok = PRESETS[preset]
    categories = discover(ROOT / "data_samples" / "general") + discover(ROOT / "data_samples" / "programming")
    assert len(categories) >= 30
    for cat in categories:
        texts = list(iter_documents(cat, max_bytes=60_000))
        assert counting._Counter(pretok).count(texts) == reference_counts(pretok, texts), cat.name


def test_characters_the_engines_classify_differently_go_to_tokenizers() -> None:
    split = fastsplit.fast_split(PRESETS["default"])
    assert split is not None
    # Whatever this machine's tables say, every character the answer names must really be
    # classified differently by the two engines, and the answer must not change on a re-check.
    chars = [c for c in ALPHABET if len(c) == 1]
    dubious = set(split.disagreements(chars))
    assert dubious == split.disagreements(chars)
    assert not dubious & set("abc 0123456789\n\t.,'")
    # Unassigned in any Unicode version so far: at most one engine's tables could know it.
    counter = counting._Counter(PRESETS["default"])
    text = "x \U000e0080y 12\u0c5c3 ab"
    assert counter.count([text]) == reference_counts(PRESETS["default"], [text])


def test_a_pattern_that_misses_characters_falls_back_to_tokenizers() -> None:
    import regex

    counter = counting._Counter(PRESETS["gpt2"])
    assert counter.fast is not None
    # A deliberately wrong split that drops the spaces: the coverage check must catch it.
    counter.fast.pattern = regex.compile(r"\S+")
    counter.fast.ascii = None
    texts = ["hello world, again", "and again"]
    assert counter.count(texts) == reference_counts(PRESETS["gpt2"], texts)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}, id="prefix-space"),
        pytest.param({"type": "Whitespace"}, id="whitespace"),
        pytest.param({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"}, id="metaspace"),
        pytest.param(
            {
                "type": "Sequence",
                "pretokenizers": [
                    {
                        "type": "Split",
                        # tiktoken's raw pattern: Oniguruma reads `{1,3}+` as a repetition.
                        "pattern": {"Regex": pretokenizers.CL100K_PATTERN},
                        "behavior": "Isolated",
                        "invert": False,
                    },
                    {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
                ],
            },
            id="raw-cl100k",
        ),
        pytest.param(
            {"type": "Split", "pattern": {"Regex": r"\w+"}, "behavior": "Isolated", "invert": False},
            id="unknown-regex",
        ),
    ],
)
def test_unknown_pretokenizers_keep_tokenizers(spec: dict) -> None:
    byte_level = pretokenizers.has_byte_level(spec)
    p = Pretokenizer("x", None, json.dumps(spec), byte_level=byte_level)
    assert fastsplit.fast_split(p) is None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(r" ?\p{L}+|\s+", r" ?[A-Za-z]+|\s+", id="outside-class"),
        pytest.param(r"[^\s\p{L}\p{N}]+", r"[^\sA-Za-z0-9]+", id="inside-class"),
        pytest.param(r"[\p{Lu}\p{Lo}]*[\p{Ll}\p{M}]+", r"[A-Z]*[a-z]+", id="non-ascii-members-vanish"),
        pytest.param(r"\p{Lo}|x", r"(?!)|x", id="empty-outside-class"),
        pytest.param(r"\p{Greek}+", None, id="unknown-property"),
    ],
)
def test_ascii_pattern_translation(source: str, expected: str | None) -> None:
    assert fastsplit.ascii_pattern(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(r" ?\p{L}+| ?\p{N}+", r" ?[^\W\d_]+| ?\d+", id="outside-class"),
        pytest.param(r"[^\s\p{L}\p{N}]+", r"(?:[^\s\w]|_)+", id="negated-letters-and-numbers"),
        pytest.param(r"\s+(?![^\s\p{N}])", r"\s+(?![^\s\d])", id="numbers-in-class"),
        pytest.param(r"[\p{Lu}]+", None, id="other-property"),
        pytest.param(r"[a\p{L}]", None, id="letters-alone-in-class"),
    ],
)
def test_unicode_pattern_translation(source: str, expected: str | None) -> None:
    assert fastsplit.unicode_pattern(source) == expected
