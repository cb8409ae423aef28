"""Word counting: both counting paths equal pretokenizing whole texts with ``tokenizers``.

``counting.count_words`` normalises a document, then either splits it with the ``regex``
equivalent of the pre-tokenizer (:mod:`mixinfer.fastsplit`), or cuts it into pieces at spaces and
pretokenizes each *distinct* piece once with ``tokenizers``. Either is only correct if it gives
exactly the counts of running the tokenizer's normalizer and pre-tokenizer over every whole
document; these tests check it for both paths, every preset and the pretokenizers of the published
tokenizer files, on real multilingual text with awkward whitespace, and check that the
multi-process path equals the serial one.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from mixinfer import counting, pretokenizers
from mixinfer.pretokenizers import PRESETS, Pretokenizer, build, pretoken_bytes, pretokenize
from mixinfer.samples import Category, discover, iter_documents
from mixinfer.tokenizer import load_tokenizer

ROOT = Path(__file__).resolve().parents[1]
GENERAL = ROOT / "data_samples" / "general"
SHARED = ROOT.parent / "shared" / "tokenizers"
PYLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
LANGUAGES = ("de", "ru", "zh", "ja", "ko", "el", "tr", "vi", "fr", "uk")

TRICKY = (
    "Two  spaces, three   spaces,\ttab,\t\ttwo tabs, trailing   \n"
    "\n  indented\n    more indented\n\t\tdef f(x):\n        return x  \n"
    "digits 1234567 12 3.14159 1,000,000 x2 2x 0xFF  99 bottles\n"
    "mixed\r\nwindows\r\n line\r\n\r\n"
    "non-breaking\u00a0space, ideographic\u3000space, em\u2003space, thin\u2009space\n"
    "zero\u200bwidth \u200b x, nel\x85here, form\x0cfeed, vtab\x0bhere, us\x1fsep \x1c y\n"
    "contractions: don't, I'm, we've, they'll, she'd, it's, WE'RE  'quoted'\n"
    "punctuation!!! ... ?? -- (parens) [brackets] {braces} a+b=c; ¿qué? «guillemets»\n"
    "emoji 🙂 🙂🙂  👍🏽 flags 🇩🇪 and combining e\u0301 n\u0303 a\u030a\n"
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ ① ② ½ ﬁ ligature ™ ℃\n"
    "中文 混合 English 和 123 数字; 日本語のテキスト; 한국어 텍스트\n"
    "Привет,  мир! Ελληνικά  κείμενο. עברית ‏טקסט العربية  نص\n"
    "   leading spaces and ending with spaces   "
)


def _read(path: Path, limit: int) -> str:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    return data.decode("utf-8", errors="replace")[:limit]


def _corpus() -> dict[str, list[str]]:
    """Real text by category: English licences, Python source, other languages when present."""
    corpus: dict[str, list[str]] = {"tricky": [TRICKY, TRICKY.replace(" ", "  "), TRICKY * 2]}
    licences = sorted(Path("/usr/share/common-licenses").glob("*"))
    english = [_read(p, 12_000) for p in licences[:6] if p.is_file()]
    if english:
        corpus["en"] = english
    code = [_read(PYLIB / name, 15_000) for name in ("argparse.py", "textwrap.py", "shlex.py")
            if (PYLIB / name).is_file()]  # fmt: skip
    if code:
        corpus["code"] = code
    for lang in LANGUAGES:
        folder = GENERAL / lang
        if not folder.is_dir():
            continue
        files = sorted(folder.glob("*.txt*"))[:2]
        docs = [_read(p, 8_000) for p in files if p.name.endswith((".txt", ".txt.gz"))]
        if docs:
            corpus[lang] = docs
    return corpus


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    return _corpus()


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory, corpus: dict[str, list[str]]) -> Path:
    root = tmp_path_factory.mktemp("counting-samples")
    for name, docs in corpus.items():
        folder = root / name
        folder.mkdir()
        for i, doc in enumerate(docs):
            (folder / f"{i:03d}.txt").write_text(doc, encoding="utf-8")
    return root


def reference_counts(p: Pretokenizer, texts: list[str]) -> dict[bytes, int]:
    """The slow, obviously right way: pretokenize every whole text with ``tokenizers``."""
    built = build(p)
    out: Counter[bytes] = Counter()
    for text in texts:
        for word in pretokenize(built, text):
            out[pretoken_bytes(p, word)] += 1
    return dict(out)


def _pretokenizers() -> list[pytest.ParameterSet]:
    params = [pytest.param(name, id=f"preset-{name}") for name in PRESETS]
    if SHARED.is_dir():
        params += [pytest.param(str(p), id=f"file-{p.stem}") for p in sorted(SHARED.glob("*.json"))]
    return params


def _resolve(which: str) -> Pretokenizer:
    if which in PRESETS:
        return PRESETS[which]
    return load_tokenizer(which, offline=True).pretokenizer


@pytest.fixture(params=[pytest.param(True, id="regex"), pytest.param(False, id="tokenizers")])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test with the ``regex`` split where supported, and once more with ``tokenizers`` only."""
    if not request.param:
        monkeypatch.setattr(counting, "fast_split", lambda pretok: None)
    return bool(request.param)


@pytest.mark.parametrize("unit", ["document", "line"])
@pytest.mark.parametrize("which", _pretokenizers())
def test_count_words_equals_pretokenizing_whole_documents(
    which: str, unit: str, sample_dir: Path, fast: bool
) -> None:
    pretok = _resolve(which)
    categories = discover(sample_dir)
    counts = counting.count_words(categories, pretok, max_bytes=10**9, unit=unit, cache=None, workers=1)
    assert [wc.category for wc in counts] == [c.name for c in categories]
    for cat, wc in zip(categories, counts, strict=True):
        texts = list(iter_documents(cat, max_bytes=10**9, unit=unit))
        expected = reference_counts(pretok, texts)
        if wc.words != expected:
            missing = {w: n for w, n in expected.items() if wc.words.get(w) != n}
            extra = {w: n for w, n in wc.words.items() if expected.get(w) != n}
            pytest.fail(
                f"{which} ({unit}) on {cat.name}: counts differ; "
                f"expected {dict(list(missing.items())[:8])}, got {dict(list(extra.items())[:8])}"
            )
        assert wc.bytes == sum(len(t.encode("utf-8")) for t in texts)
        assert wc.documents == len(texts)


def test_the_corpus_really_is_multilingual(corpus: dict[str, list[str]]) -> None:
    # Guard against the property test above silently running on ASCII only.
    text = "".join(d for docs in corpus.values() for d in docs)
    assert any("\u0400" <= ch <= "\u04ff" for ch in text)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in text)
    assert "  " in text and "\t" in text and "\n  " in text and " \n" in text


def test_every_builtin_split_pretokenizer_has_both_fast_paths() -> None:
    # The property test above is only interesting if the regex split and the piece-cutting path
    # are actually taken.
    for name, p in PRESETS.items():
        assert counting.cut_rule(p) is not None, name
        assert counting.fast_split(p) is not None, name


@pytest.mark.parametrize("which", ["default", "llama", "cl100k"])
def test_parallel_counting_equals_serial(
    which: str, sample_dir: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    pretok = PRESETS[which]
    categories = discover(sample_dir)
    serial = counting.count_words(categories, pretok, max_bytes=40_000, cache=None, workers=1)
    monkeypatch.setattr(counting, "_PARALLEL_MIN_BYTES", 0)
    # Small batches: several per category, so results from different workers are merged.
    monkeypatch.setattr(counting, "_BATCH_BYTES", 7_000)
    parallel = counting.count_words(categories, pretok, max_bytes=40_000, cache=None, workers=2)
    assert [(wc.category, wc.words, wc.bytes, wc.documents, wc.warnings) for wc in parallel] == [
        (wc.category, wc.words, wc.bytes, wc.documents, wc.warnings) for wc in serial
    ]


def test_counts_survive_the_cache_roundtrip(sample_dir: Path, tmp_path: Path) -> None:
    from mixinfer.cache import Cache

    pretok = PRESETS["default"]
    categories = discover(sample_dir)
    cache = Cache(tmp_path / "cache")
    first = counting.count_words(categories, pretok, max_bytes=30_000, cache=cache, workers=1)
    again = counting.count_words(categories, pretok, max_bytes=30_000, cache=cache, workers=1)
    assert cache.hits == len(categories)
    assert [(w.words, w.bytes, w.documents, w.warnings) for w in again] == [
        (w.words, w.bytes, w.documents, w.warnings) for w in first
    ]


@pytest.mark.parametrize(
    "regex_split", [pytest.param(True, id="regex"), pytest.param(False, id="tokenizers")]
)
def test_a_text_without_spaces_is_one_piece_and_still_exact(regex_split: bool) -> None:
    text = "a" * 5000 + "1234" + "b" * 3000
    cat_texts = [text, text + " tail"]
    p = PRESETS["gpt2"]
    got = counting._Counter(p, fast=regex_split).count(cat_texts)
    assert got == reference_counts(p, cat_texts)


def test_byte_level_words_are_raw_bytes() -> None:
    got = counting._Counter(PRESETS["gpt2"]).count(["héllo wörld"])
    assert got == {"héllo".encode(): 1, " wörld".encode(): 1}
    assert pretokenizers.decode_byte_level("Ġw") == b" w"


def test_empty_category_is_an_error(tmp_path: Path) -> None:
    from mixinfer.errors import SamplesError

    (tmp_path / "empty").mkdir()
    f = tmp_path / "empty" / "a.txt"
    f.write_bytes(b"")
    cats = discover(tmp_path)
    with pytest.raises(SamplesError, match="no readable text"):
        counting.count_words(cats, PRESETS["default"], max_bytes=1000, workers=1)
    assert isinstance(cats[0], Category)
