"""cancel_job_work: a final job's open work ends by the transition table, each end logged."""

from __future__ import annotations

from sqlalchemy import select

from quipu.domain.states import ScanJobStatus, ScannerJobStatus, TaskKind, TaskStatus
from quipu.store import Store
from quipu.store.statements import cancel_job_work
from quipu.store.tables import ScanJobEvent, ScannerJob, Task
from tests.integration import factories
from tests.integration.factories import NOW


def test_unclaimed_work_and_open_tasks_end_and_held_work_is_left_to_its_scanner(
    store: Store,
) -> None:
    with store.transaction() as s:
        job = factories.scan_job(s, status=ScanJobStatus.CANCELED)
        connect = factories.task(s, job=job)
        connect.status = TaskStatus.COMPLETED.value
        inspect = factories.task(s, job=job, kind=TaskKind.INSPECT)
        inspect.status = TaskStatus.RUNNING.value
        waiting = factories.task(s, job=job, kind=TaskKind.INSPECT)
        scanner = factories.scanner(s)
        pending, held = factories.scanner_jobs(s, task_row=inspect, scanner_row=scanner, count=2)
        held.status = ScannerJobStatus.RUNNING.value
        ids = (job.id, connect.id, inspect.id, waiting.id, pending.id, held.id)
    job_id, connect_id, inspect_id, waiting_id, pending_id, held_id = ids

    with store.transaction() as s:
        assert cancel_job_work(s, job_id=job_id, by="user:admin", at=NOW) == 3
    with store.transaction() as s:
        tasks = dict(s.execute(select(Task.id, Task.status)).all())
        assert tasks == {connect_id: "completed", inspect_id: "canceled", waiting_id: "canceled"}
        jobs = dict(s.execute(select(ScannerJob.id, ScannerJob.status)).all())
        assert jobs == {pending_id: "canceled", held_id: "running"}
        log = s.execute(
            select(
                ScanJobEvent.kind,
                ScanJobEvent.subject_id,
                ScanJobEvent.from_status,
                ScanJobEvent.to_status,
                ScanJobEvent.actor,
            ).order_by(ScanJobEvent.id)
        ).all()
        assert [tuple(row) for row in log] == [
            ("scanner_job", pending_id, "pending", "canceled", "user:admin"),
            ("task", inspect_id, "running", "canceled", "user:admin"),
            ("task", waiting_id, "pending", "canceled", "user:admin"),
        ]
    with store.transaction() as s:
        assert cancel_job_work(s, job_id=job_id, by="dispatcher", at=NOW) == 0
