#!/usr/bin/env python3
"""Counting on a 2-worker Dask LocalCluster against one process; worker memory as input grows.

Builds synthetic categories of real English (the system's licence texts, paragraphs drawn in a
fixed pseudo-random order) as JSONL in two layouts: several categories of one file each, and one
category held in a single large file (which counting splits into parts, one task each). Counts
them with the GPT-2 regex in one process and on a 2-worker ``LocalCluster`` (processes), checks
the counts are identical, and records each worker's RSS when the cluster is up and its peak during
the count, as the input grows (one file of ``--largest`` MB last). For the 200 MB file it also
counts with splitting turned off (one task for the file), to show what the parts buy. Rewrites the
part of BENCHMARKS.md between ``<!-- dask:start -->`` and ``<!-- dask:end -->``.

Peaks are each process's own high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``
when the count starts), not ``getrusage``'s ``ru_maxrss``: Linux carries ``ru_maxrss`` across
``execve``, so a worker process started by a nanny in this process reports this process's peak
(an earlier version of this script printed 259 MB for workers whose own peak was about 100 MB).
Linux only; elsewhere the ``ru_maxrss`` fallback has that flaw.

    python scripts/bench_dask.py [--mb-per-category 25] [--categories 8] [--largest 400]
                                 [--workdir DIR] [--note TEXT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
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


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> float:
    """Reset this process's high-water RSS to its current RSS (Linux); return the current RSS in MB."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass
    return _status_mb("VmRSS") or 0.0


def peak_rss_mb() -> float:
    """This process's own peak RSS (MB) since :func:`reset_peak`."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def tasks(root: Path) -> int:
    return sum(len(counting._units(cat)) for cat in discover(root))


class Run:
    """One row's measurements."""

    def __init__(self) -> None:
        self.text_mb = 0.0
        self.serial = (0.0, 0.0)  # one process: wall, CPU seconds
        self.serial_peak = 0.0  # one process: peak RSS (MB) during its count
        self.dask = (0.0, 0.0)  # 2 workers: wall, summed worker CPU seconds
        self.same = False
        self.workers: list[tuple[float, float]] = []  # per worker: RSS when up, peak during the count
        self.words = 0  # distinct words over all categories


def run(root: Path, reference: list[Any] | None = None, serial: Run | None = None) -> tuple[Run, list[Any]]:
    """Count ``root`` in one process (unless ``reference`` counts and their ``serial`` row are
    given) and on a fresh 2-worker cluster; the row and the one-process counts."""
    cats = discover(root)
    pretok = PRESETS["gpt2"]
    r = Run()
    if reference is None:
        base = reset_peak()
        t, c = time.monotonic(), cpu_seconds()
        reference = count_words(cats, pretok, max_bytes=10**12, executor="serial")
        r.serial = (time.monotonic() - t, cpu_seconds() - c)
        r.serial_peak = peak_rss_mb() - base
    elif serial is not None:
        r.serial, r.serial_peak = serial.serial, serial.serial_peak
    # A fresh cluster per run: its workers' peaks are this run's.
    with DaskExecutor(2, processes=True) as ex:
        client = ex._get_client()
        up = client.run(reset_peak)
        before = client.run(cpu_seconds)
        t = time.monotonic()
        b = count_words(cats, pretok, max_bytes=10**12, executor=ex)
        wall = time.monotonic() - t
        after = client.run(cpu_seconds)
        r.dask = (wall, sum(after[w] - before[w] for w in after))
        peaks = client.run(peak_rss_mb)
        r.workers = sorted((up[w], peaks[w]) for w in peaks)
    r.same = [(w.category, w.words, w.bytes, w.documents) for w in reference] == [
        (w.category, w.words, w.bytes, w.documents) for w in b
    ]
    r.text_mb = sum(w.bytes for w in reference) / 1e6
    r.words = sum(len(w.words) for w in reference)
    return r, reference


def row(label: str, n: int, r: Run) -> str:
    one = f"{r.serial[0]:.1f} s ({r.text_mb / r.serial[0]:.1f} MB/s)"
    two = f"{r.dask[0]:.1f} s ({r.text_mb / r.dask[0]:.1f} MB/s)"
    workers = ", ".join(f"{up:.0f} → {peak:.0f}" for up, peak in r.workers)
    return (
        f"| {label} | {n} | {r.text_mb:.0f} MB | {r.words:,} | {one} | {two} | "
        f"{r.serial[0] / r.dask[0]:.2f} | "
        f"{r.serial[1]:.1f} s / {r.dask[1]:.1f} s | {'yes' if r.same else 'NO'} | "
        f"+{r.serial_peak:.0f} MB | {workers} MB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb-per-category", type=int, default=25)
    parser.add_argument("--categories", type=int, default=8)
    parser.add_argument("--largest", type=int, default=400, help="MB of the largest single file (last row)")
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
            r, _ = run(root)
            rows.append(row(f"{args.categories} categories x one {mb} MB file", tasks(root), r))
            print(rows[-1], file=sys.stderr)
        for mb in sorted({max(1, big // 5), big, max(big, args.largest)}):
            root = Path(tmp) / f"one{mb}"
            make(root, mb, 1)
            r, reference = run(root)
            rows.append(row(f"1 category, one {mb} MB file", tasks(root), r))
            print(rows[-1], file=sys.stderr)
            if mb == big:
                # The same file as one task (splitting off): one worker counts, the other waits.
                saved = counting._PART_BYTES
                counting._PART_BYTES = 1 << 62
                try:
                    unsplit, _ = run(root, reference, r)
                    rows.append(row("the same, not split", tasks(root), unsplit))
                finally:
                    counting._PART_BYTES = saved
                print(rows[-1], file=sys.stderr)
            shutil.rmtree(root)  # the largest file alone needs its disk space
    block = "\n".join(
        [
            START,
            "## Counting on a Dask cluster (issue 13)",
            "",
            f"Generated by `python scripts/bench_dask.py --mb-per-category {args.mb_per_category} "
            f"--categories {args.categories} --largest {args.largest}` on {dt.date.today().isoformat()}, "
            f"{os.cpu_count()} cores"
            + (f" ({args.note})" if args.note else "")
            + ": synthetic categories of real English (licence paragraphs) as JSONL, GPT-2 regex, one "
            "process against a 2-worker `LocalCluster` (worker processes). Counting sends one task per "
            f"file, or per part of a file larger than {counting._PART_BYTES >> 20} MiB (JSONL byte ranges "
            "cut at records, Parquet row groups); the budget is applied afterwards in reading order, and "
            "the partial counts are merged pairwise by tasks on the workers, so the client receives one "
            "dict per category. `tasks` counts the first round's tasks (no budget here, so no recount). "
            "`CPU` is the one process's CPU time against the workers' summed CPU time during the count. "
            "`words` is the number of distinct words counted (what the merged counts hold). Memory: the "
            "one process's peak RSS above its RSS before the count, and each worker's RSS when its "
            "cluster is up → its peak during the count (its own high-water mark, `VmHWM`; a fresh "
            "cluster per row).",
            "",
            "| input | tasks | text | words | one process | 2 Dask workers | speed-up | CPU: one / workers "
            "| same counts | one process: peak RSS | workers: RSS up → peak |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
            *rows,
            END,
        ]
    )
    replace_section(args.benchmarks, START, END, block)
    print(block)


if __name__ == "__main__":
    main()
