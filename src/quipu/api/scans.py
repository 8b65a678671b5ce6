"""Routes for scans (``/api/v1/scans/``): named groups of sources that are started together."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from quipu.api.credentials import BulkDelete, BulkDeletedPublic, Name, NameQuery, SearchQuery
from quipu.api.deps import CurrentUser, Now, StoreDep
from quipu.api.pagination import Page, Paging, page_of
from quipu.services import scans

router = APIRouter(prefix="/api/v1/scans", tags=["scans"])

Concurrency = Annotated[
    int, Field(ge=1, le=200, description="Systems inspected at once, per scanner job.")
]


class ProductFlags(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jboss_eap: bool = False
    jboss_fuse: bool = False
    jboss_brms: bool = False
    jboss_ws: bool = False


class ExtendedProductSearch(ProductFlags):
    search_directories: list[str] = Field(default_factory=list)


class ScanOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_concurrency: Concurrency = 25
    disabled_optional_products: ProductFlags | None = None
    enabled_extended_product_search: ExtendedProductSearch | None = None


class ScanOptionsUpdate(BaseModel):
    """Options to change; those left out are kept."""

    model_config = ConfigDict(extra="forbid")

    max_concurrency: Concurrency | None = None
    disabled_optional_products: ProductFlags | None = None
    enabled_extended_product_search: ExtendedProductSearch | None = None


class ScanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    scan_type: Literal["inspect"] = "inspect"
    sources: list[int] = Field(min_length=1, description="Source ids, in order.")
    options: ScanOptions = Field(default_factory=ScanOptions)


class ScanUpdate(BaseModel):
    """A partial edit; fields left out are kept."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    scan_type: Literal["inspect"] | None = None
    sources: list[int] | None = None
    options: ScanOptionsUpdate | None = None


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


class ScanPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    scan_type: str
    sources: list[SourceRefPublic]
    options: dict[str, Any]
    most_recent_scanjob: ScanJobRefPublic | None
    created_at: datetime
    updated_at: datetime


@router.get("/")
def list_scans(
    request: Request,
    store: StoreDep,
    user: CurrentUser,
    paging: Paging,
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
    )
    results = [ScanPublic.model_validate(v) for v in views]
    return page_of(request, params=paging, count=count, results=results)


@router.post("/", status_code=201)
def add_scan(body: ScanCreate, store: StoreDep, user: CurrentUser, now: Now) -> ScanPublic:
    """Add a scan."""
    fields = scans.ScanFields(
        name=body.name,
        scan_type=body.scan_type,
        sources=body.sources,
        options=body.options.model_dump(exclude_none=True),
    )
    return ScanPublic.model_validate(scans.add_scan(store, fields=fields, now=now))


@router.post("/bulk_delete/")
def bulk_delete_scans(body: BulkDelete, store: StoreDep, user: CurrentUser) -> BulkDeletedPublic:
    """Delete several scans; their scan jobs and reports stay."""
    return BulkDeletedPublic.model_validate(scans.bulk_delete_scans(store, ids=body.ids))


@router.get("/{scan_id}/")
def get_scan(scan_id: int, store: StoreDep, user: CurrentUser) -> ScanPublic:
    """Show one scan and its newest scan job."""
    return ScanPublic.model_validate(scans.get_scan(store, scan_id=scan_id))


@router.put("/{scan_id}/")
def replace_scan(
    scan_id: int, body: ScanCreate, store: StoreDep, user: CurrentUser, now: Now
) -> ScanPublic:
    """Replace a scan; options left out get their defaults."""
    changes = {
        "name": body.name,
        "scan_type": body.scan_type,
        "sources": body.sources,
        "options": body.options.model_dump(exclude_none=True),
    }
    view = scans.edit_scan(store, scan_id=scan_id, changes=changes, partial=False, now=now)
    return ScanPublic.model_validate(view)


@router.patch("/{scan_id}/")
def edit_scan(
    scan_id: int, body: ScanUpdate, store: StoreDep, user: CurrentUser, now: Now
) -> ScanPublic:
    """Change some fields of a scan; options given are merged into the scan's."""
    changes: dict[str, Any] = {k: getattr(body, k) for k in body.model_fields_set}
    if body.options is not None:
        given = body.options.model_fields_set
        changes["options"] = {k: v for k, v in body.options.model_dump().items() if k in given}
    view = scans.edit_scan(store, scan_id=scan_id, changes=changes, partial=True, now=now)
    return ScanPublic.model_validate(view)


@router.delete("/{scan_id}/", status_code=204)
def delete_scan(scan_id: int, store: StoreDep, user: CurrentUser) -> None:
    """Delete a scan; its scan jobs and reports stay."""
    scans.delete_scan(store, scan_id=scan_id)
