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
from mixinfer.pretokenizers import PRESETS, PRESETS_FILE, preset, read_pattern

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "data"


def _data_rows(name: str) -> list[list[str]]:
    text = resources.files("mixinfer").joinpath(name).read_text(encoding="utf-8")
    assert "\t" not in text and "\r" not in text
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


def test_presets_file_is_consistent() -> None:
    rows = _data_rows(f"data/{PRESETS_FILE}")
    assert rows[0] == ["name", "normalizer", "pre_tokenizer", "pattern", "description"]
    names = [r[0] for r in rows[1:]]
    assert len(names) == len(set(names)) and list(PRESETS)[: len(names)] == names
    for name, _norm, pre, pattern, description in rows[1:]:
        assert description and PRESETS[name].reason.endswith(description)
        assert pre.startswith("split") == bool(pattern), name  # a Split needs a pattern, others none
        assert not pattern or read_pattern(pattern)
    assert preset("gpt2") is PRESETS["gpt2"]


def test_presets_match_the_golden_output() -> None:
    """Same patterns, and the same tokenizers components (JSON and fingerprint) for every preset."""
    golden = json.loads((GOLDEN / "presets_golden.json").read_text(encoding="utf-8"))
    from mixinfer import pretokenizers

    for constant, pattern in golden["patterns"].items():
        assert getattr(pretokenizers, constant) == pattern, constant
    for name, expected in golden["presets"].items():
        p = PRESETS[name]
        got = {
            "normalizer_json": p.normalizer_json,
            "pre_tokenizer_json": p.pre_tokenizer_json,
            "byte_level": p.byte_level,
            "reason": p.reason,
            "fingerprint": p.fingerprint(),
        }
        assert got == expected, name


def test_pattern_files_keep_leading_spaces_and_join_lines_with_bars() -> None:
    text = resources.files("mixinfer").joinpath("data", "regex_gpt2.txt").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert " ?\\p{L}+" in lines and read_pattern("gpt2") == "|".join(lines)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib is new in Python 3.11")
def test_data_files_are_package_data() -> None:
    """Every file under mixinfer/data/ matches pyproject's package-data globs, so wheels carry it."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["mixinfer"]
    data = ROOT / "mixinfer" / "data"
    files = [p.relative_to(ROOT / "mixinfer").as_posix() for p in data.rglob("*") if p.is_file()]
    assert CATEGORIES_FILE in files and f"data/{PRESETS_FILE}" in files and "data/regex_o200k.txt" in files
    for name in files:
        # fnmatch's * crosses "/", setuptools' does not: compare level by level.
        assert any(
            fnmatch.fnmatch(name, g) and ("**" in g or name.count("/") == g.count("/")) for g in globs
        ), f"{name} is not shipped by package-data {globs}"
