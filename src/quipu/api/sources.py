"""Routes for sources (``/api/v2/sources/``): what to scan, how, and with which credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from quipu.api.credentials import (
    BulkDelete,
    BulkDeletedPublic,
    CredType,
    Name,
    NameQuery,
    RefPublic,
    SearchQuery,
    SkippedPublic,
)
from quipu.api.deps import CurrentUser, Now, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.api.params import Id
from quipu.domain.source_types import SOURCE_TYPES
from quipu.services import sources
from quipu.services.credentials import BulkDeleted

router = APIRouter(prefix="/api/v2/sources", tags=["sources"])

SslProtocol = Literal["SSLv23", "TLSv1", "TLSv1_1", "TLSv1_2", "TLSv1_3"]
SchedulingMode = Literal["immediate", "mediated"]
Port = Annotated[int, Field(ge=1, le=65535)]
DEFAULT_PORTS = ", ".join(f"{t.value} {r.default_port}" for t, r in SOURCE_TYPES.items())
API_TYPES = "/".join(t.value for t, r in SOURCE_TYPES.items() if r.tls_options)
"""The source types reached over an HTTPS API, to which the TLS options apply."""
ProxyUrl = Annotated[str, Field(min_length=1, max_length=512)]
Rate = Annotated[float, Field(ge=0, description="Probes per second for this source; 0 = no limit.")]
UseParamiko = Annotated[
    bool,
    Field(
        description="Network only. Kept for the established client; Quipu's SSH client is "
        "asyncssh and ignores it."
    ),
]
WindowsIn = Annotated[
    list[Any] | None,
    Field(
        description='Time windows its systems may be scanned in: "mon-fri 08:00-18:00 '
        'Europe/Paris" or {"days": ["mon"], "start": "08:00", "end": "18:00", "timezone": '
        '"UTC"}; [] or null: any time. A job runs only while the windows of its scan and of '
        "every one of its sources are open."
    ),
]
AllowLarge = Annotated[
    bool, Query(description="Allow a network source of more than 65,536 systems.")
]


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    source_type: CredType
    hosts: list[str] = Field(min_length=1)
    exclude_hosts: list[str] | None = Field(None, description="Network only.")
    port: Port | None = Field(None, description=f"Default: {DEFAULT_PORTS}.")
    credentials: list[int] = Field(min_length=1, description="Credential ids, in trying order.")
    ssl_cert_verify: bool | None = Field(None, description=f"{API_TYPES}; default true.")
    ssl_protocol: SslProtocol | None = Field(None, description=f"{API_TYPES} only.")
    disable_ssl: bool | None = Field(None, description=f"{API_TYPES}; default false.")
    proxy_url: ProxyUrl | None = Field(None, description=f"{API_TYPES}: an HTTP(S) proxy.")
    use_paramiko: UseParamiko | None = None
    scheduling_mode: SchedulingMode | None = Field(None, description="Default: immediate.")
    max_probes_per_second: Rate | None = None
    scanners: list[int] = Field(
        default_factory=list, description="Scanner ids; empty: the built-in scanner."
    )
    windows: WindowsIn = None


class SourceUpdate(BaseModel):
    """A partial edit; fields left out are kept, null restores a default."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    source_type: CredType | None = None
    hosts: list[str] | None = None
    exclude_hosts: list[str] | None = None
    port: Port | None = None
    credentials: list[int] | None = None
    ssl_cert_verify: bool | None = None
    ssl_protocol: SslProtocol | None = None
    disable_ssl: bool | None = None
    proxy_url: ProxyUrl | None = None
    use_paramiko: UseParamiko | None = None
    scheduling_mode: SchedulingMode | None = None
    max_probes_per_second: Rate | None = None
    scanners: list[int] | None = None
    windows: WindowsIn = None


class CredentialRefPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    cred_type: str


class SourcePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source_type: str
    hosts: list[str]
    exclude_hosts: list[str] | None = Field(description="null when none, as established.")
    port: int
    credentials: list[CredentialRefPublic]
    ssl_cert_verify: bool | None
    ssl_protocol: str | None
    disable_ssl: bool | None
    proxy_url: str | None
    use_paramiko: bool | None
    scheduling_mode: str
    max_probes_per_second: float
    scanners: list[RefPublic]
    windows: list[dict[str, Any]] = Field(
        description="Time windows, normalized: days, start, end, timezone; []: any time."
    )
    created_at: datetime
    updated_at: datetime

    @field_validator("exclude_hosts", mode="before")
    @classmethod
    def _null_when_none(cls, value: list[str] | None) -> list[str] | None:
        return list(value) if value else None


class SkippedSourcePublic(SkippedPublic):
    """A source left alone, also as the established server names it."""

    source: int
    scans: list[int] = Field(description="Ids of the scans using it.")


class SourcesBulkDeletedPublic(BulkDeletedPublic):
    skipped: list[SkippedSourcePublic]  # type: ignore[assignment]


def sources_bulk_public(result: BulkDeleted) -> SourcesBulkDeletedPublic:
    skipped = [
        SkippedSourcePublic(id=s.id, name=s.name, reason=s.reason, source=s.id, scans=list(s.users))
        for s in result.skipped
    ]
    return SourcesBulkDeletedPublic(
        message=result.message, deleted=result.deleted, skipped=skipped, missing=result.missing
    )


@router.get("/")
def list_sources(
    request: Request,
    store: StoreDep,
    user: CurrentUser,
    paging: Paging,
    name: NameQuery = None,
    search_by_name: SearchQuery = None,
    source_type: CredType | None = None,
) -> Page[SourcePublic]:
    """List sources, ordered by name."""
    count, views = sources.list_sources(
        store,
        name=name,
        search_by_name=search_by_name,
        source_type=source_type,
        offset=paging.offset,
        limit=paging.page_size,
    )
    results = [SourcePublic.model_validate(v) for v in views]
    return page_of(request, params=paging, count=count, results=results)


@router.post("/", status_code=201)
def add_source(
    body: SourceCreate,
    store: StoreDep,
    user: CurrentUser,
    now: Now,
    allow_large: AllowLarge = False,
) -> SourcePublic:
    """Add a source."""
    fields = sources.SourceFields(**dict(body))
    view = sources.add_source(store, fields=fields, allow_large=allow_large, now=now)
    return SourcePublic.model_validate(view)


@router.post("/bulk_delete/")
def bulk_delete_sources(
    body: BulkDelete, store: StoreDep, user: CurrentUser
) -> SourcesBulkDeletedPublic:
    """Delete several sources; those used by a scan are skipped."""
    return sources_bulk_public(sources.bulk_delete_sources(store, ids=body.ids))


@router.get("/{source_id}/")
def get_source(source_id: Id, store: StoreDep, user: CurrentUser) -> SourcePublic:
    """Show one source."""
    return SourcePublic.model_validate(sources.get_source(store, source_id=source_id))


@router.put("/{source_id}/")
def replace_source(
    source_id: Id,
    body: SourceCreate,
    store: StoreDep,
    user: CurrentUser,
    now: Now,
    allow_large: AllowLarge = False,
) -> SourcePublic:
    """Replace a source; optional fields left out get their defaults."""
    view = sources.edit_source(
        store, source_id=source_id, changes=dict(body), allow_large=allow_large, now=now
    )
    return SourcePublic.model_validate(view)


@router.patch("/{source_id}/")
def edit_source(
    source_id: Id,
    body: SourceUpdate,
    store: StoreDep,
    user: CurrentUser,
    now: Now,
    allow_large: AllowLarge = False,
) -> SourcePublic:
    """Change some fields of a source."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    view = sources.edit_source(
        store, source_id=source_id, changes=changes, allow_large=allow_large, now=now
    )
    return SourcePublic.model_validate(view)


@router.delete("/{source_id}/", status_code=204)
def delete_source(source_id: Id, store: StoreDep, user: CurrentUser) -> None:
    """Delete a source no scan uses."""
    sources.delete_source(store, source_id=source_id)
