"""record_event: append one entry to a scan job's log (never updated, never deleted alone)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from quipu.store.tables import ScanJobEvent


def record_event(
    s: Session,
    *,
    scan_job_id: int,
    at: datetime,
    kind: str,
    actor: str,
    message: str = "",
    action: str = "",
    subject_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> None:
    s.execute(
        insert(ScanJobEvent).values(
            scan_job_id=scan_job_id,
            at=at,
            kind=kind,
            actor=actor[:160],
            message=message,
            action=action,
            subject_id=subject_id,
            from_status=from_status,
            to_status=to_status,
        )
    )
