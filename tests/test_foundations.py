"""The options object, the cache keys module, the stages and the CLI layer over them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mixinfer
from mixinfer import keys, stages
from mixinfer.cache import Cache
from mixinfer.cli import EXIT_BROKEN_PIPE, EXIT_CODES, app, check_output
from mixinfer.errors import UsageError
from mixinfer.options import DEFAULT_MERGES, OptionError, Options, Runtime
from mixinfer.pretokenizers import PRESETS
from mixinfer.samples import discover
from mixinfer.tokenizer import load_tokenizer

USAGE = EXIT_CODES[UsageError]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> Path:
    """Two categories of real English, cut differently so they differ."""
    root = tmp_path_factory.mktemp("samples")
    for name, text in (("a", license_text[:8000]), ("b", license_text[20000:28000])):
        (root / name).mkdir()
        (root / name / "x.txt").write_text(text, encoding="utf-8")
    return root


# -- options -----------------------------------------------------------------------------------


def test_options_defaults_are_the_documented_ones() -> None:
    o = Options()
    assert o.merges == DEFAULT_MERGES == 30000
    assert (o.unit, o.normalize, o.solver, o.clean, o.start_merge) == ("document", "pairs", "auto", True, 0)
    with pytest.raises(FrozenInstanceError):
        o.merges = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"merges": 0}, "merges"),
        ({"merges": -3}, "merges"),
        ({"merges": True}, "merges"),
        ({"merges": 2.5}, "merges"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"unit": "word"}, "unit"),
        ({"normalize": "tokens"}, "normalize"),
        ({"solver": "gurobi"}, "solver"),
        ({"solver": "pulp:"}, "solver"),
        ({"time_limit": 0}, "time_limit"),
        ({"time_limit": float("nan")}, "time_limit"),
        ({"time_limit": float("inf")}, "time_limit"),
        ({"start_merge": -1}, "start_merge"),
        ({"merges": 10, "start_merge": 10}, "start_merge"),
        ({"pretokenizer": "nope"}, "pretokenizer"),
    ],
)
def test_a_bad_option_is_rejected_by_name(changes: dict[str, object], option: str) -> None:
    with pytest.raises(OptionError) as info:
        Options(**changes)  # type: ignore[arg-type]
    assert info.value.option == option
    assert isinstance(info.value, UsageError)
    assert str(info.value).startswith(option + " ")


def test_every_preset_is_a_valid_pretokenizer_option() -> None:
    for name in PRESETS:
        assert Options(pretokenizer=name).pretokenizer == name


def test_infer_takes_options_or_keywords_but_not_both(small_bpe_tokenizer_json: Path, samples: Path) -> None:
    with pytest.raises(TypeError, match="merges"):
        mixinfer.infer(small_bpe_tokenizer_json, samples, options=Options(merges=20), merges=30)


def test_runtime_rejects_bad_workers() -> None:
    with pytest.raises(OptionError, match="workers"):
        Runtime(workers=0)


# -- keys --------------------------------------------------------------------------------------


def test_word_count_keys_cover_the_engine_versions(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = discover(samples)[0]
    before = keys.words_key(cat, PRESETS["gpt2"], 1000, "document")
    monkeypatch.setattr(keys, "engine_versions", lambda: ("99.0.0", "2099.1.1"))
    assert keys.words_key(cat, PRESETS["gpt2"], 1000, "document") != before


def test_the_merge_prefix_key_is_computed_once_per_tokenizer(
    small_bpe_tokenizer_json: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = load_tokenizer(small_bpe_tokenizer_json)
    calls = []
    original = type(tok).merges_fingerprint

    def counting(self: object, count: int | None = None) -> str:
        calls.append(count)
        return original(self, count)  # type: ignore[arg-type]

    monkeypatch.setattr(type(tok), "merges_fingerprint", counting)
    first = keys.merges_key(tok, 100)
    assert [keys.trace_key(str(i), tok, 100) for i in range(20)]
    assert keys.merges_key(tok, 100) == first
    assert calls == [100]
    # A different prefix or a different merge list is a different key.
    assert keys.merges_key(tok, 99) != first
    from dataclasses import replace

    other = replace(tok, merges=list(reversed(tok.merges)))
    assert keys.merges_key(other, 100) != first


def test_no_module_but_keys_and_cache_builds_keys() -> None:
    """Cache keys are built in one module: nothing else calls make_key."""
    root = Path(mixinfer.__file__).parent
    offenders = [
        p.name
        for p in root.glob("*.py")
        if p.name not in ("keys.py", "cache.py") and "make_key(" in p.read_text(encoding="utf-8")
    ]
    assert offenders == []


# -- stages ------------------------------------------------------------------------------------


def test_the_stages_compose_to_infer(small_bpe_tokenizer_json: Path, samples: Path) -> None:
    options = Options(merges=60)
    runtime = Runtime(cache=Cache(None))
    tok = stages.load(small_bpe_tokenizer_json, options)
    prepared = stages.prepare(tok, options)
    _, categories = stages.samples(samples)
    counted = stages.count(categories, prepared.tok.pretokenizer, options, runtime)
    traces = stages.replay(counted, prepared, runtime)
    solution = stages.solve(traces, counted, prepared, options, runtime)
    assert set(solution.proportions) == {"a", "b"}
    assert sum(solution.proportions.values()) == pytest.approx(1.0)
    whole = mixinfer.infer(small_bpe_tokenizer_json, samples, options=options, use_cache=False)
    assert whole.proportions == pytest.approx(solution.proportions, abs=1e-9)


def test_a_malformed_truth_file_beside_the_tokenizer_is_only_a_warning(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(small_bpe_tokenizer_json.read_bytes())
    (folder / "truth.json").write_text("{not json", encoding="utf-8")
    result = mixinfer.infer(folder / "tokenizer.json", samples, merges=40, use_cache=False)
    assert result.truth is None
    assert any("truth.json" in w and "ignored" in w for w in result.warnings)
    # Given explicitly, the same file is an error naming it.
    with pytest.raises(UsageError, match="truth"):
        mixinfer.infer(
            folder / "tokenizer.json", samples, merges=40, use_cache=False, truth=folder / "truth.json"
        )


# -- CLI ---------------------------------------------------------------------------------------


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"mixinfer {mixinfer.__version__}"


def test_help_shows_real_defaults_and_the_presets() -> None:
    result = CliRunner().invoke(app, ["infer", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "default: 30000" in text
    assert "default: pairs" in text
    assert "default: (the bundled samples)" in text
    for name in PRESETS:
        assert name in text


@pytest.mark.parametrize(
    "where",
    ["tokenizer", "truth", "directory", "empty", "under-a-file", "inside-samples"],
)
def test_output_that_would_destroy_input_is_refused_before_any_work(
    where: str, small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    tok = tmp_path / "tok.json"
    tok.write_bytes(small_bpe_tokenizer_json.read_bytes())
    truth = tmp_path / "truth.json"
    truth.write_text('{"a": 0.5, "b": 0.5}', encoding="utf-8")
    (tmp_path / "plain").write_text("x", encoding="utf-8")
    output = {
        "tokenizer": str(tok),
        "truth": str(truth),
        "directory": str(tmp_path),
        "empty": "",
        "under-a-file": str(tmp_path / "plain" / "out.json"),
        "inside-samples": str(samples / "a" / "result.json"),
    }[where]
    before = {p: p.read_bytes() for p in (tok, truth)}
    cache = tmp_path / "cache"
    args = ["infer", str(tok), "--samples", str(samples), "--merges", "40", "--cache-dir", str(cache)]
    result = CliRunner().invoke(app, [*args, "--truth", str(truth), "-o", output])
    assert result.exit_code == USAGE, result.stderr
    assert "error: --output" in result.stderr and "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in before} == before
    assert not (samples / "a" / "result.json").exists()
    assert not cache.exists(), "no work may start before the output is checked"


def test_check_output_accepts_a_new_file_in_a_new_folder(tmp_path: Path) -> None:
    assert check_output(tmp_path / "new" / "r.json", inputs=[tmp_path / "x"]) == tmp_path / "new" / "r.json"


def test_quiet_leaves_stderr_empty_on_success(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    out = tmp_path / "r.json"
    args = ["infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "40"]
    result = CliRunner().invoke(app, [*args, "--no-cache", "-q", "-o", str(out)])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert json.loads(out.read_text(encoding="utf-8"))["proportions"]
    # Table output with --quiet: still nothing on stderr.
    result = CliRunner().invoke(app, [*args, "--no-cache", "-q"])
    assert result.exit_code == 0 and result.stderr == ""
    assert "Inferred training mixture" in result.stdout


def _cli(*args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    code = "from mixinfer.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, timeout=300, **kw)  # type: ignore[call-overload,no-any-return]


def test_json_on_stdout_parses_and_stdout_holds_nothing_else(
    small_bpe_tokenizer_json: Path, samples: Path
) -> None:
    proc = _cli("infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "60",
                "--no-cache", "--format", "json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert data["solver"]["status"] == "optimal" and data["solver"]["rounds"] >= 1


def test_a_closed_stdout_exits_quietly(small_bpe_tokenizer_json: Path, samples: Path) -> None:
    """``mixinfer ... | head -c 10``: the reader goes away; no traceback, the SIGPIPE status."""
    code = "from mixinfer.cli import main; main()"
    args = ["infer", str(small_bpe_tokenizer_json), "--samples", str(samples), "--merges", "40", "--no-cache",
            "--format", "csv", "-q"]  # fmt: skip
    read, write = os.pipe()
    os.close(read)  # the reader is already gone
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], stdout=write, stderr=subprocess.PIPE, timeout=300
    )
    os.close(write)
    assert proc.returncode == EXIT_BROKEN_PIPE, proc.stderr.decode()
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr


def test_infer_without_a_tokenizer_runs_the_bundled_demo(tmp_path: Path) -> None:
    """From any directory, `mixinfer infer` alone runs the bundled demo against the bundled samples."""
    proc = _cli("infer", "--merges", "200", "--max-bytes", "200kB", "--cache-dir", str(tmp_path / "c"),
                "--format", "json", "-q", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert len(data["proportions"]) > 5
    assert data["truth"]["log10_mse"] < -1


def test_the_readme_library_example_runs(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    """The README's stage-by-stage example is real code: run it on a small tokenizer and samples."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("As a library:\n\n```python\n", 1)[1].split("```", 1)[0]
    code = (
        block.replace('"tokenizer.json"', repr(str(small_bpe_tokenizer_json)))
        .replace('"samples/"', repr(str(samples)))
        .replace('"/tmp/mixinfer-cache"', repr(str(tmp_path / "cache")))
        .replace("merges=3000", "merges=80")
        .replace('mixinfer.load_tokenizer("tiktoken:cl100k_base")', "None")
    )
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    result = scope["result"]
    assert isinstance(result, mixinfer.InferenceResult)
    assert result.proportions == pytest.approx(scope["solution"].proportions)  # type: ignore[attr-defined]


def test_dask_and_url_samples_give_the_same_answer(small_bpe_tokenizer_json: Path, samples: Path) -> None:
    """--dask local (a LocalCluster) and a file:// URL as --samples change how, never what."""
    pytest.importorskip("distributed")
    base = ["infer", str(small_bpe_tokenizer_json), "--merges", "60", "--no-cache", "--format", "csv", "-q"]
    plain = CliRunner().invoke(app, [*base, "--samples", str(samples)])
    assert plain.exit_code == 0, plain.stderr
    url = CliRunner().invoke(app, [*base, "--samples", samples.as_uri()])
    assert url.exit_code == 0, url.stderr
    assert url.stdout == plain.stdout
    dask = CliRunner().invoke(app, [*base, "--samples", str(samples), "--dask", "local", "--workers", "2"])
    assert dask.exit_code == 0, dask.stderr
    assert dask.stdout == plain.stdout


def test_a_runtime_shares_and_closes_its_executor() -> None:
    closed = []

    class Pool:
        def close(self) -> None:
            closed.append(True)

    from mixinfer import executors

    executors.register_executor("test-pool", lambda workers, **o: Pool())
    with Runtime(executor="test-pool") as rt:
        first = rt.pool()
        assert rt.with_progress(lambda e: None).pool() is first
    assert closed == [True]
    assert Runtime().pool() == "auto"


def test_a_budget_too_small_for_one_character_says_so(small_bpe_tokenizer_json: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s"
    for name, text in (("greek", "αβγδ " * 100), ("en", "plain text " * 100)):
        (samples / name).mkdir(parents=True)
        (samples / name / "a.txt").write_text(text, encoding="utf-8")
    args = [
        "infer",
        str(small_bpe_tokenizer_json),
        "--samples",
        str(samples),
        "--max-bytes",
        "1",
        "--no-cache",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_CODES[mixinfer.SamplesError]
    assert "--max-bytes 1 is too small" in result.stderr and "Traceback" not in result.stderr
