"""The dispatcher on both databases, driven tick by tick with scanners speaking the protocol
services directly: phases, outcomes, serial queue, pause and resume, cancel, sweeps, alarms."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from quipu import wire
from quipu.dispatch.dispatcher import advance
from quipu.dispatch.loop import DispatchLoop
from quipu.dispatch.sweeps import sweep_heartbeats
from quipu.services import alarms, protocol, scan_jobs, scanners
from quipu.settings import Settings
from quipu.store import Store
from quipu.store.secrets import SecretBox
from quipu.store.tables import (
    Credential,
    Scan,
    ScanJob,
    Scanner,
    ScannerJob,
    ScanSource,
    Source,
    SourceCredential,
    SourceScanner,
    Task,
)
from tests.integration.factories import NOW


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, systems_per_job=4)


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_data_dir(tmp_path)


def add_scan(
    store: Store,
    box: SecretBox,
    *,
    name: str = "weekly",
    hosts: list[str] | None = None,
    mediated: bool = False,
    scanner_ids: tuple[int, ...] = (),
    rate: float = 0,
) -> int:
    with store.transaction() as s:
        cred = s.scalar(select(Credential).where(Credential.name == "root"))
        if cred is None:
            cred = Credential(
                name="root",
                cred_type="network",
                username="root",
                password_enc=box.encrypt("pw-secret"),
                created_at=NOW,
                updated_at=NOW,
            )
            s.add(cred)
            s.flush()
        source = Source(
            name=f"{name}-net",
            source_type="network",
            hosts=hosts or ["127.0.100.[1:10]"],
            exclude_hosts=["127.0.100.10"],
            port=22,
            scheduling_mode="mediated" if mediated else "immediate",
            max_probes_per_second=rate,
            created_at=NOW,
            updated_at=NOW,
        )
        s.add(source)
        s.flush()
        s.add(SourceCredential(source_id=source.id, credential_id=cred.id, position=0))
        for scanner_id in scanner_ids:
            s.add(SourceScanner(source_id=source.id, scanner_id=scanner_id))
        scan = Scan(name=name, options={}, created_at=NOW, updated_at=NOW)
        s.add(scan)
        s.flush()
        s.add(ScanSource(scan_id=scan.id, source_id=source.id, position=0))
        return scan.id


def builtin(store: Store, tmp_path: Path) -> Scanner:
    scanners.ensure_builtin(store, data_dir=tmp_path, now=NOW)
    with store.transaction() as s:
        row = s.scalars(select(Scanner).where(Scanner.name == "local")).one()
        row.last_heartbeat = NOW
        return row


def work(
    store: Store,
    box: SecretBox,
    *,
    scanner: Scanner,
    reachable: set[str],
    limit: int = 10,
    stop_after: int | None = None,
    seen: Counter[str] | None = None,
) -> int:
    """Claim and finish jobs like a scanner: systems in ``reachable`` succeed, others are
    unreachable. Returns how many jobs it ran."""
    jobs = protocol.claim(store, box, scanner=scanner, limit=limit, now=NOW)
    for job in jobs[:stop_after]:
        protocol.start(store, scanner=scanner, job_id=job.job_id, now=NOW)
        results = []
        for target in job.targets:
            from quipu.collectors.network.targets import from_ranges

            for system in from_ranges([target.range]):
                if seen is not None:
                    seen[system] += 1
                ok = system in reachable
                results.append(
                    wire.SystemResult(
                        system=system,
                        port=target.ports[0],
                        status="success" if ok else "unreachable",
                        credential_id=job.credentials[0].id if ok else None,
                        facts={"uname_hostname": system} if job.kind == "inspect" else {},
                    )
                )
        protocol.upload_results(store, scanner=scanner, job_id=job.job_id, results=results, now=NOW)
        protocol.complete(
            store,
            scanner=scanner,
            job_id=job.job_id,
            status="completed",
            result_count=len(results),
            error_message=None,
            now=NOW,
        )
    return len(jobs)


def job_of(store: Store, job_id: int) -> ScanJob:
    return scan_jobs.get(store, job_id=job_id)


REACHABLE = {"127.0.100.1", "127.0.100.2", "127.0.100.5"}
"""Three of the nine systems of ``add_scan``'s source."""


def started(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> tuple[Scanner, int, DispatchLoop]:
    """The built-in scanner, a started job of a new scan, and a dispatcher to tick."""
    local = builtin(store, tmp_path)
    scan_id = add_scan(store, box)
    job_id = scan_jobs.start(store, scan_id=scan_id, now=NOW, by="user:admin").id
    return local, job_id, DispatchLoop(store, settings=settings)


def test_a_job_connects_then_inspects_then_completes(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local, job_id, loop = started(store, settings, box, tmp_path)

    loop.tick(NOW)
    job = job_of(store, job_id)
    assert job.status == "running"
    connect = next(t for t in job.tasks if t.kind == "connect")
    assert (connect.status, connect.systems_count) == ("running", 9)
    with store.transaction() as s:
        jobs = s.scalars(select(ScannerJob).where(ScannerJob.task_id == connect.id)).all()
    assert [len(j.targets) for j in jobs] == [1, 1, 1]  # 9 systems, 4 per job, compact ranges
    assert work(store, box, scanner=local, reachable=REACHABLE) == 3

    loop.tick(NOW)
    job = job_of(store, job_id)
    inspect = next(t for t in job.tasks if t.kind == "inspect")
    assert inspect.status == "running" and inspect.systems_count == 3
    assert (job.systems_count, job.systems_unreachable) == (9, 6)
    work(store, box, scanner=local, reachable=REACHABLE)

    loop.tick(NOW)
    job = job_of(store, job_id)
    assert job.status == "completed", job.status_message
    assert (
        job.systems_count,
        job.systems_scanned,
        job.systems_failed,
        job.systems_unreachable,
    ) == (9, 3, 0, 6)
    assert job.end_time == NOW


def test_work_that_ends_while_the_dispatcher_counts_is_counted_when_its_task_ends(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local, job_id, loop = started(store, settings, box, tmp_path)
    loop.tick(NOW)
    work(store, box, scanner=local, reachable=REACHABLE)
    loop.tick(NOW)
    assert next(t for t in job_of(store, job_id).tasks if t.kind == "inspect").status == "running"

    # The inspection's results arrive and its work ends just after a pass counted results.
    # (On SQLite the scanner waits for the pass to commit; on PostgreSQL it does not.)
    finishing = threading.Thread(
        target=work, args=(store, box), kwargs={"scanner": local, "reachable": REACHABLE}
    )
    waits = 10.0 if store.engine.dialect.name == "postgresql" else 0.0

    def finish_meanwhile(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not finishing.is_alive() and finishing.ident is None:
            if "FROM system_results" in statement and "GROUP BY" in statement:
                finishing.start()
                finishing.join(timeout=waits)

    event.listen(store.engine, "after_cursor_execute", finish_meanwhile)
    try:
        advance(store, job_id=job_id, settings=settings, now=NOW)
    finally:
        event.remove(store.engine, "after_cursor_execute", finish_meanwhile)
    finishing.join()
    loop.tick(NOW)

    job = job_of(store, job_id)
    assert job.status == "completed", job.status_message
    assert (job.systems_count, job.systems_scanned, job.systems_unreachable) == (9, 3, 6)


def test_zero_reachable_fails_the_job_at_inspection_saying_so(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(store, scan_id=add_scan(store, box), now=NOW, by="user:admin").id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    work(store, box, scanner=local, reachable=set())
    loop.tick(NOW)
    job = job_of(store, job_id)
    assert job.status == "failed"
    assert "No system of source 'weekly-net' could be reached" in job.status_message
    assert [t.status for t in job.tasks] == ["completed", "failed"]


def test_jobs_run_serially_in_start_order(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    first = scan_jobs.start(
        store, scan_id=add_scan(store, box, name="a"), now=NOW, by="user:admin"
    ).id
    second = scan_jobs.start(
        store,
        scan_id=add_scan(store, box, name="b"),
        now=NOW + timedelta(seconds=1),
        by="user:admin",
    ).id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    assert (job_of(store, first).status, job_of(store, second).status) == ("running", "pending")
    for _ in range(2):
        work(store, box, scanner=local, reachable={"127.0.100.1"})
        loop.tick(NOW)
    assert (job_of(store, first).status, job_of(store, second).status) == (
        "completed",
        "running",
    )


def test_pause_and_restart_resume_without_scanning_a_system_twice(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(store, scan_id=add_scan(store, box), now=NOW, by="user:admin").id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    seen: Counter[str] = Counter()
    reachable = {f"127.0.100.{i}" for i in range(1, 10)}
    # One of three connect jobs finishes; another is claimed when the pause comes.
    work(store, box, scanner=local, reachable=reachable, limit=1, seen=seen)
    claimed = protocol.claim(store, box, scanner=local, limit=1, now=NOW)[0]
    protocol.start(store, scanner=local, job_id=claimed.job_id, now=NOW)
    half = claimed.targets[0].range.split("-")[0]
    protocol.upload_results(
        store,
        scanner=local,
        job_id=claimed.job_id,
        results=[wire.SystemResult(system=half, port=22, status="success", credential_id=1)],
        now=NOW,
    )
    seen[half] += 1
    scan_jobs.pause(store, job_id=job_id, now=NOW, by="user:admin")
    directive = protocol.progress(
        store, scanner=local, job_id=claimed.job_id, progress_count=1, result_count=1
    )
    assert directive == "stop"
    protocol.complete(
        store,
        scanner=local,
        job_id=claimed.job_id,
        status="failed",
        result_count=1,
        error_message="stopped",
        now=NOW,
    )
    loop.tick(NOW)
    assert job_of(store, job_id).status == "paused"
    assert protocol.claim(store, box, scanner=local, limit=10, now=NOW) == []

    scan_jobs.restart(store, job_id=job_id, now=NOW, by="user:admin")
    for _ in range(3):
        loop.tick(NOW)
        work(store, box, scanner=local, reachable=reachable, seen=seen)
    loop.tick(NOW)
    job = job_of(store, job_id)
    assert job.status == "completed", job.status_message
    assert job.systems_scanned == 9
    # every system probed once in the connection phase and once in the inspection phase
    assert set(seen.values()) == {2}, seen


def test_a_job_restarted_before_its_stopped_scanner_hears_back_still_completes(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(store, scan_id=add_scan(store, box), now=NOW, by="user:admin").id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    claimed = protocol.claim(store, box, scanner=local, limit=1, now=NOW)[0]
    protocol.start(store, scanner=local, job_id=claimed.job_id, now=NOW)
    scan_jobs.pause(store, job_id=job_id, now=NOW, by="user:admin")
    assert (
        protocol.progress(
            store, scanner=local, job_id=claimed.job_id, progress_count=0, result_count=0
        )
        == "stop"
    )
    # The operator restarts while the scanner is still winding down; then it gives the
    # work back, as a scanner told to stop does.
    scan_jobs.restart(store, job_id=job_id, now=NOW, by="user:admin")
    protocol.release(store, scanner=local, job_id=claimed.job_id, now=NOW)
    with store.transaction() as s:
        assert s.get_one(ScannerJob, claimed.job_id).status == "pending"
    reachable = {f"127.0.100.{i}" for i in range(1, 10)}
    for _ in range(4):
        loop.tick(NOW)
        work(store, box, scanner=local, reachable=reachable)
    loop.tick(NOW)
    job = job_of(store, job_id)
    assert job.status == "completed", job.status_message
    assert job.systems_scanned == 9


def test_work_given_back_after_a_cancel_is_canceled_with_its_job(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(store, scan_id=add_scan(store, box), now=NOW, by="user:admin").id
    DispatchLoop(store, settings=settings).tick(NOW)
    claimed = protocol.claim(store, box, scanner=local, limit=1, now=NOW)[0]
    protocol.start(store, scanner=local, job_id=claimed.job_id, now=NOW)
    scan_jobs.cancel(store, job_id=job_id, now=NOW, by="user:admin")
    protocol.release(store, scanner=local, job_id=claimed.job_id, now=NOW)
    with store.transaction() as s:
        statuses = set(s.scalars(select(ScannerJob.status)))
    assert statuses == {"canceled"}
    assert protocol.claim(store, box, scanner=local, limit=10, now=NOW) == []


def test_cancel_drops_unclaimed_work_and_is_final(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(store, scan_id=add_scan(store, box), now=NOW, by="user:admin").id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    scan_jobs.cancel(store, job_id=job_id, now=NOW, by="user:admin")
    assert protocol.claim(store, box, scanner=local, limit=10, now=NOW) == []
    with store.transaction() as s:
        statuses = set(s.scalars(select(ScannerJob.status)))
        tasks = set(s.scalars(select(Task.status)))
    assert statuses == {"canceled"} and tasks == {"canceled"}
    from quipu.domain.errors import IllegalTransition

    with pytest.raises(IllegalTransition, match=f"Scan job {job_id} is canceled"):
        scan_jobs.restart(store, job_id=job_id, now=NOW, by="user:admin")


def test_mediated_source_holds_until_approved(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    builtin(store, tmp_path)
    job = scan_jobs.start(
        store, scan_id=add_scan(store, box, mediated=True), now=NOW, by="user:admin"
    )
    assert job.status == "held" and "approval" in job.status_message
    DispatchLoop(store, settings=settings).tick(NOW)
    assert job_of(store, job.id).status == "held"
    scan_jobs.approve(store, job_id=job.id, now=NOW, by="user:admin")
    DispatchLoop(store, settings=settings).tick(NOW)
    assert job_of(store, job.id).status == "running"


def test_silent_scanner_work_goes_to_another_keeping_its_results(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    with store.transaction() as s:
        a = Scanner(name="a", api_key_hash="ha", bind=[], created_at=NOW, last_heartbeat=NOW)
        b = Scanner(name="b", api_key_hash="hb", bind=[], created_at=NOW, last_heartbeat=NOW)
        s.add_all([a, b])
    scan_id = add_scan(store, box, scanner_ids=(a.id, b.id), rate=900)
    job_id = scan_jobs.start(store, scan_id=scan_id, now=NOW, by="user:admin").id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    with store.transaction() as s:
        owners = Counter(s.scalars(select(ScannerJob.scanner_id)))
        rates = set(s.scalars(select(ScannerJob.max_probes_per_second)))
    assert owners == {a.id: 2, b.id: 1}  # round-robin over the source's two scanners
    assert rates == {450}  # the source's limit is shared by its scanners, not multiplied
    claimed = protocol.claim(store, box, scanner=a, limit=10, now=NOW)
    protocol.start(store, scanner=a, job_id=claimed[0].job_id, now=NOW)
    protocol.upload_results(
        store,
        scanner=a,
        job_id=claimed[0].job_id,
        results=[wire.SystemResult(system="127.0.100.1", port=22, status="success")],
        now=NOW,
    )
    later = NOW + timedelta(seconds=settings.heartbeat_timeout_s + 1)
    protocol.heartbeat(store, scanner=b, version="1", capacity=1, agent_id="b1", now=later)
    assert sweep_heartbeats(store, settings=settings, now=later) == 2
    with store.transaction() as s:
        assert set(s.scalars(select(ScannerJob.scanner_id))) == {b.id}
    done = 0
    for _ in range(4):
        done += work(store, box, scanner=b, reachable={"127.0.100.1"})
        advance(store, job_id=job_id, settings=settings, now=later)
    job = job_of(store, job_id)
    assert job.status == "completed", job.status_message
    assert job.systems_count == 9 and job.systems_scanned == 1


def test_a_job_that_cannot_advance_raises_the_stuck_alarm(
    store: Store, settings: Settings, box: SecretBox, tmp_path: Path
) -> None:
    local = builtin(store, tmp_path)
    job_id = scan_jobs.start(store, scan_id=add_scan(store, box), now=NOW, by="user:admin").id
    loop = DispatchLoop(store, settings=settings)
    loop.tick(NOW)
    work(store, box, scanner=local, reachable={"127.0.100.1"})
    with store.transaction() as s:  # a damaged snapshot: the inspection task cannot start
        for task in s.scalars(select(Task).where(Task.kind == "inspect")):
            task.source = ["damaged"]  # type: ignore[assignment]
    loop.tick(NOW)
    job = job_of(store, job_id)
    count, raised = alarms.list_alarms(store, offset=0, limit=10)
    assert job.status == "failed" and "stuck" in job.status_message
    assert count == 1
    assert [(a.kind, a.scan_job_id, a.message) for a in raised] == [
        ("scan_stuck", job_id, job.status_message)
    ]
