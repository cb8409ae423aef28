"""Progress reporting: library code calls a callback; only the CLI renders it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress update.

    Attributes:
        stage: ``"count"``, ``"replay"``, ``"solve"`` (or another stage name).
        done: work completed so far, in ``unit``.
        total: total work in ``unit`` when known, else ``None``.
        unit: what ``done``/``total`` count (``"bytes"``, ``"merges"``, ``"rounds"``).
        detail: short free text (e.g. the category being processed).
    """

    stage: str
    done: float
    total: float | None
    unit: str = ""
    detail: str = ""


ProgressCallback = Callable[[Progress], None]


def noop(_: Progress) -> None:
    """The default callback: ignore progress."""
