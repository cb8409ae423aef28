"""Loading tokenizers: ordered merges as pairs of byte strings, plus their pretokenizer.

:func:`load_tokenizer` accepts every tokenizer source the CLI accepts:

* a Hugging Face ``tokenizer.json`` (``model.type`` ``"BPE"`` or absent, as in GPT-2's file;
  merges as ``"a b"`` strings or ``[a, b]`` lists);
* a directory holding ``tokenizer.json``, or ``vocab.json`` + ``merges.txt`` (GPT-2 style);
* a ``merges.txt`` alone (GPT-2 byte-level alphabet, optional ``#version`` header);
* a ``.tiktoken`` file (``base64token rank`` lines); the merges are recovered from the ranks;
* ``tiktoken:NAME`` (tiktoken's registry, e.g. ``tiktoken:o200k_base``);
* a Hugging Face Hub id ``ORG/NAME`` that is not an existing path (downloaded with
  ``huggingface_hub`` when online, read from its cache when offline).

Merges are returned as byte pairs. Byte-level vocabularies (a ``ByteLevel`` pre-tokenizer or
decoder, or merges written entirely in GPT-2's 256-character byte alphabet) are mapped back to raw
bytes.
Character-level vocabularies (SentencePiece conversions) keep the UTF-8 bytes of each token, ``▁``
included (the pretokenizer emits ``▁`` too), and byte-fallback tokens ``<0xNN>`` become that byte.

Which pretokenizer is used (the rule; it is also written into ``BPETokenizer.notes``):

1. ``pretokenizer=NAME`` (``--pretokenizer NAME``) selects a preset and overrides everything.
2. ``tokenizer.json`` with a ``pre_tokenizer`` that splits text: the file's own ``normalizer`` and
   ``pre_tokenizer``, run through ``tokenizers`` itself.
3. ``tokenizer.json`` without a ``pre_tokenizer``, or (character-level files only) with one that
   never splits text into words, as in SentencePiece conversions (Llama 1/2 and Mistral have
   none; newer conversions have ``Metaspace(split=false)``; Gemma's splits on ``" "`` after its
   normalizer turned every space into ``▁``): a preset, whose pipeline then replaces the file's
   *whole* pipeline (the file's normalizer is not applied):

   * character-level (``▁``) vocabulary: ``gemma`` when the file's pipeline turns spaces into
     ``▁`` but adds no leading ``▁`` (no SentencePiece dummy prefix), else ``mistral`` when the
     vocabulary has Mistral's ``[INST]`` token, else ``llama`` (``llama`` and ``mistral`` are the
     same pipeline);
   * byte-level vocabulary: ``gpt2``.
4. ``vocab.json`` + ``merges.txt`` or ``merges.txt``: ``gpt2``.
5. ``.tiktoken`` file: by file name: ``cl100k`` -> ``cl100k``, ``o200k`` -> ``o200k``, ``r50k`` /
   ``p50k`` / ``gpt2`` -> ``gpt2``; otherwise ``default``.
6. ``tiktoken:NAME``: the encoding's own ``pat_str`` (``Split`` isolated, then ``ByteLevel``).

Offline mode (``offline=True``, or ``HF_HUB_OFFLINE=1`` when ``offline`` is ``None``) never
touches the network: Hub ids come from the Hugging Face cache, ``tiktoken:NAME`` from tiktoken's
cache. Local paths never use the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mixinfer.errors import (
    MissingDependencyError,
    TokenizerError,
    TokenizerNotFoundError,
)
from mixinfer.pretokenizers import (
    BYTE_DECODER,
    PRESETS,
    Pretokenizer,
    build,
    canonical_json,
    from_tokenizer_json,
    has_byte_level,
    preset,
    pretokenize,
    regex_pretokenizer,
)


@dataclass
class BPETokenizer:
    """A BPE tokenizer reduced to what inference needs.

    Attributes:
        source: what the user gave (path, ``tiktoken:NAME`` or Hub id), for reports.
        merges: the ordered merge list; merge ``t`` joins ``merges[t][0] + merges[t][1]``.
        byte_level: ``True`` when the initial symbols are single bytes (GPT-2 style, tiktoken);
            ``False`` for character-level lists (SentencePiece conversions), where a word starts as
            its characters (those in ``alphabet``) and unknown characters fall back to single bytes.
        alphabet: for character-level tokenizers, the UTF-8 bytes of every single-character token.
        pretokenizer: how text is cut into words for this tokenizer.
        notes: human-readable remarks made while loading (e.g. which preset was chosen and why).
        format: which kind of source it was read from (``"tokenizer.json"``,
            ``"vocab.json+merges.txt"``, ``"merges.txt"``, ``"tiktoken-file"``, ``"tiktoken"``).
        token_ids: vocabulary id of every token the merges use or produce, when the source has a
            vocabulary (``tokenizer.json``, ``vocab.json``); ``None`` otherwise. SentencePiece
            numbers pieces in order of creation, which merge-list cleaning relies on.
        reserved: merge results the tokenizer reserved rather than learned: SentencePiece
            user-defined pieces (ids before the byte-fallback block). Cleaning skips their merges.
    """

    source: str
    merges: list[tuple[bytes, bytes]]
    byte_level: bool
    pretokenizer: Pretokenizer
    alphabet: frozenset[bytes] = frozenset()
    notes: list[str] = field(default_factory=list)
    format: str = ""
    token_ids: dict[bytes, int] | None = None
    reserved: frozenset[bytes] = frozenset()

    def merges_fingerprint(self, count: int | None = None) -> str:
        """A stable hash of the first ``count`` merges (all when ``None``) and the alphabet kind."""
        h = hashlib.sha256()
        h.update(b"byte" if self.byte_level else b"char")
        for ch in sorted(self.alphabet):
            h.update(len(ch).to_bytes(2, "little") + ch)
        for a, b in self.merges[:count]:
            h.update(len(a).to_bytes(4, "little") + a + len(b).to_bytes(4, "little") + b)
        return h.hexdigest()[:24]


# A Hub id is ORG/NAME with the characters the Hub allows; strings ending in a tokenizer file
# extension are treated as (missing) local paths, since that is by far the likelier intent.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_FILE_SUFFIXES = (".json", ".txt", ".tiktoken", ".model", ".gz")
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_PROBE = "Hello world, this is 42 tests."  # used to see whether a file's pipeline splits words


def load_tokenizer(
    source: str | os.PathLike[str],
    *,
    pretokenizer: str | None = None,
    offline: bool | None = None,
) -> BPETokenizer:
    """Load a BPE tokenizer's ordered merges (as byte pairs) and its pretokenizer.

    Args:
        source: a ``tokenizer.json``, a directory, a ``merges.txt``, a ``.tiktoken`` file,
            ``tiktoken:NAME`` or a Hugging Face Hub id ``ORG/NAME`` (see the module docstring).
        pretokenizer: a preset name that overrides the tokenizer's own pretokenizer.
        offline: never use the network; ``None`` means "when ``HF_HUB_OFFLINE`` is set".

    Raises:
        UsageError: ``pretokenizer`` is not a preset name.
        TokenizerNotFoundError: the source does not exist and could not be downloaded.
        TokenizerError: the source exists but is not a usable BPE tokenizer.
    """
    override = preset(pretokenizer) if pretokenizer is not None else None
    src = os.fspath(source)
    if offline is None:
        offline = _env_offline()
    if src.startswith("tiktoken:"):
        tok = _load_tiktoken_registry(src, src[len("tiktoken:") :], offline=offline)
    else:
        path = Path(src).expanduser()
        if path.exists():
            tok = _load_path(path, src)
        elif _HUB_ID.match(src) and not src.lower().endswith(_FILE_SUFFIXES):
            tok = _load_hub(src, offline=offline)
        else:
            raise TokenizerNotFoundError(
                f"tokenizer not found: {src} does not exist; give a tokenizer.json, a directory, "
                "a merges.txt, a .tiktoken file, tiktoken:NAME or a Hugging Face Hub id ORG/NAME"
            )
    if override is not None:
        own = tok.pretokenizer
        tok.pretokenizer = replace(override, reason=f"{override.reason} (chosen with --pretokenizer)")
        tok.notes.append(
            f"pretokenizer: preset `{override.name}` chosen with --pretokenizer; it replaces the "
            f"tokenizer's own pipeline ({own.name}), including its normalizer"
        )
    # Fail now, with the tokenizer's name in the message, rather than deep inside counting.
    build(tok.pretokenizer)
    return tok


# --------------------------------------------------------------------------------------------------
# Local paths


def _load_path(path: Path, source: str) -> BPETokenizer:
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return _load_tokenizer_json(path / "tokenizer.json", source)
        if (path / "merges.txt").is_file():
            vocab_path = path / "vocab.json"
            vocab = _read_vocab_json(vocab_path) if vocab_path.is_file() else None
            return _load_merges_txt(path / "merges.txt", source, vocab=vocab)
        raise TokenizerNotFoundError(
            f"{path} is a directory without tokenizer.json or merges.txt (+ vocab.json); "
            "point at the tokenizer file itself"
        )
    name = path.name.lower()
    if name.endswith(".tiktoken"):
        return _load_tiktoken_file(path, source)
    if name.endswith(".txt"):
        vocab_path = path.with_name("vocab.json")
        vocab = _read_vocab_json(vocab_path) if name == "merges.txt" and vocab_path.is_file() else None
        return _load_merges_txt(path, source, vocab=vocab)
    if name.endswith(".json"):
        return _load_tokenizer_json(path, source)
    # Unknown extension: sniff the content.
    head = _read_text(path)[:4096].lstrip()
    if head.startswith("{"):
        return _load_tokenizer_json(path, source)
    first = head.split("\n", 1)[0].split()
    if len(first) == 2 and first[1].isdigit():
        return _load_tiktoken_file(path, source)
    return _load_merges_txt(path, source, vocab=None)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TokenizerNotFoundError(f"tokenizer not found: {path} does not exist") from None
    except OSError as exc:
        raise TokenizerError(f"cannot read {path}: {exc.strerror or exc}; check the path") from None


def _read_text(path: Path) -> str:
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenizerError(
            f"{path} is not UTF-8 text (bad byte at offset {exc.start}); "
            "expected a tokenizer.json, merges.txt or .tiktoken file"
        ) from None


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenizerError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "is the file truncated, or not a tokenizer.json?"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise TokenizerError(f"{path} is not usable JSON ({exc}); expected a tokenizer.json") from None


def _read_vocab_json(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise TokenizerError(f"{path}: expected a JSON object mapping tokens to ids (vocab.json)")
    return data


# --------------------------------------------------------------------------------------------------
# tokenizer.json


def _load_tokenizer_json(path: Path, source: str) -> BPETokenizer:
    return tokenizer_from_json(_read_json(path), source=source, origin=str(path))


def tokenizer_from_json(data: Any, *, source: str, origin: str | None = None) -> BPETokenizer:
    """Build a :class:`BPETokenizer` from a parsed ``tokenizer.json``.

    Args:
        data: the parsed JSON document.
        source: what the user gave, stored in the result.
        origin: the file name used in error messages (defaults to ``source``).

    Raises:
        TokenizerError: the document is not a usable BPE ``tokenizer.json``.
    """
    where = origin or source
    if not isinstance(data, dict):
        raise TokenizerError(f"{where}: expected a JSON object (a Hugging Face tokenizer.json)")
    model = data.get("model")
    if not isinstance(model, dict):
        raise TokenizerError(
            f"{where}: no `model` object; this is not a Hugging Face tokenizer.json "
            "(for GPT-2 style files pass the directory holding vocab.json + merges.txt)"
        )
    mtype = model.get("type")
    if mtype is None:
        # GPT-2's file has no "type"; tokenizers then infers BPE from the keys present.
        if "merges" not in model or "vocab" not in model:
            raise TokenizerError(
                f"{where}: `model` has no `type` and no `merges` + `vocab`; "
                "not a BPE tokenizer, and mixinfer needs an ordered BPE merge list"
            )
    elif mtype != "BPE":
        raise TokenizerError(
            f"{where}: the model is {mtype!r}, not BPE; mixinfer needs a BPE tokenizer's ordered "
            "merge list (WordPiece, Unigram and WordLevel tokenizers have none)"
        )
    for key in ("continuing_subword_prefix", "end_of_word_suffix"):
        value = model.get(key)
        if value is not None and not isinstance(value, str):
            raise TokenizerError(f"{where}: `model.{key}` must be a string or null")
        if value:
            raise TokenizerError(
                f"{where}: `model.{key}` is {value!r}; BPE with word-boundary markers is not "
                "supported (only plain byte-level and SentencePiece-style merge lists are)"
            )
    vocab = model.get("vocab")
    if not isinstance(vocab, dict):
        raise TokenizerError(f"{where}: `model.vocab` must be an object mapping tokens to ids")
    merges = _parse_json_merges(model.get("merges"), where)

    notes: list[str] = []
    byte_level = _detect_byte_level(data, model, vocab, merges, notes)
    if byte_level:
        pairs = _merges_to_bytes(merges, where, _byte_level_token)
        alphabet: frozenset[bytes] = frozenset()
        known = {bytes([b]) for b in range(256)}
    else:
        pairs = _merges_to_bytes(merges, where, _char_level_token)
        # A lone surrogate (valid JSON, invalid text) can never occur in text: leave it out.
        alphabet = frozenset(
            k.encode("utf-8") for k in vocab if len(k) == 1 and not 0xD800 <= ord(k) <= 0xDFFF
        )
        fallback = {bytes([int(m.group(1), 16)]) for k in vocab if (m := _BYTE_FALLBACK.match(k)) is not None}
        known = set(alphabet) | fallback
    _check_in_vocab(merges, vocab, where)
    _check_buildable(pairs, known, where, merges, strict_order=byte_level, notes=notes)
    _note_duplicates(pairs, notes)

    own = from_tokenizer_json(data, source=where)
    pre = _choose_for_json(data, own, byte_level, vocab, notes)
    token_ids, reserved = _merge_token_ids(merges, pairs, vocab, sentencepiece=not byte_level)
    return BPETokenizer(
        source=source,
        merges=pairs,
        byte_level=byte_level,
        pretokenizer=pre,
        alphabet=alphabet,
        notes=notes,
        format="tokenizer.json",
        token_ids=token_ids,
        reserved=reserved,
    )


def _merge_token_ids(
    merges: list[tuple[str, str]],
    pairs: list[tuple[bytes, bytes]],
    vocab: dict[str, Any],
    *,
    sentencepiece: bool,
) -> tuple[dict[bytes, int] | None, frozenset[bytes]]:
    """Vocabulary ids of the merges' tokens (as bytes), and the reserved merge results.

    Returns ``(None, frozenset())`` when an id is not an integer. For SentencePiece conversions
    with byte fallback, pieces numbered before the first ``<0xNN>`` token are user-defined (the
    learned pieces follow the byte pieces), so the merges producing them are reserved.
    """
    ids: dict[bytes, int] = {}
    for (a, b), (ba, bb) in zip(merges, pairs, strict=True):
        for text, raw in ((a, ba), (b, bb), (a + b, ba + bb)):
            tid = vocab.get(text)
            if not isinstance(tid, int) or isinstance(tid, bool):
                return None, frozenset()
            ids.setdefault(raw, tid)
    reserved: frozenset[bytes] = frozenset()
    if sentencepiece:
        fallback = [
            i
            for k, i in vocab.items()
            if isinstance(i, int) and isinstance(k, str) and _BYTE_FALLBACK.match(k)
        ]
        if fallback:
            start = min(fallback)
            reserved = frozenset(ba + bb for ba, bb in pairs if ids[ba + bb] < start)
    return ids, reserved


def _parse_json_merges(merges: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(merges, list):
        raise TokenizerError(f"{where}: `model.merges` must be a list of merges")
    if not merges:
        raise TokenizerError(f"{where}: the merge list `model.merges` is empty; nothing to infer from")
    out: list[tuple[str, str]] = []
    for i, m in enumerate(merges):
        if isinstance(m, str):
            parts = m.split(" ")
        elif isinstance(m, list):
            parts = m
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
            raise TokenizerError(
                f'{where}: merge #{i} ({_describe(m)}) is not a pair of tokens; expected "a b" or ["a", "b"]'
            )
        out.append((parts[0], parts[1]))
    return out


def _detect_byte_level(
    data: dict[str, Any],
    model: dict[str, Any],
    vocab: dict[str, Any],
    merges: list[tuple[str, str]],
    notes: list[str],
) -> bool:
    if has_byte_level(data.get("pre_tokenizer")) or has_byte_level(data.get("decoder")):
        return True
    sentencepiece = (
        model.get("byte_fallback") is True
        or any(_BYTE_FALLBACK.match(k) for k in vocab if isinstance(k, str) and k.startswith("<0x"))
        or any("▁" in a or "▁" in b for a, b in merges)
    )
    if sentencepiece:
        return False
    if all(ch in BYTE_DECODER for a, b in merges for ch in a + b):
        notes.append(
            "no ByteLevel step in the file, but every merge is written in the GPT-2 byte "
            "alphabet: reading the merges as byte-level"
        )
        return True
    return False


def _byte_level_token(token: str) -> bytes:
    try:
        return bytes(BYTE_DECODER[ch] for ch in token)
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not in the GPT-2 byte alphabet") from None


def _char_level_token(token: str) -> bytes:
    m = _BYTE_FALLBACK.match(token)
    if m is not None:
        return bytes([int(m.group(1), 16)])
    try:
        return token.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("token is not valid unicode (lone surrogate)") from None


def _merges_to_bytes(
    merges: list[tuple[str, str]], where: str, convert: Callable[[str], bytes]
) -> list[tuple[bytes, bytes]]:
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


def _check_in_vocab(merges: list[tuple[str, str]], vocab: dict[str, Any], where: str) -> None:
    for i, (a, b) in enumerate(merges):
        for token in (a, b, a + b):
            if token not in vocab:
                raise TokenizerError(
                    f"{where}: merge #{i} ({a!r}, {b!r}) uses token {token!r}, which is not in "
                    "`model.vocab`; the file is inconsistent (tokenizers would refuse it too)"
                )


def _check_buildable(
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


def _note_duplicates(pairs: list[tuple[bytes, bytes]], notes: list[str]) -> None:
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


def _choose_for_json(
    data: dict[str, Any],
    own: Pretokenizer | None,
    byte_level: bool,
    vocab: dict[str, Any],
    notes: list[str],
) -> Pretokenizer:
    if own is not None:
        pieces = _probe(own)
        if byte_level or pieces is None or len(pieces) > 1:
            notes.append(
                "pretokenizer: the tokenizer file's own normalizer and pre_tokenizer "
                f"(normalizer: {_describe(data.get('normalizer'))})"
            )
            if pieces is not None and len(pieces) <= 1:
                notes.append(
                    "warning: the file's pre_tokenizer does not split text into words; "
                    "counting will treat each document as one word"
                )
            return own
        why = "the file's pre_tokenizer never splits text into words (SentencePiece conversion)"
    else:
        why = "the file has no pre_tokenizer"
    if byte_level:
        name = "gpt2"
        kind = "the vocabulary is byte-level"
    else:
        name = _sentencepiece_preset(data, own, vocab)
        kind = "the vocabulary is SentencePiece-style (character-level, ▁ for spaces)"
        if name == "gemma":
            kind += " and the file's pipeline adds no leading ▁ (as Gemma's)"
    chosen = PRESETS[name]
    reason = f"{chosen.reason}; chosen because {why} and {kind}"
    file_norm = data.get("normalizer")
    if file_norm is not None and canonical_json(file_norm) == chosen.normalizer_json:
        norm_note = "its normalizer is the same as the file's"
    else:
        norm_note = f"the file's normalizer ({_describe(file_norm)}) is not applied"
    notes.append(
        f"pretokenizer: {why} and {kind}: using preset `{name}`; the preset replaces the file's "
        f"whole pipeline ({norm_note}); override with --pretokenizer NAME"
    )
    return replace(chosen, reason=reason)


def _probe(p: Pretokenizer) -> list[str] | None:
    """The pretokens of a fixed sentence, or ``None`` when ``tokenizers`` cannot run it."""
    try:
        return pretokenize(build(p), _PROBE)
    except BaseException as exc:  # a Rust panic arrives as a BaseException subclass
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        return None


def _sentencepiece_preset(data: dict[str, Any], own: Pretokenizer | None, vocab: dict[str, Any]) -> str:
    """``gemma`` if the file turns spaces into ``▁`` without a leading ``▁``; else llama/mistral."""
    normalizer = data.get("normalizer")
    probe_doc = Pretokenizer(
        "probe",
        json.dumps(normalizer) if isinstance(normalizer, dict) else None,
        own.pre_tokenizer_json if own is not None else None,
        byte_level=False,
    )
    pieces = _probe(probe_doc)
    if pieces and "▁" in "".join(pieces) and not pieces[0].startswith("▁"):
        return "gemma"
    return "mistral" if "[INST]" in vocab else "llama"


def _describe(component: Any) -> str:
    if component is None:
        return "none"
    text = json.dumps(component, ensure_ascii=False, separators=(",", ":"))
    if not text.isascii():
        # Notes must stay printable: escape lone surrogates that valid JSON can smuggle in.
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------------------------------
# merges.txt (+ vocab.json)


def _load_merges_txt(path: Path, source: str, *, vocab: dict[str, Any] | None) -> BPETokenizer:
    text = _read_text(path)
    where = str(path)
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
            pairs.append((_byte_level_token(a), _byte_level_token(b)))
        except ValueError as exc:
            raise TokenizerError(
                f"{where}, line {lineno}: {exc}; merges.txt files are read as GPT-2 byte-level "
                "merges (for other tokenizers use their tokenizer.json)"
            ) from None
    if vocab is not None:
        _check_in_vocab(merges, vocab, f"{where} (with vocab.json)")
    _check_buildable(pairs, {bytes([b]) for b in range(256)}, where, merges)
    notes: list[str] = []
    _note_duplicates(pairs, notes)
    chosen = PRESETS["gpt2"]
    kind = "vocab.json+merges.txt" if vocab is not None else "merges.txt"
    notes.append(
        f"pretokenizer: a {kind} tokenizer carries no pretokenizer: using preset `gpt2` "
        "(ByteLevel with the GPT-2 regex); override with --pretokenizer NAME"
    )
    token_ids = _merge_token_ids(merges, pairs, vocab, sentencepiece=False)[0] if vocab is not None else None
    return BPETokenizer(
        source=source,
        merges=pairs,
        byte_level=True,
        pretokenizer=replace(chosen, reason=f"{chosen.reason}; {kind} carries no pretokenizer"),
        notes=notes,
        format=kind,
        token_ids=token_ids,
    )


# --------------------------------------------------------------------------------------------------
# tiktoken


def parse_tiktoken(data: bytes, where: str) -> dict[bytes, int]:
    """Parse the ``base64token rank`` lines of a ``.tiktoken`` file into mergeable ranks.

    Raises:
        TokenizerError: a line is malformed, or a token or rank repeats (naming file and line).
    """
    ranks: dict[bytes, int] = {}
    seen_ranks: dict[int, int] = {}
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        fields = line.split()
        shown = line[:80].decode("utf-8", "replace")
        if len(fields) != 2:
            raise TokenizerError(f"{where}, line {lineno}: expected `BASE64TOKEN RANK`, got {shown!r}")
        try:
            token = base64.b64decode(fields[0], validate=True)
        except (binascii.Error, ValueError):
            raise TokenizerError(
                f"{where}, line {lineno}: {fields[0][:40].decode('utf-8', 'replace')!r} is not base64"
            ) from None
        try:
            rank = int(fields[1])
        except ValueError:
            raise TokenizerError(
                f"{where}, line {lineno}: rank {fields[1][:40].decode('utf-8', 'replace')!r} "
                "is not an integer"
            ) from None
        if not token or rank < 0:
            raise TokenizerError(f"{where}, line {lineno}: empty token or negative rank")
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
    return ranks


def recover_merges(ranks: dict[bytes, int], where: str = "mergeable ranks") -> list[tuple[bytes, bytes]]:
    """Recover the ordered merge list from tiktoken-style mergeable ranks.

    For each token of two or more bytes, in rank order, byte-level BPE is run on its bytes using
    only lower-ranked tokens; it must end in exactly two parts, and that pair is the token's merge.

    Raises:
        TokenizerError: a token cannot be derived that way (or no multi-byte token exists).
    """
    get = ranks.get
    merges: list[tuple[bytes, bytes]] = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        n = len(token)
        if n == 1:
            continue
        parts = [token[i : i + 1] for i in range(n)]
        if n > 2:
            # Plain tiktoken BPE (lowest rank first), stopped before the token's own rank. Tokens
            # are short (6-7 bytes on average), so a quadratic scan beats a heap in Python.
            while True:
                best = -1
                best_rank = rank
                for i in range(len(parts) - 1):
                    r = get(parts[i] + parts[i + 1])
                    if r is not None and r < best_rank:
                        best_rank = r
                        best = i
                if best < 0:
                    break
                parts[best : best + 2] = [parts[best] + parts[best + 1]]
        if len(parts) != 2 or get(parts[0]) is None or get(parts[1]) is None:
            raise TokenizerError(
                f"{where}: token {token!r} (rank {rank}) cannot be built by merging two "
                f"lower-ranked tokens (BPE over lower ranks gives {len(parts)} parts); "
                "these are not BPE mergeable ranks"
            )
        merges.append((parts[0], parts[1]))
    if not merges:
        raise TokenizerError(f"{where}: no token longer than one byte, so there are no merges")
    return merges


def _load_tiktoken_file(path: Path, source: str) -> BPETokenizer:
    where = str(path)
    ranks = parse_tiktoken(_read_bytes(path), where)
    merges = recover_merges(ranks, where)
    name = path.name.lower()
    rule = [
        ("cl100k", "cl100k"),
        ("o200k", "o200k"),
        ("r50k", "gpt2"),
        ("p50k", "gpt2"),
        ("gpt2", "gpt2"),
    ]
    chosen_name = next((p for key, p in rule if key in name), None)
    notes: list[str] = []
    if chosen_name is None:
        chosen_name = "default"
        why = "the file name does not say which tiktoken encoding it is"
    else:
        why = f"the file name contains {next(k for k, p in rule if k in name)!r}"
    chosen = PRESETS[chosen_name]
    notes.append(
        f"pretokenizer: a .tiktoken file carries no pattern and {why}: using preset "
        f"`{chosen_name}`; override with --pretokenizer NAME"
    )
    notes.append(f"merges recovered from {len(ranks)} mergeable ranks")
    return BPETokenizer(
        source=source,
        merges=merges,
        byte_level=True,
        pretokenizer=replace(chosen, reason=f"{chosen.reason}; chosen because {why}"),
        notes=notes,
        format="tiktoken-file",
    )


class _OfflineMiss(Exception):
    """tiktoken wanted to download while offline."""


_TIKTOKEN_LOCK = threading.Lock()


@contextmanager
def _tiktoken_no_network() -> Iterator[None]:
    """Make tiktoken's loader fail instead of downloading (its cache is still read)."""
    import tiktoken.load as tl

    def refuse(blobpath: str) -> bytes:
        if "://" in blobpath:
            raise _OfflineMiss(blobpath)
        with open(blobpath, "rb") as f:
            return f.read()

    with _TIKTOKEN_LOCK:
        original = tl.read_file
        tl.read_file = refuse
        try:
            yield
        finally:
            tl.read_file = original


def _load_tiktoken_registry(source: str, name: str, *, offline: bool) -> BPETokenizer:
    try:
        import tiktoken
    except ImportError:
        raise MissingDependencyError(
            "tiktoken is not installed; `pip install tiktoken` to use tiktoken:NAME"
        ) from None
    try:
        names = tiktoken.list_encoding_names()
    except Exception as exc:
        raise TokenizerError(f"tiktoken's registry cannot be listed: {exc}") from None
    if name not in names:
        raise TokenizerError(
            f"unknown tiktoken encoding {name!r} in {source!r}; tiktoken knows: {', '.join(names)}"
        )
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    advice = (
        "set TIKTOKEN_CACHE_DIR to a cache that holds it (run the same command once online), "
        "or pass a local .tiktoken file"
    )
    try:
        if offline:
            with _tiktoken_no_network():
                enc = tiktoken.get_encoding(name)
        else:
            enc = tiktoken.get_encoding(name)
    except _OfflineMiss:
        raise TokenizerNotFoundError(
            f"tiktoken encoding {name!r} is not in tiktoken's cache "
            f"({cache or 'default cache'}) and offline mode forbids downloading it; {advice}"
        ) from None
    except Exception as exc:
        raise TokenizerNotFoundError(
            f"tiktoken could not download encoding {name!r} ({type(exc).__name__}: {exc}); {advice}"
        ) from None
    ranks = getattr(enc, "_mergeable_ranks", None)
    pat = getattr(enc, "_pat_str", None)
    if not isinstance(ranks, dict) or not isinstance(pat, str):
        raise TokenizerError(
            f"tiktoken encoding {name!r} exposes no mergeable ranks/pattern in this tiktoken "
            "version; pass its .tiktoken file instead"
        )
    merges = recover_merges(ranks, source)
    pre = regex_pretokenizer(
        pat,
        name="tokenizer",
        reason=f"tiktoken {name}'s own pat_str (Split isolated, then ByteLevel)",
    )
    return BPETokenizer(
        source=source,
        merges=merges,
        byte_level=True,
        pretokenizer=pre,
        notes=[
            f"pretokenizer: tiktoken {name}'s own pat_str",
            f"merges recovered from {len(ranks)} mergeable ranks",
        ],
        format="tiktoken",
    )


# --------------------------------------------------------------------------------------------------
# Hugging Face Hub


def _env_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_fetch(repo_id: str, filename: str, *, offline: bool) -> tuple[str | None, str, str]:
    """Download (or find in the cache) one file of a Hub repository.

    Returns ``(path, status, detail)`` with status ``"ok"``, ``"no-repo"``, ``"no-file"`` (the
    repository exists but lacks the file) or ``"unavailable"`` (not reachable and not cached).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    # Read at call time, so that HF_HUB_CACHE set after import (tests, notebooks) is honoured.
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    detail = ""
    if not offline:
        try:
            return str(hf_hub_download(repo_id, filename, cache_dir=cache_dir)), "ok", ""
        except RepositoryNotFoundError:
            # Also raised for private or gated repositories when no token grants access.
            return None, "no-repo", "the Hub has no such repository (or it is private or gated)"
        except LocalEntryNotFoundError:
            # huggingface_hub already fell back to its cache after failing to reach the Hub.
            return None, "unavailable", "the Hub could not be reached and the file is not cached"
        except EntryNotFoundError:
            return None, "no-file", f"the repository has no {filename}"
        except Exception as exc:
            detail = f"the download failed ({type(exc).__name__}: {str(exc)[:200]})"
    try:
        path = hf_hub_download(repo_id, filename, cache_dir=cache_dir, local_files_only=True)
        return str(path), "ok", ""
    except Exception:
        where = "the file is not in the local Hugging Face cache"
        return None, "unavailable", f"{detail}, and {where}" if detail else where


def _load_hub(repo_id: str, *, offline: bool) -> BPETokenizer:
    try:
        import huggingface_hub.errors  # noqa: F401  (the module exists since 0.23)
    except ImportError:
        raise MissingDependencyError(
            f"{repo_id} is not a local path; to load it from the Hugging Face Hub install "
            "huggingface_hub >= 0.23 (`pip install -U huggingface_hub`), or download its "
            "tokenizer.json and pass the file"
        ) from None
    path, status, detail = _hub_fetch(repo_id, "tokenizer.json", offline=offline)
    if path is not None:
        tok = _load_tokenizer_json(Path(path), repo_id)
    else:
        merges_path = None
        # GPT-2 style repositories have vocab.json + merges.txt instead; only worth asking when the
        # repository answered (or the cache is all we may read).
        if status == "no-file" or (offline and status == "unavailable"):
            merges_path, _, _ = _hub_fetch(repo_id, "merges.txt", offline=offline)
        if merges_path is None:
            mode = "offline mode: only the local cache was searched; " if offline else ""
            raise TokenizerNotFoundError(
                f"tokenizer not found: {repo_id} is not a local path, and its tokenizer.json could "
                f"not be loaded from the Hugging Face Hub ({mode}{detail}). If you meant a local "
                "file, check the path for typos. Otherwise download it while online first (e.g. "
                f"`hf download {repo_id} tokenizer.json`); with HF_HUB_OFFLINE=1 it "
                "is then read from the cache (HF_HUB_CACHE selects the cache directory)"
            )
        vocab_path, _, _ = _hub_fetch(repo_id, "vocab.json", offline=offline)
        vocab = _read_vocab_json(Path(vocab_path)) if vocab_path is not None else None
        tok = _load_merges_txt(Path(merges_path), repo_id, vocab=vocab)
    tok.notes.append(
        f"loaded {repo_id} from the "
        + ("local Hugging Face cache (offline)" if offline else "Hugging Face Hub or its cache")
    )
    return tok
