"""Defects a hands-on review of the command line found (answers with exit 0 about the wrong
text, outputs written over inputs, options silently ignored, unclear errors), each pinned down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli, infer_args

from mixinfer import errors
from mixinfer.cli import EXIT_BROKEN_PIPE, EXIT_CODES
from mixinfer.diagnostics import summary_lines
from mixinfer.options import Runtime, valid_dask_address
from mixinfer.sample_commands import pull_samples
from mixinfer.simulate import SimulationSettings
from mixinfer.strictload import DuplicateKeyError, json_loads, yaml_safe_load


@pytest.fixture
def samples(three_categories: Path) -> Path:
    """Three small categories: en, de, fr (conftest)."""
    return three_categories


def audit_with_groups(tok: Path, samples: Path, groups: Path, text: str) -> tuple[int, str, str]:
    """``audit --groups`` with a groups file holding ``text`` (CSV on stdout, no cache)."""
    groups.write_text(text, encoding="utf-8")
    return cli("audit", str(tok), "--samples", str(samples), "--merges", "60", "--groups", str(groups),
               "--format", "csv", "--no-cache")  # fmt: skip


# -- a key given twice ----------------------------------------------------------------------------------


def test_strict_loaders_refuse_a_repeated_key_and_read_the_rest_as_usual() -> None:
    assert json_loads('{"a": {"b": 1}, "c": [1, 2]}') == {"a": {"b": 1}, "c": [1, 2]}
    assert yaml_safe_load("a: {b: 1}\nc: [1, 2]\n") == {"a": {"b": 1}, "c": [1, 2]}
    with pytest.raises(DuplicateKeyError, match="'en' is given twice"):
        json_loads('{"categories": {"en": 1, "de": 2, "en": 3}}')
    with pytest.raises(DuplicateKeyError, match=r"'en' is given twice \(line 4\)"):
        yaml_safe_load("categories:\n  en: 1\n  de: 2\n  en: 3\n")
    # The same key in two different mappings is fine.
    assert yaml_safe_load("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_manifest_naming_a_category_twice_is_refused(
    suffix: str, small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """It used to keep the last entry: French text reported as 'en', English gone, exit 0."""
    manifest = tmp_path / f"m{suffix}"
    entry = {c: f"{{sources: [{{path: {samples / c}}}]}}" for c in ("en", "de", "fr")}
    if suffix == ".yaml":
        text = f"categories:\n  en: {entry['en']}\n  de: {entry['de']}\n  en: {entry['fr']}\n"
    else:
        source = {c: json.dumps({"sources": [{"path": str(samples / c)}]}) for c in ("en", "fr")}
        text = f'{{"categories": {{"en": {source["en"]}, "en": {source["fr"]}}}}}'
    manifest.write_text(text, encoding="utf-8")
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, manifest, tmp_path, "--format", "csv"))
    assert code == EXIT_CODES[errors.SamplesError], err
    assert "'en' is given twice" in err and out == ""


def test_groups_and_truth_files_naming_a_key_twice_are_refused(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    code, _, err = audit_with_groups(
        small_bpe_tokenizer_json, samples, tmp_path / "g.yaml", "latin: [en, de]\nlatin: [fr]\n"
    )
    assert code == 2 and "'latin' is given twice (line 2)" in err, err
    truth = tmp_path / "t.json"
    truth.write_text('{"en": 0.5, "en": 0.5}', encoding="utf-8")
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "--truth", str(truth)))
    assert code == 2 and "'en' is given twice" in err and out == "", err


# -- outputs over or inside the inputs -----------------------------------------------------------------


def test_output_may_not_overwrite_the_manifest_nor_land_in_a_folder_it_names(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "m.json"
    text = json.dumps({"categories": {c: {"sources": [{"path": str(samples / c)}]} for c in ("en", "de")}})
    manifest.write_text(text, encoding="utf-8")
    code, _, err = cli(*infer_args(small_bpe_tokenizer_json, manifest, tmp_path, "-o", str(manifest)))
    assert code == 2 and "is an input of this run" in err, err
    assert manifest.read_text(encoding="utf-8") == text
    inside = samples / "de" / "result.json"
    code, _, err = cli(*infer_args(small_bpe_tokenizer_json, manifest, tmp_path, "-o", str(inside)))
    assert code == 2 and "inside the samples folder" in err and not inside.exists(), err
    code, _, err = cli("audit", str(small_bpe_tokenizer_json), "--samples", str(manifest), "--merges", "60",
                       "--no-cache", "-q", "-o", str(manifest), "--format", "csv")  # fmt: skip
    assert code == 2 and manifest.read_text(encoding="utf-8") == text, err


def test_pull_refuses_a_snapshot_inside_the_samples_it_reads(samples: Path) -> None:
    with pytest.raises(errors.UsageError, match="inside .* which this pull reads"):
        pull_samples(str(samples), samples / "snapshot", max_bytes=20_000)
    assert not (samples / "snapshot").exists()


def test_a_pulled_snapshot_reads_as_its_source_when_the_budget_ends_inside_a_character(
    tmp_path: Path,
) -> None:
    """The budget cut a 2-byte character: the source stopped there, the pull went on to the
    next file with the byte left over (one more document than the source)."""
    from mixinfer.sources import iter_documents, open_samples

    def documents(spec: Path) -> list[str]:
        (fr,) = [c for c in open_samples(str(spec)).categories() if c.name == "fr"]
        return list(iter_documents(fr, max_bytes=2001))

    src = tmp_path / "src"
    (src / "fr").mkdir(parents=True)
    (src / "fr" / "a.txt").write_text("x" * 1000 + "é" * 1000, encoding="utf-8")
    (src / "fr" / "b.txt").write_text("lorem ipsum " * 200, encoding="utf-8")
    record = pull_samples(str(src), tmp_path / "snap", max_bytes=2001)
    assert record["categories"]["fr"]["bytes"] == 2000 and record["categories"]["fr"]["documents"] == 1
    assert documents(src) == documents(tmp_path / "snap") == ["x" * 1000 + "é" * 500]


# -- what the reports say -------------------------------------------------------------------------------


def test_truth_categories_missing_from_the_samples_are_named(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    truth = tmp_path / "t.json"
    truth.write_text('{"en": 0.5, "de": 0.5, "xx": 0.2}', encoding="utf-8")
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "--truth", str(truth),
                                     "--format", "json"))  # fmt: skip
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    assert any("do not hold: xx (16.7% of it)" in w for w in warnings), warnings


def test_plot_refuses_a_truncated_or_short_report(tmp_path: Path) -> None:
    full = "tokenizer,category,group,proportion\ngpt,en,English,0.6\ngpt,de,Latin,0.3\ngpt,fr,Latin,0.1\n"
    cases = {
        "cut.csv": (full[:-3], "ends in the middle of a line"),
        "short.csv": (full.rsplit("gpt,fr", 1)[0], "sum to 0.9, not 1"),
        "missing.csv": (full + "neo,en,English,1.0\n", "'neo' has no proportion for de, fr"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        code, _, err = cli("plot", str(tmp_path / name), "-o", str(tmp_path / "p.png"))
        assert code == 2 and message in err and not (tmp_path / "p.png").exists(), (name, err)
    (tmp_path / "ok.csv").write_text(full, encoding="utf-8")
    code, _, err = cli("plot", str(tmp_path / "ok.csv"), "-o", str(tmp_path / "p.png"))
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 0, err
    code, _, err = cli("plot", str(tmp_path / "ok.csv"), "-o", str(tmp_path))
    assert code == 2 and "mixtures.png" in err, err


def test_audit_refuses_report_shapes_it_would_ignore(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    base = ["audit", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60", "-q",
            "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    code, _, err = cli(*base, "-o", str(tmp_path / "r.json"), "--wide")
    assert code == 2 and "--wide shapes the CSV report" in err, err
    code, _, err = cli(*base, "-o", str(tmp_path / "r.csv"), "--by", "group")
    assert code == 2 and "add --wide" in err and not (tmp_path / "r.csv").exists(), err
    # --wide alone asks for the CSV: on stdout, not the table.
    code, out, err = cli(*base, "--wide", "--by", "group")
    assert code == 0 and out.splitlines()[0].startswith("tokenizer,"), (out, err)


def test_a_dash_output_is_stdout(small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "-o", "-"))
    assert code == 0 and json.loads(out)["proportions"], err
    code, out, err = cli(
        *infer_args(small_bpe_tokenizer_json, samples, tmp_path, "-o", "-", "--format", "csv")
    )
    assert code == 0 and out.startswith("category,proportion"), err
    assert not (tmp_path / "-").exists()


def test_simulate_checks_the_baseline_prefix_and_names_only_its_own_options(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match="--baseline-merges 99999 is more than a vocabulary of 2000"):
        SimulationSettings(n=2, trials=1, vocab=2000, merges=300, baseline_merges=99999).validate()
    code, _, err = cli(
        "simulate", "--n", "2", "--vocab", "2000", "--merges", "300", "-o", str(tmp_path / "x.tsv")
    )
    assert code == 2 and "use .csv or .json" in err and "--format" not in err, err


# -- contract: exit codes and messages ------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--help"], ["infer", "--merges", "40", "--max-bytes", "100kB"]],
                         ids=["help", "table"])  # fmt: skip
def test_a_closed_stdout_gives_the_sigpipe_status_for_rich_output_too(
    args: list[str], tmp_path: Path
) -> None:
    """rich's own answer to a closed stdout was exit 1 (tables, typer's help)."""
    read, write = os.pipe()
    os.close(read)
    proc = subprocess.run(
        [sys.executable, "-c", "from mixinfer.cli import main; main()", *args, "--cache-dir", str(tmp_path)]
        if args[0] == "infer"
        else [sys.executable, "-c", "from mixinfer.cli import main; main()", *args],
        stdout=write, stderr=subprocess.PIPE, timeout=300,
    )  # fmt: skip
    os.close(write)
    assert proc.returncode == EXIT_BROKEN_PIPE, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr


def test_explain_refuses_an_edited_result_before_printing_anything(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    result = tmp_path / "r.json"
    code, _, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "-o", str(result)))
    assert code == 0, err
    data = json.loads(result.read_text(encoding="utf-8"))
    for name, edit in {
        "missing": lambda d: d["diagnostics"].pop("objective"),
        "wrong-type": lambda d: d["diagnostics"].update(objective="big"),
        "null": lambda d: d["diagnostics"].update(share=None),
    }.items():
        copy = json.loads(json.dumps(data))
        edit(copy)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(copy), encoding="utf-8")
        code, out, err = cli("explain", str(path))
        assert code == 2 and out == "" and "not as mixinfer writes them" in err, (name, err)
    code, out, err = cli("explain", str(result))
    assert code == 0 and "objective" in out, err
    code, _, err = cli("explain", str(tmp_path))
    assert code == 2 and "is a directory" in err, err


def test_a_malformed_dask_address_is_a_usage_error_even_when_the_cache_answers() -> None:
    assert valid_dask_address("tcp://127.0.0.1:8786") and valid_dask_address("10.0.0.5:8786")
    assert valid_dask_address("tcp://[::1]:8786") and not valid_dask_address("tcp://host")
    with pytest.raises(errors.UsageError, match="'bogus' is not a scheduler address"):
        Runtime.create(use_cache=False, dask="bogus")


def test_a_merge_no_category_explains_reads_as_such() -> None:
    diagnostics = {
        "unexplained_merges": [
            {
                "step": 3,
                "merge": ["a", "b"],
                "competitor": ["c", "d"],
                "slack": 1.0,
                "share": 0.5,
                "would_grow": [],
            }  # fmt: skip
        ]
    }
    (line,) = summary_lines(diagnostics)
    assert "no category of the samples would explain it" in line and "more no category" not in line


def test_audit_says_on_stderr_that_groups_name_absent_categories(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    code, out, err = audit_with_groups(
        small_bpe_tokenizer_json, samples, tmp_path / "g.csv", "en,English\nzz,Other\n"
    )
    assert code == 0 and "--groups names categories not in the samples: zz" in err, err
    assert "zz" not in out


def test_new_text_with_the_same_names_sizes_and_times_is_not_taken_for_the_old(
    small_bpe_tokenizer_json: Path, license_text: str, tmp_path: Path
) -> None:
    """Archives that fix file times (tar --mtime, reproducible builds) unpack new text of the
    same size under the same names and times: the cache returned the old answer, exit 0."""
    from mixinfer.sources import open_samples

    third = len(license_text) // 3
    versions = [license_text[:third], license_text[third : 2 * third]]
    samples = tmp_path / "s"

    def unpack(version: int) -> list[str]:
        for cat, text in (("en", versions[version]), ("de", versions[1 - version][:20_000])):
            (samples / cat).mkdir(parents=True, exist_ok=True)
            path = samples / cat / "00000.txt"
            path.unlink(missing_ok=True)
            time.sleep(0.05)  # past the clock tick of the file system's timestamps
            path.write_text(text[:20_000], encoding="utf-8")
            os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
        return [c.fingerprint() for c in open_samples(str(samples)).categories()]

    first = unpack(0)
    assert unpack(0) != first  # unpacked again: another inode change time, so not trusted
    second = unpack(1)
    sizes = {p.stat().st_size for p in samples.rglob("*.txt")}
    assert sizes == {20_000} and second != first
    answers = []
    for version in (0, 1):
        unpack(version)
        code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "-o", "-"))
        assert code == 0, err
        answers.append(json.loads(out)["proportions"])
    code, out, err = cli(*infer_args(small_bpe_tokenizer_json, samples, tmp_path, "-o", "-", "--no-cache"))
    assert answers[1] == json.loads(out)["proportions"] != answers[0]
