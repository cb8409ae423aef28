"""Mistral's Tekken JSON (issue 12 item 2): ranks from base64 ``token_bytes``, only the first
``default_vocab_size - default_num_special_tokens`` of them, ``config.pattern`` as the split."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixinfer.errors import MixinferError, TokenizerError
from mixinfer.pretokenizers import build, pretoken_bytes, pretokenize, read_pattern
from mixinfer.tokenizer import load_tokenizer

WORDS = [b"th", b"the", b" the", b"in", b"ing", b" a", b"an", b" an", b"and", b" and", b"er", b"her"]


def tekken_doc(tokens: list[bytes], *, pattern: str, special: int, size: int | None) -> dict[str, Any]:
    """A Tekken JSON as Mistral writes it: 256 bytes then ``tokens``, ranks in order."""
    all_tokens = [bytes([b]) for b in range(256)] + tokens
    vocab = [
        {
            "rank": i,
            "token_bytes": base64.b64encode(t).decode(),
            "token_str": t.decode("utf-8", "replace"),
        }
        for i, t in enumerate(all_tokens)
    ]
    config: dict[str, Any] = {
        "pattern": pattern,
        "num_vocab_tokens": len(vocab),
        "default_num_special_tokens": special,
        "version": "v3",
    }
    if size is not None:
        config["default_vocab_size"] = size
    return {"config": config, "vocab": vocab}


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_tekken_ranks_pattern_and_vocabulary_limit(tmp_path: Path) -> None:
    # 256 + 12 ranks in the file; the model uses 256 + 8 of them (size 1000 + 264, 1000 special).
    doc = tekken_doc(WORDS, pattern=read_pattern("tekken"), special=1000, size=1000 + 256 + 8)
    tok = load_tokenizer(write(tmp_path / "tekken.json", doc))
    assert tok.format == "tekken" and tok.byte_level
    assert [a + b for a, b in tok.merges] == WORDS[:8]
    assert tok.merges[:3] == [(b"t", b"h"), (b"th", b"e"), (b" ", b"the")]
    assert tok.pretokenizer.name == "tekken"
    assert any("first 264 ranks used" in n and "4 later ranks ignored" in n for n in tok.notes)
    # The split is the file's regex, then byte-level.
    text = "Hello World 2024, naïve camelCase"
    words = [pretoken_bytes(tok.pretokenizer, w) for w in pretokenize(build(tok.pretokenizer), text)]
    assert words == [w.encode() for w in regex.findall(read_pattern("tekken"), text)]
    assert b"2" in words and b"Case" in words  # single digits, words end before a capital


def test_tekken_recognised_by_content_under_another_name(tmp_path: Path) -> None:
    doc = tekken_doc(WORDS, pattern=read_pattern("tekken"), special=0, size=None)
    tok = load_tokenizer(write(tmp_path / "vocab.json", doc))
    assert tok.format == "tekken" and len(tok.merges) == len(WORDS)


def test_an_unknown_pattern_is_used_as_it_is(tmp_path: Path) -> None:
    pattern = r"\p{L}+|\p{N}{1,2}|\s+|[^\s\p{L}\p{N}]+"
    doc = tekken_doc(WORDS, pattern=pattern, special=0, size=None)
    tok = load_tokenizer(write(tmp_path / "tekken.json", doc))
    assert tok.pretokenizer.name == "tokenizer"
    words = pretokenize(build(tok.pretokenizer), "ab 12345 c")
    expected = [b"ab", b" ", b"12", b"34", b"5", b" ", b"c"]
    assert [pretoken_bytes(tok.pretokenizer, w) for w in words] == expected


def _broken(edit: str) -> dict[str, Any]:
    doc = tekken_doc(WORDS, pattern=read_pattern("tekken"), special=0, size=None)
    if edit == "base64":
        doc["vocab"][260]["token_bytes"] = "!!"
    elif edit == "no-vocab":
        doc["vocab"] = []
    elif edit == "limit":
        doc["config"]["default_vocab_size"] = 10
        doc["config"]["default_num_special_tokens"] = 10
    elif edit == "pattern":
        doc["config"]["pattern"] = 3
    return doc


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("base64", r"vocab\[260\] `token_bytes` '!!' is not base64"),
        ("no-vocab", "`vocab` must be a non-empty list"),
        ("limit", "leaves no rank"),
        ("pattern", "`config.pattern` must be a string"),
    ],
)
def test_broken_tekken_files_give_clear_errors(edit: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=message):
        load_tokenizer(write(tmp_path / "tekken.json", _broken(edit)))


def test_published_mistral_nemo(shared_tokenizers_dir: Path) -> None:
    tok = load_tokenizer(shared_tokenizers_dir / "mistral-nemo-tekken.json")
    assert tok.format == "tekken" and tok.pretokenizer.name == "tekken"
    assert len(tok.merges) == 131_072 - 1_000 - 256 and not tok.gaps


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2000), st.text(max_size=6), st.lists(st.integers(), max_size=2),
    st.sampled_from(["AA==", "=", "", "!!", "dGhl"]),
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_tekken_files_give_a_tokenizer_error_or_load(data: st.DataObject, tmp_path: Path) -> None:
    doc = tekken_doc(WORDS, pattern=read_pattern("tekken"), special=2, size=256 + 12)
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):
            key = data.draw(st.sampled_from(["pattern", "default_vocab_size", "default_num_special_tokens"]))
            doc["config"][key] = data.draw(VALUES)
        else:
            i = data.draw(st.integers(250, len(doc["vocab"]) - 1))
            key = data.draw(st.sampled_from(["rank", "token_bytes"]))
            doc["vocab"][i][key] = data.draw(VALUES)
    if data.draw(st.integers(0, 4)) == 0:
        doc[data.draw(st.sampled_from(["config", "vocab"]))] = data.draw(VALUES)
    try:
        tok = load_tokenizer(write(tmp_path / "tekken.json", doc))
    except MixinferError as exc:
        assert str(exc)
    else:
        assert tok.merges and all(a and b for a, b in tok.merges)
