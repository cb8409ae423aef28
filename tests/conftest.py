"""Shared fixtures: real English text from the system's licence files, a small BPE trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest

LICENSE_DIRS = (Path("/usr/share/common-licenses"), Path("/usr/share/doc"))
SHARED_TOKENIZERS = Path(__file__).resolve().parents[1].parent / "shared" / "tokenizers"


def _collect_text(budget: int) -> str:
    """Up to ``budget`` characters of real text, in a fixed order (same text on every run)."""
    files: list[Path] = []
    licenses = LICENSE_DIRS[0]
    if licenses.is_dir():
        files += sorted(p for p in licenses.iterdir() if p.is_file() and not p.is_symlink())
    docs = LICENSE_DIRS[1]
    if docs.is_dir():
        files += sorted(docs.glob("*/copyright"))
    parts: list[str] = []
    size = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        parts.append(text)
        size += len(text)
        if size >= budget:
            break
    return "".join(parts)[:budget]


@pytest.fixture(scope="session")
def license_text() -> str:
    """About 600 kB of real English (licences and copyright notices), deterministic."""
    text = _collect_text(600_000)
    if len(text) < 50_000:
        pytest.skip("no licence texts under /usr/share/common-licenses or /usr/share/doc")
    return text


@pytest.fixture(scope="session")
def license_paragraph(license_text: str) -> str:
    """One real paragraph (a few hundred characters) with letters, digits and punctuation."""
    for para in license_text.split("\n\n"):
        if 300 <= len(para) <= 1500 and any(ch.isdigit() for ch in para):
            return para
    return license_text[:1000]


@pytest.fixture(scope="session")
def small_bpe_tokenizer_json(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> Path:
    """A byte-level BPE (vocabulary 1500) trained with HF ``tokenizers`` on ``license_text``.

    It uses the paper's controlled pretokenizer (``Digits`` + ``ByteLevel`` with the GPT-2 regex,
    the ``default`` preset) and the full 256-byte initial alphabet. Returns the tokenizer.json path.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    docs = [d for d in license_text.split("\n\n") if d.strip()]
    tok.train_from_iterator(docs, trainer=trainer)
    path = tmp_path_factory.mktemp("small_bpe") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="session")
def three_categories(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> Path:
    """A samples folder of three categories, ``en``, ``de`` and ``fr``: thirds of ``license_text``
    (at most 40,000 characters each; enough pairs for small LPs)."""
    root = tmp_path_factory.mktemp("three-categories")
    third = len(license_text) // 3
    for k, name in enumerate(("en", "de", "fr")):
        (root / name).mkdir()
        (root / name / "t.txt").write_text(license_text[k * third : k * third + 40_000], encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def shared_tokenizers_dir() -> Path:
    """``../shared/tokenizers`` (published tokenizer.json files); skips when absent."""
    if not SHARED_TOKENIZERS.is_dir():
        pytest.skip(f"{SHARED_TOKENIZERS} is not available")
    return SHARED_TOKENIZERS
