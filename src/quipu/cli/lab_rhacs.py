"""``quipu lab rhacs``: run the fake rhacs on loopback in the foreground."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``rhacs`` command to ``quipu lab``."""
