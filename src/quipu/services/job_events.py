"""A scan job's log and its progress, as the API, the web pages and ``qpc`` read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from quipu.domain.errors import NotFound
from quipu.domain.retry import retry_delay
from quipu.domain.rules import Counters, Progress, TaskView, job_progress
from quipu.domain.states import ScanJobStatus, TaskKind, TaskStatus
from quipu.store import Store
from quipu.store.tables import ScanJob, ScanJobEvent, Task


@dataclass(frozen=True, slots=True)
class EventView:
    """One entry of a scan job's log."""

    id: int
    at: datetime
    kind: str
    """What it is about: scan_job, task, scanner_job, schedule, reassign, alarm, error, repair."""
    action: str
    from_status: str | None
    to_status: str | None
    actor: str
    """Who or what caused it: ``user:NAME``, ``schedule``, ``dispatcher``, ``scanner:NAME``..."""
    subject_id: int | None
    """The task or scanner job it is about; None for the scan job itself."""
    message: str


def list_events(
    store: Store, *, job_id: int, offset: int = 0, limit: int = 100, newest_first: bool = False
) -> tuple[int, list[EventView]]:
    """A page of a scan job's log, oldest first (or newest first), and how many entries it
    holds in all; NotFound for a job that does not exist."""
    with store.transaction() as s:
        if s.get(ScanJob, job_id) is None:
            raise NotFound(f"Scan job {job_id} does not exist.")
        # The count comes from the page's own statement, so that entries written meanwhile
        # (a running job's log grows) never make the count disagree with the page.
        rows = s.execute(
            select(ScanJobEvent, func.count().over())
            .where(ScanJobEvent.scan_job_id == job_id)
            .order_by(ScanJobEvent.id.desc() if newest_first else ScanJobEvent.id)
            .offset(offset)
            .limit(limit)
        ).all()
        events = [_view(row) for row, _ in rows]
        if rows:
            return int(rows[0][1]), events
        count = s.scalar(
            select(func.count()).select_from(ScanJobEvent).where(ScanJobEvent.scan_job_id == job_id)
        )
    return count or 0, events


SUBJECTS = {
    "scan_job": "scan job",
    "task": "task",
    "scanner_job": "scanner job",
    "reassign": "scanner job",
}


def subject(event: EventView) -> str:
    """What an entry is about, as operators read it: ``scan job``, ``task 3``, ``schedule``."""
    what = SUBJECTS.get(event.kind, event.kind)
    return what if event.subject_id is None else f"{what} {event.subject_id}"


def _view(row: ScanJobEvent) -> EventView:
    return EventView(
        id=row.id,
        at=row.at,
        kind=row.kind,
        action=row.action,
        from_status=row.from_status,
        to_status=row.to_status,
        actor=row.actor,
        subject_id=row.subject_id,
        message=row.message,
    )


def progress(job: ScanJob) -> Progress:
    """The progress of ``job`` (loaded with its tasks): its phase's and the whole job's."""
    return job_progress(
        [task_view(t) for t in job.tasks],
        status=ScanJobStatus(job.status),
        may_retry=retry_delay(job.retry or {}, job.attempt + 1) is not None,
    )


def task_view(task: Task) -> TaskView:
    """The domain's view of a task row, as the progress and the dispatcher's rules read it."""
    return TaskView(
        source_name=task.source_name,
        kind=TaskKind(task.kind),
        status=TaskStatus(task.status),
        counters=Counters(
            task.systems_count,
            task.systems_scanned,
            task.systems_failed,
            task.systems_unreachable,
        ),
        status_message=task.status_message,
    )
