"""The stages of an inference, each with explicit inputs and outputs.

    load -> prepare (clean, base) -> samples -> count -> replay -> solve -> report

:func:`mixinfer.infer`, :func:`mixinfer.audit` and :func:`mixinfer.simulate` compose these
directly: an audit counts once per pretokenizer and replays once per merge prefix by passing the
same stage outputs to several tokenizers, and a simulation counts texts it holds in memory.
Every stage takes what it needs as arguments and returns a typed value; none reads another's
cache entries. Cache keys come from :mod:`mixinfer.keys`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mixinfer import keys
from mixinfer.bootstrap import DEFAULT_BLOCKS, Blocks, BootstrapResult, count_and_replay_blocks
from mixinfer.bootstrap import bootstrap as run_bootstrap
from mixinfer.cleaning import CleaningReport, clean_merges, disabled_report
from mixinfer.counting import WordCounts, count_documents, count_words
from mixinfer.diagnostics import canonical, diagnose
from mixinfer.errors import MixinferError, SamplesError, TokenizerError, UsageError
from mixinfer.estimators import cache_tag, estimate
from mixinfer.executors import Executor, ProcessExecutor, auto_executor
from mixinfer.options import Options, Runtime
from mixinfer.pretokenizers import Pretokenizer, preset
from mixinfer.progress import Progress, ProgressCallback
from mixinfer.replay import TokenTable, Trace, build_traces
from mixinfer.report import CategoryStats, InferenceResult, read_truth, validate_truth
from mixinfer.samples import DEFAULT_MAX_BYTES, Category
from mixinfer.solver import LPDetails, MixtureLP, snapshot_state
from mixinfer.sources import open_samples
from mixinfer.tokenizer import BPETokenizer, load_tokenizer

TRUTH_FILE = "truth.json"

TokenizerSource = str | os.PathLike[str] | BPETokenizer
SamplesSpec = str | os.PathLike[str] | None


# -- load and prepare --------------------------------------------------------------------------------


def load(source: TokenizerSource, options: Options) -> BPETokenizer:
    """Stage 1: the tokenizer, loaded from any source (or given), with ``--pretokenizer`` applied."""
    if isinstance(source, BPETokenizer):
        if options.pretokenizer is None:
            return source
        p = preset(options.pretokenizer)
        return replace(source, pretokenizer=p, notes=[*source.notes, f"pretokenizer: preset '{p.name}'"])
    return load_tokenizer(source, pretokenizer=options.pretokenizer, offline=options.offline)


@dataclass(frozen=True)
class Prepared:
    """A tokenizer ready to replay: its cleaned merges and the stretch the LP constrains.

    Attributes:
        tok: the tokenizer with its merge list cleaned (or as loaded, with ``clean=False``).
        cleaning: what cleaning removed.
        merges_used: leading merges replayed (``--merges`` capped at the list's length).
        start_merge: the first constrained merge (from ``--start-merge`` or ``--base``).
        base: for an extended tokenizer, its base and the shared prefix; else ``None``.
        notes: facts about the tokenizer for the report.
    """

    tok: BPETokenizer
    cleaning: CleaningReport
    merges_used: int
    start_merge: int
    base: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    @property
    def merges_key(self) -> str:
        """The key of the replayed merge prefix (same key: same traces for the same words)."""
        return keys.merges_key(self.tok, self.merges_used)


def clean(tok: BPETokenizer, options: Options) -> tuple[BPETokenizer, CleaningReport]:
    """Stage 2a: clean ``tok``'s merge list (or only check it can be replayed, with ``clean=False``)."""
    if options.clean:
        cleaned, report = clean_merges(tok)
        if not cleaned.merges:
            raise TokenizerError(
                f"{tok.source}: no merge is left after cleaning the merge list "
                f"({report.summary()}); check the file, or pass --no-clean to use it as it is"
            )
        return cleaned, report
    try:
        TokenTable.build(tok)
    except TokenizerError as exc:
        raise TokenizerError(
            f"{exc}. This merge list is not in order of token creation (SentencePiece "
            "conversions list merges by piece score); run without --no-clean so that it is "
            "cleaned first"
        ) from None
    return tok, disabled_report(tok)


def prepare(tok: BPETokenizer, options: Options, base: TokenizerSource | None = None) -> Prepared:
    """Stage 2: clean the merges, find the base's shared prefix, fix the replayed stretch."""
    cleaned, report = clean(tok, options)
    start, base_info = options.start_merge, None
    merges, past_base = options.merges, ""
    if base is not None:
        if options.start_merge:
            raise UsageError("give either --base or --start-merge, not both (--base finds the start merge)")
        base_tok = clean(load(base, options.with_(pretokenizer=None)), options)[0]
        start, base_info = shared_prefix_with(cleaned, base_tok)
        if merges <= start:
            # A T that does not reach past the shared prefix cannot count every merge (nothing
            # would be constrained): it counts the new ones, so `--base` alone infers from up to
            # DEFAULT_MERGES new merges.
            merges = start + options.merges
            past_base = (
                f"--merges {options.merges} does not reach past the {start} merges shared with the "
                f"base, so it counts the new merges (pass --merges larger than {start} to count "
                f"from the first merge instead)"
            )
    used = min(merges, len(cleaned.merges))
    notes = list(cleaned.notes)
    if past_base:
        notes.append(past_base)
    if used < merges:
        notes.append(f"the tokenizer has {len(cleaned.merges)} merges; using all of them")
    if base_info is not None:
        notes.append(
            f"base {base_info['source']}: the first {start} merges are shared; they are "
            f"replayed without constraints and the mixture is inferred from merges {start}..{used - 1}"
        )
    if not 0 <= start < used:
        raise UsageError(f"--start-merge {start} must be at least 0 and below the merges used ({used})")
    lost = cleaned.gaps_within(used) - cleaned.gaps_within(start)
    if lost:
        notes.append(
            f"{lost} token(s) of the ranks that no merge of two lower-ranked tokens builds fall inside "
            f"the constrained merges {start}..{used - 1} (tiktoken looks whole pieces up before BPE): "
            f"that stretch has {lost} merge(s) fewer than ranks"
        )
    return Prepared(cleaned, report, used, start, base_info, tuple(notes))


def shared_prefix(a: Sequence[tuple[bytes, bytes]], b: Sequence[tuple[bytes, bytes]]) -> int:
    """Length of the longest common prefix of two merge lists."""
    n = min(len(a), len(b))
    k = 0
    # Compare in blocks first (list slices compare in C), then merge by merge.
    step = 1024
    while k + step <= n and a[k : k + step] == b[k : k + step]:
        k += step
    while k < n and a[k] == b[k]:
        k += 1
    return k


def shared_prefix_with(tok: BPETokenizer, base_tok: BPETokenizer) -> tuple[int, dict[str, Any]]:
    """The number of leading merges ``tok`` shares with ``base_tok`` (both prepared alike).

    Returns ``(K, {"source": ..., "shared_prefix": K, "base_merges": ...})``.

    Raises:
        UsageError: the two merge lists share no merge at the start, or ``tok`` adds nothing.
    """
    k = shared_prefix(tok.merges, base_tok.merges)
    source = str(base_tok.source)
    if k == 0:
        raise UsageError(
            f"{tok.source} does not extend --base {source}: their first merges differ "
            f"({_show_merge(tok.merges[0])} vs {_show_merge(base_tok.merges[0])}); check that "
            "the base is the tokenizer it was built from, or use --start-merge K"
        )
    if k >= len(tok.merges):
        raise UsageError(
            f"{tok.source} adds no merge to --base {source} (all its {len(tok.merges)} merges "
            "are the base's); there is nothing to infer from"
        )
    return k, {"source": source, "shared_prefix": k, "base_merges": len(base_tok.merges)}


def _show_merge(pair: tuple[bytes, bytes]) -> str:
    return repr(" ".join(p.decode("utf-8", "backslashreplace") for p in pair))


# -- samples and counting -----------------------------------------------------------------------------


def samples(spec: SamplesSpec) -> tuple[str, list[Category]]:
    """Stage 3: the categories of a sample source (:func:`mixinfer.sources.open_samples`: a
    directory today; default: the bundled samples), and the source as printable text."""
    source = open_samples(spec)
    return source.spec, source.categories()


@dataclass
class Counted:
    """Word counts of every category under one pretokenizer, and their cache keys.

    ``keys[i]`` identifies ``counts[i]``: equal keys mean equal words, so traces are keyed by it.
    """

    counts: list[WordCounts]
    keys: list[str]

    @property
    def names(self) -> list[str]:
        """Category names, in order."""
        return [wc.category for wc in self.counts]

    @property
    def sample_bytes(self) -> list[int]:
        """Bytes read per category: the unit of the reported proportions."""
        return [wc.bytes for wc in self.counts]


def count(
    categories: Sequence[Category], pretok: Pretokenizer, options: Options, runtime: Runtime
) -> Counted:
    """Stage 4: count every category's words with the tokenizer's pretokenizer (cached)."""
    counts = count_words(
        categories,
        pretok,
        max_bytes=options.max_bytes,
        unit=options.unit,
        cache=runtime.cache,
        workers=runtime.workers,
        progress=runtime.progress,
        executor=runtime.pool(),
    )
    return Counted(counts, words_keys(categories, pretok, options))


def count_texts(
    texts: Mapping[str, Sequence[str]],
    content_keys: Mapping[str, str],
    pretok: Pretokenizer,
    options: Options,
    runtime: Runtime,
) -> Counted:
    """Stage 4, for text in memory: count each named list of units (documents or lines, already
    cut to the budget); ``content_keys[name]`` identifies the text for the cache."""
    counts: list[WordCounts] = []
    words_keys: list[str] = []
    for name, units in texts.items():
        key = keys.texts_words_key(content_keys[name], pretok, options.max_bytes, options.unit)
        hit = runtime.cache.load("words", key)
        if hit is not None:
            wc = WordCounts.from_arrays(name, *hit)
        else:
            size = sum(len(u.encode("utf-8")) for u in units)
            if size == 0:
                raise SamplesError(f"category '{name}' has no text to count")
            wc = WordCounts(name, count_documents(units, pretok), size, len(units))
            meta = {"bytes": wc.bytes, "documents": wc.documents, "warnings": wc.warnings}
            runtime.cache.store("words", key, wc.to_arrays(), meta)
        counts.append(wc)
        words_keys.append(key)
    return Counted(counts, words_keys)


# -- replay and solve -----------------------------------------------------------------------------------


def replay(counted: Counted, prepared: Prepared, runtime: Runtime) -> list[Trace]:
    """Stage 5: replay the prepared merges over every category's words (cached; parallel)."""
    return build_traces(
        counted.counts,
        counted.keys,
        prepared.tok,
        prepared.merges_used,
        runtime.cache,
        workers=runtime.workers,
        progress=runtime.progress,
        executor=runtime.pool(),
    )


@dataclass
class Solution:
    """The LP's answer in bytes, how it was reached, and what was read to reach it.

    Attributes:
        proportions: category -> fraction of training bytes (sums to 1).
        solver: name, status, objective, rounds, constraints, variables (and more when solved).
        samples: per category, what was read (bytes, documents, distinct words).
        notes / warnings: for the report (warnings include those met reading the samples).
        diagnostics: what the samples leave unexplained (:func:`mixinfer.diagnostics.diagnose`).
        details: the final LP's slacks, rows and duals (``None`` when loaded from the cache).
        warm: HiGHS's final model and basis as arrays (:func:`mixinfer.solver.snapshot_state`),
            kept for the bootstrap (``None`` without one, or when loaded from the cache).
    """

    proportions: dict[str, float]
    solver: dict[str, Any]
    samples: dict[str, CategoryStats] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    details: LPDetails | None = None
    warm: dict[str, Any] | None = field(default=None, repr=False, compare=False)


# The key order of a fresh solve's solver object (solve below), restored on a cached one.
_SOLVER_ORDER = (
    "name",
    "status",
    "objective",
    "rounds",
    "constraints",
    "variables",
    "pairs",
    "max_violation",
    "normalize",
    "estimator",
    "solver_seconds",
)


def words_keys(categories: Sequence[Category], pretok: Pretokenizer, options: Options) -> list[str]:
    """The word-count keys of categories, known before anything is read (see :func:`lookup`)."""
    return [keys.words_key(c, pretok, options.max_bytes, options.unit) for c in categories]


def solution_key(words: Sequence[str], prepared: Prepared, options: Options) -> str:
    """The cache key of the LP's solution: two tokenizers with the same key have the same LP."""
    # The words keys fix the words and so the bytes read; the merges key fixes the traces.
    traces = [keys.trace_key(k, prepared.tok, prepared.merges_used) for k in words]
    return keys.solution_key(
        traces, prepared.start_merge, options.solver, options.normalize, cache_tag(options.estimator)
    )


def lookup(
    names: Sequence[str], words: Sequence[str], prepared: Prepared, options: Options, runtime: Runtime
) -> Solution | None:
    """Stage 6, from the cache: an optimal solution stored by an earlier identical run, or ``None``.

    Tried before counting: a warm run then reads neither word counts nor traces.
    """
    if len(names) < 2:
        return None
    hit = runtime.cache.load("solution", solution_key(words, prepared, options))
    if hit is None:
        return None
    arrays, meta = hit
    try:
        # The cache stores JSON with sorted keys; restore the report's key order.
        stored = meta["solver"]
        info = {k: stored[k] for k in _SOLVER_ORDER if k in stored}
        info.update({k: v for k, v in stored.items() if k not in info})
        stats = {n: CategoryStats(*(int(x) for x in meta["samples"][n])) for n in names}
        proportions = dict(zip(names, arrays["alpha"].tolist(), strict=True))
        notes, warnings = list(meta["notes"]), list(meta["sample_warnings"])
        return Solution(proportions, info, stats, notes, warnings, canonical(meta["diagnostics"]))
    except (KeyError, TypeError, ValueError):
        return None  # an entry of another layout: solve again (and overwrite it)


def solve(
    traces: Sequence[Trace], counted: Counted, prepared: Prepared, options: Options, runtime: Runtime
) -> Solution:
    """Stage 6: the mixture LP over the traces (an optimal solution is cached for :func:`lookup`)."""
    names = counted.names
    stats = {wc.category: CategoryStats(wc.bytes, wc.documents, len(wc.words)) for wc in counted.counts}
    sample_warnings = [w for wc in counted.counts for w in wc.warnings]
    if len(names) == 1:
        trivial = {"name": "none", "status": "trivial", "objective": 0.0, "rounds": 0}
        return Solution(
            {names[0]: 1.0},
            {**trivial, "constraints": 0, "variables": 0},
            stats,
            notes=[
                f"only one category ('{names[0]}'): the answer is trivially 100%; add more "
                "categories for a real inference"
            ],
            warnings=sample_warnings,
        )
    t = time.monotonic()
    sample_bytes = np.array(counted.sample_bytes, dtype=float)
    units = sample_bytes
    if options.normalize == "pairs":
        units = np.array([max(int(tr.init_counts.sum()), 1) for tr in traces], dtype=float)
    table = TokenTable.build(prepared.tok)
    codes = table.merge_codes
    lp = MixtureLP(list(traces), units.tolist(), codes, start=prepared.start_merge, names=names)
    # No floor here: a limit already spent building the LP stops the solver before its first
    # round (the starting point is returned, marked time_limit), so small limits are honoured.
    limit = options.time_limit
    remaining = None if limit is None else max(limit - (time.monotonic() - t), 0.0)
    result, notes = estimate(
        options.estimator,
        lp,
        all_merge_codes=codes,
        solver=options.solver,
        time_limit=remaining,
        progress=runtime.progress,
        keep_snapshot=options.bootstrap > 0,
    )
    warnings = sample_warnings + list(getattr(result, "warnings", []))
    if result.status == "time_limit":
        warnings.append(
            f"the time limit stopped the LP after {result.rounds} rounds with constraints "
            f"still violated (largest violation {result.max_violation:.3g}); the proportions "
            f"are the best found so far, not the optimum; raise --time-limit for an exact answer"
        )
    alpha = result.proportions
    if options.normalize == "pairs":
        # alpha counts each category's pairs; a category's bytes per pair turn it into bytes.
        alpha = alpha * sample_bytes / units
        alpha = alpha / alpha.sum()
    info = {
        "name": result.backend,
        "status": result.status,
        "objective": result.objective,
        "rounds": result.rounds,
        "constraints": result.constraints,
        "variables": result.variables,
        "pairs": lp.pairs,
        "max_violation": result.max_violation,
        "normalize": options.normalize,
        "estimator": options.estimator,
        "solver_seconds": result.seconds,
    }
    diagnostics = diagnose(lp, result, names, table)
    proportions = dict(zip(names, alpha.tolist(), strict=True))
    solution = Solution(proportions, info, stats, list(notes), warnings, diagnostics, result.details)
    if (
        result.snapshot is not None
        and result.status == "optimal"
        and lp.allowed is None
        and lp.pair_cost is None
    ):
        # The plain LP's optimum: the bootstrap's workers start from it instead of solving it again.
        solution.warm = snapshot_state(result.snapshot)
    remember(solution, counted, prepared, options, runtime)
    return solution


def remember(
    solution: Solution, counted: Counted, prepared: Prepared, options: Options, runtime: Runtime
) -> None:
    """Store an optimal ``solution`` of :func:`solve` in the cache, for :func:`lookup`.

    :func:`solve` calls it; a caller that solved elsewhere (an audit's LPs solved in other
    processes, with no cache of their own) calls it with the solution it got back.
    """
    if solution.solver.get("status") != "optimal":
        return
    stats = solution.samples
    meta = {
        "solver": solution.solver,
        "notes": solution.notes,
        "samples": {n: [s.bytes, s.documents, s.words] for n, s in stats.items()},
        "sample_warnings": solution.warnings,
        "diagnostics": solution.diagnostics,
    }
    alpha = np.array([solution.proportions[n] for n in counted.names])
    runtime.cache.store("solution", solution_key(counted.keys, prepared, options), {"alpha": alpha}, meta)


@contextmanager
def _pool_for(runtime: Runtime, jobs: int) -> Iterator[Executor]:
    """The runtime's executor, or for ``auto`` one sized for ``jobs`` (closed on exit)."""
    pool = runtime.pool()
    if pool != "auto":
        yield pool
        return
    owned = auto_executor(runtime.workers, jobs)
    try:
        yield owned
    finally:
        owned.close()


def _bootstrap_key(words: Sequence[str], prepared: Prepared, options: Options) -> str:
    return keys.bootstrap_key(
        solution_key(words, prepared, options), options.bootstrap, options.seed, DEFAULT_BLOCKS
    )


def _block_jobs(
    categories: Sequence[Category], prepared: Prepared, options: Options, table: TokenTable
) -> list[tuple[Any, ...]]:
    # One job per category (counting its blocks, then one weighted replay).
    pretok = prepared.tok.pretokenizer
    return [(c, pretok, options.max_bytes, options.unit, table, prepared.merges_used) for c in categories]


def _lower_priority() -> None:
    # A worker initializer: the worker (killed after its jobs) yields the CPU to the LP.
    with suppress(OSError, AttributeError):  # AttributeError: no os.nice (Windows)
        os.nice(10)


class BlocksInBackground:
    """The bootstrap's block jobs, run on worker processes while this process solves the LP.

    The LP solves on one core; the blocks (count and replay again, by block) need the others. A
    thread of this process feeds the workers and collects their results; it never reports
    progress (the bars follow one stage at a time) and never touches the LP. :meth:`close` stops
    the workers (Ctrl-C, an error in the solve); :meth:`result` waits for the blocks.
    """

    def __init__(
        self, categories: Sequence[Category], prepared: Prepared, options: Options, runtime: Runtime
    ):
        self.table = TokenTable.build(prepared.tok)  # the bootstrap stage uses it too
        jobs = _block_jobs(categories, prepared, options, self.table)
        # Every core gets a block worker, at a lower priority: the LP keeps its core while it
        # solves, and the workers take all cores once it is done.
        cores = runtime.workers or os.cpu_count() or 1
        self.pool = ProcessExecutor(min(cores, len(jobs)))
        self.total = len(jobs)
        self.cancelled = False
        self.found: dict[int, tuple[Blocks, list[Trace]]] = {}
        self.error: BaseException | None = None
        # The workers are forked here, in the main thread: forked from the thread, they could
        # inherit a lock the main thread holds at that moment (an import in the LP's code did
        # exactly that) and wait for it forever.
        results = self.pool.start(count_and_replay_blocks, jobs, initializer=_lower_priority)
        self.thread = threading.Thread(target=self._run, args=(results,), name="mixinfer-blocks", daemon=True)
        self.thread.start()

    def _run(self, results: Generator[tuple[int, tuple[Blocks, list[Trace]]], None, None]) -> None:
        try:
            with closing(results):
                for index, done in results:
                    if self.cancelled:
                        break
                    self.found[index] = done
        except BaseException as exc:  # handed to the main thread by result()
            self.error = exc

    @classmethod
    def start(
        cls,
        categories: Sequence[Category],
        words: Sequence[str],
        prepared: Prepared,
        options: Options,
        runtime: Runtime,
    ) -> BlocksInBackground | None:
        """Start the blocks when the bootstrap will need them and local processes can run them
        beside the LP (the default executor, more than one core); else ``None``."""
        if options.bootstrap == 0 or len(categories) < 2 or runtime.pool() != "auto":
            return None
        if (runtime.workers or os.cpu_count() or 1) < 2:
            return None
        if runtime.cache.load("bootstrap", _bootstrap_key(words, prepared, options)) is not None:
            return None
        return cls(categories, prepared, options, runtime)

    def result(self, progress: ProgressCallback) -> dict[int, tuple[Blocks, list[Trace]]]:
        """Wait for every category's blocks and traces (re-raising a worker's error)."""
        while self.thread.is_alive():
            progress(Progress("blocks", len(self.found), self.total, "categories", "counted beside the LP"))
            self.thread.join(0.2)  # short waits: Ctrl-C stays responsive
        self.close()
        if self.error is not None:
            raise self.error
        progress(Progress("blocks", len(self.found), self.total, "categories"))
        return self.found

    def close(self) -> None:
        """Stop the workers (if still running) and wait for the thread.

        Killed (not closed: their pipes are the thread's) until the thread ends.
        """
        self.cancelled = True
        while self.thread.is_alive():
            self.pool.kill()  # the thread sees its workers die, reaps them and ends
            self.thread.join(0.2)
        self.pool.close()


def bootstrap(
    categories: Sequence[Category],
    words: Sequence[str],
    prepared: Prepared,
    options: Options,
    runtime: Runtime,
    *,
    pending: BlocksInBackground | None = None,
    warm: dict[str, Any] | None = None,
) -> BootstrapResult | None:
    """Stage 6b: the document bootstrap (``options.bootstrap`` replicates; cached by its inputs).

    ``pending``: the blocks, already started beside the LP (:meth:`BlocksInBackground.start`).
    ``warm``: the full sample's optimum from stage 6 (:attr:`Solution.warm`), which the workers
    start from when their LP has its structure.
    """
    if options.bootstrap == 0 or len(categories) < 2:
        return None
    key = _bootstrap_key(words, prepared, options)
    names = [c.name for c in categories]
    hit = runtime.cache.load("bootstrap", key)
    if hit is not None:
        arrays, meta = hit
        samples = arrays["proportions"]
        return BootstrapResult(
            options.bootstrap,
            options.confidence,
            options.seed,
            {n: int(meta["blocks"][n]) for n in names},
            samples,
            list(meta["statuses"]),
            float(meta["seconds"]),
            list(meta.get("cut", [])),
        )
    # Built once: the background blocks built it already.
    table = pending.table if pending is not None else TokenTable.build(prepared.tok)
    if pending is not None:
        found = pending.result(runtime.progress)
    else:
        jobs = _block_jobs(categories, prepared, options, table)
        found = {}
        runtime.progress(Progress("blocks", 0, len(categories), "categories"))
        with _pool_for(runtime, len(jobs)) as pool:
            for index, done in pool.map_unordered(count_and_replay_blocks, jobs):
                found[index] = done
                name = categories[index].name
                runtime.progress(Progress("blocks", len(found), len(categories), "categories", name))
    blocks = [found[i][0] for i in range(len(categories))]
    # Replicates in parallel too: each worker solves the full sample's LP once, then replicates.
    with _pool_for(runtime, options.bootstrap) as pool:
        result = run_bootstrap(
            blocks,
            table,
            prepared.merges_used,
            start=prepared.start_merge,
            normalize=options.normalize,
            replicates=options.bootstrap,
            confidence=options.confidence,
            seed=options.seed,
            solver=options.solver,
            time_limit=options.time_limit,
            progress=runtime.progress,
            block_traces=[found[i][1] for i in range(len(categories))],
            executor=pool,
            warm=warm,
        )
    meta = {"blocks": result.blocks, "statuses": result.statuses, "seconds": result.seconds}
    meta["cut"] = result.cut
    runtime.cache.store("bootstrap", key, {"proportions": result.proportions}, meta)
    return result


# -- truth and report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Truth:
    """A known mixture to compare against, where it came from, and problems met finding it."""

    proportions: dict[str, float] | None = None
    source: str | None = None
    warnings: tuple[str, ...] = ()


def find_truth(tokenizer_source: str) -> Path | None:
    """A ``truth.json`` beside a local tokenizer file (or inside a tokenizer directory)."""
    p = Path(tokenizer_source)
    try:
        if not p.exists():
            return None
        folder = p if p.is_dir() else p.parent
        candidate = folder / TRUTH_FILE
        return candidate if candidate.is_file() else None
    except OSError:
        return None


def truth(given: str | os.PathLike[str] | dict[str, float] | None, tokenizer: TokenizerSource) -> Truth:
    """The true mixture: ``given`` (a mapping or a JSON file), else a ``truth.json`` beside the
    tokenizer. A malformed ``given`` is an error; a malformed implicit file is only a warning."""
    notes: list[str] = []
    if isinstance(given, dict):
        return Truth(validate_truth(given, label="the truth mapping", notes=notes), "given", tuple(notes))
    if given is not None:
        return Truth(read_truth(given, notes=notes), str(given), tuple(notes))
    if isinstance(tokenizer, BPETokenizer):
        return Truth()
    found = find_truth(os.fspath(tokenizer))
    if found is None:
        return Truth()
    try:
        return Truth(read_truth(found, implicit=True, notes=notes), str(found), tuple(notes))
    except MixinferError as exc:
        return Truth(warnings=(f"{exc}; it was ignored",))


def report(
    prepared: Prepared,
    solution: Solution,
    options: Options,
    known: Truth,
    timing: dict[str, float],
    boot: BootstrapResult | None = None,
    categories: Sequence[Category] = (),
) -> InferenceResult:
    """Stage 7: the typed result (with intervals when the bootstrap ran).

    ``categories``: this run's samples, whose walk's warnings (files skipped) lead the list: they
    come from this run even when the solution came from the cache.
    """
    tok = prepared.tok
    walked = [w for c in categories for w in c.skipped]
    seen = set(walked)
    # A solution stored before the walk's warnings were kept apart holds them too: not twice.
    warnings = walked + [w for w in solution.warnings if w not in seen]
    warnings += list(solution.diagnostics.get("warnings", []))
    warnings += list(getattr(prepared.cleaning, "warnings", []))
    warnings += list(known.warnings)
    if options.max_bytes == DEFAULT_MAX_BYTES:
        # The default budget reads "all" of any sample this machine can hold; a larger one is
        # cut there, which the user did not ask for (the budget ends at a character boundary).
        capped = sorted(n for n, st in solution.samples.items() if st.bytes > DEFAULT_MAX_BYTES - 4)
        if capped:
            warnings.append(
                f"{len(capped)} categor{'y was' if len(capped) == 1 else 'ies were'} read only up to the "
                f"default budget of {DEFAULT_MAX_BYTES:,} bytes: {', '.join(capped[:10])}"
                f"{', ...' if len(capped) > 10 else ''}; pass --max-bytes to choose the budget"
            )
    if boot is not None:
        warnings += boot.warnings()
    if known.proportions:
        unsampled = sorted(c for c in known.proportions if c not in solution.proportions)
        if unsampled:
            share = sum(known.proportions[c] for c in unsampled)
            warnings.append(
                f"the true mixture ({known.source}) names {len(unsampled)} categor"
                f"{'y' if len(unsampled) == 1 else 'ies'} the samples do not hold: "
                f"{', '.join(unsampled[:10])}{', ...' if len(unsampled) > 10 else ''} ({share:.1%} of it); "
                "they count as estimated 0 in the MSE: add their samples, or leave them out of the truth"
            )
    return InferenceResult(
        proportions=solution.proportions,
        tokenizer=str(tok.source),
        merges_used=prepared.merges_used,
        merges_total=len(tok.merges),
        pretokenizer={
            "name": tok.pretokenizer.name,
            "reason": tok.pretokenizer.reason,
            "fingerprint": tok.pretokenizer.fingerprint(),
        },
        solver=solution.solver,
        timing=timing,
        samples=solution.samples,
        unit=options.unit,
        max_bytes=options.max_bytes,
        start_merge=prepared.start_merge,
        notes=[*prepared.notes, *solution.notes, *([] if boot is None else boot.notes())],
        warnings=warnings,
        truth=known.proportions,
        truth_source=known.source,
        cleaning=prepared.cleaning.to_dict(),
        base=prepared.base,
        lp=solution.details,
        diagnostics=solution.diagnostics,
        intervals=None if boot is None else boot.around(solution.proportions),
        bootstrap=None if boot is None else boot.to_dict(),
    )


class Timer:
    """Seconds per stage, for the report's ``timing``."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.seconds: dict[str, float] = {}
        self._last = self.start
        self._summed = False

    def lap(self, stage: str) -> None:
        """Record the time since the previous lap under ``stage``."""
        now = time.monotonic()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def record(self, stage: str, seconds: float) -> None:
        """Record ``seconds`` spent elsewhere (another process) under ``stage``; the next lap
        starts now, and :meth:`done` then sums the laps instead of taking the wall time."""
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self._last = time.monotonic()
        self._summed = True

    def done(self) -> dict[str, float]:
        """The laps and the total."""
        if self._summed:
            self.seconds["total"] = sum(v for k, v in self.seconds.items() if k != "total")
        else:
            self.seconds["total"] = time.monotonic() - self.start
        return self.seconds
