"""Routes for reports: list, summary, details and deployments (JSON or CSV), aggregate,
insights, download; and the v2 list and summary the established client reads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from quipu.api.deps import CurrentUser, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.api.params import Id
from quipu.services import reports
from quipu.store import Store
from quipu.store.tables import Report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
router_v2 = APIRouter(prefix="/api/v2/reports", tags=["reports"])


class ReportOut(BaseModel):
    id: int
    report_id: int
    scan_job_id: int
    report_version: str
    report_platform_id: str
    systems_count: int
    deployments_count: int
    created_at: datetime


def _out(report: Report) -> ReportOut:
    return ReportOut(
        id=report.id,
        report_id=report.id,
        scan_job_id=report.scan_job_id,
        report_version=report.report_version,
        report_platform_id=report.report_platform_id,
        systems_count=report.systems_count,
        deployments_count=report.deployments_count,
        created_at=report.created_at,
    )


def _wants(accept: str | None, media_type: str) -> bool:
    return bool(accept) and media_type in (accept or "")


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


JSON_GZIP = "application/json+gzip"
"""A report's JSON as one file in a .tar.gz, as older established clients ask for it."""


async def _json_gzip(report_id: int, kind: str, store: Store) -> Response:
    body = await run_in_threadpool(
        lambda: reports.json_tarball(store, report_id=report_id, kind=kind)
    )
    return Response(body, media_type=JSON_GZIP)


class ReportV2Out(BaseModel):
    """A report as the established server's v2 API shows it."""

    id: int
    created_at: datetime
    updated_at: datetime
    report_version: str
    report_platform_id: str
    origin: str
    scan_id: int | None
    scan_name: str | None
    can_download: bool
    cannot_download_reason: str | None
    can_publish: bool
    cannot_publish_reason: str | None


def _v2(found: reports.ReportView) -> ReportV2Out:
    report = found.report
    download_reason = found.cannot_download_reason
    publish_reason = found.cannot_publish_reason
    return ReportV2Out(
        id=report.id,
        created_at=report.created_at,
        # a report is written once, when its job completes
        updated_at=report.created_at,
        report_version=report.report_version,
        report_platform_id=report.report_platform_id,
        origin=report.origin,
        scan_id=found.scan_id,
        scan_name=found.scan_name,
        can_download=download_reason is None,
        cannot_download_reason=download_reason,
        can_publish=publish_reason is None,
        cannot_publish_reason=publish_reason,
    )


@router_v2.get("/")
def list_reports_v2(
    request: Request, user: CurrentUser, store: StoreDep, paging: Paging
) -> Page[ReportV2Out]:
    """Reports, newest first, with their scan and what can be done with them."""
    count, rows = reports.list_views(store, offset=paging.offset, limit=paging.page_size)
    return page_of(request, params=paging, count=count, results=[_v2(r) for r in rows])


@router_v2.get("/{report_id}/")
def get_report_v2(report_id: Id, user: CurrentUser, store: StoreDep) -> ReportV2Out:
    """One report, with its scan and what can be done with it."""
    return _v2(reports.view(store, report_id=report_id))


@router.get("/")
def list_reports(
    request: Request, user: CurrentUser, store: StoreDep, paging: Paging
) -> Page[ReportOut]:
    """Reports, newest first."""
    count, rows = reports.list_reports(store, offset=paging.offset, limit=paging.page_size)
    return page_of(request, params=paging, count=count, results=[_out(r) for r in rows])


@router.get(
    "/{report_id}/",
    response_model=ReportOut,
    responses={200: {"content": {"application/json": {}, "application/gzip": {}}}},
)
async def get_report(
    report_id: Id,
    user: CurrentUser,
    store: StoreDep,
    accept: Annotated[str | None, Header()] = None,
) -> ReportOut | Response:
    """One report's summary; ``Accept: application/gzip`` for the download, which the
    established client fetches here."""
    if _wants(accept, "application/gzip"):
        return await download(report_id, user, store)
    return _out(await run_in_threadpool(lambda: reports.get(store, report_id=report_id)))


@router.get(
    "/{report_id}/details/",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
    response_class=Response,
)
async def details(
    report_id: Id,
    user: CurrentUser,
    store: StoreDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The details report: every system's raw facts, grouped by source; ``Accept: text/csv``
    for CSV, ``application/json+gzip`` for the JSON in a .tar.gz."""
    if _wants(accept, JSON_GZIP):
        return await _json_gzip(report_id, "details", store)
    if _wants(accept, "text/csv"):
        text = await run_in_threadpool(lambda: reports.details_csv(store, report_id=report_id))
        return Response(
            text, media_type="text/csv", headers=_attachment(f"report_{report_id}_details.csv")
        )
    body = await run_in_threadpool(lambda: reports.details_json(store, report_id=report_id))
    return Response(body, media_type="application/json")


@router.get("/{report_id}/aggregate/")
async def aggregate(report_id: Id, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    """The aggregate report: instances by type, OS, hypervisors, and diagnostics."""
    return await run_in_threadpool(lambda: reports.aggregate(store, report_id=report_id))


@router.get(
    "/{report_id}/insights/",
    responses={200: {"content": {"application/json": {}, "application/gzip": {}}}},
    response_class=Response,
)
async def insights(
    report_id: Id,
    user: CurrentUser,
    store: StoreDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The insights report: host slices and metadata.json; ``Accept: application/gzip`` for
    the tarball, else each file as JSON by name."""
    if _wants(accept, "application/gzip"):
        body = await run_in_threadpool(lambda: reports.insights_tarball(store, report_id=report_id))
        return Response(
            body,
            media_type="application/gzip",
            headers=_attachment(f"report_id_{report_id}_insights.tar.gz"),
        )
    files = await run_in_threadpool(lambda: reports.insights_files(store, report_id=report_id))
    return Response(json.dumps(files, sort_keys=True), media_type="application/json")


@router.get(
    "/{report_id}/deployments/",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
    response_class=Response,
)
async def deployments(
    report_id: Id,
    user: CurrentUser,
    store: StoreDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The deployments report: one fingerprint per system; ``Accept: text/csv`` for CSV,
    ``application/json+gzip`` for the JSON in a .tar.gz."""
    if _wants(accept, JSON_GZIP):
        return await _json_gzip(report_id, "deployments", store)
    if _wants(accept, "text/csv"):
        text = await run_in_threadpool(lambda: reports.deployments_csv(store, report_id=report_id))
        return Response(
            text,
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="report_{report_id}_deployments.csv"'
            },
        )
    body = await run_in_threadpool(lambda: reports.deployments_json(store, report_id=report_id))
    return Response(body, media_type="application/json")


@router.get(
    "/{report_id}/download/",
    responses={200: {"content": {"application/gzip": {}}}},
    response_class=Response,
)
async def download(report_id: Id, user: CurrentUser, store: StoreDep) -> Response:
    """Every report as JSON and CSV, the insights tarball and their SHA256SUM in a .tar.gz."""
    body = await run_in_threadpool(lambda: reports.tarball(store, report_id=report_id))
    return Response(
        body,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="report_id_{report_id}.tar.gz"'},
    )
