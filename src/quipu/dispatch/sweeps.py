"""Leader duties: moving a silent scanner's work to another, and the lease that elects the
node doing it."""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

from quipu.domain.states import ScannerJobStatus
from quipu.services.scanners import BUILTIN_NAME
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.statements import take_lease
from quipu.store.tables import Scanner, ScannerJob, Task

log = logging.getLogger(__name__)


def sweep_heartbeats(store: Store, *, settings: Settings, now: datetime) -> int:
    """Give the work of silent scanners (claimed, or waiting to be claimed) to another online
    scanner of its source; work no other scanner can take waits for its own."""
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout_s)
    moved = 0
    with store.transaction() as s:
        scanners = list(s.scalars(select(Scanner).where(Scanner.enabled.is_(True))))
        offline = {sc.id for sc in scanners if (sc.last_heartbeat or sc.created_at) <= cutoff}
        online = [sc for sc in scanners if sc.id not in offline]
        stranded = list(
            s.scalars(
                select(ScannerJob)
                .where(
                    ScannerJob.scanner_id.in_(offline),
                    or_(
                        ScannerJob.status == ScannerJobStatus.PENDING.value,
                        and_(
                            ScannerJob.status.in_(
                                [ScannerJobStatus.CLAIMED.value, ScannerJobStatus.RUNNING.value]
                            ),
                            # a claim is a sign of life too: only work held a whole timeout
                            ScannerJob.claimed_at <= cutoff,
                        ),
                    ),
                )
                .order_by(ScannerJob.id)
                .with_for_update(skip_locked=True)
            )
        )
        turn = itertools.count()
        for job in stranded:
            task = s.get_one(Task, job.task_id)
            ids = task.source.get("scanner_ids") or []
            eligible = [sc for sc in online if (sc.id in ids if ids else sc.name == BUILTIN_NAME)]
            if not eligible:
                continue  # no other scanner can take it: it waits for its own to come back
            target = eligible[next(turn) % len(eligible)].id
            job.status = ScannerJobStatus.PENDING.value
            job.scanner_id = target
            job.claimed_at = None
            job.started_at = None
            moved += 1
            log.warning(
                "scanner job %s (scan job %s) re-assigned to scanner %s: its scanner went silent",
                job.id,
                job.scan_job_id,
                target,
            )
    return moved


def hold_lease(store: Store, *, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
    """Take or renew a named lease; True while ``holder`` is the leader for it."""
    with store.transaction() as s:
        return take_lease(s, name=name, holder=holder, now=now, ttl_s=ttl_s)
