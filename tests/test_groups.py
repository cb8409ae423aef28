"""The category table behind the default groups: read from package data, checked, and grouping rules."""

from __future__ import annotations

import pytest

from mixinfer import groups
from mixinfer.groups import (
    CODE,
    DEFAULT_GROUPS,
    ENGLISH,
    LATIN_CYRILLIC,
    OTHER_LANGUAGES,
    KnownCategory,
    _parse_categories,
    default_group,
    group_categories,
    group_order,
    known_categories,
)

HEADER = "code,group,script,name\n"


def test_known_categories_are_read_once_from_the_package() -> None:
    rows = known_categories()
    assert rows is known_categories()  # cached: the file is read once
    assert all(isinstance(r, KnownCategory) for r in rows)
    by_code = {r.code: r for r in rows}
    assert by_code["de"] == KnownCategory("de", LATIN_CYRILLIC, "Latin", "German")
    assert by_code["ru"].script == "Cyrillic" and by_code["ja"].group == OTHER_LANGUAGES
    assert by_code["python"].group == CODE and by_code["web"].group == ENGLISH


def test_the_public_sets_are_views_of_the_table() -> None:
    rows = known_categories()
    assert {r.code for r in rows if r.group == CODE} == groups.PROGRAMMING
    assert {r.code for r in rows if r.group == OTHER_LANGUAGES} == groups.OTHER_SCRIPT_CODES
    assert {r.code for r in rows if r.group == ENGLISH} - {"en"} == groups.ENGLISH_DOMAINS
    assert {r.code for r in rows if r.script in ("Latin", "Cyrillic")} == groups.LATIN_CYRILLIC_CODES


def test_every_bare_code_gets_the_group_of_its_row() -> None:
    for row in known_categories():
        assert default_group(row.code) == row.group, row
        assert default_group(row.code.upper()) == row.group, row


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("de_CH", LATIN_CYRILLIC),  # a region suffix keeps the language's script group
        ("ts", CODE),  # TypeScript wins the bare name ...
        ("ts_ZA", LATIN_CYRILLIC),  # ... Tsonga keeps its region forms
        ("sr_Latn", LATIN_CYRILLIC),
        ("ja_Latn", LATIN_CYRILLIC),  # a script suffix decides on its own
        ("ru_Arab", OTHER_LANGUAGES),
        ("en-GB", ENGLISH),
        ("eng", ENGLISH),
        ("code_rust", CODE),
        ("general/zh", OTHER_LANGUAGES),
        ("klingon", "klingon"),  # unknown names are their own group
    ],
)
def test_grouping_rules(name: str, group: str) -> None:
    assert default_group(name) == group


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("code,group,name\n", "header"),
        (HEADER + "de,Latin/Cyrillic languages,Latin\n", "4 fields"),
        (HEADER + "De,Latin/Cyrillic languages,Latin,German\n", "lower case"),
        (HEADER + "de,Latin/Cyrillic languages,Latin,German\nde,English,,x\n", "twice"),
        (HEADER + "de,Germanic,Latin,German\n", "group must be one of"),
        (HEADER + "el,Latin/Cyrillic languages,Greek,Greek\n", "Latin or Cyrillic"),
        (HEADER + "el,Other languages,,Greek\n", "other than Latin"),
    ],
)
def test_a_malformed_table_is_reported_as_a_packaging_bug(table: str, problem: str) -> None:
    with pytest.raises(RuntimeError, match=problem):
        _parse_categories(table, "categories.csv")


def test_comment_lines_are_skipped() -> None:
    rows = _parse_categories(
        "# a comment\n" + HEADER + "# another\nde,Latin/Cyrillic languages,Latin,German\n", "t"
    )
    assert rows == (KnownCategory("de", LATIN_CYRILLIC, "Latin", "German"),)


def test_group_order_and_user_mapping() -> None:
    assert group_order(["zz", OTHER_LANGUAGES, "aa", ENGLISH]) == [ENGLISH, OTHER_LANGUAGES, "aa", "zz"]
    assert group_order(DEFAULT_GROUPS[::-1]) == list(DEFAULT_GROUPS)
    mapped = group_categories(["de", "en", "x"], {"de": "Germanic"})
    assert mapped == {"de": "Germanic", "en": ENGLISH, "x": "x"}
