"""Checks and conversions shared by the tokenizer formats (merge lists written as text)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from mixinfer.errors import TokenizerError
from mixinfer.pretokenizers import BYTE_DECODER

BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
"""A SentencePiece byte-fallback piece, ``<0xNN>``."""


def byte_level_token(token: str) -> bytes:
    """A token written in GPT-2's byte alphabet, as raw bytes.

    Raises:
        ValueError: a character is not in the alphabet.
    """
    try:
        return bytes(BYTE_DECODER[ch] for ch in token)
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the GPT-2 byte alphabet") from None


def char_level_token(token: str) -> bytes:
    """A character-level (SentencePiece) token as UTF-8 bytes; ``<0xNN>`` becomes that byte.

    Raises:
        ValueError: the token holds a lone surrogate.
    """
    m = BYTE_FALLBACK.match(token)
    if m is not None:
        return bytes([int(m.group(1), 16)])
    try:
        return token.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("token is not valid unicode (lone surrogate)") from None


def merges_to_bytes(
    merges: list[tuple[str, str]], where: str, convert: Callable[[str], bytes]
) -> list[tuple[bytes, bytes]]:
    """Convert text merges with ``convert`` (a :class:`TokenizerError` names the bad merge)."""
    cache: dict[str, bytes] = {}
    out: list[tuple[bytes, bytes]] = []
    for i, pair in enumerate(merges):
        converted = []
        for token in pair:
            b = cache.get(token)
            if b is None:
                try:
                    b = convert(token)
                except ValueError as exc:
                    raise TokenizerError(
                        f"{where}: merge #{i} {pair!r}: token {token!r} cannot be read: {exc}"
                    ) from None
                cache[token] = b
            converted.append(b)
        out.append((converted[0], converted[1]))
    return out


def check_in_vocab(merges: list[tuple[str, str]], vocab: dict[str, Any], where: str) -> None:
    """Every merge's parts and result must be vocabulary tokens."""
    for i, (a, b) in enumerate(merges):
        for token in (a, b, a + b):
            if token not in vocab:
                raise TokenizerError(
                    f"{where}: merge #{i} ({a!r}, {b!r}) uses token {token!r}, which is not in "
                    "`model.vocab`; the file is inconsistent (tokenizers would refuse it too)"
                )


def check_buildable(
    pairs: list[tuple[bytes, bytes]],
    known: set[bytes],
    where: str,
    shown: list[tuple[str, str]] | None = None,
    *,
    strict_order: bool = True,
    notes: list[str] | None = None,
) -> None:
    """Every merge part must be a base symbol or the result of a merge.

    With ``strict_order`` the producing merge must come earlier (true of every trained BPE list).
    SentencePiece conversions order merges by the score of the merged piece instead, so a part may
    only be produced by a later merge; that is allowed (and counted in ``notes``) when
    ``strict_order`` is false, but a part that no merge produces at all is still an error.
    """
    produced = None if strict_order else {a + b for a, b in pairs}
    late = 0
    for i, (a, b) in enumerate(pairs):
        for part in (a, b):
            if part in known:
                continue
            if produced is not None and part in produced:
                late += 1
                break
            label = shown[i] if shown is not None else (a, b)
            raise TokenizerError(
                f"{where}: merge #{i} {label!r} cannot be applied: its part {part!r} is "
                "neither a base symbol nor made by " + ("an earlier merge" if strict_order else "any merge")
            )
        known.add(a + b)
    if late and notes is not None:
        notes.append(
            f"{late} merge(s) use a token that only a later merge produces (SentencePiece "
            "conversions order merges by piece score); they cannot apply at their position "
            "until the merge list is cleaned"
        )


def note_duplicates(pairs: list[tuple[bytes, bytes]], notes: list[str]) -> None:
    """Note repeated merges and merges producing a token an earlier merge produced."""
    seen: set[tuple[bytes, bytes]] = set()
    dups = 0
    for pair in pairs:
        if pair in seen:
            dups += 1
        seen.add(pair)
    if dups:
        notes.append(f"the merge list repeats {dups} merge(s); a repeated merge never applies")
    results = len({a + b for a, b in pairs})
    if results < len(pairs) - dups:
        notes.append(
            f"{len(pairs) - dups - results} merge(s) produce a token that an earlier merge "
            "already produced (typical of SentencePiece conversions; such redundant merges may "
            "need cleaning)"
        )


def describe(component: Any) -> str:
    """A short, printable JSON rendering of a file's component, for notes."""
    if component is None:
        return "none"
    text = json.dumps(component, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        # Notes must stay printable: escape lone surrogates that valid JSON can smuggle in.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 120 else text[:117] + "..."
