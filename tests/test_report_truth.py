"""Truth files are validated and every JSON report.py writes is standard JSON (issue 17, item 7)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mixinfer.cli import EXIT_CODES, app
from mixinfer.errors import UsageError
from mixinfer.report import CategoryStats, InferenceResult, dumps_json, read_truth, validate_truth


def _strict_loads(text: str) -> Any:
    """json.loads that refuses NaN / Infinity, as every standard JSON parser does."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


BAD_TRUTHS = {
    "nan": '{"proportions": {"en": NaN, "de": 0.5}}',
    "infinity": '{"proportions": {"en": Infinity, "de": 0.5}}',
    "minus-infinity": '{"en": -Infinity, "de": 0.5}',
    "overflow-float": '{"proportions": {"en": 1e400, "de": 0.5}}',
    "overflow-int": '{"proportions": {"en": 1' + "0" * 400 + ', "de": 0.5}}',
    "negative": '{"proportions": {"en": -0.2, "de": 1.2}}',
    "all-zero": '{"proportions": {"en": 0, "de": 0}}',
    "string-share": '{"proportions": {"en": "0.5", "de": 0.5}}',
    "bool-share": '{"proportions": {"en": true, "de": 0.5}}',
    "null-share": '{"proportions": {"en": null, "de": 0.5}}',
    "empty-name": '{"proportions": {"": 0.5, "de": 0.5}}',
    "empty-mapping": '{"proportions": {}}',
    "list": "[0.5, 0.5]",
    "proportions-not-a-mapping": '{"proportions": [0.5, 0.5]}',
    "not-json": "en=0.5",
    "truncated": '{"proportions": {"en": 0.5',
}


@pytest.mark.parametrize("case", sorted(BAD_TRUTHS))
@pytest.mark.parametrize("implicit", [False, True], ids=["--truth", "beside-tokenizer"])
def test_a_malformed_truth_is_a_usage_error_naming_the_file(
    case: str, implicit: bool, tmp_path: Path
) -> None:
    path = tmp_path / "truth.json"
    path.write_text(BAD_TRUTHS[case], encoding="utf-8")
    with pytest.raises(UsageError) as info:
        read_truth(path, implicit=implicit)
    text = str(info.value)
    assert str(path) in text
    # A truth.json found beside the tokenizer was not given with --truth: do not blame the option.
    assert ("--truth" in text) is not implicit


@pytest.mark.parametrize("kind", ["missing", "directory", "not-utf8", "fifo"])
def test_an_unreadable_truth_is_a_usage_error(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "not-utf8":
        path.write_bytes(b'{"proportions": {"\xff": 1}}')
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    with pytest.raises(UsageError, match=str(path)):
        read_truth(path)


def test_shares_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    path.write_text('{"proportions": {"en": 3, "de": 1, "fr": 0}, "unit": "document"}', encoding="utf-8")
    assert read_truth(path) == {"en": 0.75, "de": 0.25, "fr": 0.0}
    path.write_text('{"en": 40, "code": 60}', encoding="utf-8")
    assert read_truth(path) == {"en": 0.4, "code": 0.6}
    assert validate_truth({"a": 1, "b": 1}) == {"a": 0.5, "b": 0.5}
    assert validate_truth({"a": 1e308, "b": 1e308}) == {
        "a": 0.5,
        "b": 0.5,
    }  # the sum overflows, not the shares
    with pytest.raises(UsageError, match="'a' is not a finite number"):
        validate_truth({"a": math.nan, "b": 1.0})


def _result(**extra: Any) -> InferenceResult:
    return InferenceResult(
        proportions={"en": 0.75, "de": 0.25}, tokenizer="tok", merges_used=10, merges_total=10,
        pretokenizer={"name": "default"},
        solver={"name": "highs", "status": "optimal", "objective": math.nan},
        timing={"total": math.inf}, samples={"en": CategoryStats(1, 1, 1), "de": CategoryStats(1, 1, 1)},
        unit="document", max_bytes=100, **extra,
    )  # fmt: skip


def test_an_exact_answer_writes_null_not_minus_infinity() -> None:
    result = _result(truth={"en": 0.75, "de": 0.25}, truth_source="t.json")
    assert result.log10_mse == -math.inf  # the property keeps its meaning
    doc = _strict_loads(result.to_json())
    assert doc["truth"]["mse"] == 0.0 and doc["truth"]["log10_mse"] is None
    assert doc["solver"]["objective"] is None and doc["timing"]["total"] is None
    assert doc["proportions"] == {"en": 0.75, "de": 0.25}


def test_dumps_json_is_always_standard() -> None:
    import numpy as np

    value = {"a": [math.nan, -math.inf, 1.5], "b": np.float64("nan"), "c": np.arange(3), "d": (np.int64(7),)}
    assert _strict_loads(dumps_json(value)) == {"a": [None, None, 1.5], "b": None, "c": [0, 1, 2], "d": [7]}


def test_cli_truth_with_nan_exits_2_naming_the_file(small_bpe_tokenizer_json: Path, tmp_path: Path) -> None:
    truth = tmp_path / "bad-truth.json"
    truth.write_text('{"proportions": {"en": NaN, "code": 0.5}}', encoding="utf-8")
    samples = tmp_path / "samples"
    for cat in ("en", "code"):
        (samples / cat).mkdir(parents=True)
        (samples / cat / "a.txt").write_text(
            "the quick brown fox jumps over the lazy dog " * 50, encoding="utf-8"
        )
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        ["infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "20",
         "--truth", str(truth), "--no-cache", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == EXIT_CODES[UsageError], result.output
    assert str(truth) in result.stderr and "--truth" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_cli_a_stray_malformed_truth_beside_the_tokenizer_is_a_warning(
    small_bpe_tokenizer_json: Path, tmp_path: Path
) -> None:
    tok_dir = tmp_path / "tok"
    tok_dir.mkdir()
    (tok_dir / "tokenizer.json").write_bytes(small_bpe_tokenizer_json.read_bytes())
    (tok_dir / "truth.json").write_text('{"proportions": {"en": Infinity}}', encoding="utf-8")
    samples = tmp_path / "samples"
    for cat, text in {
        "en": "the quick brown fox " * 100,
        "code": "def f(x):\n    return x + 1\n" * 60,
    }.items():
        (samples / cat).mkdir(parents=True)
        (samples / cat / "a.txt").write_text(text, encoding="utf-8")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        ["infer", str(tok_dir / "tokenizer.json"), "--samples", str(samples), "--merges", "20",
         "--no-cache", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = _strict_loads(out.read_text(encoding="utf-8"))
    assert "truth" not in doc
    (warning,) = [w for w in doc["warnings"] if "truth.json" in w]
    assert "--truth" not in warning and "Infinity" in warning
