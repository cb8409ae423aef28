"""Speed and memory benchmarks; writes the speed section of BENCHMARKS.md.

Measures, on the bundled samples:

1. word counting throughput with a byte-level regex pretokenizer, on one core and on all cores;
2. the controlled run: the demo tokenizer (n=5 categories, T=3000), end to end, cold cache;
3. a published tokenizer at full depth: GPT-2 (50k merges), 13 categories, T=30000, end to end,
   cold cache, with peak memory (needs ../shared/tokenizers/gpt-2.json);
4. the same runs again with a warm cache.

End-to-end runs go through the real CLI in a subprocess, so the numbers include start-up and the
memory of worker processes. Usage::

    python scripts/bench_speed.py [--repeat 3] [--skip-gpt2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERAL = ROOT / "data_samples" / "general"
DEMO = ROOT / "data_samples" / "demo" / "tokenizer.json"
GPT2 = ROOT.parent / "shared" / "tokenizers" / "gpt-2.json"
BENCH = ROOT / "BENCHMARKS.md"
START, END = "<!-- speed:start -->", "<!-- speed:end -->"
GPT2_CATEGORIES = ["en", "code", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "ja", "zh", "tr"]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def subset(categories: list[str], where: Path) -> Path:
    """A samples directory holding only ``categories`` (symlinks to the bundled ones)."""
    where.mkdir(parents=True, exist_ok=True)
    for c in categories:
        (where / c).symlink_to(GENERAL / c, target_is_directory=True)
    return where


def run_cli(args: list[str]) -> tuple[float, float, dict]:
    """Run ``mixinfer`` once; return (wall seconds, peak RSS GiB of the process tree, JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [sys.executable, "-m", "mixinfer.cli", *args, "--quiet", "--output", str(out)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.monotonic()
        subprocess.run(cmd, check=True, cwd=ROOT)
        wall = time.monotonic() - t
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        data = json.loads(out.read_text())
    # ru_maxrss is the largest child seen so far, in KiB; report it only if this run raised it.
    return wall, max(peak, before) / 2**20, data


def bench_counting(repeat: int) -> list[str]:
    from mixinfer.counting import count_words
    from mixinfer.pretokenizers import preset
    from mixinfer.samples import discover

    cats = discover(GENERAL)
    pre = preset("gpt2")
    one = [c for c in cats if c.name == "en"] + [c for c in cats if c.name == "de"]
    rows = []
    for label, chosen, workers in (
        ("1 process, en+de", one, 1),
        (f"{os.cpu_count()} processes, all {len(cats)} categories", cats, None),
    ):
        walls, cpus = [], []
        mb = 0.0
        for _ in range(repeat):
            cpu0 = (
                resource.getrusage(resource.RUSAGE_SELF).ru_utime
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
            )
            t = time.monotonic()
            counts = count_words(chosen, pre, max_bytes=10**9, workers=workers)
            walls.append(time.monotonic() - t)
            cpus.append(
                resource.getrusage(resource.RUSAGE_SELF).ru_utime
                + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
                - cpu0
            )
            mb = sum(wc.bytes for wc in counts) / 1e6
        wall = statistics.median(walls)
        cpu = statistics.median(cpus)
        rows.append(
            f"| counting, gpt2 regex, {label} | {mb:.1f} MB | {wall:.2f} s (median of {repeat}) | "
            f"{mb / wall:.1f} MB/s; {mb / cpu:.1f} MB per CPU-second (CPU/wall {cpu / wall:.2f}) |"
        )
    return rows


def bench_run(label: str, args: list[str], repeat: int, cache: Path) -> list[str]:
    colds, warms, peaks = [], [], []
    data: dict = {}
    for _ in range(repeat):
        shutil.rmtree(cache, ignore_errors=True)
        wall, peak, data = run_cli([*args, "--cache-dir", str(cache)])
        colds.append(wall)
        peaks.append(peak)
        wall, _, _ = run_cli([*args, "--cache-dir", str(cache)])
        warms.append(wall)
    cold, warm = statistics.median(colds), statistics.median(warms)
    timing = ", ".join(f"{k} {v:.1f}" for k, v in data["timing"].items() if k != "total")
    solver = data["solver"]
    extra = f"; log10 MSE {data['truth']['log10_mse']:.2f}" if "truth" in data else ""
    return [
        f"| {label}, cold cache | {cold:.1f} s (median of {repeat}) | stages: {timing}; "
        f"LP {solver['rounds']} rounds, {solver['constraints']} rows, {solver['variables']} "
        f"columns{extra} | peak RSS {max(peaks):.2f} GiB |",
        f"| {label}, warm cache | {warm:.1f} s ({100 * warm / cold:.0f}% of cold) | | |",
    ]


def write_section(lines: list[str]) -> None:
    text = BENCH.read_text() if BENCH.exists() else "# Benchmarks\n"
    block = "\n".join([START, *lines, END])
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    BENCH.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per end-to-end measurement")
    parser.add_argument("--skip-gpt2", action="store_true", help="skip the GPT-2 full-depth run")
    parser.add_argument("--no-write", action="store_true", help="print instead of updating the file")
    opts = parser.parse_args()

    lines = [
        "## Speed and memory",
        "",
        f"Machine: {machine()}. Command: `python scripts/bench_speed.py --repeat {opts.repeat}`"
        f" ({time.strftime('%Y-%m-%d')}). End-to-end runs are the real CLI in a subprocess.",
        "",
        "| measurement | size | time | result |",
        "|---|---|---|---|",
    ]
    lines += bench_counting(opts.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        demo_samples = subset(["en", "code", "de", "fr", "ru"], tmpd / "demo5")
        lines += bench_run(
            "demo tokenizer, n=5, T=3000, bundled samples (~1.5 MB each)",
            ["infer", str(DEMO), "--samples", str(demo_samples), "--merges", "3000"],
            opts.repeat,
            tmpd / "cache-demo5",
        )
        lines += bench_run(
            "README command: demo tokenizer against all bundled categories (n=23, T=3000)",
            ["infer", str(DEMO)],
            opts.repeat,
            tmpd / "cache-demo",
        )
        if not opts.skip_gpt2 and GPT2.exists():
            gpt2_samples = subset(GPT2_CATEGORIES, tmpd / "gpt2")
            lines += bench_run(
                "GPT-2 (50k merges), 13 categories, T=30000",
                ["infer", str(GPT2), "--samples", str(gpt2_samples), "--merges", "30000"],
                1,
                tmpd / "cache-gpt2",
            )
    if opts.no_write:
        print("\n".join(lines))
    else:
        write_section(lines)
        print(f"updated {BENCH}", file=sys.stderr)


if __name__ == "__main__":
    main()
