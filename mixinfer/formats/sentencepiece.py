"""SentencePiece ``.model`` files (the protobuf ``ModelProto``), BPE models only.

The file is read with a small reader of the protobuf wire format, not the ``sentencepiece``
package: only three fields are needed (``pieces``: piece, score, type; ``trainer_spec.model_type``;
``normalizer_spec.add_dummy_prefix``), the wire format is stable, and users then need no compiled
extra. Merges are derived as Hugging Face's converter does (``SentencePieceExtractor``): every
split of a piece into two vocabulary pieces, the splits of one piece ordered by the ids of their
parts, all of them ordered by the piece's score (highest first, ties in id order). The result is
the same merge list as the ``tokenizer.json`` the converter writes, and is cleaned the same way.
Unigram (and word/char) models have no merge list and are refused.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from mixinfer.errors import TokenizerError
from mixinfer.formats import files
from mixinfer.formats.common import char_level_token, check_buildable, merges_to_bytes, note_duplicates
from mixinfer.pretokenizers import PRESETS
from mixinfer.tokenizer import BPETokenizer

MODEL_TYPES = {1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


class ProtobufError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ProtobufError(f"truncated varint at offset {pos}")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """``(field number, wire type, value)`` of each field of a message: an int for varints, the
    raw bytes for length-delimited and fixed-size fields.

    Raises:
        ProtobufError: malformed or truncated data, or a (deprecated) group.
    """
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError(f"field number 0 at offset {pos}")
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
            continue
        if wire == 2:
            size, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire} at offset {pos}")
        if pos + size > len(buf):
            raise ProtobufError(f"field {number} runs past the end (offset {pos}, {size} bytes)")
        yield number, wire, buf[pos : pos + size]
        pos += size


def _message(value: int | bytes, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise ProtobufError(f"{what} is not a length-delimited field")
    return value


def read_model(data: bytes) -> tuple[list[tuple[str, float, int]], int, bool]:
    """``(pieces as (piece, score, type), model_type, add_dummy_prefix)`` of a ``ModelProto``.

    Raises:
        ProtobufError: the data is not a ``ModelProto``.
    """
    pieces: list[tuple[str, float, int]] = []
    model_type = 1  # proto2 default: UNIGRAM
    dummy_prefix = True
    for number, _, value in fields(data):
        if number == 1:
            piece, score, kind = "", 0.0, NORMAL
            for n, w, v in fields(_message(value, "a piece")):
                if n == 1 and isinstance(v, bytes):
                    try:
                        piece = v.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtobufError(f"piece #{len(pieces)} is not UTF-8") from None
                elif n == 2 and w == 5 and isinstance(v, bytes):
                    score = struct.unpack("<f", v)[0]
                elif n == 3 and isinstance(v, int):
                    kind = v
            pieces.append((piece, score, kind))
        elif number == 2:
            for n, _, v in fields(_message(value, "trainer_spec")):
                if n == 3 and isinstance(v, int):
                    model_type = v
        elif number == 3:
            for n, _, v in fields(_message(value, "normalizer_spec")):
                if n == 3 and isinstance(v, int):
                    dummy_prefix = bool(v)
    return pieces, model_type, dummy_prefix


def derive_merges(pieces: list[tuple[str, float, int]]) -> list[tuple[str, str]]:
    """Merges as Hugging Face's ``SentencePieceExtractor`` writes them (see the module docstring)."""
    vocab: dict[str, int] = {}
    for i, (piece, _, _) in enumerate(pieces):
        vocab.setdefault(piece, i)
    scored: list[tuple[str, str, float]] = []
    seen: set[str] = set()
    for piece, score, _ in pieces:
        if piece in seen:
            continue
        seen.add(piece)
        local = [
            (piece[:i], piece[i:], score)
            for i in range(1, len(piece))
            if piece[:i] in vocab and piece[i:] in vocab
        ]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        scored.extend(local)
    scored.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep id order
    return [(a, b) for a, b, _ in scored]


class SentencePieceFormat:
    """A SentencePiece ``ModelProto`` (content: a protobuf whose first field is a piece)."""

    name: str = "sentencepiece"
    suffixes: tuple[str, ...] = (".model",)

    def sniff(self, path: Path, head: bytes) -> bool:
        """The serialised ``pieces`` field first: ``0x0A <length> 0x0A <piece length> <piece>``."""
        if len(head) < 4 or head[0] != 0x0A:
            return False
        try:
            size, pos = _varint(head, 1)
        except ProtobufError:
            return False
        return 2 <= size < 4096 and pos < len(head) and head[pos] == 0x0A

    def parse(self, data: bytes, *, source: str, where: str) -> BPETokenizer:
        """Build the tokenizer from the file's bytes."""
        try:
            pieces, model_type, dummy_prefix = read_model(data)
        except ProtobufError as exc:
            raise TokenizerError(
                f"{where} is not a SentencePiece model ({exc}); expected a SentencePiece .model, "
                "a tiktoken ranks file, a tokenizer.json or a merges.txt"
            ) from None
        if model_type != 2:
            kind = MODEL_TYPES.get(model_type, f"type {model_type}")
            raise TokenizerError(
                f"{where} is a SentencePiece {kind} model, not BPE: it has no merge list, and mixinfer "
                "needs a BPE tokenizer's ordered merges"
            )
        if not pieces:
            raise TokenizerError(f"{where}: the SentencePiece model has no pieces")
        merges = derive_merges(pieces)
        if not merges:
            raise TokenizerError(f"{where}: no piece splits into two other pieces, so there are no merges")
        pairs = merges_to_bytes(merges, where, char_level_token)
        alphabet = frozenset(p.encode("utf-8") for p, _, k in pieces if len(p) == 1 and k != BYTE)
        fallback = {char_level_token(p) for p, _, k in pieces if k == BYTE}
        notes: list[str] = []
        check_buildable(pairs, set(alphabet) | fallback, where, merges, strict_order=False, notes=notes)
        note_duplicates(pairs, notes)
        ids: dict[bytes, int] = {}
        for i, (piece, _, ptype) in enumerate(pieces):
            if ptype != BYTE:
                ids.setdefault(piece.encode("utf-8"), i)
        token_ids = {t: ids[t] for a, b in pairs for t in (a, b, a + b) if t in ids}
        byte_ids = [i for i, (_, _, ptype) in enumerate(pieces) if ptype == BYTE]
        user = {p.encode("utf-8") for p, _, k in pieces if k == USER_DEFINED}
        start = min(byte_ids) if byte_ids else None
        reserved = frozenset(
            a + b for a, b in pairs if a + b in user or (start is not None and ids.get(a + b, start) < start)
        )
        if not dummy_prefix:
            name, why = "gemma", "the model adds no dummy prefix (no leading ▁)"
        elif any(p == "[INST]" for p, _, _ in pieces):
            name, why = "mistral", "the model adds a dummy prefix and has Mistral's [INST] piece"
        else:
            name, why = "llama", "the model adds a dummy prefix (a leading ▁)"
        chosen = PRESETS[name]
        notes.append(
            f"pretokenizer: a SentencePiece BPE model carries no pre-tokenizer and {why}: using preset "
            f"`{name}`; override with --pretokenizer NAME"
        )
        notes.append(
            f"{len(merges)} merges derived from {len(pieces)} pieces as Hugging Face's converter does"
        )
        return BPETokenizer(
            source=source,
            merges=pairs,
            byte_level=False,
            pretokenizer=replace(chosen, reason=f"{chosen.reason}; chosen because {why}"),
            alphabet=alphabet,
            notes=notes,
            format="sentencepiece",
            token_ids=token_ids,
            reserved=reserved,
        )

    def load(self, path: Path, source: str) -> BPETokenizer:
        """Read and parse ``path``."""
        return self.parse(files.read_bytes(path), source=source, where=str(path))
