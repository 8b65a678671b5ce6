"""``qpc scan``: scans, and starting and steering their scan jobs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quipu.cli.qpc_common import fail, print_json, usage_error
from quipu.cli.qpc_http import Api, clear_objects, connect
from quipu.cli.qpc_source import PATH as SOURCES_PATH

app = typer.Typer(help="Manage scans and their scan jobs.", no_args_is_help=True)

PATH = "/api/v1/scans/"
JOBS_PATH = "/api/v1/jobs/"
FINAL = frozenset({"completed", "failed", "canceled"})
STOP_WAITING = FINAL | {"paused"}
POLL_S = 1.0

Name = Annotated[str, typer.Option("--name", help="Scan name.")]
Sources = Annotated[list[str] | None, typer.Option("--sources", help="Source names, in order.")]
Concurrency = Annotated[
    int | None,
    typer.Option("--max-concurrency", help="Systems inspected at once (1-200, default 25)."),
]
JobId = Annotated[int, typer.Option("--id", help="Scan job id.")]


def find_scan(api: Api, *, name: str) -> dict[str, Any]:
    scan = api.find(PATH, name=name)
    if scan is None:
        fail(f'Scan "{name}" does not exist.')
    return scan


def _source_ids(api: Api, *, names: list[str]) -> list[int]:
    ids = []
    for name in names:
        source = api.find(SOURCES_PATH, name=name)
        if source is None:
            fail(f'Source "{name}" does not exist.')
        ids.append(int(source["id"]))
    return ids


@app.command()
def add(name: Name, sources: Sources = None, max_concurrency: Concurrency = None) -> None:
    """Add a scan."""
    if not sources:
        usage_error("Missing option '--sources'.")
    with connect() as api:
        body: dict[str, Any] = {"name": name, "sources": _source_ids(api, names=sources)}
        if max_concurrency is not None:
            body["options"] = {"max_concurrency": max_concurrency}
        api.request("POST", PATH, json=body)
    typer.echo(f'Scan "{name}" was added.')


@app.command()
def edit(name: Name, sources: Sources = None, max_concurrency: Concurrency = None) -> None:
    """Change a scan: only the options given change."""
    if not sources and max_concurrency is None:
        usage_error("Nothing to change: give --sources or --max-concurrency.")
    with connect() as api:
        scan = find_scan(api, name=name)
        body: dict[str, Any] = {}
        if sources:
            body["sources"] = _source_ids(api, names=sources)
        if max_concurrency is not None:
            body["options"] = {"max_concurrency": max_concurrency}
        api.request("PATCH", f"{PATH}{scan['id']}/", json=body)
    typer.echo(f'Scan "{name}" was updated.')


@app.command("list")
def list_scans() -> None:
    """List scans as JSON."""
    with connect() as api:
        scans = api.all(PATH)
    if not scans:
        typer.echo("No scans exist yet.")
        return
    print_json(scans)


@app.command()
def show(name: Name) -> None:
    """Show one scan as JSON."""
    with connect() as api:
        print_json(find_scan(api, name=name))


@app.command()
def clear(
    name: Annotated[str | None, typer.Option("--name", help="Scan to remove.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Remove every scan.")] = False,
) -> None:
    """Remove one scan, or all of them (their scan jobs and reports stay)."""
    clear_objects(name=name, all_=all_, path=PATH, noun="Scan", plural="scans")


@app.command()
def start(
    name: Name,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the scan job until it ends.")
    ] = False,
) -> None:
    """Start a scan: a new scan job."""
    with connect() as api:
        scan = find_scan(api, name=name)
        job = api.request("POST", f"{PATH}{scan['id']}/jobs/")
        typer.echo(f'Scan "{job["id"]}" started.')
        if wait:
            follow(api, job_id=int(job["id"]))


def follow(api: Api, *, job_id: int) -> None:
    """Wait for a scan job to end (or pause); exit 1 unless it completed."""
    if sys.stdout.isatty():
        job = _follow_with_bar(api, job_id=job_id)
    else:
        job = _poll(api, job_id=job_id, on_change=lambda j: typer.echo(format_job_line(j)))
    if job["status"] == "completed":
        typer.echo(format_job_end(job))
        return
    typer.echo(format_job_end(job), err=True)
    raise typer.Exit(1)


def _poll(api: Api, *, job_id: int, on_change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    seen: tuple[Any, ...] | None = None
    while True:
        job: dict[str, Any] = api.get(f"{JOBS_PATH}{job_id}/")
        state = (job["status"], *_counts(job))
        if state != seen:
            seen = state
            on_change(job)
        if job["status"] in STOP_WAITING:
            return job
        time.sleep(POLL_S)


def _follow_with_bar(api: Api, *, job_id: int) -> dict[str, Any]:
    with Progress(
        TextColumn("Scan job {task.fields[job]}: {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ) as progress:
        bar = progress.add_task("scan", total=None, job=job_id, status="")

        def update(job: dict[str, Any]) -> None:
            total, done = _counts(job)
            progress.update(bar, total=total or None, completed=done, status=job["status"])

        return _poll(api, job_id=job_id, on_change=update)


def _counts(job: dict[str, Any]) -> tuple[int, int]:
    """(systems to scan, systems done) of a scan job."""
    counters = ("systems_scanned", "systems_failed", "systems_unreachable")
    done = sum(int(job.get(k) or 0) for k in counters)
    return int(job.get("systems_count") or 0), done


def format_job_line(job: dict[str, Any]) -> str:
    total, done = _counts(job)
    return (
        f"Scan job {job['id']}: {job['status']}, {done} of {total} systems done "
        f"({job.get('systems_scanned', 0)} scanned, {job.get('systems_failed', 0)} failed, "
        f"{job.get('systems_unreachable', 0)} unreachable)."
    )


def format_job_end(job: dict[str, Any]) -> str:
    message = job.get("status_message") or ""
    return f"Scan job {job['id']} {job['status']}" + (f": {message}" if message else ".")


@app.command("job")
def show_jobs(
    job_id: Annotated[int | None, typer.Option("--id", help="Scan job id.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Scan name: list its scan jobs.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="With --name: only jobs in this status.")
    ] = None,
) -> None:
    """Show a scan job, or list a scan's scan jobs, as JSON."""
    if (job_id is None) == (name is None):
        usage_error("Give --id or --name (one of them).")
    if status is not None and name is None:
        usage_error("--status goes with --name.")
    with connect() as api:
        if name is not None:
            scan = find_scan(api, name=name)
            params: dict[str, Any] = {"scan_id": scan["id"]}
            if status is not None:
                params["status"] = status
            print_json(api.all(JOBS_PATH, params=params))
        else:
            print_json(api.get(f"{JOBS_PATH}{job_id}/"))


def _steer(job_id: int, *, action: str, done: str) -> None:
    with connect() as api:
        api.request("PUT", f"{JOBS_PATH}{job_id}/{action}/")
    typer.echo(f'Scan "{job_id}" {done}.')


@app.command()
def pause(job_id: JobId) -> None:
    """Pause a scan job."""
    _steer(job_id, action="pause", done="paused")


@app.command()
def restart(job_id: JobId) -> None:
    """Restart a paused scan job; it resumes where it was."""
    _steer(job_id, action="restart", done="restarted")


@app.command()
def cancel(job_id: JobId) -> None:
    """Cancel a scan job."""
    _steer(job_id, action="cancel", done="canceled")


@app.command()
def approve(job_id: JobId) -> None:
    """Approve a scan job held for approval (a mediated source)."""
    _steer(job_id, action="approve", done="approved")
