"""tiktoken ranks: tokens no merge builds are skipped with a note, empty tokens skipped (issue 12 item 1)."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixinfer.errors import MixinferError, TokenizerError
from mixinfer.formats.ranks import recover
from mixinfer.tokenizer import load_tokenizer, recover_merges


def write_ranks(path: Path, tokens: list[bytes], *, empty_last: bool = False) -> Path:
    """The 256 single bytes, then ``tokens``; with ``empty_last`` a final ``= N`` line (Whisper)."""
    lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    lines += [f"{base64.b64encode(t).decode()} {256 + i}" for i, t in enumerate(tokens)]
    if empty_last:
        lines.append(f"= {256 + len(tokens)}")
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


# b"xyz" cannot be built from two lower-ranked tokens ("xy" and "yz" do not exist): a token that
# tiktoken only looks up whole. 23 ordinary tokens follow, so the skipped share stays small.
WORDS = [b"th", b"the", b"xyz", b" the", b"in", b"ing", b" a", b"an", b" an", b"and", b" and"]
MORE = [b"er", b"her", b" her", b"on", b" on", b"at", b" at", b"is", b" is", b"it", b" it", b"to"]


def test_a_token_no_merge_builds_and_an_empty_token_are_skipped_with_notes(tmp_path: Path) -> None:
    path = write_ranks(tmp_path / "tokenizer.model", WORDS + MORE, empty_last=True)
    tok = load_tokenizer(path)
    assert tok.format == "tiktoken-file"
    expected = [(b"t", b"h"), (b"th", b"e"), (b" ", b"the")]
    assert tok.merges[:3] == expected and len(tok.merges) == len(WORDS) + len(MORE) - 1
    assert b"xyz" not in {a + b for a, b in tok.merges}
    assert tok.gaps == (2,)  # it sat where merge #2 now is
    assert tok.gaps_within(2) == 0 and tok.gaps_within(3) == 1 and tok.gaps_within(10**6) == 1
    skipped = [n for n in tok.notes if "cannot be built" in n]
    assert len(skipped) == 1 and "b'xyz'" in skipped[0] and "rank 258" in skipped[0]
    assert any("empty token" in n and f"rank {256 + len(WORDS) + len(MORE)}" in n for n in tok.notes)


def test_recover_agrees_with_tiktoken_on_the_kept_tokens(tmp_path: Path) -> None:
    """Every kept merge is what tiktoken's own BPE does to the token's bytes below its rank."""
    import tiktoken

    ranks = {bytes([b]): b for b in range(256)}
    for t in WORDS + MORE:
        ranks[t] = len(ranks)
    enc = tiktoken.Encoding(name="t", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={})
    got = recover(ranks, "t")
    for a, b in got.merges:
        assert enc.encode_single_token(a + b) == ranks[a + b]
        assert ranks[a] < ranks[a + b] and ranks[b] < ranks[a + b]
    # tiktoken encodes the skipped token as one piece: it is looked up whole before any BPE.
    assert enc.encode("xyz") == [ranks[b"xyz"]]


def test_strict_recover_merges_still_refuses_such_ranks() -> None:
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"abc"] = 256
    with pytest.raises(TokenizerError, match="cannot be built"):
        recover_merges(ranks, "x.tiktoken")


def test_ranks_that_are_mostly_not_buildable_are_refused(tmp_path: Path) -> None:
    path = write_ranks(tmp_path / "r.tiktoken", [b"th", b"abc", b"xyz", b"qrs"])
    with pytest.raises(TokenizerError, match="3 of 4 tokens cannot be built"):
        load_tokenizer(path)


def test_tiktoken_registry_reads_tiktokens_own_cache_offline(
    shared_tokenizers_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tiktoken:cl100k_base`` offline from a TIKTOKEN_CACHE_DIR built here (sha1 of the URL)."""
    import tiktoken.registry
    from tiktoken_ext import openai_public

    source = shared_tokenizers_dir / "cl100k_base.tiktoken"
    url = openai_public.cl100k_base.__code__.co_consts  # the URL is a constant of the constructor
    urls = [c for c in url if isinstance(c, str) and c.endswith("cl100k_base.tiktoken")]
    assert urls, "tiktoken_ext no longer names the cl100k_base URL as a constant"
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    shutil.copy(source, cache / hashlib.sha1(urls[0].encode()).hexdigest())
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # no encoding loaded earlier
    tok = load_tokenizer("tiktoken:cl100k_base", offline=True)
    from_file = load_tokenizer(source)
    assert tok.format == "tiktoken" and len(tok.merges) == 100_000
    assert tok.merges == from_file.merges
    assert tok.pretokenizer.name == "cl100k"  # its pat_str is the cl100k preset's regex
    assert tok.pretokenizer.fingerprint() == from_file.pretokenizer.fingerprint()


# --------------------------------------------------------------------------------------------------
# Published rank files


def test_llama3_ranks_skip_678_tokens_after_cl100k(shared_tokenizers_dir: Path) -> None:
    tok = load_tokenizer(shared_tokenizers_dir / "llama3-tokenizer.model")
    assert tok.format == "tiktoken-file"
    assert len(tok.gaps) == 678 and len(tok.merges) == 128_000 - 256 - 678
    assert tok.gaps_within(30_000) == 0 and tok.gaps[0] > 100_000
    assert any("678 token(s)" in n for n in tok.notes)


def test_whisper_empty_last_token_is_skipped(shared_tokenizers_dir: Path) -> None:
    tok = load_tokenizer(shared_tokenizers_dir / "whisper-multilingual.tiktoken")
    assert len(tok.merges) == 50_000 and not tok.gaps
    assert any("empty token" in n and "50256" in n for n in tok.notes)


def test_llama3_extends_cl100k_by_100000_shared_merges(shared_tokenizers_dir: Path) -> None:
    from mixinfer.cleaning import clean_merges
    from mixinfer.stages import shared_prefix, shared_prefix_with

    llama3 = clean_merges(load_tokenizer(shared_tokenizers_dir / "llama3-tokenizer.model"))[0]
    cl100k = clean_merges(load_tokenizer(shared_tokenizers_dir / "cl100k_base.tiktoken"))[0]
    assert shared_prefix(llama3.merges, cl100k.merges) == 100_000
    k, info = shared_prefix_with(llama3, cl100k)
    assert k == 100_000 and info["shared_prefix"] == 100_000 and info["base_merges"] == 100_000
    assert len(llama3.merges) - k > 27_000  # the new merges inferred from


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_rank_files_give_a_tokenizer_error_or_load(data: st.DataObject, tmp_path: Path) -> None:
    text = bytearray(write_ranks(tmp_path / "r.tiktoken", WORDS + MORE, empty_last=True).read_bytes())
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(len(text) * 3 // 4, len(text) - 1))  # the multi-byte tokens
        text[i] = data.draw(st.sampled_from(b"A=/+ \n0x\xff"))
    name = data.draw(st.sampled_from(["r.tiktoken", "tokenizer.model", "ranks"]))
    path = tmp_path / name
    path.write_bytes(bytes(text))
    try:
        tok = load_tokenizer(path)
    except MixinferError as exc:
        assert str(exc)
    else:
        assert tok.merges and all(a and b for a, b in tok.merges)
