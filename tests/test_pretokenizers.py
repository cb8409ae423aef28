"""Pretokenizer presets, the tokenizer.json pretokenizer, and the GPT-2 byte alphabet."""

from __future__ import annotations

import json

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from mixinfer.errors import TokenizerError, UsageError
from mixinfer.pretokenizers import (
    BYTE_DECODER,
    BYTE_ENCODER,
    CL100K_PATTERN,
    GPT2_PATTERN,
    LLAMA3_PATTERN,
    O200K_PATTERN,
    PRESETS,
    Pretokenizer,
    build,
    decode_byte_level,
    encode_byte_level,
    from_tokenizer_json,
    onig_compatible,
    preset,
    pretoken_bytes,
    pretokenize,
    regex_pretokenizer,
)

REQUIRED = ["default", "gpt2", "cl100k", "o200k", "llama", "llama3", "mistral", "gemma"]
BYTE_LEVEL = [n for n in REQUIRED if PRESETS[n].byte_level]
CHAR_LEVEL = [n for n in REQUIRED if not PRESETS[n].byte_level]

SAMPLE = (
    "In 2024 the GPL-3.0 licence was quoted 1234567 times.  Don't panic!\n\n"
    "    def f(x):\n\treturn x  \nCafé naïve 中文 Привет"
)


def words(name: str, text: str) -> list[str]:
    return pretokenize(build(PRESETS[name]), text)


def as_bytes(name: str, text: str) -> list[bytes]:
    return [pretoken_bytes(PRESETS[name], w) for w in words(name, text)]


# --------------------------------------------------------------------------------------------------
# The byte alphabet


def test_byte_alphabet_is_a_bijection_on_256_printable_characters() -> None:
    assert len(BYTE_ENCODER) == 256 and len(BYTE_DECODER) == 256
    assert all(BYTE_DECODER[BYTE_ENCODER[b]] == b for b in range(256))
    assert BYTE_DECODER["Ġ"] == ord(" ") and BYTE_DECODER["Ċ"] == ord("\n")
    assert all(ch.isprintable() and not ch.isspace() for ch in BYTE_DECODER)


@given(st.binary(max_size=64))
def test_byte_level_round_trip(data: bytes) -> None:
    assert decode_byte_level(encode_byte_level(data)) == data


def test_decode_byte_level_rejects_characters_outside_the_alphabet() -> None:
    with pytest.raises(ValueError, match="not in the GPT-2 byte alphabet"):
        decode_byte_level("▁the")


# --------------------------------------------------------------------------------------------------
# Presets


def test_all_required_presets_exist() -> None:
    assert set(REQUIRED) <= set(PRESETS)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in REQUIRED])
def test_each_preset_builds_and_describes_itself(name: str, license_paragraph: str) -> None:
    p = preset(name)
    assert p.name == name and p.reason
    normalizer, pre_tokenizer = build(p)
    assert pre_tokenizer is not None
    assert (normalizer is None) == (p.normalizer_json is None)
    pieces = words(name, license_paragraph)
    assert 10 < len(pieces) < len(license_paragraph)
    # Presets are serialised by tokenizers itself, so they deserialise to the same JSON.
    assert json.loads(p.pre_tokenizer_json or "null")["type"] in {"Sequence", "ByteLevel", "Split"}


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="--pretokenizer") as info:
        preset("gpt5")
    for name in REQUIRED:
        assert name in str(info.value)


def test_default_splits_digits_from_letters_and_spaces() -> None:
    assert as_bytes("default", "in 2024abc x") == [b"in", b" ", b"2024", b"abc", b" x"]
    # gpt2 alone keeps the space on the number.
    assert as_bytes("gpt2", "in 2024abc x") == [b"in", b" 2024", b"abc", b" x"]


def test_tiktoken_style_presets_group_digits_by_three() -> None:
    for name in ("cl100k", "o200k", "llama3"):
        assert b"123" in as_bytes(name, "1234567") and b"7" in as_bytes(name, "1234567")
    assert as_bytes("cl100k", "  \nx") == [b"  \n", b"x"]


def test_llama_yields_prefixed_words_and_single_digits() -> None:
    assert words("llama", "Hello world 42 times, ok") == [
        "▁Hello", "▁world", "▁", "4", "2", "▁times", ",", "▁ok",
    ]  # fmt: skip
    # Whitespace runs stay formable ("▁▁▁" pieces exist in Llama's vocabulary); letters and
    # punctuation never share a pretoken.
    assert words("llama", "a    b") == ["▁a", "▁▁▁", "▁b"]
    assert words("llama", "end.\n") == ["▁end", ".\n"]
    assert words("mistral", "Hello world") == words("llama", "Hello world")


def test_gemma_has_no_dummy_prefix() -> None:
    assert words("gemma", "Hello world 7") == ["Hello", "▁world", "▁", "7"]


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        pytest.param("gpt2", GPT2_PATTERN, id="gpt2"),
        pytest.param("cl100k", CL100K_PATTERN, id="cl100k"),
        pytest.param("o200k", O200K_PATTERN, id="o200k"),
        pytest.param("llama3", LLAMA3_PATTERN, id="llama3"),
    ],
)
def test_regex_presets_split_like_the_pattern_itself(name: str, pattern: str, license_text: str) -> None:
    # The `regex` module is what tiktoken's pure-Python reference uses for pat_str.
    text = license_text[:20_000] + SAMPLE
    assert words(name, text) == [encode_byte_level(w.encode()) for w in regex.findall(pattern, text)]


@settings(max_examples=80, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            [
                "a",
                "Bc",
                "é",
                "中",
                "1",
                "1234567",
                " ",
                "  ",
                "\u00a0",
                "\n",
                "\r\n",
                "\t",
                ".",
                "'s",
                "'LL",
                "?!",
                "x/",
                "\u0301",
            ]
        ),
        max_size=25,
    ).map("".join)
)
def test_regex_presets_agree_with_the_pattern_on_tricky_text(text: str) -> None:
    for name, pattern in [
        ("gpt2", GPT2_PATTERN),
        ("cl100k", CL100K_PATTERN),
        ("o200k", O200K_PATTERN),
        ("llama3", LLAMA3_PATTERN),
    ]:
        expected = [encode_byte_level(w.encode()) for w in regex.findall(pattern, text)]
        assert words(name, text) == expected, name


def test_possessive_intervals_become_atomic_groups_for_oniguruma() -> None:
    assert onig_compatible(r"\p{N}{1,3}+|[ab]{2}+|x{3,}+") == r"(?>\p{N}{1,3})|(?>[ab]{2})|(?>x{3,})"
    assert onig_compatible(O200K_PATTERN) == O200K_PATTERN
    # The exact tiktoken string is what is stored as the constant.
    assert r"\p{N}{1,3}+" in CL100K_PATTERN


def test_tiktoken_patterns_are_copied_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    from tiktoken_ext import openai_public

    # The registry's constructors download the ranks; only their pat_str is wanted here.
    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    assert openai_public.cl100k_base()["pat_str"] == CL100K_PATTERN
    assert openai_public.o200k_base()["pat_str"] == O200K_PATTERN


texts = st.text(st.characters(codec="utf-8"), max_size=120)
mixed = st.lists(st.sampled_from(["a", "Z", "é", "中", "1", "42", " ", "  ", "\n", "\t", ".", "'s", "▁"]))


@settings(max_examples=60, deadline=None)
@given(text=st.one_of(texts, mixed.map("".join)))
def test_byte_level_presets_keep_every_byte(text: str) -> None:
    for name in BYTE_LEVEL:
        assert b"".join(as_bytes(name, text)) == text.encode("utf-8"), name


@settings(max_examples=60, deadline=None)
@given(text=st.one_of(texts, mixed.map("".join)))
def test_sentencepiece_presets_keep_every_character(text: str) -> None:
    for name in CHAR_LEVEL:
        normalizer, _ = build(PRESETS[name])
        assert "".join(words(name, text)) == normalizer.normalize_str(text), name


def test_presets_have_distinct_fingerprints_unless_identical() -> None:
    prints = {name: PRESETS[name].fingerprint() for name in REQUIRED}
    assert prints["llama"] == prints["mistral"]
    others = [v for k, v in prints.items() if k != "mistral"]
    assert len(set(others)) == len(others)


# --------------------------------------------------------------------------------------------------
# From a tokenizer.json


def test_from_tokenizer_json_takes_the_files_pipeline() -> None:
    data = {
        "normalizer": {"type": "NFKC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
            ],
        },
    }
    p = from_tokenizer_json(data)
    assert p is not None and p.name == "tokenizer" and p.byte_level
    # NFKC folds the ligature; digits are split one by one.
    assert [pretoken_bytes(p, w) for w in pretokenize(build(p), "ﬁ 12")] == [
        b"fi",
        b" ",
        b"1",
        b"2",
    ]


def test_from_tokenizer_json_without_pre_tokenizer_needs_a_preset() -> None:
    assert from_tokenizer_json({"normalizer": {"type": "NFC"}, "pre_tokenizer": None}) is None
    p = from_tokenizer_json({"pre_tokenizer": {"type": "Whitespace"}})
    assert p is not None and not p.byte_level


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"pre_tokenizer": "ByteLevel"}, id="pre-tokenizer-string"),
        pytest.param({"pre_tokenizer": {"type": "Whitespace"}, "normalizer": [1]}, id="norm-list"),
    ],
)
def test_from_tokenizer_json_rejects_wrong_types(data: dict[str, object]) -> None:
    with pytest.raises(TokenizerError, match="must be an object or null"):
        from_tokenizer_json(data)


@pytest.mark.parametrize(
    "pre_json",
    [
        pytest.param('{"type": "NoSuchPreTokenizer"}', id="unknown-type"),
        pytest.param(
            '{"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated", "invert": false}',
            id="bad-regex",
        ),
        pytest.param('{"type": "Digits", "individual_digits": "yes"}', id="wrong-field-type"),
    ],
)
def test_build_reports_unsupported_components(pre_json: str) -> None:
    p = Pretokenizer("tokenizer", None, pre_json, byte_level=False)
    with pytest.raises(TokenizerError, match="not supported by the installed `tokenizers`") as info:
        build(p)
    assert "--pretokenizer" in str(info.value)


def test_regex_pretokenizer_uses_the_pattern_then_byte_level() -> None:
    p = regex_pretokenizer(r"\p{L}+|\s+|[^\s\p{L}]+")
    assert p.byte_level
    assert [pretoken_bytes(p, w) for w in pretokenize(build(p), "ab  é!")] == [
        b"ab", b"  ", "é".encode(), b"!",
    ]  # fmt: skip
    with pytest.raises(TokenizerError, match="cannot be compiled"):
        regex_pretokenizer("(")
