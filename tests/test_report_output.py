"""Output files (report.write_atomic): umask permissions, a full disk, and unusable paths are clear
usage errors with no partial file (issue 17, items 4 and 8; issue 11, item 3)."""

from __future__ import annotations

import errno
import os
import stat
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mixinfer import report
from mixinfer.cli import EXIT_CODES, app
from mixinfer.errors import UsageError
from mixinfer.report import check_output_path, write_atomic


@pytest.fixture
def umask() -> Iterator[Any]:
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_a_new_file_gets_the_umask_permissions(mask: int, umask: Any, tmp_path: Path) -> None:
    umask(mask)
    target = tmp_path / "sub" / "result.json"
    write_atomic(target, '{"a": 1}\n')
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n'
    assert _mode(target) == 0o666 & ~mask
    assert _leftovers(target.parent) == []


def test_a_replaced_file_keeps_its_permissions(umask: Any, tmp_path: Path) -> None:
    umask(0o022)
    target = tmp_path / "result.csv"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    write_atomic(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n" and _mode(target) == 0o640


def _enospc(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_a_full_disk_is_a_usage_error_and_leaves_no_partial_file(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_text("previous result\n", encoding="utf-8")
    with monkeypatch.context() as m:
        m.setattr(os, where, _enospc)
        with pytest.raises(UsageError) as info:
            write_atomic(target, "x" * 100_000)
    text = str(info.value)
    assert str(target) in text and "no space left" in text and "--output" in text
    assert EXIT_CODES[type(info.value)] == 2
    assert target.read_text(encoding="utf-8") == "previous result\n"
    assert _leftovers(tmp_path) == []


def test_a_short_write_is_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def dribble(fd: int, data: Any) -> int:
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(os, "write", dribble)
    target = tmp_path / "r.json"
    write_atomic(target, "é" * 1000)
    monkeypatch.undo()
    assert target.read_text(encoding="utf-8") == "é" * 1000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: "", "is empty"),
        (lambda tmp: str(tmp), "is a directory"),
        (lambda tmp: str(tmp) + "/", "is a directory"),
        (lambda tmp: str(tmp / "file.txt" / "result.json"), "is a file, not a folder"),
        (lambda tmp: str(tmp / "file.txt" / "deeper" / "result.json"), "is a file, not a folder"),
        (lambda tmp: str(tmp / ("x" * 300 + ".json")), "too long"),
        (lambda tmp: str(tmp / ("d" * 300) / "result.json"), "too long"),
    ],
    ids=[
        "empty",
        "directory",
        "trailing-slash",
        "under-a-file",
        "deep-under-a-file",
        "long-name",
        "long-folder",
    ],
)
def test_unusable_paths_are_usage_errors(make: Any, message: str, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("keep me\n", encoding="utf-8")
    path = make(tmp_path)
    before = sorted(tmp_path.iterdir())
    # Checked up front (the CLI does this before any work) and again when writing.
    with pytest.raises(UsageError, match=message) as early:
        check_output_path(path, what="-o")
    with pytest.raises(UsageError, match=message) as info:
        write_atomic(path, "{}\n", what="-o")
    assert "-o" in str(info.value) and str(early.value) == str(info.value)
    assert (tmp_path / "file.txt").read_text(encoding="utf-8") == "keep me\n"
    assert sorted(tmp_path.iterdir()) == before


def test_a_name_just_under_the_limit_is_written(tmp_path: Path) -> None:
    # The temporary file's name must not push a valid name over the limit.
    target = tmp_path / ("y" * 250 + ".json")
    write_atomic(target, "{}\n")
    assert target.read_text(encoding="utf-8") == "{}\n"


@pytest.fixture(scope="module")
def cli_case(
    tmp_path_factory: pytest.TempPathFactory, small_bpe_tokenizer_json: Path, license_text: str
) -> Path:
    root = tmp_path_factory.mktemp("output-cli")
    for cat, text in {"en": license_text[:6000], "other": license_text[100_000:106_000]}.items():
        (root / "samples" / cat).mkdir(parents=True)
        (root / "samples" / cat / "a.txt").write_text(text, encoding="utf-8")
    (root / "a-file").write_text("not a folder\n", encoding="utf-8")
    return root


def _infer(tok: Path, root: Path, output: str) -> Any:
    return CliRunner().invoke(
        app,
        ["infer", str(tok), "--samples", str(root / "samples"), "--merges", "30", "--no-cache", "-o", output],
    )


@pytest.mark.parametrize(
    "output",
    ["", "a-file/result.json", "x" * 300 + ".json"],
    ids=["empty", "under-a-file", "name-too-long"],
)
def test_cli_unusable_output_exits_2(output: str, cli_case: Path, small_bpe_tokenizer_json: Path) -> None:
    target = output if output == "" else str(cli_case / output)
    result = _infer(small_bpe_tokenizer_json, cli_case, target)
    assert result.exit_code == EXIT_CODES[UsageError], result.output
    assert "Traceback" not in result.stderr and "bug" not in result.stderr
    assert (cli_case / "a-file").read_text(encoding="utf-8") == "not a folder\n"


def test_cli_disk_full_on_the_output_exits_2(
    cli_case: Path, small_bpe_tokenizer_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only report.py's view of os fails: the rest of the run (worker pipes, cache) is untouched.
    fake_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake_os.write = _enospc
    monkeypatch.setattr(report, "os", fake_os)
    target = cli_case / "out" / "result.json"
    result = _infer(small_bpe_tokenizer_json, cli_case, str(target))
    assert result.exit_code == EXIT_CODES[UsageError], result.output
    assert "no space left" in result.stderr and "Traceback" not in result.stderr
    assert not target.exists() and _leftovers(target.parent) == []
