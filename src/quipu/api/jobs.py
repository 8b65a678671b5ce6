"""Routes for scan jobs: start, read, pause, restart, cancel, approve, per-system results, log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel

from quipu.api.deps import CurrentUser, Now, StoreDep, actor
from quipu.api.pagination import Page, Paging, page_of
from quipu.api.params import MAX_INT64, Id
from quipu.domain.errors import IllegalTransition, InvalidInput
from quipu.domain.rules import Progress
from quipu.domain.states import ScanJobAction, ScanJobStatus, ScanJobType, TaskKind
from quipu.services import auth, job_events, scan_jobs, scan_options
from quipu.store.tables import ScanJob, SystemResult, Task

router = APIRouter(prefix="/api/v1", tags=["scan jobs"])


class SourceRef(BaseModel):
    id: int | None
    name: str
    source_type: str


class ScanRef(BaseModel):
    id: int
    name: str


class TaskOut(BaseModel):
    id: int
    sequence_number: int
    """Its place in its scan job: connection tasks first, then inspection tasks."""
    source: SourceRef
    scan_type: str
    """``connect`` or ``inspect``, as the established server names a task's kind."""
    status: str
    status_message: str
    systems_count: int
    systems_scanned: int
    systems_failed: int
    systems_unreachable: int
    start_time: datetime | None
    end_time: datetime | None


class ProgressOut(BaseModel):
    phase: str | None
    """``connect`` or ``inspect`` while the job runs; null before it starts and once it ended."""
    phase_done: int
    """Systems the phase under way is done with."""
    phase_total: int
    """Systems the phase under way has to do."""
    done: int
    """Systems that reached their last phase; it only grows during a job."""
    total: int
    """Systems of the whole job, as its connection phase found them."""


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    """scan_job, task, scanner_job, schedule, reassign, alarm, error or repair."""
    action: str
    from_status: str | None
    to_status: str | None
    actor: str
    """Who or what caused it: ``user:NAME``, ``schedule``, ``window``, ``retry``,
    ``dispatcher``, ``scanner:NAME``."""
    subject_id: int | None
    """The task or scanner job it is about; null for the scan job itself."""
    message: str


class JobOut(BaseModel):
    id: int
    scan: ScanRef | None
    """The scan it ran (null for a merge or an upload, or once the scan is deleted)."""
    scan_id: int | None
    scan_name: str
    scan_type: str
    """``inspect`` for a run of a scan, ``fingerprint`` for a merge or an upload."""
    report_id: int | None
    status: str
    status_message: str
    start_time: datetime | None
    end_time: datetime | None
    created_at: datetime
    options: dict[str, Any] | None
    """The scan's options as they were when the job started."""
    sources: list[SourceRef]
    systems_count: int
    systems_scanned: int
    systems_failed: int
    systems_unreachable: int
    system_fingerprint_count: int | None
    """Systems in its deployments report; null until it has one."""
    tasks: list[TaskOut]
    trigger: str
    """``user`` for a start by someone, ``schedule`` for a firing of the scan's schedule."""
    approved_by: str | None
    approved_at: datetime | None
    hold_expires_at: datetime | None
    """When a held job fails unless approved; null when it never expires."""
    not_before: datetime | None
    """A pending job waits until then (a retry delay, a closed time window)."""
    progress: ProgressOut


class SystemResultOut(BaseModel):
    id: int
    name: str
    port: int | None
    status: str
    message: str
    credential_id: int | None
    source: SourceRef
    facts: dict[str, Any] | None = None


def job_out(job: ScanJob, *, report: scan_jobs.ReportRef | None) -> JobOut:
    refs = [
        SourceRef(id=t.source_id, name=t.source_name, source_type=t.source_type) for t in job.tasks
    ]
    # the job's sources, each once; an imported report's facts have no source of this server
    sources = {ref.id: ref for ref in refs if ref.id is not None}
    inspects = job.scan_type == ScanJobType.INSPECT
    progress = job_events.progress(job)
    return JobOut(
        id=job.id,
        scan=ScanRef(id=job.scan_id, name=job.scan_name) if job.scan_id is not None else None,
        scan_id=job.scan_id,
        scan_name=job.scan_name,
        scan_type=job.scan_type,
        report_id=report.id if report else None,
        status=job.status,
        status_message=scan_jobs.job_message(job.status, job.status_message),
        start_time=job.start_time,
        end_time=job.end_time,
        created_at=job.created_at,
        options=scan_options.present_options(job.options) if inspects else None,
        sources=list(sources.values()),
        systems_count=job.systems_count,
        systems_scanned=job.systems_scanned,
        systems_failed=job.systems_failed,
        systems_unreachable=job.systems_unreachable,
        system_fingerprint_count=report.systems if report else None,
        tasks=[
            TaskOut(
                id=t.id,
                sequence_number=number,
                source=ref,
                scan_type=t.kind,
                status=t.status,
                status_message=scan_jobs.task_message(t.status, t.status_message),
                systems_count=t.systems_count,
                systems_scanned=t.systems_scanned,
                systems_failed=t.systems_failed,
                systems_unreachable=t.systems_unreachable,
                start_time=t.start_time,
                end_time=t.end_time,
            )
            for number, (t, ref) in enumerate(zip(job.tasks, refs, strict=True), start=1)
        ],
        trigger=job.trigger,
        approved_by=job.approved_by,
        approved_at=job.approved_at,
        hold_expires_at=job.hold_expires_at,
        not_before=job.not_before,
        progress=progress_out(progress),
    )


def progress_out(progress: Progress) -> ProgressOut:
    return ProgressOut(
        phase=progress.phase.value if progress.phase else None,
        phase_done=progress.phase_done,
        phase_total=progress.phase_total,
        done=progress.done,
        total=progress.total,
    )


def _job_out(store: Any, job: ScanJob) -> JobOut:
    return job_out(job, report=scan_jobs.reports_of(store, job_ids=[job.id]).get(job.id))


# The established server's refusals, word for word: its client prints them after "Error:".
REFUSALS: dict[tuple[ScanJobAction, ScanJobStatus | None], str] = {
    (ScanJobAction.PAUSE, ScanJobStatus.PAUSED): (
        "Scan cannot be paused. The scan is already paused."
    ),
    (ScanJobAction.PAUSE, None): (
        "Scan cannot be paused. The scan must be running for it to be paused."
    ),
    (ScanJobAction.RESTART, ScanJobStatus.RUNNING): (
        "Scan cannot be restarted. The scan is already running."
    ),
    (ScanJobAction.RESTART, None): (
        "Scan cannot be restarted. The scan must be paused for it to be restarted."
    ),
    (ScanJobAction.CANCEL, None): (
        "Scan cannot be canceled. The scan has already finished or been canceled."
    ),
}


def _steer(
    act: Callable[..., ScanJob], *, store: Any, job_id: int, now: datetime, by: str
) -> ScanJob:
    """``act`` on a scan job; a refusal in the established server's words and shape."""
    try:
        return act(store, job_id=job_id, now=now, by=by)
    except IllegalTransition as refused:
        action = ScanJobAction(refused.action)
        refusal = REFUSALS.get((action, ScanJobStatus(refused.state)), REFUSALS.get((action, None)))
        if refusal is None:
            raise
        raise InvalidInput(refusal, field="non_field_errors") from None


def _poke(request: Request) -> None:
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.poke()


@router.post("/scans/{scan_id}/jobs/", status_code=status.HTTP_201_CREATED)
def start_scan(
    scan_id: Id, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Start a scan: create a scan job."""
    job = scan_jobs.start(
        store,
        scan_id=scan_id,
        now=now,
        by=actor(user),
        hold_for_s=request.app.state.settings.approval_timeout_s,
    )
    _poke(request)
    return job_out(job, report=None)


@router.get("/scans/{scan_id}/jobs/")
def list_scan_jobs(
    scan_id: Id,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    status: Annotated[str | None, Query(description="Only jobs in this status.")] = None,
) -> Page[JobOut]:
    """The scan jobs of one scan, oldest first (as the established server lists them)."""
    return _page(request, store, paging, scan_id=scan_id, status=status, oldest_first=True)


@router.get("/jobs/")
def list_jobs(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    scan_id: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="Only jobs of this scan.")
    ] = None,
    status: Annotated[str | None, Query(description="Only jobs in this status.")] = None,
) -> Page[JobOut]:
    """Scan jobs, newest first."""
    return _page(request, store, paging, scan_id=scan_id, status=status)


def _page(
    request: Request,
    store: Any,
    paging: Any,
    *,
    scan_id: int | None,
    status: str | None,
    oldest_first: bool = False,
) -> Page[JobOut]:
    result = scan_jobs.list_jobs(
        store,
        scan_id=scan_id,
        status=status,
        offset=paging.offset,
        limit=paging.page_size,
        oldest_first=oldest_first,
    )
    found = scan_jobs.reports_of(store, job_ids=[j.id for j in result.jobs])
    return page_of(
        request,
        params=paging,
        count=result.count,
        results=[job_out(j, report=found.get(j.id)) for j in result.jobs],
    )


# Each job path also answers without its trailing slash: the established client asks for
# /api/v1/jobs/{id} so.
@router.get("/jobs/{job_id}")
@router.get("/jobs/{job_id}/")
def get_job(job_id: Id, request: Request, user: CurrentUser, store: StoreDep) -> JobOut:
    """One scan job with its tasks and counters."""
    return _job_out(store, scan_jobs.get(store, job_id=job_id))


@router.put("/jobs/{job_id}/pause")
@router.put("/jobs/{job_id}/pause/")
def pause_job(job_id: Id, request: Request, user: CurrentUser, store: StoreDep, now: Now) -> JobOut:
    """Pause a pending or running scan job."""
    job = _steer(scan_jobs.pause, store=store, job_id=job_id, now=now, by=actor(user))
    _poke(request)
    return _job_out(store, job)


@router.put("/jobs/{job_id}/restart")
@router.put("/jobs/{job_id}/restart/")
def restart_job(
    job_id: Id, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Restart a paused scan job; it resumes where it stopped."""
    job = _steer(scan_jobs.restart, store=store, job_id=job_id, now=now, by=actor(user))
    _poke(request)
    return _job_out(store, job)


@router.put("/jobs/{job_id}/cancel")
@router.put("/jobs/{job_id}/cancel/")
def cancel_job(
    job_id: Id, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Cancel a scan job for good."""
    job = _steer(scan_jobs.cancel, store=store, job_id=job_id, now=now, by=actor(user))
    _poke(request)
    return _job_out(store, job)


@router.put("/jobs/{job_id}/approve")
@router.put("/jobs/{job_id}/approve/")
def approve_job(
    job_id: Id, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Approve a held scan job (administrators only)."""
    auth.require_admin(user, action="approve a held scan job")
    job = scan_jobs.approve(store, job_id=job_id, now=now, by=actor(user))
    _poke(request)
    return _job_out(store, job)


def _results(
    request: Request,
    store: Any,
    paging: Any,
    *,
    job_id: int,
    kind: TaskKind,
    status: str | None,
) -> Page[SystemResultOut]:
    count, rows = scan_jobs.system_results(
        store, job_id=job_id, kind=kind, status=status, offset=paging.offset, limit=paging.page_size
    )
    return page_of(
        request,
        params=paging,
        count=count,
        results=[_result_out(r, t, facts=kind == TaskKind.INSPECT) for r, t in rows],
    )


def _result_out(result: SystemResult, task: Task, *, facts: bool) -> SystemResultOut:
    return SystemResultOut(
        id=result.id,
        name=result.system,
        port=result.port,
        status=result.status,
        message=result.message,
        credential_id=result.credential_id,
        source=SourceRef(id=task.source_id, name=task.source_name, source_type=task.source_type),
        facts=result.facts if facts else None,
    )


@router.get("/jobs/{job_id}/connection")
@router.get("/jobs/{job_id}/connection/")
def connection_results(
    job_id: Id,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    status: Annotated[str | None, Query(description="success, failed or unreachable.")] = None,
) -> Page[SystemResultOut]:
    """Per-system results of the connection phase."""
    return _results(request, store, paging, job_id=job_id, kind=TaskKind.CONNECT, status=status)


@router.get("/jobs/{job_id}/inspection")
@router.get("/jobs/{job_id}/inspection/")
def inspection_results(
    job_id: Id,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    status: Annotated[str | None, Query(description="success, failed or unreachable.")] = None,
) -> Page[SystemResultOut]:
    """Per-system results (with facts) of the inspection phase."""
    return _results(request, store, paging, job_id=job_id, kind=TaskKind.INSPECT, status=status)


@router.get("/jobs/{job_id}/events")
@router.get("/jobs/{job_id}/events/")
def job_log(
    job_id: Id, request: Request, user: CurrentUser, store: StoreDep, paging: Paging
) -> Page[EventOut]:
    """A scan job's log: every move of it, its tasks and scanner jobs, oldest first."""
    count, events = job_events.list_events(
        store, job_id=job_id, offset=paging.offset, limit=paging.page_size
    )
    return page_of(
        request,
        params=paging,
        count=count,
        results=[EventOut(**dataclasses.asdict(e)) for e in events],
    )
