"""``qpc vault``: the HashiCorp Vault that holds credentials' secrets (add, show, clear)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer

from quipu.cli.qpc_common import fail, parse_bool, print_json
from quipu.cli.qpc_http import connect

app = typer.Typer(
    help="Manage the HashiCorp Vault that holds credentials' secrets.", no_args_is_help=True
)

PATH = "/api/v2/auth/hashicorp-vault/"
ADDED = "HashiCorp Vault configuration was successfully configured."
CLEARED = "HashiCorp Vault configuration was cleared."


def read_pem_file(path: str, *, what: str) -> str:
    """A certificate or key file, base64-encoded as the established client sends it."""
    try:
        content = Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        fail(f'The {what} file "{path}" does not exist.')
    except OSError as error:
        fail(f'The {what} file "{path}" cannot be read ({error.strerror or error}).')
    if b"-----BEGIN" not in content:
        fail(f'The {what} file "{path}" is not a PEM file (no -----BEGIN line).')
    return base64.b64encode(content).decode()


@app.command()
def add(
    address: Annotated[str, typer.Option("--address", help="Vault's host name or IP address.")],
    client_cert: Annotated[
        str,
        typer.Option(
            "--client-cert", help="Certificate file Quipu logs in with (TLS certificate auth)."
        ),
    ],
    client_key: Annotated[
        str, typer.Option("--client-key", help="That certificate's private key file.")
    ],
    port: Annotated[int, typer.Option("--port", help="Vault's port.", min=1, max=65535)] = 8200,
    ca_cert: Annotated[
        str | None, typer.Option("--ca-cert", help="CA file that signs Vault's certificate.")
    ] = None,
    ssl_verify: Annotated[
        str, typer.Option("--ssl-verify", help="Verify Vault's certificate: true or false.")
    ] = "true",
) -> None:
    """Configure the HashiCorp Vault (replacing the one configured)."""
    verify = parse_bool(ssl_verify, option="--ssl-verify")
    if verify and ca_cert is None:
        fail(
            "--ca-cert is required when --ssl-verify is true: give the CA file of Vault's "
            "certificate, or --ssl-verify false."
        )
    body = {
        "address": address,
        "port": port,
        "ssl_verify": verify,
        "client_cert": read_pem_file(client_cert, what="client certificate"),
        "client_key": read_pem_file(client_key, what="client key"),
    }
    if ca_cert is not None:
        body["ca_cert"] = read_pem_file(ca_cert, what="CA certificate")
    with connect() as api:
        api.request("POST", PATH, json=body)
    typer.echo(ADDED)


@app.command()
def show() -> None:
    """Show the HashiCorp Vault as JSON (never its key)."""
    with connect() as api:
        print_json(api.get(PATH))


@app.command()
def clear() -> None:
    """Forget the HashiCorp Vault (refused while a credential takes its secret from it)."""
    with connect() as api:
        api.request("DELETE", PATH)
    typer.echo(CLEARED)
