"""Routes for operators to manage scanners (``/api/v1/scanners/``), read alarms and repair
what they report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from quipu.api.deps import CurrentUser, Now, SettingsDep, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.api.params import Id
from quipu.services import alarms, auth, scanners
from quipu.store.tables import Alarm

router = APIRouter(prefix="/api/v1", tags=["scanners"])


class ScannerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    bind: list[str] = Field(default_factory=list, description="IPs/CIDRs it may fetch jobs from.")
    max_probes_per_second: float = Field(default=0, ge=0, description="0 = no limit.")


class ScannerOut(BaseModel):
    id: int
    name: str
    enabled: bool
    draining: bool
    """Takes no new work; what it holds finishes."""
    builtin: bool
    bind: list[str]
    max_probes_per_second: float
    online: bool
    last_heartbeat: datetime | None
    version: str | None
    capacity: int | None
    running_jobs: int
    created_at: datetime


class ScannerWithKey(ScannerOut):
    api_key: str
    """Shown once; only its hash is kept."""


def _out(view: scanners.ScannerView) -> ScannerOut:
    sc = view.scanner
    return ScannerOut(
        id=sc.id,
        name=sc.name,
        enabled=sc.enabled,
        draining=sc.draining,
        builtin=sc.builtin,
        bind=list(sc.bind),
        max_probes_per_second=sc.max_probes_per_second,
        online=view.online,
        last_heartbeat=sc.last_heartbeat,
        version=sc.version,
        capacity=sc.capacity,
        running_jobs=view.running_jobs,
        created_at=sc.created_at,
    )


def _with_key(view: scanners.ScannerView) -> ScannerWithKey:
    assert view.api_key is not None
    return ScannerWithKey(**_out(view).model_dump(), api_key=view.api_key)


@router.post("/scanners/", status_code=status.HTTP_201_CREATED)
def add_scanner(
    body: ScannerCreate, user: CurrentUser, store: StoreDep, now: Now
) -> ScannerWithKey:
    """Register a scanner; the answer holds its API key, shown this once."""
    auth.require_admin(user, action="add a scanner")
    view = scanners.add(
        store,
        name=body.name,
        bind=body.bind,
        max_probes_per_second=body.max_probes_per_second,
        now=now,
    )
    return _with_key(view)


@router.get("/scanners/")
def list_scanners(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    now: Now,
    paging: Paging,
    name: Annotated[str | None, Query(description="Only the scanner of this name.")] = None,
) -> Page[ScannerOut]:
    """Scanners with their liveness and running jobs."""
    views = scanners.list_scanners(
        store, now=now, timeout_s=settings.heartbeat_timeout_s, name=name
    )
    chunk = views[paging.offset : paging.offset + paging.page_size]
    return page_of(request, params=paging, count=len(views), results=[_out(v) for v in chunk])


@router.get("/scanners/{scanner_id}/")
def get_scanner(
    scanner_id: Id, user: CurrentUser, store: StoreDep, settings: SettingsDep, now: Now
) -> ScannerOut:
    """One scanner."""
    return _out(
        scanners.get(store, scanner_id=scanner_id, now=now, timeout_s=settings.heartbeat_timeout_s)
    )


@router.post("/scanners/{scanner_id}/enable/")
def enable_scanner(
    scanner_id: Id, user: CurrentUser, store: StoreDep, settings: SettingsDep, now: Now
) -> ScannerOut:
    """Let a scanner take work again."""
    auth.require_admin(user, action="enable a scanner")
    view = scanners.set_enabled(
        store, scanner_id=scanner_id, enabled=True, now=now, timeout_s=settings.heartbeat_timeout_s
    )
    return _out(view)


@router.post("/scanners/{scanner_id}/disable/")
def disable_scanner(
    scanner_id: Id, user: CurrentUser, store: StoreDep, settings: SettingsDep, now: Now
) -> ScannerOut:
    """Refuse a scanner every request until it is enabled again."""
    auth.require_admin(user, action="disable a scanner")
    view = scanners.set_enabled(
        store,
        scanner_id=scanner_id,
        enabled=False,
        now=now,
        timeout_s=settings.heartbeat_timeout_s,
    )
    return _out(view)


@router.post("/scanners/{scanner_id}/drain/")
def drain_scanner(
    scanner_id: Id, user: CurrentUser, store: StoreDep, settings: SettingsDep, now: Now
) -> ScannerOut:
    """Give a scanner no new work; what it holds finishes."""
    auth.require_admin(user, action="drain a scanner")
    view = scanners.set_draining(
        store, scanner_id=scanner_id, draining=True, now=now, timeout_s=settings.heartbeat_timeout_s
    )
    return _out(view)


@router.post("/scanners/{scanner_id}/undrain/")
def undrain_scanner(
    scanner_id: Id, user: CurrentUser, store: StoreDep, settings: SettingsDep, now: Now
) -> ScannerOut:
    """Let a draining scanner take new work again."""
    auth.require_admin(user, action="undrain a scanner")
    view = scanners.set_draining(
        store,
        scanner_id=scanner_id,
        draining=False,
        now=now,
        timeout_s=settings.heartbeat_timeout_s,
    )
    return _out(view)


@router.post("/scanners/{scanner_id}/rotate-key/")
def rotate_key(
    scanner_id: Id, user: CurrentUser, store: StoreDep, settings: SettingsDep, now: Now
) -> ScannerWithKey:
    """Give a scanner a new API key; the old one stops working."""
    auth.require_admin(user, action="rotate a scanner's key")
    view = scanners.rotate_key(
        store, scanner_id=scanner_id, now=now, timeout_s=settings.heartbeat_timeout_s
    )
    return _with_key(view)


class AlarmOut(BaseModel):
    id: int
    kind: str
    """unclaimed, unstarted, overrun, scanner_silent or scan_stuck."""
    scan_job_id: int | None
    scanner_job_id: int | None
    scanner_id: int | None
    scanner_name: str | None
    source_id: int | None
    source_name: str | None
    message: str
    actions: list[str]
    """The repairs it offers: redispatch, reassign, drain, fail."""
    created_at: datetime
    resolved_at: datetime | None


class AlarmRepair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(description="redispatch, reassign, drain or fail (one the alarm offers).")
    scanner_id: int | None = Field(
        default=None, description="reassign: the scanner; redispatch, drain: optional."
    )
    message: str | None = Field(default=None, description="fail: why the scan job fails.")


class AlarmRepaired(BaseModel):
    alarm: AlarmOut
    done: str
    """What the repair did, in a sentence."""


def _alarms_out(store: StoreDep, rows: list[Alarm]) -> list[AlarmOut]:
    scanner_names, source_names = alarms.names(store, alarms=rows)
    return [
        AlarmOut(
            id=a.id,
            kind=a.kind,
            scan_job_id=a.scan_job_id,
            scanner_job_id=a.scanner_job_id,
            scanner_id=a.scanner_id,
            scanner_name=scanner_names.get(a.scanner_id) if a.scanner_id else None,
            source_id=a.source_id,
            source_name=source_names.get(a.source_id) if a.source_id else None,
            message=a.message,
            actions=alarms.offered(a),
            created_at=a.created_at,
            resolved_at=a.resolved_at,
        )
        for a in rows
    ]


@router.get("/alarms/", tags=["alarms"])
def list_alarms(
    request: Request,
    user: CurrentUser,
    store: StoreDep,
    paging: Paging,
    resolved: Annotated[
        bool | None, Query(description="false: open alarms only; true: resolved ones only.")
    ] = None,
) -> Page[AlarmOut]:
    """Alarms (stalled work, stuck scan jobs), newest first."""
    count, rows = alarms.list_alarms(
        store, offset=paging.offset, limit=paging.page_size, resolved=resolved
    )
    return page_of(request, params=paging, count=count, results=_alarms_out(store, rows))


@router.get("/alarms/{alarm_id}/", tags=["alarms"])
def get_alarm(alarm_id: Id, user: CurrentUser, store: StoreDep) -> AlarmOut:
    """One alarm."""
    return _alarms_out(store, [alarms.get(store, alarm_id=alarm_id)])[0]


@router.post("/alarms/{alarm_id}/repair/", tags=["alarms"])
def repair_alarm(
    alarm_id: Id,
    body: AlarmRepair,
    user: CurrentUser,
    store: StoreDep,
    settings: SettingsDep,
    now: Now,
) -> AlarmRepaired:
    """Apply one of the repairs an alarm offers; the alarm is resolved."""
    auth.require_admin(user, action="repair an alarm")
    done = alarms.repair(
        store,
        alarm_id=alarm_id,
        action=body.action,
        scanner_id=body.scanner_id,
        message=body.message,
        username=user.username,
        now=now,
        timeout_s=settings.heartbeat_timeout_s,
    )
    alarm = _alarms_out(store, [alarms.get(store, alarm_id=alarm_id)])[0]
    return AlarmRepaired(alarm=alarm, done=done)
