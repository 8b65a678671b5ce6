"""``quipu lab vault``: run the fake HashiCorp Vault on loopback in the foreground."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from quipu.cli.foreground import refuse, serve_until_stopped
from quipu.lab.vault import RunningVault, running_vault
from quipu.settings import Settings


def format_vault(vault: RunningVault, *, path: str, key: str, secret: str) -> str:
    """Where the fake Vault listens, the files to log in with, and the qpc commands that use it."""
    return "\n".join(
        [
            f"Fake HashiCorp Vault is up at https://{vault.host}:{vault.port} "
            "(TLS certificate login, KV version 2 at secret/)",
            f"  client certificate: {vault.client_cert_path}",
            f"  client key:         {vault.client_key_path}",
            f"  CA certificate:     {vault.ca_cert_path} (Vault's own, self-signed)",
            f"  secret:             secret/{path}, key {key!r} = {secret}",
            "",
            "Next:",
            f"  qpc vault add --address {vault.host} --port {vault.port} "
            f"--client-cert {vault.client_cert_path} --client-key {vault.client_key_path} "
            f"--ca-cert {vault.ca_cert_path}",
            f"  qpc cred add --name from-vault --type satellite --username admin "
            f"--vault-secret-path {path} --vault-secret-key {key}",
            "Stop it with Ctrl-C.",
        ]
    )


@contextlib.contextmanager
def _holding(
    *, port: int, directory: Path, path: str, key: str, value: str
) -> Iterator[RunningVault]:
    """A fake Vault that holds ``{key: value}`` at ``path``."""
    with running_vault(port=port, directory=directory) as running:
        running.vault.put_secret(path, {key: value})
        yield running


def register(app: typer.Typer) -> None:
    """Add the ``vault`` command to ``quipu lab``."""

    @app.command()
    def vault(
        port: Annotated[
            int, typer.Option(help="HTTPS port on 127.0.0.1 (0: any free one).")
        ] = 8200,
        path: Annotated[str, typer.Option(help="Path of the secret it holds.")] = "quipu/satellite",
        key: Annotated[str, typer.Option(help="Key of the value in that secret.")] = "password",
        secret: Annotated[
            str | None,
            typer.Option(help="The value (default: a new random one, printed)."),
        ] = None,
        directory: Annotated[
            Path | None,
            typer.Option(help="Where to write the certificates (default: the lab directory)."),
        ] = None,
    ) -> None:
        """Run a fake HashiCorp Vault on 127.0.0.1 in the foreground, until Ctrl-C."""
        if not 0 <= port <= 65535:
            raise refuse("--port must be 0 to 65535.")
        value = secret or secrets.token_urlsafe(12)
        where = directory or Settings.from_env().data_dir / "lab" / "vault"
        serve_until_stopped(
            _holding(port=port, directory=where, path=path, key=key, value=value),
            port=port,
            describe=lambda running: format_vault(
                running, path=path.strip("/"), key=key, secret=value
            ),
            down="Vault is down.",
        )
