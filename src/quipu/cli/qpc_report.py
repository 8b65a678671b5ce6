"""``qpc report``: list, show, and fetch the details and deployments reports of scan jobs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from quipu.cli.qpc_common import fail, print_json, usage_error
from quipu.cli.qpc_http import Api, connect

app = typer.Typer(help="Read the reports of completed scan jobs.", no_args_is_help=True)

ScanJob = Annotated[int | None, typer.Option("--scan-job", help="Scan job id.")]
ReportId = Annotated[int | None, typer.Option("--report", help="Report id.")]
AsJson = Annotated[bool, typer.Option("--json", help="Output JSON.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Output CSV.")]
OutputFile = Annotated[
    Path | None, typer.Option("--output-file", help="Write to this file instead of stdout.")
]


def report_id_of(api: Api, *, scan_job: int | None, report: int | None) -> int:
    """The report asked for by ``--scan-job`` or ``--report`` (exactly one)."""
    if (scan_job is None) == (report is None):
        usage_error("Give exactly one of --scan-job and --report.")
    if report is not None:
        api.get(f"/api/v1/reports/{report}/")
        return report
    job = api.get(f"/api/v1/jobs/{scan_job}/")
    if job.get("report_id") is None:
        fail(
            f"Scan job {scan_job} has no report: it is {job['status']}; reports are made when "
            "a scan job completes."
        )
    report_id: int = job["report_id"]
    return report_id


def check_output_file(path: Path | None, *, suffix: str | None = None) -> None:
    if path is None:
        return
    if suffix and not path.name.endswith(suffix):
        fail(f"The output file name must end with {suffix} (got {path.name}).")
    if not path.parent.is_dir():
        fail(f"The directory {path.parent} does not exist; create it or choose another.")


def emit(data: bytes, *, output_file: Path | None) -> None:
    if output_file is None:
        sys.stdout.buffer.write(data)
        if not data.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return
    output_file.write_bytes(data)
    typer.echo("Report written successfully.")


def _format(as_json: bool, as_csv: bool, *, csv_allowed: bool) -> str:
    if as_json == as_csv:
        usage_error("Give exactly one of --json and --csv.")
    if as_csv and not csv_allowed:
        usage_error("The details report is available as --json only.")
    return "csv" if as_csv else "json"


def _pretty(data: bytes) -> bytes:
    return (json.dumps(json.loads(data), sort_keys=True, indent=4) + "\n").encode()


@app.command()
def details(
    scan_job: ScanJob = None,
    report: ReportId = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    output_file: OutputFile = None,
) -> None:
    """The details report: every system's raw facts, grouped by source."""
    _format(as_json, as_csv, csv_allowed=False)
    check_output_file(output_file)
    with connect() as api:
        report_id = report_id_of(api, scan_job=scan_job, report=report)
        data = api.raw(f"/api/v1/reports/{report_id}/details/", accept="application/json")
    emit(_pretty(data), output_file=output_file)


@app.command()
def deployments(
    scan_job: ScanJob = None,
    report: ReportId = None,
    as_json: AsJson = False,
    as_csv: AsCsv = False,
    table: Annotated[bool, typer.Option("--table", help="A readable table.")] = False,
    output_file: OutputFile = None,
) -> None:
    """The deployments report: one row per system, deduplicated and merged across sources."""
    if not table:
        kind = _format(as_json, as_csv, csv_allowed=True)
    check_output_file(output_file)
    with connect() as api:
        report_id = report_id_of(api, scan_job=scan_job, report=report)
        accept = "text/csv" if not table and kind == "csv" else "application/json"
        data = api.raw(f"/api/v1/reports/{report_id}/deployments/", accept=accept)
    if table:
        Console(width=200 if output_file is None and not sys.stdout.isatty() else None).print(
            format_table(json.loads(data))
        )
        return
    emit(data if kind == "csv" else _pretty(data), output_file=output_file)


def format_table(deployments: dict[str, Any]) -> Table:
    """Name, OS, CPUs, memory and sources of each system, for a person at a terminal."""
    table = Table(title=f"Report {deployments['report_id']}: deployments")
    for column, justify in (
        ("name", "left"),
        ("OS", "left"),
        ("CPUs", "right"),
        ("memory", "right"),
        ("type", "left"),
        ("sources", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for system in deployments["system_fingerprints"]:
        memory = system.get("system_memory_bytes")
        os_text = " ".join(
            str(system[k]) for k in ("os_name", "os_version") if system.get(k) is not None
        )
        table.add_row(
            str(system.get("name") or "-"),
            os_text or "-",
            str(system.get("cpu_count") or "-"),
            f"{memory / 2**30:.1f} GiB" if memory else "-",
            str(system.get("infrastructure_type") or "-"),
            ", ".join(s["source_name"] for s in system.get("sources", [])),
        )
    return table


@app.command()
def download(
    output_file: Annotated[Path, typer.Option("--output-file", help="A .tar.gz file to write.")],
    scan_job: ScanJob = None,
    report: ReportId = None,
) -> None:
    """Both reports and their SHA256SUM in one .tar.gz."""
    check_output_file(output_file, suffix=".tar.gz")
    with connect() as api:
        report_id = report_id_of(api, scan_job=scan_job, report=report)
        data = api.raw(f"/api/v1/reports/{report_id}/download/", accept="application/gzip")
    output_file.write_bytes(data)
    typer.echo("Report written successfully.")


@app.command("list")
def list_reports() -> None:
    """List reports as JSON."""
    with connect() as api:
        print_json(api.all("/api/v1/reports/"))


@app.command()
def show(report: Annotated[int, typer.Option("--report", help="Report id.")]) -> None:
    """One report's summary as JSON."""
    with connect() as api:
        print_json(api.get(f"/api/v1/reports/{report}/"))
