"""Routes for scan jobs: start, read, pause, restart, cancel, approve, per-system results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel

from quipu.api.deps import CurrentUser, Now, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.domain.states import TaskKind
from quipu.services import auth, reports, scan_jobs
from quipu.store.tables import ScanJob, SystemResult, Task

router = APIRouter(prefix="/api/v1", tags=["scan jobs"])


class SourceRef(BaseModel):
    id: int | None
    name: str
    source_type: str


class TaskOut(BaseModel):
    id: int
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


class JobOut(BaseModel):
    id: int
    scan_id: int | None
    scan_name: str
    report_id: int | None
    status: str
    status_message: str
    start_time: datetime | None
    end_time: datetime | None
    created_at: datetime
    sources: list[SourceRef]
    systems_count: int
    systems_scanned: int
    systems_failed: int
    systems_unreachable: int
    tasks: list[TaskOut]


class SystemResultOut(BaseModel):
    id: int
    name: str
    port: int | None
    status: str
    message: str
    credential_id: int | None
    source: SourceRef
    facts: dict[str, Any] | None = None


def job_out(job: ScanJob, *, report_id: int | None) -> JobOut:
    sources: dict[int | None, SourceRef] = {}
    for task in job.tasks:
        sources.setdefault(
            task.source_id,
            SourceRef(id=task.source_id, name=task.source_name, source_type=task.source_type),
        )
    return JobOut(
        id=job.id,
        scan_id=job.scan_id,
        scan_name=job.scan_name,
        report_id=report_id,
        status=job.status,
        status_message=job.status_message,
        start_time=job.start_time,
        end_time=job.end_time,
        created_at=job.created_at,
        sources=list(sources.values()),
        systems_count=job.systems_count,
        systems_scanned=job.systems_scanned,
        systems_failed=job.systems_failed,
        systems_unreachable=job.systems_unreachable,
        tasks=[
            TaskOut(
                id=t.id,
                source=sources[t.source_id],
                scan_type=t.kind,
                status=t.status,
                status_message=t.status_message,
                systems_count=t.systems_count,
                systems_scanned=t.systems_scanned,
                systems_failed=t.systems_failed,
                systems_unreachable=t.systems_unreachable,
                start_time=t.start_time,
                end_time=t.end_time,
            )
            for t in job.tasks
        ],
    )


def _poke(request: Request) -> None:
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.poke()


@router.post("/scans/{scan_id}/jobs/", status_code=status.HTTP_201_CREATED)
def start_scan(
    scan_id: int, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Start a scan: create a scan job."""
    job = scan_jobs.start(store, scan_id=scan_id, now=now)
    _poke(request)
    return job_out(job, report_id=None)


@router.get("/scans/{scan_id}/jobs/")
def list_scan_jobs(
    scan_id: int,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    status: Annotated[str | None, Query(description="Only jobs in this status.")] = None,
) -> Page[JobOut]:
    """The scan jobs of one scan, newest first."""
    return _page(request, store, paging, scan_id=scan_id, status=status)


@router.get("/jobs/")
def list_jobs(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    scan_id: Annotated[int | None, Query(description="Only jobs of this scan.")] = None,
    status: Annotated[str | None, Query(description="Only jobs in this status.")] = None,
) -> Page[JobOut]:
    """Scan jobs, newest first."""
    return _page(request, store, paging, scan_id=scan_id, status=status)


def _page(
    request: Request, store: Any, paging: Any, *, scan_id: int | None, status: str | None
) -> Page[JobOut]:
    result = scan_jobs.list_jobs(
        store, scan_id=scan_id, status=status, offset=paging.offset, limit=paging.page_size
    )
    ids = reports.ids_of_jobs(store, job_ids=[j.id for j in result.jobs])
    return page_of(
        request,
        params=paging,
        count=result.count,
        results=[job_out(j, report_id=ids.get(j.id)) for j in result.jobs],
    )


@router.get("/jobs/{job_id}")
@router.get("/jobs/{job_id}/")
def get_job(job_id: int, request: Request, user: CurrentUser, store: StoreDep) -> JobOut:
    """One scan job with its tasks and counters."""
    job = scan_jobs.get(store, job_id=job_id)
    return job_out(job, report_id=reports.ids_of_jobs(store, job_ids=[job.id]).get(job.id))


@router.put("/jobs/{job_id}/pause/")
def pause_job(
    job_id: int, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Pause a pending or running scan job."""
    job = scan_jobs.pause(store, job_id=job_id, now=now)
    _poke(request)
    return job_out(job, report_id=None)


@router.put("/jobs/{job_id}/restart/")
def restart_job(
    job_id: int, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Restart a paused scan job; it resumes where it stopped."""
    job = scan_jobs.restart(store, job_id=job_id, now=now)
    _poke(request)
    return job_out(job, report_id=None)


@router.put("/jobs/{job_id}/cancel/")
def cancel_job(
    job_id: int, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Cancel a scan job for good."""
    job = scan_jobs.cancel(store, job_id=job_id, now=now)
    _poke(request)
    return job_out(job, report_id=None)


@router.put("/jobs/{job_id}/approve/")
def approve_job(
    job_id: int, request: Request, user: CurrentUser, store: StoreDep, now: Now
) -> JobOut:
    """Approve a held scan job (administrators only)."""
    auth.require_admin(user, action="approve a held scan job")
    job = scan_jobs.approve(store, job_id=job_id, now=now)
    _poke(request)
    return job_out(job, report_id=None)


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


@router.get("/jobs/{job_id}/connection/")
def connection_results(
    job_id: int,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    status: Annotated[str | None, Query(description="success, failed or unreachable.")] = None,
) -> Page[SystemResultOut]:
    """Per-system results of the connection phase."""
    return _results(request, store, paging, job_id=job_id, kind=TaskKind.CONNECT, status=status)


@router.get("/jobs/{job_id}/inspection/")
def inspection_results(
    job_id: int,
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    status: Annotated[str | None, Query(description="success, failed or unreachable.")] = None,
) -> Page[SystemResultOut]:
    """Per-system results (with facts) of the inspection phase."""
    return _results(request, store, paging, job_id=job_id, kind=TaskKind.INSPECT, status=status)
