"""Source pages: the list with search and paging, add and edit with each type's fields
(hosts as qpc takes them, credentials in order, TLS options, scanners, scheduling, time
windows), delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quipu.domain.errors import InvalidInput, NotFound, QuipuError
from quipu.domain.source_types import rules_of, source_type_of
from quipu.domain.states import SourceType
from quipu.domain.windows import describe
from quipu.services import credentials, scanners, sources
from quipu.settings import Settings
from quipu.store import Store
from quipu.web.catalog_forms import (
    LOOKUP_LIMIT,
    Form,
    Refusal,
    decimal_number,
    form_of,
    id_list,
    list_page,
    ordered_ids,
    redirect,
    refusal,
    show_choices,
    split_hosts,
    store_of,
    whole_number,
)
from quipu.web.render import page
from quipu.web.session import SignedIn, server_now

router = APIRouter(include_in_schema=False)

TYPES = [t.value for t in SourceType]
FIELD_SHOWN = {
    "source_type": "credentials",
    "options": "ssl",
    "use_paramiko": "ssl",
}
"""Where a refusal naming a service field is shown on the form."""


@router.get("/sources")
def source_list(
    request: Request, viewer: SignedIn, search: str = "", page_no: str = "1"
) -> HTMLResponse:
    return list_page(
        request,
        viewer,
        template="sources.html",
        lister=sources.list_sources,
        search=search,
        page_no=page_no,
        rows="sources",
        types=TYPES,
    )


def _choices(
    store: Store, settings: Settings, *, source_type: str, now: datetime
) -> dict[str, Any]:
    _, creds = credentials.list_credentials(store, cred_type=source_type, limit=LOOKUP_LIMIT)
    fleet = scanners.list_scanners(store, now=now, timeout_s=settings.heartbeat_timeout_s)
    return {
        "credential_choices": [(c.id, c.name) for c in creds],
        "scanner_choices": [
            (
                v.scanner.id,
                v.scanner.name,
                v.scanner.builtin,
                v.online,
                v.scanner.enabled,
            )
            for v in fleet
        ],
    }


def _form_page(
    request: Request,
    viewer: SignedIn,
    *,
    source_type: str,
    values: dict[str, Any],
    view: sources.SourceView | None = None,
    problem: Refusal | None = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    rules = rules_of(source_type)
    choices = _choices(
        store_of(request), settings, source_type=source_type, now=server_now(request)
    )
    chosen = list(values.get("credentials") or [])
    count = (
        show_choices(len(chosen), len(choices["credential_choices"]))
        if rules.many_credentials
        else 1
    )
    return page(
        request,
        "sources_form.html",
        viewer=viewer,
        status_code=400 if problem else 200,
        source_type=source_type,
        rules=rules,
        values=values,
        source=view,
        problem=problem or Refusal(""),
        credential_count=count,
        ssl_protocols=sources.SSL_PROTOCOLS,
        scheduling_modes=sources.SCHEDULING_MODES,
        **choices,
    )


def _blank() -> dict[str, Any]:
    return {
        "name": "",
        "hosts": "",
        "exclude_hosts": "",
        "port": "",
        "credentials": [],
        "ssl_cert_verify": True,
        "ssl_protocol": "",
        "disable_ssl": False,
        "proxy_url": "",
        "scheduling_mode": "immediate",
        "max_probes_per_second": "",
        "scanners": [],
        "windows": "",
    }


@router.get("/sources/new", response_model=None)
def new_source(
    request: Request, viewer: SignedIn, source_type: str = ""
) -> HTMLResponse | RedirectResponse:
    try:
        kind = source_type_of(source_type).value
    except InvalidInput as refused:
        return redirect(request, "/sources", kind="error", text=str(refused))
    return _form_page(request, viewer, source_type=kind, values=_blank())


def _typed(form: Form) -> dict[str, Any]:
    """The form as typed, to show it again after a refusal."""
    return {
        "name": form.raw("name"),
        "hosts": form.raw("hosts"),
        "exclude_hosts": form.raw("exclude_hosts"),
        "port": form.raw("port"),
        "credentials": _safe(lambda: ordered_ids(form, prefix="credential", field="credentials")),
        "ssl_cert_verify": form.checked("ssl_cert_verify"),
        "ssl_protocol": form.raw("ssl_protocol"),
        "disable_ssl": form.checked("disable_ssl"),
        "proxy_url": form.raw("proxy_url"),
        "scheduling_mode": form.raw("scheduling_mode"),
        "max_probes_per_second": form.raw("max_probes_per_second"),
        "scanners": _safe(lambda: id_list(form.all("scanners"), field="scanners")),
        "windows": form.raw("windows"),
    }


def _safe(read: Any) -> list[int]:
    try:
        found: list[int] = read()
    except InvalidInput:
        return []
    return found


def _fields(form: Form, *, source_type: str) -> dict[str, Any]:
    """The SourceFields of the form (every field but the type), or InvalidInput."""
    rules = rules_of(source_type)
    found: dict[str, Any] = {
        "name": form.text("name") or "",
        "hosts": split_hosts(form.raw("hosts")),
        "exclude_hosts": split_hosts(form.raw("exclude_hosts")) if rules.exclude_hosts else None,
        "port": whole_number(form.text("port"), field="port", allowed="between 1 and 65535"),
        "credentials": ordered_ids(form, prefix="credential", field="credentials"),
        "scheduling_mode": form.text("scheduling_mode"),
        "max_probes_per_second": decimal_number(
            form.text("max_probes_per_second"),
            field="max_probes_per_second",
            allowed="of probes per second (0: no limit)",
        ),
        "scanners": id_list(form.all("scanners"), field="scanners"),
        "windows": _windows(form),
        "ssl_cert_verify": None,
        "ssl_protocol": None,
        "disable_ssl": None,
        "proxy_url": None,
    }
    if rules.tls_options:
        found |= {
            "ssl_cert_verify": form.checked("ssl_cert_verify"),
            "ssl_protocol": form.text("ssl_protocol"),
            "disable_ssl": True if form.checked("disable_ssl") else None,
            "proxy_url": form.text("proxy_url"),
        }
    return found


def _windows(form: Form) -> list[str]:
    """One window per non-empty line of the form's text."""
    return [line.strip() for line in form.raw("windows").splitlines() if line.strip()]


def _refusal(error: QuipuError) -> Refusal:
    """The refusal shown by the form field that holds the value refused (a window's error
    names it as ``windows[i]``)."""
    name = getattr(error, "field", None)
    shown = dict(FIELD_SHOWN)
    if isinstance(name, str) and name.startswith("windows"):
        shown[name] = "windows"
    return refusal(error, fields=shown)


def window_lines(windows: list[dict[str, Any]]) -> str:
    """The windows as the form shows them, one per line, which read back as the same."""
    return "\n".join(describe(w) for w in windows)


@router.post("/sources/new", response_model=None)
async def add_source(request: Request, viewer: SignedIn) -> Response:
    form = await form_of(request)
    try:
        source_type = source_type_of(form.raw("source_type")).value
    except InvalidInput as refused:
        return redirect(request, "/sources", kind="error", text=str(refused))
    store = store_of(request)
    try:
        fields = sources.SourceFields(
            source_type=source_type, **_fields(form, source_type=source_type)
        )
        view = await run_in_threadpool(
            lambda: sources.add_source(store, fields=fields, now=server_now(request))
        )
    except QuipuError as refused:
        problem = _refusal(refused)
        return await run_in_threadpool(
            lambda: _form_page(
                request,
                viewer,
                source_type=source_type,
                values=_typed(form),
                problem=problem,
            )
        )
    return redirect(request, "/sources", text=f'Source "{view.name}" added.')


def _current_values(view: sources.SourceView) -> dict[str, Any]:
    return {
        "name": view.name,
        "hosts": "\n".join(view.hosts),
        "exclude_hosts": "\n".join(view.exclude_hosts),
        "port": str(view.port),
        "credentials": [c.id for c in view.credentials],
        "ssl_cert_verify": view.ssl_cert_verify is not False,
        "ssl_protocol": view.ssl_protocol or "",
        "disable_ssl": bool(view.disable_ssl),
        "proxy_url": view.proxy_url or "",
        "scheduling_mode": view.scheduling_mode,
        "max_probes_per_second": (
            f"{view.max_probes_per_second:g}" if view.max_probes_per_second else ""
        ),
        "scanners": [s.id for s in view.scanners],
        "windows": window_lines(view.windows),
    }


@router.get("/sources/{source_id}/edit", response_model=None)
def edit_source_page(
    request: Request, source_id: int, viewer: SignedIn
) -> HTMLResponse | RedirectResponse:
    try:
        view = sources.get_source(store_of(request), source_id=source_id)
    except NotFound as missing:
        return redirect(request, "/sources", kind="error", text=str(missing))
    return _form_page(
        request, viewer, source_type=view.source_type, values=_current_values(view), view=view
    )


@router.post("/sources/{source_id}/edit", response_model=None)
async def edit_source(request: Request, source_id: int, viewer: SignedIn) -> Response:
    form = await form_of(request)
    store = store_of(request)
    try:
        current = await run_in_threadpool(lambda: sources.get_source(store, source_id=source_id))
    except NotFound as missing:
        return redirect(request, "/sources", kind="error", text=str(missing))
    try:
        changes = _fields(form, source_type=current.source_type)
        view = await run_in_threadpool(
            lambda: sources.edit_source(
                store, source_id=source_id, changes=changes, now=server_now(request)
            )
        )
    except QuipuError as refused:
        problem = _refusal(refused)
        return await run_in_threadpool(
            lambda: _form_page(
                request,
                viewer,
                source_type=current.source_type,
                values=_typed(form),
                view=current,
                problem=problem,
            )
        )
    return redirect(request, "/sources", text=f'Source "{view.name}" saved.')


@router.post("/sources/{source_id}/delete")
async def delete_source(request: Request, source_id: int, viewer: SignedIn) -> RedirectResponse:
    store = store_of(request)
    try:
        view = await run_in_threadpool(lambda: sources.get_source(store, source_id=source_id))
        await run_in_threadpool(lambda: sources.delete_source(store, source_id=source_id))
    except QuipuError as refused:
        return redirect(request, "/sources", kind="error", text=str(refused))
    return redirect(request, "/sources", text=f'Source "{view.name}" deleted.')
