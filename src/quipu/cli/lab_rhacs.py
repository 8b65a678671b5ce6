"""``quipu lab rhacs``: run the fake RHACS Central on loopback in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from quipu.cli.foreground import refuse, serve_until_stopped
from quipu.lab.rhacs import CENTRAL_VERSION, Behaviour, RunningCentral, running_central


def format_central(central: RunningCentral) -> str:
    """Where the fake Central listens, its API token, and the qpc commands that scan it."""
    host, port = central.host, central.port
    return "\n".join(
        [
            f"Fake RHACS Central {CENTRAL_VERSION} is up at {central.url} "
            f"securing {central.clusters} clusters",
            f"  API token:   {central.token}",
            f"  certificate: {central.cert_path} (self-signed)",
            "",
            "Next:",
            "  qpc cred add --name acs --type rhacs --token",
            f"  qpc source add --name acs --type rhacs --hosts {host} --port {port} "
            "--cred acs --ssl-cert-verify false",
            "Stop it with Ctrl-C.",
        ]
    )


def register(app: typer.Typer) -> None:
    """Add the ``rhacs`` command to ``quipu lab``."""

    @app.command()
    def rhacs(
        clusters: Annotated[int, typer.Option(help="Secured clusters Central reports.")] = 3,
        port: Annotated[
            int, typer.Option(help="HTTPS port on 127.0.0.1 (0: any free one).")
        ] = 8444,
        token: Annotated[
            str | None, typer.Option(help="Its API token (default: a new random one, printed).")
        ] = None,
        latency_ms: Annotated[
            float, typer.Option(help="Milliseconds added to every answer, as a busy Central.")
        ] = 0.0,
    ) -> None:
        """Run a fake RHACS Central on 127.0.0.1 in the foreground, until Ctrl-C."""
        if clusters < 0 or not 0 <= port <= 65535 or latency_ms < 0:
            raise refuse("--clusters and --latency-ms must be at least 0, --port 0 to 65535.")
        central = running_central(
            clusters=clusters,
            port=port,
            token=token,
            behaviour=Behaviour(latency_s=latency_ms / 1000),
        )
        serve_until_stopped(
            central, port=port, describe=format_central, down="RHACS Central is down."
        )
