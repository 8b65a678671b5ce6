"""``qpc report``: list, show, and fetch the reports of scan jobs in every format."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from quipu.cli.qpc_common import ClientError, LoginRequired, fail, print_json, usage_error
from quipu.cli.qpc_http import Api, connect

app = typer.Typer(help="Read the reports of completed scan jobs.", no_args_is_help=True)

REPORTS_PATH = "/api/v1/reports/"
REPORTS_V2_PATH = "/api/v2/reports/"
WRITTEN = "Report written successfully."

ScanJob = Annotated[int | None, typer.Option("--scan-job", help="Scan job identifier.")]
ReportId = Annotated[int | None, typer.Option("--report", help="Report identifier.")]
AsJson = Annotated[bool, typer.Option("--json", help="Output as a JSON file.")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Output as a CSV file.")]
OutputFile = Annotated[
    Path | None, typer.Option("--output-file", help="Output file location (else stdout).")
]


@dataclasses.dataclass(frozen=True)
class Kind:
    """What the established client says when one kind of report cannot be had."""

    for_scan_job: str
    """No such report for this scan job (``{}``: its id)."""
    for_report: str
    """No such report of this id (``{}``: its id)."""


DETAILS = Kind(
    "No report detail available for scan job {}.", "No report detail available for report id {}."
)
DEPLOYMENTS = Kind(
    "No deployments report available for scan job {}.", "The deployments report {} does not exist."
)
AGGREGATE = Kind(
    "No aggregate report available for scan job {}.", "The aggregate report {} does not exist."
)
INSIGHTS = Kind(
    "No Insights report available for scan job {}.", "Insights report {} does not exist."
)
DOWNLOAD = Kind("No reports available for scan job {}.", "Report {} not found.")


@dataclasses.dataclass(frozen=True)
class Target:
    """The report a command reads, and how it was asked for."""

    report_id: int
    scan_job: int | None
    kind: Kind

    def missing(self) -> str:
        if self.scan_job is not None:
            return self.kind.for_scan_job.format(self.scan_job)
        return self.kind.for_report.format(self.report_id)


def _is_missing(error: ClientError) -> bool:
    """Whether the server said the object asked for does not exist (not any other error)."""
    text = str(error)
    return not isinstance(error, LoginRequired) and (
        text.endswith("does not exist.") or "0 valid hosts" in text
    )


def target_of(api: Api, *, scan_job: int | None, report: int | None, kind: Kind) -> Target:
    """The report asked for by ``--scan-job`` or ``--report`` (exactly one)."""
    if (scan_job is None) == (report is None):
        usage_error("Give exactly one of --scan-job and --report.")
    if report is not None:
        try:
            api.get(f"{REPORTS_PATH}{report}/")
        except ClientError as error:
            if _is_missing(error):
                fail(kind.for_report.format(report))
            raise
        return Target(report_id=report, scan_job=None, kind=kind)
    try:
        job = api.get(f"/api/v1/jobs/{scan_job}/")
    except ClientError as error:
        if _is_missing(error):
            fail(f"Scan Job {scan_job} does not exist.")
        raise
    if job.get("report_id") is None:
        fail(kind.for_scan_job.format(scan_job))
    return Target(report_id=job["report_id"], scan_job=scan_job, kind=kind)


def fetch(api: Api, target: Target, *, suffix: str, accept: str) -> bytes:
    """One document of the target report; a report the server cannot give is ``missing``."""
    try:
        return api.raw(f"{REPORTS_PATH}{target.report_id}/{suffix}", accept=accept)
    except ClientError as error:
        if _is_missing(error):
            fail(target.missing())
        raise


def check_output_file(path: Path | None, *, extension: str | None = None) -> None:
    """Refuse, before asking the server, a file that cannot be written or is misnamed."""
    if path is None:
        return
    if path.is_dir():
        fail(f"output-file {path} was a directory.")
    if extension and not path.name.endswith(extension):
        fail(f"The output file's extension is required to be {extension}.")
    if not path.parent.is_dir():
        fail(f"The directory {path.parent} does not exist.  Cannot write here.")


def write(data: bytes, *, path: Path) -> None:
    try:
        path.write_bytes(data)
    except OSError as error:
        fail(f"Error writing to {path}: {error.strerror}.")


def emit(data: bytes, *, output_file: Path | None) -> None:
    if output_file is None:
        sys.stdout.buffer.write(data)
        if not data.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return
    write(data, path=output_file)
    typer.echo(WRITTEN)


def _format(as_json: bool, as_csv: bool) -> str:
    if as_json == as_csv:
        usage_error("Give exactly one of --json and --csv.")
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
    kind = _format(as_json, as_csv)
    check_output_file(output_file, extension=f".{kind}")
    with connect() as api:
        target = target_of(api, scan_job=scan_job, report=report, kind=DETAILS)
        accept = "text/csv" if kind == "csv" else "application/json"
        data = fetch(api, target, suffix="details/", accept=accept)
    emit(data if kind == "csv" else _pretty(data), output_file=output_file)


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
    kind = "json" if table else _format(as_json, as_csv)
    check_output_file(output_file, extension=None if table else f".{kind}")
    with connect() as api:
        target = target_of(api, scan_job=scan_job, report=report, kind=DEPLOYMENTS)
        accept = "text/csv" if kind == "csv" else "application/json"
        data = fetch(api, target, suffix="deployments/", accept=accept)
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
def aggregate(
    scan_job: ScanJob = None, report: ReportId = None, output_file: OutputFile = None
) -> None:
    """The aggregate report: instances by type, OS, hypervisors, and diagnostics."""
    check_output_file(output_file)
    with connect() as api:
        target = target_of(api, scan_job=scan_job, report=report, kind=AGGREGATE)
        data = fetch(api, target, suffix="aggregate/", accept="application/json")
    emit(_pretty(data), output_file=output_file)


@app.command()
def insights(
    scan_job: ScanJob = None,
    report: ReportId = None,
    output_file: Annotated[
        Path | None,
        typer.Option("--output-file", help="A .tar.gz file to write (else JSON on stdout)."),
    ] = None,
) -> None:
    """The insights report: the systems as inventory hosts, in slices, with metadata.json."""
    check_output_file(output_file, extension="tar.gz")
    with connect() as api:
        target = target_of(api, scan_job=scan_job, report=report, kind=INSIGHTS)
        accept = "application/json" if output_file is None else "application/gzip"
        data = fetch(api, target, suffix="insights/", accept=accept)
    emit(data if output_file is not None else _pretty(data), output_file=output_file)


@app.command()
def download(
    output_file: Annotated[
        Path,
        typer.Option(
            "--output-file",
            help="The output file's name and location. This file is required to be a tar.gz",
        ),
    ],
    scan_job: ScanJob = None,
    report: ReportId = None,
) -> None:
    """Every report as JSON and CSV, the insights tarball, and their SHA256SUM in a .tar.gz."""
    check_output_file(output_file, extension="tar.gz")
    with connect() as api:
        target = target_of(api, scan_job=scan_job, report=report, kind=DOWNLOAD)
        data = fetch(api, target, suffix="download/", accept="application/gzip")
    write(data, path=output_file)
    typer.echo(f"Report {target.report_id} successfully written to {output_file}.")


@app.command("list")
def list_reports(output_file: OutputFile = None) -> None:
    """Every report as the server's paginated list, all pages in one."""
    check_output_file(output_file, extension=".json")
    with connect() as api:
        results = api.all(REPORTS_V2_PATH)
    envelope = {"count": len(results), "next": None, "previous": None, "results": results}
    if output_file is None:
        print_json(envelope)
        return
    write((json.dumps(envelope, sort_keys=True, indent=4) + "\n").encode(), path=output_file)
    typer.echo(WRITTEN)


@app.command()
def show(report: Annotated[int, typer.Option("--report", help="Report identifier.")]) -> None:
    """One report's summary as JSON."""
    with connect() as api:
        try:
            found = api.get(f"{REPORTS_V2_PATH}{report}/")
        except ClientError as error:
            if _is_missing(error):
                fail(f"Report {report} does not exist.")
            raise
    print_json(found)
