"""Alarms: raised once per condition (stalled work, a stuck scan job), resolved when the
condition is gone or an operator repairs it; each raise, resolve and repair is written in the
scan job's log."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quipu.domain.errors import Conflict, InvalidInput, NotFound
from quipu.domain.states import (
    SCAN_JOB_FINAL,
    SCANNER_JOB_FINAL,
    SCANNER_JOB_HELD,
    ScanJobAction,
    ScannerJobAction,
    ScannerJobStatus,
    TaskStatus,
)
from quipu.services.scan_jobs import cancel_open_work
from quipu.services.scanners import BUILTIN_NAME, is_online, takes_work
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.statements import move_scan_job, move_scanner_job
from quipu.store.tables import Alarm, ScanJob, Scanner, ScannerJob, Source, SourceScanner, Task

log = logging.getLogger(__name__)

REPAIRS = ("redispatch", "reassign", "drain", "fail")
"""What an operator can do about an alarm; each alarm offers those that fit it."""

MESSAGE_MAX = 1000


def list_alarms(
    store: Store, *, offset: int, limit: int, resolved: bool | None = None
) -> tuple[int, list[Alarm]]:
    """One page of alarms, newest first, and how many there are; ``resolved``: only the
    resolved ones (True) or only the open ones (False)."""
    query = select(Alarm)
    if resolved is not None:
        query = query.where(
            Alarm.resolved_at.is_not(None) if resolved else Alarm.resolved_at.is_(None)
        )
    with store.transaction() as s:
        count = s.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = s.scalars(query.order_by(Alarm.id.desc()).offset(offset).limit(limit))
        return count, list(rows)


def get(store: Store, *, alarm_id: int) -> Alarm:
    with store.transaction() as s:
        alarm = s.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"Alarm {alarm_id} does not exist.")
    return alarm


def names(store: Store, *, alarms: list[Alarm]) -> tuple[dict[int, str], dict[int, str]]:
    """The names of the scanners and of the sources the alarms are about."""
    scanner_ids = {a.scanner_id for a in alarms if a.scanner_id is not None}
    source_ids = {a.source_id for a in alarms if a.source_id is not None}
    with store.transaction() as s:
        scanners = dict(
            s.execute(select(Scanner.id, Scanner.name).where(Scanner.id.in_(scanner_ids))).all()
        )
        sources = dict(
            s.execute(select(Source.id, Source.name).where(Source.id.in_(source_ids))).all()
        )
    return scanners, sources


def raise_alarm(
    s: Session,
    *,
    kind: str,
    key: str,
    scan_job_id: int,
    message: str,
    actions: list[str],
    now: datetime,
    scanner_job_id: int | None = None,
    scanner_id: int | None = None,
    source_id: int | None = None,
) -> int | None:
    """Record an alarm unless one is open for ``key`` (the same condition); its id when
    this call raised it. The raise is written in the scan job's log."""
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    alarm_id = s.scalar(
        insert(Alarm)
        .values(
            kind=kind,
            key=key,
            scan_job_id=scan_job_id,
            scanner_job_id=scanner_job_id,
            scanner_id=scanner_id,
            source_id=source_id,
            message=message,
            actions=actions,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Alarm.id)
    )
    if alarm_id is None:
        return None
    offered = ", ".join(actions) if actions else "none"
    record_event(
        s,
        scan_job_id=scan_job_id,
        at=now,
        kind="alarm",
        action="raise",
        subject_id=scanner_job_id,
        actor="dispatcher",
        message=f"Alarm {alarm_id} ({kind}): {message} Repairs: {offered}.",
    )
    log.warning("alarm %s (%s) for scan job %s: %s", alarm_id, kind, scan_job_id, message)
    return int(alarm_id)


def resolve_alarm(s: Session, *, alarm: Alarm, now: datetime, by: str, why: str) -> bool:
    """Close an open alarm (its key freed, so the condition may raise again later); the
    resolution is written in the scan job's log. False when it was already closed."""
    done = s.execute(
        update(Alarm)
        .where(Alarm.id == alarm.id, Alarm.resolved_at.is_(None))
        .values(resolved_at=now, key=None)
        .execution_options(synchronize_session=False)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return False
    if alarm.scan_job_id is not None:
        record_event(
            s,
            scan_job_id=alarm.scan_job_id,
            at=now,
            kind="alarm",
            action="resolve",
            subject_id=alarm.scanner_job_id,
            actor=by,
            message=f"Alarm {alarm.id} ({alarm.kind}) resolved: {why}.",
        )
    log.info("alarm %s (%s) resolved: %s", alarm.id, alarm.kind, why)
    return True


def repair(
    store: Store,
    *,
    alarm_id: int,
    action: str,
    scanner_id: int | None,
    message: str | None,
    username: str,
    now: datetime,
    timeout_s: float,
) -> str:
    """Apply one of the repairs an open alarm offers, then resolve it; what was done, in a
    sentence. A refused repair changes nothing."""
    if action not in REPAIRS:
        raise InvalidInput(
            f"Unknown repair action {action!r}; allowed: {', '.join(REPAIRS)}.", field="action"
        )
    by = f"user:{username}"
    with store.transaction() as s:
        alarm = s.scalar(select(Alarm).where(Alarm.id == alarm_id).with_for_update())
        if alarm is None:
            raise NotFound(f"Alarm {alarm_id} does not exist.")
        if alarm.resolved_at is not None:
            raise Conflict(f"Alarm {alarm_id} is resolved already; there is nothing to repair.")
        if action not in alarm.actions:
            offered = ", ".join(alarm.actions) or "none"
            raise InvalidInput(
                f"Alarm {alarm_id} ({alarm.kind}) does not offer repair {action!r}; "
                f"allowed: {offered}.",
                field="action",
            )
        repairs = {
            "redispatch": _redispatch,
            "reassign": _reassign,
            "drain": _drain,
            "fail": _fail,
        }
        done = repairs[action](
            s,
            alarm=alarm,
            scanner_id=scanner_id,
            message=(message or "").strip(),
            by=by,
            now=now,
            timeout_s=timeout_s,
        )
        assert alarm.scan_job_id is not None
        record_event(
            s,
            scan_job_id=alarm.scan_job_id,
            at=now,
            kind="repair",
            action=action,
            subject_id=alarm.scanner_job_id,
            actor=by,
            message=f"Alarm {alarm.id} ({alarm.kind}): {done}",
        )
        resolve_alarm(s, alarm=alarm, now=now, by=by, why=f"repaired by {username} ({action})")
    log.info("alarm %s repaired by %s: %s", alarm_id, username, done)
    return done


def _scanner_job(s: Session, alarm: Alarm) -> ScannerJob:
    job = s.get(ScannerJob, alarm.scanner_job_id) if alarm.scanner_job_id is not None else None
    if job is None or ScannerJobStatus(job.status) in SCANNER_JOB_FINAL:
        raise Conflict(f"Alarm {alarm.id}'s scanner job has ended; there is nothing to move.")
    return job


def _target(s: Session, scanner_id: int | None) -> Scanner:
    """The scanner an operator named for new work: it must exist and take work."""
    if scanner_id is None:
        raise InvalidInput("Give the scanner to hand the work to (scanner_id).", field="scanner_id")
    scanner = s.get(Scanner, scanner_id)
    if scanner is None:
        raise InvalidInput(f"Scanner {scanner_id} does not exist.", field="scanner_id")
    if not scanner.enabled:
        raise InvalidInput(f"Scanner {scanner.name!r} is disabled.", field="scanner_id")
    if scanner.draining:
        raise InvalidInput(
            f"Scanner {scanner.name!r} is draining: it takes no new work.", field="scanner_id"
        )
    return scanner


def eligible_scanners(s: Session, *, task: Task, now: datetime, timeout_s: float) -> list[Scanner]:
    """The scanners of the task's source that take work, online ones first."""
    ids = task.source.get("scanner_ids") or []
    query = select(Scanner).order_by(Scanner.id)
    query = query.where(Scanner.id.in_(ids)) if ids else query.where(Scanner.name == BUILTIN_NAME)
    usable = [sc for sc in s.scalars(query) if takes_work(sc)]
    return sorted(usable, key=lambda sc: not is_online(sc, now=now, timeout_s=timeout_s))


def _move_to(s: Session, *, job: ScannerJob, to: Scanner, by: str, now: datetime, why: str) -> None:
    move_scanner_job(
        s,
        job_id=job.id,
        action=ScannerJobAction.REDISPATCH,
        by=by,
        at=now,
        values={"scanner_id": to.id, "claimed_at": None, "started_at": None},
        note=f"Scanner job {job.id} re-dispatched to scanner {to.name!r}: {why}.",
    )


def _redispatch(
    s: Session,
    *,
    alarm: Alarm,
    scanner_id: int | None,
    message: str,
    by: str,
    now: datetime,
    timeout_s: float,
) -> str:
    job = _scanner_job(s, alarm)
    task = s.get_one(Task, job.task_id)
    eligible = eligible_scanners(s, task=task, now=now, timeout_s=timeout_s)
    if scanner_id is not None:
        target = _target(s, scanner_id)
        if target.id not in {sc.id for sc in eligible}:
            raise InvalidInput(
                f"Scanner {target.name!r} is not a scanner of source {task.source_name!r}; "
                "use the reassign repair to give the source to it.",
                field="scanner_id",
            )
    else:
        others = [sc for sc in eligible if sc.id != job.scanner_id]
        if not others:
            raise InvalidInput(
                f"No other scanner of source {task.source_name!r} can take scanner job "
                f"{job.id}; use the reassign repair with a scanner_id.",
                field="scanner_id",
            )
        target = others[0]
    group = [job]
    if alarm.kind == "unclaimed":
        # The alarm stands for all the task's work waiting on that scanner.
        group += s.scalars(
            select(ScannerJob)
            .where(
                ScannerJob.task_id == job.task_id,
                ScannerJob.scanner_id == job.scanner_id,
                ScannerJob.status == ScannerJobStatus.PENDING.value,
                ScannerJob.id != job.id,
            )
            .order_by(ScannerJob.id)
        ).all()
    for moved in group:
        _move_to(s, job=moved, to=target, by=by, now=now, why=f"alarm {alarm.id}")
    if len(group) == 1:
        return f"scanner job {job.id} was given back to the queue, for scanner {target.name!r}."
    return f"{len(group)} scanner jobs were given back to the queue, for scanner {target.name!r}."


def _reassign(
    s: Session,
    *,
    alarm: Alarm,
    scanner_id: int | None,
    message: str,
    by: str,
    now: datetime,
    timeout_s: float,
) -> str:
    target = _target(s, scanner_id)
    job = _scanner_job(s, alarm)
    task = s.get_one(Task, job.task_id)
    source_id = alarm.source_id or task.source_id
    if source_id is not None and s.get(Source, source_id) is not None:
        s.execute(delete(SourceScanner).where(SourceScanner.source_id == source_id))
        s.add(SourceScanner(source_id=source_id, scanner_id=target.id))
    # The open work of the source takes the new scanner too: the snapshots its tasks hold,
    # and its scanner jobs not yet claimed (the alarm's own, whatever its state).
    open_tasks = list(
        s.scalars(
            select(Task)
            .join(ScanJob, ScanJob.id == Task.scan_job_id)
            .where(
                Task.source_id == source_id if source_id is not None else Task.id == task.id,
                Task.status.in_([TaskStatus.PENDING.value, TaskStatus.RUNNING.value]),
                ScanJob.status.not_in([st.value for st in SCAN_JOB_FINAL]),
            )
        )
    )
    for open_task in open_tasks:
        open_task.source = {**open_task.source, "scanner_ids": [target.id]}
    s.flush()
    waiting = list(
        s.scalars(
            select(ScannerJob)
            .where(
                ScannerJob.task_id.in_([t.id for t in open_tasks]),
                ScannerJob.status == ScannerJobStatus.PENDING.value,
                ScannerJob.scanner_id.is_distinct_from(target.id),
                ScannerJob.id != job.id,
            )
            .order_by(ScannerJob.id)
        )
    )
    why = f"source {task.source_name!r} re-assigned to it (alarm {alarm.id})"
    for moved in [job, *waiting]:
        _move_to(s, job=moved, to=target, by=by, now=now, why=why)
    count = 1 + len(waiting)
    return (
        f"source {task.source_name!r} now uses scanner {target.name!r}; {count} scanner "
        f"job{'' if count == 1 else 's'} re-dispatched to it."
    )


def _drain(
    s: Session,
    *,
    alarm: Alarm,
    scanner_id: int | None,
    message: str,
    by: str,
    now: datetime,
    timeout_s: float,
) -> str:
    wanted = scanner_id if scanner_id is not None else alarm.scanner_id
    scanner = s.get(Scanner, wanted) if wanted is not None else None
    if scanner is None:
        raise InvalidInput("Give the scanner to drain (scanner_id).", field="scanner_id")
    scanner.draining = True
    return f"scanner {scanner.name!r} is draining: it takes no new work; what it holds finishes."


def _fail(
    s: Session,
    *,
    alarm: Alarm,
    scanner_id: int | None,
    message: str,
    by: str,
    now: datetime,
    timeout_s: float,
) -> str:
    if not message:
        raise InvalidInput("Say why the scan job fails (message).", field="message")
    if len(message) > MESSAGE_MAX:
        raise InvalidInput(f"The message has at most {MESSAGE_MAX} characters.", field="message")
    assert alarm.scan_job_id is not None
    job_id = alarm.scan_job_id
    move_scan_job(
        s,
        job_id=job_id,
        action=ScanJobAction.FAIL,
        by=by,
        at=now,
        values={"end_time": now, "updated_at": now, "status_message": message},
    )
    # Work held by scanners ends too: their next progress report tells them to stop.
    held = s.scalars(
        select(ScannerJob.id).where(
            ScannerJob.scan_job_id == job_id,
            ScannerJob.status.in_([st.value for st in SCANNER_JOB_HELD]),
        )
    ).all()
    for held_id in held:
        move_scanner_job(
            s,
            job_id=held_id,
            action=ScannerJobAction.CANCEL,
            by=by,
            at=now,
            values={"finished_at": now},
            note=f"Scan job {job_id} failed by an operator: {message}",
        )
    cancel_open_work(s, job_id=job_id, now=now, by=by)
    return f"scan job {job_id} failed: {message}"


def offered(alarm: Alarm) -> list[str]:
    """The repairs of ``alarm`` in their usual order."""
    return [a for a in REPAIRS if a in alarm.actions]
