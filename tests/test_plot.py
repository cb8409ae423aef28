"""`mixinfer plot`: stacked bars from audit CSVs (long or wide), PNG/SVG, and the missing extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

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
