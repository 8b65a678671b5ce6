"""``quipu lab``: start and stop the lab of real sshd hosts on loopback addresses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quipu.cli import lab_ansible, lab_openshift, lab_rhacs, lab_vault
from quipu.cli.foreground import log_to_stderr, refuse, serve_until_stopped, stop_on_signals
from quipu.domain.errors import QuipuError
from quipu.lab import Lab, lab_down, lab_up
from quipu.lab.satellite import SATELLITE_VERSION, Behaviour, RunningSatellite, running_satellite
from quipu.lab.vcenter import Model, Vcsim, running_vcsim
from quipu.settings import Settings

app = typer.Typer(
    help="Real OpenSSH hosts on loopback addresses, for demos, tests and benchmarks.",
    no_args_is_help=True,
)


def _root() -> Path:
    return Settings.from_env().data_dir / "lab"


def _fail(error: QuipuError) -> typer.Exit:
    typer.echo(f"Error: {error}", err=True)
    return typer.Exit(1)


def _host_range(lab: Lab, *, slow: bool) -> str:
    """The hosts in the bracket form ``qpc source add --hosts`` takes."""
    addresses = [host.address for host in lab.hosts if host.slow == slow]
    prefix = addresses[0].rsplit(".", 1)[0]
    first, last = (int(address.rsplit(".", 1)[1]) for address in (addresses[0], addresses[-1]))
    return f"{prefix}.{first}" if first == last else f"{prefix}.[{first}:{last}]"


def format_lab(lab: Lab) -> str:
    """The hosts of ``lab`` and the commands an operator runs next."""
    port = lab.hosts[0].port
    lines = [f"Lab is up in {lab.root}" + ("" if lab.namespaces else " (shared identity)")]
    for host in lab.hosts:
        if host.slow:
            lines.append(f"  {host.address}:{host.port}  (slow: accepts TCP, never answers SSH)")
        else:
            lines.append(f"  {host.address}:{host.port}  {host.hostname}  {host.machine_id}")
    lines += [
        "",
        f"sudo user:     {lab.sudo_user}  key {lab.sudo_key_path}",
        f"password user: {lab.password_user}  password {lab.password}",
        "",
        "Next:",
        f"  qpc cred add --name lab-sudo --type network --username {lab.sudo_user} "
        f"--sshkeyfile {lab.sudo_key_path}",
        f"  qpc source add --name lab --type network --hosts {_host_range(lab, slow=False)} "
        f"--port {port} --cred lab-sudo",
    ]
    if any(host.slow for host in lab.hosts):
        lines.append(
            f"  (slow hosts: {_host_range(lab, slow=True)}; add them to a source to see timeouts)"
        )
    lines.append("Stop it with: quipu lab down")
    return "\n".join(lines)


@app.command()
def up(
    hosts: Annotated[int, typer.Option(help="Number of sshd hosts (1-250).")] = 3,
    net: Annotated[str, typer.Option(help="First three octets of the hosts' addresses.")] = (
        "127.0.100"
    ),
    port: Annotated[int, typer.Option(help="Port every host listens on.")] = 2222,
    slow: Annotated[
        int, typer.Option(help="Extra hosts that accept TCP and never answer SSH.")
    ] = 0,
) -> None:
    """Start the lab: one sshd per host, each with its own hostname and machine id."""
    log_to_stderr()
    try:
        lab = lab_up(root=_root(), hosts=hosts, net=net, port=port, slow=slow)
    except QuipuError as error:
        raise _fail(error) from None
    typer.echo(format_lab(lab))


@app.command()
def down() -> None:
    """Stop every lab process and remove the lab directory (nothing to do if none is up)."""
    log_to_stderr()
    try:
        root = _root()
        lab_down(root=root)
    except QuipuError as error:
        raise _fail(error) from None
    typer.echo("Lab is down.")


def format_satellite(satellite: RunningSatellite) -> str:
    """Where the fake Satellite listens, how to log in, and the qpc commands that scan it."""
    host, port = satellite.host, satellite.port
    return "\n".join(
        [
            f"Fake Satellite {SATELLITE_VERSION} is up at https://{host}:{port} "
            f"with {satellite.hosts} hosts",
            f"  user:        {satellite.username}",
            f"  password:    {satellite.password}",
            f"  certificate: {satellite.cert_path} (self-signed)",
            "",
            "Next:",
            f"  qpc cred add --name sat --type satellite --username {satellite.username} "
            "--password",
            f"  qpc source add --name sat --type satellite --hosts {host} --port {port} "
            "--cred sat --ssl-cert-verify false",
            "Stop it with Ctrl-C.",
        ]
    )


@app.command()
def satellite(
    hosts: Annotated[int, typer.Option(help="Hosts the Satellite manages.")] = 100,
    port: Annotated[int, typer.Option(help="HTTPS port on 127.0.0.1 (0: any free one).")] = 8443,
    username: Annotated[str, typer.Option(help="User of the Satellite API.")] = "admin",
    password: Annotated[
        str | None, typer.Option(help="Its password (default: a new random one, printed).")
    ] = None,
    latency_ms: Annotated[
        float, typer.Option(help="Milliseconds added to every answer, as a busy Satellite.")
    ] = 0.0,
) -> None:
    """Run a fake Red Hat Satellite 6 on 127.0.0.1 in the foreground, until Ctrl-C."""
    if hosts < 0 or not 0 <= port <= 65535 or latency_ms < 0:
        raise refuse("--hosts and --latency-ms must be at least 0, --port 0 to 65535.")
    satellite = running_satellite(
        hosts=hosts,
        port=port,
        username=username,
        password=password,
        behaviour=Behaviour(latency_s=latency_ms / 1000),
    )
    serve_until_stopped(satellite, port=port, describe=format_satellite, down="Satellite is down.")


def format_vcsim(vcsim: Vcsim) -> str:
    """Where the simulated vCenter listens, how to log in, and the qpc commands that scan it."""
    certificate = "self-signed certificate" if vcsim.tls else "plain HTTP"
    lines = [
        f"Simulated vCenter is up at {vcsim.url} ({certificate}) with {vcsim.vm_count} VMs "
        f"and {vcsim.host_count} ESXi hosts",
        f"  user:     {vcsim.username}",
        f"  password: {vcsim.password}",
        "",
        "Next:",
        f"  qpc cred add --name vc --type vcenter --username {vcsim.username} --password",
        f"  qpc source add --name vc --type vcenter --hosts {vcsim.host} --port {vcsim.port} "
        "--cred vc " + ("--ssl-cert-verify false" if vcsim.tls else "--disable-ssl true"),
        "Stop it with Ctrl-C.",
    ]
    return "\n".join(lines)


@app.command()
def vcenter(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).")] = 8989,
    username: Annotated[str, typer.Option(help="The only user it accepts.")] = "user",
    password: Annotated[str, typer.Option(help="That user's password.")] = "pass",
    datacenters: Annotated[int, typer.Option(help="Datacenters.")] = 1,
    clusters: Annotated[int, typer.Option(help="Clusters per datacenter.")] = 1,
    hosts: Annotated[int, typer.Option(help="ESXi hosts per cluster.")] = 3,
    standalone_hosts: Annotated[
        int, typer.Option(help="Standalone ESXi hosts per datacenter.")
    ] = 1,
    vms: Annotated[int, typer.Option(help="VMs per cluster and per standalone host.")] = 10,
    tls: Annotated[bool, typer.Option(help="Serve HTTPS (self-signed) rather than HTTP.")] = True,
) -> None:
    """Run a simulated vCenter (govmomi's vcsim) on 127.0.0.1 in the foreground, until Ctrl-C."""
    log_to_stderr()
    sizes = (datacenters, clusters, hosts, standalone_hosts, vms)
    if min(sizes) < 0 or not 0 <= port <= 65535:
        typer.echo("Error: the inventory sizes must be at least 0, --port 0 to 65535.", err=True)
        raise typer.Exit(1)
    model = Model(
        datacenters=datacenters,
        clusters=clusters,
        hosts_per_cluster=hosts,
        standalone_hosts=standalone_hosts,
        vms=vms,
    )
    try:
        with (
            stop_on_signals() as stopped,
            running_vcsim(
                model=model, port=port, username=username, password=password, tls=tls
            ) as running,
        ):
            typer.echo(format_vcsim(running))
            while not stopped.wait(1.0) and running.process.poll() is None:
                pass
            if running.process.poll() is not None:
                typer.echo(
                    f"Error: the simulated vCenter exited (code {running.process.returncode}).",
                    err=True,
                )
                raise typer.Exit(1)
    except QuipuError as error:
        raise _fail(error) from None
    typer.echo("Simulated vCenter is down.")


for _peer in (lab_openshift, lab_ansible, lab_rhacs, lab_vault):
    _peer.register(app)
