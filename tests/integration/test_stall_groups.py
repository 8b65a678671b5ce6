"""A task's waiting work on one scanner is one stall: one alarm, and one repair moves it all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from quipu.dispatch.stalls import watch
from quipu.domain.states import ScanJobStatus, TaskStatus
from quipu.services import alarms
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.tables import Alarm, ScannerJob
from tests.integration import factories

LATER = factories.NOW + timedelta(hours=1)


def test_waiting_work_of_one_task_on_one_scanner_raises_one_alarm(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url)
    with store.transaction() as s:
        job = factories.scan_job(s, status=ScanJobStatus.RUNNING)
        task = factories.task(s, job=job)
        task.status = TaskStatus.RUNNING.value
        gone = factories.scanner(s, name="gone")
        other = factories.scanner(s, name="other", last_heartbeat=LATER)
        task.source = {"scanner_ids": [gone.id, other.id]}
        waiting = [
            j.id for j in factories.scanner_jobs(s, task_row=task, scanner_row=gone, count=5)
        ]
        gone_id, other_id = gone.id, other.id

    assert watch(store, settings=settings, now=LATER) == 1
    assert watch(store, settings=settings, now=LATER + timedelta(seconds=5)) == 0
    with store.transaction() as s:
        (alarm,) = s.scalars(select(Alarm)).all()
        assert (alarm.kind, alarm.scanner_job_id, alarm.scanner_id) == (
            "unclaimed",
            waiting[0],
            gone_id,
        )
        assert alarm.message.startswith(f"5 scanner jobs (scan job {job.id}, source 'lab'")
        assert "its scanner 'gone' is offline" in alarm.message
        assert "redispatch" in alarm.actions
        alarm_id = alarm.id

    done = alarms.repair(
        store,
        alarm_id=alarm_id,
        action="redispatch",
        scanner_id=None,
        message=None,
        username="admin",
        now=LATER,
        timeout_s=settings.heartbeat_timeout_s,
    )
    assert done == "5 scanner jobs were given back to the queue, for scanner 'other'."
    with store.transaction() as s:
        assert set(s.scalars(select(ScannerJob.scanner_id))) == {other_id}
        assert s.get_one(Alarm, alarm_id).resolved_at is not None
