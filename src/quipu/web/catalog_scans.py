"""Scan pages: the list with search and paging, a scan's page with its schedule, jobs and the
Start button, add and edit (sources in order, options, schedule, windows, retry), delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quipu.domain.errors import InvalidInput, NotFound, QuipuError
from quipu.domain.schedules import DEFAULT_TIMEZONE, parse_schedule
from quipu.domain.windows import describe
from quipu.services import scan_jobs, scan_options, scans, sources
from quipu.store import Store
from quipu.web.catalog_forms import (
    LOOKUP_LIMIT,
    PAGE_SIZE,
    Form,
    Refusal,
    form_of,
    list_page,
    ordered_ids,
    redirect,
    refusal,
    show_choices,
    store_of,
)
from quipu.web.render import page
from quipu.web.session import SignedIn, server_now

router = APIRouter(include_in_schema=False)

PRODUCTS = scan_options.PRODUCTS
FIELD_SHOWN = {
    "options.max_concurrency": "max_concurrency",
    f"options.{scan_options.EXTENDED}.{scan_options.SEARCH_DIRECTORIES}": "search_directories",
    "schedule": "schedule_cron",
    "schedule.timezone": "schedule_timezone",
    "retry": "retry_attempts",
    "retry.attempts": "retry_attempts",
    "retry.delay_s": "retry_delay_s",
    "retry.backoff": "retry_backoff",
}
RETRY_NUMBERS = (
    ("attempts", "retry_attempts", int, "a whole number of retries"),
    ("delay_s", "retry_delay_s", float, "a number of seconds"),
    ("backoff", "retry_backoff", float, "a number, the factor each delay grows by"),
)
"""(policy key, form field, type, what it must be) of the retry fields."""


@router.get("/scans")
def scan_list(
    request: Request, viewer: SignedIn, search: str = "", page_no: str = "1"
) -> HTMLResponse:
    now = server_now(request)  # the next firings shown are those after the server's time
    return list_page(
        request,
        viewer,
        template="scans.html",
        lister=lambda store, **page: scans.list_scans(store, now=now, **page),
        search=search,
        page_no=page_no,
        rows="scans",
    )


def _form_page(
    request: Request,
    viewer: SignedIn,
    *,
    values: dict[str, Any],
    view: scans.ScanView | None = None,
    problem: Refusal | None = None,
) -> HTMLResponse:
    store: Store = store_of(request)
    _, found = sources.list_sources(store, limit=LOOKUP_LIMIT)
    choices = [(s.id, f"{s.name} ({s.source_type})") for s in found]
    return page(
        request,
        "scans_form.html",
        viewer=viewer,
        status_code=400 if problem else 200,
        values=values,
        scan=view,
        problem=problem or Refusal(""),
        source_choices=choices,
        source_count=show_choices(len(values["sources"]), len(choices)),
        products=PRODUCTS,
        max_concurrency=scan_options.MAX_CONCURRENCY,
    )


def _blank() -> dict[str, Any]:
    return {
        "name": "",
        "sources": [],
        "max_concurrency": str(scan_options.DEFAULT_MAX_CONCURRENCY),
        "disabled": [],
        "extended": [],
        "search_directories": "",
        "schedule_cron": "",
        "schedule_timezone": DEFAULT_TIMEZONE,
        "windows": "",
        "retry_attempts": "",
        "retry_delay_s": "",
        "retry_backoff": "",
    }


@router.get("/scans/new")
def new_scan(request: Request, viewer: SignedIn) -> HTMLResponse:
    return _form_page(request, viewer, values=_blank())


def _typed(form: Form) -> dict[str, Any]:
    try:
        chosen = ordered_ids(form, prefix="source", field="sources")
    except InvalidInput:
        chosen = []
    return {
        "name": form.raw("name"),
        "sources": chosen,
        "max_concurrency": form.raw("max_concurrency"),
        "disabled": [p for p in PRODUCTS if form.checked(f"disabled_{p}")],
        "extended": [p for p in PRODUCTS if form.checked(f"extended_{p}")],
        "search_directories": form.raw("search_directories"),
        **{name: form.raw(name) for name in LIFECYCLE_FORM_FIELDS},
    }


LIFECYCLE_FORM_FIELDS = (
    "schedule_cron",
    "schedule_timezone",
    "windows",
    "retry_attempts",
    "retry_delay_s",
    "retry_backoff",
)


def _options(form: Form) -> dict[str, Any]:
    options: dict[str, Any] = {}
    concurrency = form.text("max_concurrency")
    if concurrency is not None:
        try:
            options["max_concurrency"] = int(concurrency)
        except ValueError:
            raise InvalidInput(
                f"{scan_options.NOT_A_COUNT[:-1]} (1 to {scan_options.MAX_CONCURRENCY}).",
                field="options.max_concurrency",
            ) from None
    disabled = {p: form.checked(f"disabled_{p}") for p in PRODUCTS}
    if any(disabled.values()):
        options[scan_options.DISABLED] = disabled
    extended: dict[str, Any] = {p: form.checked(f"extended_{p}") for p in PRODUCTS}
    directories = [d.strip() for d in form.raw("search_directories").splitlines() if d.strip()]
    if directories:
        extended[scan_options.SEARCH_DIRECTORIES] = directories
    if any(extended.values()):
        options[scan_options.EXTENDED] = extended
    return options


def _schedule(form: Form) -> dict[str, Any] | None:
    """An empty cron field means no schedule, whatever the time zone field says."""
    cron = form.text("schedule_cron")
    if cron is None:
        return None
    return {"cron": cron, "timezone": form.text("schedule_timezone") or DEFAULT_TIMEZONE}


def _windows(form: Form) -> list[str]:
    return [line.strip() for line in form.raw("windows").splitlines() if line.strip()]


def _retry(form: Form) -> dict[str, Any]:
    """The retry fields filled in; none filled: no retry (the service checks the values)."""
    policy: dict[str, Any] = {}
    for key, name, kind, what in RETRY_NUMBERS:
        typed = form.text(name)
        if typed is None:
            continue
        try:
            policy[key] = kind(typed)
        except ValueError:
            raise InvalidInput(f"retry.{key} must be {what}.", field=f"retry.{key}") from None
    return policy


def _fields(form: Form) -> scans.ScanFields:
    return scans.ScanFields(
        name=form.text("name") or "",
        sources=ordered_ids(form, prefix="source", field="sources"),
        options=_options(form),
        schedule=parse_schedule(_schedule(form), field="schedule"),
        windows=_windows(form),
        retry=_retry(form),
    )


def _refusal(error: QuipuError) -> Refusal:
    """The refusal shown by the form field that holds the value refused."""
    name = getattr(error, "field", None)
    shown = dict(FIELD_SHOWN)
    if isinstance(name, str) and name.startswith("windows"):
        shown[name] = "windows"
    return refusal(error, fields=shown)


@router.post("/scans/new", response_model=None)
async def add_scan(request: Request, viewer: SignedIn) -> Response:
    form = await form_of(request)
    store = store_of(request)
    try:
        fields = _fields(form)
        view = await run_in_threadpool(
            lambda: scans.add_scan(store, fields=fields, now=server_now(request))
        )
    except QuipuError as refused:
        problem = _refusal(refused)
        return await run_in_threadpool(
            lambda: _form_page(request, viewer, values=_typed(form), problem=problem)
        )
    return redirect(request, f"/scans/{view.id}", text=f'Scan "{view.name}" added.')


@router.get("/scans/{scan_id}", response_model=None)
def scan_page(request: Request, scan_id: int, viewer: SignedIn) -> HTMLResponse | Response:
    store = store_of(request)
    try:
        view = scans.get_scan(store, scan_id=scan_id, now=server_now(request))
    except NotFound as missing:
        return redirect(request, "/scans", kind="error", text=str(missing))
    found = scan_jobs.list_jobs(store, scan_id=scan_id, limit=PAGE_SIZE)
    reports = scan_jobs.reports_of(store, job_ids=[j.id for j in found.jobs])
    return page(
        request,
        "scans_detail.html",
        viewer=viewer,
        scan=view,
        jobs=[(job, reports.get(job.id)) for job in found.jobs],
        job_count=found.count,
        current=_current_values(view),
        firings=_firings(view),
    )


def _firings(view: scans.ScanView) -> list[tuple[datetime, str]]:
    """The coming firings, each with its time in the schedule's own zone (how it was written)."""
    if view.schedule is None:
        return []
    zone = ZoneInfo(view.schedule.timezone)
    return [
        (at, at.astimezone(zone).strftime(f"%a %Y-%m-%d %H:%M {view.schedule.timezone}"))
        for at in view.schedule.next_firings
    ]


def _current_values(view: scans.ScanView) -> dict[str, Any]:
    options = view.options
    disabled = options.get(scan_options.DISABLED) or {}
    extended = options.get(scan_options.EXTENDED) or {}
    return {
        "name": view.name,
        "sources": [s.id for s in view.sources],
        "max_concurrency": str(options.get("max_concurrency", "")),
        "disabled": [p for p in PRODUCTS if disabled.get(p)],
        "extended": [p for p in PRODUCTS if extended.get(p)],
        "search_directories": "\n".join(extended.get(scan_options.SEARCH_DIRECTORIES) or []),
        "schedule_cron": view.schedule.cron if view.schedule else "",
        "schedule_timezone": view.schedule.timezone if view.schedule else DEFAULT_TIMEZONE,
        "windows": "\n".join(window_text(w) for w in view.windows),
        "retry_attempts": str(view.retry.get("attempts", "")),
        "retry_delay_s": _number_text(view.retry.get("delay_s")),
        "retry_backoff": _number_text(view.retry.get("backoff")),
    }


def window_text(window: Any) -> str:
    """A stored window as the form's one-line form (as the source form writes it too), which
    reads back as the same window."""
    return window if isinstance(window, str) else describe(window)


def _number_text(value: Any) -> str:
    return "" if value is None else f"{value:g}"


@router.get("/scans/{scan_id}/edit", response_model=None)
def edit_scan_page(
    request: Request, scan_id: int, viewer: SignedIn
) -> HTMLResponse | RedirectResponse:
    try:
        view = scans.get_scan(store_of(request), scan_id=scan_id)
    except NotFound as missing:
        return redirect(request, "/scans", kind="error", text=str(missing))
    return _form_page(request, viewer, values=_current_values(view), view=view)


@router.post("/scans/{scan_id}/edit", response_model=None)
async def edit_scan(request: Request, scan_id: int, viewer: SignedIn) -> Response:
    form = await form_of(request)
    store = store_of(request)
    try:
        current = await run_in_threadpool(lambda: scans.get_scan(store, scan_id=scan_id))
    except NotFound as missing:
        return redirect(request, "/scans", kind="error", text=str(missing))
    try:
        fields = _fields(form)
        changes = {
            "name": fields.name,
            "sources": fields.sources,
            "options": fields.options,
            "schedule": fields.schedule,
            "windows": fields.windows,
            "retry": fields.retry,
        }
        # The form shows every option, so what it sends replaces them (as a PUT does).
        view = await run_in_threadpool(
            lambda: scans.edit_scan(
                store, scan_id=scan_id, changes=changes, partial=False, now=server_now(request)
            )
        )
    except QuipuError as refused:
        problem = _refusal(refused)
        return await run_in_threadpool(
            lambda: _form_page(
                request,
                viewer,
                values=_typed(form),
                view=current,
                problem=problem,
            )
        )
    return redirect(request, f"/scans/{view.id}", text=f'Scan "{view.name}" saved.')


@router.post("/scans/{scan_id}/delete")
async def delete_scan(request: Request, scan_id: int, viewer: SignedIn) -> RedirectResponse:
    store = store_of(request)
    try:
        view = await run_in_threadpool(lambda: scans.get_scan(store, scan_id=scan_id))
        await run_in_threadpool(lambda: scans.delete_scan(store, scan_id=scan_id))
    except QuipuError as refused:
        return redirect(request, "/scans", kind="error", text=str(refused))
    return redirect(
        request, "/scans", text=f'Scan "{view.name}" deleted; its scan jobs and reports stay.'
    )


@router.post("/scans/{scan_id}/start")
async def start_scan(request: Request, scan_id: int, viewer: SignedIn) -> RedirectResponse:
    store = store_of(request)
    try:
        job = await run_in_threadpool(
            lambda: scan_jobs.start(
                store,
                scan_id=scan_id,
                now=server_now(request),
                by=f"user:{viewer.principal.username}",
                hold_for_s=request.app.state.settings.approval_timeout_s,
            )
        )
    except QuipuError as refused:
        return redirect(request, f"/scans/{scan_id}", kind="error", text=str(refused))
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.poke()
    return redirect(
        request, f"/jobs/{job.id}", text=f"Scan job {job.id} started; it is {job.status}."
    )
