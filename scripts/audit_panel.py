#!/usr/bin/env python3
"""The paper's Table 4 panel: audit every shared published tokenizer and compare with the paper.

Runs :func:`mixinfer.audit` over the tokenizer files of ``../shared/tokenizers`` (GPT-2, GPT-NeoX,
Claude, Llama, Mistral, cl100k, Llama 3 -- its new merges only, base cl100k --, Llama 4, Qwen,
Mistral NeMo, Mistral v3 SentencePiece, Whisper) with the bundled samples, writes the long CSV and
rewrites the part of BENCHMARKS.md between ``<!-- panel:start -->`` and ``<!-- panel:end -->``: our
English / Code / Latin-Cyrillic / Other next to the paper's (from ``../shared/tokenizers/README.md``).

    python scripts/audit_panel.py [--merges 30000] [--bootstrap B] [--csv panel.csv]
                                  [--only LABEL,...] [--reverse] [--times FILE]

A run at T=30000 takes hours; two processes can share the work through one ``--cache-dir``
(e.g. one with ``--reverse``): a later full run then reuses every cached solution. ``--times``
keeps each tokenizer's wall time from the run that solved it, so the table reports that time
and not the cache lookup's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sections import replace_section  # noqa: E402

from mixinfer import audit  # noqa: E402
from mixinfer.audit import TokenizerSpec  # noqa: E402

SHARED = ROOT.parent / "shared" / "tokenizers"
START, END = "<!-- panel:start -->", "<!-- panel:end -->"
GROUPS = ("English", "Code", "Latin/Cyrillic languages", "Other languages")

# (file, label, base file or None, the paper's row label or None). Percent English/Code/LC/Other.
PANEL = [
    ("gpt-2.json", "gpt-2", None, "GPT-2"),
    ("gpt-neox.json", "gpt-neox", None, "GPT-NeoX"),
    ("claude.json", "claude", None, "Claude 1/2"),
    ("llama.json", "llama", None, "Llama"),
    ("mistral.json", "mistral", None, "Mistral"),
    ("mistral-v3-sentencepiece.model", "mistral-v3", None, None),
    ("cl100k_base.tiktoken", "cl100k", None, "GPT-3.5 (cl100k)"),
    ("llama3-tokenizer.model", "llama3-new", "cl100k_base.tiktoken", "Llama 3, new merges"),
    ("llama4-tokenizer.model", "llama4", None, None),
    ("qwen.tiktoken", "qwen", None, None),
    ("mistral-nemo-tekken.json", "mistral-nemo", None, "Mistral NeMo"),
    ("whisper-multilingual.tiktoken", "whisper", None, None),
]
PAPER = {
    "GPT-2": (99, 1, 0, 0),
    "GPT-3.5 (cl100k)": (34, 63, 2, 1),
    "Llama": (49, 19, 27, 4),
    "Llama 3, new merges": (21, 30, 22, 27),
    "Mistral": (58, 26, 14, 3),
    "Mistral NeMo": (35, 18, 25, 22),
    "GPT-NeoX": (82, 15, 2, 1),
    "Claude 1/2": (39, 57, 2, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=30000, help="new merges past a base are added to it")
    parser.add_argument("--bootstrap", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--csv", type=Path, default=None, help="also write the long CSV here")
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared tokenizers folder")
    parser.add_argument("--only", default=None, help="comma-separated labels to run (default: all)")
    parser.add_argument("--reverse", action="store_true", help="run the tokenizers in reverse order")
    parser.add_argument("--times", type=Path, default=None, help="JSON of each label's solve time, kept")
    args = parser.parse_args()
    shared = args.shared
    if not shared.is_dir():
        sys.exit(f"{shared} is not available")

    # Llama 3's new merges follow cl100k's 100,000: T new merges means 100,000 + T merges in all.
    only = set(args.only.split(",")) if args.only else None
    specs = [
        TokenizerSpec(str(shared / f), str(shared / b) if b else None, label)
        for f, label, b, _ in PANEL
        if (shared / f).exists() and (only is None or label in only)
    ]
    if args.reverse:
        specs.reverse()
    times: dict[str, float] = {}
    if args.times is not None and args.times.exists():
        times = json.loads(args.times.read_text(encoding="utf-8"))
    t = time.monotonic()
    rows, lines = [], []
    for spec in specs:
        merges = args.merges + (100_000 if spec.base else 0)
        print(f"{spec.label} ...", file=sys.stderr)
        result = audit(
            [spec], None, merges=merges, bootstrap=args.bootstrap, cache_dir=args.cache_dir,
        )  # fmt: skip
        entry = result.entries[0]
        if args.times is not None and entry.result is not None:
            # A cached solution takes seconds to load: keep the time of the run that solved it.
            seconds = max(entry.seconds, times.get(spec.label, 0.0))
            times[spec.label] = seconds
            latest = json.loads(args.times.read_text(encoding="utf-8")) if args.times.exists() else {}
            args.times.write_text(json.dumps({**latest, **times}, indent=1), encoding="utf-8")
        else:
            seconds = entry.seconds
        paper_label = next(p for _, label, _, p in PANEL if label == spec.label)
        if entry.result is None:
            rows.append(f"| {spec.label} | failed: {entry.error} | | | | | |")
            continue
        groups = result.proportions("group")[spec.label]
        ours = " / ".join(f"{100 * groups.get(g, 0.0):.0f}" for g in GROUPS)
        paper = " / ".join(str(x) for x in PAPER[paper_label]) if paper_label in PAPER else "–"
        r = entry.result
        residual = r.diagnostics.get("objective_per_merge", float("nan"))
        constrained = r.merges_used - r.start_merge
        rows.append(
            f"| {spec.label} | {constrained} | {r.pretokenizer['name']} | {ours} | {paper} | "
            f"{residual:.0f} | {seconds:.0f} s |"
        )
        if args.csv is not None:
            lines.append(result.to_long_csv() if not lines else result.to_long_csv().split("\n", 1)[1])
    minutes = (time.monotonic() - t) / 60
    if args.csv is not None:
        args.csv.write_text("".join(lines), encoding="utf-8")
    block = "\n".join(
        [
            START,
            "## The published-tokenizer panel (issue 12)",
            "",
            f"Generated by `python scripts/audit_panel.py --merges {args.merges}"
            + (f" --bootstrap {args.bootstrap}" if args.bootstrap else "")
            + f"` on {dt.date.today().isoformat()} in {minutes:.0f} min: every shared tokenizer file, "
            "no flag but the merges, the bundled samples (Debian manual pages and catalogues, not web "
            "text). Percent of training bytes: English / Code / Latin-Cyrillic / Other, ours then the "
            "paper's (Table 4; 116 categories of web text, T=30000).",
            "",
            "| tokenizer | constrained merges | pretokenizer | ours | paper | unexplained per merge | time |",
            "|---|---:|---|---:|---:|---:|---:|",
            *rows,
            END,
        ]
    )
    replace_section(args.benchmarks, START, END, block)
    print(block)


if __name__ == "__main__":
    main()
