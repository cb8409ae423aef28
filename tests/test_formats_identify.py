"""The right pretokenizer without a name hint (issue 12 item 4): known split regexes identified from
the regex a file carries, or from the marks each regex leaves on the merges."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mixinfer.formats import identify
from mixinfer.formats.identify import identify_from_merges, identify_pattern
from mixinfer.pretokenizers import PRESETS, build, read_pattern
from mixinfer.tokenizer import load_tokenizer, tokenizer_from_json

# Published spellings of the regexes (tiktoken_ext/openai_public.py, Llama 4's tokenizer.py,
# Qwen's tokenization_qwen.py, Mistral NeMo's tekken.json).
CL100K_TIKTOKEN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
    r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
LLAMA4 = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"""
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"""
    r"""\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param(CL100K_TIKTOKEN, "cl100k", id="cl100k-pat_str"),
        pytest.param(LLAMA4, "o200k", id="llama4-is-o200k"),
        pytest.param(QWEN, "qwen", id="qwen"),
        pytest.param(read_pattern("tekken"), "tekken", id="tekken"),
        pytest.param(read_pattern("llama3"), "llama3", id="llama3"),
        pytest.param(read_pattern("gpt2"), "gpt2", id="gpt2"),
        pytest.param(r"\p{L}+|\p{N}+|\s+", None, id="unknown"),
    ],
)
def test_identify_pattern(pattern: str, expected: str | None) -> None:
    assert identify_pattern(pattern) == expected


CAMEL = "getElementById addEventListener innerHTML parseInt toString setTimeout isNaN onClick "
DIGITS = "In 2019 there were 12345 cases, 3.14159 and 1,000,000; call 0800 555 0199. "


def _trained_merges(preset: str, text: str) -> list[tuple[bytes, bytes]]:
    """Merges of a byte-level BPE trained with ``preset``'s split on ``text``."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = build(PRESETS[preset])[1]
    trainer = trainers.BpeTrainer(
        vocab_size=256 + 1500,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    docs = [d for d in text.split("\n\n") if d.strip()]
    tok.train_from_iterator(docs, trainer=trainer)
    return tokenizer_from_json(json.loads(tok.to_str()), source=preset).merges


@pytest.fixture(scope="module")
def mixed_text(license_text: str) -> str:
    return license_text[:250_000] + ("\n\n" + CAMEL * 20 + DIGITS * 20) * 30


@pytest.mark.parametrize("preset", ["gpt2", "cl100k", "o200k", "qwen", "tekken"])
def test_the_merges_of_a_trained_tokenizer_identify_its_split(
    preset: str, mixed_text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identify, "MIN_MERGES", 1000)
    monkeypatch.setattr(identify, "MIN_LETTER_TOKENS", 500)
    merges = _trained_merges(preset, mixed_text)
    found = identify_from_merges(merges)
    assert found is not None and found[0] == preset, found
    # End to end: the same merges as a tiktoken ranks file without a name hint.
    ranks = {bytes([b]): b for b in range(256)}
    for a, b in merges:
        ranks.setdefault(a + b, len(ranks))
    path = tmp_path / "tokenizer.model"
    path.write_text(
        "".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()), encoding="ascii"
    )
    tok = load_tokenizer(path)
    assert tok.pretokenizer.name == preset
    assert any(n.startswith("pretokenizer:") and f"`{preset}` split" in n for n in tok.notes)
    assert "merges show" in tok.pretokenizer.reason
    assert load_tokenizer(path, pretokenizer="default").pretokenizer.name == "default"


def test_too_few_merges_identify_nothing(mixed_text: str) -> None:
    merges = _trained_merges("o200k", mixed_text)
    assert len(merges) < identify.MIN_MERGES
    assert identify_from_merges(merges) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("qwen.tiktoken", "qwen"),
        ("llama3-tokenizer.model", "cl100k"),
        ("llama4-tokenizer.model", "o200k"),
        ("whisper-multilingual.tiktoken", "gpt2"),
        ("mistral-nemo-tekken.json", "tekken"),
    ],
)
def test_published_rank_files_get_their_split(name: str, expected: str, shared_tokenizers_dir: Path) -> None:
    tok = load_tokenizer(shared_tokenizers_dir / name)
    assert tok.pretokenizer.name == expected
    if name.endswith(".json"):  # Tekken carries its regex: identify the merges independently too
        found = identify_from_merges(tok.merges)
        assert found is not None and found[0] == "tekken"


def test_pretokenizer_option_still_overrides(shared_tokenizers_dir: Path) -> None:
    tok = load_tokenizer(shared_tokenizers_dir / "whisper-multilingual.tiktoken", pretokenizer="o200k")
    assert tok.pretokenizer.name == "o200k" and "--pretokenizer" in tok.pretokenizer.reason
