"""``quipu lab``: start and stop the lab of real sshd hosts on loopback addresses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from quipu.domain.errors import QuipuError
from quipu.lab import Lab, lab_down, lab_up
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


def _log_to_stderr() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


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
    _log_to_stderr()
    try:
        lab = lab_up(root=_root(), hosts=hosts, net=net, port=port, slow=slow)
    except QuipuError as error:
        raise _fail(error) from None
    typer.echo(format_lab(lab))


@app.command()
def down() -> None:
    """Stop every lab process and remove the lab directory (nothing to do if none is up)."""
    _log_to_stderr()
    try:
        root = _root()
        lab_down(root=root)
    except QuipuError as error:
        raise _fail(error) from None
    typer.echo("Lab is down.")
