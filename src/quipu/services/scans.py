"""Scan use cases: add, edit, read, list and delete scans (groups of sources run together)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from quipu.domain.errors import Conflict, InvalidInput, NotFound
from quipu.domain.retry import parse_retry
from quipu.domain.schedules import SHOWN_FIRINGS, Schedule, next_firing, next_firings
from quipu.domain.states import SCAN_JOB_FINAL, ScannerJobStatus
from quipu.domain.windows import parse_windows
from quipu.services.credentials import (
    AllOrIds,
    BulkDeleted,
    Skipped,
    bulk_result,
    check_name,
    find_ids,
    name_filters,
    page,
)
from quipu.services.scan_jobs import task_message
from quipu.services.scan_options import (
    checked_options,
    options_merged,
    options_replaced,
    present_options,
)
from quipu.store import Store
from quipu.store.tables import Alarm, Report, Scan, ScanJob, ScannerJob, ScanSource, Source

log = logging.getLogger(__name__)

SCAN_TYPES = ("inspect",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanFields:
    name: str
    scan_type: str = "inspect"
    sources: Sequence[int] = field(default_factory=list)
    """Source ids, in the order their tasks are made."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """As given: ``max_concurrency`` and the product options (see ``options_replaced``)."""
    schedule: Schedule | None = None
    """When its scan jobs start on their own; none: started by hand only."""
    windows: Sequence[Any] = field(default_factory=list)
    """Time windows, as given (see ``quipu.domain.windows.parse_windows``); none: any time."""
    retry: Mapping[str, Any] | None = field(default_factory=dict)
    """Retry policy, as given (see ``quipu.domain.retry.parse_retry``); {} or None: no retry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleView:
    cron: str
    timezone: str
    next_firings: list[datetime]
    """The coming firings, in UTC, earliest first."""


@dataclass(frozen=True, slots=True)
class SourceRef:
    id: int
    name: str
    source_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    """A scan job of a scan, as a scan shows it."""

    id: int
    status: str
    status_message: str
    scan_type: str
    start_time: datetime | None
    end_time: datetime | None
    systems_count: int
    systems_scanned: int
    systems_failed: int
    systems_unreachable: int
    report_id: int | None
    fingerprints: int | None
    """Systems in its deployments report (None while it has no report)."""
    task_messages: list[tuple[int, str]]
    """(task id, status message) of each task, in order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanView:
    id: int
    name: str
    scan_type: str
    sources: list[SourceRef]
    options: dict[str, Any]
    schedule: ScheduleView | None
    windows: list[Any]
    retry: dict[str, Any]
    most_recent_scanjob: JobRef | None
    jobs: list[tuple[int, int | None]]
    """(scan job id, its report id) of each scan job, oldest first."""
    created_at: datetime
    updated_at: datetime


def add_scan(store: Store, *, fields: ScanFields, now: datetime) -> ScanView:
    fields = checked(fields)
    with store.transaction() as s:
        _check_name_free(s, name=fields.name)
        _check_sources(s, source_ids=fields.sources)
        row = Scan(created_at=now, updated_at=now)
        _write(row, fields=fields, options=options_replaced(fields.options), now=now)
        s.add(row)
        s.flush()
        view = _views(s, rows=[row], now=now)[0]
    log.info("scan %s (%s) added", view.id, view.name)
    return view


def edit_scan(
    store: Store, *, scan_id: int, changes: Mapping[str, Any], partial: bool, now: datetime
) -> ScanView:
    """Apply ``changes`` to a scan.

    ``partial`` (a PATCH) merges the ``options`` given into the scan's (``options_merged``);
    otherwise they replace them (``options_replaced``). A schedule left as it was keeps its
    next firing; a new one fires first at its next time after ``now``.
    """
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(ScanFields)})
    if unknown:
        raise InvalidInput(f"Unknown scan field: {', '.join(unknown)}.", field=unknown[0])
    with store.transaction() as s:
        row = _get(s, scan_id=scan_id)
        fields = checked(dataclasses.replace(_read(row), **changes))
        if partial:
            options = options_merged(
                {**row.options, "max_concurrency": row.max_concurrency}, given=fields.options
            )
        else:
            options = options_replaced(fields.options)
        if fields.name != row.name:
            _check_name_free(s, name=fields.name)
        _check_sources(s, source_ids=fields.sources)
        _write(row, fields=fields, options=options, now=now)
        row.updated_at = now
        s.flush()
        view = _views(s, rows=[row], now=now)[0]
    log.info("scan %s (%s) edited", view.id, view.name)
    return view


def get_scan(store: Store, *, scan_id: int, now: datetime | None = None) -> ScanView:
    """One scan; its schedule's next firings are those after ``now`` (default: the system's)."""
    with store.transaction() as s:
        return _views(s, rows=[_get(s, scan_id=scan_id)], now=now)[0]


def list_scans(
    store: Store,
    *,
    name: str | None = None,
    search_by_name: str | None = None,
    offset: int = 0,
    limit: int = 100,
    now: datetime | None = None,
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
        return count, _views(s, rows=rows, now=now)


def delete_scan(store: Store, *, scan_id: int) -> None:
    """Delete a scan; its scan jobs stay (with the scan's name) for their reports. A scan
    whose job has not ended is not deleted (Conflict): its sources and credentials would be
    free to go while the job still needs them."""
    with store.transaction() as s:
        row = _get(s, scan_id=scan_id)
        open_jobs = _open_jobs(s, scan_ids=[row.id]).get(row.id)
        if open_jobs:
            job_id, status = open_jobs[0]
            raise Conflict(
                f'Scan "{row.name}" has scan job {job_id} {status}; cancel it '
                f"(qpc scan cancel --id {job_id}) or let it end, then delete the scan."
            )
        s.delete(row)
    log.info("scan %s deleted", scan_id)


def bulk_delete_scans(store: Store, *, ids: AllOrIds) -> BulkDeleted:
    """Delete the scans whose jobs have all ended; the others are skipped, naming a job."""
    with store.transaction() as s:
        found, missing = find_ids(s, model=Scan, ids=ids)
        open_jobs = _open_jobs(s, scan_ids=list(found))
        skipped = [
            Skipped(id=i, name=found[i], reason=f"scan job {jobs[0][0]} is {jobs[0][1]}")
            for i, jobs in open_jobs.items()
        ]
        deleted = [i for i in found if i not in open_jobs]
        if deleted:
            s.execute(delete(Scan).where(Scan.id.in_(deleted)))
    log.info("scans %s deleted", deleted)
    return bulk_result(noun="scans", deleted=deleted, skipped=skipped, missing=missing)


def _open_jobs(s: Session, *, scan_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """(id, status) of each scan's jobs that have not ended, by scan id."""
    found: dict[int, list[tuple[int, str]]] = {}
    if not scan_ids:
        return found
    for scan_id, job_id, status in s.execute(
        select(ScanJob.scan_id, ScanJob.id, ScanJob.status)
        .where(
            ScanJob.scan_id.in_(scan_ids),
            ScanJob.status.not_in([st.value for st in SCAN_JOB_FINAL]),
        )
        .order_by(ScanJob.id)
    ):
        if scan_id is not None:
            found.setdefault(scan_id, []).append((job_id, status))
    return found


def checked(fields: ScanFields) -> ScanFields:
    """``fields`` checked, its options without the None values; or InvalidInput naming what is
    wrong."""
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
    options = checked_options(fields.options)
    return dataclasses.replace(
        fields,
        sources=list(fields.sources),
        options=options,
        windows=parse_windows(list(fields.windows or []), field="windows"),
        retry=parse_retry(None if fields.retry is None else dict(fields.retry), field="retry"),
    )


def _check_sources(s: Session, *, source_ids: Sequence[int]) -> None:
    existing = set(s.scalars(select(Source.id).where(Source.id.in_(source_ids))))
    for source_id in source_ids:
        if source_id not in existing:
            raise InvalidInput(f"sources: source {source_id} does not exist.", field="sources")


def _check_name_free(s: Session, *, name: str) -> None:
    if s.scalar(select(Scan.id).where(Scan.name == name)) is not None:
        # The established server's words, about its field: its client prints "name: ...".
        raise InvalidInput(f"Scan with name={name} already exists", field="name")


def _get(s: Session, *, scan_id: int) -> Scan:
    row = s.get(Scan, scan_id)
    if row is None:
        raise NotFound(f"Scan {scan_id} does not exist.")
    return row


def _write(row: Scan, *, fields: ScanFields, options: Mapping[str, Any], now: datetime) -> None:
    stored = dict(options)
    row.name = fields.name
    row.scan_type = fields.scan_type
    # The column holds max_concurrency (the database checks its range); JSON the rest.
    row.max_concurrency = stored.pop("max_concurrency")
    row.options = stored
    row.sources = [
        ScanSource(source_id=source_id, position=position)
        for position, source_id in enumerate(fields.sources)
    ]
    row.windows = list(fields.windows)
    row.retry = dict(fields.retry or {})
    _write_schedule(row, schedule=fields.schedule, now=now)


def _write_schedule(row: Scan, *, schedule: Schedule | None, now: datetime) -> None:
    """Store the schedule; a changed one starts over from its next firing after ``now``."""
    if schedule is None:
        row.schedule_cron = row.schedule_timezone = row.next_fire_at = None
        return
    if (row.schedule_cron, row.schedule_timezone) == (schedule.cron, schedule.timezone):
        return  # unchanged: a firing already due still fires
    row.schedule_cron = schedule.cron
    row.schedule_timezone = schedule.timezone
    row.next_fire_at = next_firing(schedule, after=now)


def _read(row: Scan) -> ScanFields:
    """The scan's fields, with no options given (an edit merges or replaces them)."""
    return ScanFields(
        name=row.name,
        scan_type=row.scan_type,
        sources=[link.source_id for link in row.sources],
        schedule=_schedule_of(row),
        windows=list(row.windows or []),
        retry=dict(row.retry or {}),
    )


def _schedule_of(row: Scan) -> Schedule | None:
    if row.schedule_cron is None:
        return None
    return Schedule(cron=row.schedule_cron, timezone=row.schedule_timezone or "UTC")


def _schedule_view(row: Scan, *, now: datetime) -> ScheduleView | None:
    schedule = _schedule_of(row)
    if schedule is None:
        return None
    return ScheduleView(
        cron=schedule.cron,
        timezone=schedule.timezone,
        next_firings=next_firings(schedule, after=now, count=SHOWN_FIRINGS),
    )


def _views(s: Session, *, rows: Sequence[Scan], now: datetime | None) -> list[ScanView]:
    # Reading a scan without a server's clock at hand (a script, a test) shows firings from now.
    now = now or datetime.now(UTC)
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
    reports = {
        job_id: (report_id, count)
        for job_id, report_id, count in s.execute(
            select(Report.scan_job_id, Report.id, Report.deployments_count)
            .join(ScanJob, ScanJob.id == Report.scan_job_id)
            .where(ScanJob.scan_id.in_(ids))
        )
    }
    jobs: dict[int | None, list[tuple[int, int | None]]] = {}
    for scan_id, job_id in s.execute(
        select(ScanJob.scan_id, ScanJob.id).where(ScanJob.scan_id.in_(ids)).order_by(ScanJob.id)
    ):
        jobs.setdefault(scan_id, []).append((job_id, reports.get(job_id, (None, None))[0]))
    newest = select(func.max(ScanJob.id)).where(ScanJob.scan_id.in_(ids)).group_by(ScanJob.scan_id)
    recent = {
        j.scan_id: _job_ref(j, report=reports.get(j.id))
        for j in s.scalars(
            select(ScanJob).where(ScanJob.id.in_(newest)).options(selectinload(ScanJob.tasks))
        )
    }
    return [
        ScanView(
            id=r.id,
            name=r.name,
            scan_type=r.scan_type,
            sources=[sources[link.source_id] for link in r.sources],
            options=present_options({**r.options, "max_concurrency": r.max_concurrency}),
            schedule=_schedule_view(r, now=now),
            windows=list(r.windows or []),
            retry=dict(r.retry or {}),
            most_recent_scanjob=recent.get(r.id),
            jobs=jobs.get(r.id, []),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in (loaded[i] for i in ids)
    ]


def _job_ref(job: ScanJob, *, report: tuple[int, int] | None) -> JobRef:
    return JobRef(
        id=job.id,
        status=job.status,
        status_message=job.status_message,
        scan_type=job.scan_type,
        start_time=job.start_time,
        end_time=job.end_time,
        systems_count=job.systems_count,
        systems_scanned=job.systems_scanned,
        systems_failed=job.systems_failed,
        systems_unreachable=job.systems_unreachable,
        report_id=report[0] if report else None,
        fingerprints=report[1] if report else None,
        task_messages=[(t.id, task_message(t.status, t.status_message)) for t in job.tasks],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanStatus:
    """A scan's aggregate status: its newest scan job's state and counters, how its scanner
    jobs stand, and the alarms open on it (what a script following a stalled scan reads)."""

    id: int
    name: str
    jobs_count: int
    latest: ScanJob | None
    """Its newest scan job, loaded with its tasks; None before its first start."""
    scanner_jobs: dict[str, int]
    """How many of the newest job's scanner jobs are in each status (every status named)."""
    alarms: list[Alarm]
    """The open alarms of the newest job, oldest first."""


def scan_status(store: Store, *, scan_id: int) -> ScanStatus:
    """The aggregate status of one scan; NotFound for a scan that does not exist."""
    with store.transaction() as s:
        scan = _get(s, scan_id=scan_id)
        jobs_count = s.scalar(select(func.count()).where(ScanJob.scan_id == scan_id)) or 0
        latest = s.scalar(
            select(ScanJob)
            .where(ScanJob.scan_id == scan_id)
            .order_by(ScanJob.id.desc())
            .limit(1)
            .options(selectinload(ScanJob.tasks))
        )
        counts = dict.fromkeys((st.value for st in ScannerJobStatus), 0)
        alarms: list[Alarm] = []
        if latest is not None:
            for status, count in s.execute(
                select(ScannerJob.status, func.count())
                .where(ScannerJob.scan_job_id == latest.id)
                .group_by(ScannerJob.status)
            ):
                counts[status] = count
            alarms = list(
                s.scalars(
                    select(Alarm)
                    .where(Alarm.scan_job_id == latest.id, Alarm.resolved_at.is_(None))
                    .order_by(Alarm.id)
                )
            )
        return ScanStatus(
            id=scan.id,
            name=scan.name,
            jobs_count=jobs_count,
            latest=latest,
            scanner_jobs=counts,
            alarms=alarms,
        )
