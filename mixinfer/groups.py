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

A category matching none of these forms its own group (its name). A user's own mapping is read from
YAML, JSON or CSV with :func:`load_groups`; categories it does not mention keep the default group.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mixinfer.errors import MissingDependencyError, UsageError

ENGLISH = "English"
CODE = "Code"
LATIN_CYRILLIC = "Latin/Cyrillic languages"
OTHER_LANGUAGES = "Other languages"
DEFAULT_GROUPS = (ENGLISH, CODE, LATIN_CYRILLIC, OTHER_LANGUAGES)

ENGLISH_DOMAINS = frozenset(
    {
        "english",
        "web",
        "books",
        "book",
        "academic",
        "wiki",
        "wikipedia",
        "news",
        "reddit",
        "arxiv",
        "pubmed",
        "papers",
        "fiction",
        "legal",
        "patents",
        "stackexchange",
        "en_web",
        "en_books",
        "en_academic",
        "en_wiki",
    }
)

PROGRAMMING = frozenset(
    {
        "code",
        "python",
        "py",
        "javascript",
        "js",
        "typescript",
        "ts",
        "java",
        "c",
        "cpp",
        "c++",
        "cxx",
        "csharp",
        "c#",
        "cs_code",
        "go",
        "golang",
        "rust",
        "ruby",
        "php",
        "perl",
        "shell",
        "bash",
        "sh",
        "powershell",
        "sql",
        "html",
        "css",
        "scss",
        "xml",
        "json",
        "yaml",
        "yml",
        "toml",
        "markdown",
        "md",
        "rst",
        "restructuredtext",
        "tex",
        "latex",
        "cmake",
        "makefile",
        "make",
        "dockerfile",
        "scala",
        "kotlin",
        "swift",
        "objective-c",
        "objc",
        "lua",
        "r",
        "matlab",
        "julia",
        "haskell",
        "ocaml",
        "fortran",
        "assembly",
        "asm",
        "verilog",
        "vhdl",
        "dart",
        "elixir",
        "erlang",
        "clojure",
        "lisp",
        "scheme",
        "prolog",
        "groovy",
        "visual_basic",
        "vb",
        "zig",
        "nim",
        "jupyter",
        "notebook",
        "github",
        "stack",
        "starcoder",
        "the_stack",
    }
)

# ISO 639-1 (and a few 639-3) codes of languages written in the Latin or Cyrillic script.
LATIN_CYRILLIC_CODES = frozenset(
    # Latin script
    {
        "af",
        "an",
        "ast",
        "az",
        "br",
        "bs",
        "ca",
        "ceb",
        "co",
        "cs",
        "cy",
        "da",
        "de",
        "en",
        "eo",
        "es",
        "et",
        "eu",
        "fi",
        "fil",
        "fo",
        "fr",
        "fy",
        "ga",
        "gd",
        "gl",
        "gn",
        "ha",
        "haw",
        "hr",
        "ht",
        "hu",
        "id",
        "ig",
        "is",
        "it",
        "jv",
        "ku",
        "la",
        "lb",
        "li",
        "ln",
        "lt",
        "lv",
        "mg",
        "mi",
        "ms",
        "mt",
        "nb",
        "nds",
        "nl",
        "nn",
        "no",
        "oc",
        "om",
        "pl",
        "pt",
        "qu",
        "rm",
        "ro",
        "rw",
        "sc",
        "sk",
        "sl",
        "sm",
        "sn",
        "so",
        "sq",
        "st",
        "su",
        "sv",
        "sw",
        "tk",
        "tl",
        "tn",
        "to",
        "tr",
        "uz",
        "vi",
        "wa",
        "war",
        "wo",
        "xh",
        "yo",
        "zu",
        "ay",
        "ny",
        "lg",
        "kg",
        "ts",
        "ss",
        "ve",
        "nso",
        "ilo",
        "pam",
        "bcl",
        "min",
        "ace",
        "bjn",
        "bar",
        "als",
        "vec",
        "scn",
        "lmo",
        "pms",
        "frr",
        "hsb",
        "dsb",
        "csb",
        "szl",
        "kw",
        "gv",
        "se",
        "smn",
        "kl",
        "ty",
        "fj",
        "mh",
        "ch",
        "crh",
        "gag",
        "kaa",
        # Cyrillic script
        "ru",
        "uk",
        "be",
        "bg",
        "mk",
        "sr",
        "kk",
        "ky",
        "mn",
        "tg",
        "tt",
        "ba",
        "cv",
        "ce",
        "os",
        "av",
        "kv",
        "udm",
        "mhr",
        "mrj",
        "sah",
        "tyv",
        "bxr",
        "myv",
        "mdf",
        "lez",
        "krc",
        "kbd",
        "ab",
        "rue",
        "cu",
    }
)

# Languages in other scripts (so that they are recognised as languages, not unknown categories).
OTHER_SCRIPT_CODES = frozenset(
    {
        "zh",
        "ja",
        "ko",
        "ar",
        "fa",
        "ur",
        "he",
        "yi",
        "el",
        "hy",
        "ka",
        "hi",
        "bn",
        "pa",
        "gu",
        "or",
        "ta",
        "te",
        "kn",
        "ml",
        "si",
        "mr",
        "ne",
        "sa",
        "th",
        "lo",
        "km",
        "my",
        "bo",
        "dz",
        "am",
        "ti",
        "dv",
        "ps",
        "sd",
        "ug",
        "ckb",
        "arz",
        "azb",
        "pnb",
        "mai",
        "bh",
        "new",
        "as",
        "iu",
        "chr",
        "yue",
        "wuu",
        "zh_hans",
        "zh_hant",
        "jv_java",
    }
)

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
            data = json.loads(text)
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
            data = yaml.safe_load(text)
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
