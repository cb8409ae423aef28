"""Loading merges as byte pairs from every tokenizer source, and choosing the pretokenizer."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixinfer.errors import (
    MixinferError,
    TokenizerError,
    TokenizerNotFoundError,
    UsageError,
)
from mixinfer.pretokenizers import (
    GPT2_PATTERN,
    PRESETS,
    build,
    decode_byte_level,
    encode_byte_level,
    pretoken_bytes,
    pretokenize,
)
from mixinfer.tokenizer import load_tokenizer, recover_merges

# --------------------------------------------------------------------------------------------------
# Helpers


def hf_merges(doc: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """The merges of a byte-level tokenizer.json, decoded independently of the loader."""
    out = []
    for m in doc["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        out.append((decode_byte_level(a), decode_byte_level(b)))
    return out


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def write_tiktoken(path: Path, ranks: dict[bytes, int]) -> Path:
    lines = [f"{base64.b64encode(t).decode()} {r}" for t, r in sorted(ranks.items(), key=lambda kv: kv[1])]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def ranks_from_merges(merges: list[tuple[bytes, bytes]]) -> dict[bytes, int]:
    """tiktoken ranks: the 256 bytes first, then one token per merge in merge order."""
    ranks = {bytes([b]): b for b in range(256)}
    for a, b in merges:
        ranks[a + b] = len(ranks)
    return ranks


def apply_merges_in_order(word: bytes, merges: list[tuple[bytes, bytes]]) -> list[bytes]:
    """Reference BPE: apply every merge, in list order, to all its left-to-right occurrences."""
    parts = [word[i : i + 1] for i in range(len(word))]
    for a, b in merges:
        if len(parts) < 2:
            break
        if a + b not in word:  # cheap filter: a merge whose result is absent cannot apply
            continue
        out: list[bytes] = []
        i = 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                out.append(a + b)
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


@pytest.fixture(scope="module")
def small_doc(small_bpe_tokenizer_json: Path) -> dict[str, Any]:
    return json.loads(small_bpe_tokenizer_json.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def small_merges(small_doc: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    return hf_merges(small_doc)


# --------------------------------------------------------------------------------------------------
# tokenizer.json variants


def as_strings(doc: dict[str, Any]) -> dict[str, Any]:
    doc["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in doc["model"]["merges"]]
    return doc


def as_lists(doc: dict[str, Any]) -> dict[str, Any]:
    doc["model"]["merges"] = [m.split(" ") if isinstance(m, str) else m for m in doc["model"]["merges"]]
    return doc


def gpt2_style(doc: dict[str, Any]) -> dict[str, Any]:
    """Like GPT-2's published file: no model.type, merges as strings."""
    del doc["model"]["type"]
    doc["model"]["continuing_subword_prefix"] = ""
    doc["model"]["end_of_word_suffix"] = ""
    return as_strings(doc)


def no_type_lists(doc: dict[str, Any]) -> dict[str, Any]:
    del doc["model"]["type"]
    return as_lists(doc)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda d: d, id="as-saved"),
        pytest.param(as_strings, id="merges-as-strings"),
        pytest.param(as_lists, id="merges-as-lists"),
        pytest.param(gpt2_style, id="no-type-strings"),
        pytest.param(no_type_lists, id="no-type-lists"),
    ],
)
def test_tokenizer_json_variants_give_the_same_byte_merges(
    variant: Callable[[dict[str, Any]], dict[str, Any]],
    small_doc: dict[str, Any],
    small_merges: list[tuple[bytes, bytes]],
    tmp_path: Path,
) -> None:
    doc = variant(json.loads(json.dumps(small_doc)))
    tok = load_tokenizer(write_json(tmp_path / "tokenizer.json", doc))
    assert tok.byte_level and tok.alphabet == frozenset()
    assert tok.merges == small_merges
    assert tok.format == "tokenizer.json"
    # The file's own pipeline (Digits + ByteLevel) is used, i.e. the `default` preset's pipeline.
    assert tok.pretokenizer.name == "tokenizer" and tok.pretokenizer.byte_level
    assert tok.pretokenizer.fingerprint() == PRESETS["default"].fingerprint()


def test_byte_level_tokens_are_decoded_to_raw_bytes(tmp_path: Path) -> None:
    vocab = {encode_byte_level(bytes([b])): b for b in range(256)}
    for token in ["Ġt", "he", "Ġthe", "Ċ", "ĊĊ", "Ã©"]:
        vocab.setdefault(token, len(vocab))
    doc = {
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "decoder": None,
        "model": {"vocab": vocab, "merges": ["Ġ t", "h e", "Ġt he", "Ċ Ċ", "Ã ©"]},
    }
    tok = load_tokenizer(write_json(tmp_path / "gpt2ish.json", doc))
    assert tok.merges == [
        (b" ", b"t"),
        (b"h", b"e"),
        (b" t", b"he"),
        (b"\n", b"\n"),
        (b"\xc3", b"\xa9"),
    ]
    assert b"".join(tok.merges[4]).decode() == "é"


def test_directory_with_tokenizer_json(small_bpe_tokenizer_json: Path, small_merges: list) -> None:
    tok = load_tokenizer(small_bpe_tokenizer_json.parent)
    assert tok.merges == small_merges


def test_vocab_json_and_merges_txt(small_doc: dict[str, Any], small_merges: list, tmp_path: Path) -> None:
    write_json(tmp_path / "vocab.json", small_doc["model"]["vocab"])
    lines = ["#version: 0.2"] + [" ".join(m) for m in small_doc["model"]["merges"]]
    (tmp_path / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for source in (tmp_path, tmp_path / "merges.txt"):
        tok = load_tokenizer(source)
        assert tok.merges == small_merges and tok.byte_level
        assert tok.pretokenizer.name == "gpt2"
        assert any("preset `gpt2`" in n for n in tok.notes)
    # merges.txt alone, somewhere without a vocab.json, under another name.
    alone = tmp_path / "sub"
    alone.mkdir()
    shutil.copy(tmp_path / "merges.txt", alone / "bpe-merges.txt")
    tok = load_tokenizer(alone / "bpe-merges.txt", pretokenizer="default")
    assert tok.merges == small_merges and tok.pretokenizer.name == "default"
    assert tok.format == "merges.txt"


def test_pretokenizer_override_replaces_the_files_pipeline(small_bpe_tokenizer_json: Path) -> None:
    tok = load_tokenizer(small_bpe_tokenizer_json, pretokenizer="cl100k")
    assert tok.pretokenizer.name == "cl100k"
    assert tok.pretokenizer.fingerprint() == PRESETS["cl100k"].fingerprint()
    assert any("--pretokenizer" in n and "cl100k" in n for n in tok.notes)
    with pytest.raises(UsageError, match="valid names"):
        load_tokenizer(small_bpe_tokenizer_json, pretokenizer="cl200k")


# --------------------------------------------------------------------------------------------------
# SentencePiece-style (character-level) files


def sentencepiece_doc(**overrides: Any) -> dict[str, Any]:
    """A tiny hand-made Llama-style conversion: ▁ for spaces, <0xNN> byte fallback."""
    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t in ["▁", "t", "h", "e", "é", "▁t", "he", "▁the", "▁th", "<0x0A><0x0A>"]:
        vocab[t] = len(vocab)
    doc: dict[str, Any] = {
        "version": "1.0",
        "added_tokens": [],
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        },
        "pre_tokenizer": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
            ],
        },
        "model": {
            "type": "BPE",
            "unk_token": "<unk>",
            "byte_fallback": True,
            "fuse_unk": True,
            "vocab": vocab,
            "merges": ["▁ t", "h e", "▁t he", "▁t h", ["<0x0A>", "<0x0A>"]],
        },
    }
    doc.update(overrides)
    return doc


def test_sentencepiece_conversion_keeps_utf8_and_decodes_byte_fallback(tmp_path: Path) -> None:
    doc = sentencepiece_doc()
    tok = load_tokenizer(write_json(tmp_path / "tokenizer.json", doc))
    sp = "▁".encode()
    assert not tok.byte_level
    assert tok.merges == [
        (sp, b"t"),
        (b"h", b"e"),
        (sp + b"t", b"he"),
        (sp + b"t", b"h"),
        (b"\n", b"\n"),
    ]
    assert tok.alphabet == frozenset({sp, b"t", b"h", b"e", "é".encode()})
    assert tok.pretokenizer.name == "llama" and not tok.pretokenizer.byte_level
    note = next(n for n in tok.notes if n.startswith("pretokenizer:"))
    assert "no pre_tokenizer" in note and "`llama`" in note and "--pretokenizer" in note
    assert "normalizer is the same as the file's" in note
    assert pretokenize(build(tok.pretokenizer), "the 42") == ["▁the", "▁", "4", "2"]


def test_a_replaced_normalizer_is_reported(tmp_path: Path) -> None:
    doc = sentencepiece_doc(normalizer={"type": "NFKC"})
    tok = load_tokenizer(write_json(tmp_path / "tokenizer.json", doc))
    assert tok.pretokenizer.name == "llama"
    note = next(n for n in tok.notes if n.startswith("pretokenizer:"))
    assert '({"type":"NFKC"}) is not applied' in note


def test_gemma_style_file_gets_the_gemma_preset(tmp_path: Path) -> None:
    # transformers' Gemma conversion: Replace(" ", "▁") and a Split on " " that never fires.
    doc = sentencepiece_doc(
        normalizer={"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
        pre_tokenizer={
            "type": "Split",
            "pattern": {"String": " "},
            "behavior": "MergedWithPrevious",
            "invert": False,
        },  # fmt: skip
    )
    tok = load_tokenizer(write_json(tmp_path / "tokenizer.json", doc))
    assert tok.pretokenizer.name == "gemma"
    assert any("never splits" in n and "`gemma`" in n for n in tok.notes)


def test_metaspace_without_split_gets_the_llama_preset(tmp_path: Path) -> None:
    # Newer (non-legacy) Llama conversions: Metaspace(prepend_scheme=first, split=false).
    meta = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": False}
    doc = sentencepiece_doc(normalizer=None, pre_tokenizer=meta)
    tok = load_tokenizer(write_json(tmp_path / "tokenizer.json", doc))
    assert tok.pretokenizer.name == "llama"
    # A SentencePiece file whose own pre_tokenizer does split is used as is.
    doc = sentencepiece_doc(normalizer=None, pre_tokenizer={**meta, "split": True})
    tok = load_tokenizer(write_json(tmp_path / "tokenizer.json", doc))
    assert tok.pretokenizer.name == "tokenizer"


# --------------------------------------------------------------------------------------------------
# Published tokenizers (../shared/tokenizers)

SHARED = {"gpt-2": 50000, "gpt-neox": 50009, "claude": 64739, "llama": 61249, "mistral": 58980}


@pytest.mark.parametrize(("name", "count"), [pytest.param(k, v, id=k) for k, v in SHARED.items()])
def test_published_tokenizers_load(name: str, count: int, shared_tokenizers_dir: Path) -> None:
    path = shared_tokenizers_dir / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    tok = load_tokenizer(path)
    assert len(tok.merges) == count
    assert all(isinstance(a, bytes) and isinstance(b, bytes) and a and b for a, b in tok.merges)
    normalizer = json.loads(tok.pretokenizer.normalizer_json or "null")
    if name in ("llama", "mistral"):
        assert not tok.byte_level and tok.pretokenizer.name == name
        assert "▁".encode() in tok.alphabet and tok.merges[0] == ("▁".encode(), b"t")
        assert any(n.startswith("pretokenizer:") and f"`{name}`" in n for n in tok.notes)
    else:
        assert tok.byte_level and tok.pretokenizer.name == "tokenizer"
        expected = {"gpt-2": None, "gpt-neox": {"type": "NFC"}, "claude": {"type": "NFKC"}}[name]
        assert normalizer == expected
    if name == "gpt-2":
        assert tok.merges[:2] == [(b" ", b"t"), (b" ", b"a")]


# --------------------------------------------------------------------------------------------------
# tiktoken


def test_merges_recovered_from_tiktoken_ranks_reproduce_tiktoken(
    small_merges: list[tuple[bytes, bytes]], license_text: str, tmp_path: Path
) -> None:
    import tiktoken

    ranks = ranks_from_merges(small_merges)
    assert len(ranks) == 256 + len(small_merges)  # every merge makes a new token
    tok = load_tokenizer(write_tiktoken(tmp_path / "small.tiktoken", ranks))
    assert tok.merges == small_merges
    assert tok.byte_level and tok.format == "tiktoken-file"
    assert tok.pretokenizer.name == "default"
    assert any("do not identify" in n and "`default`" in n for n in tok.notes)

    enc = tiktoken.Encoding(name="small", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={})
    text = license_text[100_000:130_000]
    expected = [enc.decode_single_token_bytes(t) for t in enc.encode(text, disallowed_special=())]
    cache: dict[str, list[bytes]] = {}
    ours: list[bytes] = []
    for word in regex.findall(GPT2_PATTERN, text):
        if word not in cache:
            cache[word] = apply_merges_in_order(word.encode("utf-8"), tok.merges)
        ours.extend(cache[word])
    assert ours == expected
    assert len(expected) < len(text.encode()) / 2  # the merges really did something


@pytest.mark.parametrize(
    ("filename", "preset_name"),
    [
        pytest.param("cl100k_base.tiktoken", "cl100k", id="cl100k"),
        pytest.param("o200k_base.tiktoken", "o200k", id="o200k"),
        pytest.param("p50k_base.tiktoken", "gpt2", id="p50k"),
        pytest.param("r50k_base.tiktoken", "gpt2", id="r50k"),
        pytest.param("mine.tiktoken", "default", id="other"),
    ],
)
def test_tiktoken_file_preset_follows_the_file_name(
    filename: str, preset_name: str, small_merges: list, tmp_path: Path
) -> None:
    tok = load_tokenizer(write_tiktoken(tmp_path / filename, ranks_from_merges(small_merges[:50])))
    assert tok.pretokenizer.name == preset_name
    assert len(tok.merges) == 50


def test_tiktoken_registry_name_uses_the_encodings_pat_str(
    small_merges: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken

    pat = r"""'s|'t| ?\p{L}++| ?\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++|\s+(?!\S)|\s+"""
    enc = tiktoken.Encoding(
        name="tiny_base",
        pat_str=pat,
        mergeable_ranks=ranks_from_merges(small_merges),
        special_tokens={},
    )
    monkeypatch.setattr(tiktoken, "list_encoding_names", lambda: ["tiny_base"])
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: enc)
    tok = load_tokenizer("tiktoken:tiny_base", offline=True)
    assert tok.merges == small_merges and tok.format == "tiktoken"
    assert tok.pretokenizer.name == "tokenizer" and tok.pretokenizer.byte_level
    words = pretokenize(build(tok.pretokenizer), "Hello 12345 world")
    assert [pretoken_bytes(tok.pretokenizer, w) for w in words] == [
        w.encode() for w in regex.findall(pat, "Hello 12345 world")
    ]


def test_recover_merges_on_the_published_gpt2_vocabulary(shared_tokenizers_dir: Path) -> None:
    doc = json.loads((shared_tokenizers_dir / "gpt-2.json").read_text(encoding="utf-8"))
    ranks = {decode_byte_level(t): i for t, i in doc["model"]["vocab"].items() if t != "<|endoftext|>"}
    assert recover_merges(ranks) == hf_merges(doc)


def test_recover_merges_rejects_underivable_tokens() -> None:
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"abc"] = 256  # no "ab" or "bc" below it
    with pytest.raises(TokenizerError, match="cannot be built"):
        recover_merges(ranks, "x.tiktoken")


# --------------------------------------------------------------------------------------------------
# Hugging Face Hub (never the network: offline mode, a hand-made cache, or a fake downloader)


def make_hub_cache(root: Path, repo_id: str, files: dict[str, Path]) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, src in files.items():
        shutil.copy(src, snapshot / name)


def test_hub_id_is_read_from_the_cache_when_offline(
    small_bpe_tokenizer_json: Path,
    small_merges: list,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_hub_cache(tmp_path, "acme/tiny-bpe", {"tokenizer.json": small_bpe_tokenizer_json})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = load_tokenizer("acme/tiny-bpe")  # offline=None follows HF_HUB_OFFLINE
    assert tok.merges == small_merges and tok.source == "acme/tiny-bpe"
    assert any("cache" in n for n in tok.notes)


def test_hub_falls_back_to_the_cache_when_the_download_fails(
    small_bpe_tokenizer_json: Path, small_merges: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    calls: list[bool] = []

    def fake_download(repo_id: str, filename: str, **kw: Any) -> str:
        calls.append(bool(kw.get("local_files_only")))
        if not kw.get("local_files_only"):
            raise ConnectionError("no network here")
        return str(small_bpe_tokenizer_json)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    tok = load_tokenizer("acme/tiny-bpe", offline=False)
    assert tok.merges == small_merges and calls == [False, True]


def test_hub_repository_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    def fake_download(repo_id: str, filename: str, **kw: Any) -> str:
        exc = RepositoryNotFoundError.__new__(RepositoryNotFoundError)
        Exception.__init__(exc, "404")
        raise exc

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    with pytest.raises(TokenizerNotFoundError, match="no such repository"):
        load_tokenizer("acme/typo-bpe", offline=False)


# --------------------------------------------------------------------------------------------------
# Bad input


def hf_saved(model: Any) -> Callable[[Path, Path], str]:
    def make(tmp: Path, small: Path) -> str:
        from tokenizers import Tokenizer

        path = tmp / "tokenizer.json"
        Tokenizer(model()).save(str(path))
        return str(path)

    return make


def edited(edit: Callable[[dict[str, Any]], object]) -> Callable[[Path, Path], str]:
    def make(tmp: Path, small: Path) -> str:
        doc = json.loads(small.read_text(encoding="utf-8"))
        edit(doc)
        return str(write_json(tmp / "tokenizer.json", doc))

    return make


def text_file(name: str, content: str | bytes) -> Callable[[Path, Path], str]:
    def make(tmp: Path, small: Path) -> str:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return str(path)

    return make


def unbuildable(doc: dict[str, Any]) -> None:
    # "ĠĠĠĠ" is in the vocabulary, but using it before any merge made it is impossible.
    merges = doc["model"]["merges"]
    merges.insert(0, ["ĠĠĠĠ", "ĠĠĠĠ"])
    doc["model"]["vocab"]["ĠĠĠĠĠĠĠĠ"] = len(doc["model"]["vocab"])


def wordpiece() -> Any:
    from tokenizers import models

    return models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]")


def unigram() -> Any:
    from tokenizers import models

    return models.Unigram([("<unk>", 0.0), ("a", -1.0), ("b", -2.0)], 0)


def wordlevel() -> Any:
    from tokenizers import models

    return models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]")


A = "YWI="  # base64 of b"ab"

BAD_INPUTS = [
    pytest.param(lambda t, s: str(t / "nope" / "tokenizer.json"), TokenizerNotFoundError,
                 "does not exist", id="missing-path"),
    pytest.param(text_file("tokenizer.json", "this is not json"), TokenizerError,
                 "not valid JSON", id="not-json"),
    pytest.param(lambda t, s: text_file("tokenizer.json", s.read_text()[:5000])(t, s),
                 TokenizerError, "truncated", id="truncated-json"),
    pytest.param(text_file("tokenizer.json", b"\xff\xfe{}"), TokenizerError, "not UTF-8",
                 id="not-utf8"),
    pytest.param(text_file("tokenizer.json", "[1, 2]"), TokenizerError, "JSON object",
                 id="json-array"),
    pytest.param(hf_saved(wordpiece), TokenizerError, "'WordPiece', not BPE", id="wordpiece"),
    pytest.param(hf_saved(unigram), TokenizerError, "'Unigram', not BPE", id="unigram"),
    pytest.param(hf_saved(wordlevel), TokenizerError, "'WordLevel', not BPE", id="wordlevel"),
    pytest.param(edited(lambda d: d["model"].update(merges=[])), TokenizerError, "empty",
                 id="empty-merges"),
    pytest.param(edited(lambda d: (d["model"].pop("type"), d["model"].pop("merges"))),
                 TokenizerError, "no `type`", id="no-type-no-merges"),
    pytest.param(edited(unbuildable), TokenizerError, r"merge #0 .*earlier merge",
                 id="unbuildable-merge"),
    pytest.param(edited(lambda d: d["model"]["merges"].insert(3, ["Ġ", "zzz"])), TokenizerError,
                 r"merge #3 .*not in `model.vocab`", id="merge-token-not-in-vocab"),
    pytest.param(edited(lambda d: d["model"]["merges"].insert(1, ["a", "b", "c"])),
                 TokenizerError, "merge #1 .*not a pair", id="merge-of-three"),
    pytest.param(edited(lambda d: d["model"].update(end_of_word_suffix="</w>")), TokenizerError,
                 "end_of_word_suffix", id="word-suffix"),
    pytest.param(edited(lambda d: d.update(pre_tokenizer={"type": "NoSuchThing"})),
                 TokenizerError, "--pretokenizer", id="unsupported-pre-tokenizer"),
    pytest.param(text_file("x.tiktoken", f"{A} 0\n!!notbase64 1\n"), TokenizerError,
                 r"x.tiktoken, line 2: .*not base64", id="tiktoken-not-base64"),
    pytest.param(text_file("x.tiktoken", f"{A} 0\n{A}\n"), TokenizerError,
                 r"x.tiktoken, line 2: expected", id="tiktoken-no-rank"),
    pytest.param(text_file("x.tiktoken", f"{A} 0\nYWM= x1\n"), TokenizerError,
                 r"line 2: rank 'x1' is not an integer", id="tiktoken-bad-rank"),
    pytest.param(text_file("x.tiktoken", "YQ== 0\nYg== 1\nYWI= 2\nYWI= 3\n"), TokenizerError,
                 r"line 4: token b'ab' appears twice", id="tiktoken-duplicate"),
    pytest.param(text_file("merges.txt", "#version: 0.2\na b\nab c d\n"), TokenizerError,
                 r"merges.txt, line 3", id="merges-txt-bad-line"),
    pytest.param(text_file("merges.txt", "#version: 0.2\n▁ t\n"), TokenizerError,
                 r"merges.txt, line 2: .*GPT-2 byte alphabet", id="merges-txt-not-byte-level"),
    pytest.param(lambda t, s: str(t), TokenizerNotFoundError, "without tokenizer.json",
                 id="empty-directory"),
    pytest.param(lambda t, s: "tiktoken:nope_base", TokenizerError,
                 "unknown tiktoken encoding 'nope_base'.*cl100k_base", id="unknown-tiktoken"),
    pytest.param(lambda t, s: "acme/not-cached-anywhere", TokenizerNotFoundError,
                 "not a local path.*Hugging Face", id="hub-offline-not-cached"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "error", "message"), BAD_INPUTS)
def test_bad_input_raises_a_clear_error(
    make: Callable[[Path, Path], str],
    error: type[Exception],
    message: str,
    small_bpe_tokenizer_json: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    source = make(tmp_path, small_bpe_tokenizer_json)
    with pytest.raises(error, match=message):
        load_tokenizer(source, offline=True)


def test_tiktoken_registry_offline_without_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken.registry

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    with pytest.raises(TokenizerNotFoundError, match="TIKTOKEN_CACHE_DIR") as info:
        load_tokenizer("tiktoken:cl100k_base", offline=True)
    assert ".tiktoken file" in str(info.value)


# --------------------------------------------------------------------------------------------------
# Robustness: mutated files give a MixinferError or load, never another exception

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.sampled_from(["\ud800", "▁", "Ġ", "<0x41>", "Ġ t", "BPE", "WordPiece"]),
    st.lists(st.text(max_size=3), max_size=3),
    st.dictionaries(st.sampled_from(["type", "a", "merges", "vocab"]), st.text(max_size=3), max_size=2),
)


@st.composite
def mutated_documents(draw: st.DrawFn, base: str) -> str:
    doc = json.loads(base)
    for _ in range(draw(st.integers(1, 3))):
        # Walk down from the root, preferring the parts the loader reads.
        parent: Any = None
        key: Any = None
        node: Any = doc
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)) > 0:
            if isinstance(node, dict):
                keys = sorted(node)
                k = draw(st.sampled_from(keys))
            else:
                k = draw(st.integers(0, min(len(node), 8) - 1))
            parent, key, node = node, k, node[k]
        if parent is None:
            continue
        if draw(st.booleans()):
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        else:
            parent[key] = draw(JSON_VALUES)
    text = json.dumps(doc)  # ASCII, so that lone surrogates survive as \ud800 escapes
    if draw(st.integers(0, 9)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@pytest.fixture(scope="module")
def tiny_doc_text(small_doc: dict[str, Any]) -> str:
    doc = json.loads(json.dumps(small_doc))
    merges = doc["model"]["merges"][:40]
    keep = {"".join(m) for m in merges} | {t for m in merges for t in m}
    doc["model"]["merges"] = merges
    doc["model"]["vocab"] = {t: i for t, i in doc["model"]["vocab"].items() if i < 256 or t in keep}
    return json.dumps(doc, ensure_ascii=False)


def test_mutation_base_document_loads(tiny_doc_text: str, tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(tiny_doc_text, encoding="utf-8")
    assert len(load_tokenizer(path).merges) == 40


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_tokenizer_json_never_raises_anything_else(
    data: st.DataObject, tiny_doc_text: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    text = data.draw(mutated_documents(tiny_doc_text))
    path = tmp_path_factory.mktemp("mutated") / "tokenizer.json"
    path.write_text(text, encoding="utf-8")
    try:
        tok = load_tokenizer(path, offline=True)
    except MixinferError as exc:
        assert str(exc).encode("utf-8")
    else:
        assert tok.merges and all(a and b for a, b in tok.merges)
        assert tok.pretokenizer.fingerprint() and all(n.encode("utf-8") for n in tok.notes)


def test_lone_surrogates_in_a_file_never_escape_as_unicode_errors(tmp_path: Path) -> None:
    doc = sentencepiece_doc(normalizer={"type": "Replace", "pattern": {"String": "\ud800"},
                                        "content": "x"})  # fmt: skip
    doc["model"]["vocab"]["\ud800"] = len(doc["model"]["vocab"])
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc), encoding="ascii")
    tok = load_tokenizer(path)
    assert all(n.encode("utf-8") for n in tok.notes) and tok.pretokenizer.fingerprint()
    doc["model"]["merges"].append(["\ud800", "t"])
    doc["model"]["vocab"]["\ud800t"] = len(doc["model"]["vocab"])
    path.write_text(json.dumps(doc), encoding="ascii")
    with pytest.raises(TokenizerError, match="merge #5"):
        load_tokenizer(path)
