"""Leader duties: moving a silent scanner's work to another, and the lease that elects the
node doing it."""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from quipu.domain.errors import Conflict
from quipu.domain.states import SCANNER_JOB_HELD, ScannerJobAction, ScannerJobStatus
from quipu.services.scanners import BUILTIN_NAME
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.statements import move_scanner_job, take_lease
from quipu.store.tables import Scanner, ScannerJob, Task

log = logging.getLogger(__name__)


def sweep_heartbeats(store: Store, *, settings: Settings, now: datetime) -> int:
    """Give the work of silent scanners (claimed, or waiting to be claimed) to another online
    scanner of its source; work no other scanner can take waits for its own."""
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout_s)
    moved = 0
    with store.transaction() as s:
        # The work first, in SQL: a fleet's thousands of scanners are read only when some of
        # them went silent holding work.
        gone_quiet = and_(
            Scanner.enabled.is_(True),
            or_(
                Scanner.last_heartbeat <= cutoff,
                and_(Scanner.last_heartbeat.is_(None), Scanner.created_at <= cutoff),
            ),
        )
        stranded = list(
            s.scalars(
                select(ScannerJob)
                .join(Scanner, Scanner.id == ScannerJob.scanner_id)
                .where(
                    gone_quiet,
                    or_(
                        ScannerJob.status == ScannerJobStatus.PENDING.value,
                        and_(
                            ScannerJob.status.in_([st.value for st in SCANNER_JOB_HELD]),
                            # a claim is a sign of life too: only work held a whole timeout
                            ScannerJob.claimed_at <= cutoff,
                        ),
                    ),
                )
                .order_by(ScannerJob.id)
                .with_for_update(of=ScannerJob, skip_locked=True)
            )
        )
        if not stranded:
            return 0
        scanners = list(s.scalars(select(Scanner).where(Scanner.enabled.is_(True))))
        offline = {sc.id for sc in scanners if (sc.last_heartbeat or sc.created_at) <= cutoff}
        online = [sc for sc in scanners if sc.id not in offline]
        names = {sc.id: sc.name for sc in scanners}
        turn = itertools.count()
        for job in stranded:
            task = s.get_one(Task, job.task_id)
            ids = task.source.get("scanner_ids") or []
            eligible = [
                sc
                for sc in online
                if not sc.draining and (sc.id in ids if ids else sc.name == BUILTIN_NAME)
            ]
            if not eligible:
                continue  # no other scanner can take it: it waits for its own to come back
            target = eligible[next(turn) % len(eligible)]
            silent = names.get(job.scanner_id or 0, "?")
            if not _reassign(s, job=job, silent=silent, to=target, now=now):
                continue
            moved += 1
            log.warning(
                "scanner job %s (scan job %s) re-assigned to scanner %s: its scanner went silent",
                job.id,
                job.scan_job_id,
                target.name,
            )
    return moved


def _reassign(s: Session, *, job: ScannerJob, silent: str, to: Scanner, now: datetime) -> bool:
    """Hand ``job`` to scanner ``to``: work held by the silent scanner goes back to pending
    (a guarded move); work it had not claimed yet only changes hands. Either is logged in
    the same write; False when the job moved meanwhile (nothing changed, nothing logged)."""
    message = (
        f"Scanner {silent!r} went silent: scanner job {job.id} re-assigned to scanner {to.name!r}."
    )
    if job.status == ScannerJobStatus.PENDING.value:
        handed = s.execute(
            update(ScannerJob)
            .where(ScannerJob.id == job.id, ScannerJob.status == ScannerJobStatus.PENDING.value)
            .values(scanner_id=to.id)
            .execution_options(synchronize_session=False)
        )
        if not handed.rowcount:  # type: ignore[attr-defined]
            return False
        record_event(
            s,
            scan_job_id=job.scan_job_id,
            at=now,
            kind="reassign",
            subject_id=job.id,
            action="reassign",
            actor="dispatcher",
            message=message,
        )
        return True
    try:
        move_scanner_job(
            s,
            job_id=job.id,
            action=ScannerJobAction.RELEASE,
            by="dispatcher",
            at=now,
            values={"scanner_id": to.id, "claimed_at": None, "started_at": None},
            note=message,
        )
    except Conflict:
        return False  # it ended meanwhile: nothing left to hand over
    return True


def hold_lease(store: Store, *, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
    """Take or renew a named lease; True while ``holder`` is the leader for it."""
    with store.transaction() as s:
        return take_lease(s, name=name, holder=holder, now=now, ttl_s=ttl_s)
