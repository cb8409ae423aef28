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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixinfer import executors, keys, pretokenizers
from mixinfer.cache import Cache
from mixinfer.errors import MixinferError, SamplesError
from mixinfer.executors import Executor, ProcessExecutor, Reducer, SerialExecutor, get_executor
from mixinfer.fastsplit import fast_split
from mixinfer.pretokenizers import Pretokenizer
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.samples import Category, ReadStats, SampleFile, iter_documents
from mixinfer.sources import FilePart, display_path, file_parts, iter_part_documents

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
        warnings: problems found while reading the text (invalid UTF-8, over-long records); what
            the walk of the samples skipped is in :attr:`Category.skipped`.
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


@dataclass
class PartSummary:
    """What counting one file or part found (without its words: small, sent to the client).

    Attributes:
        stats: bytes and documents read, warnings, whether the budget ended in it.
        cap: the budget it was read with.
        error: a :class:`~mixinfer.errors.MixinferError` reading it raised, if any (returned, not
            raised: the caller decides whether the run reads that far).
        error_at: bytes read before the error.
    """

    stats: ReadStats
    cap: int
    error: MixinferError | None = None
    error_at: int = 0


@dataclass
class PartCount:
    """One job's words (stays on a cluster's worker) and a :class:`PartSummary` per file or part
    it read, in reading order (a job reads several small files one after another)."""

    words: dict[bytes, int]
    summary: list[PartSummary]


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


def _work_unit(files: Sequence[SampleFile], part: FilePart | None, cap: int, unit: str) -> PartCount:
    """One job: count some consecutive files (or one part of one file) as the straight read of
    the category does when ``cap`` bytes of budget are left where they start."""
    assert _WORKER is not None
    steps: list[PartSummary] = []

    def texts() -> Iterator[str]:
        left = cap
        for f in files:
            step = PartSummary(ReadStats(), left)
            steps.append(step)
            try:
                yield from iter_part_documents(f, part, max_bytes=left, unit=unit, stats=step.stats)
            except MixinferError as exc:
                # Not raised here: whether reading gets this far depends on the files before
                # this one, which only the caller knows (a damaged record past the budget is
                # never read).
                step.error, step.error_at = exc, step.stats.bytes
                return
            if step.stats.exhausted:
                return
            left -= step.stats.bytes

    words: dict[bytes, int] = {}
    # Batches run across files: small files are not counted one call each.
    for batch in _batches(texts()):
        _merge(words, _WORKER.count(batch))
    return PartCount(words, steps)


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


def _words_of(value: PartCount | dict[bytes, int] | None) -> dict[bytes, int]:
    if value is None:
        return {}
    return value.words if isinstance(value, PartCount) else value


def _merged(a: PartCount | dict[bytes, int], b: PartCount | dict[bytes, int]) -> dict[bytes, int]:
    """The sum of two partial counts, as a new dict (runs on workers: never changes its inputs)."""
    x, y = _words_of(a), _words_of(b)
    if len(x) < len(y):
        x, y = y, x
    out = dict(x)
    _merge(out, y)
    return out


def _merge_into(a: PartCount | dict[bytes, int], b: PartCount | dict[bytes, int]) -> dict[bytes, int]:
    """The sum of two partial counts, updating ``a`` (the client's own running total)."""
    x = _words_of(a)
    _merge(x, _words_of(b))
    return x


def _summary_of(result: PartCount) -> list[PartSummary]:
    return result.summary


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

    Categories found in the cache are loaded; the rest are counted on ``executor`` (an
    :class:`~mixinfer.executors.Executor`, or a registry name for
    :func:`~mixinfer.executors.get_executor`; the caller closes an executor it passes). By default
    (``None`` or ``"auto"``) they are counted in ``workers`` processes (default: all cores) when
    there is enough text to pay for starting them, else in this process.

    In this process (``serial``) a category is read straight through. Otherwise every file, and
    every part of a large file (:func:`~mixinfer.sources.file_parts`), is one job, and the budget
    is applied afterwards so that the result is exactly the straight read's: see
    :func:`_count_in_units`.
    """
    cache = cache or Cache(None)
    results: dict[int, WordCounts] = {}
    todo: list[int] = []
    for i, cat in enumerate(categories):
        hit = cache.load("words", count_key(cat, pretok, max_bytes, unit))
        # The stored warnings are those of reading the text. What the walk of the folder skipped
        # (links gone, files of other types) belongs to each run and is reported from its own
        # walk (stages.report), never from the cache. An entry from before "read_warnings" mixed
        # the two and is counted again (same key: the traces and solutions stored stay valid).
        if hit is not None and "read_warnings" in hit[1]:
            arrays, meta = hit
            results[i] = WordCounts.from_arrays(cat.name, arrays, {**meta, "warnings": meta["read_warnings"]})
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
            for i, (words, st) in _count_in_units(
                [categories[i] for i in todo], pretok, max_bytes, unit, executor, total, progress
            ).items():
                partial[todo[i]], stats[todo[i]] = words, st
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
        wc = WordCounts(cat.name, partial.pop(i), st.bytes, st.documents, list(st.warnings))
        if cache.enabled:
            cache.store(
                "words",
                count_key(cat, pretok, max_bytes, unit),
                wc.to_arrays(),
                {"bytes": wc.bytes, "documents": wc.documents, "read_warnings": st.warnings},
            )
        results[i] = wc
    progress(Progress("count", total, total, "bytes"))
    return [results[i] for i in range(len(categories))]


# Files larger than this are split into parts (JSONL byte ranges cut at records, Parquet row
# groups), each one job: one large file then keeps every worker busy.
_PART_BYTES = 32 << 20
# Consecutive small files are counted together, up to this much: a folder of thousands of small
# documents is not thousands of round trips.
_GROUP_BYTES = 4 << 20


@dataclass(frozen=True)
class _Unit:
    """One job's share of a category, in reading order: consecutive whole files, or one part of
    one file (``part``). ``file_index`` is the category's index of the first file."""

    file_index: int
    files: tuple[SampleFile, ...]
    part: FilePart | None
    estimate: int  # bytes of text it may hold (compressed files: 3x), for scheduling


def _units(category: Category) -> list[_Unit]:
    """A category's jobs in reading order: a file larger than ``_PART_BYTES`` that can be entered
    in the middle is split (:func:`~mixinfer.sources.file_parts`), one job per part; other files
    are taken together, in order, until they hold about ``_GROUP_BYTES``."""
    units: list[_Unit] = []
    group: list[SampleFile] = []
    group_start = group_size = 0

    def close_group() -> None:
        nonlocal group, group_size
        if group:
            units.append(_Unit(group_start, tuple(group), None, group_size))
        group, group_size = [], 0

    for k, f in enumerate(category.files):
        parts = file_parts(f, _PART_BYTES)
        if parts is None:
            if not group:
                group_start = k
            group.append(f)
            group_size += _estimate(f, f.size)
            if group_size >= _GROUP_BYTES:
                close_group()
            continue
        close_group()
        for p in parts:
            # Row groups carry no byte range: they share the file's size.
            size = min(p.end, f.size) - p.start if p.kind == "bytes" else f.size // len(parts)
            units.append(_Unit(k, (f,), p, _estimate(f, size)))
    close_group()
    return units


def _estimate(f: SampleFile, size: int) -> int:
    return size * (3 if f.name.endswith((".gz", ".zst")) else 1)


def _acceptable(steps: Sequence[PartSummary], unit: _Unit, left: int) -> bool:
    """Whether a unit counted with more budget than ``left`` gives what reading it with ``left``
    gives, which is what the straight read of the category finds there; file by file.

    Read with the same budget, a file is the same computation. With more: the same documents come
    in the same order, so when the larger budget was not used up and what was read stays below
    ``left``, the smaller one reads the same documents to the same end (and meets the same error at
    the same point). A text file is one document read only up to its budget, and a binary check
    looks at what was read; it is taken only when it was read whole (text longer than ``left``
    means it was not) and gave text.
    """
    for step, f in zip(steps, unit.files):  # noqa: B905 - a job stops at an error or the budget's end
        st = step.stats
        if step.cap != left:
            if st.exhausted:
                return False
            if f.kind == "txt":
                if step.error is not None or not 0 < st.bytes < left:
                    return False
            elif step.error is not None:
                if step.error_at >= left:
                    return False
            elif st.bytes >= left:
                return False
        left -= st.bytes
    return True


class _Walk:
    """One category's units taken in reading order as their counts arrive: the budget carried from
    unit to unit as a straight read carries it, each unit's count taken or sent back for a
    recount with the exact budget left (see :func:`_acceptable`)."""

    def __init__(self, position: int, category: Category, budget: int, reducer: Reducer) -> None:
        self.position = position
        self.category = category
        self.units = _units(category)
        self.k = 0  # the next unit to take
        self.left = budget  # the budget left where unit k starts
        self.stats = ReadStats()
        self.reducer = reducer
        self.results: dict[int, tuple[list[PartSummary], Any]] = {}
        self.stopped_file = -1  # a file whose rest is skipped (an over-long JSONL record)
        self.taken_estimate = 0
        self.error: MixinferError | None = None
        self.done = budget <= 0 or not self.units

    def jobs(self) -> list[tuple[int, int]]:
        """The units to count next and the budget to count each with: unit k with the exact
        budget left, then the following ones (with the same, larger-or-equal budget) while the
        text they probably hold fits in it."""
        if self.done:
            return []
        ratio = self.stats.bytes / self.taken_estimate if self.taken_estimate else 1.0
        out = [(self.k, self.left)]
        expected = self.units[self.k].estimate * ratio
        for j in range(self.k + 1, len(self.units)):
            if expected >= self.left:
                break
            if j in self.results:
                expected += sum(step.stats.bytes for step in self.results[j][0])
            else:
                out.append((j, self.left))
                expected += self.units[j].estimate * ratio
        return out

    def arrived(self, j: int, summary: list[PartSummary], handle: Any) -> int:
        """Record unit j's count; take every unit now ready in order. Returns the bytes taken."""
        before = self.stats.bytes
        if not self.done:
            self.results[j] = (summary, handle)
        while not self.done:
            unit = self.units[self.k]
            if unit.file_index == self.stopped_file:
                # Parts after an over-long JSONL record: the straight read skips the rest of the file.
                self.results.pop(self.k, None)
                self._next()
                continue
            if self.k not in self.results:
                break
            steps, handle = self.results.pop(self.k)
            if not _acceptable(steps, unit, self.left):
                break  # counted again with the exact budget in the next round
            last = steps[-1]
            if last.error is not None:
                # The straight read stops here; the caller raises the first category's error.
                self.error = last.error
                self.done = True
                self.results.clear()
                break
            for step in steps:
                self.stats.bytes += step.stats.bytes
                self.stats.documents += step.stats.documents
                self.stats.replaced_chars += step.stats.replaced_chars
                self.stats.warnings.extend(step.stats.warnings)
                self.left -= step.stats.bytes
            self.taken_estimate += unit.estimate
            self.reducer.add(handle)
            if last.stats.exhausted:
                self.done = True
                self.results.clear()  # releases counts past the budget
                break
            if unit.part is not None and last.stats.file_stopped:
                self.stopped_file = unit.file_index
            self._next()
        return self.stats.bytes - before

    def _next(self) -> None:
        self.k += 1
        if self.k == len(self.units):
            self.done = True


def _count_in_units(
    categories: Sequence[Category],
    pretok: Pretokenizer,
    max_bytes: int,
    unit: str,
    executor: Executor,
    total: int,
    progress: ProgressCallback,
) -> dict[int, tuple[dict[bytes, int], ReadStats]]:
    """Count categories one job per file, file part or run of small files (:func:`_units`); the
    same counts as reading each category straight.

    How the budget stays exact: a unit's text depends on the budget left where it starts, which
    depends on every unit before it. So units are counted speculatively, each with the budget left
    at the first unit not yet taken (an upper bound), in parallel; then, per category, in reading
    order, a unit's count is taken when :func:`_acceptable` shows that the true budget left there
    gives the same text, and the budget left shrinks by its bytes. The first unit that fails is
    counted again with the exact budget left (a second, short round: usually the one unit in
    which the budget ends, per category). Units are scheduled only while the text they probably
    hold (file size, 3x for compressed files, corrected by what earlier units held) fits in the
    budget, so a category much larger than its budget is not read whole. Taken counts are merged
    by a :func:`~mixinfer.executors.reducer` (on a cluster: a tree of merge tasks on the
    workers, so the client receives one dict per category; locally: as they arrive).
    """
    walks: list[_Walk] = []
    for i, cat in enumerate(categories):
        budget = max_bytes if cat.max_bytes is None else min(max_bytes, cat.max_bytes)
        walks.append(_Walk(i, cat, budget, executors.reducer(executor, _merged, merge_into=_merge_into)))
    # Largest categories first, so the last jobs to finish are short ones; units in reading order.
    order = sorted(walks, key=lambda w: -estimate_bytes([w.category], max_bytes))
    done = 0
    try:
        while True:
            plan = [(w, j, cap) for w in order for j, cap in w.jobs()]
            if not plan:
                break
            jobs = [(w.units[j].files, w.units[j].part, cap, unit) for w, j, cap in plan]
            results = executors.map_kept(
                executor,
                _work_unit,
                jobs,
                summarize=_summary_of,
                initializer=_init_worker,
                initargs=(pretok,),
            )
            with closing(results):
                for index, summary, handle in results:
                    walk, j, _ = plan[index]
                    taken = walk.arrived(j, summary, handle)
                    if taken:
                        done += taken
                        progress(Progress("count", done, total, "bytes", walk.category.name))
                    if walk.error is not None:
                        # The straight read raises the first error in category order: categories
                        # after this one no longer matter.
                        for w in walks[walk.position + 1 :]:
                            w.done = True
                            w.results.clear()
                    if all(w.done for w in walks):
                        break  # closing the iteration cancels speculative jobs still running
        failed = [w for w in walks if w.error is not None]
        if failed:
            raise failed[0].error  # type: ignore[misc]
        return {w.position: (_words_of(w.reducer.result()), w.stats) for w in walks}
    except BaseException:
        for w in walks:
            w.results.clear()
            w.reducer.cancel()
        raise


def count_documents(texts: Iterable[str], pretok: Pretokenizer) -> dict[bytes, int]:
    """The words of ``texts`` (already cut into units) and their counts, in this process.

    For text held in memory (a simulation's attack samples); :func:`count_words` reads categories.
    """
    counter = _Counter(pretok)
    words: dict[bytes, int] = {}
    for batch in _batches(texts):
        _merge(words, counter.count(batch))
    return words
