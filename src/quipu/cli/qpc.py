"""``qpc``: the operator's client; talks to the server over HTTP only."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from quipu.cli import (
    qpc_alarm,
    qpc_cred,
    qpc_report,
    qpc_report_merge,  # noqa: F401  (adds merge and upload to qpc report)
    qpc_scan,
    qpc_scanner,
    qpc_server,
    qpc_source,
    qpc_vault,
)
from quipu.cli.qpc_common import ClientError, expand_multi_values, setup_logging

app = typer.Typer(
    help="Quipu operator client.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(qpc_server.app, name="server")
app.add_typer(qpc_cred.app, name="cred")
app.add_typer(qpc_source.app, name="source")
app.add_typer(qpc_scan.app, name="scan")
app.add_typer(qpc_report.app, name="report")
app.add_typer(qpc_scanner.app, name="scanner")
app.add_typer(qpc_vault.app, name="vault")
app.add_typer(qpc_alarm.app, name="alarm")


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "-v",
            "--verbose",
            count=True,
            help="Verbose mode: -v shows qpc's own messages, -vv debug lines and HTTP requests.",
        ),
    ] = 0,
) -> None:
    """Manage credentials, sources, scans, scan jobs and scanners."""
    setup_logging(verbose)


def main() -> None:
    try:
        # Click takes one value per option: several-value options are rewritten first.
        app(args=expand_multi_values(sys.argv[1:]), prog_name="qpc")
    except ClientError as error:
        typer.echo(str(error), err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
