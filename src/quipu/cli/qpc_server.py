"""``qpc server``: where the server is, logging in and out, and its status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quipu.cli.qpc_common import LoginRequired, print_json, read_line, read_secret
from quipu.cli.qpc_config import (
    DEFAULT_PORT,
    ServerConfig,
    forget_token,
    load_config,
    save_config,
    save_token,
)
from quipu.cli.qpc_http import connect

app = typer.Typer(help="Configure the server, log in and out.", no_args_is_help=True)


def format_unverified_warning(config: ServerConfig) -> str:
    return (
        f"Warning: the certificate of {config.base_url} will not be verified; give the CA "
        "file that signed it with --ssl-verify to check it."
    )


@app.command("config")
def config_server(
    host: Annotated[str, typer.Option(help="Server host name or IP address.")],
    port: Annotated[int, typer.Option(help="Server port.", min=1, max=65535)] = DEFAULT_PORT,
    use_http: Annotated[bool, typer.Option("--use-http", help="Plain HTTP, not HTTPS.")] = False,
    ssl_verify: Annotated[
        Path | None,
        typer.Option(
            "--ssl-verify",
            help="CA file to verify the server's certificate with.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
) -> None:
    """Set the server qpc talks to."""
    config = ServerConfig(
        host=host,
        port=port,
        use_http=use_http,
        ssl_verify=str(ssl_verify.resolve()) if ssl_verify else None,
    )
    previous = load_config()
    if previous is not None and previous.base_url != config.base_url:
        # A token is only good for the server that issued it; never send it elsewhere.
        forget_token()
    save_config(config)
    if not use_http and ssl_verify is None:
        typer.echo(format_unverified_warning(config), err=True)
    protocol = "http" if use_http else "https"
    typer.echo(
        "Server connectivity was successfully configured. The server will be contacted via "
        f'"{protocol}" at host "{host}" with port "{port}".'
    )


@app.command()
def login(
    username: Annotated[str | None, typer.Option(help="User name; asked when not given.")] = None,
) -> None:
    """Log in; the token is kept in the qpc config directory."""
    if username is None:
        username = read_line("User: ", what="a user name")
    password = read_secret(None, what="a password")
    with connect(login=False) as api:
        body = api.request(
            "POST", "/api/v1/token/", json={"username": username, "password": password}
        )
    save_token(str(body["token"]))
    typer.echo("Login successful.")


@app.command()
def logout() -> None:
    """Log out: the server revokes the token and qpc forgets it."""
    with connect(login=False) as api:
        if api.token:
            try:
                api.request("PUT", "/api/v1/users/logout/")
            except LoginRequired:
                pass  # the token was already expired or revoked: logged out all the same
    forget_token()
    typer.echo("Logged out.")


@app.command()
def status() -> None:
    """Show the server's status as JSON."""
    with connect(login=False) as api:
        print_json(api.get("/api/v1/status/"))
