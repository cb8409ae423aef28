"""The bundled samples ship inside the package (issue 11 item 4).

A wheel build is too slow for the suite; instead: the package-data globs in pyproject.toml must
cover every file of data_samples/ (and nothing hidden), every Python package must be listed, and an
installed layout (the package directory with data_samples/ inside, no source tree around it) is
imported from another directory and must find the samples and the demo tokenizer through the
package, via importlib.resources.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mixinfer import samples
from mixinfer.errors import SamplesError, TokenizerNotFoundError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data_samples"

needs_data = pytest.mark.skipif(not (DATA / "general").is_dir(), reason="data_samples/ not built")


def manifest_categories(group: str) -> list[str]:
    manifest = json.loads((DATA / "MANIFEST.json").read_text(encoding="utf-8"))
    return sorted(k.split("/", 1)[1] for k in manifest["categories"] if k.startswith(f"{group}/"))


def pyproject_setuptools() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(REPO / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


@needs_data
def test_the_bundled_samples_and_demo_are_found_with_their_categories() -> None:
    general = samples.bundled_samples_dir()
    assert general.name == "general" and (general.parent / "MANIFEST.md").is_file()
    cats = samples.open_samples(None).categories()
    assert [c.name for c in cats] == manifest_categories("general")
    assert all(c.files and not c.skipped for c in cats)
    demo = samples.bundled_demo_tokenizer()
    assert demo.name == "tokenizer.json" and (demo.parent / "truth.json").is_file()


@needs_data
def test_an_installed_layout_finds_them_through_the_package_from_any_directory(tmp_path: Path) -> None:
    # What a wheel installs: site/mixinfer/ with data_samples/ inside it, and no checkout around.
    site = tmp_path / "site"
    shutil.copytree(REPO / "mixinfer", site / "mixinfer", ignore=shutil.ignore_patterns("__pycache__"))
    (site / "mixinfer" / "data_samples").symlink_to(DATA, target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import json, mixinfer, mixinfer.samples as s\n"
        "src = s.open_samples(None)\n"
        "print(json.dumps({'package': mixinfer.__file__, 'general': str(s.bundled_samples_dir()),"
        " 'demo': str(s.bundled_demo_tokenizer()), 'spec': src.spec,"
        " 'categories': [c.name for c in src.categories()]}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    installed = site / "mixinfer"
    assert Path(found["package"]).parent == installed  # the copy was imported, not the checkout
    assert found["general"] == str(installed / "data_samples" / "general") == found["spec"]
    assert found["demo"] == str(installed / "data_samples" / "demo" / "tokenizer.json")
    assert found["categories"] == manifest_categories("general")


def test_missing_bundled_data_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(samples, "_bundled_candidates", lambda: [tmp_path / "nowhere"])
    with pytest.raises(SamplesError, match=r"bundled samples .* were not found .* pass --samples DIR"):
        samples.bundled_samples_dir()
    with pytest.raises(
        TokenizerNotFoundError, match=r"bundled demo tokenizer .* was not found .* name a tokenizer"
    ):
        samples.bundled_demo_tokenizer()
    (tmp_path / "nowhere" / "general").mkdir(parents=True)
    with pytest.raises(TokenizerNotFoundError, match=r"demo tokenizer .* is missing"):
        samples.bundled_demo_tokenizer()


def _matches(pattern: str, root: Path) -> set[str]:
    # setuptools expands package-data patterns with glob (hidden names never match a wildcard).
    return {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}


@needs_data
def test_package_data_ships_every_bundled_file_and_nothing_hidden() -> None:
    conf = pyproject_setuptools()
    assert conf["package-dir"]["mixinfer.data_samples"] == "data_samples"
    assert "mixinfer.data_samples" in conf["packages"]
    # The other engineers' data tables stay packaged.
    assert {"py.typed", "data/*"} <= set(conf["package-data"]["mixinfer"])
    shipped: set[str] = set()
    for pattern in conf["package-data"]["mixinfer.data_samples"]:
        shipped |= _matches(pattern, DATA)
    on_disk = {
        p.relative_to(DATA).as_posix()
        for p in DATA.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(DATA).parts)
    }
    assert shipped == on_disk
    assert {"MANIFEST.md", "MANIFEST.json", "demo/tokenizer.json", "demo/truth.json"} <= shipped
    assert not any("__pycache__" in f or f.endswith((".pyc", "~")) for f in shipped)


def test_every_python_package_is_listed_for_the_wheel() -> None:
    # pyproject lists packages (to map data_samples/ in), so a new sub-package must be added there.
    conf = pyproject_setuptools()
    found = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "mixinfer").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    missing = found - set(conf["packages"])
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
