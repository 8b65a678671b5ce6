"""Scan use cases: add, edit, read, list and delete scans (groups of sources run together)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from quipu.domain.errors import AlreadyExists, InvalidInput, NotFound
from quipu.services.credentials import (
    AllOrIds,
    BulkDeleted,
    bulk_result,
    check_name,
    find_ids,
    name_filters,
    page,
)
from quipu.store import Store
from quipu.store.tables import Scan, ScanJob, ScanSource, Source

log = logging.getLogger(__name__)

SCAN_TYPES = ("inspect",)
DEFAULT_MAX_CONCURRENCY = 25
MAX_CONCURRENCY = 200
OPTIONS = ("max_concurrency", "disabled_optional_products", "enabled_extended_product_search")
"""The options a scan may carry; all but max_concurrency are kept as given for collectors."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanFields:
    name: str
    scan_type: str = "inspect"
    sources: Sequence[int] = field(default_factory=list)
    """Source ids, in the order their tasks are made."""
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SourceRef:
    id: int
    name: str
    source_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    """The newest scan job of a scan."""

    id: int
    status: str
    start_time: datetime | None
    end_time: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanView:
    id: int
    name: str
    scan_type: str
    sources: list[SourceRef]
    options: dict[str, Any]
    most_recent_scanjob: JobRef | None
    created_at: datetime
    updated_at: datetime


def add_scan(store: Store, *, fields: ScanFields, now: datetime) -> ScanView:
    fields = checked(fields)
    with store.transaction() as s:
        _check_name_free(s, name=fields.name)
        _check_sources(s, source_ids=fields.sources)
        row = Scan(created_at=now, updated_at=now)
        _write(row, fields=fields)
        s.add(row)
        s.flush()
        view = _views(s, rows=[row])[0]
    log.info("scan %s (%s) added", view.id, view.name)
    return view


def edit_scan(
    store: Store, *, scan_id: int, changes: Mapping[str, Any], partial: bool, now: datetime
) -> ScanView:
    """Apply ``changes`` to a scan.

    ``partial`` (a PATCH) merges the ``options`` given key by key into the scan's; otherwise
    they replace them.
    """
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(ScanFields)})
    if unknown:
        raise InvalidInput(f"Unknown scan field: {', '.join(unknown)}.", field=unknown[0])
    with store.transaction() as s:
        row = _get(s, scan_id=scan_id)
        current = _read(row)
        merged = dict(changes)
        if partial and "options" in changes:
            merged["options"] = {**current.options, **(changes["options"] or {})}
        fields = checked(dataclasses.replace(current, **merged))
        if fields.name != row.name:
            _check_name_free(s, name=fields.name)
        _check_sources(s, source_ids=fields.sources)
        _write(row, fields=fields)
        row.updated_at = now
        s.flush()
        view = _views(s, rows=[row])[0]
    log.info("scan %s (%s) edited", view.id, view.name)
    return view


def get_scan(store: Store, *, scan_id: int) -> ScanView:
    with store.transaction() as s:
        return _views(s, rows=[_get(s, scan_id=scan_id)])[0]


def list_scans(
    store: Store,
    *,
    name: str | None = None,
    search_by_name: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[ScanView]]:
    """One page of scans ordered by name, and how many match in all."""
    conditions = name_filters(Scan.name, name=name, search_by_name=search_by_name)
    with store.transaction() as s:
        count, rows = page(
            s,
            query=select(Scan),
            order=Scan.name,
            conditions=conditions,
            offset=offset,
            limit=limit,
        )
        return count, _views(s, rows=rows)


def delete_scan(store: Store, *, scan_id: int) -> None:
    """Delete a scan; its scan jobs stay (with the scan's name) for their reports."""
    with store.transaction() as s:
        s.delete(_get(s, scan_id=scan_id))
    log.info("scan %s deleted", scan_id)


def bulk_delete_scans(store: Store, *, ids: AllOrIds) -> BulkDeleted:
    with store.transaction() as s:
        found, missing = find_ids(s, model=Scan, ids=ids)
        deleted = list(found)
        if deleted:
            s.execute(delete(Scan).where(Scan.id.in_(deleted)))
    log.info("scans %s deleted", deleted)
    return bulk_result(noun="scans", deleted=deleted, skipped=[], missing=missing)


def checked(fields: ScanFields) -> ScanFields:
    """``fields`` with default options, or InvalidInput naming what is wrong."""
    check_name(fields.name)
    if fields.scan_type not in SCAN_TYPES:
        raise InvalidInput(
            f"scan_type must be one of {', '.join(SCAN_TYPES)} (got {fields.scan_type!r}).",
            field="scan_type",
        )
    if not fields.sources:
        raise InvalidInput("sources needs at least one source id.", field="sources")
    seen: set[int] = set()
    for source_id in fields.sources:
        if source_id in seen:
            raise InvalidInput(f"sources lists source {source_id} more than once.", field="sources")
        seen.add(source_id)
    options = {k: v for k, v in fields.options.items() if v is not None}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidInput(
            f"options: unknown option {unknown[0]!r}; allowed: {', '.join(OPTIONS)}.",
            field="options",
        )
    concurrency = options.setdefault("max_concurrency", DEFAULT_MAX_CONCURRENCY)
    if (
        not isinstance(concurrency, int)
        or isinstance(concurrency, bool)
        or not 1 <= concurrency <= MAX_CONCURRENCY
    ):
        raise InvalidInput(
            f"options.max_concurrency must be between 1 and {MAX_CONCURRENCY} "
            f"(got {concurrency!r}).",
            field="options.max_concurrency",
        )
    return dataclasses.replace(fields, sources=list(fields.sources), options=options)


def _check_sources(s: Session, *, source_ids: Sequence[int]) -> None:
    existing = set(s.scalars(select(Source.id).where(Source.id.in_(source_ids))))
    for source_id in source_ids:
        if source_id not in existing:
            raise InvalidInput(f"sources: source {source_id} does not exist.", field="sources")


def _check_name_free(s: Session, *, name: str) -> None:
    if s.scalar(select(Scan.id).where(Scan.name == name)) is not None:
        raise AlreadyExists(f'Scan "{name}" already exists.')


def _get(s: Session, *, scan_id: int) -> Scan:
    row = s.get(Scan, scan_id)
    if row is None:
        raise NotFound(f"Scan {scan_id} does not exist.")
    return row


def _write(row: Scan, *, fields: ScanFields) -> None:
    options = dict(fields.options)
    row.name = fields.name
    row.scan_type = fields.scan_type
    # The column holds max_concurrency (the database checks its range); JSON the rest.
    row.max_concurrency = options.pop("max_concurrency")
    row.options = options
    row.sources = [
        ScanSource(source_id=source_id, position=position)
        for position, source_id in enumerate(fields.sources)
    ]


def _read(row: Scan) -> ScanFields:
    return ScanFields(
        name=row.name,
        scan_type=row.scan_type,
        sources=[link.source_id for link in row.sources],
        options={**row.options, "max_concurrency": row.max_concurrency},
    )


def _views(s: Session, *, rows: Sequence[Scan]) -> list[ScanView]:
    ids = [r.id for r in rows]
    loaded = {
        r.id: r
        for r in s.scalars(select(Scan).where(Scan.id.in_(ids)).options(selectinload(Scan.sources)))
    }
    source_ids = {link.source_id for r in loaded.values() for link in r.sources}
    sources = {
        i: SourceRef(id=i, name=n, source_type=t)
        for i, n, t in s.execute(
            select(Source.id, Source.name, Source.source_type).where(Source.id.in_(source_ids))
        )
    }
    newest = select(func.max(ScanJob.id)).where(ScanJob.scan_id.in_(ids)).group_by(ScanJob.scan_id)
    jobs = {
        j.scan_id: JobRef(id=j.id, status=j.status, start_time=j.start_time, end_time=j.end_time)
        for j in s.scalars(select(ScanJob).where(ScanJob.id.in_(newest)))
    }
    return [
        ScanView(
            id=r.id,
            name=r.name,
            scan_type=r.scan_type,
            sources=[sources[link.source_id] for link in r.sources],
            options={**r.options, "max_concurrency": r.max_concurrency},
            most_recent_scanjob=jobs.get(r.id),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in (loaded[i] for i in ids)
    ]
