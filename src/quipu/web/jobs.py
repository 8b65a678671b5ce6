"""Scan job pages: the list with status filters, and a job's page whose panel (status,
progress, per-task counters, the moves its state allows, the job's log) refreshes while the
job runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from quipu.domain.errors import InvalidInput, QuipuError
from quipu.domain.states import (
    SCAN_JOB_TRANSITIONS,
    ScanJobAction,
    ScanJobStatus,
    TaskKind,
)
from quipu.services import job_events, scan_jobs
from quipu.store import Store
from quipu.store.tables import ScanJob
from quipu.web.render import page, render
from quipu.web.session import SignedIn, flash, server_now

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
RESULTS_PAGE_SIZE = 50
LOG_PAGE_SIZE = 20
PHASES = {TaskKind.CONNECT: "connection", TaskKind.INSPECT: "inspection"}
FINAL = (ScanJobStatus.COMPLETED, ScanJobStatus.FAILED, ScanJobStatus.CANCELED)
MOVES: dict[str, tuple[ScanJobAction, Any]] = {
    "pause": (ScanJobAction.PAUSE, scan_jobs.pause),
    "restart": (ScanJobAction.RESTART, scan_jobs.restart),
    "cancel": (ScanJobAction.CANCEL, scan_jobs.cancel),
    "approve": (ScanJobAction.APPROVE, scan_jobs.approve),
}
STATUS_FILTERS = [s.value for s in ScanJobStatus if s != ScanJobStatus.CREATED]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def allowed_moves(status: str, *, is_admin: bool) -> list[str]:
    """The buttons a job in ``status`` shows: exactly the moves the transition table allows,
    but approve only to an administrator (the only one it is allowed to)."""
    state = ScanJobStatus(status)
    return [
        name
        for name, (action, _) in MOVES.items()
        if state in SCAN_JOB_TRANSITIONS[action] and (is_admin or action != ScanJobAction.APPROVE)
    ]


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


@router.get("/jobs")
def job_list(
    request: Request, viewer: SignedIn, status: str = "", page_no: str = "1"
) -> HTMLResponse:
    store = _store(request)
    number = _page_number(page_no)
    error = None
    try:
        found = scan_jobs.list_jobs(
            store,
            status=status or None,
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
    except InvalidInput as refused:
        error, status = str(refused), ""
        found = scan_jobs.list_jobs(store, offset=0, limit=PAGE_SIZE)
    reports = scan_jobs.reports_of(store, job_ids=[j.id for j in found.jobs])
    return page(
        request,
        "jobs.html",
        viewer=viewer,
        jobs=[(job, job_events.progress(job), reports.get(job.id)) for job in found.jobs],
        count=found.count,
        status=status,
        statuses=STATUS_FILTERS,
        page_no=number,
        pages=max(1, -(-found.count // PAGE_SIZE)),
        error=error,
    )


def _panel_context(
    request: Request, job_id: int, query: dict[str, str], *, is_admin: bool
) -> dict[str, Any]:
    store = _store(request)
    job = scan_jobs.get(store, job_id=job_id)
    report = scan_jobs.reports_of(store, job_ids=[job.id]).get(job.id)
    phase = TaskKind.INSPECT if query.get("phase") == "inspect" else TaskKind.CONNECT
    result_status = query.get("result_status") or None
    number = _page_number(query.get("results_page"))
    try:
        count, rows = scan_jobs.system_results(
            store,
            job_id=job_id,
            kind=phase,
            status=result_status,
            offset=(number - 1) * RESULTS_PAGE_SIZE,
            limit=RESULTS_PAGE_SIZE,
        )
    except InvalidInput:
        result_status = None
        count, rows = scan_jobs.system_results(
            store, job_id=job_id, kind=phase, offset=0, limit=RESULTS_PAGE_SIZE
        )
    log_page = _page_number(query.get("log_page"))
    log_count, log = job_events.list_events(
        store,
        job_id=job_id,
        offset=(log_page - 1) * LOG_PAGE_SIZE,
        limit=LOG_PAGE_SIZE,
        newest_first=True,
    )
    progress = job_events.progress(job)
    return {
        "job": job,
        "message": scan_jobs.job_message(job.status, job.status_message),
        "task_message": scan_jobs.task_message,
        "report": report,
        # The same progress as the API's: the phase under way and the whole job's.
        "progress": progress,
        "phase_name": PHASES.get(progress.phase, "") if progress.phase else "",
        "done": progress.done,
        "total": progress.total,
        "live": ScanJobStatus(job.status) not in FINAL,
        "moves": allowed_moves(job.status, is_admin=is_admin),
        "phase": phase.value,
        "result_status": result_status or "",
        "results": rows,
        "results_count": count,
        "results_page": number,
        "results_pages": max(1, -(-count // RESULTS_PAGE_SIZE)),
        "log": log,
        "log_count": log_count,
        "log_page": log_page,
        "log_pages": max(1, -(-log_count // LOG_PAGE_SIZE)),
        "subject": _subjects(job),
    }


def _subjects(job: ScanJob) -> Callable[[job_events.EventView], str]:
    """What a log entry is about; a task also names its phase and source."""
    tasks = {
        t.id: f"{PHASES.get(TaskKind(t.kind), t.kind)} of {t.source_name!r}" for t in job.tasks
    }

    def subject(event: job_events.EventView) -> str:
        what = job_events.subject(event)
        if event.kind == "task" and event.subject_id in tasks:
            return f"{what} ({tasks[event.subject_id]})"
        return what

    return subject


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: int, viewer: SignedIn) -> HTMLResponse:
    context = _panel_context(
        request, job_id, dict(request.query_params), is_admin=viewer.principal.is_admin
    )
    return page(request, "job.html", viewer=viewer, **context)


@router.get("/jobs/{job_id}/panel")
def job_panel(request: Request, job_id: int, viewer: SignedIn) -> HTMLResponse:
    """The job's panel alone, which the page fetches again while the job is live."""
    context = _panel_context(
        request, job_id, dict(request.query_params), is_admin=viewer.principal.is_admin
    )
    html = render("job_panel.html", viewer=viewer, **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/{move}")
def move_job(request: Request, job_id: int, move: str, viewer: SignedIn) -> RedirectResponse:
    response = RedirectResponse(f"/jobs/{job_id}", status_code=303)
    if move not in MOVES:
        flash(response, request, kind="error", text=f"Unknown move {move!r}.")
        return response
    _, act = MOVES[move]
    try:
        job = act(
            _store(request),
            job_id=job_id,
            now=server_now(request),
            by=f"user:{viewer.principal.username}",
        )
    except QuipuError as refused:
        flash(response, request, kind="error", text=str(refused))
        return response
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.poke()
    flash(response, request, text=f"Scan job {job_id}: {move} done; it is now {job.status}.")
    return response
