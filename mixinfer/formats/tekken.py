"""Mistral's Tekken JSON (``tekken.json``, Mistral NeMo): a tiktoken-style rank file in JSON.

``config.pattern`` is the split regex (then byte-level); ``vocab`` lists ``{"rank", "token_bytes"
(base64), "token_str"}``. Mistral's tokenizer uses only the first ``default_vocab_size -
default_num_special_tokens`` ranks (the special tokens take the first ids), so only those are
read. Merges are recovered from the ranks as for tiktoken files.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from mixinfer.errors import TokenizerError
from mixinfer.formats import files
from mixinfer.formats.choose import for_ranks
from mixinfer.formats.ranks import ranks_tokenizer, recover, skipped_notes
from mixinfer.tokenizer import BPETokenizer

_MARKERS = (b'"token_bytes"', b'"default_num_special_tokens"', b'"default_vocab_size"')


class TekkenFormat:
    """Mistral's Tekken JSON (content: a JSON object with Tekken's keys; name: ``tekken*.json``)."""

    name: str = "tekken"
    suffixes: tuple[str, ...] = ("tekken.json",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """A JSON object whose first bytes hold Tekken's keys (its ``config`` comes first)."""
        return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") and any(m in head for m in _MARKERS)

    def parse(self, data: bytes, *, source: str, where: str) -> BPETokenizer:
        """Build the tokenizer from the file's bytes."""
        return tokenizer_from_tekken(
            files.parse_json(data, where, "a Tekken JSON"), source=source, origin=where
        )

    def load(self, path: Path, source: str) -> BPETokenizer:
        """Read and parse ``path``."""
        return self.parse(files.read_bytes(path), source=source, where=str(path))


def _int(config: dict[str, Any], key: str, where: str) -> int | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TokenizerError(f"{where}: `config.{key}` must be a non-negative integer, not {value!r}")
    return value


def tokenizer_from_tekken(data: Any, *, source: str, origin: str | None = None) -> BPETokenizer:
    """Build a :class:`BPETokenizer` from a parsed Tekken JSON.

    Raises:
        TokenizerError: the document is not a usable Tekken file.
    """
    where = origin or source
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise TokenizerError(f"{where}: a Tekken JSON is an object with a `config` object and a `vocab` list")
    config = data["config"]
    vocab = data.get("vocab")
    if not isinstance(vocab, list) or not vocab:
        raise TokenizerError(f"{where}: `vocab` must be a non-empty list of {{rank, token_bytes}} entries")
    pattern = config.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise TokenizerError(f"{where}: `config.pattern` must be a string (the split regex)")
    size = _int(config, "default_vocab_size", where)
    special = _int(config, "default_num_special_tokens", where) or 0
    limit = size - special if size is not None else None
    if limit is not None and limit <= 0:
        raise TokenizerError(
            f"{where}: `default_vocab_size` ({size}) leaves no rank after "
            f"`default_num_special_tokens` ({special})"
        )
    notes: list[str] = []
    ranks: dict[bytes, int] = {}
    for i, entry in enumerate(vocab):
        if not isinstance(entry, dict):
            raise TokenizerError(f"{where}: vocab[{i}] is not an object")
        rank = entry.get("rank", i)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise TokenizerError(f"{where}: vocab[{i}] has rank {rank!r}; expected a non-negative integer")
        if limit is not None and rank >= limit:
            continue
        raw = entry.get("token_bytes")
        if not isinstance(raw, str):
            raise TokenizerError(f"{where}: vocab[{i}] has no base64 `token_bytes`")
        try:
            token = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise TokenizerError(f"{where}: vocab[{i}] `token_bytes` {raw[:40]!r} is not base64") from None
        if not token:
            continue
        if token in ranks:
            raise TokenizerError(f"{where}: vocab[{i}]: token {token!r} appears twice")
        ranks[token] = rank
    if len(set(ranks.values())) != len(ranks):
        raise TokenizerError(f"{where}: two tokens share a rank")
    if limit is not None:
        notes.append(
            f"Tekken: the first {limit} ranks used (default_vocab_size {size} - "
            f"default_num_special_tokens {special}); {max(0, len(vocab) - limit)} later ranks ignored"
        )
    got = recover(ranks, where)
    notes += skipped_notes(got, "the Tekken vocabulary")
    pre = for_ranks(got.merges, pattern, "the Tekken file", notes)
    return ranks_tokenizer(
        got, source=source, pretokenizer=pre, notes=notes, fmt="tekken", counted=f"{len(ranks)} ranks"
    )
