"""`mixinfer plot`: stacked bars from audit CSVs (long or wide), PNG/SVG, and the missing extra."""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mixinfer import plot as plot_module
from mixinfer.cli import app
from mixinfer.errors import MissingDependencyError, UsageError
from mixinfer.plot import plot_mixtures, plot_report

LONG = """tokenizer,category,group,proportion
gpt-2,en,English,0.9
gpt-2,code,Code,0.05
gpt-2,de,Latin/Cyrillic languages,0.03
gpt-2,zh,Other languages,0.02
llama,en,English,0.45
llama,code,Code,0.2
llama,de,Latin/Cyrillic languages,0.25
llama,zh,Other languages,0.1
"""
WIDE = "tokenizer,en,code,de,zh\ngpt-2,0.9,0.05,0.03,0.02\nllama,0.45,0.2,0.25,0.1\n"
WIDE_GROUPS = (
    "tokenizer,English,Code,Latin/Cyrillic languages,Other languages\n"
    "gpt-2,0.9,0.05,0.03,0.02\nllama,0.45,0.2,0.25,0.1\n"
)


@pytest.fixture
def reports(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("long", LONG), ("wide", WIDE), ("groups", WIDE_GROUPS)):
        path = tmp_path / f"{name}.csv"
        path.write_text(text, encoding="utf-8")
        out[name] = path
    return out


def test_png_and_svg_from_long_csv(reports: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = plot_report(reports["long"], tmp_path / "pics" / "mixtures.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5000
    svg = plot_report(
        reports["long"], tmp_path / "mixtures.svg", by="category", orientation="vertical", title="Test"
    )
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "Test" in text
    # Percentages are printed on segments of at least 5%, not on smaller ones.
    assert "90%" in text and "45%" in text and "2%" not in text.replace("25%", "")
    assert not list(tmp_path.glob("**/.*tmp*"))


def test_wide_reports_and_groups(reports: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    assert plot_report(reports["wide"], tmp_path / "a.png").stat().st_size > 0
    assert plot_report(reports["groups"], tmp_path / "b.svg").stat().st_size > 0
    with pytest.raises(UsageError, match="group totals only"):
        plot_report(reports["groups"], tmp_path / "c.png", by="category")
    mapping = tmp_path / "g.csv"
    mapping.write_text("de,German\n", encoding="utf-8")
    svg = plot_report(reports["long"], tmp_path / "d.svg", groups=mapping)
    assert "German" in svg.read_text(encoding="utf-8")


def test_bad_inputs(reports: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=".png"):
        plot_report(reports["long"], tmp_path / "x.jpgx")
    with pytest.raises(UsageError, match="does not exist"):
        plot_report(tmp_path / "missing.csv", tmp_path / "x.png")
    bad = tmp_path / "bad.csv"
    bad.write_text("category,proportion\nen,1.0\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not an audit report"):
        plot_report(bad, tmp_path / "x.png")
    with pytest.raises(UsageError):
        plot_mixtures({}, tmp_path / "x.png")


def test_without_matplotlib(
    reports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'mixinfer\[plot\]'"):
        plot_report(reports["long"], tmp_path / "x.png")
    res = CliRunner().invoke(app, ["plot", str(reports["long"]), "-o", str(tmp_path / "x.png")])
    assert res.exit_code == 7
    assert "mixinfer[plot]" in res.output


def test_cli(reports: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "m.png"
    res = CliRunner().invoke(app, ["plot", str(reports["long"]), "-o", str(out), "--vertical"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"\x89PNG")
    res = CliRunner().invoke(app, ["plot", str(reports["long"]), "-o", str(out), "--by", "x"])
    assert res.exit_code == 2


# -- output paths and malformed reports, through the CLI (issue 17: exit 2, never "internal error") --


def _plot(report: Path, output: Path | str, *extra: str) -> Any:
    return CliRunner().invoke(app, ["plot", str(report), "-o", str(output), *extra])


def _no_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to draw fail loudly (an internal error), so exit 2 proves the early check."""

    def boom() -> None:
        raise AssertionError("matplotlib was reached before the output path was checked")

    monkeypatch.setattr(plot_module, "_pyplot", boom)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        pytest.param("somefile.txt/out.png", "is a file, not a folder", id="under-a-file"),
        pytest.param("somefile.txt/deeper/out.png", "is a file, not a folder", id="deep-under-a-file"),
        pytest.param("out.jpgx", "from its extension", id="unknown-extension"),
        pytest.param("out", "from its extension", id="no-extension"),
        pytest.param("adir.png", "is a directory", id="a-directory"),
        pytest.param("x" * 300 + ".png", "too long", id="name-too-long"),
    ],
)
def test_unwritable_output_is_a_usage_error_before_drawing(
    reports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, message: str
) -> None:
    (tmp_path / "somefile.txt").write_text("keep me\n", encoding="utf-8")
    (tmp_path / "adir.png").mkdir()
    _no_drawing(monkeypatch)
    res = _plot(reports["long"], tmp_path / where)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "internal error" not in res.stderr
    assert res.stderr.count("error") == 1  # one clear message, no traceback
    assert (tmp_path / "somefile.txt").read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "adir.png",
        "groups.csv",
        "long.csv",
        "somefile.txt",
        "wide.csv",
    ]


def test_a_name_over_the_length_limit_is_a_usage_error(reports: dict[str, Path], tmp_path: Path) -> None:
    # The library says so too (the CLI's own check, cli.check_output, meets this name first).
    with pytest.raises(UsageError, match="longer than"):
        plot_report(reports["long"], tmp_path / ("x" * 300 + ".png"))


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root may write anywhere")
def test_output_in_a_read_only_folder_is_a_usage_error(
    reports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    _no_drawing(monkeypatch)
    try:
        res = _plot(reports["long"], locked / "new" / "m.png")
    finally:
        locked.chmod(0o755)
    assert res.exit_code == 2, res.output
    assert "no permission" in res.stderr


def test_missing_folders_are_created_like_infer_output(reports: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "new" / "folder" / "m.svg"
    res = _plot(reports["long"], out, "--quiet")
    assert res.exit_code == 0, res.output
    assert "<svg" in out.read_text(encoding="utf-8") and res.stderr == ""


def test_a_failed_write_leaves_the_old_picture_and_no_temporary_file(
    reports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    out = tmp_path / "m.png"
    out.write_bytes(b"the previous picture")

    def disk_full(self: Any, fh: Any, **kwargs: Any) -> None:
        fh.write(b"\x89PNG half a picture")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    res = _plot(reports["long"], out)
    assert res.exit_code == 2, res.output
    assert "No space left on device" in res.stderr and "internal error" not in res.stderr
    assert out.read_bytes() == b"the previous picture"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_picture_permissions_follow_the_umask(reports: dict[str, Path], tmp_path: Path, umask: int) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / f"m{umask:o}.svg"
    old = os.umask(umask)
    try:
        res = _plot(reports["long"], out)
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


MALFORMED = {
    "nul-byte": ("tokenizer,en,code\ngpt-2,0.5\x00,0.5\n", "not a valid audit report"),
    "not-a-number": ("tokenizer,en,code\ngpt-2,half,0.5\n", "not a valid audit report"),
    "short-row": ("tokenizer,category,group,proportion\ngpt-2,en,English\n", "expected 4"),
    "nan": ("tokenizer,en,code\ngpt-2,nan,0.5\n", "finite and non-negative"),
    "infinite": ("tokenizer,en,code\ngpt-2,inf,0.5\n", "finite and non-negative"),
    "negative": ("tokenizer,en,code\ngpt-2,-0.2,1.2\n", "finite and non-negative"),
    "sum-above-one": (
        "tokenizer,category,group,proportion\nt,en,English,0.9\nt,de,German,0.9\n",
        "sum to 1.8",
    ),
    "header-only": ("tokenizer,en,code\n", "not an audit report"),
    "not-a-report": ("category,proportion\nen,1.0\n", "not an audit report"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_report_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    text, message = MALFORMED[case]
    report = tmp_path / "bad.csv"
    report.write_text(text, encoding="utf-8")
    _no_drawing(monkeypatch)
    res = _plot(report, tmp_path / "m.png")
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "internal error" not in res.stderr
    assert not (tmp_path / "m.png").exists()


def test_report_that_is_not_text_or_not_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_drawing(monkeypatch)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("tokenizer,caf\xe9\nt,1.0\n".encode("latin-1"))
    res = _plot(latin1, tmp_path / "m.png")
    assert res.exit_code == 2 and "cannot be read" in res.stderr, res.output
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.csv"
        os.mkfifo(fifo)
        res = _plot(fifo, tmp_path / "m.png")  # would block forever if it were opened
        assert res.exit_code == 2 and "not a regular file" in res.stderr, res.output


def test_intervals_of_an_audit_csv_are_read_and_drawn(tmp_path: Path) -> None:
    from mixinfer.audit import read_intervals

    report = tmp_path / "a.csv"
    report.write_text(
        "tokenizer,category,group,proportion,low,high\n"
        "t1,en,English,0.6,0.5,0.7\nt1,code,Code,0.4,0.3,0.5\n"
        "t2,en,English,0.2,,\nt2,code,Code,0.8,,\n",
        encoding="utf-8",
    )
    assert read_intervals(report) == {"t1": {"en": (0.5, 0.7), "code": (0.3, 0.5)}}
    for by in ("group", "category"):
        out = tmp_path / f"{by}.png"
        result = CliRunner().invoke(app, ["plot", str(report), "-o", str(out), "--by", by])
        assert result.exit_code == 0, result.stderr
        assert out.stat().st_size > 1000
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "tokenizer,category,group,proportion,low,high\nt,en,English,0.5,0.6,0.4\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["plot", str(bad), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "not an interval within [0, 1]" in result.stderr
