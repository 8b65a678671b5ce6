"""Routes for reports: list, summary, details, deployments (JSON or CSV), download."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from quipu.api.deps import CurrentUser, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.services import reports
from quipu.store.tables import Report

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


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


@router.get("/")
def list_reports(
    request: Request, user: CurrentUser, store: StoreDep, paging: Paging
) -> Page[ReportOut]:
    """Reports, newest first."""
    count, rows = reports.list_reports(store, offset=paging.offset, limit=paging.page_size)
    return page_of(request, params=paging, count=count, results=[_out(r) for r in rows])


@router.get("/{report_id}/")
def get_report(report_id: int, user: CurrentUser, store: StoreDep) -> ReportOut:
    """One report's summary."""
    return _out(reports.get(store, report_id=report_id))


@router.get(
    "/{report_id}/details/",
    responses={200: {"content": {"application/json": {}}}},
    response_class=Response,
)
async def details(report_id: int, user: CurrentUser, store: StoreDep) -> Response:
    """The details report: every system's raw facts, grouped by source."""
    body = await run_in_threadpool(lambda: reports.details_json(store, report_id=report_id))
    return Response(body, media_type="application/json")


@router.get(
    "/{report_id}/deployments/",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
    response_class=Response,
)
async def deployments(
    report_id: int,
    user: CurrentUser,
    store: StoreDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The deployments report: one fingerprint per system; ``Accept: text/csv`` for CSV."""
    if accept and "text/csv" in accept:
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
async def download(report_id: int, user: CurrentUser, store: StoreDep) -> Response:
    """Both reports and their checksums in one .tar.gz."""
    body = await run_in_threadpool(lambda: reports.tarball(store, report_id=report_id))
    return Response(
        body,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="report_id_{report_id}.tar.gz"'},
    )
