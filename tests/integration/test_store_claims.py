"""The scanner-job claim: one statement, only runnable work, never the same job twice."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from quipu.domain.states import ScanJobStatus
from quipu.store import Store
from quipu.store.statements import claim_for_scanner, claim_scanner_jobs
from quipu.store.tables import ScanJobEvent, Scanner, ScannerJob, Task
from tests.integration import factories
from tests.integration.factories import NOW


def seed(store: Store, *, count: int, status: ScanJobStatus = ScanJobStatus.RUNNING) -> int:
    with store.transaction() as s:
        job = factories.scan_job(s, status=status)
        scanner = factories.scanner(s)
        factories.scanner_jobs(
            s, task_row=factories.task(s, job=job), scanner_row=scanner, count=count
        )
        return scanner.id


def test_claim_takes_oldest_first_up_to_limit(store: Store) -> None:
    scanner_id = seed(store, count=5)
    with store.transaction() as s:
        first = claim_scanner_jobs(s, scanner_id=scanner_id, limit=2, now=NOW, by="scanner:s")
    with store.transaction() as s:
        second = claim_scanner_jobs(s, scanner_id=scanner_id, limit=10, now=NOW, by="scanner:s")
    assert [j.id for j in first] == sorted(j.id for j in first)
    assert max(j.id for j in first) < min(j.id for j in second)
    assert len(first) == 2 and len(second) == 3
    assert {j.attempts for j in first + second} == {1}
    with store.transaction() as s:
        rows = s.scalars(select(ScannerJob).order_by(ScannerJob.id)).all()
    assert {r.status for r in rows} == {"claimed"}
    assert rows[0].claimed_at == NOW


def test_a_claim_returns_its_payload_and_logs_each_claim(store: Store) -> None:
    scanner_id = seed(store, count=3)
    with store.transaction() as s:
        claimed = claim_scanner_jobs(s, scanner_id=scanner_id, limit=10, now=NOW, by="scanner:s")
    with store.transaction() as s:
        task = s.get_one(Task, claimed[0].task_id)
        events = s.scalars(select(ScanJobEvent).where(ScanJobEvent.action == "claim")).all()
        targets = {r.id: r.targets for r in s.scalars(select(ScannerJob))}
    assert [(c.source_type, c.source_name, c.source) for c in claimed] == [
        (task.source_type, task.source_name, task.source)
    ] * 3
    assert {c.id: c.targets for c in claimed} == targets
    assert sorted((e.subject_id, e.from_status, e.to_status, e.actor) for e in events) == [
        (c.id, "pending", "claimed", "scanner:s") for c in claimed
    ]


def test_a_claim_asked_again_under_its_id_returns_the_jobs_it_took(store: Store) -> None:
    scanner_id = seed(store, count=5)
    mine = {"scanner_id": scanner_id, "now": NOW, "by": "scanner:s"}
    first = claim_for_scanner(store, limit=2, claim_id="c-1", **mine)
    again = claim_for_scanner(store, limit=2, claim_id="c-1", **mine)
    assert [j.id for j in again] == [j.id for j in first] and len(first) == 2
    assert again == first  # the payload too, and no second claim counted
    other = claim_for_scanner(store, limit=10, claim_id="c-2", **mine)
    assert len(other) == 3 and not {j.id for j in other} & {j.id for j in first}
    with store.transaction() as s:
        s.get_one(ScannerJob, first[0].id).status = "running"  # started: not the claim's now
        claims = s.scalar(select(func.count()).where(ScanJobEvent.action == "claim"))
    assert claims == 5
    assert [j.id for j in claim_for_scanner(store, limit=2, claim_id="c-1", **mine)] == [
        first[1].id
    ]
    with store.transaction() as s:  # a claim id is the scanner's own
        stranger = factories.scanner(s, name="remote-2").id
    theirs = {**mine, "scanner_id": stranger}
    assert claim_for_scanner(store, limit=2, claim_id="c-1", **theirs) == []


def test_a_draining_scanner_claims_nothing(store: Store) -> None:
    scanner_id = seed(store, count=2)
    with store.transaction() as s:
        s.get_one(Scanner, scanner_id).draining = True
    with store.transaction() as s:
        assert claim_scanner_jobs(s, scanner_id=scanner_id, limit=10, now=NOW, by="s") == []


@pytest.mark.parametrize("status", [ScanJobStatus.PAUSED, ScanJobStatus.PENDING])
def test_work_of_a_job_that_is_not_running_is_withheld(store: Store, status: ScanJobStatus) -> None:
    scanner_id = seed(store, count=3, status=status)
    with store.transaction() as s:
        assert claim_scanner_jobs(s, scanner_id=scanner_id, limit=10, now=NOW, by="scanner:s") == []


def test_a_scanner_claims_only_its_own_jobs(store: Store) -> None:
    seed(store, count=3)
    with store.transaction() as s:
        other = factories.scanner(s, name="remote-1").id
    with store.transaction() as s:
        assert claim_scanner_jobs(s, scanner_id=other, limit=10, now=NOW, by="scanner:o") == []


def test_concurrent_claimers_claim_every_job_exactly_once(database_url: str) -> None:
    """16 threads drain 2,000 pending scanner jobs: zero double claims, zero lost jobs."""
    store = Store.from_url(database_url)
    try:
        scanner_id = seed(store, count=2000)
        claimed: list[int] = []
        lock = threading.Lock()
        errors: list[BaseException] = []

        def claimer() -> None:
            try:
                while True:
                    with store.transaction() as s:
                        jobs = claim_scanner_jobs(
                            s, scanner_id=scanner_id, limit=3, now=NOW, by="scanner:s"
                        )
                    if not jobs:
                        return
                    with lock:
                        claimed.extend(j.id for j in jobs)
            except BaseException as error:  # surfaced below, in the test's thread
                errors.append(error)

        threads = [threading.Thread(target=claimer) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        doubles = [job_id for job_id, n in Counter(claimed).items() if n > 1]
        assert doubles == []
        assert len(claimed) == 2000
        with store.transaction() as s:
            attempts = s.scalars(select(func.max(ScannerJob.attempts))).one()
            left = s.scalars(select(func.count()).where(ScannerJob.status == "pending")).one()
        assert (attempts, left) == (1, 0)
    finally:
        store.dispose()
