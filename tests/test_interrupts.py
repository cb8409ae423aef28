"""Ctrl-C at any point of a parallel run (issue 17, item 1): the real CLI in a subprocess, SIGINT sent
to its whole process group as a terminal does, at several points of the run, several times each.

Every time the run must exit 130 within a few seconds, say "interrupted" on stderr with no
traceback, leave no output file and no worker process, and leave a cache that holds only complete
entries. The points are found by watching the run, not by sleeping: worker processes appear (the
counting pool), every category's word counts reach the cache (the replay pool starts right then),
every trace reaches the cache (the LP starts).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mixinfer.cache import Cache
from mixinfer.cli import EXIT_INTERRUPTED

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or (os.cpu_count() or 1) < 2,
    reason="watches worker processes in /proc; needs two cores for a parallel run",
)

# Three categories of 3 MB: over counting's parallel threshold (8 MiB), and one replay job each.
CATEGORY_BYTES = 3_000_000
CATEGORIES = ("code", "en", "legal")
EXIT_SECONDS = 5.0
STAGE_TIMEOUT = 120.0


def _text_files() -> dict[str, list[Path]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    licences = Path("/usr/share/common-licenses")
    docs = sorted(Path("/usr/share/doc").glob("*/copyright"))
    return {
        "code": sorted(stdlib.glob("*.py")),
        "en": sorted(p for p in licences.iterdir() if p.is_file()) if licences.is_dir() else [],
        "legal": docs[::-1],
    }


@pytest.fixture(scope="module")
def big_samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three categories of 3 MB of real text each (repeated if the machine has less)."""
    root = tmp_path_factory.mktemp("big-samples")
    for name, files in _text_files().items():
        data = b""
        for path in files:
            data += path.read_bytes()
            if len(data) >= CATEGORY_BYTES:
                break
        if len(data) < 100_000:
            pytest.skip(f"not enough local text for the '{name}' category")
        data = (data * (CATEGORY_BYTES // len(data) + 1))[:CATEGORY_BYTES]
        (root / name).mkdir()
        (root / name / "a.txt").write_bytes(data)
    return root


def _children(pid: int) -> list[str]:
    found: list[str] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):  # the thread or process just ended
                found += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
    except OSError:
        pass
    return found


def _entries(cache_dir: Path, kind: str) -> int:
    return sum(1 for p in cache_dir.rglob("*.npz") if p.parent.name == kind)


# Each point: when the run is there, as seen from outside.
POINTS: dict[str, Callable[[int, Path], bool]] = {
    # Counting workers exist and no category is counted yet.
    "counting": lambda pid, cache: bool(_children(pid)) and _entries(cache, "words") == 0,
    # Every category's words are stored: the parent is starting the replay pool.
    "replay-start": lambda pid, cache: _entries(cache, "words") == len(CATEGORIES),
    # Replay workers exist.
    "replay": lambda pid, cache: _entries(cache, "words") == len(CATEGORIES) and bool(_children(pid)),
    # Every trace is stored: the LP is being built and solved.
    "lp": lambda pid, cache: _entries(cache, "trace") == len(CATEGORIES),
}
# Seconds between seeing the point and pressing Ctrl-C: the moment itself and a little later.
DELAYS = {
    "counting": (0.0, 0.02, 0.1, 0.3),
    "replay-start": (0.0, 0.002, 0.005, 0.01, 0.02),
    "replay": (0.0, 0.1, 0.3),
    "lp": (0.0, 0.2, 0.5),
}


@dataclass
class Outcome:
    returncode: int | None
    seconds: float
    stderr: str


def _interrupt(tokenizer: Path, samples: Path, work: Path, point: str, delay: float) -> Outcome:
    cache_dir = work / "cache"
    output = work / "out.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mixinfer.cli import main; main()", "infer", str(tokenizer),
         "--samples", str(samples), "--max-bytes", "10MB", "--cache-dir", str(cache_dir),
         "-o", str(output)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        reached = POINTS[point]
        deadline = time.monotonic() + STAGE_TIMEOUT
        while not reached(proc.pid, cache_dir):
            if proc.poll() is not None:
                pytest.fail(f"the run ended (exit {proc.returncode}) before {point}: {proc.communicate()[1]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the run did not reach {point} in {STAGE_TIMEOUT} s")
            time.sleep(0.002)
        if delay:
            time.sleep(delay)
        # As a terminal does: Ctrl-C goes to every process of the foreground job.
        os.killpg(proc.pid, signal.SIGINT)
        start = time.monotonic()
        try:
            _, err = proc.communicate(timeout=EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
            return Outcome(None, time.monotonic() - start, err)
        return Outcome(proc.returncode, time.monotonic() - start, err)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _group_is_gone(pgid: int) -> bool:
    deadline = time.monotonic() + EXIT_SECONDS
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.01)
    os.killpg(pgid, signal.SIGKILL)
    return False


@pytest.mark.parametrize(("point", "delay"), [(p, d) for p, ds in DELAYS.items() for d in ds])
def test_ctrl_c_exits_130_at_once_without_traceback_output_or_a_bad_cache(
    point: str, delay: float, small_bpe_tokenizer_json: Path, big_samples: Path, tmp_path: Path
) -> None:
    outcome = _interrupt(small_bpe_tokenizer_json, big_samples, tmp_path, point, delay)
    print(f"Ctrl-C at {point} +{delay:.3f} s: exit {outcome.returncode} after {outcome.seconds:.2f} s")
    assert outcome.returncode == EXIT_INTERRUPTED, (
        f"exit {outcome.returncode} after {outcome.seconds:.1f} s (None: still running after "
        f"{EXIT_SECONDS} s)\n{outcome.stderr}"
    )
    assert "interrupted" in outcome.stderr
    assert "Traceback" not in outcome.stderr, outcome.stderr
    # No output, not even a temporary file beside it (the cache folder appears with its first entry).
    assert {p.name for p in tmp_path.iterdir()} <= {"cache"}
    cache_dir = tmp_path / "cache"
    assert not [
        p for p in cache_dir.rglob("*") if p.is_file() and p.suffix != ".npz" and p.parent != cache_dir
    ]
    cache = Cache(cache_dir)
    for entry in cache_dir.rglob("*.npz"):
        assert cache.load(entry.parent.name, entry.stem) is not None, entry
    assert cache.repaired == 0


def test_workers_do_not_outlive_an_interrupted_run(
    small_bpe_tokenizer_json: Path, big_samples: Path, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mixinfer.cli import main; main()", "infer",
         str(small_bpe_tokenizer_json), "--samples", str(big_samples), "--max-bytes", "10MB",
         "--cache-dir", str(cache_dir), "-q", "-o", str(tmp_path / "out.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STAGE_TIMEOUT
        while not POINTS["replay"](proc.pid, cache_dir):
            assert proc.poll() is None and time.monotonic() < deadline, "the run never reached replay"
            time.sleep(0.002)
        workers = _children(proc.pid)
        # Only the main process is told: it must stop the workers itself.
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=EXIT_SECONDS)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED and "Traceback" not in err, err
    assert workers
    assert _group_is_gone(proc.pid), "worker processes outlived the interrupted run"
