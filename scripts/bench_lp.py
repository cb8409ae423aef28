"""Where the LP's time goes: a per-round profile and a scaling table; writes the lp section of BENCHMARKS.md.

Each configuration (a tokenizer, a set of bundled categories, a per-category byte budget and a number of
merges) runs in its own Python process, so its peak memory is its own. Counting and replay go through a
shared cache (they are not what is measured here); the LP is solved cold every time. Per configuration:
distinct pairs, segments, lazy rounds, rows and columns of the final LP, simplex iterations, the time
spent searching for violated rows and in HiGHS, and the peak RSS. The largest run's rounds are summarised
in blocks of ten (rows added, rows pruned, iterations, seconds).

Needs ``../shared/tokenizers/gpt-2.json``; the last row, Llama 3's new merges past cl100k (the 23
bundled ``general`` categories, as the panel runs it), needs ``llama3-tokenizer.model`` and
``cl100k_base.tiktoken`` there too and is skipped without them. Usage::

    python scripts/bench_lp.py [--quick] [--no-write] [--cache DIR]

``--quick`` leaves out the T=30000, 36-category and Llama 3 runs (minutes instead of about half an
hour).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from _sections import replace_section  # noqa: E402

GENERAL = ROOT / "data_samples" / "general"
PROGRAMMING = ROOT / "data_samples" / "programming"
SHARED = ROOT.parent / "shared" / "tokenizers"
GPT2 = SHARED / "gpt-2.json"
LLAMA3, CL100K = SHARED / "llama3-tokenizer.model", SHARED / "cl100k_base.tiktoken"
BENCH = ROOT / "BENCHMARKS.md"
START, END = "<!-- lp:start -->", "<!-- lp:end -->"
CATS13 = ["en", "code", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "ja", "zh", "tr"]
CATS5 = ["en", "code", "de", "ru", "zh"]
FULL = 1 << 40  # no budget: every bundled byte (0.6-1.6 MB per category)


def configs(quick: bool) -> list[dict[str, Any]]:
    """The measured grid: merges, categories and sample size varied one at a time around GPT-2/13/10k."""
    grid: list[dict[str, Any]] = [
        {"merges": 3000, "cats": CATS13, "max_bytes": FULL},
        {"merges": 10000, "cats": CATS13, "max_bytes": FULL},
        {"merges": 10000, "cats": CATS13, "max_bytes": 250_000},
        {"merges": 10000, "cats": CATS13, "max_bytes": 500_000},
        {"merges": 10000, "cats": CATS5, "max_bytes": FULL},
    ]
    if not quick:
        grid += [
            {"merges": 10000, "cats": "all", "max_bytes": FULL},
            {"merges": 30000, "cats": CATS13, "max_bytes": FULL},
        ]
        if LLAMA3.exists() and CL100K.exists():
            # All of Llama 3's 27,049 new merges past cl100k's 100,000 (a --merges short of the
            # shared prefix counts new merges), the panel's default samples.
            grid.append({"merges": 30000, "cats": "general", "max_bytes": 10**9, "tokenizer": "llama3"})
    return grid


def samples_dir(cats: list[str] | str, where: Path) -> Path:
    """A samples directory of symlinks: the listed bundled categories, or all 36 for ``all``."""
    where.mkdir(parents=True, exist_ok=True)
    sources = sorted(GENERAL.iterdir()) + ([] if cats == "general" else sorted(PROGRAMMING.iterdir()))
    for src in sources:
        if (
            src.is_dir()
            and (cats in ("all", "general") or src.name in cats)
            and not (where / src.name).exists()
        ):
            (where / src.name).symlink_to(src, target_is_directory=True)
    return where


def run_one(cfg: dict[str, Any]) -> dict[str, Any]:
    """In the child process: count and replay (cached), then solve the LP cold and profile it."""
    import numpy as np

    from mixinfer import stages
    from mixinfer.options import Options, Runtime
    from mixinfer.replay import TokenTable
    from mixinfer.solver import MixtureLP, solve

    opts = Options(merges=cfg["merges"], max_bytes=cfg["max_bytes"])
    with Runtime.create(cache_dir=cfg["cache"], workers=2) as rt:
        if cfg.get("tokenizer") == "llama3":
            prep = stages.prepare(stages.load(str(LLAMA3), opts), opts, str(CL100K))
        else:
            prep = stages.prepare(stages.load(str(GPT2), opts), opts, None)
        _, categories = stages.samples(cfg["samples"])
        counted = stages.count(categories, prep.tok.pretokenizer, opts, rt)
        traces = stages.replay(counted, prep, rt)
    units = [max(int(tr.init_counts.sum()), 1) for tr in traces]
    t = time.monotonic()
    lp = MixtureLP(traces, units, TokenTable.build(prep.tok).merge_codes, start=prep.start_merge)
    build = time.monotonic() - t
    result, _ = solve(lp)
    total = time.monotonic() - t
    hist = result.history
    return {
        "categories": len(traces),
        "sample_mb": sum(counted.sample_bytes) / len(traces) / 1e6,
        "pairs": lp.pairs,
        "segments": lp.segments,
        "build": build,
        "total": total,
        "solver_seconds": result.seconds,
        "search_seconds": float(sum(h["search_seconds"] for h in hist)),
        "rounds": result.rounds,
        "rows": result.constraints,
        "columns": result.variables,
        "iterations": int(sum(h.get("iterations", 0) for h in hist)),
        "added": int(sum(h.get("added", 0) for h in hist)),
        "pruned": int(sum(h.get("pruned", 0) for h in hist)),
        "steps": lp.steps,
        "tokenizer": cfg.get("tokenizer", "gpt-2"),
        "status": result.status,
        "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "history": hist,
        "alpha_sum": float(np.sum(result.proportions)),
    }


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a child process and return its JSON."""
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(cfg)], check=True, capture_output=True, text=True
    )
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def profile_blocks(hist: list[dict[str, float]]) -> list[str]:
    """The rounds of one run in blocks of ten."""
    rows = ["| rounds | violated at start | rows added | rows pruned | iterations | search s | HiGHS s |"]
    rows.append("|---|---:|---:|---:|---:|---:|---:|")
    for lo in range(0, len(hist), 10):
        block = hist[lo : lo + 10]
        rows.append(
            f"| {lo}-{lo + len(block) - 1} | {int(block[0]['violated']):,} "
            f"| {int(sum(h.get('added', 0) for h in block)):,} "
            f"| {int(sum(h.get('pruned', 0) for h in block)):,} "
            f"| {int(sum(h.get('iterations', 0) for h in block)):,} "
            f"| {sum(h['search_seconds'] for h in block):.1f} "
            f"| {sum(h.get('solve_seconds', 0.0) for h in block):.1f} |"
        )
    return rows


def machine() -> str:
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load:.1f} at the end "
        f"(other work was running on the machine: compare iterations, not only seconds)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="skip the T=30000 and 36-category runs")
    parser.add_argument("--no-write", action="store_true", help="print instead of updating the file")
    parser.add_argument("--cache", help="cache directory for counts and traces (default: a temporary one)")
    opts = parser.parse_args()
    if opts.one:
        print(json.dumps(run_one(json.loads(opts.one))))
        return
    if not GPT2.exists():
        sys.exit(f"needs {GPT2}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = opts.cache or str(Path(tmp) / "cache")
        for cfg in configs(opts.quick):
            name = cfg["cats"] if isinstance(cfg["cats"], str) else "-".join(cfg["cats"])
            cfg = {**cfg, "cache": cache, "samples": str(samples_dir(cfg["cats"], Path(tmp) / name))}
            res = measure(cfg)
            print(f"T={cfg['merges']} n={res['categories']} {res['total']:.1f}s", file=sys.stderr)
            results.append((cfg, res))
    lines = [
        START,
        "## Where the LP's time goes (issue 16)",
        "",
        f"Generated by `python scripts/bench_lp.py{' --quick' if opts.quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}: bundled samples, the LP solved cold (counting and replay "
        f"cached, not measured). Machine: {machine()}.",
        "",
        "| tokenizer | merges T | categories | MB per category | pairs | segments | rounds | final rows "
        "| columns | iterations | rows added | rows pruned | search s | HiGHS s | LP total s "
        "| peak RSS GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in results:
        name = "llama3 (new, past cl100k)" if r["tokenizer"] == "llama3" else r["tokenizer"]
        lines.append(
            f"| {name} | {r['steps']} | {r['categories']} | {r['sample_mb']:.2f} | {r['pairs']:,} "
            f"| {r['segments']:,} | {r['rounds']} | {r['rows']:,} | {r['columns']:,} | {r['iterations']:,} "
            f"| {r['added']:,} | {r['pruned']:,} | {r['search_seconds']:.1f} | {r['solver_seconds']:.1f} "
            f"| {r['total']:.1f} | {r['peak_gib']:.2f} |"
        )
    gpt2 = [cr for cr in results if cr[1]["tokenizer"] == "gpt-2"]
    big_cfg, big = max(gpt2, key=lambda cr: cr[1]["total"])
    lines += [
        "",
        f"The rounds of the longest run (T={big_cfg['merges']}, {big['categories']} categories):",
        "",
        *profile_blocks(big["history"]),
        END,
    ]
    if opts.no_write:
        print("\n".join(lines))
    else:
        replace_section(BENCH, START, END, "\n".join(lines) + "\n")
        print(f"updated {BENCH}", file=sys.stderr)


if __name__ == "__main__":
    main()
