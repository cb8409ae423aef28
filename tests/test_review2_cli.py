"""Defects a second hands-on review of the command line found (internal errors for user mistakes,
staging folders left behind by a signal, warnings only the JSON showed, messages naming the wrong
option), each pinned down through the command line: exit code and stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixinfer import errors
from mixinfer.cli import EXIT_CODES, app
from mixinfer.options import MAX_BOOTSTRAP, OptionError, Options


@pytest.fixture
def samples(three_categories: Path) -> Path:
    """Three small categories: en, de, fr (conftest)."""
    return three_categories


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


# -- D5: a huge --bootstrap ----------------------------------------------------------------------------


def test_options_bound_the_bootstrap_replicates() -> None:
    assert Options(bootstrap=MAX_BOOTSTRAP).bootstrap == MAX_BOOTSTRAP
    with pytest.raises(OptionError, match="limit of 10,000") as raised:
        Options(bootstrap=MAX_BOOTSTRAP + 1)
    assert raised.value.option == "bootstrap"


@pytest.mark.parametrize("replicates", ["100000000000", "99999999999999999999999"])
def test_a_huge_bootstrap_is_a_usage_error_before_any_work(
    replicates: str, small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """It used to run into MemoryError (a replicates x categories array) or numpy's ValueError:
    exit 1, "internal error", after counting and replaying."""
    cache = tmp_path / "cache"
    runs = {
        "infer": ["infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                  "--cache-dir", str(cache), "-q", "-o", "-"],
        "audit": ["audit", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                  "--cache-dir", str(cache), "-q", "--format", "csv"],
        "simulate": ["simulate", "--n", "2", "--trials", "1", "--samples", str(samples), "--vocab", "400",
                     "--merges", "60", "--train-bytes", "20kB", "--cache-dir", str(cache), "-q"],
    }  # fmt: skip
    for command, args in runs.items():
        code, out, err = cli(*args, "--bootstrap", replicates)
        assert code == EXIT_CODES[errors.UsageError], (command, err)
        assert f"--bootstrap {replicates} is more replicates than the limit of 10,000" in err, (command, err)
        assert "internal error" not in err and out == "", (command, err)
        assert not cache.exists(), command  # refused before anything was counted
