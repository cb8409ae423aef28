"""Nothing but the requested output reaches stdout (issue 11, item 3).

HiGHS prints a banner from C to file descriptor 1 when a ``Highs`` object is created. These tests
run real solves in a subprocess whose stdout is a pipe (so C's stdio is fully buffered, the case
where a banner would surface at exit) and compare the bytes that reached the pipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# A tiny two-category LP (pair 2 beats the first merge in category 1), solved for real.
LIBRARY_SOLVE = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from mixinfer.replay import Trace
    from mixinfer.solver import MixtureLP, solve

    def trace(counts):
        empty = np.zeros(0, dtype=np.int64)
        return Trace(2, np.array([1, 2]), np.array(counts), empty, empty, empty)

    BEFORE = os.environ.get("MARK_BEFORE", "")
    if BEFORE:
        print(BEFORE)                      # Python-buffered, must survive the redirection
    lp = MixtureLP([trace([50, 10]), trace([10, 50])], [10**6, 10**6], np.array([1, 3]))
    result, _ = solve(lp, solver=sys.argv[1])
    assert result.status == "optimal", result.status
    sys.stderr.write(f"alpha={result.proportions.tolist()}\\n")
    AFTER = os.environ.get("MARK_AFTER", "")
    if AFTER:
        os.write(1, AFTER.encode() + b"\\n")  # straight to the fd, after it is restored
    """
)


def _run_library(solver: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-c", LIBRARY_SOLVE, solver], capture_output=True, timeout=300, env=env
    )


@pytest.mark.parametrize("solver", ["highs", "cbc"])
def test_a_real_solve_writes_nothing_to_stdout(solver: str) -> None:
    proc = _run_library(solver)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"alpha=" in proc.stderr  # the solve really ran
    assert proc.stdout == b""


def test_output_around_a_solve_is_kept_in_order() -> None:
    proc = _run_library("highs", {"MARK_BEFORE": "before", "MARK_AFTER": "after"})
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"before\nafter\n"


def test_quiet_c_stdout_restores_fd_1_even_on_error() -> None:
    code = textwrap.dedent(
        """
        import os
        from mixinfer.solver import quiet_c_stdout
        try:
            with quiet_c_stdout():
                os.write(1, b"hidden\\n")
                with quiet_c_stdout():          # nested and re-entrant
                    os.write(1, b"hidden too\\n")
                raise KeyError("boom")
        except KeyError:
            pass
        os.write(1, b"visible\\n")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b"visible\n"


def test_quiet_c_stdout_copes_with_a_closed_stdout() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        os.close(1)
        from mixinfer.solver import new_highs
        h = new_highs()
        sys.stderr.write("constructed\\n")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"constructed" in proc.stderr


@pytest.fixture(scope="module")
def two_categories(tmp_path_factory: pytest.TempPathFactory, license_text: str) -> Path:
    """English licences and Python source, a few kB each."""
    root = tmp_path_factory.mktemp("stdout-samples")
    (root / "en").mkdir()
    (root / "code").mkdir()
    (root / "en" / "a.txt").write_text(license_text[:8000], encoding="utf-8")
    code = "".join(Path(m.__file__).read_text(encoding="utf-8") for m in (json, textwrap) if m.__file__)
    (root / "code" / "a.txt").write_text(code[:8000], encoding="utf-8")
    return root


def test_cli_json_on_stdout_parses(small_bpe_tokenizer_json: Path, two_categories: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from mixinfer.cli import main; main()",
         "infer", str(small_bpe_tokenizer_json), "--samples", str(two_categories),
         "--merges", "200", "--format", "json", "--no-cache"],
        capture_output=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    doc = json.loads(proc.stdout)
    assert set(doc["proportions"]) == {"en", "code"}
    assert doc["solver"]["status"] == "optimal"
