"""Time windows: a job runs only while the windows of its scan and of every one of its sources
are open. A pending job outside them waits for the next opening; a running job whose windows
closed is deferred to it, and its scanners, told to stop, give their work back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quipu.domain.errors import QuipuError
from quipu.domain.states import ScanJobAction, ScanJobStatus
from quipu.domain.windows import is_open, local_text, next_opening
from quipu.store import Store
from quipu.store.events import record_event
from quipu.store.statements import move_scan_job
from quipu.store.tables import ScanJob, Task

log = logging.getLogger(__name__)

Groups = list[list[dict[str, Any]]]
NEVER_RECHECK = timedelta(days=1)
"""How long a job whose windows never open together waits before it is looked at again
(starting such a job is refused, so only a job started before a change lands here)."""


def job_groups(s: Session, job_ids: Sequence[int]) -> dict[int, Groups]:
    """Each job's window groups: its scan's (frozen at start), then each source's snapshot."""
    groups: dict[int, Groups] = {}
    for job_id, windows in s.execute(
        select(ScanJob.id, ScanJob.windows).where(ScanJob.id.in_(job_ids)).order_by(ScanJob.id)
    ):
        groups[job_id] = [list(windows or [])]
    seen: set[tuple[int, int | None]] = set()
    for job_id, source_id, snapshot in s.execute(
        select(Task.scan_job_id, Task.source_id, Task.source)
        .where(Task.scan_job_id.in_(job_ids))
        .order_by(Task.id)
    ):
        if (job_id, source_id) not in seen:
            seen.add((job_id, source_id))
            groups[job_id].append(list((snapshot or {}).get("windows") or []))
    return groups


def _opening(groups: Groups, now: datetime) -> tuple[datetime, str | None]:
    """When a closed job is looked at next, and that time as operators read it (None: its
    windows never open together)."""
    opens = next_opening(groups, now)
    if opens is None:
        return now + NEVER_RECHECK, None
    return opens, local_text(groups, opens)


def hold_closed(s: Session, *, job_ids: Sequence[int], now: datetime) -> list[int]:
    """Of the pending ``job_ids``, keep waiting those whose windows are closed at ``now``:
    their ``not_before`` becomes the next opening (they stay pending, no move) so the start
    order passes over them. Returns the ids held."""
    held = []
    for job_id, groups in job_groups(s, job_ids).items():
        if is_open(groups, now):
            continue
        opens, when = _opening(groups, now)
        message = (
            f"Waiting for its time window: opens at {when}."
            if when
            else "Waiting: its time windows never open together."
        )
        changed = s.execute(
            update(ScanJob)
            .where(ScanJob.id == job_id, ScanJob.status == ScanJobStatus.PENDING.value)
            .values(not_before=opens, status_message=message, updated_at=now)
        )
        if getattr(changed, "rowcount", 0):
            record_event(
                s, scan_job_id=job_id, at=now, kind="scan_job", actor="window", message=message
            )
            held.append(job_id)
    return held


def defer_closed(store: Store, *, now: datetime) -> list[int]:
    """Defer (running -> pending) every running job outside its time windows; their ids.

    The job waits for its next opening; its scanners, told "stop" by their next progress
    report, give their work back, which is claimed again then with only the systems not yet
    done."""
    deferred: list[int] = []
    with store.transaction() as s:
        running = list(
            s.scalars(select(ScanJob.id).where(ScanJob.status == ScanJobStatus.RUNNING.value))
        )
        if not running:
            return []
        for job_id, groups in job_groups(s, running).items():
            if not is_open(groups, now) and _defer(s, job_id=job_id, groups=groups, now=now):
                deferred.append(job_id)
    for job_id in deferred:
        log.info("scan job %s deferred: its time window closed", job_id)
    return deferred


def _defer(s: Session, *, job_id: int, groups: Groups, now: datetime) -> bool:
    opens, when = _opening(groups, now)
    message = (
        f"Deferred: its time window closed; resumes at {when}."
        if when
        else "Deferred: its time windows never open together."
    )
    try:
        with s.begin_nested():
            move_scan_job(
                s,
                job_id=job_id,
                action=ScanJobAction.DEFER,
                by="window",
                at=now,
                values={"not_before": opens, "status_message": message, "updated_at": now},
                note=message,
            )
    except QuipuError:
        return False  # moved meanwhile (paused, canceled, finished): nothing to defer
    return True
