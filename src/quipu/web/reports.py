"""Report pages: the list, a report's deployments table (sort, search, filters, pages), one
system's facts and where each came from, and the downloads the API serves, by session."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from quipu.domain.errors import NotFound
from quipu.reports.fields import FIELDS
from quipu.services import reports
from quipu.store import Store
from quipu.web import estate
from quipu.web.render import page
from quipu.web.session import SignedIn

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
PER_PAGE = (50, 100)
COLUMNS = (
    ("name", "Name"),
    ("os_name", "OS"),
    ("os_release", "OS release"),
    ("architecture", "Architecture"),
    ("cpu_count", "CPUs"),
    ("infrastructure_type", "Infrastructure"),
    ("ip_addresses", "IP addresses"),
    ("sources", "Sources"),
)
"""The deployments table's columns, each sortable: (query value, heading)."""


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _number(value: str | None, default: int = 1) -> int:
    try:
        return max(1, int(value or default))
    except ValueError:
        return default


@router.get("/reports")
def report_list(request: Request, viewer: SignedIn, page_no: str = "1") -> HTMLResponse:
    number = _number(page_no)
    count, views = reports.list_views(
        _store(request), offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return page(
        request,
        "reports.html",
        viewer=viewer,
        views=views,
        count=count,
        page_no=number,
        pages=max(1, -(-count // PAGE_SIZE)),
    )


def _query(params: dict[str, str]) -> estate.Query:
    per_page = _number(params.get("per_page"), PER_PAGE[0])
    return estate.Query(
        search=params.get("q", "").strip()[:200],
        os_name=params.get("os", ""),
        infrastructure_type=params.get("infra", ""),
        source_type=params.get("source", ""),
        sort=params.get("sort", "name") if params.get("sort") in estate.SORTS else "name",
        descending=params.get("dir") == "desc",
        per_page=per_page if per_page in PER_PAGE else PER_PAGE[0],
        page_no=_number(params.get("page_no")),
    )


def _link(query: estate.Query, **changes: Any) -> str:
    """The query string of this page with ``changes`` (defaults left out)."""
    values = {
        "q": query.search,
        "os": query.os_name,
        "infra": query.infrastructure_type,
        "source": query.source_type,
        "sort": query.sort,
        "dir": "desc" if query.descending else "asc",
        "per_page": query.per_page,
        **changes,
    }
    defaults = {"sort": "name", "dir": "asc", "per_page": PER_PAGE[0]}
    return urlencode({k: v for k, v in values.items() if v and defaults.get(k) != v})


@router.get("/reports/{report_id}")
async def report_page(request: Request, report_id: int, viewer: SignedIn) -> HTMLResponse:
    store = _store(request)
    query = _query(dict(request.query_params))

    def load() -> tuple[reports.ReportView, estate.Table, estate.Found]:
        view = reports.view(store, report_id=report_id)
        table = estate.CACHE.table(store, report_id=report_id)
        return view, table, estate.select(table, query)

    view, table, found = await run_in_threadpool(load)
    here = _link(query)
    return page(
        request,
        "report.html",
        viewer=viewer,
        view=view,
        table=table,
        found=found,
        query=query,
        columns=COLUMNS,
        per_page_choices=PER_PAGE,
        none=estate.NONE,
        sort_link=lambda column: _link(
            query,
            sort=column,
            dir="desc" if query.sort == column and not query.descending else "asc",
        ),
        pager_query=("&" + here) if here else "",
        back="?" + urlencode({"back": here}) if here else "",
        downloads=DOWNLOADS,
    )


@router.get("/reports/{report_id}/systems/{number}")
async def system_page(
    request: Request, report_id: int, number: int, viewer: SignedIn, back: str = ""
) -> HTMLResponse:
    store = _store(request)

    def load() -> tuple[reports.ReportView, dict[str, Any], list[estate.SourceRecords]]:
        view = reports.view(store, report_id=report_id)
        system = estate.system_at(store, report_id=report_id, number=number)
        if system is None:
            raise NotFound(f"Report {report_id} has no system {number}.")
        table = estate.CACHE.table(store, report_id=report_id)
        return (
            view,
            system,
            estate.raw_facts(store, report_id=report_id, system=system, table=table),
        )

    view, system, sources = await run_in_threadpool(load)
    metadata = system.get("metadata") or {}
    facts = [(field, system.get(field), metadata.get(field)) for field in FIELDS]
    return page(
        request,
        "system.html",
        viewer=viewer,
        view=view,
        number=number,
        system=system,
        facts=facts,
        sources=sources,
        shown=estate.shown,
        back=back,
    )


DOWNLOADS: dict[str, tuple[str, str]] = {
    "deployments.json": ("Deployments (JSON)", "application/json"),
    "deployments.csv": ("Deployments (CSV)", "text/csv"),
    "details.json": ("Details (JSON)", "application/json"),
    "details.csv": ("Details (CSV)", "text/csv"),
    "report.tar.gz": ("Every report (.tar.gz)", "application/gzip"),
}
"""The files a report page offers: name in the URL -> (link text, media type)."""


def _file(store: Store, report_id: int, name: str) -> tuple[bytes | str, str]:
    """The body and file name of download ``name``, from the API's service functions (and
    the names the API gives them)."""
    if name == "deployments.json":
        return reports.deployments_json(store, report_id=report_id), (
            f"report_{report_id}_deployments.json"
        )
    if name == "deployments.csv":
        return reports.deployments_csv(store, report_id=report_id), (
            f"report_{report_id}_deployments.csv"
        )
    if name == "details.json":
        return reports.details_json(store, report_id=report_id), f"report_{report_id}_details.json"
    if name == "details.csv":
        return reports.details_csv(store, report_id=report_id), f"report_{report_id}_details.csv"
    return reports.tarball(store, report_id=report_id), f"report_id_{report_id}.tar.gz"


@router.get("/reports/{report_id}/files/{name}")
async def download(request: Request, report_id: int, name: str, viewer: SignedIn) -> Response:
    if name not in DOWNLOADS:
        raise NotFound(f"Reports have no file {name!r}.")
    store = _store(request)
    body, filename = await run_in_threadpool(lambda: _file(store, report_id, name))
    return Response(
        body,
        media_type=DOWNLOADS[name][1],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
