"""tiktoken mergeable-ranks files (``base64token rank`` lines), under any name.

Recognised by content (Llama 3's and Llama 4's ranks are called ``tokenizer.model``), by the
``.tiktoken`` suffix otherwise. Empty tokens (Whisper's last line, ``= 50256``, which tiktoken
accepts) are skipped with a note; merges come from :mod:`mixinfer.formats.ranks`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import replace
from pathlib import Path

from mixinfer.errors import TokenizerError
from mixinfer.formats import files
from mixinfer.formats.choose import for_ranks
from mixinfer.formats.ranks import ranks_tokenizer, recover, skipped_notes
from mixinfer.pretokenizers import PRESETS
from mixinfer.tokenizer import BPETokenizer

_LINE = re.compile(rb"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)? [0-9]+\r?$")
_EMPTY = re.compile(rb"^=*$")

# File-name hints, kept from before content identification (the name a user gave wins).
NAME_HINTS = (("cl100k", "cl100k"), ("o200k", "o200k"), ("r50k", "gpt2"), ("p50k", "gpt2"), ("gpt2", "gpt2"))


def parse_tiktoken(data: bytes, where: str, notes: list[str] | None = None) -> dict[bytes, int]:
    """Parse the ``base64token rank`` lines of a ``.tiktoken`` file into mergeable ranks.

    An empty token (``= 50256``, as in Whisper's file) is skipped, with a note in ``notes``.

    Raises:
        TokenizerError: a line is malformed, or a token or rank repeats (naming file and line).
    """
    ranks: dict[bytes, int] = {}
    seen_ranks: dict[int, int] = {}
    empty: list[int] = []
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        fields = line.split()
        shown = line[:80].decode("utf-8", "replace")
        if len(fields) == 1 and line.startswith((b" ", b"\t")):
            fields = [b"", fields[0]]  # an empty token written as nothing
        if len(fields) != 2:
            raise TokenizerError(f"{where}, line {lineno}: expected `BASE64TOKEN RANK`, got {shown!r}")
        try:
            rank = int(fields[1])
        except ValueError:
            raise TokenizerError(
                f"{where}, line {lineno}: rank {fields[1][:40].decode('utf-8', 'replace')!r} "
                "is not an integer"
            ) from None
        if _EMPTY.match(fields[0]):
            empty.append(rank)
            continue
        try:
            token = base64.b64decode(fields[0], validate=True)
        except (binascii.Error, ValueError):
            raise TokenizerError(
                f"{where}, line {lineno}: {fields[0][:40].decode('utf-8', 'replace')!r} is not base64"
            ) from None
        if rank < 0:
            raise TokenizerError(f"{where}, line {lineno}: negative rank {rank}")
        if token in ranks:
            raise TokenizerError(f"{where}, line {lineno}: token {token!r} appears twice")
        if rank in seen_ranks:
            raise TokenizerError(
                f"{where}, line {lineno}: rank {rank} already used on line {seen_ranks[rank]}"
            )
        ranks[token] = rank
        seen_ranks[rank] = lineno
    if not ranks:
        raise TokenizerError(f"{where}: no tokens; expected `BASE64TOKEN RANK` lines")
    if empty and notes is not None:
        notes.append(
            f"{len(empty)} empty token(s) (rank {', '.join(map(str, empty[:3]))}) skipped: "
            "an empty token is never produced by a merge"
        )
    return ranks


def looks_like_ranks(head: bytes) -> bool:
    """Whether the complete lines of ``head`` are all ``base64 rank`` lines (at least one)."""
    lines = head.split(b"\n")
    if len(lines) > 1 and head and not head.endswith(b"\n"):
        lines = lines[:-1]  # the last line may be cut
    lines = [line for line in lines[:2000] if line.strip()]
    return bool(lines) and all(_LINE.match(line) or _EMPTY.match(line.split(b" ")[0]) for line in lines)


class TiktokenFileFormat:
    """A tiktoken ranks file (content: ``base64 rank`` lines; name: ``*.tiktoken``)."""

    name: str = "tiktoken-file"
    suffixes: tuple[str, ...] = (".tiktoken",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """``base64 rank`` lines, whatever the file's name."""
        return looks_like_ranks(head)

    def parse(self, data: bytes, *, source: str, where: str) -> BPETokenizer:
        """Ranks -> merges; pretokenizer by file-name hint, else identified from the merges."""
        notes: list[str] = []
        ranks = parse_tiktoken(data, where, notes)
        got = recover(ranks, where)
        notes += skipped_notes(got, "the ranks")
        name = Path(where).name.lower()
        hint = next(((key, p) for key, p in NAME_HINTS if key in name), None)
        if hint is not None:
            why = f"the file name contains {hint[0]!r}"
            chosen = PRESETS[hint[1]]
            notes.append(
                f"pretokenizer: a tiktoken ranks file carries no pattern and {why}: using preset "
                f"`{hint[1]}`; override with --pretokenizer NAME"
            )
            pre = replace(chosen, reason=f"{chosen.reason}; chosen because {why}")
        else:
            pre = for_ranks(got.merges, None, "a tiktoken ranks file", notes)
        counted = f"{len(ranks)} mergeable ranks"
        return ranks_tokenizer(
            got, source=source, pretokenizer=pre, notes=notes, fmt="tiktoken-file", counted=counted
        )

    def load(self, path: Path, source: str) -> BPETokenizer:
        """Read and parse ``path``."""
        return self.parse(files.read_bytes(path), source=source, where=str(path))
