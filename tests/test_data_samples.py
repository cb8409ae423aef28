"""Checks of the bundled sample corpora ``data_samples/`` (built by scripts/build_data_samples.py).

The tests only read the files (no dependency on the ``mixinfer`` package): every ``general``
language category is real text in the language it names (cheap script/alphabet and stop-word
checks), no troff or HTML markup is left, programming categories look like their language,
``MANIFEST.json`` matches the files, and the demo tokenizer's training documents are disjoint
from the shipped samples.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "data_samples"
MANIFEST_PATH = ROOT / "MANIFEST.json"
MAX_TOTAL_BYTES = 60 * 1024 * 1024
MAX_DOC_BYTES = 64 * 1024


def _manifest() -> dict:
    if not MANIFEST_PATH.exists():
        return {"categories": {}}
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


MANIFEST = _manifest()
CATEGORIES: dict[str, dict] = MANIFEST["categories"]
GENERAL = sorted(k.split("/", 1)[1] for k in CATEGORIES if k.startswith("general/"))
PROGRAMMING = sorted(k.split("/", 1)[1] for k in CATEGORIES if k.startswith("programming/"))
NATURAL = [c for c in GENERAL if c != "code"]


@cache
def raw_files(key: str) -> dict[str, tuple[bytes, bytes]]:
    """File name -> (gzip bytes, decompressed bytes) of one category (``general/de``), sorted."""
    d = ROOT / key
    out = {}
    for p in sorted(d.glob("*.txt.gz")):
        raw = p.read_bytes()
        out[p.name] = (raw, gzip.decompress(raw))
    return out


@cache
def documents(key: str) -> tuple[str, ...]:
    """Decompressed documents of one category, in file order."""
    return tuple(data.decode("utf-8") for _, data in raw_files(key).values())


@cache
def text_of(key: str) -> str:
    """All documents of a category joined by blank lines."""
    return "\n\n".join(documents(key))


def count(pattern: str, text: str) -> int:
    """Number of characters matching a one-character regex (runs are matched at C speed)."""
    return sum(map(len, re.findall(f"(?:{pattern})+", text)))


LETTER = r"[^\W\d_]"
LATIN = r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]"
CYRILLIC = r"[\u0400-\u052f]"
GREEK = r"[\u0370-\u03ff\u1f00-\u1fff]"
KANA = r"[\u3040-\u30ff]"
HAN = r"[\u3400-\u4dbf\u4e00-\u9fff]"
HANGUL = r"[\uac00-\ud7af]"

_EN_STOP_WORDS = """the of and to that with this are is be by which from it as not or have has
can will if when you your these their there would should been than into its such only does must each
may"""
EN_STOP = frozenset(_EN_STOP_WORDS.split())
_EN_ONLY_WORDS = """the and that with this which from have has would should been than into its
such only does must these their there when your you are not can each"""
EN_ONLY = frozenset(_EN_ONLY_WORDS.split())
"""English function words that are not also frequent words of the other languages here
(``is``, ``in``, ``of``, ``to``, ``a``, ``on``, ``will`` ... are)."""

# code: (script regex, min share of letters in that script, stop words, min stop-word share,
#        characteristic letters (regex), their min share of letters)
LANGS: dict[str, tuple[str, float, str, float, str, float]] = {
    "de": (LATIN, 0.97, "der die das und ist nicht mit von für den", 0.10, "[äöüß]", 0.005),
    "fr": (LATIN, 0.97, "le la les des est une pour dans que qui", 0.10, "[éèêàç]", 0.01),
    "es": (LATIN, 0.97, "el la los las que del una por para con", 0.10, "[ñáéíóú]", 0.005),
    "it": (LATIN, 0.97, "il la che di per una non del della sono", 0.10, "[àèéìòù]", 0.002),
    "pt": (LATIN, 0.97, "de que não uma para com os do da em", 0.10, "[ãõçáéêó]", 0.005),
    "nl": (LATIN, 0.97, "de het een van en is dat niet voor wordt", 0.10, "[ij]", 0.01),
    "pl": (LATIN, 0.97, "się nie jest że do na w z lub jak", 0.08, "[ąęłńśźż]", 0.01),
    "cs": (LATIN, 0.97, "je se na že pro nebo jako není v a", 0.08, "[ěščřžůý]", 0.01),
    "sv": (LATIN, 0.97, "och att är det som för av med inte till", 0.08, "[åäö]", 0.01),
    "da": (LATIN, 0.97, "og at er det til af for på med ikke", 0.08, "[æøå]", 0.005),
    "nb": (LATIN, 0.97, "og er det til av for på med ikke som", 0.08, "[æøå]", 0.005),
    "fi": (LATIN, 0.97, "ja on ei tai jos kun että joka myös voi", 0.04, "[äö]", 0.02),
    "hu": (LATIN, 0.97, "a az és hogy nem egy vagy ha is meg", 0.08, "[őűáéó]", 0.03),
    "ro": (LATIN, 0.97, "și şi în de la cu nu pe că este", 0.08, "[ăâîșțşţ]", 0.01),
    "tr": (LATIN, 0.97, "ve bir bu için ile da de olarak veya gibi", 0.04, "[çğışü]", 0.02),
    "vi": (LATIN, 0.97, "và của là các có không được trong cho này", 0.08, "[ăâđêôơư]", 0.02),
    "id": (LATIN, 0.97, "yang dan di ini itu dengan untuk dari tidak akan", 0.08, "[a-z]", 0.5),
    "ru": (CYRILLIC, 0.8, "и в не на с что по для из как", 0.08, "[ыэъ]", 0.01),
    "uk": (CYRILLIC, 0.8, "і в у не на з що для до як", 0.08, "[іїє]", 0.03),
    "sr": (CYRILLIC, 0.8, "и у је да се на за од са не", 0.08, "[јљњћђ]", 0.01),
    "el": (GREEK, 0.8, "και το να του της τα με σε για η", 0.08, "[άέήίόύώ]", 0.03),
    "ja": (KANA + "|" + HAN, 0.75, "", 0.0, KANA, 0.2),
    "zh": (HAN, 0.75, "", 0.0, HAN, 0.75),
    "ko": (HANGUL, 0.75, "", 0.0, HANGUL, 0.75),
}
"""Expectations per natural-language category (ISO 639-1 code)."""

MUST_BE_RARE = {"uk": "[ыэъ]", "ru": "[іїєґ]", "zh": KANA, "sr": "[ыэщ]", "da": None, "nb": None}

MARKUP_PATTERNS = {
    "troff request": r"(?m)^\.(TH|SH|SS|PP|TP|IP|LP|B|I|BR|IR|RS|RE|nf|fi|br|sp|in|ft|de)\b",
    "troff font escape": r"\\f[BIRP0-9(\[]",
    "troff character escape": r"\\\(|\\\*\(|\\\[[a-z]",
    "troff hyphen escape": r"\\-",
    "HTML tag": r"<(p|br|div|span|a|b|i|em|strong|pre|code|table|tr|td|li|ul|ol|h[1-6])"
    r"(\s[^>]*)?/?>",
    "HTML entity": r"&(amp|lt|gt|quot|nbsp|apos|#\d+);",
    "overstrike": r".\x08",
    "ANSI escape": r"\x1b\[",
}

# programming language: regexes of which each document must match at least one (mostly)
CODE_SIGNALS: dict[str, list[str]] = {
    "python": [r"(?m)^\s*(def|class|import|from)\s", r'"""'],
    "javascript": [r"\bfunction\b", r"=>", r"\b(const|let|var)\s", r"\brequire\(", r"\bexport\b"],
    "c": [r"(?m)^\s*#\s*(include|define|ifndef|if|endif)\b", r"\b(struct|typedef|int|void)\b"],
    "cpp": [r"\b(template|namespace|std::|class)\b", r"(?m)^\s*#\s*(include|define|if)\b"],
    "perl": [r"(?m)^\s*(sub|use|package|my)\b", r"(?m)^=(head|pod|item|cut)"],
    "shell": [
        r"(?m)^#!.*\b(sh|bash)\b",
        r"(?m)^\s*(if|then|fi|case|esac|for|do|done)\b",
        r"\$\{?\w",
    ],
    "html": [r"(?i)<(html|head|body|div|p|a|table|span|h[1-6])\b"],
    "markdown": [r"(?m)^#{1,6} ", r"```", r"(?m)^\s*[-*] ", r"\[[^\]]+\]\([^)]+\)"],
    "rst": [r"(?m)^(={3,}|-{3,}|~{3,}|\^{3,}|\*{3,})$", r"(?m)^\.\. ", r":[a-z]+:`"],
    "json": [r"^\s*[\[{]", r'"\s*:\s*'],
    "xml": [r"<\?xml", r"<[A-Za-z][\w:.-]*[\s>/]"],
    "sql": [r"(?i)\b(create|select|insert|alter|drop|comment on|grant)\b"],
    "cmake": [r"(?i)\b(set|if|endif|function|macro|include|foreach|message)\s*\("],
    "css": [r"[.#]?[\w-]+\s*\{[^}]*:[^}]*\}"],
}


def words(text: str) -> list[str]:
    """Lower-cased letter runs."""
    return re.findall(LETTER + "+", text.lower())


def stop_share(text: str, stop: frozenset[str]) -> float:
    """Share of ``stop`` words among the words of ``text``."""
    ws = words(text)
    return sum(w in stop for w in ws) / max(1, len(ws))


def test_manifest_present() -> None:
    assert MANIFEST_PATH.exists(), "data_samples/MANIFEST.json missing: run scripts/build_data_samples.py"
    assert (ROOT / "MANIFEST.md").exists()
    assert "en" in GENERAL and "code" in GENERAL
    assert len(NATURAL) - 1 >= 10, f"need >= 10 natural languages besides English, have {NATURAL}"
    assert len(PROGRAMMING) >= 8, PROGRAMMING
    for code in NATURAL:
        assert code == "en" or code in LANGS, f"no expectations for general/{code}: add them to LANGS"


@pytest.mark.parametrize("key", [pytest.param(k, id=k) for k in sorted(CATEGORIES)])
def test_manifest_matches_files(key: str) -> None:
    entry = CATEGORIES[key]
    d = ROOT / key
    on_disk = sorted(p.name for p in d.iterdir())
    listed = [f["file"] for f in entry["files"]]
    assert on_disk == sorted(listed), "files on disk differ from the manifest"
    assert entry["documents"] == len(listed)
    total = 0
    files = raw_files(key)
    for f in entry["files"]:
        raw, data = files[f["file"]]
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0", "not a gzip with mtime 0"
        data.decode("utf-8")
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["file"]
        assert len(data) == f["bytes"], f["file"]
        assert 0 < len(data) <= MAX_DOC_BYTES, f["file"]
        total += len(data)
    assert total == entry["bytes"]
    # General categories target 1.5 MB; programming ones 4 MB (a 2 MB attack half), less where
    # the build machine had less source of that language.
    most = 4_100_000 if entry["group"] == "programming" else 3_500_000
    assert 500_000 <= total <= most, f"{key}: {total} bytes, expected 0.5-{most / 1e6:.1f} MB"
    assert entry["sources"] and entry["licences"] and entry["packages"]
    hashes = [f["sha256"] for f in entry["files"]]
    assert len(set(hashes)) == len(hashes), "duplicate documents"


def test_no_document_shipped_twice() -> None:
    seen: dict[str, str] = {}
    for key, entry in CATEGORIES.items():
        for f in entry["files"]:
            assert f["sha256"] not in seen, f"{key}/{f['file']} duplicates {seen[f['sha256']]}"
            seen[f["sha256"]] = f"{key}/{f['file']}"


@pytest.mark.parametrize("code", [pytest.param(c, id=c) for c in NATURAL if c != "en"])
def test_language_category_is_that_language(code: str) -> None:
    text = text_of(f"general/{code}")
    script, min_script, stop, min_stop, marks, min_marks = LANGS[code]
    letters = count(LETTER, text)
    assert letters > 100_000
    share = count(script, text) / letters
    assert share >= min_script, f"{code}: only {share:.1%} of letters in the expected script"
    if stop:
        s = stop_share(text, frozenset(stop.split()))
        assert s >= min_stop, f"{code}: stop-word share {s:.3f} < {min_stop}"
    m = count(marks, text) / letters
    assert m >= min_marks, f"{code}: characteristic letters {marks} only {m:.4f} of letters"
    rare = MUST_BE_RARE.get(code)
    if rare:
        assert count(rare, text) / letters < 0.001, f"{code}: too many letters of {rare}"
    en = stop_share(text, EN_ONLY)
    assert en < 0.005, f"{code}: English stop words make up {en:.3f} of the words"


@pytest.mark.parametrize("code", [pytest.param(c, id=c) for c in NATURAL if c != "en"])
def test_no_english_paragraphs(code: str) -> None:
    """Untranslated English paragraphs of translated man pages must have been filtered out."""
    english = 0
    paragraphs = [p for doc in documents(f"general/{code}") for p in doc.split("\n\n")]
    for p in paragraphs:
        ws = words(p)
        if len(ws) >= 8 and sum(w in EN_ONLY for w in ws) / len(ws) > 0.15:
            english += 1
    assert english <= 0.002 * len(paragraphs), f"{code}: {english} English-looking paragraphs"


def test_english_category() -> None:
    text = text_of("general/en")
    letters = count(LETTER, text)
    assert count(LATIN, text) / letters > 0.99
    assert stop_share(text, EN_STOP) > 0.25


@pytest.mark.parametrize(
    ("code", "own", "other"),
    [
        pytest.param("da", "af", "av", id="da-not-nb"),
        pytest.param("sv", "och", "og", id="sv-not-da"),
    ],
)
def test_close_languages_differ(code: str, own: str, other: str) -> None:
    """Danish, Norwegian and Swedish are told apart by a frequent word."""
    if code not in NATURAL:
        pytest.skip(f"general/{code} not built on this machine")
    ws = words(text_of(f"general/{code}"))
    assert ws.count(own) > 10 * ws.count(other)


@pytest.mark.parametrize("code", [pytest.param(c, id=c) for c in NATURAL])
def test_no_markup_left(code: str) -> None:
    text = text_of(f"general/{code}")
    for name, pattern in MARKUP_PATTERNS.items():
        m = re.search(pattern, text)
        assert m is None, f"{code}: {name} left: {text[max(0, m.start() - 60) : m.end() + 60]!r}"


@pytest.mark.parametrize("code", [pytest.param(c, id=c) for c in NATURAL])
def test_prose_not_option_lists(code: str) -> None:
    lines = [ln for ln in text_of(f"general/{code}").splitlines() if ln.strip()]
    options = sum(1 for ln in lines if re.match(r"\s*--?[A-Za-z]", ln))
    prompts = sum(1 for ln in lines if re.match(r"\s*[$#] \S", ln))
    assert options + prompts <= 0.01 * len(lines), f"{code}: {options} option and {prompts} prompt lines"


@pytest.mark.parametrize("lang", [pytest.param(c, id=c) for c in PROGRAMMING])
def test_programming_category_looks_like_its_language(lang: str) -> None:
    assert lang in CODE_SIGNALS, f"no signals for programming/{lang}: add them to CODE_SIGNALS"
    docs = documents(f"programming/{lang}")
    hits = sum(1 for d in docs if any(re.search(p, d) for p in CODE_SIGNALS[lang]))
    assert hits >= 0.9 * len(docs), f"{lang}: only {hits}/{len(docs)} documents look like {lang}"
    text = text_of(f"programming/{lang}")
    assert not re.search(r"[\x00-\x08\x0e-\x1f]", text), f"{lang}: control characters"


def test_code_category_is_a_blend() -> None:
    docs = documents("general/code")
    found = {
        lang
        for lang in ("python", "javascript", "c", "cpp", "perl", "shell", "html")
        if sum(1 for d in docs if re.search(CODE_SIGNALS[lang][0], d)) >= 3
    }
    assert len(found) >= 5, f"general/code should blend several languages, found {found}"
    assert len(docs) >= 50


def test_json_documents_parse_mostly() -> None:
    if "json" not in PROGRAMMING:
        pytest.skip("no json category")
    docs = documents("programming/json")
    ok = 0
    for d in docs:
        try:
            json.loads(d)
            ok += 1
        except ValueError:
            pass
    assert ok >= 0.5 * len(docs)


DEMO = ROOT / "demo"


def test_demo_truth() -> None:
    truth = json.loads((DEMO / "truth.json").read_text())
    props = truth["proportions"]
    assert abs(sum(props.values()) - 1.0) < 1e-9
    assert len(props) >= 3
    for cat, p in props.items():
        assert cat in GENERAL, f"truth names {cat}, not a general category"
        assert 0 < p < 1
    tb = truth["train_bytes"]
    total = sum(tb.values())
    for cat, p in props.items():
        assert abs(p - tb[cat] / total) < 1e-9


def test_demo_train_documents_disjoint_from_samples() -> None:
    lines = (DEMO / "train_documents.txt").read_text().split()
    assert lines == sorted(set(lines)), "train_documents.txt must be sorted and unique"
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in lines)
    assert len(lines) >= 100
    train = set(lines)
    shipped = {f["sha256"] for e in CATEGORIES.values() for f in e["files"]}
    assert not train & shipped, f"{len(train & shipped)} demo-train documents are shipped"


def test_demo_tokenizer_file() -> None:
    tok = json.loads((DEMO / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["model"]["type"] == "BPE"
    assert 2500 <= len(tok["model"]["merges"]) <= 3500
    pre = tok["pre_tokenizer"]
    assert pre["type"] == "Sequence"
    assert [p["type"] for p in pre["pretokenizers"]] == ["Digits", "ByteLevel"]
    assert (DEMO / "README.md").exists()


def test_total_size_under_limit() -> None:
    files = [p for p in ROOT.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert size < MAX_TOTAL_BYTES, f"data_samples is {size / 1e6:.1f} MB"
    on_disk = sum(p.stat().st_blocks * 512 for p in files)
    assert on_disk < MAX_TOTAL_BYTES, f"data_samples uses {on_disk / 1e6:.1f} MB of disk blocks"
