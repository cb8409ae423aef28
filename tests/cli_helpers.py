"""Helpers shared by the command-line tests (a plain module: pytest puts ``tests/`` on the path)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mixinfer.cli import app


def cli(*args: str) -> tuple[int, str, str]:
    """Run ``mixinfer ARGS`` in-process: (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def infer_args(tok: Path, samples: str | Path, tmp: Path, *extra: str) -> list[str]:
    """``infer`` at 60 merges over ``samples`` with a cache under ``tmp``, quietly, plus ``extra``."""
    return ["infer", str(tok), "--samples", str(samples), "--merges", "60", "--cache-dir", str(tmp / "c"),
            "-q", *extra]  # fmt: skip
