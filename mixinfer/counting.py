"""Counting pretokens ("words") per category with the tokenizer's own normalizer and pre-tokenizer.

Two exact paths, chosen per pretokenizer:

* For the pre-tokenizers that are one known regex (every preset, and the published byte-level
  files), a document is normalised whole and split by the same pattern in Python's own regex
  engines (:mod:`mixinfer.fastsplit`), which never hand pretokens to Python one by one;
  documents with a character on which that engine and ``tokenizers`` disagree go the second way.
* Otherwise speed comes from pretokenizing each *distinct* piece of text once. A document is
  normalised whole, then cut before every space that sits between two non-space characters:
  every pre-tokenizer that splits at spaces (byte-level regexes, Metaspace, whitespace splitters)
  cuts there too, and HF pre-tokenizer sequences only refine cuts, never join them, so counting
  the pieces and pretokenizing each distinct piece with ``tokenizers`` gives exactly the counts
  of pretokenizing the whole text. For a pre-tokenizer not known to cut at spaces, whole
  documents are pretokenized instead.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixinfer import keys, pretokenizers
from mixinfer.cache import Cache
from mixinfer.errors import SamplesError
from mixinfer.executors import Executor, ProcessExecutor, SerialExecutor, get_executor
from mixinfer.fastsplit import fast_split
from mixinfer.pretokenizers import Pretokenizer
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.samples import Category, ReadStats, iter_documents
from mixinfer.sources import display_path

# tokenizers warns (and disables its thread pool) in forked children; workers need no threads.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Batches sent to a worker process: large enough to amortise pickling, small enough for progress.
_BATCH_BYTES = 4 << 20
_SPACE_CUT = re.compile(r"(?<=\S)(?= \S)")
# Spawning workers costs about a second; below this much text one process is faster.
_PARALLEL_MIN_BYTES = 8 << 20

# SentencePiece presets run after spaces became "▁": cut before a lone "▁" between two other
# characters, where their pattern always starts a new pretoken.
_META_CUT = re.compile(r"(?<=[^▁])(?=▁[^▁])")


def _preset_split_regexes() -> tuple[set[str], set[str]]:
    """Split regexes of the presets: those that cut at spaces, and the SentencePiece ones."""
    spaces: set[str] = set()
    meta: set[str] = set()
    for p in pretokenizers.PRESETS.values():
        spec = json.loads(p.pre_tokenizer_json) if p.pre_tokenizer_json else {}
        nodes = spec.get("pretokenizers", [spec]) if spec.get("type") == "Sequence" else [spec]
        for node in nodes:
            regex = node.get("pattern", {}).get("Regex") if node.get("type") == "Split" else None
            if regex:
                (spaces if p.byte_level else meta).add(regex)
    for pattern in (
        pretokenizers.GPT2_PATTERN,
        pretokenizers.CL100K_PATTERN,
        pretokenizers.O200K_PATTERN,
        pretokenizers.LLAMA3_PATTERN,
    ):
        spaces.update({pattern, pretokenizers.onig_compatible(pattern)})
    return spaces, meta


_SPACE_REGEXES, _META_REGEXES = _preset_split_regexes()


def _cuts_at_spaces(node: Any) -> bool:
    """Whether a pre-tokenizer (JSON) certainly cuts before a space between two non-spaces."""
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    if kind == "Sequence":
        return any(_cuts_at_spaces(p) for p in node.get("pretokenizers", []))
    if kind == "ByteLevel":
        return bool(node.get("use_regex", True))
    if kind in ("Whitespace", "WhitespaceSplit", "BertPreTokenizer"):
        return True
    if kind == "Metaspace":
        return bool(node.get("split", True))
    if kind == "Split":
        pattern = node.get("pattern", {})
        behavior = node.get("behavior")
        if pattern.get("String") == " ":
            return behavior in ("Removed", "Isolated", "MergedWithNext")
        regex = pattern.get("Regex")
        return regex in _SPACE_REGEXES and behavior == "Isolated" and not node.get("invert")
    return False


def cut_rule(pretok: Pretokenizer) -> re.Pattern[str] | None:
    """The regex that cuts normalised text into independently pretokenizable pieces, if any."""
    spec = json.loads(pretok.pre_tokenizer_json) if pretok.pre_tokenizer_json else None
    if _cuts_at_spaces(spec):
        return _SPACE_CUT
    if (
        isinstance(spec, dict)
        and spec.get("type") == "Split"
        and spec.get("pattern", {}).get("Regex") in _META_REGEXES
        and spec.get("behavior") == "Isolated"
        and not spec.get("invert")
    ):
        return _META_CUT
    return None


@dataclass
class WordCounts:
    """The pretokens of one category's samples and how often each occurs.

    Attributes:
        category: the category name.
        words: pretoken as raw bytes -> count.
        bytes: UTF-8 bytes of sample text read (before normalisation): the unit of proportions.
        documents: text units read (documents or lines, see ``--unit``).
        warnings: problems found while reading (invalid UTF-8, skipped files).
    """

    category: str
    words: dict[bytes, int]
    bytes: int
    documents: int
    warnings: list[str] = field(default_factory=list)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Pack into arrays for the cache, words in sorted order."""
        keys = sorted(self.words)
        lengths = np.fromiter((len(k) for k in keys), dtype=np.int64, count=len(keys))
        return {
            "blob": np.frombuffer(b"".join(keys), dtype=np.uint8),
            "lengths": lengths,
            "counts": np.fromiter((self.words[k] for k in keys), dtype=np.int64, count=len(keys)),
        }

    @classmethod
    def from_arrays(cls, category: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> WordCounts:
        """Unpack what :meth:`to_arrays` stored."""
        blob = arrays["blob"].tobytes()
        ends = np.cumsum(arrays["lengths"]).tolist()
        starts = [0, *ends[:-1]]
        words = {blob[s:e]: int(c) for s, e, c in zip(starts, ends, arrays["counts"].tolist(), strict=True)}
        return cls(category, words, int(meta["bytes"]), int(meta["documents"]), meta["warnings"])


class _Counter:
    """Pretokenizes text; built once per process from a :class:`Pretokenizer`."""

    def __init__(self, pretok: Pretokenizer, *, fast: bool = True) -> None:
        self.normalizer, self.pre_tokenizer = pretokenizers.build(pretok)
        self.cut = cut_rule(pretok)
        self.byte_level = pretok.byte_level
        self.fast = fast_split(pretok) if fast else None

    def count(self, texts: Iterable[str]) -> dict[bytes, int]:
        normalize = self.normalizer.normalize_str if self.normalizer is not None else None
        # A list: the texts may be walked twice (documents the fast split cannot take).
        texts = [normalize(text) for text in texts] if normalize else list(texts)
        if self.fast is None:
            return self._count_slow(texts)
        fast = self.fast
        words: Counter[str] = Counter()
        slow: list[str] = []
        chars = 0
        ascii_dubious = bool(fast.disagreements(_ASCII))
        for text in texts:
            # Most documents are ASCII, checked once up front; a set of characters costs more.
            if ascii_dubious or not text.isascii():
                seen = set(text)
                dubious = fast.disagreements(seen)
                if dubious and not dubious.isdisjoint(seen):
                    slow.append(text)
                    continue
            words.update(fast.findall(text))
            chars += len(text)
        if sum(len(word) * n for word, n in words.items()) != chars:
            # The supported patterns match every character; if one ever did not, counting the
            # whole batch the slow way is still exact.
            return self._count_slow(texts)
        out = {word.encode("utf-8"): n for word, n in words.items()}
        if slow:
            _merge(out, self._count_slow(slow))
        return out

    def _count_slow(self, texts: Iterable[str]) -> dict[bytes, int]:
        """Count normalised texts through the ``tokenizers`` pre-tokenizer."""
        pieces: Counter[str] = Counter()
        for text in texts:
            if self.cut is not None:
                pieces.update(self.cut.split(text))
            else:
                pieces[text] += 1
        words: Counter[str] = Counter()
        if self.pre_tokenizer is None:
            words = pieces
        else:
            pretokenize = self.pre_tokenizer.pre_tokenize_str
            once: list[str] = []
            for piece, n in pieces.items():
                if n == 1:
                    # Most distinct pieces occur once: collect them and count in one C-level pass.
                    once.extend(word for word, _ in pretokenize(piece))
                else:
                    for word, _ in pretokenize(piece):
                        words[word] += n
            words.update(once)
        if self.byte_level:
            out: dict[bytes, int] = {}
            for word, n in words.items():
                try:
                    # ByteLevel characters -> code points 0..255 -> the raw bytes.
                    raw = word.translate(_TO_LATIN1).encode("latin-1")
                except UnicodeEncodeError:
                    # A normalizer/pre-tokenizer step after ByteLevel produced non-byte characters.
                    raw = word.encode("utf-8")
                out[raw] = out.get(raw, 0) + n
            return out
        return {word.encode("utf-8"): n for word, n in words.items()}


_ASCII = [chr(i) for i in range(128)]
_TO_LATIN1 = {ord(ch): byte for ch, byte in pretokenizers.BYTE_DECODER.items()}
_WORKER: _Counter | None = None


def _init_worker(pretok: Pretokenizer) -> None:
    global _WORKER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    _WORKER = _Counter(pretok)


def _work_category(category: Category, max_bytes: int, unit: str) -> tuple[dict[bytes, int], ReadStats]:
    assert _WORKER is not None
    stats = ReadStats()
    words: dict[bytes, int] = {}
    for batch in _batches(iter_documents(category, max_bytes=max_bytes, unit=unit, stats=stats)):
        _merge(words, _WORKER.count(batch))
    return words, stats


def _batches(texts: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= _BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _merge(into: dict[bytes, int], part: dict[bytes, int]) -> None:
    get = into.get
    for word, n in part.items():
        into[word] = get(word, 0) + n


def count_key(category: Category, pretok: Pretokenizer, max_bytes: int, unit: str) -> str:
    """The cache key of a category's word counts (see :func:`mixinfer.keys.words_key`)."""
    return keys.words_key(category, pretok, max_bytes, unit)


def estimate_bytes(categories: Sequence[Category], max_bytes: int) -> int:
    """A rough total of the text to read (gzip assumed to compress 3x), for progress bars."""
    total = 0
    for cat in categories:
        size = sum(f.size * (3 if f.compressed else 1) for f in cat.files)
        total += min(size, max_bytes)
    return total


def count_words(
    categories: Sequence[Category],
    pretok: Pretokenizer,
    *,
    max_bytes: int,
    unit: str = "document",
    cache: Cache | None = None,
    workers: int | None = None,
    executor: Executor | str | None = None,
    progress: ProgressCallback = noop,
) -> list[WordCounts]:
    """Count the words of every category, reading each within ``max_bytes``.

    Categories found in the cache are loaded; the rest are counted one job per category on
    ``executor`` (an :class:`~mixinfer.executors.Executor`, or a registry name for
    :func:`~mixinfer.executors.get_executor`; the caller closes an executor it passes). By default
    (``None`` or ``"auto"``) they are counted in ``workers`` processes (default: all cores) when
    there is enough text to pay for starting them, else in this process.
    """
    cache = cache or Cache(None)
    results: dict[int, WordCounts] = {}
    todo: list[int] = []
    for i, cat in enumerate(categories):
        hit = cache.load("words", count_key(cat, pretok, max_bytes, unit))
        if hit is not None:
            results[i] = WordCounts.from_arrays(cat.name, *hit)
        else:
            todo.append(i)
    total = estimate_bytes([categories[i] for i in todo], max_bytes)
    done = 0
    progress(Progress("count", 0, total, "bytes"))

    owned: Executor | None = None
    if executor is None or executor == "auto":
        n = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        if n > 1 and total >= _PARALLEL_MIN_BYTES:
            executor = owned = ProcessExecutor(n)
        else:
            executor = None
    elif isinstance(executor, str):
        executor = owned = get_executor(executor, workers)
    partial: dict[int, dict[bytes, int]] = {}
    stats: dict[int, ReadStats] = {}
    try:
        if executor is None or isinstance(executor, SerialExecutor):
            # In this process, with progress per batch rather than per category.
            counter = _Counter(pretok)
            for i in todo:
                stats[i] = ReadStats()
                partial[i] = {}
                texts = iter_documents(categories[i], max_bytes=max_bytes, unit=unit, stats=stats[i])
                for batch in _batches(texts):
                    _merge(partial[i], counter.count(batch))
                    done += sum(len(t) for t in batch)
                    progress(Progress("count", done, total, "bytes", categories[i].name))
        elif todo:
            # One job per category: workers read and count a whole category each, so the parent
            # neither reads text nor merges partial counts and every worker stays busy. Largest
            # categories first, so the last job to finish is a short one.
            order = sorted(todo, key=lambda i: -estimate_bytes([categories[i]], max_bytes))
            jobs = [(categories[i], max_bytes, unit) for i in order]
            results_iter = executor.map_unordered(
                _work_category, jobs, initializer=_init_worker, initargs=(pretok,)
            )
            with closing(results_iter):
                for k, (words, st) in results_iter:
                    i = order[k]
                    partial[i], stats[i] = words, st
                    done += st.bytes
                    progress(Progress("count", done, total, "bytes", categories[i].name))
    finally:
        if owned is not None:
            owned.close()

    for i in todo:
        cat = categories[i]
        st = stats[i]
        if st.bytes == 0:
            if max_bytes < 64 and any(f.size > 0 for f in cat.files):
                # The budget cuts the first document at a character boundary: nothing is left.
                raise SamplesError(
                    f"--max-bytes {max_bytes} is too small to read any text of category '{cat.name}' "
                    "(the budget ends inside its first character); use a budget of at least a few "
                    "hundred kB, e.g. --max-bytes 500kB"
                )
            raise SamplesError(
                f"category '{cat.name}' has no readable text (files: {len(cat.files)}, all empty, "
                f"binary or unreadable); add text or remove {display_path(cat.files[0].path.parent)}"
            )
        wc = WordCounts(cat.name, partial.pop(i), st.bytes, st.documents, st.warnings + cat.skipped)
        if cache.enabled:
            cache.store(
                "words",
                count_key(cat, pretok, max_bytes, unit),
                wc.to_arrays(),
                {"bytes": wc.bytes, "documents": wc.documents, "warnings": wc.warnings},
            )
        results[i] = wc
    progress(Progress("count", total, total, "bytes"))
    return [results[i] for i in range(len(categories))]


def count_documents(texts: Iterable[str], pretok: Pretokenizer) -> dict[bytes, int]:
    """The words of ``texts`` (already cut into units) and their counts, in this process.

    For text held in memory (a simulation's attack samples); :func:`count_words` reads categories.
    """
    counter = _Counter(pretok)
    words: dict[bytes, int] = {}
    for batch in _batches(texts):
        _merge(words, counter.count(batch))
    return words
