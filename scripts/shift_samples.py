#!/usr/bin/env python3
"""Build the shift benchmark's samples: each bundled category split by *source*, not by document.

``mixinfer simulate --samples TRAIN --attack-samples ATTACK`` trains every tokenizer on ``TRAIN``
and attacks it with ``ATTACK``. This script writes such a pair of folders from the bundled samples,
using the provenance in ``data_samples/MANIFEST.json`` (the source path of every document):

* natural languages (``general`` without ``code``): train on the translated **manual pages**
  (``/usr/share/man``), attack with the **gettext catalogues** (``/usr/share/locale``; for English,
  which has no catalogues, the ``/usr/share/doc`` prose);
* programming languages (``programming``): documents are grouped by **project** (the first four
  directories of their source path, e.g. ``/usr/lib/python3/dist-packages`` against
  ``/usr/lib/python3.11``, ``/usr/include/llvm-14`` against ``/usr/include/GL``), and the projects
  are dealt, largest first, to the side with fewer bytes; the side holding the largest project
  trains, the other attacks.

A category enters only when both sides hold at least ``--min-bytes`` of text (default 100 kB);
the others are listed in ``shift.json`` beside the folders. Files are copied with their
modification times (``shutil.copy2``) and only when missing or different, so the categories'
fingerprints, and with them the simulation cache, survive a rebuild.

    python scripts/shift_samples.py --output /tmp/shift
    mixinfer simulate --samples /tmp/shift/languages/train --attack-samples /tmp/shift/languages/attack --n 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data_samples"

MIN_BYTES = 100_000
PROJECT_DEPTH = 4  # directories of a source path that name its project: /usr/lib/python3/dist-packages


@dataclass(frozen=True)
class Pool:
    """A pool of the benchmark: which bundled group, which categories to leave out, how to split."""

    name: str
    group: str
    exclude: tuple[str, ...]
    rule: str  # "man-vs-rest" or "projects"


POOLS = (
    Pool("languages", "general", ("code",), "man-vs-rest"),
    Pool("code", "programming", (), "projects"),
)


def project(source: str) -> str:
    """The project of a source path: its first :data:`PROJECT_DEPTH` directories."""
    parts = source.strip("/").split("/")[:-1]
    return "/" + "/".join(parts[:PROJECT_DEPTH])


def sides(files: list[dict[str, object]], rule: str) -> tuple[list[str], list[str]]:
    """(training files, attack files) of one category under ``rule``; deterministic."""
    if rule == "man-vs-rest":
        train = [str(f["file"]) for f in files if str(f["source"]).startswith("/usr/share/man/")]
        attack = [str(f["file"]) for f in files if not str(f["source"]).startswith("/usr/share/man/")]
        return train, attack
    groups: dict[str, list[str]] = defaultdict(list)
    size: dict[str, int] = defaultdict(int)
    for f in files:
        key = project(str(f["source"]))
        groups[key].append(str(f["file"]))
        size[key] += int(f["bytes"])  # type: ignore[call-overload]
    dealt: list[list[str]] = [[], []]
    total = [0, 0]
    for key in sorted(groups, key=lambda k: (-size[k], k)):
        side = 0 if total[0] <= total[1] else 1
        dealt[side].extend(groups[key])
        total[side] += size[key]
    return dealt[0], dealt[1]


def _copy(src: Path, dst: Path) -> None:
    if dst.exists():
        have, want = dst.stat(), src.stat()
        if have.st_size == want.st_size and have.st_mtime == want.st_mtime:
            return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def build(output: Path, min_bytes: int = MIN_BYTES, data: Path = DATA) -> dict[str, object]:
    """Write ``output/<pool>/{train,attack}/<category>/`` and ``output/shift.json``; return the summary."""
    manifest = json.loads((data / "MANIFEST.json").read_text(encoding="utf-8"))
    summary: dict[str, object] = {"min_bytes": min_bytes, "pools": {}}
    for pool in POOLS:
        kept: dict[str, dict[str, int]] = {}
        left: dict[str, dict[str, int]] = {}
        for full, entry in sorted(manifest["categories"].items()):
            group, name = full.split("/", 1)
            if group != pool.group or name in pool.exclude:
                continue
            files = entry["files"]
            bytes_of = {str(f["file"]): int(f["bytes"]) for f in files}
            train, attack = sides(files, pool.rule)
            sizes = {"train": sum(bytes_of[f] for f in train), "attack": sum(bytes_of[f] for f in attack)}
            if min(sizes.values()) < min_bytes:
                left[name] = sizes
                continue
            kept[name] = sizes
            for side, chosen in (("train", train), ("attack", attack)):
                target = output / pool.name / side / name
                for f in chosen:
                    _copy(data / group / name / f, target / f)
                # A rebuild with other rules must not leave stale documents behind.
                for stale in set(p.name for p in target.glob("*.txt.gz")) - set(chosen):
                    (target / stale).unlink()
        summary["pools"][pool.name] = {"rule": pool.rule, "kept": kept, "left_out": left}  # type: ignore[index]
    (output / "shift.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="folder to write the split into")
    parser.add_argument("--min-bytes", type=int, default=MIN_BYTES, help="least text on each side")
    args = parser.parse_args(argv)
    summary = build(args.output, args.min_bytes)
    for name, info in summary["pools"].items():  # type: ignore[attr-defined]
        left = ", ".join(f"{k} ({v['train']:,} / {v['attack']:,} bytes)" for k, v in info["left_out"].items())
        kept = len(info["kept"])
        print(f"{name}: {kept} categories ({info['rule']}); left out: {left or 'none'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
