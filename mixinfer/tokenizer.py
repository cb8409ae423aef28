"""Loading tokenizers: ordered merges as pairs of byte strings, plus their pretokenizer.

:func:`load_tokenizer` accepts every tokenizer source the CLI accepts; each format is a module of
:mod:`mixinfer.formats` (recognised by content first, then by file name):

* a Hugging Face ``tokenizer.json`` (:mod:`~mixinfer.formats.hf_json`);
* Mistral's Tekken JSON (:mod:`~mixinfer.formats.tekken`);
* a tiktoken ranks file under any name (``.tiktoken``, Llama 3/4's ``tokenizer.model``;
  :mod:`~mixinfer.formats.tiktoken_file`); merges are recovered from the ranks;
* a SentencePiece ``.model`` of a BPE model (:mod:`~mixinfer.formats.sentencepiece`);
* a ``merges.txt`` (GPT-2 byte-level alphabet), with ``vocab.json`` beside it if present;
* a directory holding one of those (``tokenizer.json``, ``tekken.json``, ``merges.txt``,
  ``tokenizer.model``, or a single ``.tiktoken`` file);
* ``tiktoken:NAME`` (tiktoken's registry, e.g. ``tiktoken:o200k_base``);
* a Hugging Face Hub id ``ORG/NAME`` that is not an existing path (downloaded with
  ``huggingface_hub`` when online, read from its cache when offline).

Only regular files are read, at most :data:`mixinfer.formats.files.MAX_TOKENIZER_BYTES` (1 GiB):
a FIFO, a device or a socket is refused before it is opened for reading.

Which pretokenizer is used (the rule; it is also written into ``BPETokenizer.notes`` and the
pretokenizer's ``reason``):

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
   * byte-level vocabulary: the preset the merges identify (rule 8), else ``gpt2``.
4. SentencePiece ``.model``: ``gemma`` without a dummy prefix, else ``mistral`` with an ``[INST]``
   piece, else ``llama``.
5. ``vocab.json`` + ``merges.txt`` or ``merges.txt``: ``gpt2``.
6. A file or registry entry that carries its split regex (Tekken's ``config.pattern``, tiktoken's
   ``pat_str``): the preset with the same regex (``tekken``, ``cl100k``, ...) if there is one, else
   that regex as it is (``Split`` isolated, then ``ByteLevel``).
7. A tiktoken ranks file whose name says which encoding it is: ``cl100k`` -> ``cl100k``,
   ``o200k`` -> ``o200k``, ``r50k`` / ``p50k`` / ``gpt2`` -> ``gpt2``.
8. Otherwise (ranks files without a name hint: Qwen, Llama 3 and 4) the split the merges show
   (:mod:`mixinfer.formats.identify`: a space before digits -> ``gpt2``; digit tokens of at most
   three digits -> ``cl100k`` or, when no token has a lower-case letter before an upper-case one,
   ``o200k``; no two-digit token -> ``qwen`` or, likewise, ``tekken``); with fewer than 10,000
   merges, or marks that fit no preset, ``default``.

Offline mode (``offline=True``, or ``HF_HUB_OFFLINE=1`` when ``offline`` is ``None``) never
touches the network: Hub ids come from the Hugging Face cache, ``tiktoken:NAME`` from tiktoken's
cache. Local paths never use the network.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from mixinfer.errors import TokenizerNotFoundError
from mixinfer.pretokenizers import Pretokenizer, build, preset


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
            ``"vocab.json+merges.txt"``, ``"merges.txt"``, ``"tiktoken-file"``, ``"tiktoken"``,
            ``"tekken"``, ``"sentencepiece"``).
        token_ids: vocabulary id of every token the merges use or produce, when the source has a
            vocabulary (``tokenizer.json``, ``vocab.json``, SentencePiece); ``None`` otherwise.
            SentencePiece numbers pieces in order of creation, which merge-list cleaning relies on.
        reserved: merge results the tokenizer reserved rather than learned: SentencePiece
            user-defined pieces (ids before the byte-fallback block). Cleaning skips their merges.
        gaps: merge-list positions of tokens the source has but no merge builds (rank files:
            tokens tiktoken only looks up whole), sorted; position ``p`` means "before merge ``p``".
            A run using the first ``T`` merges lacks :meth:`gaps_within` ``(T)`` tokens.
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
    gaps: tuple[int, ...] = ()

    def merges_fingerprint(self, count: int | None = None) -> str:
        """A stable hash of the first ``count`` merges (all when ``None``) and the alphabet kind."""
        h = hashlib.sha256()
        h.update(b"byte" if self.byte_level else b"char")
        for ch in sorted(self.alphabet):
            h.update(len(ch).to_bytes(2, "little") + ch)
        for a, b in self.merges[:count]:
            h.update(len(a).to_bytes(4, "little") + a + len(b).to_bytes(4, "little") + b)
        return h.hexdigest()[:24]

    def gaps_within(self, count: int) -> int:
        """How many skipped tokens (:attr:`gaps`) fall inside the first ``count`` merges."""
        return bisect.bisect_left(self.gaps, count)


def load_tokenizer(
    source: str | os.PathLike[str],
    *,
    pretokenizer: str | None = None,
    offline: bool | None = None,
) -> BPETokenizer:
    """Load a BPE tokenizer's ordered merges (as byte pairs) and its pretokenizer.

    Args:
        source: a tokenizer file or directory (any format of :mod:`mixinfer.formats`),
            ``tiktoken:NAME`` or a Hugging Face Hub id ``ORG/NAME`` (see the module docstring).
        pretokenizer: a preset name that overrides the tokenizer's own pretokenizer.
        offline: never use the network; ``None`` means "when ``HF_HUB_OFFLINE`` is set".

    Raises:
        UsageError: ``pretokenizer`` is not a preset name.
        TokenizerNotFoundError: the source does not exist and could not be downloaded.
        TokenizerError: the source exists but is not a usable BPE tokenizer (or is not a regular
            file, or is larger than 1 GiB).
    """
    from mixinfer import formats

    override = preset(pretokenizer) if pretokenizer is not None else None
    src = os.fspath(source)
    if offline is None:
        offline = _env_offline()
    path = Path(src).expanduser()
    exists = os.path.lexists(path)
    scheme = formats.scheme_for(src, exists=exists)
    if scheme is not None:
        tok = scheme.open(src, offline=offline)
    elif exists:
        tok = formats.load_path(path, src)
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


def _env_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


# Re-exported for the modules and tests that import them from here (the formats import
# BPETokenizer from this module, so these imports come after it).
from mixinfer.formats.hf_json import tokenizer_from_json  # noqa: E402
from mixinfer.formats.ranks import recover_merges  # noqa: E402
from mixinfer.formats.tiktoken_file import parse_tiktoken  # noqa: E402

__all__ = ["BPETokenizer", "load_tokenizer", "parse_tiktoken", "recover_merges", "tokenizer_from_json"]
