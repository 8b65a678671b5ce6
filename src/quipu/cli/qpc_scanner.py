"""``qpc scanner``: register remote scanners, switch them on and off, drain them, replace
their keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from quipu.cli.qpc_common import fail, print_json
from quipu.cli.qpc_http import Api, connect

app = typer.Typer(help="Manage scanners.", no_args_is_help=True)

PATH = "/api/v1/scanners/"

Name = Annotated[str, typer.Option("--name", help="Scanner name.")]


def find_scanner(api: Api, *, name: str) -> dict[str, Any]:
    scanner = api.find(PATH, name=name)
    if scanner is None:
        fail(f'Scanner "{name}" does not exist.')
    return scanner


@app.command()
def add(
    name: Name,
    bind: Annotated[
        list[str] | None,
        typer.Option("--bind", help="IPs/CIDRs the scanner may fetch work from (default any)."),
    ] = None,
    max_probes_per_second: Annotated[
        float, typer.Option("--max-probes-per-second", help="Probe rate limit; 0 = none.")
    ] = 0,
) -> None:
    """Register a scanner; its API key is shown this once."""
    body = {"name": name, "bind": bind or [], "max_probes_per_second": max_probes_per_second}
    with connect() as api:
        scanner = api.request("POST", PATH, json=body)
    typer.echo(f'Scanner "{name}" was added.')
    typer.echo("Its API key, shown only now (quipu scanner run --api-key KEY):")
    typer.echo(scanner["api_key"])


@app.command("list")
def list_scanners() -> None:
    """List scanners as JSON."""
    with connect() as api:
        print_json(api.all(PATH))


@app.command()
def show(name: Name) -> None:
    """Show one scanner as JSON."""
    with connect() as api:
        print_json(find_scanner(api, name=name))


def _switch(name: str, *, action: str) -> None:
    with connect() as api:
        scanner = find_scanner(api, name=name)
        api.request("POST", f"{PATH}{scanner['id']}/{action}/")
    typer.echo(f'Scanner "{name}" was {action}d.')


@app.command()
def enable(name: Name) -> None:
    """Let a scanner take work again."""
    _switch(name, action="enable")


@app.command()
def disable(name: Name) -> None:
    """Stop a scanner from taking work; its requests are refused."""
    _switch(name, action="disable")


@app.command()
def drain(name: Name) -> None:
    """Give a scanner no new work; what it holds finishes."""
    with connect() as api:
        scanner = find_scanner(api, name=name)
        api.request("POST", f"{PATH}{scanner['id']}/drain/")
    typer.echo(f'Scanner "{name}" is draining: it takes no new work and finishes what it holds.')


@app.command()
def undrain(name: Name) -> None:
    """Let a draining scanner take new work again."""
    with connect() as api:
        scanner = find_scanner(api, name=name)
        api.request("POST", f"{PATH}{scanner['id']}/undrain/")
    typer.echo(f'Scanner "{name}" takes new work again.')


@app.command("rotate-key")
def rotate_key(name: Name) -> None:
    """Give a scanner a new API key; the old one stops working at once."""
    with connect() as api:
        scanner = find_scanner(api, name=name)
        rotated = api.request("POST", f"{PATH}{scanner['id']}/rotate-key/")
    typer.echo(f'Scanner "{name}" has a new API key; the old one no longer works:')
    typer.echo(rotated["api_key"])
