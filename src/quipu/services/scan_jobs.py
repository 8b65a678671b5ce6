"""Scan job use cases: start, pause, restart, cancel, approve, and reading jobs and tasks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from quipu.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from quipu.domain.states import (
    ScanJobAction,
    ScanJobStatus,
    TaskKind,
    TaskStatus,
    scan_job_status,
)
from quipu.domain.windows import check_opens
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.statements import cancel_job_work, move_scan_job
from quipu.store.tables import (
    Report,
    Scan,
    ScanJob,
    Source,
    SystemResult,
    Task,
    User,
)

log = logging.getLogger(__name__)

JOB_MESSAGES = {
    ScanJobStatus.CREATED: "Job is created.",
    ScanJobStatus.PENDING: "Job is pending.",
    ScanJobStatus.RUNNING: "Job is running.",
    ScanJobStatus.PAUSED: "Job is paused.",
    ScanJobStatus.CANCELED: "Job is canceled.",
    ScanJobStatus.COMPLETED: "Job is complete.",
}
"""What the established server says of a scan job in each status, when there is no reason."""
TASK_MESSAGES = {
    TaskStatus.PENDING: "Task is pending.",
    TaskStatus.RUNNING: "Task is running.",
    TaskStatus.CANCELED: "Task is canceled.",
    TaskStatus.COMPLETED: "Task is complete.",
}


def job_message(status: str, message: str) -> str:
    """A scan job's status message: its own reason, or the established words for its status."""
    return message or JOB_MESSAGES.get(ScanJobStatus(status), "")


def task_message(status: str, message: str) -> str:
    return message or TASK_MESSAGES.get(TaskStatus(status), "")


def source_snapshot(source: Source) -> dict[str, Any]:
    """What a task needs of its source, frozen when the job starts."""
    return {
        "hosts": list(source.hosts),
        "exclude_hosts": list(source.exclude_hosts),
        "port": source.port,
        "credential_ids": [c.credential_id for c in source.credentials],
        "scanner_ids": sorted(s.scanner_id for s in source.scanners),
        "ssl_cert_verify": source.ssl_cert_verify,
        "ssl_protocol": source.ssl_protocol,
        "disable_ssl": source.disable_ssl,
        "proxy_url": source.proxy_url,
        "max_probes_per_second": source.max_probes_per_second,
        "scheduling_mode": source.scheduling_mode,
        "windows": list(source.windows or []),
    }


def start(
    store: Store,
    *,
    scan_id: int,
    now: datetime,
    by: str,
    trigger: str = "user",
    hold_for_s: float = 0.0,
) -> ScanJob:
    """Start a scan: a new scan job, queued, or held when a source is mediated.

    ``by`` is who or what started it (``user:NAME``, ``schedule``); a held job not approved
    within ``hold_for_s`` seconds fails (0: never)."""
    with store.transaction() as s:
        job_id = start_in(
            s, scan_id=scan_id, now=now, by=by, trigger=trigger, hold_for_s=hold_for_s
        )
    log.info("scan job %s started for scan %s by %s", job_id, scan_id, by)
    return get(store, job_id=job_id)


def start_in(
    s: Session, *, scan_id: int, now: datetime, by: str, trigger: str, hold_for_s: float
) -> int:
    """:func:`start` inside the caller's transaction (a schedule firing is one write)."""
    scan = s.scalar(select(Scan).where(Scan.id == scan_id).options(selectinload(Scan.sources)))
    if scan is None:
        raise NotFound(f"Scan {scan_id} does not exist.")
    source_ids = [link.source_id for link in scan.sources]
    if not source_ids:
        raise InvalidInput(f'Scan "{scan.name}" has no sources; add one first.', field="sources")
    sources = {
        src.id: src
        for src in s.scalars(
            select(Source)
            .where(Source.id.in_(source_ids))
            .options(selectinload(Source.credentials), selectinload(Source.scanners))
        )
    }
    check_opens(
        [(f'scan "{scan.name}"', scan.windows or [])]
        + [(f'source "{sources[i].name}"', sources[i].windows or []) for i in source_ids],
        at=now,
    )
    job = ScanJob(
        scan_id=scan.id,
        scan_name=scan.name,
        status=ScanJobStatus.CREATED.value,
        options={**scan.options, "max_concurrency": scan.max_concurrency},
        trigger=trigger,
        windows=list(scan.windows or []),
        retry=dict(scan.retry or {}),
        created_at=now,
        updated_at=now,
    )
    s.add(job)
    s.flush()
    record_event(
        s,
        scan_job_id=job.id,
        at=now,
        kind="scan_job",
        action="create",
        to_status=ScanJobStatus.CREATED.value,
        actor=by,
        message=f"Scan {scan.name!r} started"
        + (" by its schedule." if trigger == "schedule" else "."),
    )
    for kind in (TaskKind.CONNECT, TaskKind.INSPECT):
        for source_id in source_ids:
            src = sources[source_id]
            s.add(
                Task(
                    scan_job_id=job.id,
                    source_id=src.id,
                    source_name=src.name,
                    source_type=src.source_type,
                    source=source_snapshot(src),
                    kind=kind.value,
                    status=TaskStatus.PENDING.value,
                )
            )
    mediated = [sources[i].name for i in source_ids if sources[i].scheduling_mode == "mediated"]
    if mediated:
        names = ", ".join(f'"{n}"' for n in mediated)
        expires = now + timedelta(seconds=hold_for_s) if hold_for_s > 0 else None
        until = f" until {expires:%Y-%m-%d %H:%M:%S} UTC" if expires else ""
        move_scan_job(
            s,
            job_id=job.id,
            action=ScanJobAction.HOLD,
            by=by,
            at=now,
            values={
                "updated_at": now,
                "hold_expires_at": expires,
                "status_message": f"Waiting for an administrator's approval{until} "
                f"(mediated sources: {names}).",
            },
        )
    else:
        move_scan_job(
            s,
            job_id=job.id,
            action=ScanJobAction.QUEUE,
            by=by,
            at=now,
            values={"queued_at": now, "updated_at": now},
        )
    return job.id


def _act(
    store: Store,
    *,
    job_id: int,
    action: ScanJobAction,
    values: dict[str, Any],
    now: datetime,
    by: str,
) -> ScanJob:
    with store.transaction() as s:
        move_scan_job(
            s, job_id=job_id, action=action, by=by, at=now, values={"updated_at": now, **values}
        )
        if action == ScanJobAction.CANCEL:
            cancel_open_work(s, job_id=job_id, now=now, by=by)
    log.info("scan job %s: %s by %s", job_id, action, by)
    return get(store, job_id=job_id)


def pause(store: Store, *, job_id: int, now: datetime, by: str) -> ScanJob:
    """Pause: unclaimed work is withheld; scanners working on it are told to stop."""
    values = {"status_message": JOB_MESSAGES[ScanJobStatus.PAUSED]}
    return _act(store, job_id=job_id, action=ScanJobAction.PAUSE, values=values, now=now, by=by)


def restart(store: Store, *, job_id: int, now: datetime, by: str) -> ScanJob:
    """Restart a paused job: it queues again and resumes where it stopped."""
    values = {"queued_at": now, "status_message": "", "not_before": None}
    return _act(store, job_id=job_id, action=ScanJobAction.RESTART, values=values, now=now, by=by)


def approve(store: Store, *, job_id: int, now: datetime, by: str) -> ScanJob:
    """Approve a held job: it queues. Only an administrator may (``by``: ``user:NAME``); the
    approver and the time are kept, and written in the job's log. A job whose approval time
    ran out is refused, whether or not the dispatcher has failed it yet; a refusal changes
    nothing."""
    approver = by.removeprefix("user:")
    with store.transaction() as s:
        if by.startswith("user:"):
            admin = s.scalar(select(User.is_admin).where(User.username == approver))
            if admin is False:
                raise Forbidden("Only an administrator can approve a held scan job.")
        job = s.get(ScanJob, job_id)
        if job is None:
            raise NotFound(f"Scan job {job_id} does not exist.")
        if approval_timed_out(job, now=now):
            assert job.hold_expires_at is not None
            raise Conflict(
                f"Scan job {job_id} was not approved in time (its approval timed out at "
                f"{job.hold_expires_at:%Y-%m-%d %H:%M:%S} UTC) and can no longer be approved."
            )
        move_scan_job(
            s,
            job_id=job_id,
            action=ScanJobAction.APPROVE,
            by=by,
            at=now,
            values={
                "updated_at": now,
                "queued_at": now,
                "status_message": "",
                "approved_by": approver,
                "approved_at": now,
            },
            note=f"Approved by {approver} at {now:%Y-%m-%d %H:%M:%S} UTC.",
        )
    log.info("scan job %s: approved by %s", job_id, by)
    return get(store, job_id=job_id)


def approval_timed_out(job: ScanJob, *, now: datetime) -> bool:
    """Whether ``job`` waited for an approval that never came in time: held past its
    deadline, or already failed for it."""
    if job.hold_expires_at is None or job.approved_at is not None:
        return False
    status = ScanJobStatus(job.status)
    if status == ScanJobStatus.HELD:
        return job.hold_expires_at <= now
    return status == ScanJobStatus.FAILED


def expire_held(store: Store, *, now: datetime) -> list[int]:
    """Fail the held jobs whose approval time ran out (each dispatcher tick); their ids."""
    query = select(ScanJob.id, ScanJob.hold_expires_at).where(
        ScanJob.status == ScanJobStatus.HELD.value,
        ScanJob.hold_expires_at.is_not(None),
        ScanJob.hold_expires_at <= now,
    )
    expired = []
    with store.transaction() as s:
        for job_id, expires in s.execute(query).all():
            try:
                move_scan_job(
                    s,
                    job_id=job_id,
                    action=ScanJobAction.EXPIRE,
                    by="dispatcher",
                    at=now,
                    values={
                        "end_time": now,
                        "updated_at": now,
                        "status_message": "Approval timed out: nobody approved the job by "
                        f"{expires:%Y-%m-%d %H:%M:%S} UTC.",
                    },
                )
            except Conflict:
                continue  # approved or canceled meanwhile
            cancel_open_work(s, job_id=job_id, now=now)
            expired.append(job_id)
    for job_id in expired:
        log.info("scan job %s: approval timed out", job_id)
    return expired


def cancel(store: Store, *, job_id: int, now: datetime, by: str) -> ScanJob:
    """Cancel: final. Unclaimed work is dropped; scanners working on it are told to stop."""
    values = {"end_time": now, "status_message": JOB_MESSAGES[ScanJobStatus.CANCELED]}
    return _act(store, job_id=job_id, action=ScanJobAction.CANCEL, values=values, now=now, by=by)


def cancel_open_work(s: Session, *, job_id: int, now: datetime, by: str = "dispatcher") -> None:
    """Drop a final job's unclaimed scanner jobs and unfinished tasks, each end logged in the
    job's log (``by``: who ended the job)."""
    cancel_job_work(s, job_id=job_id, by=by, at=now)


def get(store: Store, *, job_id: int) -> ScanJob:
    with store.transaction() as s:
        job = s.scalar(
            select(ScanJob).where(ScanJob.id == job_id).options(selectinload(ScanJob.tasks))
        )
    if job is None:
        raise NotFound(f"Scan job {job_id} does not exist.")
    return job


@dataclass(frozen=True, slots=True)
class JobPage:
    count: int
    jobs: Sequence[ScanJob]


def list_jobs(
    store: Store,
    *,
    scan_id: int | None = None,
    status: str | None = None,
    offset: int = 0,
    limit: int = 100,
    oldest_first: bool = False,
) -> JobPage:
    """Scan jobs, newest first (or oldest first), filtered by scan and status."""
    query = select(ScanJob)
    if scan_id is not None:
        query = query.where(ScanJob.scan_id == scan_id)
    if status is not None:
        query = query.where(ScanJob.status == scan_job_status(status).value)
    with store.transaction() as s:
        count = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        jobs = s.scalars(
            query.options(selectinload(ScanJob.tasks))
            .order_by(ScanJob.id if oldest_first else ScanJob.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()
    return JobPage(count=count, jobs=jobs)


@dataclass(frozen=True, slots=True)
class ReportRef:
    """The report of a scan job."""

    id: int
    systems: int
    """Systems in its deployments report (the established ``system_fingerprint_count``)."""


def reports_of(store: Store, *, job_ids: Sequence[int]) -> dict[int, ReportRef]:
    """The report of each of ``job_ids`` that has one."""
    with store.transaction() as s:
        rows = s.execute(
            select(Report.scan_job_id, Report.id, Report.deployments_count).where(
                Report.scan_job_id.in_(job_ids)
            )
        ).all()
    return {job_id: ReportRef(id=report_id, systems=count) for job_id, report_id, count in rows}


def system_results(
    store: Store,
    *,
    job_id: int,
    kind: TaskKind,
    status: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[int, list[tuple[SystemResult, Task]]]:
    """Per-system results of one phase of a job, filterable by status, paginated."""
    get(store, job_id=job_id)
    query = (
        select(SystemResult, Task)
        .join(Task, Task.id == SystemResult.task_id)
        .where(SystemResult.scan_job_id == job_id, Task.kind == kind.value)
    )
    if status is not None:
        allowed = ("success", "failed", "unreachable")
        if status not in allowed:
            raise InvalidInput(
                f"Unknown system status {status!r}; allowed: {', '.join(allowed)}.",
                field="status",
            )
        query = query.where(SystemResult.status == status)
    with store.transaction() as s:
        count = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.execute(query.order_by(SystemResult.id).offset(offset).limit(limit)).all()
    return count, [(r, t) for r, t in rows]
