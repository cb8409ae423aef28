"""The whole inference, stage by stage: tokenizer -> samples -> words -> traces -> LP -> result."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mixinfer.cache import Cache, default_cache_dir, make_key
from mixinfer.cleaning import CleaningReport, clean_merges, disabled_report
from mixinfer.counting import count_key, count_words
from mixinfer.errors import TokenizerError, UsageError
from mixinfer.pretokenizers import preset
from mixinfer.progress import ProgressCallback, noop
from mixinfer.replay import TokenTable, build_traces, trace_key
from mixinfer.report import CategoryStats, InferenceResult, read_truth
from mixinfer.samples import DEFAULT_MAX_BYTES, UNITS, Category, bundled_samples_dir, discover
from mixinfer.solver import LP_FORMULATION, MixtureLP, solve
from mixinfer.tokenizer import BPETokenizer, load_tokenizer

DEFAULT_MERGES = 30000
TRUTH_FILE = "truth.json"


NORMALIZE = ("bytes", "pairs")
"""Units for the per-category counts of the LP (see :func:`infer`)."""


def check_options(merges: int, max_bytes: int, unit: str, time_limit: float | None, normalize: str) -> None:
    """Reject option values no run can use (shared by :func:`infer` and audits)."""
    if merges <= 0:
        raise UsageError(f"--merges must be a positive number of merges, not {merges}")
    if max_bytes <= 0:
        raise UsageError(f"--max-bytes must be a positive number of bytes, not {max_bytes}")
    if unit not in UNITS:
        raise UsageError(f"unknown --unit {unit!r}; use one of {', '.join(UNITS)}")
    if time_limit is not None and time_limit <= 0:
        raise UsageError(f"--time-limit must be a positive number of seconds, not {time_limit}")
    if normalize not in NORMALIZE:
        raise UsageError(f"unknown --normalize {normalize!r}; use one of {', '.join(NORMALIZE)}")


def find_truth(tokenizer_source: str) -> Path | None:
    """A ``truth.json`` beside a local tokenizer file (or inside a tokenizer directory)."""
    p = Path(tokenizer_source)
    if not p.exists():
        return None
    folder = p if p.is_dir() else p.parent
    candidate = folder / TRUTH_FILE
    return candidate if candidate.is_file() else None


def infer(
    tokenizer: str | os.PathLike[str] | BPETokenizer,
    samples: str | os.PathLike[str] | None = None,
    *,
    merges: int = DEFAULT_MERGES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    solver: str = "auto",
    pretokenizer: str | None = None,
    time_limit: float | None = None,
    unit: str = "document",
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    truth: str | os.PathLike[str] | dict[str, float] | None = None,
    start_merge: int = 0,
    workers: int | None = None,
    offline: bool | None = None,
    progress: ProgressCallback = noop,
    clean: bool = True,
    base: str | os.PathLike[str] | BPETokenizer | None = None,
    cache: Cache | None = None,
    normalize: str = "pairs",
) -> InferenceResult:
    """Infer the training mixture of a BPE tokenizer from per-category sample text.

    Args:
        tokenizer: a tokenizer source (see :func:`mixinfer.load_tokenizer`) or a loaded tokenizer.
        samples: a directory with one sub-directory of text per category; default: the bundled
            samples.
        merges: how many leading merges to use (capped at the merge list's length).
        max_bytes: per-category byte budget, taken deterministically.
        solver: ``auto`` (HiGHS via highspy, else CBC), ``highs``, ``cbc`` or ``pulp:NAME``.
        pretokenizer: a preset name overriding the tokenizer's own pretokenizer.
        time_limit: seconds for the LP; when hit, the best proportions so far are returned with
            ``solver["status"] == "time_limit"``.
        unit: ``document`` or ``line``: how text is cut before pretokenization (match training).
        cache_dir / use_cache: where word counts and traces are cached (default
            :func:`mixinfer.cache.default_cache_dir`), or no cache.
        truth: a true mixture (mapping or JSON file) to compare against; by default a
            ``truth.json`` beside a local tokenizer file is used when present.
        start_merge: replay merges before this without constraints (for extended tokenizers).
        workers: processes for counting and replay (default: all cores).
        offline: never use the network (default: follow ``HF_HUB_OFFLINE``).
        progress: called with :class:`mixinfer.progress.Progress` updates.
        clean: clean the merge list first (:func:`mixinfer.cleaning.clean_merges`: one merge per
            token, in order of creation; hand-inserted merges skipped); reported in
            ``result.cleaning``.
        base: a tokenizer that ``tokenizer`` extends: the shared merge prefix is found, reported
            in ``result.base`` and used as ``start_merge`` (cannot be combined with it).
        cache: a ready cache object, overriding ``cache_dir`` / ``use_cache`` (used by audits to
            share word counts and traces between tokenizers).
        normalize: the unit the LP measures each category's counts in: ``pairs`` (the
            default: its initial pair count) or ``bytes`` (the paper's setting). Without sampling
            noise both give the same mixture, and on controlled experiments they score alike;
            with real, mismatched samples ``pairs`` weighs violations per pair rather than per
            byte, which stops scripts with several bytes per character (CJK) from soaking up
            weight in character-level (SentencePiece) tokenizers. Proportions are reported in
            bytes either way.

    Returns:
        An :class:`InferenceResult`.
    """
    check_options(merges, max_bytes, unit, time_limit, normalize)
    timing: dict[str, float] = {}
    t0 = time.monotonic()
    if isinstance(tokenizer, BPETokenizer):
        tok = tokenizer if pretokenizer is None else load_override(tokenizer, pretokenizer)
    else:
        tok = load_tokenizer(tokenizer, pretokenizer=pretokenizer, offline=offline)
    timing["load_tokenizer"] = time.monotonic() - t0
    t = time.monotonic()
    tok, cleaning = prepare_merges(tok, clean)
    base_info: dict[str, object] | None = None
    if base is not None:
        if start_merge:
            raise UsageError("give either --base or --start-merge, not both (--base finds the start merge)")
        start_merge, base_info = shared_prefix_with(tok, base, clean=clean, offline=offline)
        if merges <= start_merge:
            raise UsageError(
                f"--merges {merges} does not reach past the {start_merge} merges shared with the "
                f"base {base_info['source']}; pass --merges larger than {start_merge} (e.g. "
                f"--merges {start_merge + 3000}) to infer from the new merges"
            )
    timing["clean"] = time.monotonic() - t

    truth_map: dict[str, float] | None = None
    truth_source: str | None = None
    if isinstance(truth, dict):
        truth_map, truth_source = dict(truth), "given"
    elif truth is not None:
        truth_map, truth_source = read_truth(truth), str(truth)
    elif not isinstance(tokenizer, BPETokenizer):
        found = find_truth(str(tokenizer))
        if found is not None:
            truth_map, truth_source = read_truth(found), str(found)

    t = time.monotonic()
    samples_dir = Path(samples) if samples is not None else bundled_samples_dir()
    categories: list[Category] = discover(samples_dir)
    if cache is None:
        cache = Cache((cache_dir or default_cache_dir()) if use_cache else None)
    counts = count_words(
        categories,
        tok.pretokenizer,
        max_bytes=max_bytes,
        unit=unit,
        cache=cache,
        workers=workers,
        progress=progress,
    )
    timing["count"] = time.monotonic() - t

    n_merges = min(merges, len(tok.merges))
    notes = list(tok.notes)
    if n_merges < merges:
        notes.append(f"the tokenizer has {len(tok.merges)} merges; using all of them")
    if base_info is not None:
        notes.append(
            f"base {base_info['source']}: the first {start_merge} merges are shared; they are "
            f"replayed without constraints and the mixture is inferred from merges "
            f"{start_merge}..{n_merges - 1}"
        )
    if not 0 <= start_merge < n_merges:
        raise UsageError(
            f"--start-merge {start_merge} must be at least 0 and below the merges used ({n_merges})"
        )
    warnings = [w for wc in counts for w in wc.warnings]
    stats = {wc.category: CategoryStats(wc.bytes, wc.documents, len(wc.words)) for wc in counts}
    pretok_info = {
        "name": tok.pretokenizer.name,
        "reason": tok.pretokenizer.reason,
        "fingerprint": tok.pretokenizer.fingerprint(),
    }

    def finish(proportions: dict[str, float], solver_info: dict[str, Any]) -> InferenceResult:
        return InferenceResult(
            proportions,
            str(tok.source),
            n_merges,
            len(tok.merges),
            pretok_info,
            solver_info,
            timing,
            stats,
            unit,
            max_bytes,
            start_merge,
            notes,
            warnings,
            truth_map,
            truth_source,
            cleaning=cleaning.to_dict(),
            base=base_info,
        )

    if len(categories) == 1:
        notes.append(
            f"only one category ('{categories[0].name}'): the answer is trivially 100%; add more "
            f"categories to {samples_dir} for a real inference"
        )
        timing["replay"] = timing["solve"] = 0.0
        timing["total"] = time.monotonic() - t0
        return finish(
            {categories[0].name: 1.0},
            {
                "name": "none",
                "status": "trivial",
                "objective": 0.0,
                "rounds": 0,
                "constraints": 0,
                "variables": 0,
            },
        )

    t = time.monotonic()
    keys = [count_key(c, tok.pretokenizer, max_bytes, unit) for c in categories]
    traces = build_traces(counts, keys, tok, n_merges, cache, workers=workers, progress=progress)
    timing["replay"] = time.monotonic() - t

    t = time.monotonic()
    # An optimal solution is a pure function of the traces, the sample sizes and the start merge,
    # so it is cached too: a warm run then only loads. Time-limited results are never stored.
    solution_key = make_key(
        "solution",
        LP_FORMULATION,
        [trace_key(k, tok, n_merges) for k in keys],
        [wc.bytes for wc in counts],
        start_merge,
        solver,
        normalize,
    )
    hit = cache.load("solution", solution_key)
    if hit is not None:
        alpha = hit[0]["alpha"]
        # The cache stores JSON with sorted keys; restore the report's key order.
        order = ("name", "status", "objective", "rounds", "constraints", "variables", "pairs")
        stored = hit[1]["solver"]
        solver_info = {k: stored[k] for k in order if k in stored}
        solver_info.update({k: v for k, v in stored.items() if k not in solver_info})
        notes += hit[1]["notes"]
    else:
        table_codes = TokenTable.build(tok).merge_codes
        sample_bytes = np.array([wc.bytes for wc in counts], dtype=float)
        units = sample_bytes
        if normalize == "pairs":
            units = np.array([max(int(tr.init_counts.sum()), 1) for tr in traces], dtype=float)
        lp = MixtureLP(traces, units.tolist(), table_codes, start=start_merge)
        # No floor here: a limit already spent building the LP stops the solver before its first
        # round (the starting point is returned, marked time_limit), so small limits are honoured.
        remaining = None if time_limit is None else max(time_limit - (time.monotonic() - t), 0.0)
        result, solver_notes = solve(
            lp,
            solver=solver,
            time_limit=remaining,
            progress=progress,
        )
        notes += solver_notes
        if result.status == "time_limit":
            warnings.append(
                f"the time limit stopped the LP after {result.rounds} rounds with constraints "
                f"still violated (largest violation {result.max_violation:.3g}); the proportions "
                f"are the best found so far, not the optimum; raise --time-limit for an exact answer"
            )
        alpha = result.proportions
        if normalize == "pairs":
            # alpha counts each category's pairs; a category's bytes per pair turn it into bytes.
            alpha = alpha * sample_bytes / units
            alpha = alpha / alpha.sum()
        solver_info = {
            "name": result.backend,
            "status": result.status,
            "objective": result.objective,
            "rounds": result.rounds,
            "constraints": result.constraints,
            "variables": result.variables,
            "pairs": lp.pairs,
            "max_violation": result.max_violation,
            "normalize": normalize,
            "solver_seconds": result.seconds,
        }
        if result.status == "optimal":
            cache.store(
                "solution", solution_key, {"alpha": alpha}, {"solver": solver_info, "notes": solver_notes}
            )
    timing["solve"] = time.monotonic() - t
    timing["total"] = time.monotonic() - t0
    proportions = {c.name: float(a) for c, a in zip(categories, alpha, strict=True)}
    return finish(proportions, solver_info)


def prepare_merges(tok: BPETokenizer, clean: bool) -> tuple[BPETokenizer, CleaningReport]:
    """Clean ``tok``'s merge list (or only check it can be replayed, with ``clean=False``)."""
    if clean:
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


def shared_prefix_with(
    tok: BPETokenizer,
    base: str | os.PathLike[str] | BPETokenizer,
    *,
    clean: bool = True,
    offline: bool | None = None,
) -> tuple[int, dict[str, object]]:
    """The number of leading merges ``tok`` (already cleaned) shares with ``base``.

    Returns ``(K, {"source": ..., "shared_prefix": K, "base_merges": ...})``.

    Raises:
        UsageError: the two merge lists share no merge at the start, or ``tok`` adds nothing.
    """
    base_tok = base if isinstance(base, BPETokenizer) else load_tokenizer(base, offline=offline)
    if clean:
        base_tok, _ = clean_merges(base_tok)
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
    return repr(
        pair[0].decode("utf-8", "backslashreplace") + " " + pair[1].decode("utf-8", "backslashreplace")
    )


def load_override(tok: BPETokenizer, pretokenizer: str) -> BPETokenizer:
    """A copy of ``tok`` using the named preset pretokenizer."""
    p = preset(pretokenizer)
    return replace(tok, pretokenizer=p, notes=[*tok.notes, f"pretokenizer: preset '{p.name}'"])
