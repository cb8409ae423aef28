#!/usr/bin/env python3
"""Counting on a 2-worker Dask LocalCluster against one process; worker memory as input grows.

Builds synthetic categories of real English (the system's licence texts, paragraphs drawn in a
fixed pseudo-random order) as JSONL in two layouts: several categories of one file each, and one
category held in a single large file (which counting splits into parts, one task each). Counts
them with the GPT-2 regex in one process and on a 2-worker ``LocalCluster`` (processes), checks
the counts are identical, and records the workers' peak RSS at two input sizes (memory must stay
flat: sources are streamed, and partial counts are merged in a tree of tasks on the workers).
For the single file it also counts with splitting turned off (one task for the file), to show
what the parts buy. Rewrites the part of BENCHMARKS.md between ``<!-- dask:start -->`` and
``<!-- dask:end -->``.

    python scripts/bench_dask.py [--mb-per-category 25] [--categories 8] [--workdir DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sections import replace_section  # noqa: E402

from mixinfer import counting  # noqa: E402
from mixinfer.counting import count_words  # noqa: E402
from mixinfer.dask_executor import DaskExecutor  # noqa: E402
from mixinfer.pretokenizers import PRESETS  # noqa: E402
from mixinfer.samples import discover  # noqa: E402

START, END = "<!-- dask:start -->", "<!-- dask:end -->"


def make(root: Path, mb: int, ncat: int) -> None:
    """``ncat`` categories of one JSONL file of about ``mb`` MB of text each."""
    paras: list[str] = []
    for p in sorted(Path("/usr/share/common-licenses").iterdir()):
        if p.is_file() and not p.is_symlink():
            paras += [x for x in p.read_text(errors="replace").split("\n\n") if x.strip()]
    for c in range(ncat):
        folder = root / f"c{c}"
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(c)
        size = 0
        with open(folder / "t.jsonl", "w", encoding="utf-8") as fh:
            while size < mb * 1_000_000:
                doc = "\n\n".join(rng.choice(paras) for _ in range(5)) + f" {rng.random()}"
                fh.write(json.dumps({"text": doc}) + "\n")
                size += len(doc)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def tasks(root: Path) -> int:
    return sum(len(counting._units(cat)) for cat in discover(root))


def run(
    root: Path, reference: list[Any] | None = None
) -> tuple[float, tuple[float, float], tuple[float, float], bool, list[float], list[Any]]:
    """Text MB, one-process (wall, CPU) seconds ((0, 0) when ``reference`` counts are given),
    2-worker (wall, summed worker CPU) seconds, counts identical, worker peak RSS (MB), the
    one-process counts."""
    cats = discover(root)
    pretok = PRESETS["gpt2"]
    serial = (0.0, 0.0)
    if reference is None:
        t, c = time.monotonic(), cpu_seconds()
        reference = count_words(cats, pretok, max_bytes=10**12, executor="serial")
        serial = (time.monotonic() - t, cpu_seconds() - c)
    # A fresh cluster per run: its workers' peak RSS is this run's.
    with DaskExecutor(2, processes=True) as ex:
        client = ex._get_client()
        before = client.run(cpu_seconds)
        t = time.monotonic()
        b = count_words(cats, pretok, max_bytes=10**12, executor=ex)
        wall = time.monotonic() - t
        after = client.run(cpu_seconds)
        dask = (wall, sum(after[w] - before[w] for w in after))
        mem = sorted(client.run(peak_rss_mb).values())
    same = [(w.category, w.words, w.bytes, w.documents) for w in reference] == [
        (w.category, w.words, w.bytes, w.documents) for w in b
    ]
    return sum(w.bytes for w in reference) / 1e6, serial, dask, same, mem, reference


def row(
    label: str,
    n: int,
    total: float,
    serial: tuple[float, float],
    dask: tuple[float, float],
    same: bool,
    mem: list[float],
) -> str:
    one = f"{serial[0]:.1f} s ({total / serial[0]:.1f} MB/s)"
    two = f"{dask[0]:.1f} s ({total / dask[0]:.1f} MB/s)"
    return (
        f"| {label} | {n} | {total:.0f} MB | {one} | {two} | {serial[0] / dask[0]:.2f} | "
        f"{serial[1]:.1f} s / {dask[1]:.1f} s | "
        f"{'yes' if same else 'NO'} | {', '.join(f'{m:.0f}' for m in mem)} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb-per-category", type=int, default=25)
    parser.add_argument("--categories", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--note", default="", help="a sentence on the conditions (load, nice), for the text")
    args = parser.parse_args()
    rows = []
    big = args.mb_per_category * args.categories
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for mb in (max(1, args.mb_per_category // 5), args.mb_per_category):
            root = Path(tmp) / f"cats{mb}"
            make(root, mb, args.categories)
            total, serial, dask, same, mem, _ = run(root)
            rows.append(
                row(
                    f"{args.categories} categories x one {mb} MB file",
                    tasks(root),
                    total,
                    serial,
                    dask,
                    same,
                    mem,
                )
            )
            print(rows[-1], file=sys.stderr)
        for mb in (max(1, big // 5), big):
            root = Path(tmp) / f"one{mb}"
            make(root, mb, 1)
            total, serial, dask, same, mem, reference = run(root)
            rows.append(row(f"1 category, one {mb} MB file", tasks(root), total, serial, dask, same, mem))
            print(rows[-1], file=sys.stderr)
            if mb == big:
                # The same file as one task (splitting off): one worker counts, the other waits.
                saved = counting._PART_BYTES
                counting._PART_BYTES = 1 << 62
                try:
                    _, _, unsplit, same2, mem2, _ = run(root, reference)
                    rows.append(row("the same, not split", tasks(root), total, serial, unsplit, same2, mem2))
                finally:
                    counting._PART_BYTES = saved
                print(rows[-1], file=sys.stderr)
    block = "\n".join(
        [
            START,
            "## Counting on a Dask cluster (issue 13)",
            "",
            f"Generated by `python scripts/bench_dask.py --mb-per-category {args.mb_per_category} "
            f"--categories {args.categories}` on {dt.date.today().isoformat()}, {os.cpu_count()} cores"
            + (f" ({args.note})" if args.note else "")
            + ": synthetic categories of real English (licence paragraphs) as JSONL, GPT-2 regex, one "
            "process against a 2-worker `LocalCluster` (worker processes). Counting sends one task per "
            f"file, or per part of a file larger than {counting._PART_BYTES >> 20} MiB (JSONL byte ranges "
            "cut at records, Parquet row groups); the budget is applied afterwards in reading order, and "
            "the partial counts are merged pairwise by tasks on the workers, so the client receives one "
            "dict per category. `tasks` counts the first round's tasks (no budget here, so no recount). "
            "`CPU` is the one process's CPU time against the workers' summed CPU time during the count. "
            "Worker peak RSS is each worker process's peak over the run (a fresh cluster per row).",
            "",
            "| input | tasks | text | one process | 2 Dask workers | speed-up | CPU: one / workers "
            "| same counts | worker peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|",
            *rows,
            END,
        ]
    )
    replace_section(args.benchmarks, START, END, block)
    print(block)


if __name__ == "__main__":
    main()
