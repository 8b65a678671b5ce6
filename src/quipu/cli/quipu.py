"""``quipu``: run the server, a scanner or the lab, and manage the database."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from quipu.domain.errors import QuipuError
from quipu.settings import Settings

app = typer.Typer(help="Quipu server and administration.", no_args_is_help=True)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except QuipuError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 9443,
    http: Annotated[bool, typer.Option("--http", help="Serve plain HTTP, not HTTPS.")] = False,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate to serve.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "info",
) -> None:
    """Run the server (user API, scanner API, dispatcher)."""
    import uvicorn

    from quipu.api.app import create_app
    from quipu.api.tls import ensure_self_signed

    settings = _settings()
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    ssl: dict[str, str] = {}
    if not http:
        if (tls_cert is None) != (tls_key is None):
            typer.echo("Error: give both --tls-cert and --tls-key, or neither.", err=True)
            raise typer.Exit(1)
        cert, key = (
            (tls_cert, tls_key) if tls_cert and tls_key else ensure_self_signed(settings.data_dir)
        )
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        **ssl,  # type: ignore[arg-type]
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every database migration (idempotent)."""
    from quipu.store.engine import create_engine
    from quipu.store.migrate import upgrade

    settings = _settings()
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    typer.echo(f"Database is up to date ({settings.database_kind}).")


def main() -> None:
    try:
        app()
    except QuipuError as error:
        typer.echo(f"Error: {error}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
