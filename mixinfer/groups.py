"""Groups of categories for audit reports and plots.

The default grouping is the one of the paper's Figure 2:

* **English**: ``en`` (also ``english``, ``en_*`` / ``en-*``) and English domains (``web``,
  ``books``, ``academic``, ``wiki``, ...);
* **Code**: ``code`` (also ``code_*``) and programming, markup and data languages (``python``,
  ``c``, ``cpp``, ``javascript``, ``json``, ``markdown``, ...);
* **Latin/Cyrillic languages**: natural languages written in the Latin or Cyrillic script, by ISO
  639 code (``de``, ``fr``, ``ru``, ``vi``, ...; a script suffix such as ``sr_Latn`` or
  ``uz-Cyrl`` decides on its own);
* **Other languages**: natural languages in any other script (``zh``, ``ja``, ``ar``, ``el``, ...).

The names and codes are data, not code: ``mixinfer/data/categories.csv`` (one row per name:
``code,group,script,name``), read once when this module is imported.

A category matching none of these forms its own group (its name). A user's own mapping is read from
YAML, JSON or CSV with :func:`load_groups`; categories it does not mention keep the default group.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mixinfer.errors import MissingDependencyError, UsageError
from mixinfer.strictload import DuplicateKeyError, json_loads, yaml_safe_load

ENGLISH = "English"
CODE = "Code"
LATIN_CYRILLIC = "Latin/Cyrillic languages"
OTHER_LANGUAGES = "Other languages"
DEFAULT_GROUPS = (ENGLISH, CODE, LATIN_CYRILLIC, OTHER_LANGUAGES)

CATEGORIES_FILE = "data/categories.csv"
"""The table of known category names, inside the package (``code,group,script,name`` rows)."""

_SCRIPTS_LATIN_CYRILLIC = frozenset({"Latin", "Cyrillic"})


@dataclass(frozen=True)
class KnownCategory:
    """One row of :data:`CATEGORIES_FILE`.

    Attributes:
        code: the category name as written in lower case (``de``, ``python``, ``web``).
        group: the group of the bare name, one of :data:`DEFAULT_GROUPS`.
        script: the writing system of a natural language (``Latin``, ``Han``, ...); empty for English
            domains and code.
        name: what the code stands for (documentation only).
    """

    code: str
    group: str
    script: str
    name: str


def _parse_categories(text: str, where: str) -> tuple[KnownCategory, ...]:
    """Read and check the table; a malformed table is a packaging bug, so errors are RuntimeError."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines))
    if not rows or rows[0] != ["code", "group", "script", "name"]:
        raise RuntimeError(f"{where}: the header must be `code,group,script,name` (a packaging bug)")
    out: list[KnownCategory] = []
    seen: set[str] = set()
    for row in rows[1:]:
        if len(row) != 4:
            raise RuntimeError(f"{where}: row {row!r} does not have 4 fields (a packaging bug)")
        entry = KnownCategory(*row)
        problem = None
        if entry.code != entry.code.strip().lower() or not entry.code:
            problem = "the code must be lower case without spaces"
        elif entry.code in seen:
            problem = "the code appears twice"
        elif entry.group not in DEFAULT_GROUPS:
            problem = f"the group must be one of {', '.join(DEFAULT_GROUPS)}"
        elif entry.group == LATIN_CYRILLIC and entry.script not in _SCRIPTS_LATIN_CYRILLIC:
            problem = "a Latin/Cyrillic language needs the script Latin or Cyrillic"
        elif entry.group == OTHER_LANGUAGES and (not entry.script or entry.script in _SCRIPTS_LATIN_CYRILLIC):
            problem = "an other-script language needs a script other than Latin or Cyrillic"
        if problem is not None:
            raise RuntimeError(f"{where}: row {','.join(row)!r}: {problem} (a packaging bug)")
        seen.add(entry.code)
        out.append(entry)
    return tuple(out)


@functools.cache
def known_categories() -> tuple[KnownCategory, ...]:
    """Every row of the bundled category table (read once, from the installed package)."""
    text = resources.files("mixinfer").joinpath(CATEGORIES_FILE).read_text(encoding="utf-8")
    return _parse_categories(text, f"mixinfer/{CATEGORIES_FILE}")


ENGLISH_DOMAINS = frozenset(c.code for c in known_categories() if c.group == ENGLISH and not c.script)
"""Names of English data (domains such as ``web`` or ``books``), besides ``en``/``eng``/``en_*``."""

PROGRAMMING = frozenset(c.code for c in known_categories() if c.group == CODE)
"""Names of programming, markup and data languages (and ``code``), besides ``code_*``."""

LATIN_CYRILLIC_CODES = frozenset(c.code for c in known_categories() if c.script in _SCRIPTS_LATIN_CYRILLIC)
"""ISO 639 codes of languages written in the Latin or Cyrillic script (``en`` and ``ts`` included)."""

OTHER_SCRIPT_CODES = frozenset(c.code for c in known_categories() if c.group == OTHER_LANGUAGES)
"""Codes of languages in other scripts (so that they are recognised as languages, not unknown names)."""

_SCRIPT = re.compile(r"^([a-z]{2,3})[_-]([a-z]{4})$")
_LANG_PREFIX = re.compile(r"^([a-z]{2,3})(?:[_-][a-z0-9]+)*$")


def default_group(category: str) -> str:
    """The default group of a category name (see the module docstring)."""
    name = category.strip().lower()
    base = name.rsplit("/", 1)[-1]
    if base in ("en", "eng") or base.startswith(("en_", "en-")) or base in ENGLISH_DOMAINS:
        return ENGLISH
    if base in PROGRAMMING or base.startswith(("code_", "code-")):
        return CODE
    m = _SCRIPT.match(base)
    if m is not None:
        script = m.group(2)
        if script in ("latn", "cyrl"):
            return LATIN_CYRILLIC
        if m.group(1) in LATIN_CYRILLIC_CODES | OTHER_SCRIPT_CODES:
            return OTHER_LANGUAGES
    m = _LANG_PREFIX.match(base)
    if m is not None:
        code = m.group(1)
        if base in LATIN_CYRILLIC_CODES or code in LATIN_CYRILLIC_CODES:
            return LATIN_CYRILLIC
        if base in OTHER_SCRIPT_CODES or code in OTHER_SCRIPT_CODES:
            return OTHER_LANGUAGES
    return category


def group_categories(categories: Iterable[str], mapping: Mapping[str, str] | None = None) -> dict[str, str]:
    """Category -> group for every category: the user's ``mapping`` first, else the default."""
    mapping = mapping or {}
    return {c: mapping.get(c) or default_group(c) for c in categories}


def group_bounds(
    bounds: Mapping[str, tuple[float, float]], groups: Mapping[str, str]
) -> dict[str, tuple[float, float]]:
    """A group's interval from its categories' ``bounds``: the sums of their lows and of their
    highs, within [0, 1]. An envelope that holds whenever the categories' intervals do (wider than
    a group's own bootstrap interval would be); categories without a group are left out."""
    out: dict[str, tuple[float, float]] = {}
    for cat, (low, high) in bounds.items():
        group = groups.get(cat)
        if group is not None:
            a, b = out.get(group, (0.0, 0.0))
            out[group] = (min(1.0, a + low), min(1.0, b + high))
    return out


def group_order(groups: Iterable[str]) -> list[str]:
    """Groups in display order: the four default groups first, then the others by name."""
    present = set(groups)
    return [g for g in DEFAULT_GROUPS if g in present] + sorted(present - set(DEFAULT_GROUPS))


def _from_object(data: Any, where: str) -> dict[str, str]:
    """``{category: group}`` or ``{group: [categories]}`` (possibly under a ``groups`` key)."""
    if isinstance(data, dict) and set(data) == {"groups"}:
        data = data["groups"]
    if not isinstance(data, dict) or not data:
        raise UsageError(
            f"--groups {where}: expected a mapping of category to group, or of group to a list of categories"
        )
    out: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            _assign(out, str(key), str(value), where)
        elif isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            for cat in value:
                _assign(out, str(cat), str(key), where)
        else:
            raise UsageError(
                f"--groups {where}: the entry {key!r} must map to a group name or to a list of category names"
            )
    return out


def _assign(out: dict[str, str], category: str, group: str, where: str) -> None:
    category, group = category.strip(), group.strip()
    if not category or not group:
        raise UsageError(f"--groups {where}: empty category or group name")
    if category in out and out[category] != group:
        raise UsageError(
            f"--groups {where}: category {category!r} is put in two groups ({out[category]!r} and {group!r})"
        )
    out[category] = group


def parse_groups_csv(text: str, where: str = "groups.csv") -> dict[str, str]:
    """``category,group`` rows (a header row with those names is optional)."""
    out: dict[str, str] = {}
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["category", "group"]:
        rows = rows[1:]
    for lineno, row in enumerate(rows, start=1):
        if row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2:
            raise UsageError(
                f"--groups {where}: row {lineno} {','.join(row)[:60]!r} must be `category,group`"
            )
        _assign(out, row[0], row[1], where)
    if not out:
        raise UsageError(f"--groups {where}: no `category,group` rows")
    return out


def parse_groups(text: str, kind: str, where: str = "groups") -> dict[str, str]:
    """Parse a mapping given as ``yaml``, ``json`` or ``csv`` text."""
    if kind == "csv":
        return parse_groups_csv(text, where)
    if kind == "json":
        try:
            data = json_loads(text)
        except DuplicateKeyError as exc:
            raise UsageError(f"--groups {where}: {exc}; give each once") from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"--groups {where} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return _from_object(data, where)
    if kind == "yaml":
        try:
            import yaml
        except ImportError:
            raise MissingDependencyError(
                f"reading --groups {where} needs PyYAML: pip install 'mixinfer[yaml]' "
                "(or give the mapping as JSON or CSV)"
            ) from None
        try:
            data = yaml_safe_load(text)
        except DuplicateKeyError as exc:
            raise UsageError(f"--groups {where}: {exc}; give each once") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"--groups {where} is not valid YAML ({exc})") from None
        return _from_object(data, where)
    raise UsageError(f"unknown groups format {kind!r}; use yaml, json or csv")


def load_groups(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a category -> group mapping from a ``.yaml``/``.yml``, ``.json`` or ``.csv`` file.

    YAML and JSON hold ``{category: group}`` or ``{group: [categories]}``; CSV holds
    ``category,group`` rows.

    Raises:
        UsageError: the file is missing, unreadable or malformed.
        MissingDependencyError: a YAML file without PyYAML installed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"--groups {p} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--groups {p} cannot be read ({exc})") from None
    suffix = p.suffix.lower()
    kind = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".csv": "csv"}.get(suffix)
    if kind is None:
        raise UsageError(f"--groups {p}: cannot tell the format from the extension; use .yaml, .json or .csv")
    return parse_groups(text, kind, str(p))
