"""Merge-list cleaning: SentencePiece conversions reduced to one merge per token, in creation order.

The small cases build a ``tokenizer.json`` the way Hugging Face converts a SentencePiece BPE model
(every split of a piece into two vocabulary pieces becomes a merge; merges sorted by the piece's
score, ties by the ids of the parts), from a known list of *training* merges. Cleaning must give
back exactly the training merges.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mixinfer.cleaning import CleaningReport, clean_merges
from mixinfer.errors import TokenizerError
from mixinfer.options import Options
from mixinfer.stages import clean as prepare_stage
from mixinfer.tokenizer import load_tokenizer, tokenizer_from_json

SP = "▁"


def sentencepiece_json(
    training: list[tuple[str, str]],
    chars: str,
    *,
    user_defined: list[str] | None = None,
    rescored: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A tokenizer.json as HF's SentencePiece converter writes it.

    Vocabulary layout as in a SentencePiece model: <unk>, <s>, </s>, user-defined pieces, the 256
    byte-fallback pieces, the learned pieces in order of creation (score = -id), then the single
    characters. ``rescored`` gives some learned pieces another score (Llama's runs of ``▁`` have
    -1e9); user-defined pieces score 0.
    """
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    scores: dict[str, float] = {}
    for piece in user_defined or []:
        vocab[piece] = len(vocab)
        scores[piece] = 0.0
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for a, b in training:
        vocab[a + b] = len(vocab)
        scores[a + b] = -float(vocab[a + b])
    for ch in chars:
        vocab.setdefault(ch, len(vocab))
    for piece, score in (rescored or {}).items():
        scores[piece] = score
    merges: list[tuple[str, str, float]] = []
    for piece, score in scores.items():
        local = [
            (piece[:i], piece[i:], score)
            for i in range(1, len(piece))
            if piece[:i] in vocab and piece[i:] in vocab
        ]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)
    return {
        "version": "1.0",
        "added_tokens": [],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SP},
                {"type": "Replace", "pattern": {"String": " "}, "content": SP},
            ],
        },
        "pre_tokenizer": None,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b, _ in merges],
        },
    }


def as_bytes(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(a.encode(), b.encode()) for a, b in pairs]


# The training merges of a toy SentencePiece BPE: pieces created later ("th", "▁th", "the", "nd")
# give earlier pieces ("▁the", "and", "▁and") extra splits in the converted list, some of them
# using a token that only a later merge creates.
TRAINING = [
    (SP, "t"),
    ("h", "e"),
    (SP + "t", "he"),  # ▁the; converted cluster also holds "▁ the", "▁th e"
    ("a", "n"),
    (SP, "a"),
    ("an", "d"),  # and; cluster also holds "a nd"
    ("t", "h"),
    (SP + "t", "h"),  # ▁th
    ("t", "he"),  # the: "he" formed before "th"; cluster also holds "th e"
    ("n", "d"),
    (SP, "and"),  # ▁and: BPE on ▁ a n d gives ▁ + and (an, then and); cluster has "▁a nd"
    ("e", "r"),
    ("he", "r"),  # her; cluster also holds "h er"
    (SP + "the", "r"),  # ▁ther: cluster holds "▁t her", "▁th er", "▁the r"
]
CHARS = SP + "thean dr"


def test_sentencepiece_clusters_keep_exactly_the_training_merges() -> None:
    data = sentencepiece_json(TRAINING, CHARS)
    tok = tokenizer_from_json(data, source="toy")
    assert len(tok.merges) > len(TRAINING)  # the conversion added redundant merges
    cleaned, report = clean_merges(tok)
    assert cleaned.merges == as_bytes(TRAINING)
    assert report.merges_before == len(tok.merges)
    assert report.merges_after == len(TRAINING)
    assert report.removed["redundant"] == len(tok.merges) - len(TRAINING)
    assert report.removed["inserted"] == report.removed["unreachable"] == 0
    assert report.order == "vocabulary id"
    assert report.ambiguous == 0
    assert any(e.startswith(f"{SP} the") or e.startswith(f"{SP}th e") for e in report.examples["redundant"])
    # Every kept merge's parts exist before it (order of creation).
    known = {ch.encode() for ch in CHARS}
    for a, b in cleaned.merges:
        assert a in known and b in known
        known.add(a + b)


def test_cleaned_list_encodes_like_the_hf_tokenizer() -> None:
    """Plain BPE with the cleaned list gives the same tokens as HF with the converted list."""
    from tokenizers import Tokenizer

    from mixinfer.cleaning import _bpe_parts, _initial_symbols

    data = sentencepiece_json(TRAINING, CHARS)
    hf = Tokenizer.from_str(json.dumps(data))
    cleaned, _ = clean_merges(tokenizer_from_json(data, source="toy"))
    ranks = {pair: i for i, pair in enumerate(cleaned.merges)}
    words = [SP + "the", SP + "and", "and", SP + "ther", "ther", SP + "tander", "hether", "nd"]
    for word in words:
        expected = [t.value for t in hf.model.tokenize(word)]
        got = [p.decode() for p in _bpe_parts(_initial_symbols(cleaned, word.encode()), ranks)]
        assert got == expected, word


def test_rescored_whitespace_runs_are_inserted_merges() -> None:
    """Llama-style: runs of ▁ numbered early but listed last (score -1e9) are skipped."""
    training = [*TRAINING[:3], (SP, SP), *TRAINING[3:5], (SP + SP, SP + SP), *TRAINING[5:]]
    data = sentencepiece_json(training, CHARS, rescored={SP * 2: -1e9, SP * 4: -1e9})
    merges = data["model"]["merges"]
    assert merges[-1].replace(" ", "") == SP * 4  # listed at the end, ids among the first
    tok = tokenizer_from_json(data, source="toy")
    cleaned, report = clean_merges(tok)
    assert cleaned.merges == as_bytes(TRAINING)
    # "▁ ▁", "▁▁ ▁▁" and the other splits of "▁▁▁▁" ("▁ ▁▁▁" needs no "▁▁▁": not in vocab).
    assert report.removed["inserted"] == 2
    assert all(e.startswith(SP) for e in report.examples["inserted"])
    assert "inserted" in report.summary()


def test_user_defined_pieces_before_byte_fallback_are_inserted_merges() -> None:
    """Gemma-style: user-defined whitespace pieces (ids before <0x00>) lead the list; skipped."""
    data = sentencepiece_json(TRAINING, CHARS + "\n\t", user_defined=["\n\n", "\t\t", "\n\n\n"])
    assert data["model"]["merges"][0] == "\n \n"  # score 0: the converted list starts with them
    tok = tokenizer_from_json(data, source="toy")
    assert tok.reserved == {b"\n\n", b"\t\t", b"\n\n\n"}
    cleaned, report = clean_merges(tok)
    assert cleaned.merges == as_bytes(TRAINING)
    assert report.removed["inserted"] == 4  # "\n \n", "\t \t", "\n\n \n", "\n \n\n"


def test_unreachable_and_duplicate_merges() -> None:
    tok = tokenizer_from_json(sentencepiece_json(TRAINING, CHARS), source="toy")
    # A duplicate of the first merge, and a token whose only split uses a part never produced.
    tok.merges = [tok.merges[0], *tok.merges, tok.merges[0]]
    cleaned, report = clean_merges(tok)
    assert cleaned.merges == as_bytes(TRAINING)
    assert report.removed["duplicate"] == 2
    tok2 = tokenizer_from_json(sentencepiece_json(TRAINING, CHARS), source="toy")
    tok2.token_ids = None  # no vocabulary: the merge list order is used
    tok2.merges = [(b"xy", b"z"), *tok2.merges]
    cleaned2, report2 = clean_merges(tok2)
    assert report2.removed["unreachable"] == 1
    assert report2.order == "merge list"
    assert cleaned2.merges == as_bytes(TRAINING)


def test_trained_byte_level_list_is_left_alone(small_bpe_tokenizer_json) -> None:
    tok = load_tokenizer(small_bpe_tokenizer_json)
    cleaned, report = clean_merges(tok)
    assert cleaned is tok
    assert report.total_removed == 0
    assert "nothing to remove" in report.summary()
    again = CleaningReport.from_dict(report.to_dict())
    assert again.summary() == report.summary()


def test_no_clean_refuses_a_list_out_of_creation_order() -> None:
    tok = tokenizer_from_json(sentencepiece_json(TRAINING, CHARS), source="toy")
    with pytest.raises(TokenizerError, match="--no-clean"):
        prepare_stage(tok, Options(clean=False))
    cleaned, report = prepare_stage(tok, Options(clean=True))
    assert report.enabled and len(cleaned.merges) == len(TRAINING)


def test_real_llama_and_mistral(shared_tokenizers_dir, license_paragraph: str) -> None:
    from tokenizers import Tokenizer

    from mixinfer.cleaning import _bpe_parts, _initial_symbols

    expected = {"llama": (61249, 29597, 15), "mistral": (58980, 28432, 14)}
    for name, (before, after, runs) in expected.items():
        path = shared_tokenizers_dir / f"{name}.json"
        tok = load_tokenizer(path)
        cleaned, report = clean_merges(tok)
        data = json.loads(path.read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        added = {t["content"] for t in data["added_tokens"]}
        learned = [
            k
            for k in vocab
            if len(k) > 1 and k not in added and not re.match(r"^<0x..>$|^\[control_\d+\]$", k)
        ]
        assert (report.merges_before, report.merges_after) == (before, after)
        # One merge per multi-character piece the list produces, except the hand-inserted runs of
        # ▁; for Llama that is the whole vocabulary minus special, byte-fallback and
        # single-character pieces (Mistral has more special pieces, e.g. [REFERENCE_DOC_n]).
        assert report.merges_after == len({a + b for a, b in tok.merges}) - runs
        if name == "llama":
            assert report.merges_after == len(learned) - runs
        assert report.examples["inserted"][0].startswith(f"{SP} {SP}")
        known = set(tok.alphabet) | {bytes([b]) for b in range(256)}
        for a, b in cleaned.merges:
            assert a in known and b in known
            known.add(a + b)
        # Same tokens as the HF tokenizer with the full converted list.
        hf = Tokenizer.from_file(str(path)).model
        ranks = {pair: i for i, pair in enumerate(cleaned.merges)}
        for word in (SP + w for w in license_paragraph.split()):
            ref = [t.value for t in hf.tokenize(word)]
            if any(r.startswith("<0x") for r in ref):
                continue
            got = [p.decode() for p in _bpe_parts(_initial_symbols(cleaned, word.encode()), ranks)]
            assert got == ref, word


# --------------------------------------------------------------------------------------------------
# Vocabulary ids that do not follow creation (issue 17 item 2)


def _shuffled_ids(doc: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The same tokenizer.json with its ``model.vocab`` ids renumbered at random."""
    import random

    shuffled = json.loads(json.dumps(doc))
    vocab = shuffled["model"]["vocab"]
    ids = list(vocab.values())
    random.Random(seed).shuffle(ids)
    shuffled["model"]["vocab"] = dict(zip(vocab, ids, strict=True))
    return shuffled


def test_shuffled_vocabulary_ids_do_not_change_the_cleaned_list(small_bpe_tokenizer_json) -> None:
    doc = json.loads(small_bpe_tokenizer_json.read_text(encoding="utf-8"))
    plain_tok = tokenizer_from_json(doc, source="plain")
    shuffled_tok = tokenizer_from_json(_shuffled_ids(doc), source="shuffled")
    assert shuffled_tok.token_ids != plain_tok.token_ids
    plain, plain_report = clean_merges(plain_tok)
    cleaned, report = clean_merges(shuffled_tok)
    assert cleaned.merges == plain.merges == plain_tok.merges
    assert report.removed == plain_report.removed and report.total_removed == 0
    assert report.order == "merge list" and plain_report.order == "vocabulary id"
    assert not plain_report.warnings
    assert len(report.warnings) == 1 and "vocabulary ids are not in the order" in report.warnings[0]
    again = CleaningReport.from_dict(report.to_dict())
    assert again.warnings == report.warnings and again.summary() == report.summary()
    assert "1 warning(s)" in report.summary()


def test_a_large_share_of_removed_merges_is_a_warning() -> None:
    """Ids mostly in order, but a tenth of the tokens moved: those go, loudly."""
    data = sentencepiece_json(TRAINING, CHARS)
    tok = tokenizer_from_json(data, source="toy")
    assert tok.token_ids is not None
    ids = dict(tok.token_ids)
    late = (SP + "the").encode()  # renumber one learned piece past every other: out of order
    ids[late] = max(ids.values()) + 1
    tok.token_ids = ids
    _, report = clean_merges(tok)
    assert report.removed["inserted"] >= 1 and report.order == "vocabulary id"
    assert any("far more than" in w for w in report.warnings)
    assert "warnings" in report.to_dict()


def test_shuffled_ids_give_the_same_mixture(small_bpe_tokenizer_json, tmp_path) -> None:
    from pathlib import Path

    import mixinfer

    general = Path(__file__).resolve().parents[1] / "data_samples" / "general"
    cats = ["en", "de", "code"]
    if not all((general / c).is_dir() for c in cats):
        pytest.skip("bundled samples data_samples/general are not built")
    samples = tmp_path / "samples"
    for c in cats:
        (samples / c).mkdir(parents=True)
        for src in sorted((general / c).glob("*.txt.gz"))[:3]:
            (samples / c / src.name).write_bytes(src.read_bytes())
    doc = json.loads(small_bpe_tokenizer_json.read_text(encoding="utf-8"))
    shuffled_path = tmp_path / "shuffled.json"
    shuffled_path.write_text(json.dumps(_shuffled_ids(doc)), encoding="utf-8")
    runs = [
        mixinfer.infer(path, samples, merges=300, max_bytes=150_000, use_cache=False, workers=1)
        for path in (small_bpe_tokenizer_json, shuffled_path)
    ]
    assert runs[0].merges_used == runs[1].merges_used == 300
    assert runs[1].proportions == pytest.approx(runs[0].proportions, abs=1e-9)
    assert any("vocabulary ids are not in the order" in w for w in runs[1].warnings)
    assert not any("vocabulary ids" in w for w in runs[0].warnings)


def test_gap_positions_follow_the_merges_cleaning_removes() -> None:
    from mixinfer.pretokenizers import PRESETS
    from mixinfer.tokenizer import BPETokenizer

    merges = [(b"a", b"b"), (b"xy", b"z"), (b"ab", b"c"), (b"c", b"d"), (b"x", b"y")]
    tok = BPETokenizer("toy", merges, True, PRESETS["gpt2"], gaps=(1, 3, 5))
    cleaned, report = clean_merges(tok)
    assert report.removed["unreachable"] == 1  # "xy z" before any merge made "xy"
    assert cleaned.merges == [merges[0], merges[2], merges[3], merges[4]]
    assert cleaned.gaps == (1, 2, 4) and cleaned.gaps_within(2) == 1
