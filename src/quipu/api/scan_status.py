"""``GET /api/scans/{id}``: a scan's aggregate status, for scripts that follow the scanner
dispatch document ("check the scan status via GET /api/scans/:id")."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from quipu.api.deps import CurrentUser, StoreDep
from quipu.api.jobs import ProgressOut, progress_out
from quipu.api.params import Id
from quipu.services import job_events, scan_jobs, scans

router = APIRouter(prefix="/api/scans", tags=["scans"])


class AlarmPublic(BaseModel):
    id: int
    kind: str
    message: str
    actions: list[str]
    created_at: datetime


class ScanStatusPublic(BaseModel):
    id: int
    name: str
    status: str | None = Field(
        description="Its newest scan job's status; null when the scan was never started."
    )
    status_message: str
    job_id: int | None = Field(description="Its newest scan job; null before its first start.")
    jobs_count: int = Field(description="How many scan jobs the scan has had.")
    trigger: str | None = Field(description="user or schedule: what started the newest job.")
    start_time: datetime | None
    end_time: datetime | None
    updated_at: datetime | None = Field(description="When the newest job last changed.")
    systems_count: int
    systems_scanned: int
    systems_failed: int
    systems_unreachable: int
    progress: ProgressOut | None = Field(description="Null before the first start.")
    scanner_jobs: dict[str, int] = Field(
        description="How many of the newest job's scanner jobs are in each status."
    )
    alarms: list[AlarmPublic] = Field(description="Alarms open on the newest job.")


def status_public(found: scans.ScanStatus) -> ScanStatusPublic:
    job = found.latest
    if job is None:
        return ScanStatusPublic(
            id=found.id,
            name=found.name,
            status=None,
            status_message=f'Scan "{found.name}" has not been started yet.',
            job_id=None,
            jobs_count=0,
            trigger=None,
            start_time=None,
            end_time=None,
            updated_at=None,
            systems_count=0,
            systems_scanned=0,
            systems_failed=0,
            systems_unreachable=0,
            progress=None,
            scanner_jobs=found.scanner_jobs,
            alarms=[],
        )
    progress = job_events.progress(job)
    return ScanStatusPublic(
        id=found.id,
        name=found.name,
        status=job.status,
        status_message=scan_jobs.job_message(job.status, job.status_message),
        job_id=job.id,
        jobs_count=found.jobs_count,
        trigger=job.trigger,
        start_time=job.start_time,
        end_time=job.end_time,
        updated_at=job.updated_at,
        systems_count=job.systems_count,
        systems_scanned=job.systems_scanned,
        systems_failed=job.systems_failed,
        systems_unreachable=job.systems_unreachable,
        progress=progress_out(progress),
        scanner_jobs=found.scanner_jobs,
        alarms=[
            AlarmPublic(
                id=a.id,
                kind=a.kind,
                message=a.message,
                actions=list(a.actions or []),
                created_at=a.created_at,
            )
            for a in found.alarms
        ],
    )


# The document writes the path without a trailing slash; both answer.
@router.get("/{scan_id}")
@router.get("/{scan_id}/")
def get_scan_status(scan_id: Id, store: StoreDep, user: CurrentUser) -> ScanStatusPublic:
    """A scan's aggregate status: its newest scan job's state and counters, its scanner
    jobs by status and the alarms open on it."""
    return status_public(scans.scan_status(store, scan_id=scan_id))
