"""SentencePiece ``.model`` files (issue 12 item 3): read with our protobuf reader, merges derived as
Hugging Face's converter does, then cleaned; models are trained in the test with ``sentencepiece``
(skipped when it is not installed)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixinfer.cleaning import _bpe_parts, _initial_symbols, clean_merges
from mixinfer.errors import MixinferError, TokenizerError
from mixinfer.formats.sentencepiece import BYTE, CONTROL, UNKNOWN, USER_DEFINED, derive_merges, read_model
from mixinfer.tokenizer import load_tokenizer

SP = "▁"


def train(text: str, *, model_type: str = "bpe", vocab_size: int = 800, **extra: Any) -> bytes:
    spm = pytest.importorskip("sentencepiece")
    model = io.BytesIO()
    lines = [line for line in text.split("\n") if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type=model_type,
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=True,
        minloglevel=2,
        **extra,
    )
    return model.getvalue()


@pytest.fixture(scope="module")
def bpe_model(license_text: str) -> bytes:
    return train(license_text[:200_000], user_defined_symbols=["erer"])


@pytest.fixture(scope="module")
def processor(bpe_model: bytes) -> Any:
    spm = pytest.importorskip("sentencepiece")
    return spm.SentencePieceProcessor(model_proto=bpe_model)


def test_reader_sees_the_pieces_sentencepiece_sees(bpe_model: bytes, processor: Any) -> None:
    pieces, model_type, dummy_prefix = read_model(bpe_model)
    assert model_type == 2 and dummy_prefix
    assert len(pieces) == processor.get_piece_size()
    for i, (piece, score, kind) in enumerate(pieces):
        assert piece == processor.id_to_piece(i)
        assert score == pytest.approx(processor.get_score(i), abs=1e-6)
        assert (kind == BYTE) == processor.is_byte(i)
        assert (kind == CONTROL) == processor.is_control(i)
        assert (kind == UNKNOWN) == processor.is_unknown(i)
    assert any(kind == USER_DEFINED and piece == "erer" for piece, _, kind in pieces)


def test_merges_are_every_split_into_two_pieces_by_score(bpe_model: bytes) -> None:
    pieces, _, _ = read_model(bpe_model)
    merges = derive_merges(pieces)
    vocab = {p: i for i, (p, _, _) in enumerate(pieces)}
    score = {p: s for p, s, _ in pieces}
    brute = {(p[:i], p[i:]) for p in vocab for i in range(1, len(p)) if p[:i] in vocab and p[i:] in vocab}
    assert set(merges) == brute and len(merges) == len(brute)
    scores = [score[a + b] for a, b in merges]
    assert scores == sorted(scores, reverse=True)


def test_cleaned_merges_encode_like_sentencepiece(
    bpe_model: bytes, processor: Any, license_paragraph: str, tmp_path: Path
) -> None:
    path = tmp_path / "tokenizer.model"
    path.write_bytes(bpe_model)
    tok = load_tokenizer(path)
    assert tok.format == "sentencepiece" and not tok.byte_level
    assert tok.pretokenizer.name == "llama"  # dummy prefix, no [INST] piece
    # A user-defined piece is not learned: its merge ("er er") is reserved and cleaned away.
    assert (b"er", b"er") in tok.merges and tok.reserved == {b"erer"}
    cleaned, report = clean_merges(tok)
    assert report.order == "vocabulary id" and not report.warnings
    assert report.removed["inserted"] >= 1 and b"erer" not in {a + b for a, b in cleaned.merges}
    ranks = {pair: i for i, pair in enumerate(cleaned.merges)}
    words = [w for w in license_paragraph.split() if w.isascii() and w.isalpha()]
    assert len(words) > 20
    for word in words:
        expected = processor.encode(word, out_type=str)
        got = [p.decode() for p in _bpe_parts(_initial_symbols(cleaned, (SP + word).encode()), ranks)]
        assert got == expected, word


def test_found_by_content_under_another_name(bpe_model: bytes, tmp_path: Path) -> None:
    path = tmp_path / "spm.bin"
    path.write_bytes(bpe_model)
    assert load_tokenizer(path).format == "sentencepiece"


def test_a_unigram_model_is_refused_clearly(license_text: str, tmp_path: Path) -> None:
    path = tmp_path / "unigram.model"
    path.write_bytes(train(license_text[:100_000], model_type="unigram", vocab_size=500))
    with pytest.raises(TokenizerError, match="SentencePiece UNIGRAM model, not BPE"):
        load_tokenizer(path)


def test_a_truncated_model_is_a_clear_error(bpe_model: bytes, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.model"
    path.write_bytes(bpe_model[: len(bpe_model) // 2])
    with pytest.raises(TokenizerError, match="is not a SentencePiece model"):
        load_tokenizer(path)


def test_mistral_v3_model_equals_mistral_json(shared_tokenizers_dir: Path) -> None:
    model = load_tokenizer(shared_tokenizers_dir / "mistral-v3-sentencepiece.model")
    converted = load_tokenizer(shared_tokenizers_dir / "mistral.json")
    assert len(model.merges) == 58_980 and model.merges == converted.merges
    assert model.alphabet == converted.alphabet and model.reserved == converted.reserved
    assert model.pretokenizer.name == converted.pretokenizer.name == "mistral"
    assert model.pretokenizer.fingerprint() == converted.pretokenizer.fingerprint()
    model_clean, model_report = clean_merges(model)
    json_clean, json_report = clean_merges(converted)
    assert model_clean.merges == json_clean.merges
    assert model_report.removed == json_report.removed


# --------------------------------------------------------------------------------------------------
# A model written by hand (runs without the sentencepiece package), and damaged copies of it


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def hand_model(pieces: list[tuple[str, float, int]], model_type: int = 2) -> bytes:
    import struct

    body = b"".join(
        _field(
            1,
            _field(1, p.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", s) + _varint(3 << 3) + _varint(t),
        )
        for p, s, t in pieces
    )
    trainer = _varint(3 << 3) + _varint(model_type)
    return body + _field(2, trainer) + _field(3, _varint(3 << 3) + _varint(1))


HAND = (
    [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    + [(p, -float(i), 1) for i, p in enumerate([SP + "t", "he", SP + "the", "in", "ing", SP + "in"])]
    + [(ch, -100.0, 1) for ch in SP + "theing"]
)


def test_a_hand_written_model(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.model"
    path.write_bytes(hand_model(HAND))
    tok = load_tokenizer(path)
    assert tok.format == "sentencepiece" and tok.pretokenizer.name == "llama"
    as_text = [(a.decode(), b.decode()) for a, b in tok.merges]
    # By score: ▁t, he, ▁the (▁t+he, then ▁th... absent), in, ing, ▁in; each piece's splits by ids.
    assert as_text == [(SP, "t"), ("h", "e"), (SP + "t", "he"), ("i", "n"), ("in", "g"), (SP, "in")]
    path.write_bytes(hand_model(HAND, model_type=1))
    with pytest.raises(TokenizerError, match="UNIGRAM"):
        load_tokenizer(path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_models_give_a_tokenizer_error_or_load(data: st.DataObject, tmp_path: Path) -> None:
    blob = bytearray(hand_model(HAND))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    path = tmp_path / "tokenizer.model"
    path.write_bytes(bytes(blob))
    try:
        tok = load_tokenizer(path)
    except MixinferError as exc:
        assert str(exc)
    else:
        assert tok.merges and all(a and b for a, b in tok.merges)
