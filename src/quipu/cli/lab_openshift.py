"""``quipu lab openshift``: run the fake openshift on loopback in the foreground."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``openshift`` command to ``quipu lab``."""
