"""The overview: what is running and waiting, the scanner fleet, alarms, the latest reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from quipu.domain.errors import NotFound
from quipu.services import alarms, reports, scan_jobs, scanners
from quipu.settings import Settings
from quipu.store import Store
from quipu.web import estate
from quipu.web.render import page
from quipu.web.session import SignedIn, server_now

router = APIRouter(include_in_schema=False)

WATCHED = ("running", "pending", "held", "paused")


def estate_of(store: Store, latest: list[reports.ReportView]) -> dict[str, Any] | None:
    """The estate picture: systems by OS and by infrastructure type in the latest report."""
    if not latest:
        return None
    report_id = latest[0].report.id
    try:
        table = estate.CACHE.table(store, report_id=report_id)
    except NotFound:  # removed since it was listed
        return None
    return {
        "report_id": report_id,
        "systems": len(table.rows),
        "charts": [
            ("By operating system", "os", estate.bars(table.os_names)),
            ("By infrastructure type", "infra", estate.bars(table.infrastructure_types)),
        ],
    }


@router.get("/")
def overview(request: Request, viewer: SignedIn) -> HTMLResponse:
    store: Store = request.app.state.store
    settings: Settings = request.app.state.settings
    now = server_now(request)
    jobs = {status: scan_jobs.list_jobs(store, status=status, limit=5) for status in WATCHED}
    fleet = scanners.list_scanners(store, now=now, timeout_s=settings.heartbeat_timeout_s)
    alarm_count, latest_alarms = alarms.list_alarms(store, offset=0, limit=5, resolved=False)
    report_count, latest_reports = reports.list_views(store, offset=0, limit=5)
    return page(
        request,
        "overview.html",
        viewer=viewer,
        jobs=jobs,
        online=[v for v in fleet if v.online],
        offline=[v for v in fleet if not v.online],
        alarm_count=alarm_count,
        alarms=latest_alarms,
        report_count=report_count,
        reports=latest_reports,
        estate=estate_of(store, latest_reports),
    )
