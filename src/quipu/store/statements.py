"""Named statements for state changes: guarded transitions and the scanner-job claim.

The domain's tables say which moves are legal; a move reads the row's status, asks the table
for the target, and updates only while the status is still the one read
(``UPDATE ... WHERE id = :id AND status = :read``), so two ingest nodes racing for one row
cannot both win: the loser reads again and gets the domain's refusal. Each move writes its
entry in the scan job's event log in the same transaction.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Row,
    String,
    TextClause,
    bindparam,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
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
from quipu.store.db import Store
from quipu.store.events import record_event
from quipu.store.notify import DISPATCH, WORK, notify
from quipu.store.tables import (
    OPEN_SCANNER_JOBS,
    Lease,
    Scan,
    ScanJob,
    ScanJobEvent,
    Scanner,
    ScannerJob,
    Task,
    UtcDateTime,
)

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
    if model is ScannerJob and target == ScannerJobStatus.PENDING:
        scanner_id = session.scalar(select(ScannerJob.scanner_id).where(ScannerJob.id == object_id))
        announce_work(session, scanner_ids=[scanner_id])
    elif model is ScanJob and target == ScanJobStatus.RUNNING:
        announce_work(
            session,
            scanner_ids=session.scalars(
                select(ScannerJob.scanner_id)
                .where(
                    ScannerJob.scan_job_id == object_id,
                    ScannerJob.status == ScannerJobStatus.PENDING.value,
                )
                .distinct()
            ),
        )
    return target


def announce_work(session: Session, *, scanner_ids: Iterable[int | None]) -> None:
    """Wake the long polls of these scanners, on every node, once this transaction commits:
    work they may claim exists."""
    notify(session, WORK, (str(i) for i in scanner_ids if i is not None))


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


@dataclass(frozen=True, slots=True)
class Claimed:
    """A scanner job just claimed, with what its payload needs from its task and scan job."""

    id: int
    scan_job_id: int
    task_id: int
    kind: str
    targets: list[dict[str, Any]]
    max_probes_per_second: float
    attempts: int
    """Claims so far, this one included: above 1, the job may have results already."""
    source_type: str
    source_name: str
    source: dict[str, Any]
    options: dict[str, Any]
    """The scan job's options."""


_CLAIMED_COLUMNS = {"targets": JSON, "source": JSON, "options": JSON}
_NOW = bindparam("now", type_=UtcDateTime())

CLAIM_POSTGRESQL = (
    text(
        """
    WITH replayed AS MATERIALIZED (
        SELECT sj.id, sj.scan_job_id, sj.task_id, sj.kind, sj.targets,
               sj.max_probes_per_second, sj.attempts
        FROM scanner_jobs AS sj
        WHERE sj.scanner_id = :scanner_id AND sj.claim_id = :claim_id
          AND sj.status = 'claimed'
    ), candidates AS MATERIALIZED (
        SELECT sj.id
        FROM scanner_jobs AS sj
        JOIN scan_jobs AS j ON j.id = sj.scan_job_id
        JOIN scanners AS sc ON sc.id = sj.scanner_id
        WHERE sj.scanner_id = :scanner_id AND sj.status = 'pending' AND j.status = 'running'
          AND NOT sc.draining AND NOT EXISTS (SELECT FROM replayed)
        ORDER BY sj.id
        LIMIT :limit
        FOR UPDATE OF sj SKIP LOCKED
    ), claimed AS (
        UPDATE scanner_jobs
        SET status = 'claimed', claimed_at = :now, claim_id = :claim_id,
            attempts = scanner_jobs.attempts + 1
        FROM candidates
        WHERE scanner_jobs.id = candidates.id
        RETURNING scanner_jobs.id, scanner_jobs.scan_job_id, scanner_jobs.task_id,
                  scanner_jobs.kind, scanner_jobs.targets, scanner_jobs.max_probes_per_second,
                  scanner_jobs.attempts
    ), logged AS (
        INSERT INTO scan_job_events
            (scan_job_id, at, kind, subject_id, action, from_status, to_status, actor, message)
        SELECT scan_job_id, :now, 'scanner_job', id, 'claim', 'pending', 'claimed', :by, ''
        FROM claimed
    )
    SELECT c.id, c.scan_job_id, c.task_id, c.kind, c.targets, c.max_probes_per_second,
           c.attempts, t.source_type, t.source_name, t.source, j.options
    FROM (SELECT * FROM claimed UNION ALL SELECT * FROM replayed) AS c
    JOIN tasks AS t ON t.id = c.task_id
    JOIN scan_jobs AS j ON j.id = c.scan_job_id
    ORDER BY c.id
    """
    )
    .bindparams(_NOW, bindparam("claim_id", type_=String()))
    .columns(**_CLAIMED_COLUMNS)
)
"""claim_scanner_jobs: lock up to :limit pending jobs of a running scan job for a scanner that
is not draining, skipping rows another claimer holds, mark them claimed under :claim_id, log
the claims, and return what their payloads need: one statement, one round trip. A claim id
that already took jobs still held unstarted returns those instead (the answer was lost)."""

CLAIM_SQLITE = (
    text(
        """
    UPDATE scanner_jobs
    SET status = 'claimed', claimed_at = :now, claim_id = :claim_id, attempts = attempts + 1
    WHERE id IN (
        SELECT sj.id
        FROM scanner_jobs AS sj
        JOIN scan_jobs AS j ON j.id = sj.scan_job_id
        JOIN scanners AS sc ON sc.id = sj.scanner_id
        WHERE sj.scanner_id = :scanner_id AND sj.status = 'pending' AND j.status = 'running'
          AND NOT sc.draining
        ORDER BY sj.id
        LIMIT :limit
    )
    RETURNING id, scan_job_id, task_id, kind, targets, max_probes_per_second, attempts
    """
    )
    .bindparams(_NOW, bindparam("claim_id", type_=String()))
    .columns(targets=JSON)
)
"""claim_scanner_jobs (SQLite): the same claim; BEGIN IMMEDIATE serializes claimers."""


REPLAY_SQLITE = text(
    """
    SELECT id, scan_job_id, task_id, kind, targets, max_probes_per_second, attempts
    FROM scanner_jobs
    WHERE scanner_id = :scanner_id AND claim_id = :claim_id AND status = 'claimed'
    """
).columns(targets=JSON)
"""The jobs a claim id took and its scanner has not started (SQLite)."""


def _claim_params(
    scanner_id: int, limit: int, now: datetime, by: str, claim_id: str | None
) -> dict[str, Any]:
    return {
        "scanner_id": scanner_id,
        "limit": limit,
        "now": now,
        "by": by[:160],
        "claim_id": claim_id,
    }


def claim_scanner_jobs(
    session: Session,
    *,
    scanner_id: int,
    limit: int,
    now: datetime,
    by: str,
    claim_id: str | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` of a scanner's pending jobs atomically (none while it drains);
    returns them, oldest first, each claim logged in its scan job's log.

    Under a ``claim_id`` that already took jobs the scanner has not started, those come back
    instead: the scanner asks again when a claim's answer is lost."""
    params = _claim_params(scanner_id, limit, now, by, claim_id)
    if session.get_bind().dialect.name == "postgresql":
        return [Claimed(**row._mapping) for row in session.execute(CLAIM_POSTGRESQL, params)]
    if claim_id is not None and (replayed := session.execute(REPLAY_SQLITE, params).all()):
        return _with_payloads(session, replayed)
    rows = session.execute(CLAIM_SQLITE, params).all()
    if not rows:
        return []
    session.execute(
        insert(ScanJobEvent),
        [
            {
                "scan_job_id": row.scan_job_id,
                "at": now,
                "kind": "scanner_job",
                "action": ScannerJobAction.CLAIM.value,
                "from_status": ScannerJobStatus.PENDING.value,
                "to_status": ScannerJobStatus.CLAIMED.value,
                "actor": by[:160],
                "subject_id": row.id,
                "message": "",
            }
            for row in rows
        ],
    )
    return _with_payloads(session, rows)


def _with_payloads(session: Session, rows: Sequence[Row[Any]]) -> list[Claimed]:
    tasks = {
        row.id: row
        for row in session.execute(
            select(Task.id, Task.source_type, Task.source_name, Task.source, ScanJob.options)
            .join(ScanJob, ScanJob.id == Task.scan_job_id)
            .where(Task.id.in_({row.task_id for row in rows}))
        )
    }
    return [
        Claimed(
            **row._mapping,
            source_type=tasks[row.task_id].source_type,
            source_name=tasks[row.task_id].source_name,
            source=tasks[row.task_id].source,
            options=tasks[row.task_id].options,
        )
        for row in sorted(rows, key=lambda r: r.id)
    ]


def claim_for_scanner(
    store: Store,
    *,
    scanner_id: int,
    limit: int,
    now: datetime,
    by: str,
    claim_id: str | None = None,
) -> list[Claimed]:
    """claim_scanner_jobs as a call of its own: on PostgreSQL one statement that commits by
    itself (no BEGIN, no COMMIT round trips)."""
    if store.kind == "postgresql":
        params = _claim_params(scanner_id, limit, now, by, claim_id)
        with store.autocommit() as conn:
            return [Claimed(**row._mapping) for row in conn.execute(CLAIM_POSTGRESQL, params)]
    with store.transaction() as session:
        return claim_scanner_jobs(
            session, scanner_id=scanner_id, limit=limit, now=now, by=by, claim_id=claim_id
        )


CLAIMABLE = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM scanner_jobs AS sj
        JOIN scan_jobs AS j ON j.id = sj.scan_job_id
        JOIN scanners AS sc ON sc.id = sj.scanner_id
        WHERE sj.scanner_id = :scanner_id AND sj.status = 'pending' AND j.status = 'running'
          AND NOT sc.draining
    )
    """
)
"""What a claim would take exists, locked or not."""


def claimable(store: Store, *, scanner_id: int) -> bool:
    """A scanner has work a claim would take, whoever holds its rows locked this instant.

    On PostgreSQL a claim passes over rows another transaction holds (a concurrent claim, a
    sweep), so an empty claim is not proof that a scanner has no work; this is."""
    params = {"scanner_id": scanner_id}
    if store.kind == "postgresql":
        with store.autocommit() as conn:
            return bool(conn.execute(CLAIMABLE, params).scalar())
    with store.transaction() as session:
        return bool(session.execute(CLAIMABLE, params).scalar())


BEAT_POSTGRESQL = text(
    """
    WITH commit_mode AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE scanners
    SET last_heartbeat = :now, version = :version, capacity = :capacity, agent_id = :agent_id
    FROM commit_mode
    WHERE id = CAST(:scanner_id AS bigint)
      AND (CAST(:agent_id AS text) IS NULL OR agent_id IS NULL OR agent_id = :agent_id)
    RETURNING id
    """
).bindparams(_NOW)
"""beat_scanner: a heartbeat, committed without waiting for the disk (a lost one is
repeated by the next)."""


def beat_scanner(
    store: Store,
    *,
    scanner_id: int,
    version: str,
    capacity: int | None,
    agent_id: str | None,
    now: datetime,
) -> bool:
    """Mark a scanner online in one UPDATE, unless another agent process heartbeated for it
    before (False: its predecessor's jobs are orphans, for the caller to release)."""
    params = {
        "scanner_id": scanner_id,
        "version": version[:32],
        "capacity": capacity,
        "agent_id": agent_id,
        "now": now,
    }
    if store.kind == "postgresql":
        with store.autocommit() as conn:
            return conn.execute(BEAT_POSTGRESQL, params).first() is not None
    with store.transaction() as session:
        moved = session.execute(
            update(Scanner)
            .where(
                Scanner.id == scanner_id,
                or_(Scanner.agent_id.is_(None), Scanner.agent_id == agent_id)
                if agent_id is not None
                else true(),
            )
            .values(last_heartbeat=now, version=version[:32], capacity=capacity, agent_id=agent_id)
            .execution_options(synchronize_session=False)
        )
        return bool(moved.rowcount)  # type: ignore[attr-defined]


def beat_scanners(store: Store, *, scanner_ids: Iterable[int], now: datetime) -> None:
    """Repeated heartbeats of many scanners in one UPDATE, committed without waiting for the
    disk (lost, they are repeated by the next)."""
    ids = sorted(set(scanner_ids))
    if not ids:
        return
    with store.transaction() as session:
        if store.kind == "postgresql":
            session.execute(text("SET LOCAL synchronous_commit = off"))
        session.execute(
            update(Scanner)
            .where(Scanner.id.in_(ids))
            .values(last_heartbeat=now)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True, slots=True)
class Moved:
    """A scanner job a scanner moved with one of its own calls."""

    from_status: str
    scan_job_id: int
    task_id: int
    last: bool
    """No other scanner job of its task is open: the task's work may be over."""


PROGRESS_POSTGRESQL = text(
    f"""
    WITH commit_mode AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE scanner_jobs
    SET progress_count = :progress_count, result_count = :result_count
    FROM commit_mode
    WHERE scanner_jobs.id = :job_id AND scanner_jobs.scanner_id = :scanner_id
      AND scanner_jobs.{OPEN_SCANNER_JOBS}
    RETURNING (SELECT j.status FROM scan_jobs AS j WHERE j.id = scanner_jobs.scan_job_id)
    """
)
"""record_progress: committed without waiting for the disk (the next report repeats it)."""


def record_progress(
    store: Store, *, job_id: int, scanner_id: int, progress_count: int, result_count: int
) -> str | None:
    """A scanner's progress on its unfinished job in one statement; its scan job's status, or
    None when the job is not the scanner's or has ended (the caller finds out which)."""
    params = {
        "job_id": job_id,
        "scanner_id": scanner_id,
        "progress_count": progress_count,
        "result_count": result_count,
    }
    if store.kind == "postgresql":
        with store.autocommit() as conn:
            status = conn.scalar(PROGRESS_POSTGRESQL, params)
    else:
        with store.transaction() as session:
            status = session.scalar(
                update(ScannerJob)
                .where(
                    ScannerJob.id == job_id,
                    ScannerJob.scanner_id == scanner_id,
                    text(f"scanner_jobs.{OPEN_SCANNER_JOBS}"),
                )
                .values(progress_count=progress_count, result_count=result_count)
                .returning(
                    select(ScanJob.status)
                    .where(ScanJob.id == ScannerJob.scan_job_id)
                    .scalar_subquery()
                )
                .execution_options(synchronize_session=False)
            )
    return None if status is None else str(status)


ADD_RESULTS_POSTGRESQL = text(
    f"""
    WITH own AS MATERIALIZED (
        SELECT id, scan_job_id, task_id, scanner_id, status
        FROM scanner_jobs WHERE id = :job_id
    ), added AS (
        INSERT INTO system_results (scan_job_id, task_id, scanner_job_id, system, port, status,
                                    message, credential_id, facts, created_at)
        SELECT own.scan_job_id, own.task_id, own.id, r.system, r.port, r.status, r.message,
               (SELECT c.id FROM credentials AS c WHERE c.id = r.credential_id), r.facts, :now
        FROM own CROSS JOIN json_to_recordset(CAST(:rows AS json)) AS r(
            system text, port integer, status text, message text, credential_id bigint,
            facts json)
        WHERE own.scanner_id = :scanner_id AND own.{OPEN_SCANNER_JOBS}
        ON CONFLICT (task_id, system) DO NOTHING
        RETURNING 1
    )
    SELECT own.scanner_id, own.status, (SELECT count(*) FROM added) AS added FROM own
    """
).bindparams(_NOW)
"""add_results: a scanner's results for its unfinished job, one row per system (a system it
uploaded before is kept as it was), in one statement; a credential deleted since the job was
claimed is not referenced."""


@dataclass(frozen=True, slots=True)
class ResultsAdded:
    scanner_id: int | None
    status: str
    added: int
    """Rows new to the database (0 when the job was not the scanner's or had ended)."""


def add_results(
    store: Store, *, job_id: int, scanner_id: int, rows: Sequence[Mapping[str, Any]], now: datetime
) -> ResultsAdded | None:
    """Results of a scanner job in one statement committed on its own (PostgreSQL), the job's
    owner and status beside them for the caller to explain a refusal; None when there is no
    such job. ``rows``: system, port, status, message, credential_id, facts."""
    params = {"job_id": job_id, "scanner_id": scanner_id, "rows": json.dumps(rows), "now": now}
    with store.autocommit() as conn:
        row = conn.execute(ADD_RESULTS_POSTGRESQL, params).first()
    return None if row is None else ResultsAdded(**row._mapping)


def move_own_scanner_job(
    store: Store,
    *,
    job_id: int,
    scanner_id: int,
    action: ScannerJobAction,
    by: str,
    at: datetime,
    values: Mapping[str, Any],
    scan_job_running: bool = False,
    note: str = "",
    durable: bool = True,
    wake_dispatcher: bool = False,
) -> Moved | None:
    """A scanner's own move of its own job, logged: one statement, committed on its own, on
    PostgreSQL.

    The source states and the target come from the transition table. ``scan_job_running``
    moves it only while its scan job runs. ``durable=False`` commits without waiting for the
    disk (a move the scanner's next call would repeat anyway, such as a start: complete
    accepts a claimed job). ``wake_dispatcher`` notifies the dispatchers when the job was its
    task's last open one. None when nothing moved (not this scanner's, not in a source state,
    or the scan job not running): the caller then finds out why the slow way, so a refusal
    says exactly what the guarded move would have said."""
    table = SCANNER_JOB_TRANSITIONS[action]
    (target,) = set(table.values())
    sources = [st.value for st in table]
    if store.kind == "postgresql":
        statement = _own_move_statement(
            tuple(values),
            scan_job_running=scan_job_running,
            durable=durable,
            wake_dispatcher=wake_dispatcher,
        )
        with store.autocommit() as conn:
            row = conn.execute(
                statement,
                {
                    "job_id": job_id,
                    "scanner_id": scanner_id,
                    "sources": sources,
                    "target": target.value,
                    "action": action.value,
                    "by": by[:160],
                    "now": at,
                    "note": note,
                    **{f"v_{k}": v for k, v in values.items()},
                },
            ).first()
        return Moved(*row) if row is not None else None
    with store.transaction() as session:
        read = session.execute(
            select(ScannerJob.status, ScannerJob.scan_job_id, ScannerJob.task_id)
            .join(ScanJob, ScanJob.id == ScannerJob.scan_job_id)
            .where(
                ScannerJob.id == job_id,
                ScannerJob.scanner_id == scanner_id,
                ScannerJob.status.in_(sources),
                *([ScanJob.status == ScanJobStatus.RUNNING.value] if scan_job_running else []),
            )
        ).first()
        if read is None:
            return None
        current, scan_job_id, task_id = read
        session.execute(
            update(ScannerJob)
            .where(ScannerJob.id == job_id)
            .values(status=target.value, **values)
            .execution_options(synchronize_session=False)
        )
        record_event(
            session,
            scan_job_id=scan_job_id,
            at=at,
            kind="scanner_job",
            subject_id=job_id,
            action=action.value,
            from_status=current,
            to_status=target.value,
            actor=by,
            message=note,
        )
        last = not session.scalar(
            select(func.count())
            .select_from(ScannerJob)
            .where(ScannerJob.task_id == task_id, ScannerJob.id != job_id, text(OPEN_SCANNER_JOBS))
        )
        if last and wake_dispatcher:
            notify(session, DISPATCH, [str(scan_job_id)])
    return Moved(current, scan_job_id, task_id, last)


@functools.cache
def _own_move_statement(
    columns: tuple[str, ...], *, scan_job_running: bool, durable: bool, wake_dispatcher: bool
) -> TextClause:
    assignments = "".join(f", {c} = :v_{c}" for c in columns)
    running = (
        "AND EXISTS (SELECT 1 FROM scan_jobs AS j WHERE j.id = sj.scan_job_id "
        "AND j.status = 'running')"
        if scan_job_running
        else ""
    )
    # set_config(..., true) holds for this statement's own transaction only.
    lazy = "SELECT set_config('synchronous_commit', 'off', true)" if not durable else "SELECT 1"
    wake = (
        f"SELECT pg_notify('{DISPATCH}', m.scan_job_id::text) FROM moved AS m "
        "WHERE NOT EXISTS (SELECT 1 FROM scanner_jobs AS o "
        f"WHERE o.task_id = m.task_id AND o.id <> m.id AND o.{OPEN_SCANNER_JOBS})"
        if wake_dispatcher
        else "SELECT 1 WHERE false"
    )
    statement = text(
        f"""
        WITH commit_mode AS ({lazy}), old AS (
            SELECT sj.id, sj.status, sj.scan_job_id, sj.task_id
            FROM scanner_jobs AS sj
            WHERE sj.id = CAST(:job_id AS bigint) AND sj.scanner_id = CAST(:scanner_id AS bigint)
              AND sj.status IN :sources
              {running}
            FOR UPDATE
        ), moved AS (
            UPDATE scanner_jobs AS sj SET status = :target{assignments}
            FROM old
            WHERE sj.id = old.id
            RETURNING sj.id, sj.scan_job_id, sj.task_id, old.status AS from_status
        ), logged AS (
            INSERT INTO scan_job_events
                (scan_job_id, at, kind, subject_id, action, from_status, to_status, actor, message)
            SELECT scan_job_id, :now, 'scanner_job', id, :action, from_status, :target, :by, :note
            FROM moved
        ), woken AS ({wake})
        SELECT m.from_status, m.scan_job_id, m.task_id,
               NOT EXISTS (
                   SELECT 1 FROM scanner_jobs AS o
                   WHERE o.task_id = m.task_id AND o.id <> m.id AND o.{OPEN_SCANNER_JOBS}
               ) AS last
        FROM moved AS m, commit_mode
        WHERE (SELECT count(*) FROM woken) >= 0
        """
    )
    times = [bindparam(f"v_{c}", type_=UtcDateTime()) for c in columns if c.endswith("_at")]
    return statement.bindparams(bindparam("sources", expanding=True), _NOW, *times)


def count_open_scanner_jobs(session: Session, *, scan_job_id: int) -> int:
    """open_scanner_jobs: how many of a scan job's scanner jobs have not ended."""
    return (
        session.scalar(
            select(func.count())
            .select_from(ScannerJob)
            .where(ScannerJob.scan_job_id == scan_job_id, text(OPEN_SCANNER_JOBS))
        )
        or 0
    )


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
