"""A budget far above the samples (``--max-bytes 1TB``) reads them whole instead of allocating it."""

from __future__ import annotations

import gzip
from pathlib import Path

from mixinfer.counting import count_words
from mixinfer.pretokenizers import preset
from mixinfer.samples import discover


def test_a_terabyte_budget_reads_plain_and_gzip_files_whole(tmp_path: Path) -> None:
    text = "the quick brown fox jumps over the lazy dog\n" * 200
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "a.txt").write_text(text, encoding="utf-8")
    (tmp_path / "de").mkdir()
    with gzip.open(tmp_path / "de" / "b.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write(text)
    huge = count_words(discover(tmp_path), preset("gpt2"), max_bytes=1 << 40, workers=1)
    exact = count_words(discover(tmp_path), preset("gpt2"), max_bytes=len(text), workers=1)
    size = len(text.encode("utf-8"))
    assert [wc.bytes for wc in huge] == [size, size]
    assert [wc.words for wc in huge] == [wc.words for wc in exact]
