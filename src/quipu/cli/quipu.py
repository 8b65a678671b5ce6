"""``quipu``: run the server, a scanner or the lab, and manage the database."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from quipu.cli.lab import app as lab_app
from quipu.domain.errors import QuipuError
from quipu.settings import Settings

app = typer.Typer(help="Quipu server and administration.", no_args_is_help=True)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
scanner_app = typer.Typer(help="Run a scanner.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(scanner_app, name="scanner")
app.add_typer(lab_app, name="lab")


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # one line per SSH connection is noise at scale; its warnings still show
    logging.getLogger("asyncssh").setLevel(max(logging.WARNING, logging.getLogger().level))
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


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
    no_builtin_scanner: Annotated[
        bool, typer.Option("--no-builtin-scanner", help="Do not run the in-process scanner.")
    ] = False,
    scanner_concurrency: Annotated[
        int, typer.Option(help="Jobs the built-in scanner runs at once.", min=1)
    ] = 2,
) -> None:
    """Run the server (user API, scanner API, dispatcher, built-in scanner)."""
    import uvicorn

    from quipu.api.app import BuiltinScanner, create_app
    from quipu.api.tls import ensure_self_signed

    settings = _settings()
    _logging(log_level)
    ssl: dict[str, str] = {}
    if not http:
        if (tls_cert is None) != (tls_key is None):
            typer.echo("Error: give both --tls-cert and --tls-key, or neither.", err=True)
            raise typer.Exit(1)
        cert, key = (
            (tls_cert, tls_key) if tls_cert and tls_key else ensure_self_signed(settings.data_dir)
        )
        ssl = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    builtin = None
    if not no_builtin_scanner:
        scheme = "http" if http else "https"
        url_host = f"[{local}]" if ":" in local else local
        builtin = BuiltinScanner(
            url=f"{scheme}://{url_host}:{port}",
            verify=ssl.get("ssl_certfile", True) if tls_cert is None else False,
            concurrency=scanner_concurrency,
        )
    uvicorn.run(
        create_app(settings, builtin_scanner=builtin),
        host=host,
        port=port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=10,
        **ssl,  # type: ignore[arg-type]
    )


@scanner_app.command("run")
def scanner_run(
    server: Annotated[str, typer.Option(help="The server's URL, e.g. https://quipu:9443.")],
    api_key: Annotated[
        str,
        typer.Option(
            envvar="QUIPU_SCANNER_API_KEY", help="This scanner's API key.", show_default=False
        ),
    ],
    ca: Annotated[Path | None, typer.Option(help="CA certificate to verify the server.")] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the server's certificate.")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Jobs run at once.", min=1)] = 2,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "info",
) -> None:
    """Run a scanner that pulls work from a server until SIGTERM."""
    from quipu.scanner.run import make_agent, run_in_process

    settings = _settings()
    _logging(log_level)
    verify: bool | str = str(ca) if ca else not insecure
    agent = make_agent(
        server=server,
        api_key=api_key,
        verify=verify,
        concurrency=concurrency,
        heartbeat_s=settings.heartbeat_s,
    )
    run_in_process(agent)


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
