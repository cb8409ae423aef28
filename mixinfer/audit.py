"""Auditing many tokenizers against one set of categories.

:func:`audit` infers the mixture of every tokenizer with the same samples and options and
collects the mixtures in an :class:`AuditResult` (long or wide CSV, JSON, a pandas frame, group
totals). Work is shared across the batch:

* word counts depend only on the categories and the pretokenizer, so tokenizers with the same
  pretokenizer (Llama and Mistral, say) count the samples once (the stage's output is passed on
  in memory, also with ``use_cache=False``);
* traces depend on the words and the merges replayed, so tokenizers whose (cleaned) merge lists
  share the replayed prefix share their traces.

Each tokenizer is loaded and cleaned once, and the stages of :mod:`mixinfer.stages` are composed
directly; stage outputs are dropped as soon as no later tokenizer needs them.

A tokenizer that fails (missing file, not BPE, ...) is recorded with its error and the batch goes
on; :attr:`AuditResult.failed` lists them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pickle
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixinfer import stages
from mixinfer.errors import MixinferError, UsageError, WorkerError
from mixinfer.executors import get_executor
from mixinfer.groups import group_bounds, group_categories, group_order, load_groups
from mixinfer.options import DEFAULT_MERGES, Options, Runtime, options_from
from mixinfer.progress import Progress, ProgressCallback, noop
from mixinfer.replay import Trace
from mixinfer.report import InferenceResult
from mixinfer.samples import DEFAULT_MAX_BYTES, Category
from mixinfer.tokenizer import BPETokenizer

if TYPE_CHECKING:
    import pandas as pd

BY = ("category", "group")


@dataclass
class AuditEntry:
    """One tokenizer of an audit: its result, or why it failed.

    Attributes:
        label: the short name used in reports (file stem, directory name, ``tiktoken`` name...).
        source: what was given.
        result: the inference result (``None`` when it failed).
        error: the error message when it failed.
        error_type: the exception class name when it failed.
        exception: the exception itself (not serialised).
        seconds: wall time spent on this tokenizer.
    """

    label: str
    source: str
    result: InferenceResult | None = None
    error: str | None = None
    error_type: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether an inference result exists."""
        return self.result is not None


@dataclass
class AuditResult:
    """The mixtures of several tokenizers over the same categories.

    Attributes:
        entries: one per tokenizer, in the order given.
        categories: the category names (sorted by group, then name).
        groups: category -> group.
        samples: the samples directory used.
        merges: the ``merges`` option (each tokenizer uses at most that many).
        timing: seconds: ``total`` and per tokenizer label.
        shared: what was shared: ``pretokenizers`` (label -> label whose word counts it reused)
            and ``traces`` (label -> label whose traces it reused).
        notes: notices about the batch as a whole (also in each result's notes).
    """

    entries: list[AuditEntry]
    categories: list[str]
    groups: dict[str, str]
    samples: str
    merges: int
    timing: dict[str, float] = field(default_factory=dict)
    shared: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> list[AuditEntry]:
        """Entries with a result."""
        return [e for e in self.entries if e.ok]

    @property
    def failed(self) -> list[AuditEntry]:
        """Entries that failed."""
        return [e for e in self.entries if not e.ok]

    @property
    def group_names(self) -> list[str]:
        """Groups in display order."""
        return group_order(self.groups.values())

    def proportions(self, by: str = "category") -> dict[str, dict[str, float]]:
        """``{tokenizer label: {category or group: proportion}}`` for the successful tokenizers."""
        if by not in BY:
            raise UsageError(f"unknown --by {by!r}; use category or group")
        out: dict[str, dict[str, float]] = {}
        for e in self.succeeded:
            assert e.result is not None
            props = e.result.proportions
            if by == "category":
                out[e.label] = {c: props.get(c, 0.0) for c in self.categories}
            else:
                totals = dict.fromkeys(self.group_names, 0.0)
                for c in self.categories:
                    totals[self.groups[c]] += props.get(c, 0.0)
                out[e.label] = totals
        return out

    def intervals(self) -> dict[str, dict[str, tuple[float, float]] | None]:
        """Each successful tokenizer's intervals by category (``None`` without a bootstrap)."""
        return {e.label: e.result.intervals for e in self.succeeded if e.result is not None}

    def to_long_csv(self) -> str:
        """``tokenizer,category,group,proportion``: a row per successful tokenizer and category
        (and ``low,high`` when the bootstrap gave intervals)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        intervals = self.intervals()
        with_iv = any(iv is not None for iv in intervals.values())
        writer.writerow(
            ["tokenizer", "category", "group", "proportion", *(["low", "high"] if with_iv else [])]
        )
        for label, props in self.proportions("category").items():
            iv = intervals[label]
            for c in self.categories:
                row = [label, c, self.groups[c], repr(props[c])]
                if with_iv:
                    low, high = iv.get(c, (math.nan, math.nan)) if iv is not None else (math.nan, math.nan)
                    row += ["" if math.isnan(low) else repr(low), "" if math.isnan(high) else repr(high)]
                writer.writerow(row)
        return buf.getvalue()

    def to_wide_csv(self, by: str = "category") -> str:
        """One row per successful tokenizer: ``tokenizer`` then one column per category or group;
        with intervals, each column is followed by ``<column>_low`` and ``<column>_high`` (a
        group's bounds are the sums of its categories', as ``plot`` draws them)."""
        table = self.proportions(by)
        columns = self.categories if by == "category" else self.group_names
        intervals = self.intervals()
        with_iv = any(iv is not None for iv in intervals.values())
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if not with_iv:
            writer.writerow(["tokenizer", *columns])
            for label, props in table.items():
                writer.writerow([label, *(repr(props[c]) for c in columns)])
            return buf.getvalue()
        writer.writerow(["tokenizer", *(h for c in columns for h in (c, f"{c}_low", f"{c}_high"))])
        for label, props in table.items():
            iv = intervals[label] or {}
            bounds = dict(iv) if by == "category" else group_bounds(iv, self.groups)
            row = [label]
            for c in columns:
                row.append(repr(props[c]))
                row += [repr(b) for b in bounds[c]] if c in bounds else ["", ""]
            writer.writerow(row)
        return buf.getvalue()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary: options, groups, and every tokenizer's full result or error."""
        tokenizers = []
        for e in self.entries:
            item: dict[str, Any] = {"label": e.label, "source": e.source, "seconds": e.seconds}
            if e.result is not None:
                item["result"] = e.result.to_dict()
                item["groups"] = self.proportions("group")[e.label]
            else:
                item["error"] = {"type": e.error_type, "message": e.error}
            tokenizers.append(item)
        return {
            "samples": self.samples,
            "merges": self.merges,
            "categories": self.categories,
            "groups": self.groups,
            "tokenizers": tokenizers,
            "shared": self.shared,
            "timing": self.timing,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def render(self, fmt: str, *, wide: bool = False, by: str = "category") -> str:
        """The report as ``csv`` (long, or wide with ``wide``) or ``json``."""
        if fmt == "json":
            return self.to_json()
        if fmt == "csv":
            return self.to_wide_csv(by) if wide else self.to_long_csv()
        raise UsageError(f"unknown audit format {fmt!r}; use csv or json")

    def to_frame(self) -> pd.DataFrame:
        """The long table as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(io.StringIO(self.to_long_csv()))


_SPEC_FIELD = re.compile(r":(base|label)=")


@dataclass(frozen=True)
class TokenizerSpec:
    """One tokenizer of an audit: its source, and optionally the base it extends and a label.

    On the command line: ``SOURCE[:base=BASE][:label=LABEL]``, e.g.
    ``llama3-tokenizer.model:base=cl100k_base.tiktoken:label=llama3-new``.
    """

    source: str | os.PathLike[str] | BPETokenizer
    base: str | None = None
    label: str | None = None

    @classmethod
    def parse(cls, text: str | os.PathLike[str] | BPETokenizer | TokenizerSpec) -> TokenizerSpec:
        """Split ``SOURCE:base=BASE:label=LABEL``; a string naming an existing path is taken whole."""
        if isinstance(text, TokenizerSpec):
            return text
        if isinstance(text, BPETokenizer) or not isinstance(text, str) or Path(text).exists():
            return cls(text)
        parts = _SPEC_FIELD.split(text)
        if len(parts) == 1:
            return cls(text)
        fields: dict[str, str] = {}
        for key, value in zip(parts[1::2], parts[2::2], strict=True):
            if key in fields:
                raise UsageError(f"{text}: '{key}=' is given twice")
            if not value:
                raise UsageError(f"{text}: '{key}=' needs a value, e.g. {parts[0]}:base=cl100k_base.tiktoken")
            fields[key] = value
        return cls(parts[0], fields.get("base"), fields.get("label"))


def tokenizer_label(source: str | os.PathLike[str] | BPETokenizer) -> str:
    """A short name for reports: file stem, directory name, ``tiktoken`` name or Hub id."""
    if isinstance(source, BPETokenizer):
        source = source.source
    text = os.fspath(source)
    if text.startswith("tiktoken:"):
        return text[len("tiktoken:") :]
    p = Path(text)
    if p.name in ("tokenizer.json", "merges.txt", "vocab.json") and p.parent.name:
        return p.parent.name
    if p.suffix.lower() in (".json", ".tiktoken", ".txt", ".model"):
        return p.stem
    return p.name or text


def _labels(specs: Sequence[TokenizerSpec]) -> list[str]:
    labels = [s.label or tokenizer_label(s.source) for s in specs]
    counts = Counter(labels)
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        if counts[label] > 1:
            seen[label] += 1
            label = f"{label}#{seen[label]}"
        out.append(label)
    return out


def audit(
    tokenizers: Sequence[str | os.PathLike[str] | BPETokenizer | TokenizerSpec],
    samples: str | os.PathLike[str] | None = None,
    *,
    options: Options | None = None,
    merges: int = DEFAULT_MERGES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    solver: str = "auto",
    time_limit: float | None = None,
    unit: str = "document",
    clean: bool = True,
    normalize: str = "pairs",
    offline: bool | None = None,
    bootstrap: int = 0,
    confidence: float = 0.9,
    seed: int = 0,
    groups: Mapping[str, str] | str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    dask: str | None = None,
    jobs: int | None = None,
    progress: ProgressCallback = noop,
    on_entry: Callable[[AuditEntry], None] | None = None,
) -> AuditResult:
    """Infer the mixture of every tokenizer over the same categories, sharing work between them.

    Args:
        tokenizers: tokenizer sources (see :func:`mixinfer.load_tokenizer`), loaded tokenizers,
            or :class:`TokenizerSpec` (a source with the base it extends and a label; strings
            ``SOURCE:base=BASE:label=LABEL`` are parsed as one). A tokenizer with a base is
            inferred from the merges after the prefix it shares with the base.
        samples: the samples directory (default: the bundled samples).
        options: an :class:`~mixinfer.options.Options`, or the keywords ``merges`` ...
            ``seed`` as for :func:`mixinfer.infer` (``time_limit`` applies to each LP).
        groups: category -> group mapping, or a YAML/JSON/CSV file holding one; categories it
            does not name get the default group (:func:`mixinfer.groups.default_group`).
        cache_dir / use_cache / workers / dask: as for :func:`mixinfer.infer`.
        jobs: how many tokenizers' LPs are solved at once, each in a process of its own (with
            ``dask``: as jobs on the cluster); ``None`` (the default): ``workers``, i.e. every
            core unless ``workers`` says otherwise. With more than 1, the LPs wait until every
            tokenizer is counted and replayed (their traces are held together), then run side by
            side; the LP is most of an audit's time, so on ``k`` cores the audit takes about
            ``1/min(k, jobs, LPs)`` as long. 1 solves each LP in this process as soon as its
            traces are ready.
        progress: progress callback; stage ``"audit"`` counts tokenizers, the inner stages
            (``count``, ``replay``, ``solve``) are forwarded with the tokenizer's label in
            ``detail``.
        on_entry: called with each :class:`AuditEntry` as soon as it is done (succeeded or not).

    Raises:
        UsageError: no tokenizer, or bad options (checked before any work).
        SamplesError: the samples directory is unusable (it is shared by every tokenizer).
    """
    if not tokenizers:
        raise UsageError("give at least one tokenizer to audit")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"--jobs must be a whole number of LPs solved at once (1 or more), not {jobs!r}")
    options = options_from(
        options,
        merges=merges,
        max_bytes=max_bytes,
        solver=solver,
        time_limit=time_limit,
        unit=unit,
        clean=clean,
        normalize=normalize,
        offline=offline,
        bootstrap=bootstrap,
        confidence=confidence,
        seed=seed,
    )
    t_start = time.monotonic()
    mapping = load_groups(groups) if isinstance(groups, str | os.PathLike) else dict(groups or {})
    where, categories = stages.samples(samples)
    names = [c.name for c in categories]
    unknown = sorted(set(mapping) - set(names))
    category_groups = group_categories(names, mapping)
    order = {g: i for i, g in enumerate(group_order(category_groups.values()))}
    names.sort(key=lambda c: (order[category_groups[c]], c))
    runtime = Runtime.create(cache_dir=cache_dir, use_cache=use_cache, workers=workers, dask=dask)
    with runtime:
        if jobs is None:
            jobs = runtime.workers or os.cpu_count() or 1
        return _audit(tokenizers, options, runtime, where, categories, names, category_groups, unknown,
                      progress, on_entry, t_start, jobs)  # fmt: skip


def _audit(
    tokenizers: Sequence[str | os.PathLike[str] | BPETokenizer | TokenizerSpec],
    options: Options,
    runtime: Runtime,
    where: str,
    categories: list[Category],
    names: list[str],
    category_groups: dict[str, str],
    unknown: list[str],
    progress: ProgressCallback,
    on_entry: Callable[[AuditEntry], None] | None,
    t_start: float,
    jobs: int = 1,
) -> AuditResult:
    names_in_order = [c.name for c in categories]  # the samples' order, which stage outputs follow

    specs = [TokenizerSpec.parse(t) for t in tokenizers]
    labels = _labels(specs)
    n = len(specs)
    failures: dict[int, AuditEntry] = {}
    # Load and prepare every tokenizer first: a bad one fails fast, and what can be shared
    # (word counts per pretokenizer, traces per replayed merge prefix) is known before counting.
    prepared: dict[int, stages.Prepared] = {}
    for i, spec in enumerate(specs):
        t = time.monotonic()
        source = spec.source
        try:
            prepared[i] = stages.prepare(stages.load(source, options), options, spec.base)
        except MixinferError as exc:
            failures[i] = _failed(labels[i], source, exc, time.monotonic() - t)
        except Exception as exc:  # noqa: BLE001 - one bad tokenizer must not stop the batch
            failures[i] = _failed(labels[i], source, exc, time.monotonic() - t, internal=True)

    def words_of(i: int) -> str:
        return prepared[i].tok.pretokenizer.fingerprint()

    def prefix_of(i: int) -> tuple[str, str]:
        return words_of(i), prepared[i].merges_key

    # Stage outputs are held in memory only while a later tokenizer of the batch needs them.
    uses_words = Counter(words_of(i) for i in prepared)
    uses_prefix = Counter(prefix_of(i) for i in prepared)
    counted: dict[str, stages.Counted] = {}
    traced: dict[tuple[str, str], list[Trace]] = {}
    first_words: dict[str, str] = {}
    first_prefix: dict[tuple[str, str], str] = {}
    shared: dict[str, dict[str, str]] = {"word_counts": {}, "traces": {}}

    entries: dict[int, AuditEntry] = {}
    # With jobs > 1: the tokenizers whose LP is left for later, solved several at once; a
    # tokenizer with the same LP as one already left for later (a copy, a tiktoken twin) waits
    # for that one's solution, as the one-by-one path would find it in the cache.
    deferred: dict[int, _Run] = {}
    first_of_lp: dict[str, int] = {}
    twins: dict[int, list[tuple[int, _Run]]] = {}
    progress(Progress("audit", 0, n, "tokenizers"))

    def finish(i: int, entry: AuditEntry) -> None:
        entries[i] = entry
        progress(Progress("audit", len(entries), n, "tokenizers", labels[i]))
        if on_entry is not None:
            on_entry(entry)

    def conclude(i: int, solution: stages.Solution, later: _Run) -> AuditEntry:
        """The bootstrap and the report of tokenizer ``i``, from its LP's solution."""
        boot = stages.bootstrap(categories, later.words, prepared[i], options, later.runtime)
        later.timer.lap("bootstrap")
        result = stages.report(
            prepared[i], solution, options, stages.Truth(), later.timer.done(), boot, categories
        )
        return AuditEntry(
            labels[i], _source_text(specs[i].source), result=result, seconds=later.timer.seconds["total"]
        )

    if len(prepared) < 2:
        jobs = 1  # nothing to solve side by side: each LP as soon as its traces are ready
    for i, spec in enumerate(specs):
        label, source = labels[i], spec.source
        entry = failures.get(i)
        if entry is None:

            def forward(p: Progress, label: str = label) -> None:
                detail = f"{label}: {p.detail}" if p.detail else label
                progress(Progress(p.stage, p.done, p.total, p.unit, detail))

            rt = runtime.with_progress(forward)
            timer = stages.Timer()
            w, prefix = words_of(i), prefix_of(i)
            try:
                tok = prepared[i].tok
                words = stages.words_keys(categories, tok.pretokenizer, options)
                later = _Run(words, rt, timer)
                solution = stages.lookup(names_in_order, words, prepared[i], options, rt)
                if solution is None:
                    if w not in counted:
                        counted[w] = stages.count(categories, tok.pretokenizer, options, rt)
                    if w in first_words:
                        shared["word_counts"][label] = first_words[w]
                    else:
                        first_words[w] = label
                    timer.lap("count")
                    if prefix in traced:
                        shared["traces"][label] = first_prefix[prefix]
                    else:
                        first_prefix[prefix] = label
                        many = len(categories) > 1
                        traced[prefix] = stages.replay(counted[w], prepared[i], rt) if many else []
                    timer.lap("replay")
                    if jobs > 1 and len(categories) > 1:
                        later.traces, later.counted = traced[prefix], counted[w]
                        key = stages.solution_key(words, prepared[i], options)
                        if key in first_of_lp:
                            twins[first_of_lp[key]].append((i, later))
                        else:
                            first_of_lp[key] = i
                            twins[i] = []
                            deferred[i] = later
                    else:
                        solution = stages.solve(traced[prefix], counted[w], prepared[i], options, rt)
                if solution is not None:
                    timer.lap("solve")
                    entry = conclude(i, solution, later)
            except MixinferError as exc:
                entry = _failed(label, source, exc, time.monotonic() - timer.start)
            except Exception as exc:  # noqa: BLE001 - one bad tokenizer must not stop the batch
                entry = _failed(label, source, exc, time.monotonic() - timer.start, internal=True)
            uses_words[w] -= 1
            uses_prefix[prefix] -= 1
            if not uses_prefix[prefix]:
                traced.pop(prefix, None)
            if not uses_words[w]:
                counted.pop(w, None)
        if entry is not None:
            finish(i, entry)

    def settle(
        i: int, later: _Run, outcome: tuple[stages.Solution, float] | BaseException, *, store: bool = True
    ) -> AuditEntry:
        """Tokenizer ``i``'s entry from its deferred LP's outcome (stored in the cache with
        ``store``; a twin's solution is already there)."""
        label, source = labels[i], specs[i].source
        if isinstance(outcome, BaseException):
            internal = not isinstance(outcome, MixinferError)
            return _failed(label, source, outcome, later.timer.done()["total"], internal=internal)
        solution, seconds = outcome
        later.timer.record("solve", seconds)
        try:
            assert later.counted is not None
            if store:
                stages.remember(solution, later.counted, prepared[i], options, later.runtime)
            return conclude(i, solution, later)
        except MixinferError as exc:
            return _failed(label, source, exc, later.timer.done()["total"])
        except Exception as exc:  # noqa: BLE001 - one bad tokenizer must not stop the batch
            return _failed(label, source, exc, later.timer.done()["total"], internal=True)

    if deferred:
        for i, outcome in _solve_deferred(deferred, prepared, options, runtime, jobs, progress):
            finish(i, settle(i, deferred.pop(i), outcome))
            for j, later in twins[i]:
                # The twin's LP was not solved again: no solve time of its own.
                shared_outcome = outcome if isinstance(outcome, BaseException) else (outcome[0], 0.0)
                finish(j, settle(j, later, shared_outcome, store=False))
    ordered = [entries[i] for i in range(n)]
    timing = {e.label: e.seconds for e in ordered}
    timing["total"] = time.monotonic() - t_start
    report = AuditResult(ordered, names, category_groups, where, options.merges, timing, shared)
    if unknown:
        # Not an error: a mapping written for a larger sample set may name absent categories.
        note = f"--groups names categories not in the samples: {', '.join(unknown)}"
        report.notes.append(note)
        for e in report.succeeded:
            assert e.result is not None
            e.result.notes.append(note)
    return report


@dataclass
class _Run:
    """One tokenizer's run of an audit, as its report needs it once its LP is solved: the
    samples' word keys, its runtime (progress labelled with it), its timer and, when the LP is
    left for later, the LP's inputs."""

    words: list[str]
    runtime: Runtime
    timer: stages.Timer
    traces: list[Trace] | None = None
    counted: stages.Counted | None = None


def _solve_job(
    traces: list[Trace],
    counted: stages.Counted,
    prepared: stages.Prepared,
    options: Options,
    progress: ProgressCallback = noop,
) -> tuple[stages.Solution, float] | BaseException:
    """One deferred LP, in a worker: its solution and seconds, or the error it raised.

    The error is returned, not raised, so that one failing tokenizer does not stop the others'
    LPs (an executor gives up on the whole batch when a job raises). The worker has no cache:
    the caller stores the solution (:func:`mixinfer.stages.remember`), so that two processes
    never write one cache at once.
    """
    t = time.monotonic()
    try:
        with Runtime.create(use_cache=False, workers=1, progress=progress) as rt:
            return stages.solve(traces, counted, prepared, options, rt), time.monotonic() - t
    except Exception as exc:  # noqa: BLE001 - reported as this tokenizer's failure
        return _portable(exc)


def _portable(exc: BaseException) -> BaseException:
    """``exc``, or an exception of the nearest class that survives pickling with its message
    (results come back from worker processes pickled)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any unpicklable exception is replaced
        for cls in type(exc).__mro__:
            if cls.__module__ == "mixinfer.errors":
                return cls(str(exc))
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _solve_deferred(
    deferred: dict[int, _Run],
    prepared: dict[int, stages.Prepared],
    options: Options,
    runtime: Runtime,
    jobs: int,
    progress: ProgressCallback,
) -> Iterator[tuple[int, tuple[stages.Solution, float] | BaseException]]:
    """Solve the deferred LPs, ``jobs`` at once; yield ``(tokenizer index, outcome)`` as each
    ends. A worker that dies (out of memory, say) fails the LPs not yet returned, not the audit."""
    order = sorted(deferred)
    total = len(order)
    pool = runtime.pool()
    owned = pool == "auto"
    if owned and total == 1:
        # One LP left (the others were cached or failed): here, with its rounds on the LP bar.
        (i,) = order
        later = deferred[i]
        assert later.traces is not None and later.counted is not None
        yield i, _solve_job(later.traces, later.counted, prepared[i], options, later.runtime.progress)
        return
    args = [(deferred[i].traces, deferred[i].counted, prepared[i], options) for i in order]
    progress(Progress("solve", 0, total, "LPs", f"{min(jobs, total)} at once"))
    executor = get_executor("process", min(jobs, total)) if owned else pool
    done: set[int] = set()
    try:
        for k, outcome in executor.map_unordered(_solve_job, args):
            done.add(k)
            progress(Progress("solve", len(done), total, "LPs", f"{min(jobs, total)} at once"))
            yield order[k], outcome
    except WorkerError as exc:
        for k in range(total):
            if k not in done:
                yield order[k], exc
    finally:
        if owned:
            executor.close()


def _source_text(source: str | os.PathLike[str] | BPETokenizer) -> str:
    return str(source.source) if isinstance(source, BPETokenizer) else os.fspath(source)


def _failed(
    label: str,
    source: str | os.PathLike[str] | BPETokenizer,
    exc: BaseException,
    seconds: float,
    *,
    internal: bool = False,
) -> AuditEntry:
    message = str(exc) if not internal else f"internal error: {type(exc).__name__}: {exc}"
    return AuditEntry(
        label,
        _source_text(source),
        error=message,
        error_type=type(exc).__name__,
        exception=exc,
        seconds=seconds,
    )


def read_intervals(path: str | os.PathLike[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """The ``low,high`` columns of a long audit CSV (written with ``--bootstrap``), or ``{}``.

    Raises:
        UsageError: the columns are there but a value is not a number.
    """
    p = Path(path)
    rows = [r for r in csv.reader(io.StringIO(p.read_text(encoding="utf-8"))) if r]
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    # (tokenizer, column, low text, high text) for every interval the file holds.
    found: list[tuple[int, str, str, str, str]] = []
    if header[:6] == ["tokenizer", "category", "group", "proportion", "low", "high"]:
        for lineno, row in enumerate(rows[1:], start=2):
            if len(row) >= 6:
                found.append((lineno, row[0], row[1], row[4], row[5]))
    elif header[:1] == ["tokenizer"]:
        bounds = _wide_interval_columns(header)
        for lineno, row in enumerate(rows[1:], start=2):
            for column, (lo, hi) in bounds.items():
                if max(lo, hi) < len(row):
                    found.append((lineno, row[0], column, row[lo], row[hi]))
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for lineno, label, column, low_text, high_text in found:
        if not low_text or not high_text:
            continue  # a tokenizer without intervals in a batch where others have them
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise UsageError(
                f"{p} line {lineno}: low/high {low_text!r}, {high_text!r} are not numbers"
            ) from None
        if not (0.0 <= low <= high <= 1.0):
            raise UsageError(f"{p} line {lineno}: [{low}, {high}] is not an interval within [0, 1]")
        out.setdefault(label, {})[column] = (low, high)
    return out


def _wide_interval_columns(header: list[str]) -> dict[str, tuple[int, int]]:
    """In a wide CSV's header: ``{column: (index of column_low, index of column_high)}``."""
    where = {h: i for i, h in enumerate(header)}
    return {
        h: (where[f"{h}_low"], where[f"{h}_high"])
        for h in header[1:]
        if f"{h}_low" in where and f"{h}_high" in where
    }


def read_report(path: str | os.PathLike[str]) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Read an audit CSV (long or wide) back: ``({tokenizer: {column: proportion}}, groups)``.

    For a long CSV the columns are categories and ``groups`` maps each category to its group; for
    a wide CSV the columns are whatever the file holds (categories or groups) and ``groups`` is
    empty.

    Raises:
        UsageError: the file is missing or not an audit report.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"report {p} does not exist; write one with `mixinfer audit`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"report {p} cannot be read ({exc})") from None
    if text and not text.endswith("\n"):
        # Every report this tool writes ends its last line; a cut one would be drawn short.
        raise UsageError(
            f"{p} ends in the middle of a line: the report looks truncated; write it again with "
            "`mixinfer audit --output report.csv`"
        )
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r]
    if len(rows) < 2 or not rows[0] or rows[0][0].strip().lower() != "tokenizer":
        raise UsageError(
            f"{p} is not an audit report: expected a CSV whose first column is `tokenizer` "
            "(as written by `mixinfer audit --output report.csv`)"
        )
    header = [h.strip() for h in rows[0]]
    table: dict[str, dict[str, float]] = {}
    groups: dict[str, str] = {}
    try:
        if header[:4] == ["tokenizer", "category", "group", "proportion"]:
            for lineno, row in enumerate(rows[1:], start=2):
                if len(row) < 4:
                    raise ValueError(f"line {lineno} has {len(row)} fields, expected 4")
                label, cat, group, value = row[0], row[1], row[2], float(row[3])
                if cat in table.get(label, {}):
                    raise ValueError(f"line {lineno} gives {label!r} {cat!r} a second time")
                # Reports joined from audits with other --groups: the last row would decide.
                if groups.get(cat, group) != group:
                    raise ValueError(
                        f"line {lineno} puts {cat!r} in group {group!r}, an earlier line in "
                        f"{groups[cat]!r}; join reports written with the same groups"
                    )
                table.setdefault(label, {})[cat] = value
                groups[cat] = group
        else:
            intervals = {i for pair in _wide_interval_columns(header).values() for i in pair}
            for lineno, row in enumerate(rows[1:], start=2):
                if len(row) != len(header):
                    raise ValueError(f"line {lineno} has {len(row)} fields, expected {len(header)}")
                table[row[0]] = {
                    h: float(v)
                    for i, (h, v) in enumerate(zip(header, row, strict=True))
                    if i and i not in intervals
                }
    except ValueError as exc:
        raise UsageError(f"{p} is not a valid audit report ({exc})") from None
    return table, groups
