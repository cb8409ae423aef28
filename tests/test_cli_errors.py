"""Every bad input gets one clear error (issue 6): exit code, a message naming the problem, no
traceback and no output file; plus output formats, solver fallbacks and time limits (Ctrl-C:
test_interrupts.py)."""

from __future__ import annotations

import csv
import io
import json
import resource
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import mixinfer
from mixinfer import errors, solver
from mixinfer.cli import EXIT_CODES, EXIT_INTERRUPTED, app

PYLIB = Path("/root/.pyenv/versions/3.11.7/lib/python3.11")
CODE_FILES = ("textwrap.py", "shlex.py", "glob.py", "fnmatch.py")


def code_text(limit: int) -> str:
    text = ""
    for name in CODE_FILES:
        path = PYLIB / name
        if path.is_file():
            text += path.read_text(encoding="utf-8")
    return text[:limit]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> Path:
    """Two good categories: English licences and Python source (a few kB each)."""
    root = tmp_path_factory.mktemp("good-samples")
    (root / "en").mkdir()
    (root / "code").mkdir()
    (root / "en" / "a.txt").write_text(license_text[:6000], encoding="utf-8")
    (root / "code" / "a.txt").write_text(code_text(6000) or license_text[-6000:], encoding="utf-8")
    return root


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network socket fails the test loudly (local AF_UNIX sockets, which
    process pools use to talk to their workers, are not network access)."""
    real_socket = socket.socket

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args}")

    def local_only(family: Any = socket.AF_INET, *args: Any, **kwargs: Any) -> Any:
        if family != socket.AF_UNIX:
            refuse(family, *args)
        return real_socket(family, *args, **kwargs)

    monkeypatch.setattr(socket, "socket", local_only)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@dataclass
class Ctx:
    tmp: Path
    tok: Path
    samples: Path

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)
        return path

    def edited_tok(self, edit: Callable[[dict[str, Any]], object]) -> str:
        doc = json.loads(self.tok.read_text(encoding="utf-8"))
        edit(doc)
        return str(self.write("edited/tokenizer.json", json.dumps(doc, ensure_ascii=False)))

    def samples_with(self, files: dict[str, str | bytes], keep_good: bool = True) -> str:
        root = self.tmp / "samples"
        if keep_good:
            for cat in ("en", "code"):
                self.write(f"samples/{cat}/a.txt", (self.samples / cat / "a.txt").read_bytes())
        for rel, content in files.items():
            self.write(f"samples/{rel}", content)
        root.mkdir(exist_ok=True)
        return str(root)


# A case builds the arguments: (tokenizer, samples, extra options).
Setup = Callable[[Ctx], tuple[str, str, list[str]]]


def tok(make: Callable[[Ctx], str]) -> Setup:
    return lambda c: (make(c), str(c.samples), [])


def smp(make: Callable[[Ctx], str]) -> Setup:
    return lambda c: (str(c.tok), make(c), [])


def opts(*extra: str) -> Setup:
    return lambda c: (str(c.tok), str(c.samples), list(extra))


def hf_model(kind: str) -> Callable[[Ctx], str]:
    def make(c: Ctx) -> str:
        from tokenizers import Tokenizer, models

        model = (
            models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]")
            if kind == "WordPiece"
            else models.Unigram([("<unk>", 0.0), ("a", -1.0), ("b", -2.0)], 0)
        )
        path = c.tmp / kind / "tokenizer.json"
        path.parent.mkdir()
        Tokenizer(model).save(str(path))
        return str(path)

    return make


def unbuildable(doc: dict[str, Any]) -> None:
    # "ĠĠĠĠ" + "ĠĠĠĠ" as the very first merge: nothing has made "ĠĠĠĠ" yet.
    doc["model"]["merges"].insert(0, ["ĠĠĠĠ", "ĠĠĠĠ"])
    doc["model"]["vocab"].setdefault("ĠĠĠĠ", len(doc["model"]["vocab"]))
    doc["model"]["vocab"]["ĠĠĠĠĠĠĠĠ"] = len(doc["model"]["vocab"])


U, T, S, X = errors.UsageError, errors.TokenizerError, errors.SamplesError, errors.SolverError

BAD_INPUTS = [
    # tokenizer
    pytest.param(tok(lambda c: str(c.tmp / "nope" / "tokenizer.json")), T,
                 [r"nope/tokenizer\.json does not exist"], id="tokenizer-missing-path"),
    pytest.param(tok(lambda c: str(c.write("bad/tokenizer.json", "this is not JSON"))), T,
                 [r"bad/tokenizer\.json is not valid JSON"], id="tokenizer-not-json"),
    pytest.param(tok(lambda c: str(c.write("cut/tokenizer.json", c.tok.read_text()[:4000]))), T,
                 [r"cut/tokenizer\.json is not valid JSON", "truncated"],
                 id="tokenizer-truncated-json"),
    pytest.param(tok(hf_model("WordPiece")), T, [r"WordPiece/tokenizer\.json", "not BPE"],
                 id="tokenizer-wordpiece"),
    pytest.param(tok(hf_model("Unigram")), T, [r"Unigram/tokenizer\.json", "not BPE"],
                 id="tokenizer-unigram"),
    pytest.param(tok(lambda c: c.edited_tok(unbuildable)), T,
                 [r"edited/tokenizer\.json", r"merge #0 .*earlier merge"],
                 id="tokenizer-unbuildable-merge"),
    pytest.param(tok(lambda c: c.edited_tok(lambda d: d["model"].update(merges=[]))), T,
                 [r"edited/tokenizer\.json", "empty"], id="tokenizer-empty-merges"),
    pytest.param(tok(lambda c: str(c.write("x.tiktoken", "YWI= 0\nYWM= 1\n!!not-base64 2\n"))),
                 T, [r"x\.tiktoken, line 3", "not base64"], id="tiktoken-bad-line"),
    pytest.param(tok(lambda c: "tiktoken:nope_base"), T,
                 ["unknown tiktoken encoding 'nope_base'", "cl100k_base"],
                 id="tiktoken-unknown-name"),
    pytest.param(tok(lambda c: "acme/not-cached-anywhere"), errors.TokenizerNotFoundError,
                 ["acme/not-cached-anywhere", "offline", "not in the local Hugging Face cache"],
                 id="hub-offline-not-cached"),
    pytest.param(opts("--merges", "0"), U, ["--merges", "not 0"], id="merges-zero"),
    pytest.param(opts("--merges", "-5"), U, ["--merges", "not -5"], id="merges-negative"),
    # samples
    pytest.param(smp(lambda c: str(c.tmp / "no-such-dir")), S,
                 [r"no-such-dir does not exist", "--samples"], id="samples-missing-dir"),
    pytest.param(smp(lambda c: str(c.write("flat/a.txt", "text").parent)), S,
                 [r"flat has no category sub-directories"], id="samples-no-categories"),
    pytest.param(smp(lambda c: c.samples_with({"empty/a.txt": "", "empty/b.txt": ""})), S,
                 ["category 'empty' has no readable text"], id="samples-category-without-text"),
    pytest.param(smp(lambda c: c.samples_with({"bin/a.txt": b"\0" * 5000})), S,
                 ["category 'bin' has no readable text", "binary"],
                 id="samples-binary-only-category"),
    pytest.param(smp(lambda c: c.samples_with({"j/a.jsonl": '{"text": "ok"}\n{oops\n'})), S,
                 [r"j/a\.jsonl:2: not a JSON object"], id="samples-jsonl-not-json"),
    pytest.param(smp(lambda c: c.samples_with({"j/a.jsonl": '{"body": "no text field"}\n'})), S,
                 [r"j/a\.jsonl:1: record has no string field 'text'"],
                 id="samples-jsonl-without-text"),
    # options
    pytest.param(opts("--max-bytes", "lots"), U, ["--max-bytes 'lots' is not a size"],
                 id="max-bytes-not-a-size"),
    pytest.param(opts("--max-bytes", "0"), U, ["--max-bytes"], id="max-bytes-zero"),
    pytest.param(opts("--unit", "word"), U, ["--unit must be one of document, line, not 'word'"],
                 id="unit-unknown"),
    pytest.param(opts("--time-limit", "-1"), U, ["--time-limit"], id="time-limit-negative"),
    pytest.param(opts("--format", "xml"), U, ["--format 'xml'"], id="format-unknown"),
    pytest.param(opts("--format", "table"), U, ["--format table cannot be written to --output"],
                 id="format-table-to-file"),
    pytest.param(opts("--solver", "nope"), U, ["--solver must be auto, highs, cbc or pulp:NAME, not 'nope'"],
                 id="solver-unknown"),
    pytest.param(opts("--pretokenizer", "nope"), U, ["--pretokenizer must be a preset", "gpt2", "not 'nope'"],
                 id="pretokenizer-unknown"),
]  # fmt: skip


def base_args(c: Ctx, setup: Setup, output: Path) -> list[str]:
    tokenizer, samples_dir, extra = setup(c)
    return [
        "infer", tokenizer, "--samples", samples_dir, "--merges", "30", "--max-bytes", "6000",
        "--cache-dir", str(c.tmp / "cache"), "--output", str(output), *extra,
    ]  # fmt: skip


def assert_clean_failure(result: Result, code: int, patterns: list[str], output: Path) -> None:
    import re

    err = result.stderr
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}; stderr:\n{err}"
    assert "Traceback" not in err and "Traceback" not in result.stdout
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, f"wanted exactly one error line:\n{err}"
    for pattern in patterns:
        assert re.search(pattern, err), f"{pattern!r} not in stderr:\n{err}"
    assert not output.exists(), "a failed run left an output file"
    assert not list(output.parent.glob(f".{output.name}.*")), "a failed run left a temporary file"


@pytest.mark.parametrize(("setup", "error", "patterns"), BAD_INPUTS)
def test_bad_input_gives_one_clear_error(
    setup: Setup,
    error: type[errors.MixinferError],
    patterns: list[str],
    small_bpe_tokenizer_json: Path,
    samples: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: None,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken-cache"))
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    output = tmp_path / "out" / "out.json"
    result = CliRunner().invoke(app, base_args(c, setup, output))
    code = next(v for k, v in EXIT_CODES.items() if issubclass(error, k))
    assert_clean_failure(result, code, patterns, output)


def test_every_error_class_has_its_own_exit_code() -> None:
    codes = list(EXIT_CODES.values())
    assert len(set(codes)) == len(codes) and 0 not in codes and 1 not in codes
    assert EXIT_INTERRUPTED == 130
    for cls in EXIT_CODES:
        assert issubclass(cls, errors.MixinferError)


@pytest.mark.parametrize(
    ("setup", "code", "pattern"),
    [
        pytest.param(tok(lambda c: str(c.tmp / "nope.json")), 3, r"nope\.json does not exist",
                     id="tokenizer-missing-path"),
        pytest.param(smp(lambda c: str(c.tmp / "nowhere")), 4, r"nowhere does not exist",
                     id="samples-missing-dir"),
        pytest.param(opts("--merges", "0"), 2, r"--merges", id="merges-zero"),
        pytest.param(opts("--output", "x.txt"), 2, r"--output .*x\.txt", id="output-extension"),
    ],
)  # fmt: skip
def test_bad_input_in_a_real_process(
    setup: Setup, code: int, pattern: str, small_bpe_tokenizer_json: Path, samples: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    import re

    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    output = tmp_path / "out.json"
    args = base_args(c, setup, output)
    proc = subprocess.run(
        [sys.executable, "-m", "mixinfer.cli", *args], capture_output=True, text=True,
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and re.search(pattern, proc.stderr), proc.stderr
    assert not output.exists() and not (tmp_path / "x.txt").exists()


def test_debug_shows_the_traceback(small_bpe_tokenizer_json: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["infer", str(tmp_path / "nope.json"), "--debug"])
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "TokenizerNotFoundError" in result.stderr


def test_messages_are_not_read_as_markup(tmp_path: Path) -> None:
    # Paths with square brackets must be shown as they are, and never crash the error printer.
    for name in ("tok[v2].json", "tok[/].json", "tok[bold].json"):
        result = CliRunner().invoke(app, ["infer", str(tmp_path / name)])
        assert result.exit_code == 3, result.stderr
        assert name in result.stderr.replace("\n", "")


# --------------------------------------------------------------------------------------------------
# Inputs that succeed, with a warning or notice


def run_ok(c: Ctx, samples_dir: str, output: Path, *extra: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(app, [
        "infer", str(c.tok), "--samples", samples_dir, "--merges", "30", "--max-bytes", "6000",
        "--cache-dir", str(c.tmp / "cache"), "--output", str(output), *extra,
    ])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result, json.loads(output.read_text(encoding="utf-8"))


def test_binary_file_next_to_text_is_only_a_warning(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    root = c.samples_with({"en/0.txt": b"\x7fELF\x02\x01\x01\x00\x00" + bytes(range(256)) * 20})
    result, doc = run_ok(c, root, tmp_path / "out.json")
    assert "warning:" in result.stderr and "looks like a binary file" in result.stderr
    assert "0.txt" in result.stderr.replace("\n", "")
    assert any("0.txt: looks like a binary file" in w for w in doc["warnings"])
    assert set(doc["proportions"]) == {"en", "code"}


def test_invalid_utf8_is_replaced_and_counted_in_a_warning(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    root = c.samples_with({"en/0-latin1.txt": "Café, naïve, façade; Zürich.".encode("latin-1")})
    result, doc = run_ok(c, root, tmp_path / "out.json")
    assert "4 invalid UTF-8 byte sequence(s) replaced" in result.stderr
    assert any("latin1.txt: 4 invalid UTF-8" in w for w in doc["warnings"])


def test_unsupported_files_are_skipped_with_a_warning(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    root = c.samples_with({"code/build.sh": "rm -rf /", "code/notes.md": "# notes"})
    result, doc = run_ok(c, root, tmp_path / "out.json")
    assert result.stderr.count("not a sample file type") == 2


def test_a_single_category_is_trivially_100_percent(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    root = tmp_path / "one"
    c.write("one/only/a.txt", (samples / "en" / "a.txt").read_bytes())
    result, doc = run_ok(c, str(root), tmp_path / "out.json")
    assert doc["proportions"] == {"only": 1.0}
    assert doc["solver"]["status"] == "trivial"
    assert "trivially 100%" in result.stderr
    table = CliRunner().invoke(app, [
        "infer", str(c.tok), "--samples", str(root), "--merges", "30", "--max-bytes", "6000",
        "--cache-dir", str(tmp_path / "cache"),
    ])  # fmt: skip
    assert table.exit_code == 0 and "100.00%" in table.stdout and "only" in table.stdout


def test_a_huge_single_line_is_handled_in_bounded_memory(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path, license_text: str
) -> None:
    root = tmp_path / "samples"
    (root / "big").mkdir(parents=True)
    (root / "small").mkdir()
    (root / "small" / "a.txt").write_text(license_text[:5000], encoding="utf-8")
    words = " ".join(license_text[:200_000].split()).encode() + b" "
    size = 30 << 20
    with (root / "big" / "line.txt").open("wb") as fh:
        written = 0
        while written < size:
            fh.write(words)
            written += len(words)
    assert b"\n" not in words
    output = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mixinfer.cli", "infer", str(small_bpe_tokenizer_json),
         "--samples", str(root), "--merges", "20", "--no-cache", "-q", "-o", str(output)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(output.read_text())
    assert doc["samples"]["big"]["bytes"] >= size
    assert set(doc["proportions"]) == {"big", "small"}
    assert peak_kb < 2.5 * 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"


# --------------------------------------------------------------------------------------------------
# Output formats


def test_output_format_follows_the_extension(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    _, doc = run_ok(c, str(samples), tmp_path / "r.json")
    for key in ("proportions", "tokenizer", "merges_used", "solver", "timing"):
        assert key in doc
    for key in ("name", "status", "objective", "rounds", "constraints", "variables"):
        assert key in doc["solver"]
    assert doc["merges_used"] == 30 and doc["solver"]["status"] == "optimal"
    assert abs(sum(doc["proportions"].values()) - 1.0) < 1e-9
    values = list(doc["proportions"].values())
    assert values == sorted(values, reverse=True)

    runner = CliRunner()
    common = [
        "infer", str(c.tok), "--samples", str(samples), "--merges", "30", "--max-bytes", "6000",
        "--cache-dir", str(tmp_path / "cache"), "-q",
    ]  # fmt: skip
    assert runner.invoke(app, [*common, "--output", str(tmp_path / "r.CSV")]).exit_code == 0
    rows = list(csv.reader(io.StringIO((tmp_path / "r.CSV").read_text())))
    assert rows[0] == ["category", "proportion"]
    assert [r[0] for r in rows[1:]] == list(doc["proportions"])
    props = [float(r[1]) for r in rows[1:]]
    assert props == sorted(props, reverse=True) == values

    forced = runner.invoke(app, [*common, "--output", str(tmp_path / "r.txt"), "--format", "csv"])
    assert forced.exit_code == 0
    assert (tmp_path / "r.txt").read_text() == (tmp_path / "r.CSV").read_text()
    to_stdout = runner.invoke(app, [*common, "--format", "json"])
    assert to_stdout.exit_code == 0
    assert json.loads(to_stdout.stdout)["proportions"] == doc["proportions"]

    bad = runner.invoke(app, [*common, "--output", str(tmp_path / "r.yaml")])
    assert_clean_failure(bad, 2, [r"--output .*r\.yaml", r"\.json or \.csv"], tmp_path / "r.yaml")


def test_an_existing_output_file_is_kept_when_the_run_fails(
    small_bpe_tokenizer_json: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.json"
    output.write_text('{"previous": true}')
    result = CliRunner().invoke(app, [
        "infer", str(small_bpe_tokenizer_json), "--samples", str(tmp_path / "none"), "-o",
        str(output), "--cache-dir", str(tmp_path / "cache"),
    ])  # fmt: skip
    assert result.exit_code == 4
    assert output.read_text() == '{"previous": true}'


# --------------------------------------------------------------------------------------------------
# Solver


def test_without_highspy_the_solver_falls_back_to_cbc(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out.json"
    wrapper = "import sys; sys.modules['highspy'] = None; from mixinfer.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, "infer", str(small_bpe_tokenizer_json), "--samples",
         str(samples), "--merges", "30", "--max-bytes", "6000", "--no-cache", "-o", str(output)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "highspy is not installed" in proc.stderr and "CBC" in proc.stderr
    doc = json.loads(output.read_text())
    assert doc["solver"]["name"] == "pulp:cbc" and doc["solver"]["status"] == "optimal"
    assert any("highspy is not installed" in n for n in doc["notes"])
    # And --solver highs without highspy names the missing package and the pip command.
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, "infer", str(small_bpe_tokenizer_json), "--samples",
         str(samples), "--merges", "30", "--max-bytes", "6000", "--no-cache", "--solver", "highs",
         "-o", str(output.with_name("h.json"))],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == EXIT_CODES[errors.MissingDependencyError], proc.stderr
    assert "pip install highspy" in proc.stderr and "Traceback" not in proc.stderr
    assert not output.with_name("h.json").exists()


@pytest.mark.parametrize("backend", ["auto", "cbc"])
def test_a_time_limit_gives_the_best_proportions_so_far(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path, backend: str
) -> None:
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    result, doc = run_ok(
        c,
        str(samples),
        tmp_path / "out.json",
        "--time-limit",
        "0.001",
        "--solver",
        backend,
        "--merges",
        "200",
    )
    assert doc["solver"]["status"] == "time_limit"
    assert "time limit" in result.stderr and "warning:" in result.stderr
    assert any("time limit" in w for w in doc["warnings"])
    props = doc["proportions"]
    assert set(props) == {"en", "code"} and abs(sum(props.values()) - 1) < 1e-9
    assert all(0 <= p <= 1 for p in props.values())


class _StatusProxy:
    """A live HiGHS model that reports a chosen model status after solving."""

    def __init__(self, h: Any, status: Any) -> None:
        self._h = h
        self._status = status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._h, name)

    def getModelStatus(self) -> Any:  # noqa: N802 - the highspy name
        return self._status


def _two_category_lp() -> solver.MixtureLP:
    """A two-step, two-category LP: pair 2 beats the first merge (pair 1) in category 1."""
    from mixinfer.replay import Trace

    def trace(codes: list[int], counts: list[int]) -> Trace:
        empty = np.zeros(0, dtype=np.int64)
        return Trace(2, np.array(codes), np.array(counts), empty, empty, empty)

    return solver.MixtureLP([trace([1, 2], [5, 1]), trace([1, 2], [1, 5])], [10**6, 10**6], np.array([1, 3]))


@pytest.mark.parametrize("status", ["kInfeasible", "kUnbounded", "kUnboundedOrInfeasible"])
def test_highs_reporting_an_impossible_status_is_a_solver_error(status: str) -> None:
    import highspy

    lp = _two_category_lp()
    backend = solver.HighsBackend(lp)
    code = getattr(highspy.HighsModelStatus, status)
    backend.h = _StatusProxy(backend.h, code)
    segments, nodes, _ = lp.violations(np.array([0.5, 0.5]), np.zeros(lp.steps), np.zeros(lp.pairs))
    assert len(segments) > 0
    backend.add_rows(segments, nodes)
    with pytest.raises(errors.SolverError) as info:
        backend.solve(None)
    text = str(info.value)
    assert backend.h.modelStatusToString(code) in text
    assert "internal error" in text and "--debug" in text


@pytest.mark.parametrize("status", [-1, -2, -3])
def test_pulp_reporting_an_impossible_status_is_a_solver_error(
    status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pulp

    lp = _two_category_lp()
    backend = solver.PulpBackend(lp, "cbc")
    segments, nodes, _ = lp.violations(np.array([0.5, 0.5]), np.zeros(lp.steps), np.zeros(lp.pairs))
    backend.add_rows(segments, nodes)
    monkeypatch.setattr(pulp.LpProblem, "solve", lambda self, *a, **k: status)
    with pytest.raises(errors.SolverError, match=f"reported '{pulp.LpStatus[status]}'"):
        backend.solve(None)


def test_an_infeasible_lp_exits_with_the_solver_code(
    small_bpe_tokenizer_json: Path, samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import highspy

    real_solve = solver.HighsBackend.solve

    def infeasible(self: solver.HighsBackend, time_limit: float | None) -> Any:
        self.h = _StatusProxy(self.h, highspy.HighsModelStatus.kInfeasible)
        return real_solve(self, time_limit)

    monkeypatch.setattr(solver.HighsBackend, "solve", infeasible)
    c = Ctx(tmp_path, small_bpe_tokenizer_json, samples)
    output = tmp_path / "out.json"
    result = CliRunner().invoke(app, base_args(c, opts(), output))
    assert_clean_failure(result, EXIT_CODES[errors.SolverError], ["internal error",
                         "HiGHS reported 'Infeasible'"], output)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# No network for local inputs; nothing from an input file is executed


@pytest.fixture
def planted(tmp_path: Path, small_bpe_tokenizer_json: Path, samples: Path) -> Iterator[Path]:
    """A tokenizer directory and samples holding Python files that would leave a marker if run."""
    marker = tmp_path / "EXECUTED"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    tokdir = tmp_path / "tok"
    tokdir.mkdir()
    (tokdir / "tokenizer.json").write_bytes(small_bpe_tokenizer_json.read_bytes())
    for name in ("__init__.py", "sitecustomize.py", "tokenizer.py", "setup.py"):
        (tokdir / name).write_text(payload)
    root = tmp_path / "samples"
    for cat in ("en", "code"):
        (root / cat).mkdir(parents=True)
        (root / cat / "a.txt").write_bytes((samples / cat / "a.txt").read_bytes())
        (root / cat / "run_me.py").write_text(payload)
        (root / cat / "__init__.py").write_text(payload)
    (root / "code" / "b.jsonl").write_text(json.dumps({"text": payload, "__import__": "os"}) + "\n")
    yield marker
    assert not marker.exists(), "code from an input file was executed"


def test_local_inference_uses_no_network_and_runs_nothing(
    planted: Path, tmp_path: Path, no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.chdir(tmp_path / "tok")
    result = mixinfer.infer(
        tmp_path / "tok", tmp_path / "samples", merges=40, max_bytes=6000, workers=1,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert set(result.proportions) == {"en", "code"}
    assert sum("not a sample file type" in w for w in result.warnings) == 4
    again = mixinfer.infer(
        tmp_path / "tok" / "tokenizer.json", tmp_path / "samples", merges=40, max_bytes=6000,
        workers=1, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    assert again.proportions == result.proportions


def test_the_cli_on_local_files_uses_no_network(planted: Path, tmp_path: Path, no_network: None) -> None:
    output = tmp_path / "out.json"
    result = CliRunner().invoke(app, [
        "infer", str(tmp_path / "tok"), "--samples", str(tmp_path / "samples"), "--merges", "40",
        "--max-bytes", "6000", "--no-cache", "-o", str(output),
    ])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(output.read_text())["solver"]["status"] == "optimal"


# --------------------------------------------------------------------------------------------------
# Mutated merge lists through the whole pipeline (tests/test_tokenizer.py covers loading alone)


@st.composite
def mutated_merge_lists(draw: st.DrawFn, base: str) -> str:
    doc = json.loads(base)
    merges: list[Any] = doc["model"]["merges"]
    vocab: dict[str, int] = doc["model"]["vocab"]
    tokens = sorted(vocab)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop", "swap", "repeat", "retarget", "truncate", "self",
                                   "pretokenizer", "no-vocab-entry"]))  # fmt: skip
        i = draw(st.integers(0, len(merges) - 1)) if merges else 0
        j = draw(st.integers(0, len(merges) - 1)) if merges else 0
        if op == "drop" and merges:
            merges.pop(i)
        elif op == "swap" and merges:
            merges[i], merges[j] = merges[j], merges[i]
        elif op == "repeat" and merges:
            merges.insert(j, list(merges[i]))
        elif op == "retarget" and merges:
            merges[i] = [merges[i][0], draw(st.sampled_from(tokens))]
            vocab.setdefault("".join(merges[i]), len(vocab))
        elif op == "truncate":
            del merges[draw(st.integers(1, max(1, len(merges)))) :]
        elif op == "self" and merges:
            tok_ = draw(st.sampled_from(tokens))
            merges.insert(i, [tok_, tok_])
            vocab.setdefault(tok_ + tok_, len(vocab))
        elif op == "pretokenizer":
            doc["pre_tokenizer"] = draw(st.sampled_from([
                None, {"type": "Whitespace"}, {"type": "ByteLevel", "add_prefix_space": True},
                {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"},
                {"type": "Digits", "individual_digits": True}, {"type": "Bogus"},
            ]))  # fmt: skip
        elif op == "no-vocab-entry" and merges:
            vocab.pop("".join(merges[i]), None)
    return json.dumps(doc, ensure_ascii=False)


@pytest.fixture(scope="module")
def tiny_tokenizer_text(small_bpe_tokenizer_json: Path) -> str:
    doc = json.loads(small_bpe_tokenizer_json.read_text(encoding="utf-8"))
    merges = doc["model"]["merges"][:60]
    keep = {"".join(m) for m in merges} | {t for m in merges for t in m}
    doc["model"]["merges"] = merges
    doc["model"]["vocab"] = {t: i for t, i in doc["model"]["vocab"].items() if i < 256 or t in keep}
    return json.dumps(doc, ensure_ascii=False)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_mutated_merge_lists_succeed_or_fail_cleanly_end_to_end(
    data: st.DataObject, tiny_tokenizer_text: str, samples: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    text = data.draw(mutated_merge_lists(tiny_tokenizer_text))
    path = tmp_path_factory.mktemp("mutated-merges") / "tokenizer.json"
    path.write_text(text, encoding="utf-8")
    try:
        result = mixinfer.infer(
            path, samples, merges=40, max_bytes=3000, workers=1, use_cache=False, offline=True
        )
    except errors.MixinferError as exc:
        assert str(exc)
    else:
        assert set(result.proportions) == {"en", "code"}
        assert abs(sum(result.proportions.values()) - 1) < 1e-6
        assert result.solver["status"] == "optimal"


def test_python_dash_m_runs_the_command_with_its_exit_codes(tmp_path: Path) -> None:
    """``python -m mixinfer`` is the ``mixinfer`` command (same output, same exit codes)."""
    ok = subprocess.run([sys.executable, "-m", "mixinfer", "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("mixinfer ")
    bad = subprocess.run(
        [sys.executable, "-m", "mixinfer", "infer", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == EXIT_CODES[errors.TokenizerError] and bad.stdout == ""
    assert "missing.json" in bad.stderr
