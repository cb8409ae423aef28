"""Defects a second hands-on review of the command line found (internal errors for user mistakes,
staging folders left behind by a signal, warnings only the JSON showed, messages naming the wrong
option), each pinned down through the command line: exit code and stderr."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import cli

from mixinfer import errors
from mixinfer.cli import EXIT_CODES
from mixinfer.options import MAX_BOOTSTRAP, OptionError, Options

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def samples(three_categories: Path) -> Path:
    """Three small categories: en, de, fr (conftest)."""
    return three_categories


# -- D5: a huge --bootstrap ----------------------------------------------------------------------------


def test_options_bound_the_bootstrap_replicates() -> None:
    assert Options(bootstrap=MAX_BOOTSTRAP).bootstrap == MAX_BOOTSTRAP
    with pytest.raises(OptionError, match="limit of 10,000") as raised:
        Options(bootstrap=MAX_BOOTSTRAP + 1)
    assert raised.value.option == "bootstrap"


@pytest.mark.parametrize("replicates", ["100000000000", "99999999999999999999999"])
def test_a_huge_bootstrap_is_a_usage_error_before_any_work(
    replicates: str, small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """It used to run into MemoryError (a replicates x categories array) or numpy's ValueError:
    exit 1, "internal error", after counting and replaying."""
    cache = tmp_path / "cache"
    runs = {
        "infer": ["infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                  "--cache-dir", str(cache), "-q", "-o", "-"],
        "audit": ["audit", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                  "--cache-dir", str(cache), "-q", "--format", "csv"],
        "simulate": ["simulate", "--n", "2", "--trials", "1", "--samples", str(samples), "--vocab", "400",
                     "--merges", "60", "--train-bytes", "20kB", "--cache-dir", str(cache), "-q"],
    }  # fmt: skip
    for command, args in runs.items():
        code, out, err = cli(*args, "--bootstrap", replicates)
        assert code == EXIT_CODES[errors.UsageError], (command, err)
        assert f"--bootstrap {replicates} is more replicates than the limit of 10,000" in err, (command, err)
        assert "internal error" not in err and out == "", (command, err)
        assert not cache.exists(), command  # refused before anything was counted


# -- D6: samples pull to a folder it cannot create -----------------------------------------------------


def _unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run without the power to write into a read-only folder: as is for a normal user;
    for root (who may write anywhere), in a user namespace of its own, where it is not."""
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-U", "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root and 'unshare -U' is not available to drop the privilege")
    return [unshare, "-U", *argv]


def run_mixinfer(*args: str, prefix: Callable[[list[str]], list[str]] = list) -> tuple[int, str, str]:
    """The real command in a subprocess (this checkout's package), as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(prefix([sys.executable, "-m", "mixinfer", *args]), capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_pull_into_a_read_only_folder_is_a_usage_error(samples: Path, tmp_path: Path) -> None:
    """It was exit 1, "internal error: PermissionError" on the staging folder; infer -o said
    "cannot write --output ...; choose a folder you can write to" (exit 2), and now pull does."""
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for output in (locked / "snap", locked / "sub" / "snap"):
            code, out, err = run_mixinfer("samples", "pull", str(samples), "-o", str(output),
                                          "--max-bytes", "10kB", "-q", prefix=_unprivileged)  # fmt: skip
            assert code == EXIT_CODES[errors.UsageError], err
            assert (
                f"cannot write --output {output}: Permission denied; choose a folder you can write to" in err
            )
            assert "internal error" not in err and out == ""
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_pull_into_proc_is_a_usage_error(samples: Path) -> None:
    """/proc takes no new folders (ENOENT even for root): it was a FileNotFoundError, exit 1."""
    code, out, err = cli(
        "samples", "pull", str(samples), "-o", "/proc/mixinfer-snap", "--max-bytes", "10kB", "-q"
    )
    assert code == EXIT_CODES[errors.UsageError], err
    assert "cannot write --output /proc/mixinfer-snap" in err and "choose another output path" in err
    assert "internal error" not in err and out == ""


# -- D7: SIGTERM or SIGHUP during samples pull -----------------------------------------------------------

# The real command, each document written slowly: the pull is surely still running when the test
# sees its staging folder and signals it (the signal interrupts the sleep, as it would a write).
SLOW_PULL = """
import time
from mixinfer import sample_commands
write = sample_commands._PartWriter.write
def slow_write(self, doc):
    write(self, doc)
    time.sleep(0.05)
sample_commands._PartWriter.write = slow_write
from mixinfer.cli import main
main()
"""


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGHUP, 129, "terminated (SIGHUP)"),
     (signal.SIGINT, 130, "interrupted")],
)  # fmt: skip
def test_a_signal_during_pull_leaves_no_staging_folder(
    signum: int, code: int, said: str, tmp_path: Path
) -> None:
    """SIGTERM and SIGHUP used to kill the pull on the spot (exit 143), leaving '.snap.pull-XXXX'
    beside the output; they now clean up as Ctrl-C does and exit 128 + the signal's number."""
    src = tmp_path / "src"
    for name in ("en", "de"):
        (src / name).mkdir(parents=True)
        for k in range(50):
            (src / name / f"{k:02d}.txt").write_text(f"document {k} of {name}\n" * 20, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_PULL, "samples", "pull", str(src), "-o", str(work / "snap"), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=work,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # Under nohup (a CI runner's shell may be one) SIGHUP is ignored, which the tool rightly
        # keeps: the child gets the default action back, as from an interactive shell.
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not list(work.glob(".snap.pull-*/*/part-*")):
            assert proc.poll() is None, f"the pull ended before it was signalled: {proc.communicate()}"
            assert time.monotonic() < deadline, "the pull never started writing"
            time.sleep(0.01)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert f"{said}: no output written" in err and "Traceback" not in err, err
    assert list(work.iterdir()) == []  # no snapshot, no staging folder


# -- D9: samples info shows what reading the samples reported ---------------------------------------------


@pytest.fixture
def flawed_samples(tmp_path: Path, license_text: str) -> Path:
    """``bin`` (one binary file: no text at all), ``latin1`` (Latin-1, not UTF-8) and ``en`` (text,
    with a symbolic link loop beside it)."""
    root = tmp_path / "flawed"
    for name in ("bin", "latin1", "en"):
        (root / name).mkdir(parents=True)
    (root / "bin" / "x.txt").write_bytes(bytes(range(256)) * 16)
    (root / "latin1" / "a.txt").write_bytes("café crème brûlée\n".encode("latin-1"))
    (root / "en" / "a.txt").write_text(license_text[:20_000], encoding="utf-8")
    (root / "en" / "loop").symlink_to("loop")
    return root


def test_samples_info_table_shows_the_warnings_and_the_category_infer_refuses(
    flawed_samples: Path, small_bpe_tokenizer_json: Path, tmp_path: Path
) -> None:
    """The table showed 'bin 1 file, 0 documents', nothing on stderr, exit 0, while infer refused
    the folder (exit 4); the warnings were only in --format json."""
    code, out, err = cli("samples", "info", str(flawed_samples))
    assert code == 0, err
    assert (
        f"warning: {flawed_samples / 'bin' / 'x.txt'}: looks like a binary file (NUL bytes); skipped" in err
    )
    assert f"{flawed_samples / 'latin1' / 'a.txt'}: 4 invalid UTF-8 byte sequence(s) replaced" in err
    assert f"{flawed_samples / 'en' / 'loop'}: cannot be read" in err
    refused = "category 'bin' has no readable text (1 file(s), all empty, binary or unreadable)"
    assert f"warning: {refused}: infer would refuse it" in err
    (bin_row,) = [line for line in out.splitlines() if " bin " in line]
    assert "none" in bin_row
    assert "warning" not in out  # stdout holds the table only
    code, _, err = cli("infer", str(small_bpe_tokenizer_json), "--samples", str(flawed_samples),
                       "--merges", "60", "--no-cache", "-q")  # fmt: skip
    assert code == EXIT_CODES[errors.SamplesError] and "category 'bin' has no readable text" in err, err


def test_samples_info_json_flags_the_category_without_text(flawed_samples: Path) -> None:
    code, out, err = cli("samples", "info", str(flawed_samples), "--format", "json")
    assert code == 0 and err == "", err
    categories = {c["name"]: c for c in json.loads(out)["categories"]}
    assert [categories[n]["readable"] for n in ("bin", "en", "latin1")] == [False, True, True]
    assert any("infer would refuse it" in w for w in categories["bin"]["warnings"])


# -- messages that named the wrong cause ------------------------------------------------------------------


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """No offline variable set (set first so that the one --offline sets is undone after the test)."""
    for var in ("MIXINFER_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)


def test_offline_by_the_option_names_the_option(
    online: None, small_bpe_tokenizer_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--offline alone was reported as 'HF_HUB_OFFLINE or MIXINFER_OFFLINE is set; unset it'."""
    args = ["infer", str(small_bpe_tokenizer_json), "--samples", "hf://datasets/org/name/data", "--merges",
            "60", "--no-cache", "-q"]  # fmt: skip
    code, _, err = cli(*args, "--offline")
    assert code == EXIT_CODES[errors.SamplesError], err
    assert "offline mode is on (--offline is given); leave out --offline, or run" in err, err
    assert "HF_HUB_OFFLINE" not in err and "MIXINFER_OFFLINE" not in err
    monkeypatch.delenv("MIXINFER_OFFLINE")  # what --offline set in this process
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = cli(*args)
    assert code == EXIT_CODES[errors.SamplesError], err
    assert "offline mode is on (HF_HUB_OFFLINE is set); unset HF_HUB_OFFLINE, or run" in err, err
    code, _, err = cli(*args, "--offline")
    assert (
        "(--offline is given and HF_HUB_OFFLINE is set); leave out --offline and unset HF_HUB_OFFLINE" in err
    )


def test_a_missing_memory_url_is_said_not_to_exist(small_bpe_tokenizer_json: Path) -> None:
    """memory:// is in this process: it said remote samples 'need network access'."""
    pytest.importorskip("fsspec")
    code, _, err = cli("infer", str(small_bpe_tokenizer_json), "--samples", "memory://mixinfer-nothing",
                       "--merges", "60", "--no-cache", "-q")  # fmt: skip
    assert code == EXIT_CODES[errors.SamplesError], err
    assert "memory://mixinfer-nothing does not exist; check --samples" in err and "network" not in err, err
    code, _, err = cli("samples", "info", "memory://mixinfer-nothing")
    assert code == EXIT_CODES[errors.SamplesError] and "does not exist; check the path" in err, err


def test_missing_attack_samples_name_their_option(samples: Path, tmp_path: Path) -> None:
    """It said 'check --samples', about the folder given to --attack-samples."""
    missing = tmp_path / "nonexistent"
    code, _, err = cli("simulate", "--n", "2", "--trials", "1", "--samples", str(samples), "--vocab", "400",
                       "--merges", "60", "--attack-samples", str(missing), "--no-cache", "-q")  # fmt: skip
    assert code == EXIT_CODES[errors.SamplesError], err
    assert f"samples directory {missing} does not exist; check --attack-samples" in err, err


@pytest.mark.parametrize("given", ["0.5", "0", "0kB"])
def test_a_size_below_one_byte_is_echoed_as_given(given: str, samples: Path, tmp_path: Path) -> None:
    """'--max-bytes 0.5' said 'not 0', a number the user never typed."""
    code, _, err = cli("infer", "--samples", str(samples), "--merges", "60", "--max-bytes", given, "-q")
    assert code == EXIT_CODES[errors.UsageError], err
    assert f"--max-bytes must be a positive number of bytes, not '{given}'" in err, err
    code, _, err = cli("samples", "pull", str(samples), "-o", str(tmp_path / "snap"), "--max-bytes", given)
    assert (
        code == EXIT_CODES[errors.UsageError] and f"not '{given}'" in err and not (tmp_path / "snap").exists()
    )
