"""Degenerate samples reach the solver as clear errors or warnings (issue 17, items 4 and 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer import errors, solver
from mixinfer.cli import EXIT_CODES, app
from mixinfer.counting import count_words
from mixinfer.replay import TokenTable, Trace, replay
from mixinfer.samples import discover


def _trace(counts: list[int], merges: int = 2) -> Trace:
    empty = np.zeros(0, dtype=np.int64)
    codes = np.arange(1, len(counts) + 1, dtype=np.int64)
    return Trace(
        merges, codes[np.array(counts) > 0], np.array([c for c in counts if c > 0]), empty, empty, empty
    )


def test_a_category_without_pairs_is_refused_by_name() -> None:
    traces = [_trace([500, 100]), _trace([])]
    with pytest.raises(errors.SamplesError) as info:
        solver.MixtureLP(traces, [600, 1], np.array([1, 3]), names=["en", "tiny"])
    text = str(info.value)
    assert "'tiny'" in text and "'en'" not in text
    assert "--max-bytes" in text and "remove the category" in text


def test_every_category_without_pairs_is_one_error_not_an_index_error() -> None:
    with pytest.raises(errors.SamplesError, match="categories 'a', 'b' have no pair"):
        solver.MixtureLP([_trace([]), _trace([])], [1, 1], np.array([1, 3]), names=["a", "b"])


def test_the_violation_search_copes_with_no_segments() -> None:
    # check_samples refuses this input; the search itself must still not index empty arrays.
    lp = solver.MixtureLP([_trace([5]), _trace([5])], [5, 5], np.array([1, 3]))
    for name in ("seg_key", "seg_pair", "seg_start", "seg_end", "seg_lo", "seg_hi", "seg_pair_first"):
        setattr(lp, name, getattr(lp, name)[:0])
    segments, nodes, viol = lp.violations(np.array([0.5, 0.5]), np.zeros(lp.steps), np.zeros(lp.pairs))
    assert len(segments) == len(nodes) == len(viol) == 0


def test_tiny_samples_warn_below_the_documented_threshold() -> None:
    n = solver.MIN_SAMPLE_PAIRS
    below = [_trace([n // 2, n // 2 - 1]), _trace([n, n])]
    assert (
        solver.check_samples(below, ["small", "big"])
        == solver.MixtureLP(below, [n, 2 * n], np.array([1, 3]), names=["small", "big"]).warnings
    )
    (warning,) = solver.check_samples(below, ["small", "big"])
    assert f"'small' ({n - 1:,} pairs)" in warning and "'big'" not in warning
    assert f"{n:,}" in warning and "--max-bytes" in warning
    assert solver.check_samples([_trace([n // 2, n // 2]), _trace([n, 1])], ["a", "b"]) == []


def test_solve_result_carries_the_warnings() -> None:
    lp = solver.MixtureLP([_trace([50, 10]), _trace([10, 50])], [60, 60], np.array([1, 3]), names=["x", "y"])
    result, _ = solver.solve(lp)
    assert result.warnings == lp.warnings and len(result.warnings) == 1
    assert "'x' (60 pairs), 'y' (60 pairs)" in result.warnings[0]


def test_real_one_byte_samples_are_refused(small_bpe_tokenizer_json: Path, tmp_path: Path) -> None:
    for cat, text in {"en": "the licence is free software", "one": "x"}.items():
        (tmp_path / cat).mkdir()
        (tmp_path / cat / "a.txt").write_text(text, encoding="utf-8")
    tok = mixinfer.load_tokenizer(small_bpe_tokenizer_json)
    counts = count_words(discover(tmp_path), tok.pretokenizer, max_bytes=1000, workers=1)
    table = TokenTable.build(tok)
    traces = [replay(wc.words, table, 50) for wc in counts]
    names = [wc.category for wc in counts]
    with pytest.raises(errors.SamplesError, match="category 'one' has no pair"):
        solver.MixtureLP(traces, [wc.bytes for wc in counts], table.merge_codes, names=names)


@pytest.fixture
def two_samples(tmp_path: Path, license_text: str) -> Path:
    root = tmp_path / "samples"
    for cat, text in {"en": license_text[:8000], "de": license_text[200_000:208_000]}.items():
        (root / cat).mkdir(parents=True)
        (root / cat / "a.txt").write_text(text, encoding="utf-8")
    return root


def test_cli_max_bytes_1_is_a_samples_error(small_bpe_tokenizer_json: Path, two_samples: Path) -> None:
    out = two_samples.parent / "out.json"
    result = CliRunner().invoke(
        app,
        ["infer", str(small_bpe_tokenizer_json), "--samples", str(two_samples), "--merges", "100",
         "--max-bytes", "1", "--no-cache", "--quiet", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == EXIT_CODES[errors.SamplesError], result.output
    assert "no pair of adjacent bytes" in result.stderr and "'de', 'en'" in result.stderr
    assert "Traceback" not in result.stderr and "bug" not in result.stderr
    assert not out.exists()


def test_cli_one_byte_category_is_refused(small_bpe_tokenizer_json: Path, two_samples: Path) -> None:
    (two_samples / "one").mkdir()
    (two_samples / "one" / "a.txt").write_text("x", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        ["infer", str(small_bpe_tokenizer_json), "--samples", str(two_samples), "--merges", "100",
         "--no-cache", "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == EXIT_CODES[errors.SamplesError], result.output
    assert "category 'one' has no pair" in result.stderr


def test_cli_json_warns_about_tiny_samples(small_bpe_tokenizer_json: Path, two_samples: Path) -> None:
    out = two_samples.parent / "out.json"
    result = CliRunner().invoke(
        app,
        ["infer", str(small_bpe_tokenizer_json), "--samples", str(two_samples), "--merges", "100",
         "--no-cache", "--quiet", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert any(w.startswith("tiny samples:") and "'en'" in w for w in doc["warnings"]), doc["warnings"]
