"""``quipu lab openshift``: run the fake OpenShift cluster on loopback in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from quipu.cli.foreground import refuse, serve_until_stopped
from quipu.lab.openshift import OPENSHIFT_VERSION, Behaviour, RunningOpenShift, running_openshift


def format_openshift(cluster: RunningOpenShift) -> str:
    """Where the fake cluster listens, how to log in, and the qpc commands that scan it."""
    host, port = cluster.host, cluster.port
    return "\n".join(
        [
            f"Fake OpenShift {OPENSHIFT_VERSION} is up at https://{host}:{port} "
            f"with {cluster.nodes} nodes (cluster {cluster.cluster_id})",
            f"  token:       {cluster.token}",
            f"  user:        {cluster.username}",
            f"  password:    {cluster.password}",
            f"  certificate: {cluster.cert_path} (self-signed)",
            "",
            "Next:",
            "  qpc cred add --name ocp --type openshift --token",
            f"    (or log in as oc login does: --username {cluster.username} --password)",
            f"  qpc source add --name ocp --type openshift --hosts {host} --port {port} "
            "--cred ocp --ssl-cert-verify false",
            "Stop it with Ctrl-C.",
        ]
    )


def register(app: typer.Typer) -> None:
    """Add the ``openshift`` command to ``quipu lab``."""

    @app.command()
    def openshift(
        nodes: Annotated[int, typer.Option(help="Nodes of the cluster.")] = 6,
        port: Annotated[
            int, typer.Option(help="HTTPS port on 127.0.0.1 (0: any free one).")
        ] = 6443,
        token: Annotated[
            str | None, typer.Option(help="The API token it accepts (default: a new one).")
        ] = None,
        username: Annotated[str, typer.Option(help="User who may log in (oc login).")] = (
            "kubeadmin"
        ),
        password: Annotated[
            str | None, typer.Option(help="Its password (default: a new random one, printed).")
        ] = None,
        latency_ms: Annotated[
            float, typer.Option(help="Milliseconds added to every answer, as a busy cluster.")
        ] = 0.0,
        page_size: Annotated[
            int, typer.Option(help="Most items per page of a listing (0: as asked).")
        ] = 0,
    ) -> None:
        """Run a fake OpenShift 4 cluster on 127.0.0.1 in the foreground, until Ctrl-C."""
        if nodes < 0 or not 0 <= port <= 65535 or latency_ms < 0 or page_size < 0:
            raise refuse(
                "--nodes, --latency-ms and --page-size must be at least 0, --port 0 to 65535."
            )
        cluster = running_openshift(
            nodes=nodes,
            port=port,
            token=token,
            username=username,
            password=password,
            behaviour=Behaviour(latency_s=latency_ms / 1000, page_size=page_size or None),
        )
        serve_until_stopped(
            cluster, port=port, describe=format_openshift, down="OpenShift is down."
        )
