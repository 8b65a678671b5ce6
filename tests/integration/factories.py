"""Rows for store tests, built the way services will build them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from quipu.domain.states import ScanJobStatus, ScannerJobStatus, TaskKind, TaskStatus
from quipu.store.tables import Scan, ScanJob, Scanner, ScannerJob, Task

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def scan(session: Session, *, name: str = "lab-scan") -> Scan:
    row = Scan(name=name, options={}, created_at=NOW, updated_at=NOW)
    session.add(row)
    session.flush()
    return row


def scan_job(
    session: Session, *, scan_row: Scan | None = None, status: ScanJobStatus = ScanJobStatus.CREATED
) -> ScanJob:
    scan_row = scan_row or scan(session)
    row = ScanJob(
        scan_id=scan_row.id,
        scan_name=scan_row.name,
        status=status.value,
        options={},
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(row)
    session.flush()
    return row


def task(session: Session, *, job: ScanJob, kind: TaskKind = TaskKind.CONNECT) -> Task:
    row = Task(
        scan_job_id=job.id,
        source_id=None,
        source_name="lab",
        source_type="network",
        source={},
        kind=kind.value,
        status=TaskStatus.PENDING.value,
    )
    session.add(row)
    session.flush()
    return row


def scanner(session: Session, *, name: str = "local", **kwargs: Any) -> Scanner:
    row = Scanner(name=name, api_key_hash=f"hash-{name}", bind=[], created_at=NOW, **kwargs)
    session.add(row)
    session.flush()
    return row


def scanner_jobs(
    session: Session, *, task_row: Task, scanner_row: Scanner, count: int
) -> list[ScannerJob]:
    rows = [
        ScannerJob(
            scan_job_id=task_row.scan_job_id,
            task_id=task_row.id,
            scanner_id=scanner_row.id,
            kind=task_row.kind,
            status=ScannerJobStatus.PENDING.value,
            targets=[{"range": f"127.0.100.{i % 250 + 1}", "ports": [22]}],
            created_at=NOW,
        )
        for i in range(count)
    ]
    session.add_all(rows)
    session.flush()
    return rows
