"""GPT-2 style ``merges.txt`` (optional ``#version`` header), with a ``vocab.json`` beside it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from mixinfer.errors import TokenizerError
from mixinfer.formats import files
from mixinfer.formats.common import byte_level_token, check_buildable, check_in_vocab, note_duplicates
from mixinfer.formats.hf_json import merge_token_ids
from mixinfer.pretokenizers import PRESETS
from mixinfer.tokenizer import BPETokenizer


def read_vocab_json(path: Path) -> dict[str, Any]:
    """A ``vocab.json`` (token -> id)."""
    data = files.read_json(path, "a vocab.json")
    if not isinstance(data, dict):
        raise TokenizerError(f"{path}: expected a JSON object mapping tokens to ids (vocab.json)")
    return data


class MergesTxtFormat:
    """``merges.txt``: lines of two tokens in GPT-2's byte alphabet."""

    name: str = "merges.txt"
    suffixes: tuple[str, ...] = (".txt",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """A ``#version`` header (headerless files are recognised by name, or as the last resort)."""
        return head.startswith(b"#version")

    def parse(
        self, data: bytes, *, source: str, where: str, vocab: dict[str, Any] | None = None
    ) -> BPETokenizer:
        """Build the tokenizer; ``vocab`` is the ``vocab.json`` beside the file, if any."""
        text = files.decode_text(data, where, "a merges.txt")
        merges: list[tuple[str, str]] = []
        lines: list[int] = []
        for lineno, line in enumerate(text.split("\n"), start=1):
            line = line.rstrip("\r")
            if not line.strip() or (lineno == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not parts[0] or not parts[1]:
                raise TokenizerError(
                    f"{where}, line {lineno}: expected two tokens separated by one space, got {line[:80]!r}"
                )
            merges.append((parts[0], parts[1]))
            lines.append(lineno)
        if not merges:
            raise TokenizerError(f"{where}: the merge list is empty; nothing to infer from")
        pairs: list[tuple[bytes, bytes]] = []
        for (a, b), lineno in zip(merges, lines, strict=True):
            try:
                pairs.append((byte_level_token(a), byte_level_token(b)))
            except ValueError as exc:
                raise TokenizerError(
                    f"{where}, line {lineno}: {exc}; merges.txt files are read as GPT-2 byte-level "
                    "merges (for other tokenizers use their tokenizer.json)"
                ) from None
        if vocab is not None:
            check_in_vocab(merges, vocab, f"{where} (with vocab.json)")
        check_buildable(pairs, {bytes([b]) for b in range(256)}, where, merges)
        notes: list[str] = []
        note_duplicates(pairs, notes)
        chosen = PRESETS["gpt2"]
        kind = "vocab.json+merges.txt" if vocab is not None else "merges.txt"
        notes.append(
            f"pretokenizer: a {kind} tokenizer carries no pretokenizer: using preset `gpt2` "
            "(ByteLevel with the GPT-2 regex); override with --pretokenizer NAME"
        )
        token_ids = (
            merge_token_ids(merges, pairs, vocab, sentencepiece=False)[0] if vocab is not None else None
        )
        return BPETokenizer(
            source=source,
            merges=pairs,
            byte_level=True,
            pretokenizer=replace(chosen, reason=f"{chosen.reason}; {kind} carries no pretokenizer"),
            notes=notes,
            format=kind,
            token_ids=token_ids,
        )

    def load(self, path: Path, source: str, vocab_path: Path | None = None) -> BPETokenizer:
        """Read ``path``, with ``vocab_path`` (default: ``vocab.json`` beside a ``merges.txt``)."""
        if vocab_path is None and path.name.lower() == "merges.txt":
            beside = path.with_name("vocab.json")
            vocab_path = beside if beside.is_file() else None
        vocab = read_vocab_json(vocab_path) if vocab_path is not None else None
        return self.parse(files.read_bytes(path), source=source, where=str(path), vocab=vocab)
