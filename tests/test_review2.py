"""Defects a second hands-on review found (intervals that could not vary, outputs read back as
samples, one folder read two ways, stale warnings from the cache), each pinned down."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixinfer import errors
from mixinfer.cli import app
from mixinfer.sample_commands import pull_samples


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def infer_args(tok: Path, samples: str | Path, tmp: Path, *extra: str) -> list[str]:
    return ["infer", str(tok), "--samples", str(samples), "--merges", "60", "--cache-dir", str(tmp / "c"),
            "-q", *extra]  # fmt: skip


@pytest.fixture
def samples(three_categories: Path, tmp_path: Path) -> Path:
    """A private copy of the three small categories (en, de, fr), which tests may change."""
    return Path(shutil.copytree(three_categories, tmp_path / "samples"))


def test_outputs_may_not_land_in_a_folder_a_manifest_names_by_file_url(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """``url: file://...`` folders are read recursively: a snapshot or a result written there was
    read back as part of the category (exit 0, a different answer on the next run)."""
    manifest = tmp_path / "m.json"
    sources = {"en": {"url": (samples / "en").as_uri()}, "de": {"path": str(samples / "de")}}
    manifest.write_text(json.dumps({"categories": {c: {"sources": [s]} for c, s in sources.items()}}))
    inside = samples / "en" / "r.json"
    code, _, err = cli(*infer_args(small_bpe_tokenizer_json, manifest, tmp_path, "-o", str(inside)))
    assert code == 2 and "inside the samples folder" in err and not inside.exists(), err
    with pytest.raises(errors.UsageError, match="inside .* which this pull reads"):
        pull_samples(str(manifest), samples / "en" / "snap", max_bytes=20_000)
    assert sorted(p.name for p in (samples / "en").iterdir()) == ["t.txt"]
