"""The whole inference, stage by stage: tokenizer -> samples -> words -> traces -> LP -> result.

This module is the glue a reader follows from the README to the solver: :func:`infer` turns its
arguments into :class:`~mixinfer.options.Options` and a :class:`~mixinfer.options.Runtime`, then
runs the stages of :mod:`mixinfer.stages` in order.
"""

from __future__ import annotations

import os

from mixinfer import stages
from mixinfer.cache import Cache
from mixinfer.options import DEFAULT_MERGES, NORMALIZE, Options, Runtime, options_from
from mixinfer.progress import ProgressCallback, noop
from mixinfer.report import InferenceResult
from mixinfer.samples import DEFAULT_MAX_BYTES
from mixinfer.stages import TRUTH_FILE, find_truth, shared_prefix
from mixinfer.tokenizer import BPETokenizer

__all__ = ["DEFAULT_MERGES", "NORMALIZE", "TRUTH_FILE", "find_truth", "infer", "run", "shared_prefix"]


def run(
    tokenizer: stages.TokenizerSource,
    samples: stages.SamplesSpec,
    options: Options,
    runtime: Runtime,
    *,
    truth: str | os.PathLike[str] | dict[str, float] | None = None,
    base: stages.TokenizerSource | None = None,
) -> InferenceResult:
    """Run every stage for one tokenizer: the library's inference, given options and a runtime."""
    timer = stages.Timer()
    tok = stages.load(tokenizer, options)
    timer.lap("load_tokenizer")
    prepared = stages.prepare(tok, options, base)
    known = stages.truth(truth, tokenizer)
    timer.lap("clean")
    _, categories = stages.samples(samples)
    names = [c.name for c in categories]
    words = stages.words_keys(categories, prepared.tok.pretokenizer, options)
    solution = stages.lookup(names, words, prepared, options, runtime)
    pending = None
    try:
        if solution is None:  # not solved before: count, replay, solve
            counted = stages.count(categories, prepared.tok.pretokenizer, options, runtime)
            timer.lap("count")
            traces = stages.replay(counted, prepared, runtime) if len(categories) > 1 else []
            timer.lap("replay")
            # The LP takes one core: the bootstrap's blocks are counted on the others meanwhile.
            pending = stages.BlocksInBackground.start(categories, words, prepared, options, runtime)
            solution = stages.solve(traces, counted, prepared, options, runtime)
        timer.lap("solve")
        boot = stages.bootstrap(
            categories, words, prepared, options, runtime, pending=pending, warm=solution.warm
        )
        timer.lap("bootstrap")
    finally:
        if pending is not None:
            pending.close()
    return stages.report(prepared, solution, options, known, timer.done(), boot, categories)


def infer(
    tokenizer: str | os.PathLike[str] | BPETokenizer,
    samples: str | os.PathLike[str] | None = None,
    *,
    options: Options | None = None,
    merges: int = DEFAULT_MERGES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    solver: str = "auto",
    pretokenizer: str | None = None,
    time_limit: float | None = None,
    unit: str = "document",
    normalize: str = "pairs",
    start_merge: int = 0,
    clean: bool = True,
    offline: bool | None = None,
    bootstrap: int = 0,
    confidence: float = 0.9,
    seed: int = 0,
    estimator: str = "lp",
    truth: str | os.PathLike[str] | dict[str, float] | None = None,
    base: str | os.PathLike[str] | BPETokenizer | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    cache: Cache | None = None,
    workers: int | None = None,
    dask: str | None = None,
    progress: ProgressCallback = noop,
) -> InferenceResult:
    """Infer the training mixture of a BPE tokenizer from per-category sample text.

    Args:
        tokenizer: a tokenizer source (see :func:`mixinfer.load_tokenizer`) or a loaded tokenizer.
        samples: a directory with one sub-directory of text per category; default: the bundled
            samples.
        options: an :class:`~mixinfer.options.Options` object; when given, the keyword options
            below (``merges`` ... ``estimator``) must be left at their defaults. Each keyword is
            documented on :class:`~mixinfer.options.Options`.
        truth: a true mixture (mapping or JSON file) to compare against; by default a
            ``truth.json`` beside a local tokenizer file is used when present (a malformed one
            is ignored with a warning).
        base: a tokenizer that ``tokenizer`` extends: the shared merge prefix is found, reported
            in ``result.base`` and used as ``start_merge`` (cannot be combined with it).
        cache_dir / use_cache / cache: where word counts, traces and solutions are cached
            (default :func:`mixinfer.cache.default_cache_dir`), no cache, or a ready cache.
        workers: processes for counting and replay (default: all cores).
        dask: run counting and replay on a Dask cluster: a scheduler address, or ``local``
            (``pip install 'mixinfer[dask]'``).
        progress: called with :class:`mixinfer.progress.Progress` updates.

    Returns:
        An :class:`InferenceResult`.

    Raises:
        UsageError: an option no run can use (an :class:`~mixinfer.options.OptionError` names it).
        TokenizerError, SamplesError, SolverError, CacheError: see :mod:`mixinfer.errors`.
    """
    given = {
        "merges": merges,
        "max_bytes": max_bytes,
        "solver": solver,
        "pretokenizer": pretokenizer,
        "time_limit": time_limit,
        "unit": unit,
        "normalize": normalize,
        "start_merge": start_merge,
        "clean": clean,
        "offline": offline,
        "bootstrap": bootstrap,
        "confidence": confidence,
        "seed": seed,
        "estimator": estimator,
    }
    options = options_from(options, **given)
    runtime = Runtime.create(
        cache_dir=cache_dir, use_cache=use_cache, cache=cache, workers=workers, progress=progress, dask=dask
    )
    with runtime:
        return run(tokenizer, samples, options, runtime, truth=truth, base=base)
