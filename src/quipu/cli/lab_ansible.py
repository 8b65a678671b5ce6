"""``quipu lab ansible``: run the fake AAP controller on loopback in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from quipu.cli.foreground import refuse, serve_until_stopped
from quipu.lab.ansible import (
    CONTROLLER_VERSION,
    Behaviour,
    Inventory,
    RunningController,
    running_controller,
)


def format_controller(controller: RunningController) -> str:
    """Where the fake controller listens, how to log in, and the qpc commands that scan it."""
    host, port, inventory = controller.host, controller.port, controller.inventory
    return "\n".join(
        [
            f"Fake AAP controller {CONTROLLER_VERSION} is up at https://{host}:{port}"
            f" with {inventory.hosts} inventory hosts and {inventory.jobs} jobs",
            f"  user:        {controller.username}",
            f"  password:    {controller.password}",
            f"  token:       {controller.token}",
            f"  certificate: {controller.cert_path} (self-signed)",
            "",
            "Next (a token, or --username with --password instead of --token):",
            "  qpc cred add --name aap --type ansible --token",
            f"  qpc source add --name aap --type ansible --hosts {host} --port {port} "
            "--cred aap --ssl-cert-verify false",
            "Stop it with Ctrl-C.",
        ]
    )


def register(app: typer.Typer) -> None:
    """Add the ``ansible`` command to ``quipu lab``."""

    @app.command()
    def ansible(
        hosts: Annotated[int, typer.Option(help="Hosts in the controller's inventory.")] = 50,
        retired_hosts: Annotated[
            int, typer.Option(help="Hosts jobs automated that left the inventory since.")
        ] = 5,
        jobs: Annotated[int, typer.Option(help="Jobs the controller ran.")] = 20,
        hosts_per_job: Annotated[int, typer.Option(help="Hosts each job ran on.")] = 10,
        port: Annotated[
            int, typer.Option(help="HTTPS port on 127.0.0.1 (0: any free one).")
        ] = 8445,
        username: Annotated[str, typer.Option(help="User of the controller's API.")] = "admin",
        password: Annotated[
            str | None, typer.Option(help="Its password (default: a new random one, printed).")
        ] = None,
        token: Annotated[
            str | None, typer.Option(help="Its API token (default: a new random one, printed).")
        ] = None,
        host_metrics: Annotated[
            bool,
            typer.Option(help="Serve host_metrics/ (--no-host-metrics: a controller before 4.4)."),
        ] = True,
        gateway: Annotated[
            bool, typer.Option(help="Serve the API under /api/controller/v2/ as AAP 2.5 does.")
        ] = False,
        latency_ms: Annotated[
            float, typer.Option(help="Milliseconds added to every answer, as a busy controller.")
        ] = 0.0,
    ) -> None:
        """Run a fake Ansible Automation Platform controller on 127.0.0.1 until Ctrl-C."""
        counts = (hosts, retired_hosts, jobs, hosts_per_job)
        if min(counts) < 0 or latency_ms < 0 or not 0 <= port <= 65535:
            raise refuse(
                "--hosts, --retired-hosts, --jobs, --hosts-per-job and --latency-ms must be at "
                "least 0, --port 0 to 65535."
            )
        inventory = Inventory(
            hosts=hosts, retired_hosts=retired_hosts, jobs=jobs, hosts_per_job=hosts_per_job
        )
        behaviour = Behaviour(
            host_metrics=host_metrics, gateway=gateway, latency_s=latency_ms / 1000
        )
        controller = running_controller(
            inventory=inventory,
            port=port,
            username=username,
            password=password,
            token=token,
            behaviour=behaviour,
        )
        serve_until_stopped(
            controller, port=port, describe=format_controller, down="AAP controller is down."
        )
