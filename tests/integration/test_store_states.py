"""Guarded state changes and typed errors: a refused write changes nothing."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from quipu.domain.errors import AlreadyExists, IllegalTransition, InUse, NotFound
from quipu.domain.states import ScanJobAction, ScanJobStatus, TaskAction, TaskStatus
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.statements import move_scan_job, move_task
from quipu.store.tables import (
    Credential,
    Scan,
    ScanJob,
    ScanJobEvent,
    ScanSource,
    Source,
    SourceCredential,
)
from tests.integration import factories
from tests.integration.factories import NOW


def status_of(store: Store, job_id: int) -> str:
    with store.transaction() as s:
        return s.scalars(select(ScanJob.status).where(ScanJob.id == job_id)).one()


def test_guarded_update_moves_a_job_through_its_life(store: Store) -> None:
    with store.transaction() as s:
        job_id = factories.scan_job(s).id
    for action, expected in [
        (ScanJobAction.QUEUE, ScanJobStatus.PENDING),
        (ScanJobAction.START, ScanJobStatus.RUNNING),
        (ScanJobAction.PAUSE, ScanJobStatus.PAUSED),
        (ScanJobAction.RESTART, ScanJobStatus.PENDING),
        (ScanJobAction.CANCEL, ScanJobStatus.CANCELED),
    ]:
        with store.transaction() as s:
            assert (
                move_scan_job(s, job_id=job_id, action=action, by="user:admin", at=NOW) == expected
            )
        assert status_of(store, job_id) == expected


def test_illegal_transition_is_refused_and_changes_nothing(store: Store) -> None:
    with store.transaction() as s:
        job_id = factories.scan_job(s, status=ScanJobStatus.CANCELED).id
    with pytest.raises(IllegalTransition) as caught, store.transaction() as s:
        move_scan_job(
            s,
            job_id=job_id,
            action=ScanJobAction.RESTART,
            by="user:admin",
            at=NOW,
            values={"status_message": "x"},
        )
    assert str(caught.value) == f"Scan job {job_id} is canceled and cannot be restarted."
    with store.transaction() as s:
        job = s.get_one(ScanJob, job_id)
        assert (job.status, job.status_message) == ("canceled", "")


def test_every_move_is_logged_with_its_cause_and_a_refusal_is_not(store: Store) -> None:
    with store.transaction() as s:
        job_id = factories.scan_job(s).id
    with store.transaction() as s:
        move_scan_job(s, job_id=job_id, action=ScanJobAction.QUEUE, by="user:ana", at=NOW)
        move_scan_job(s, job_id=job_id, action=ScanJobAction.START, by="dispatcher", at=NOW)
    with pytest.raises(IllegalTransition), store.transaction() as s:
        move_scan_job(s, job_id=job_id, action=ScanJobAction.APPROVE, by="user:ana", at=NOW)
    with store.transaction() as s:
        rows = s.execute(
            select(
                ScanJobEvent.action,
                ScanJobEvent.from_status,
                ScanJobEvent.to_status,
                ScanJobEvent.actor,
            )
            .where(ScanJobEvent.scan_job_id == job_id)
            .order_by(ScanJobEvent.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("queue", "created", "pending", "user:ana"),
        ("start", "pending", "running", "dispatcher"),
    ]


def test_unknown_job_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match=r"Scan job 999 does not exist\."), store.transaction() as s:
        move_scan_job(s, job_id=999, action=ScanJobAction.CANCEL, by="user:admin", at=NOW)


def test_two_movers_one_winner(store: Store) -> None:
    """Two sessions race to start one job: the guard lets exactly one through."""
    with store.transaction() as s:
        job_id = factories.scan_job(s, status=ScanJobStatus.PENDING).id
    with store.transaction() as s:
        move_scan_job(s, job_id=job_id, action=ScanJobAction.START, by="user:admin", at=NOW)
    with pytest.raises(IllegalTransition, match="is running and cannot be started"):
        with store.transaction() as s:
            move_scan_job(s, job_id=job_id, action=ScanJobAction.START, by="user:admin", at=NOW)


def test_task_transitions_are_guarded(store: Store) -> None:
    with store.transaction() as s:
        task_id = factories.task(s, job=factories.scan_job(s)).id
    with store.transaction() as s:
        assert (
            move_task(s, task_id=task_id, action=TaskAction.START, by="user:admin", at=NOW)
            == TaskStatus.RUNNING
        )
        assert (
            move_task(s, task_id=task_id, action=TaskAction.COMPLETE, by="user:admin", at=NOW)
            == TaskStatus.COMPLETED
        )
    with pytest.raises(IllegalTransition, match=r"Task \d+ is completed and cannot be failed"):
        with store.transaction() as s:
            move_task(s, task_id=task_id, action=TaskAction.FAIL, by="user:admin", at=NOW)


def test_duplicate_name_is_a_typed_error_and_changes_nothing(store: Store) -> None:
    with store.transaction() as s:
        factories.scan(s, name="weekly")
    with pytest.raises(AlreadyExists, match="already exists"), store.transaction() as s:
        s.add(Scan(name="other", options={}, created_at=NOW, updated_at=NOW))
        s.flush()
        factories.scan(s, name="weekly")
    with store.transaction() as s:
        assert s.scalars(select(Scan.name)).all() == ["weekly"]


def test_missing_foreign_key_is_a_typed_error(store: Store) -> None:
    with pytest.raises(NotFound), store.transaction() as s:
        s.add(ScanSource(scan_id=factories.scan(s).id, source_id=4242, position=0))
        s.flush()
    with store.transaction() as s:
        assert s.scalars(select(Scan)).all() == []


def test_deleting_a_used_credential_is_refused(store: Store) -> None:
    with store.transaction() as s:
        cred = Credential(name="c", cred_type="network", created_at=NOW, updated_at=NOW)
        source = Source(
            name="lab",
            source_type="network",
            hosts=["127.0.100.1"],
            exclude_hosts=[],
            port=22,
            created_at=NOW,
            updated_at=NOW,
        )
        s.add_all([cred, source])
        s.flush()
        s.add(SourceCredential(source_id=source.id, credential_id=cred.id, position=0))
        cred_id = cred.id
    with pytest.raises((InUse, NotFound)), store.transaction() as s:
        s.delete(s.get_one(Credential, cred_id))
        s.flush()
    with store.transaction() as s:
        assert s.get(Credential, cred_id) is not None


def test_times_come_back_aware_utc(store: Store) -> None:
    with store.transaction() as s:
        job_id = factories.scan_job(s).id
    with store.transaction() as s:
        created = s.get_one(ScanJob, job_id).created_at
    assert (
        created == NOW
        and created.tzinfo is not None
        and created.utcoffset() == UTC.utcoffset(datetime.now(UTC))
    )


def test_secrets_are_encrypted_at_rest_with_a_private_key_file(
    store: Store, tmp_path: Path
) -> None:
    box = SecretBox.from_data_dir(tmp_path / "data")
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.from_data_dir(tmp_path / "data").decrypt(box.encrypt("x")) == "x"
    with store.transaction() as s:
        s.add(
            Credential(
                name="c",
                cred_type="network",
                username="root",
                password_enc=box.encrypt("hunter2-secret"),
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with store.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT password_enc FROM credentials").scalar_one()
    assert b"hunter2-secret" not in bytes(raw)
    assert box.decrypt(bytes(raw)) == "hunter2-secret"
