"""``qpc``: the operator's client; talks to the server over HTTP only."""

from __future__ import annotations

import typer

app = typer.Typer(help="Quipu operator client.", no_args_is_help=True)


@app.callback()
def _root() -> None:
    """Manage credentials, sources, scans, scan jobs, scanners and reports."""


def main() -> None:
    app()
