"""The scanner fleet and the alarms, as pages.

Scanners: the list (online or offline from the heartbeat, draining, the jobs each holds),
whose fragment the page fetches again every few seconds; adding one, enabling, disabling,
draining and rotating its key. A new key is shown once, on the page that answers the add or
the rotation, and never again: Quipu keeps only its hash. Alarms: the open ones (or all),
newest first, paged, each with its cause, what it means, what to do about it and a form per
repair it offers, linked to its scan job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from quipu.domain.errors import AlreadyExists, Forbidden, InvalidInput, QuipuError
from quipu.services import alarms, auth, scanners
from quipu.settings import Settings
from quipu.store import Store
from quipu.web.render import page, render
from quipu.web.session import SignedIn, Viewer, flash, server_now

router = APIRouter(include_in_schema=False)

ALARMS_PAGE_SIZE = 25
NAME_MAX = 64
"""As the API's ``ScannerCreate.name``."""


@dataclass(frozen=True, slots=True)
class AlarmKind:
    title: str
    meaning: str
    advice: str


ALARM_KINDS: dict[str, AlarmKind] = {
    "unclaimed": AlarmKind(
        title="Work nobody claims",
        meaning=(
            "A scanner job of a running scan job has waited longer than the threshold for a "
            "scanner to claim it. The message says why: no scanner of its source is online, "
            "they are all disabled, or they are all draining."
        ),
        advice=(
            "Start or enable a scanner of the source, undrain one, or re-assign the source to "
            "a scanner that works; re-dispatch hands the work to another scanner of the "
            "source. Fail the scan job if it cannot run."
        ),
    ),
    "unstarted": AlarmKind(
        title="Claimed, never started",
        meaning=(
            "A scanner claimed a scanner job and did not start it within the threshold: the "
            "scanner is stuck, or lost the job."
        ),
        advice=(
            "Re-dispatch the work to another scanner of the source, or re-assign the source; "
            "drain the scanner to keep new work away from it while you look at its log."
        ),
    ),
    "overrun": AlarmKind(
        title="Running far too long",
        meaning=(
            "A scanner job has run several times longer than the pace of its own results "
            "predicts: a system hangs, or the scanner stopped making progress."
        ),
        advice=(
            "Look at which systems are left (the job's results), then re-dispatch the work "
            "to another scanner or fail the scan job with the reason."
        ),
    ),
    "scanner_silent": AlarmKind(
        title="Scanner silent",
        meaning=(
            "A scanner stopped heartbeating while it held work. When another scanner of the "
            "source could take the work it was re-assigned at once; otherwise the work waits "
            "for the silent scanner."
        ),
        advice=(
            "Restart the scanner, or re-assign the source to another scanner; drain a scanner "
            "that should take no work when it comes back."
        ),
    ),
    "scan_stuck": AlarmKind(
        title="Scan stuck",
        meaning=(
            "A scan job was still running although every one of its scanner jobs had ended, "
            "so it could never finish on its own. The dispatcher finalized it as failed and "
            "canceled any work left open."
        ),
        advice=(
            "Open the scan job to see which task did not end and why (the message gives the "
            "reason). Look in the server log around that time for the error, then start the "
            "scan again. If the same scan sticks again, report it with that log."
        ),
    ),
}

REPAIR_LABELS = {
    "redispatch": "Re-dispatch",
    "reassign": "Re-assign the source",
    "drain": "Drain the scanner",
    "fail": "Fail the scan job",
}


def alarm_kind(kind: str) -> AlarmKind:
    """What an alarm of ``kind`` means; a kind this version does not know still reads."""
    return ALARM_KINDS.get(
        kind,
        AlarmKind(
            title=kind.replace("_", " ").capitalize() or "Alarm",
            meaning="An alarm of a kind this version of Quipu does not describe.",
            advice="Read its message, and the server log around its time.",
        ),
    )


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _timeout(request: Request) -> float:
    settings: Settings = request.app.state.settings
    return settings.heartbeat_timeout_s


def refresh_ms(timeout_s: float) -> int:
    """How often the list is fetched again: a third of the heartbeat timeout, 1 to 5 s."""
    return int(1000 * min(5.0, max(1.0, timeout_s / 3)))


def _list_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    fleet = scanners.list_scanners(
        _store(request), now=server_now(request), timeout_s=_timeout(request)
    )
    return {
        "fleet": fleet,
        "online_count": sum(1 for v in fleet if v.online),
        "is_admin": viewer.principal.is_admin,
        "timeout_s": _timeout(request),
    }


def _scanners_page(
    request: Request,
    viewer: Viewer,
    *,
    status_code: int = 200,
    error: str | None = None,
    error_field: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    return page(
        request,
        "scanners.html",
        viewer=viewer,
        status_code=status_code,
        error=error,
        error_field=error_field,
        form=form or {"name": "", "bind": "", "max_probes_per_second": "0"},
        refresh_ms=refresh_ms(_timeout(request)),
        **_list_context(request, viewer),
    )


@router.get("/scanners")
def scanner_list(request: Request, viewer: SignedIn) -> HTMLResponse:
    return _scanners_page(request, viewer)


@router.get("/scanners/list")
def scanner_list_fragment(request: Request, viewer: SignedIn) -> HTMLResponse:
    """The list alone, which the page fetches again to show who went online or offline."""
    html = render("scanners_list.html", viewer=viewer, **_list_context(request, viewer))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def split_bind(value: str) -> list[str]:
    """IPs/CIDRs as typed: separated by commas, spaces or lines."""
    return [part for part in re.split(r"[\s,;]+", value) if part]


def parse_rate(value: str) -> float:
    text = value.strip() or "0"
    try:
        rate = float(text)
    except ValueError:
        raise InvalidInput(
            f"Max probes per second must be a number, 0 for no limit (got {text!r}).",
            field="max_probes_per_second",
        ) from None
    if rate != rate or rate in (float("inf"), float("-inf")):
        raise InvalidInput(
            "Max probes per second must be a finite number.", field="max_probes_per_second"
        )
    return scanners.validate_rate(rate)


def _key_page(
    request: Request, viewer: Viewer, view: scanners.ScannerView, *, rotated: bool
) -> HTMLResponse:
    return page(
        request,
        "scanner_key.html",
        viewer=viewer,
        view=view,
        rotated=rotated,
        server_url=str(request.base_url).rstrip("/"),
    )


@router.post("/scanners", response_model=None)
async def add_scanner(request: Request, viewer: SignedIn) -> HTMLResponse:
    """Register a scanner; the answer is the one page that shows its API key."""
    data = await request.form()
    form = {}
    for key in ("name", "bind", "max_probes_per_second"):
        value = data.get(key)
        form[key] = value if isinstance(value, str) else ""
    return await run_in_threadpool(_add, request, viewer, form)


def _add(request: Request, viewer: Viewer, form: dict[str, str]) -> HTMLResponse:
    try:
        auth.require_admin(viewer.principal, action="add a scanner")
        name = form["name"].strip()
        if len(name) > NAME_MAX:
            raise InvalidInput(f"A scanner name has at most {NAME_MAX} characters.", field="name")
        view = scanners.add(
            _store(request),
            name=name,
            bind=split_bind(form["bind"]),
            max_probes_per_second=parse_rate(form["max_probes_per_second"]),
            now=server_now(request),
        )
    except QuipuError as refused:
        field = refused.field if isinstance(refused, InvalidInput) else None
        if isinstance(refused, AlreadyExists):
            field = "name"
        return _scanners_page(
            request,
            viewer,
            status_code=403 if isinstance(refused, Forbidden) else 400,
            error=str(refused),
            error_field=field,
            form=form,
        )
    return _key_page(request, viewer, view, rotated=False)


def _set_enabled(
    request: Request, viewer: Viewer, scanner_id: int, *, enabled: bool
) -> RedirectResponse:
    response = RedirectResponse("/scanners", status_code=303)
    word = "enable" if enabled else "disable"
    try:
        auth.require_admin(viewer.principal, action=f"{word} a scanner")
        view = scanners.set_enabled(
            _store(request),
            scanner_id=scanner_id,
            enabled=enabled,
            now=server_now(request),
            timeout_s=_timeout(request),
        )
    except QuipuError as refused:
        flash(response, request, kind="error", text=str(refused))
        return response
    text = (
        f'Scanner "{view.scanner.name}" is enabled: it may take work again.'
        if enabled
        else f'Scanner "{view.scanner.name}" is disabled: it is refused every request, and '
        "its unfinished work moves to another scanner once it goes offline."
    )
    flash(response, request, text=text)
    return response


@router.post("/scanners/{scanner_id}/enable")
def enable_scanner(request: Request, scanner_id: int, viewer: SignedIn) -> RedirectResponse:
    return _set_enabled(request, viewer, scanner_id, enabled=True)


@router.post("/scanners/{scanner_id}/disable")
def disable_scanner(request: Request, scanner_id: int, viewer: SignedIn) -> RedirectResponse:
    return _set_enabled(request, viewer, scanner_id, enabled=False)


def _set_draining(
    request: Request, viewer: Viewer, scanner_id: int, *, draining: bool
) -> RedirectResponse:
    response = RedirectResponse("/scanners", status_code=303)
    word = "drain" if draining else "undrain"
    try:
        auth.require_admin(viewer.principal, action=f"{word} a scanner")
        view = scanners.set_draining(
            _store(request),
            scanner_id=scanner_id,
            draining=draining,
            now=server_now(request),
            timeout_s=_timeout(request),
        )
    except QuipuError as refused:
        flash(response, request, kind="error", text=str(refused))
        return response
    text = (
        f'Scanner "{view.scanner.name}" is draining: it takes no new work and finishes what '
        "it holds."
        if draining
        else f'Scanner "{view.scanner.name}" takes new work again.'
    )
    flash(response, request, text=text)
    return response


@router.post("/scanners/{scanner_id}/drain")
def drain_scanner(request: Request, scanner_id: int, viewer: SignedIn) -> RedirectResponse:
    return _set_draining(request, viewer, scanner_id, draining=True)


@router.post("/scanners/{scanner_id}/undrain")
def undrain_scanner(request: Request, scanner_id: int, viewer: SignedIn) -> RedirectResponse:
    return _set_draining(request, viewer, scanner_id, draining=False)


@router.post("/scanners/{scanner_id}/rotate-key", response_model=None)
def rotate_key(
    request: Request, scanner_id: int, viewer: SignedIn
) -> HTMLResponse | RedirectResponse:
    """A new key, shown on this answer only; the old one stops working at once."""
    try:
        auth.require_admin(viewer.principal, action="rotate a scanner's key")
        view = scanners.rotate_key(
            _store(request),
            scanner_id=scanner_id,
            now=server_now(request),
            timeout_s=_timeout(request),
        )
    except QuipuError as refused:
        response = RedirectResponse("/scanners", status_code=303)
        flash(response, request, kind="error", text=str(refused))
        return response
    return _key_page(request, viewer, view, rotated=True)


def _page_number(value: str | None) -> int:
    try:
        return max(1, int(value or 1))
    except ValueError:
        return 1


@router.get("/alarms")
def alarm_list(
    request: Request, viewer: SignedIn, page_no: str = "1", show: str = "open"
) -> HTMLResponse:
    every = show == "all"
    resolved = None if every else False
    number = _page_number(page_no)
    count, rows = alarms.list_alarms(
        _store(request),
        offset=(number - 1) * ALARMS_PAGE_SIZE,
        limit=ALARMS_PAGE_SIZE,
        resolved=resolved,
    )
    pages = max(1, -(-count // ALARMS_PAGE_SIZE))
    if number > pages:  # a page past the end shows the last one
        number = pages
        count, rows = alarms.list_alarms(
            _store(request),
            offset=(number - 1) * ALARMS_PAGE_SIZE,
            limit=ALARMS_PAGE_SIZE,
            resolved=resolved,
        )
    scanner_names, source_names = alarms.names(_store(request), alarms=rows)
    fleet = scanners.list_scanners(
        _store(request), now=server_now(request), timeout_s=_timeout(request)
    )
    return page(
        request,
        "alarms.html",
        viewer=viewer,
        alarms=[(alarm, alarm_kind(alarm.kind)) for alarm in rows],
        kinds=ALARM_KINDS,
        count=count,
        page_no=number,
        pages=pages,
        every=every,
        is_admin=viewer.principal.is_admin,
        scanner_names=scanner_names,
        source_names=source_names,
        fleet=fleet,
        labels=REPAIR_LABELS,
        offered=alarms.offered,
    )


def _optional_id(value: str, *, field: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{field} must be a scanner's id (got {text!r}).", field=field) from None


@router.post("/alarms/{alarm_id}/repair")
async def repair_alarm(request: Request, alarm_id: int, viewer: SignedIn) -> RedirectResponse:
    """Apply one repair an alarm offers; back to the alarms with what was done."""
    data = await request.form()
    form = {}
    for key in ("action", "scanner_id", "message"):
        value = data.get(key)
        form[key] = value if isinstance(value, str) else ""
    return await run_in_threadpool(_repair, request, viewer, alarm_id, form)


def _repair(
    request: Request, viewer: Viewer, alarm_id: int, form: dict[str, str]
) -> RedirectResponse:
    response = RedirectResponse("/alarms", status_code=303)
    try:
        auth.require_admin(viewer.principal, action="repair an alarm")
        done = alarms.repair(
            _store(request),
            alarm_id=alarm_id,
            action=form["action"],
            scanner_id=_optional_id(form["scanner_id"], field="scanner_id"),
            message=form["message"],
            username=viewer.principal.username,
            now=server_now(request),
            timeout_s=_timeout(request),
        )
    except QuipuError as refused:
        flash(response, request, kind="error", text=f"Alarm {alarm_id} not repaired: {refused}")
        return response
    flash(response, request, text=f"Alarm {alarm_id} repaired: {done[:1].upper()}{done[1:]}")
    return response
