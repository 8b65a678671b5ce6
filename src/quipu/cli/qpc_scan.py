"""``qpc scan``: scans, and starting and steering their scan jobs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from quipu.cli.qpc_common import AllFields, fail, print_json, usage_error
from quipu.cli.qpc_http import Api, clear_objects, connect
from quipu.cli.qpc_scan_shapes import (
    PRODUCT_OPTIONS_HELP,
    check_options,
    product_args,
    product_options,
    shown_job,
    shown_scan,
)
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
Cron = Annotated[
    str | None,
    typer.Option(
        "--schedule",
        help='Start a scan job at each firing of this cron expression, e.g. "0 2 * * 1-5"; '
        'on edit "" removes the schedule.',
    ),
]
TimeZone = Annotated[
    str | None,
    typer.Option("--timezone", help="IANA time zone the schedule is read in (default UTC)."),
]
Windows = Annotated[
    list[str] | None,
    typer.Option(
        "--window",
        help='A time window its scan jobs run in, e.g. "mon-fri 08:00-18:00 Europe/Paris"; '
        'repeat for more; on edit the list given replaces the scan\'s, "" removes them all.',
    ),
]
RetryAttempts = Annotated[
    int | None,
    typer.Option(
        "--retry-attempts",
        help="Retries when no target answers (on edit 0 removes the retry policy).",
    ),
]
RetryDelay = Annotated[
    float | None,
    typer.Option("--retry-delay", help="Seconds before the first retry (default 300)."),
]
RetryBackoff = Annotated[
    float | None,
    typer.Option("--retry-backoff", help="Factor each further retry's delay grows by (default 2)."),
]
LIFECYCLE_FIELDS = ("schedule", "windows", "retry")
"""What a scan has beyond the established client's fields; ``show`` prints those set."""

# The product options take any number of values (none resets them on edit), which Click
# cannot parse: they reach the command as extra arguments, read by ``product_args``.
WITH_PRODUCT_OPTIONS = {"ignore_unknown_options": True, "allow_extra_args": True}
NO_SCANS = "No scans found."
JOB_ID_AND_STATUS = (
    'Provide the "--status" filter with a scan name to filter the list of related scan jobs.'
)


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


@app.command(context_settings=WITH_PRODUCT_OPTIONS, epilog=PRODUCT_OPTIONS_HELP)
def add(
    ctx: typer.Context,
    name: Name,
    sources: Sources = None,
    max_concurrency: Concurrency = None,
    schedule: Cron = None,
    timezone: TimeZone = None,
    window: Windows = None,
    retry_attempts: RetryAttempts = None,
    retry_delay: RetryDelay = None,
    retry_backoff: RetryBackoff = None,
) -> None:
    """Add a scan."""
    if not sources:
        usage_error("Missing option '--sources'.")
    if timezone is not None and not schedule:
        usage_error("--timezone needs --schedule.")
    retry = _retry_given(attempts=retry_attempts, delay=retry_delay, backoff=retry_backoff)
    products = product_args(ctx.args, adding=True)
    check_options(max_concurrency=max_concurrency, directories=products.directories)
    with connect() as api:
        options = product_options(products, editing=False)
        if max_concurrency:
            options["max_concurrency"] = max_concurrency
        body = {
            "name": name,
            "sources": _source_ids(api, names=sources),
            "scan_type": "inspect",
            "options": options,
        }
        if schedule:
            body["schedule"] = {"cron": schedule, "timezone": timezone or "UTC"}
        if window:
            body["windows"] = [w for w in window if w.strip()]
        if retry:
            body["retry"] = retry
        api.request("POST", PATH, json=body)
    typer.echo(f'Scan "{name}" was added.')


@app.command(context_settings=WITH_PRODUCT_OPTIONS, epilog=PRODUCT_OPTIONS_HELP)
def edit(
    ctx: typer.Context,
    name: Name,
    sources: Sources = None,
    max_concurrency: Concurrency = None,
    schedule: Cron = None,
    timezone: TimeZone = None,
    window: Windows = None,
    retry_attempts: RetryAttempts = None,
    retry_delay: RetryDelay = None,
    retry_backoff: RetryBackoff = None,
) -> None:
    """Change a scan: only the options given change."""
    products = product_args(ctx.args, adding=False)
    retry = _retry_given(attempts=retry_attempts, delay=retry_delay, backoff=retry_backoff)
    lifecycle_given = schedule is not None or timezone is not None or window is not None or retry
    if not sources and max_concurrency is None and not products.given() and not lifecycle_given:
        usage_error(f"No arguments were provided to edit scan {name}.")
    check_options(max_concurrency=max_concurrency, directories=products.directories)
    with connect() as api:
        scan = find_scan(api, name=name)
        body: dict[str, Any] = {"name": name, "scan_type": "inspect"}
        if sources:
            body["sources"] = _source_ids(api, names=sources)
        options = product_options(products, editing=True)
        if max_concurrency:
            options["max_concurrency"] = max_concurrency
        if options:
            body["options"] = options
        body |= _lifecycle_edits(scan, schedule=schedule, timezone=timezone, windows=window)
        if retry:
            body["retry"] = _retry_edited(scan, given=retry)
        api.request("PATCH", f"{PATH}{scan['id']}/", json=body)
    typer.echo(f'Scan "{name}" was updated.')


def _retry_given(
    *, attempts: int | None, delay: float | None, backoff: float | None
) -> dict[str, Any]:
    """The retry settings given on the command line, under the API's names."""
    given = {"attempts": attempts, "delay_s": delay, "backoff": backoff}
    return {key: value for key, value in given.items() if value is not None}


def _retry_edited(scan: dict[str, Any], *, given: dict[str, Any]) -> dict[str, Any]:
    """The scan's retry policy with the settings given changed; ``--retry-attempts 0``: none."""
    if given.get("attempts") == 0:
        return {}
    return {**(scan.get("retry") or {}), **given}


def _lifecycle_edits(
    scan: dict[str, Any], *, schedule: str | None, timezone: str | None, windows: list[str] | None
) -> dict[str, Any]:
    """The schedule and windows part of an edit: only what was given changes.

    A new cron expression keeps the scan's time zone and a new time zone keeps its cron
    expression, so either can be changed alone."""
    body: dict[str, Any] = {}
    current = scan.get("schedule") or {}
    if schedule == "":
        if timezone is not None:
            usage_error('--timezone cannot be set while --schedule "" removes the schedule.')
        body["schedule"] = None
    elif schedule is not None or timezone is not None:
        cron = schedule or current.get("cron")
        if not cron:
            usage_error(f"Scan {scan['name']} has no schedule: give --schedule with --timezone.")
        body["schedule"] = {"cron": cron, "timezone": timezone or current.get("timezone", "UTC")}
    if windows is not None:
        body["windows"] = [w for w in windows if w.strip()]
    return body


def shown_with_lifecycle(scan: dict[str, Any], *, all_fields: bool) -> dict[str, Any]:
    """A scan as the established client prints it, with its schedule, windows and retry policy
    when it has them (a scan without them prints as before)."""
    shown = shown_scan(scan, all_fields=all_fields)
    for key in LIFECYCLE_FIELDS:
        if scan.get(key):
            shown[key] = scan[key]
    return shown


@app.command("list")
def list_scans(all_fields: AllFields = False) -> None:
    """List scans as JSON."""
    with connect() as api:
        scans = api.all(PATH)
    if not scans:
        typer.echo(NO_SCANS, err=True)
        return
    print_json([shown_scan(scan, all_fields=all_fields) for scan in scans])


@app.command()
def show(name: Name, all_fields: AllFields = False) -> None:
    """Show one scan as JSON."""
    with connect() as api:
        print_json(shown_with_lifecycle(find_scan(api, name=name), all_fields=all_fields))


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
        state = (job["status"], *_phase_counts(job), *_counts(job))
        if state != seen:
            seen = state
            on_change(job)
        if job["status"] in STOP_WAITING:
            return job
        time.sleep(POLL_S)


def _follow_with_bar(api: Api, *, job_id: int) -> dict[str, Any]:
    with Progress(
        TextColumn("Scan job {task.fields[job]} {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("systems done"),
        TimeElapsedColumn(),
    ) as progress:
        bar = progress.add_task("scan", total=None, job=job_id, status="")

        def update(job: dict[str, Any]) -> None:
            total, done = _counts(job)
            phase = format_phase(job)
            status = f"{job['status']}: {phase}" if phase else job["status"]
            progress.update(bar, total=total or None, completed=done, status=status)

        return _poll(api, job_id=job_id, on_change=update)


PHASES = {"connect": "connection", "inspect": "inspection"}


def _counts(job: dict[str, Any]) -> tuple[int, int]:
    """(systems of the whole job, systems done) of a scan job; done only grows."""
    progress = job.get("progress")
    if progress is not None:
        return int(progress["total"]), int(progress["done"])
    # A server without the progress object: its counters, which may fall between phases.
    counters = ("systems_scanned", "systems_failed", "systems_unreachable")
    done = sum(int(job.get(k) or 0) for k in counters)
    return int(job.get("systems_count") or 0), done


def _phase_counts(job: dict[str, Any]) -> tuple[str | None, int, int]:
    """(phase under way, its systems done, its systems) of a scan job."""
    progress = job.get("progress") or {}
    return (
        progress.get("phase"),
        int(progress.get("phase_done") or 0),
        int(progress.get("phase_total") or 0),
    )


def format_phase(job: dict[str, Any]) -> str:
    """The phase under way and its own progress, e.g. ``connection phase 18 of 20``; "" if none."""
    phase, phase_done, phase_total = _phase_counts(job)
    if phase is None:
        return ""
    return f"{PHASES.get(phase, phase)} phase {phase_done} of {phase_total}"


def format_job_line(job: dict[str, Any]) -> str:
    """E.g. ``Scan job 4 running: connection phase 20 of 20; 2 of 20 systems done.``

    The phase's numbers start again with each phase; the job's (systems done) only grow."""
    total, done = _counts(job)
    phase = format_phase(job)
    return (
        f"Scan job {job['id']} {job['status']}: "
        + (f"{phase}; " if phase else "")
        + f"{done} of {total} systems done."
    )


def format_job_end(job: dict[str, Any]) -> str:
    message = job.get("status_message") or ""
    return f"Scan job {job['id']} {job['status']}" + (f": {message}" if message else ".")


def format_event(event: dict[str, Any]) -> str:
    """One entry of a scan job's log: when, who or what, about what, the move, the message.

    E.g. ``2026-05-04 02:00:03 UTC  dispatcher  task 7 fail  running -> failed  Connection
    to source 'lab' failed: ...``"""
    parts = [_when(str(event["at"])), str(event["actor"])]
    kind = str(event.get("kind") or "")
    what = EVENT_SUBJECTS.get(kind, kind)
    if event.get("subject_id") is not None:
        what = f"{what} {event['subject_id']}"
    if event.get("action"):
        what = f"{what} {event['action']}"
    parts.append(what)
    if event.get("to_status"):
        parts.append(f"{event.get('from_status') or ''} -> {event['to_status']}".lstrip())
    if event.get("message"):
        parts.append(str(event["message"]))
    return "  ".join(parts)


def _when(value: str) -> str:
    """An API time (ISO 8601) as the rest of qpc's output reads it: UTC, to the second."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


EVENT_SUBJECTS = {
    "scan_job": "scan job",
    "task": "task",
    "scanner_job": "scanner job",
    "reassign": "scanner job",
}


@app.command("job")
def show_jobs(
    job_id: Annotated[int | None, typer.Option("--id", help="Scan job id.")] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Scan name: list its scan jobs.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="With --name: only jobs in this status.")
    ] = None,
    log: Annotated[
        bool,
        typer.Option("--log", help="With --id: print the job's log (every move, oldest first)."),
    ] = False,
    all_fields: AllFields = False,
) -> None:
    """Show a scan job, or list a scan's scan jobs (oldest first), as JSON."""
    if job_id is not None and name is not None:
        usage_error("argument --id: not allowed with argument --name")
    if job_id is None and name is None:
        usage_error("one of the arguments --name --id is required")
    if status is not None and name is None:
        usage_error(JOB_ID_AND_STATUS)
    if log and job_id is None:
        usage_error("argument --log: only allowed with argument --id")
    with connect() as api:
        if job_id is not None and log:
            for event in api.all(f"{JOBS_PATH}{job_id}/events/"):
                typer.echo(format_event(event))
            return
        if name is None:
            print_json(shown_job(api.get(f"{JOBS_PATH}{job_id}/"), all_fields=all_fields))
            return
        scan = find_scan(api, name=name)
        params = {} if status is None else {"status": status}
        jobs = api.all(f"{PATH}{scan['id']}/jobs/", params=params)
    if not jobs:
        fail(NO_SCANS)
    print_json([shown_job(job, all_fields=all_fields) for job in jobs])


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
