"""``quipu lab ansible``: run the fake ansible on loopback in the foreground."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``ansible`` command to ``quipu lab``."""
