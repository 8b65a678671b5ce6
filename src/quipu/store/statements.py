"""Named statements for state changes: guarded transitions and the scanner-job claim.

The domain's tables say which moves are legal; a move reads the row's status, asks the table
for the target, and updates only while the status is still the one read
(``UPDATE ... WHERE id = :id AND status = :read``), so two ingest nodes racing for one row
cannot both win: the loser reads again and gets the domain's refusal. Each move writes its
entry in the scan job's event log in the same transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quipu.domain.errors import NotFound
from quipu.domain.states import (
    SCANNER_JOB_TRANSITIONS,
    TASK_TRANSITIONS,
    ScanJobAction,
    ScanJobStatus,
    ScannerJobAction,
    ScannerJobStatus,
    TaskAction,
    TaskStatus,
    transition_scan_job,
    transition_scanner_job,
    transition_task,
)
from quipu.store.events import record_event
from quipu.store.tables import Lease, Scan, ScanJob, ScanJobEvent, ScannerJob, Task, UtcDateTime

S = TypeVar("S", bound=enum.StrEnum)


def move_scan_job(
    session: Session,
    *,
    job_id: int,
    action: ScanJobAction,
    by: str,
    at: datetime,
    values: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> ScanJobStatus:
    """guarded_scan_job_update: apply ``action`` to a scan job, or raise the domain's refusal.

    The move and its entry in the job's log (from, to, action, ``by``) are one write."""
    return _move(
        session,
        model=ScanJob,
        kind="scan_job",
        object_id=job_id,
        refuse=lambda status: transition_scan_job(
            job_id=job_id, status=ScanJobStatus(status), action=action
        ),
        action=action,
        by=by,
        at=at,
        values=values,
        note=note,
    )


def move_task(
    session: Session,
    *,
    task_id: int,
    action: TaskAction,
    by: str,
    at: datetime,
    values: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> TaskStatus:
    """guarded_task_update: apply ``action`` to a task, or raise the domain's refusal."""
    return _move(
        session,
        model=Task,
        kind="task",
        object_id=task_id,
        refuse=lambda status: transition_task(
            task_id=task_id, status=TaskStatus(status), action=action
        ),
        action=action,
        by=by,
        at=at,
        values=values,
        note=note,
    )


def move_scanner_job(
    session: Session,
    *,
    job_id: int,
    action: ScannerJobAction,
    by: str,
    at: datetime,
    values: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> ScannerJobStatus:
    """guarded_scanner_job_update: apply ``action`` to a scanner job, or raise the refusal."""
    return _move(
        session,
        model=ScannerJob,
        kind="scanner_job",
        object_id=job_id,
        refuse=lambda status: transition_scanner_job(
            job_id=job_id, status=ScannerJobStatus(status), action=action
        ),
        action=action,
        by=by,
        at=at,
        values=values,
        note=note,
    )


def _move(
    session: Session,
    *,
    model: type[ScanJob] | type[Task] | type[ScannerJob],
    kind: str,
    object_id: int,
    refuse: Callable[[str], S],
    action: enum.StrEnum,
    by: str,
    at: datetime,
    values: Mapping[str, Any] | None,
    note: str | None,
) -> S:
    """Compare and set: read the status, ask the domain for the target (its refusal when the
    move is illegal), then UPDATE only if the status is still the one read."""
    job_column = model.id if model is ScanJob else model.scan_job_id  # type: ignore[union-attr]
    noun = {"scan_job": "Scan job", "task": "Task", "scanner_job": "Scanner job"}[kind]
    values = dict(values or {})
    while True:
        row = session.execute(select(model.status, job_column).where(model.id == object_id)).first()
        if row is None:
            raise NotFound(f"{noun} {object_id} does not exist.")
        current, scan_job_id = row
        target = refuse(current)
        stmt = (
            update(model)
            .where(model.id == object_id, model.status == current)
            .values(status=target.value, **values)
            .execution_options(synchronize_session=False)
        )
        if session.execute(stmt).rowcount == 1:  # type: ignore[attr-defined]
            break
        # Another node moved the row between our SELECT and UPDATE: decide again.
    message = (
        note
        if note is not None
        else values.get("status_message") or values.get("error_message") or ""
    )
    record_event(
        session,
        scan_job_id=scan_job_id,
        at=at,
        kind=kind,
        subject_id=None if model is ScanJob else object_id,
        action=action.value,
        from_status=current,
        to_status=target.value,
        actor=by,
        message=str(message),
    )
    return target


def cancel_job_work(session: Session, *, job_id: int, by: str, at: datetime) -> int:
    """cancel_job_work: end a final scan job's unclaimed scanner jobs and unfinished tasks.

    The tasks' source states are the transition table's for CANCEL; scanner jobs only while
    pending (those a scanner holds are told to stop and end when it answers). Each end is
    logged; the rows are locked while read, so the logged source state is the one moved
    from. Returns how many moved."""
    moved = _bulk_move(
        session,
        model=ScannerJob,
        kind="scanner_job",
        where=[ScannerJob.scan_job_id == job_id],
        sources=[ScannerJobStatus.PENDING],
        transitions=SCANNER_JOB_TRANSITIONS[ScannerJobAction.CANCEL],
        action=ScannerJobAction.CANCEL,
        values={"finished_at": at},
        by=by,
        at=at,
    )
    return moved + _bulk_move(
        session,
        model=Task,
        kind="task",
        where=[Task.scan_job_id == job_id],
        sources=list(TASK_TRANSITIONS[TaskAction.CANCEL]),
        transitions=TASK_TRANSITIONS[TaskAction.CANCEL],
        action=TaskAction.CANCEL,
        values={"end_time": at},
        by=by,
        at=at,
    )


def _bulk_move(
    session: Session,
    *,
    model: type[Task] | type[ScannerJob],
    kind: str,
    where: list[Any],
    sources: list[Any],
    transitions: Mapping[Any, Any],
    action: enum.StrEnum,
    values: Mapping[str, Any],
    by: str,
    at: datetime,
) -> int:
    """Move every row matching ``where`` in one of ``sources`` by the table's ``transitions``
    (one UPDATE per target state), each logged with the state it left."""
    table = {src.value: dst.value for src, dst in transitions.items() if src in sources}
    rows = session.execute(
        select(model.id, model.status, model.scan_job_id)
        .where(*where, model.status.in_(list(table)))
        .order_by(model.id)
        .with_for_update()
    ).all()
    by_target: dict[str, list[int]] = {}
    for object_id, current, _ in rows:
        by_target.setdefault(table[current], []).append(object_id)
    for target, ids in by_target.items():
        session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values(status=target, **values)
            .execution_options(synchronize_session=False)
        )
    for object_id, current, scan_job_id in rows:
        record_event(
            session,
            scan_job_id=scan_job_id,
            at=at,
            kind=kind,
            subject_id=object_id,
            action=action.value,
            from_status=current,
            to_status=table[current],
            actor=by,
            message="Ended with its scan job.",
        )
    return len(rows)


CLAIM_POSTGRESQL = text(
    """
    WITH candidates AS MATERIALIZED (
        SELECT sj.id
        FROM scanner_jobs AS sj JOIN scan_jobs AS j ON j.id = sj.scan_job_id
        WHERE sj.scanner_id = :scanner_id AND sj.status = 'pending' AND j.status = 'running'
        ORDER BY sj.id
        LIMIT :limit
        FOR UPDATE OF sj SKIP LOCKED
    )
    UPDATE scanner_jobs
    SET status = 'claimed', claimed_at = :now, attempts = scanner_jobs.attempts + 1
    FROM candidates
    WHERE scanner_jobs.id = candidates.id
    RETURNING scanner_jobs.id
    """
).bindparams(bindparam("now", type_=UtcDateTime()))
"""claim_scanner_jobs: lock up to :limit pending jobs of a running scan job, skipping rows
another claimer holds, and mark them claimed, in one statement."""

CLAIM_SQLITE = text(
    """
    UPDATE scanner_jobs
    SET status = 'claimed', claimed_at = :now, attempts = attempts + 1
    WHERE id IN (
        SELECT sj.id
        FROM scanner_jobs AS sj JOIN scan_jobs AS j ON j.id = sj.scan_job_id
        WHERE sj.scanner_id = :scanner_id AND sj.status = 'pending' AND j.status = 'running'
        ORDER BY sj.id
        LIMIT :limit
    )
    RETURNING id
    """
).bindparams(bindparam("now", type_=UtcDateTime()))
"""claim_scanner_jobs (SQLite): the same claim; BEGIN IMMEDIATE serializes claimers."""


def claim_scanner_jobs(
    session: Session, *, scanner_id: int, limit: int, now: datetime, by: str
) -> list[ScannerJob]:
    """Claim up to ``limit`` of a scanner's pending jobs atomically; returns them, oldest first.

    Each claim is logged in its scan job's log, in one statement for the batch."""
    dialect = session.get_bind().dialect.name
    stmt = CLAIM_POSTGRESQL if dialect == "postgresql" else CLAIM_SQLITE
    ids = session.scalars(stmt, {"scanner_id": scanner_id, "limit": limit, "now": now}).all()
    if not ids:
        return []
    jobs = list(
        session.scalars(select(ScannerJob).where(ScannerJob.id.in_(ids)).order_by(ScannerJob.id))
    )
    session.execute(
        insert(ScanJobEvent),
        [
            {
                "scan_job_id": job.scan_job_id,
                "at": now,
                "kind": "scanner_job",
                "action": ScannerJobAction.CLAIM.value,
                "from_status": ScannerJobStatus.PENDING.value,
                "to_status": ScannerJobStatus.CLAIMED.value,
                "actor": by[:160],
                "subject_id": job.id,
                "message": "",
            }
            for job in jobs
        ],
    )
    return jobs


def take_lease(session: Session, *, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
    """take_lease: become or stay the holder of a named lease unless another holds it unexpired."""
    expires = now + timedelta(seconds=ttl_s)
    renewed = session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    if renewed.rowcount:  # type: ignore[attr-defined]
        return True
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    created = session.execute(
        insert(Lease)
        .values(name=name, holder=holder, expires_at=expires)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return bool(created.rowcount)  # type: ignore[attr-defined]


def advance_schedule(
    session: Session, *, scan_id: int, seen: datetime, next_fire_at: datetime | None
) -> bool:
    """advance_schedule: move a scan's next firing on from the one read; True if this node won.

    Every ingest node reads the due firings each tick; only the one whose update still finds
    the firing it read starts the job, so a firing starts one job however many nodes run."""
    moved = session.execute(
        update(Scan)
        .where(Scan.id == scan_id, Scan.next_fire_at == seen)
        .values(next_fire_at=next_fire_at)
        .execution_options(synchronize_session=False)
    )
    return bool(moved.rowcount)  # type: ignore[attr-defined]
