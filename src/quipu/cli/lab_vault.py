"""``quipu lab vault``: run the fake vault on loopback in the foreground."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``vault`` command to ``quipu lab``."""
