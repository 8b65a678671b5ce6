"""``qpc alarm``: read the alarms about stalled work, and repair what they report."""

from __future__ import annotations

from typing import Annotated

import typer

from quipu.cli.qpc_common import print_json
from quipu.cli.qpc_http import connect
from quipu.cli.qpc_scanner import find_scanner

app = typer.Typer(help="Read alarms and repair what they report.", no_args_is_help=True)

PATH = "/api/v1/alarms/"


@app.command("list")
def list_alarms(
    all_alarms: Annotated[
        bool, typer.Option("--all", help="Resolved alarms too (default: open ones only).")
    ] = False,
) -> None:
    """List alarms as JSON, newest first: open ones, or all with --all."""
    params = {} if all_alarms else {"resolved": "false"}
    with connect() as api:
        print_json(api.all(PATH, params=params))


@app.command()
def repair(
    alarm_id: Annotated[int, typer.Option("--id", help="Alarm identifier.")],
    action: Annotated[
        str,
        typer.Option("--action", help="redispatch, reassign, drain or fail: one the alarm offers."),
    ],
    scanner: Annotated[
        str | None,
        typer.Option(
            "--scanner",
            help="reassign: the scanner to give the source to; redispatch: the scanner to "
            "hand the work to; drain: the scanner to drain (default: the alarm's).",
        ),
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", help="fail: why the scan job fails.")
    ] = None,
) -> None:
    """Apply one of the repairs an alarm offers; the alarm is then resolved."""
    with connect() as api:
        body: dict[str, object] = {"action": action}
        if scanner is not None:
            body["scanner_id"] = find_scanner(api, name=scanner)["id"]
        if message is not None:
            body["message"] = message
        repaired = api.request("POST", f"{PATH}{alarm_id}/repair/", json=body)
    done = str(repaired["done"])
    typer.echo(f'Alarm "{alarm_id}" repaired: {done[:1].upper()}{done[1:]}')
