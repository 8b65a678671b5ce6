"""``quipu``: run the server, a scanner or the lab, and manage the database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

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
    from quipu import logs

    logs.configure(level)
    os.environ["QUIPU_LOG_LEVEL"] = level  # for the server's worker processes


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
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes serving requests (PostgreSQL only); one of them also runs "
            "the dispatcher and the built-in scanner.",
            min=1,
            max=64,
        ),
    ] = 1,
    keep_alive_s: Annotated[
        float,
        typer.Option(
            help="Seconds an idle connection stays open: above the scanners' heartbeat "
            "interval, so a fleet keeps its connections between heartbeats.",
            min=1,
        ),
    ] = 75,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="QUIPU_FORWARDED_ALLOW_IPS",
            help="Comma-separated addresses (or networks) of the reverse proxies whose "
            "X-Forwarded-For and X-Forwarded-Proto headers are believed; '*' believes any "
            "client. Default: none, so a client cannot pass for another address (a scanner's "
            "IP binding holds).",
            show_default=False,
        ),
    ] = "",
) -> None:
    """Run the server (user API, scanner API, dispatcher, built-in scanner)."""
    import uvicorn

    from quipu.api.app import WORKERS_ENV, BuiltinScanner, create_app
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
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level.lower(),
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": keep_alive_s,
        # uvicorn believes forwarded headers from 127.0.0.1 unless told otherwise: any local
        # process could then claim any address.
        "proxy_headers": bool(forwarded_allow_ips.strip()),
        "forwarded_allow_ips": forwarded_allow_ips.strip(),
        **ssl,
    }
    if workers == 1:
        uvicorn.run(create_app(settings, builtin_scanner=builtin), **options)
        return
    if settings.database_kind != "postgresql":
        typer.echo(
            "Error: --workers above 1 needs PostgreSQL (QUIPU_DATABASE_URL=postgresql+psycopg://"
            "...): SQLite serializes writes, and its notifications reach one process only.",
            err=True,
        )
        raise typer.Exit(1)
    os.environ[WORKERS_ENV] = str(workers)
    if builtin is not None:
        os.environ["QUIPU_BUILTIN_SCANNER_URL"] = builtin.url
        os.environ["QUIPU_BUILTIN_SCANNER_VERIFY"] = str(builtin.verify).lower()
        os.environ["QUIPU_BUILTIN_SCANNER_CONCURRENCY"] = str(builtin.concurrency)
    uvicorn.run(
        "quipu.api.app:app_from_env",
        factory=True,
        workers=workers,
        # uvicorn kills a worker that misses a 5 s health check, dropping the requests it
        # holds; a worker starting up or collecting garbage on a loaded machine is not hung.
        timeout_worker_healthcheck=30,
        **options,
    )


@scanner_app.command("run")
def scanner_run(
    server: Annotated[
        list[str],
        typer.Option(
            help="A server's URL, e.g. https://quipu:9443. Repeat it for failover: requests "
            "go to the first that answers and stay there until it fails. A name that "
            "resolves to several addresses is tried address by address when connecting.",
        ),
    ],
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
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds a claim waits at the server for work (a long poll).",
            min=0,
            max=60,
        ),
    ] = 20,
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
        wait_s=wait,
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
