"""The dispatcher's work: start queued jobs, split tasks into scanner jobs, advance phases.

Every ingest node runs it. Starting jobs takes a database-wide lock; advancing a job locks
that job's row; every move is a guarded UPDATE. So several nodes can run it at once.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.orm import Session

from quipu.collectors.network.targets import expand, split_targets, to_ranges
from quipu.dispatch.windows import hold_closed
from quipu.domain.errors import QuipuError
from quipu.domain.retry import retry_delay, retry_message, server_unreachable
from quipu.domain.rules import (
    QueuedJob,
    inspection_blocker,
    job_counters,
    job_outcome,
    jobs_to_start,
    max_probes_per_second,
)
from quipu.domain.source_types import rules_of
from quipu.domain.states import (
    SCANNER_JOB_FINAL,
    ScanJobAction,
    ScanJobStatus,
    ScannerJobStatus,
    TaskAction,
    TaskKind,
    TaskStatus,
)
from quipu.services import reports
from quipu.services.alarms import raise_alarm
from quipu.services.job_events import task_view
from quipu.services.scan_jobs import cancel_open_work
from quipu.services.scanners import BUILTIN_NAME, is_online
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.statements import (
    announce_work,
    count_open_scanner_jobs,
    move_scan_job,
    move_task,
)
from quipu.store.tables import ScanJob, Scanner, ScannerJob, SystemResult, Task

log = logging.getLogger(__name__)

START_LOCK = 0x5175_6970  # "Quip": the advisory lock that makes starting jobs serial


def start_queued_jobs(store: Store, *, max_running: int, now: datetime) -> list[int]:
    """Move pending scan jobs to running, in start order, up to ``max_running`` at once."""
    with store.transaction() as s:
        if s.get_bind().dialect.name == "postgresql":
            s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": START_LOCK})
        running = (
            s.scalar(select(func.count()).where(ScanJob.status == ScanJobStatus.RUNNING.value)) or 0
        )
        pending = _startable(s, max_running=max_running, now=now)
        chosen = jobs_to_start(
            pending=[QueuedJob(i, q or c) for i, q, c in pending],
            running_count=running,
            max_running=max_running,
        )
        for job_id in chosen:
            started = s.scalar(select(ScanJob.start_time).where(ScanJob.id == job_id))
            move_scan_job(
                s,
                job_id=job_id,
                action=ScanJobAction.START,
                by="dispatcher",
                at=now,
                values={
                    "start_time": started or now,
                    "updated_at": now,
                    "status_message": "",
                    "not_before": None,
                },
            )
    for job_id in chosen:
        log.info("scan job %s running", job_id)
    return chosen


def _startable(s: Session, *, max_running: int, now: datetime) -> list[Any]:
    """The first ``max_running`` pending jobs due now, in start order, passing over (and
    holding until their next opening) those whose time windows are closed."""
    due = s.execute(
        select(ScanJob.id, ScanJob.queued_at, ScanJob.created_at)
        .where(
            ScanJob.status == ScanJobStatus.PENDING.value,
            or_(ScanJob.not_before.is_(None), ScanJob.not_before <= now),
        )
        .order_by(ScanJob.queued_at, ScanJob.id)
    ).all()
    held = set(hold_closed(s, job_ids=[row.id for row in due], now=now)) if due else set()
    return [row for row in due if row.id not in held][:max_running]


def running_job_ids(store: Store) -> list[int]:
    with store.transaction() as s:
        return list(
            s.scalars(
                select(ScanJob.id)
                .where(ScanJob.status == ScanJobStatus.RUNNING.value)
                .order_by(ScanJob.id)
            )
        )


class JobAdvancer:
    """Advances one running scan job as far as it can go, inside one transaction."""

    def __init__(self, s: Session, *, job: ScanJob, settings: Settings, now: datetime) -> None:
        self.s = s
        self.job = job
        self.settings = settings
        self.now = now
        self.tasks = list(
            s.scalars(select(Task).where(Task.scan_job_id == job.id).order_by(Task.id))
        )
        self.offline: list[Task] = []
        """Connection tasks whose work ended without reaching anything, kept running while
        the job may still retry them."""

    def run(self) -> None:
        self._finish_tasks(count=True)
        if self._retry_offline():
            return
        connect = [t for t in self.tasks if t.kind == TaskKind.CONNECT]
        inspect = [t for t in self.tasks if t.kind == TaskKind.INSPECT]
        pending = [t for t in connect if t.status == TaskStatus.PENDING]
        if pending:
            # All of them on the first run; after a retry, only those that found nothing.
            for task in pending:
                self._start_task(task, self._connect_targets(task))
        elif all(_final(t) for t in connect):
            by_source = {t.source_id: t for t in connect}
            for task in inspect:
                if task.status != TaskStatus.PENDING:
                    continue
                blocker = inspection_blocker(task_view(by_source[task.source_id]))
                if blocker:
                    self._move(task, TaskAction.FAIL, status_message=blocker, end_time=self.now)
                else:
                    self._start_task(task, self._inspect_targets(by_source[task.source_id]))
        self._finish_tasks()
        self._finish_job()

    def _count_results(self) -> None:
        counts: dict[int, Counter[str]] = {t.id: Counter() for t in self.tasks}
        for task_id, status, n in self.s.execute(
            select(SystemResult.task_id, SystemResult.status, func.count())
            .where(SystemResult.scan_job_id == self.job.id)
            .group_by(SystemResult.task_id, SystemResult.status)
        ):
            counts[task_id][status] = n
        for task in self.tasks:
            c = counts[task.id]
            if task.kind == TaskKind.CONNECT and not rules_of(task.source_type).systems_are_hosts:
                # A server's systems are known once its API has listed them.
                task.systems_count = sum(c.values())
            task.systems_scanned = c["success"]
            task.systems_failed = c["failed"]
            task.systems_unreachable = c["unreachable"]

    def _finish_tasks(self, *, count: bool = False) -> None:
        """End every running task whose scanner jobs have all ended.

        Results are counted after the scanner jobs' states are read, never before: a scanner
        writes its results before it ends its job, so a job seen ended has its results seen
        too. (Counted first, a job that ended in between would end its task short.) The
        counts are taken when ``count`` asks for them or when some task is ending.
        """
        # Counts and failures only: reading every scanner job of a large scan job on each
        # completion would make a scan job's cost grow with the square of its size.
        # A retried task keeps the scanner jobs of its earlier runs for the record; only
        # those made since its latest start speak for the run under way.
        current = (
            select(ScannerJob.task_id)
            .join(Task, Task.id == ScannerJob.task_id)
            .where(
                ScannerJob.scan_job_id == self.job.id,
                or_(Task.start_time.is_(None), ScannerJob.created_at >= Task.start_time),
            )
        )
        still_open: dict[int, int] = dict(
            self.s.execute(
                current.add_columns(func.count())
                .where(ScannerJob.status.not_in([st.value for st in SCANNER_JOB_FINAL]))
                .group_by(ScannerJob.task_id)
            ).all()
        )
        failed: dict[int, list[str]] = {}
        for task_id, message in self.s.execute(
            current.add_columns(ScannerJob.error_message).where(
                ScannerJob.status == ScannerJobStatus.FAILED.value
            )
        ):
            failed.setdefault(task_id, []).append(message)
        ending = [
            t for t in self.tasks if t.status == TaskStatus.RUNNING and not still_open.get(t.id)
        ]
        if count or ending:
            self._count_results()
        self.offline = []
        for task in ending:
            failures = failed.get(task.id, [])
            if self._found_nothing(task, failures) and self._retries_left():
                self.offline.append(task)
                continue
            # Where the source type says so, a connection task completes even when systems
            # are unreachable; any other failure of a scanner job is the source failing.
            if failures and not (
                task.kind == TaskKind.CONNECT
                and not rules_of(task.source_type).connection_failure_fails_task
                and all(not message for message in failures)
            ):
                reasons = "; ".join(
                    dict.fromkeys(message or "scanner failed" for message in failures)
                )
                what = "Connection to" if task.kind == TaskKind.CONNECT else "Inspection of"
                self._move(
                    task,
                    TaskAction.FAIL,
                    status_message=f"{what} source {task.source_name!r} failed: {reasons}",
                    end_time=self.now,
                )
            else:
                self._move(task, TaskAction.COMPLETE, end_time=self.now)

    def _found_nothing(self, task: Task, failures: list[str]) -> bool:
        """The connection of ``task`` ended without reaching any system of its source.

        A network source reached none of its hosts (counted from its results, written
        before its scanner jobs ended); a server source's server did not answer.
        """
        if task.kind != TaskKind.CONNECT:
            return False
        rules = rules_of(task.source_type)
        if rules.systems_are_hosts:
            return task.systems_scanned == 0 and all(not message for message in failures)
        return server_unreachable(failures)

    def _retries_left(self) -> bool:
        return retry_delay(self.job.retry, self.job.attempt + 1) is not None

    def _retry_offline(self) -> bool:
        """Send the job back to pending when its connection phase ended and some source
        reached nothing, while the scan's retry policy allows another try.

        Only the connection tasks that found nothing run again; sources that answered keep
        their results. True when the job was sent back.
        """
        connect = [t for t in self.tasks if t.kind == TaskKind.CONNECT]
        if not self.offline or not all(_final(t) or t in self.offline for t in connect):
            return False
        attempt = self.job.attempt + 1
        delay = retry_delay(self.job.retry, attempt)
        assert delay is not None  # _retries_left held when the tasks were kept
        at = self.now + timedelta(seconds=delay)
        message = retry_message(
            source_names=[t.source_name for t in self.offline],
            attempt=attempt,
            attempts=int(self.job.retry["attempts"]),
            at=at,
        )
        for task in self.offline:
            self._send_back(task)
        self._update_counters()
        self.s.flush()
        move_scan_job(
            self.s,
            job_id=self.job.id,
            action=ScanJobAction.RETRY,
            by="retry",
            at=self.now,
            values={
                "not_before": at,
                "attempt": attempt,
                "updated_at": self.now,
                "status_message": message,
            },
        )
        log.info("scan job %s: %s", self.job.id, message)
        return True

    def _send_back(self, task: Task) -> None:
        """Pend ``task`` again with its results dropped, so that its next run counts afresh."""
        self.s.flush()
        self.s.execute(delete(SystemResult).where(SystemResult.task_id == task.id))
        values: dict[str, Any] = {
            "systems_scanned": 0,
            "systems_failed": 0,
            "systems_unreachable": 0,
        }
        if not rules_of(task.source_type).systems_are_hosts:
            values["systems_count"] = 0
        self._move(task, TaskAction.RETRY, by="retry", **values)

    def _update_counters(self) -> None:
        counters = job_counters([task_view(t) for t in self.tasks])
        self.job.systems_count, self.job.systems_scanned = (
            counters.systems_count,
            counters.systems_scanned,
        )
        self.job.systems_failed = counters.systems_failed
        self.job.systems_unreachable = counters.systems_unreachable

    def _finish_job(self) -> None:
        views = [task_view(t) for t in self.tasks]
        self._update_counters()
        outcome = job_outcome(views)
        if outcome is None:
            return
        action = (
            ScanJobAction.COMPLETE
            if outcome.status == ScanJobStatus.COMPLETED
            else ScanJobAction.FAIL
        )
        self.s.flush()
        if action == ScanJobAction.COMPLETE:
            reports.build(self.s, job=self.job, now=self.now)
        move_scan_job(
            self.s,
            job_id=self.job.id,
            action=action,
            by="dispatcher",
            at=self.now,
            values={
                "end_time": self.now,
                "updated_at": self.now,
                "status_message": outcome.message,
            },
        )
        log.info("scan job %s %s %s", self.job.id, outcome.status, outcome.message)

    def _move(
        self, task: Task, action: TaskAction, *, by: str = "dispatcher", **values: Any
    ) -> None:
        self.s.flush()
        task.status = move_task(
            self.s, task_id=task.id, action=action, by=by, at=self.now, values=values
        ).value
        for key, value in values.items():
            setattr(task, key, value)

    def _connect_targets(self, task: Task) -> list[list[str]]:
        source = task.source
        if not rules_of(task.source_type).systems_are_hosts:
            return [[str(h) for h in source["hosts"][:1]]]
        systems = expand(
            hosts=source["hosts"], exclude_hosts=source["exclude_hosts"], allow_large=True
        )
        task.systems_count = len(systems)
        return split_targets(systems=systems, size=self.settings.systems_per_job)

    def _inspect_targets(self, connect: Task) -> list[list[str]]:
        if not rules_of(connect.source_type).systems_are_hosts:
            # The server is inspected as a whole: one scanner job lists and reads every system.
            return [[str(h) for h in connect.source["hosts"][:1]]]
        ok = (
            self.s.execute(
                select(SystemResult.system)
                .where(SystemResult.task_id == connect.id, SystemResult.status == "success")
                .order_by(SystemResult.id)
            )
            .scalars()
            .all()
        )
        return split_targets(systems=list(ok), size=self.settings.systems_per_job)

    def _start_task(self, task: Task, chunks: Sequence[Sequence[str]]) -> None:
        scanners = self._scanners_for(task)
        if not scanners:
            message = (
                f"Source {task.source_name!r} has no enabled scanner: assign one with "
                "'qpc source edit --scanner', or run the server with its built-in scanner."
            )
            self._move(task, TaskAction.START, start_time=self.now)
            self._move(task, TaskAction.FAIL, status_message=message, end_time=self.now)
            return
        rules = rules_of(task.source_type)
        if task.kind == TaskKind.INSPECT:
            task.systems_count = (
                sum(len(c) for c in chunks) if rules.systems_are_hosts else self._found(task)
            )
        self._move(task, TaskAction.START, start_time=self.now)
        port = int(task.source.get("port") or rules.default_port)
        ports_by_system = self._ports_and_credentials(task)
        used = scanners[: max(1, min(len(scanners), len(chunks)))]
        rate = {
            sc.id: max_probes_per_second(
                scanner_limit=sc.max_probes_per_second,
                subnet_limit=float(task.source.get("max_probes_per_second") or 0),
                scanners_sharing_subnet=len(used),
            )
            for sc in used
        }
        for chunk, scanner in zip(chunks, itertools.cycle(used), strict=False):
            targets: list[dict[str, Any]]
            if task.kind == TaskKind.CONNECT:
                targets = [{"range": r, "ports": [port]} for r in to_ranges(list(chunk))]
            elif not rules.systems_are_hosts:
                credential_ids = task.source.get("credential_ids") or [None]
                targets = [{"range": chunk[0], "ports": [port], "credentialId": credential_ids[0]}]
            else:
                targets = [
                    {
                        "range": system,
                        "ports": [ports_by_system[system][0]],
                        "credentialId": ports_by_system[system][1],
                    }
                    for system in chunk
                ]
            self.s.add(
                ScannerJob(
                    scan_job_id=self.job.id,
                    task_id=task.id,
                    scanner_id=scanner.id,
                    kind=task.kind,
                    status=ScannerJobStatus.PENDING.value,
                    targets=targets,
                    max_probes_per_second=rate[scanner.id],
                    created_at=self.now,
                )
            )
        announce_work(self.s, scanner_ids=[sc.id for sc in used])
        log.info(
            "scan job %s: %s task of %r split into %d scanner jobs over %d scanners",
            self.job.id,
            task.kind,
            task.source_name,
            len(chunks),
            len(used),
        )

    def _connection_of(self, task: Task) -> Task:
        return next(
            t for t in self.tasks if t.kind == TaskKind.CONNECT and t.source_id == task.source_id
        )

    def _found(self, task: Task) -> int:
        """How many systems the connection task of ``task``'s source found."""
        return self._connection_of(task).systems_count

    def _ports_and_credentials(self, task: Task) -> dict[str, tuple[int, int | None]]:
        if task.kind != TaskKind.INSPECT or not rules_of(task.source_type).systems_are_hosts:
            return {}
        connect = self._connection_of(task)
        rows = self.s.execute(
            select(SystemResult.system, SystemResult.port, SystemResult.credential_id).where(
                SystemResult.task_id == connect.id, SystemResult.status == "success"
            )
        )
        default = int(task.source.get("port") or rules_of(task.source_type).default_port)
        return {system: (port or default, cred) for system, port, cred in rows}

    def _scanners_for(self, task: Task) -> list[Scanner]:
        """Enabled scanners of the source (the built-in one when none), online ones first;
        draining ones only when the source has no other (its work then waits for an
        operator, and the stall watch says so)."""
        ids = task.source.get("scanner_ids") or []
        query = select(Scanner).where(Scanner.enabled.is_(True))
        query = (
            query.where(Scanner.id.in_(ids)) if ids else query.where(Scanner.name == BUILTIN_NAME)
        )
        enabled = list(self.s.scalars(query.order_by(Scanner.id)))
        scanners = [sc for sc in enabled if not sc.draining] or enabled
        online = [
            sc
            for sc in scanners
            if is_online(sc, now=self.now, timeout_s=self.settings.heartbeat_timeout_s)
        ]
        return online or scanners


def _final(task: Task) -> bool:
    return task.status not in (TaskStatus.PENDING, TaskStatus.RUNNING)


def advance(store: Store, *, job_id: int, settings: Settings, now: datetime) -> None:
    """Advance one running scan job; a job that cannot advance is finalized with an alarm."""
    if not _advance_once(store, job_id=job_id, settings=settings, now=now):
        return
    # Work may have ended while we advanced: a job with nothing open gets a second look
    # before it counts as stuck, so a scanner finishing mid-advance is never an alarm.
    if _idle(store, job_id=job_id) and _advance_once(
        store, job_id=job_id, settings=settings, now=now
    ):
        if _idle(store, job_id=job_id):
            raise_stuck_alarm(
                store, job_id=job_id, now=now, reason="its tasks did not end after their work did"
            )


def _advance_once(store: Store, *, job_id: int, settings: Settings, now: datetime) -> bool:
    """One advancing pass; False when it could not run (the caller stops there)."""
    try:
        with store.transaction() as s:
            # NO KEY UPDATE: scanners' calls insert log entries that reference this row
            # (KEY SHARE), and must not wait while the job advances.
            job = s.scalar(
                select(ScanJob).where(ScanJob.id == job_id).with_for_update(key_share=True)
            )
            if job is None or job.status != ScanJobStatus.RUNNING:
                return False
            JobAdvancer(s, job=job, settings=settings, now=now).run()
    except QuipuError as error:
        # Another node moved something first: the next tick sees the new state.
        log.info("scan job %s not advanced: %s", job_id, error)
        return False
    except Exception as error:
        log.exception("scan job %s could not advance", job_id)
        raise_stuck_alarm(store, job_id=job_id, now=now, reason=str(error))
        return False
    return True


def _idle(store: Store, *, job_id: int) -> bool:
    """Running, with every scanner job ended."""
    with store.transaction() as s:
        status = s.scalar(select(ScanJob.status).where(ScanJob.id == job_id))
        open_jobs = count_open_scanner_jobs(s, scan_job_id=job_id)
    return status == ScanJobStatus.RUNNING and not open_jobs


def raise_stuck_alarm(store: Store, *, job_id: int, now: datetime, reason: str) -> None:
    """The scan-stuck alarm: record it and finalize the job as failed."""
    message = (
        f"Scan job {job_id} was stuck: all its scanner jobs had ended but it was still "
        f"running ({reason}); it was finalized as failed."
    )
    with store.transaction() as s:
        if count_open_scanner_jobs(s, scan_job_id=job_id):
            return
        try:
            move_scan_job(
                s,
                job_id=job_id,
                action=ScanJobAction.FAIL,
                by="dispatcher",
                at=now,
                values={"end_time": now, "updated_at": now, "status_message": message},
            )
        except QuipuError:
            return
        cancel_open_work(s, job_id=job_id, now=now)
        # The job is final already: nothing is left to repair, so the alarm offers none.
        raise_alarm(
            s,
            kind="scan_stuck",
            key=f"scan_stuck:{job_id}",
            scan_job_id=job_id,
            message=message,
            actions=[],
            now=now,
        )
    log.error("%s", message)
