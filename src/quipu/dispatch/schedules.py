"""Scan schedules: each firing starts a scan job once, whichever ingest node sees it first."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from quipu.domain.errors import QuipuError
from quipu.domain.schedules import Schedule, next_firing
from quipu.domain.states import SCAN_JOB_FINAL
from quipu.services import scan_jobs
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.statements import advance_schedule
from quipu.store.tables import Scan, ScanJob

log = logging.getLogger(__name__)

FINAL = [status.value for status in SCAN_JOB_FINAL]


def fire_due(store: Store, *, settings: Settings, now: datetime) -> list[int]:
    """Start a scan job for every scan whose next firing is due; the started job ids.

    The next firing is reckoned from ``now``, not from the firing that was due, so firings
    missed while every server was down start one job, not one per missed firing."""
    with store.transaction() as s:
        due = s.execute(
            select(Scan.id, Scan.next_fire_at)
            .where(Scan.next_fire_at.is_not(None), Scan.next_fire_at <= now)
            .order_by(Scan.next_fire_at, Scan.id)
        ).all()
    started = []
    for scan_id, seen in due:
        if seen is None:
            continue
        job_id = _fire(store, scan_id=scan_id, seen=seen, settings=settings, now=now)
        if job_id is not None:
            started.append(job_id)
    return started


def _fire(
    store: Store, *, scan_id: int, seen: datetime, settings: Settings, now: datetime
) -> int | None:
    """One firing, as one write: move the schedule on, then start a job or note the skip."""
    with store.transaction() as s:
        scan = s.get(Scan, scan_id)
        if scan is None or scan.schedule_cron is None:
            return None
        schedule = Schedule(cron=scan.schedule_cron, timezone=scan.schedule_timezone or "UTC")
        following = next_firing(schedule, after=now)
        if not advance_schedule(s, scan_id=scan_id, seen=seen, next_fire_at=following):
            return None  # another node fired it, or the schedule was edited meanwhile
        open_job = s.execute(
            select(ScanJob.id, ScanJob.status)
            .where(ScanJob.scan_id == scan_id, ScanJob.status.not_in(FINAL))
            .order_by(ScanJob.id.desc())
            .limit(1)
        ).first()
        if open_job is not None:
            _skip(s, job_id=open_job.id, status=open_job.status, seen=seen, now=now)
            log.info(
                "scan %s: firing at %s skipped, scan job %s is %s",
                scan_id,
                seen,
                open_job.id,
                open_job.status,
            )
            return None
        return _start(s, scan_id=scan_id, settings=settings, now=now)


def _skip(s: Session, *, job_id: int, status: str, seen: datetime, now: datetime) -> None:
    """A scan runs one job at a time: the firing is noted on the job still open."""
    at = seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    record_event(
        s,
        scan_job_id=job_id,
        at=now,
        kind="schedule",
        actor="schedule",
        message=f"Scheduled firing at {at} skipped: scan job {job_id} is still {status}.",
    )


def _start(s: Session, *, scan_id: int, settings: Settings, now: datetime) -> int | None:
    """Start the firing's job; a scan that cannot start loses this firing but keeps the next."""
    try:
        with s.begin_nested():
            job_id = scan_jobs.start_in(
                s,
                scan_id=scan_id,
                now=now,
                by="schedule",
                trigger="schedule",
                hold_for_s=settings.approval_timeout_s,
            )
    except QuipuError as error:
        log.warning("scan %s: scheduled firing started no scan job: %s", scan_id, error)
        return None
    log.info("scan job %s started for scan %s by its schedule", job_id, scan_id)
    return job_id
