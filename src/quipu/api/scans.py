"""Routes for scans (``/api/v1/scans/``): named groups of sources that are started together."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from quipu.api.credentials import BulkDelete, BulkDeletedPublic, Name, NameQuery, SearchQuery
from quipu.api.deps import CurrentUser, Now, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.api.params import Id
from quipu.domain.schedules import parse_schedule
from quipu.domain.states import ScanJobStatus
from quipu.services import scan_jobs, scans

router = APIRouter(prefix="/api/v1/scans", tags=["scans"])

NOT_STARTED = frozenset({ScanJobStatus.CREATED, ScanJobStatus.PENDING, ScanJobStatus.HELD})
"""Statuses whose counts the established server leaves out: nothing was counted yet."""

Concurrency = Annotated[
    int, Field(description="Systems inspected at once, per scanner job: 1 to 200, default 25.")
]


class ProductFlags(BaseModel):
    """One flag per optional product; a product left out is not changed (or is false)."""

    # extra="ignore": older established clients still send jboss_brms, a product now gone.
    model_config = ConfigDict(extra="ignore")

    jboss_eap: bool | None = None
    jboss_fuse: bool | None = None
    jboss_ws: bool | None = None


class ExtendedProductSearch(ProductFlags):
    search_directories: list[str] | None = Field(
        None, description="Absolute directories to search for the products too."
    )


class ScanOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrency: Concurrency | None = None
    disabled_optional_products: ProductFlags | None = Field(
        None, description="Products not to inspect (true: left out)."
    )
    enabled_extended_product_search: ExtendedProductSearch | None = Field(
        None, description="Products to search for in more places (true: searched)."
    )

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


ScheduleIn = Annotated[
    dict[str, Any] | None,
    Field(
        description='When its scan jobs start on their own: {"cron": "0 2 * * 1-5", '
        '"timezone": "Europe/Paris"} (timezone default UTC); null: by hand only.'
    ),
]
WindowsIn = Annotated[
    list[Any] | None,
    Field(
        description='Time windows its jobs run in: "mon-fri 08:00-18:00 Europe/Paris" or '
        '{"days": ["mon"], "start": "08:00", "end": "18:00", "timezone": "UTC"}; [] any time.'
    ),
]
RetryIn = Annotated[
    dict[str, Any] | None,
    Field(
        description='Retries when no target answers: {"attempts": 3, "delay_s": 300, '
        '"backoff": 2}; {} or null: none.'
    ),
]


class ScanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    scan_type: Literal["inspect"] = "inspect"
    sources: list[int] = Field(min_length=1, description="Source ids, in order.")
    options: ScanOptions = Field(default_factory=ScanOptions)
    schedule: ScheduleIn = None
    windows: WindowsIn = None
    retry: RetryIn = None

    def lifecycle(self) -> dict[str, Any]:
        """Schedule, windows and retry as the service takes them (a missing one: none)."""
        return {
            "schedule": parse_schedule(self.schedule, field="schedule"),
            "windows": self.windows or [],
            "retry": self.retry or {},
        }


class ScanUpdate(BaseModel):
    """A partial edit; fields left out are kept."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    scan_type: Literal["inspect"] | None = None
    sources: list[int] | None = None
    options: ScanOptions | None = Field(
        None, description="Merged into the scan's: products left out keep their flags."
    )
    schedule: ScheduleIn = None
    windows: WindowsIn = None
    retry: RetryIn = None

    def lifecycle(self) -> dict[str, Any]:
        """Those of schedule, windows and retry given (null clears), as the service takes them."""
        given = self.model_fields_set
        changes: dict[str, Any] = {}
        if "schedule" in given:
            changes["schedule"] = parse_schedule(self.schedule, field="schedule")
        if "windows" in given:
            changes["windows"] = self.windows or []
        if "retry" in given:
            changes["retry"] = self.retry or {}
        return changes


class SourceRefPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source_type: str


class ScanJobRefPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    start_time: datetime | None
    end_time: datetime | None


class JobReportPublic(BaseModel):
    id: int
    report_id: int | None


class SchedulePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cron: str
    timezone: str
    next_firings: list[datetime] = Field(description="The next 5 firings, in UTC.")


class ScanPublic(BaseModel):
    id: int
    name: str
    scan_type: str
    sources: list[SourceRefPublic]
    options: dict[str, Any]
    schedule: SchedulePublic | None = Field(description="None: started by hand only.")
    windows: list[Any] = Field(description="Time windows its jobs run in; []: any time.")
    retry: dict[str, Any] = Field(description="Retry policy; {}: no retry.")
    jobs: list[JobReportPublic] = Field(description="Its scan jobs, oldest first.")
    most_recent: dict[str, Any] | None = Field(
        description="Its newest scan job as the established server sums it up."
    )
    most_recent_scanjob: ScanJobRefPublic | None
    created_at: datetime
    updated_at: datetime


def scan_public(view: scans.ScanView) -> ScanPublic:
    recent = view.most_recent_scanjob
    return ScanPublic(
        id=view.id,
        name=view.name,
        scan_type=view.scan_type,
        sources=[SourceRefPublic.model_validate(s) for s in view.sources],
        options=view.options,
        schedule=None if view.schedule is None else SchedulePublic.model_validate(view.schedule),
        windows=view.windows,
        retry=view.retry,
        jobs=[JobReportPublic(id=i, report_id=r) for i, r in view.jobs],
        most_recent=None if recent is None else most_recent(recent),
        most_recent_scanjob=None if recent is None else ScanJobRefPublic.model_validate(recent),
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def most_recent(job: scans.JobRef) -> dict[str, Any]:
    """A scan's newest job in the established server's words: counts once it started,
    times once set, each task's message when it failed."""
    summary: dict[str, Any] = {"id": job.id, "scan_type": job.scan_type, "status": job.status}
    if job.report_id is not None:
        summary["report_id"] = job.report_id
    if job.start_time is not None:
        summary["start_time"] = job.start_time
    if job.end_time is not None:
        summary["end_time"] = job.end_time
    if job.status not in NOT_STARTED:
        summary |= {
            "systems_count": job.systems_count,
            "systems_scanned": job.systems_scanned,
            "systems_failed": job.systems_failed,
            "systems_unreachable": job.systems_unreachable,
            "system_fingerprint_count": job.fingerprints or 0,
        }
    details = {"job_status_message": scan_jobs.job_message(job.status, job.status_message)}
    if job.status == ScanJobStatus.FAILED:
        details |= {f"task_{task_id}_status_message": m for task_id, m in job.task_messages}
    summary["status_details"] = details
    return summary


@router.get("/")
def list_scans(
    request: Request,
    store: StoreDep,
    user: CurrentUser,
    paging: Paging,
    now: Now,
    name: NameQuery = None,
    search_by_name: SearchQuery = None,
) -> Page[ScanPublic]:
    """List scans, ordered by name."""
    count, views = scans.list_scans(
        store,
        name=name,
        search_by_name=search_by_name,
        offset=paging.offset,
        limit=paging.page_size,
        now=now,
    )
    results = [scan_public(v) for v in views]
    return page_of(request, params=paging, count=count, results=results)


@router.post("/", status_code=201)
def add_scan(body: ScanCreate, store: StoreDep, user: CurrentUser, now: Now) -> ScanPublic:
    """Add a scan."""
    fields = scans.ScanFields(
        name=body.name,
        scan_type=body.scan_type,
        sources=body.sources,
        options=body.options.given(),
        **body.lifecycle(),
    )
    return scan_public(scans.add_scan(store, fields=fields, now=now))


@router.post("/bulk_delete/")
def bulk_delete_scans(body: BulkDelete, store: StoreDep, user: CurrentUser) -> BulkDeletedPublic:
    """Delete several scans; their scan jobs and reports stay."""
    return BulkDeletedPublic.model_validate(scans.bulk_delete_scans(store, ids=body.ids))


@router.get("/{scan_id}/")
def get_scan(scan_id: Id, store: StoreDep, user: CurrentUser, now: Now) -> ScanPublic:
    """Show one scan, its schedule's next firings and its newest scan job."""
    return scan_public(scans.get_scan(store, scan_id=scan_id, now=now))


@router.put("/{scan_id}/")
def replace_scan(
    scan_id: Id, body: ScanCreate, store: StoreDep, user: CurrentUser, now: Now
) -> ScanPublic:
    """Replace a scan; options, schedule, windows and retry left out get their defaults."""
    changes = {
        "name": body.name,
        "scan_type": body.scan_type,
        "sources": body.sources,
        "options": body.options.given(),
        **body.lifecycle(),
    }
    view = scans.edit_scan(store, scan_id=scan_id, changes=changes, partial=False, now=now)
    return scan_public(view)


@router.patch("/{scan_id}/")
def edit_scan(
    scan_id: Id, body: ScanUpdate, store: StoreDep, user: CurrentUser, now: Now
) -> ScanPublic:
    """Change some fields of a scan; options given are merged into the scan's."""
    lifecycle = {"schedule", "windows", "retry"}
    changes: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set - lifecycle}
    changes["options"] = body.options.given() if body.options is not None else {}
    changes |= body.lifecycle()
    view = scans.edit_scan(store, scan_id=scan_id, changes=changes, partial=True, now=now)
    return scan_public(view)


@router.delete("/{scan_id}/", status_code=204)
def delete_scan(scan_id: Id, store: StoreDep, user: CurrentUser) -> None:
    """Delete a scan; its scan jobs and reports stay."""
    scans.delete_scan(store, scan_id=scan_id)
