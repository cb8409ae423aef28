"""The data tables shipped as package files (mixinfer/data/): they load, are consistent, and give
exactly the results the tables gave when they were written as code (golden files in tests/data/,
dumped from the code tables before the move)."""

from __future__ import annotations

import csv
import fnmatch
import json
import sys
from importlib import resources
from pathlib import Path

import pytest

from mixinfer.groups import (
    CATEGORIES_FILE,
    DEFAULT_GROUPS,
    ENGLISH_DOMAINS,
    LATIN_CYRILLIC_CODES,
    OTHER_SCRIPT_CODES,
    PROGRAMMING,
    default_group,
    known_categories,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "data"


def _data_rows(name: str) -> list[list[str]]:
    text = resources.files("mixinfer").joinpath(name).read_text(encoding="utf-8")
    return list(csv.reader(line for line in text.splitlines() if line and not line.startswith("#")))


def test_categories_file_is_consistent() -> None:
    rows = _data_rows(CATEGORIES_FILE)
    assert rows[0] == ["code", "group", "script", "name"]
    codes = [r[0] for r in rows[1:]]
    assert len(codes) == len(set(codes)) == len(known_categories()) > 250  # no duplicate code
    assert {r[1] for r in rows[1:]} == set(DEFAULT_GROUPS)  # every group known, each used
    assert all(len(r) == 4 and r[3] for r in rows[1:])  # every row has a name


def test_groups_match_the_golden_output() -> None:
    golden = json.loads((GOLDEN / "groups_golden.json").read_text(encoding="utf-8"))
    tables = golden["tables"]
    assert sorted(ENGLISH_DOMAINS) == tables["English domains"]
    assert sorted(PROGRAMMING) == tables["Code"]
    assert sorted(LATIN_CYRILLIC_CODES) == tables["Latin/Cyrillic codes"]
    assert sorted(OTHER_SCRIPT_CODES) == tables["Other-script codes"]
    expected = golden["default_group"]
    assert len(expected) > 2000
    assert {name: default_group(name) for name in expected} == expected


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_data_files_are_package_data() -> None:
    """Every file under mixinfer/data/ matches pyproject's package-data globs, so wheels carry it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["mixinfer"]
    data = ROOT / "mixinfer" / "data"
    files = [p.relative_to(ROOT / "mixinfer").as_posix() for p in data.rglob("*") if p.is_file()]
    assert CATEGORIES_FILE in files
    for name in files:
        # fnmatch's * crosses "/", setuptools' does not: compare level by level.
        assert any(
            fnmatch.fnmatch(name, g) and ("**" in g or name.count("/") == g.count("/")) for g in globs
        ), f"{name} is not shipped by package-data {globs}"
