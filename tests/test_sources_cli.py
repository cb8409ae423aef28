"""The CLI on hostile samples (issues 11 and 17): exit 0 with warnings for what can be skipped,
exit 4 (SamplesError) for what cannot be used, never an internal error or a hang."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from mixinfer.cli import app

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file types and names")


@pytest.fixture(autouse=True)
def never_hang() -> Iterator[None]:
    """A FIFO opened by mistake blocks forever: fail instead of hanging the suite."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def fail(signum: int, frame: object) -> None:
        raise AssertionError("blocked: a FIFO or device was opened")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(240)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def infer(tokenizer: Path, samples: str | Path) -> Result:
    return CliRunner().invoke(
        app, ["infer", str(tokenizer), "--samples", str(samples), "--merges", "40", "--no-cache"]
    )


def assert_no_bug(result: Result) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr


@pytest.fixture
def good(tmp_path: Path, license_text: str) -> Path:
    """Two categories of real English text (different halves of the licence texts)."""
    root = tmp_path / "samples"
    for name, text in (("en", license_text[:8000]), ("legal", license_text[-8000:])):
        (root / name).mkdir(parents=True)
        (root / name / "a.txt").write_text(text, encoding="utf-8")
    return root


@posix_only
def test_loops_special_files_and_odd_names_are_warnings_not_failures(
    small_bpe_tokenizer_json: Path, good: Path
) -> None:
    en = good / "en"
    (en / "loop").symlink_to(en, target_is_directory=True)
    os.mkfifo(en / "pipe.txt")
    (en / "zero.jsonl").symlink_to("/dev/zero")
    try:
        (Path(os.fsdecode(os.fsencode(en) + b"/r\xe9sum\xe9.txt"))).write_text("more text", encoding="utf-8")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    # A JSONL file with no newline, longer than the record cap (16 MiB): not held whole.
    (en / "b.jsonl").write_bytes(b'{"text": "' + b"x" * (17 << 20))
    result = infer(small_bpe_tokenizer_json, good)
    assert_no_bug(result)
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert "symbolic link loop" in err
    assert "named pipe (FIFO)" in err and "character device" in err
    assert "r\\xe9sum\\xe9.txt" in err
    assert "record longer than 16,777,216 bytes" in err
    assert "en" in result.stdout and "legal" in result.stdout


@posix_only
def test_a_category_name_that_is_not_utf8_is_shown_escaped(
    small_bpe_tokenizer_json: Path, good: Path
) -> None:
    try:
        os.rename(good / "legal", os.fsdecode(os.fsencode(good) + b"/l\xe9gal"))
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    result = infer(small_bpe_tokenizer_json, good)
    assert_no_bug(result)
    assert result.exit_code == 0, result.stderr
    assert "l\\xe9gal" in result.stdout
    assert "not valid UTF-8" in " ".join(result.stderr.split())


@posix_only
@pytest.mark.parametrize("kind", ["fifo", "device", "too-long", "file"])
def test_unusable_samples_paths_exit_4(small_bpe_tokenizer_json: Path, tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        spec, expected = tmp_path / "pipe", "named pipe (FIFO), not a directory"
        os.mkfifo(spec)
    elif kind == "device":
        spec, expected = Path("/dev/zero"), "character device, not a directory"
    elif kind == "too-long":
        spec, expected = tmp_path / ("n" * 300), "longer than the system allows"
    else:
        spec, expected = tmp_path / "a.txt", "is a file; it must be a directory"
        spec.write_text("text", encoding="utf-8")
    result = infer(small_bpe_tokenizer_json, spec)
    assert_no_bug(result)
    assert result.exit_code == 4, result.stderr
    assert expected in " ".join(result.stderr.split())
    assert result.stdout == ""
