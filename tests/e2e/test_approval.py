"""Approval: a job of a mediated source waits in ``held`` until an administrator approves
it (the approver and the time are kept and logged); a non-admin is refused; a held job
nobody approves in time fails saying so and can no longer be approved; jobs of sources that
are not mediated are never held. Over the API and with ``qpc``, on real servers with real
lab hosts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from quipu.lab import Lab
from quipu.store import Store
from quipu.store.tables import ScanJob, ScanJobEvent
from tests.e2e.qpc import Qpc, logged_in
from tests.e2e.scans import add_lab_source, created, start
from tests.labs import running_lab
from tests.servers import RunningServer, TestClock, running_server

pytestmark = pytest.mark.lab

NET = "127.0.252"
PORT = 2252
HOSTS = 3
ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
TIMEOUT_S = 600
VIEWER = "viewer"
VIEWER_PASSWORD = "viewer-Secret-987"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("approval-lab") / "lab"
    with running_lab(root=root, hosts=HOSTS, net=NET, port=PORT) as lab:
        yield lab


@pytest.fixture(params=["sqlite", "postgresql"])
def plain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RunningServer, Store]]:
    """A server with the default approval time (held jobs never expire), a store on its
    database, and a non-admin user."""
    with running_server(kind=request.param, data_dir=tmp_path / "data", env=ENV) as server:
        server.add_user(username=VIEWER, password=VIEWER_PASSWORD)
        store = Store.from_url(server.database_url)
        try:
            yield server, store
        finally:
            store.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def timed(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, TestClock, Store]]:
    """A server whose held jobs expire after TIMEOUT_S, on a clock the test moves."""
    clock = TestClock(tmp_path / "clock")
    env = {**ENV, **clock.env, "QUIPU_APPROVAL_TIMEOUT_S": str(TIMEOUT_S)}
    with running_server(kind=request.param, data_dir=tmp_path / "data", env=env) as server:
        server.add_user(username=VIEWER, password=VIEWER_PASSWORD)
        store = Store.from_url(server.database_url)
        try:
            yield server, clock, store
        finally:
            store.dispose()


def viewer_client(server: RunningServer) -> httpx.Client:
    token = server.token(username=VIEWER, password=VIEWER_PASSWORD)
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Token {token}"}, timeout=30
    )


def lab_scan(api: httpx.Client, lab: Lab, *, name: str, mediated: bool) -> int:
    """A scan of the lab's hosts through one source, mediated or not; the scan's id."""
    source_id = add_lab_source(
        api,
        lab,
        name=name,
        hosts=[f"{lab.hosts[0].address}-{lab.hosts[-1].address}"],
        port=lab.hosts[0].port,
        scheduling_mode="mediated" if mediated else "immediate",
    )
    scan_id: int = created(api.post("/api/v1/scans/", json={"name": name, "sources": [source_id]}))[
        "id"
    ]
    return scan_id


def job(api: httpx.Client, job_id: int) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}/").json()
    return body


def wait_for(api: httpx.Client, job_id: int, *statuses: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while (current := job(api, job_id))["status"] not in statuses:
        assert time.monotonic() < deadline, current
        time.sleep(0.1)
    return current


def events(api: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    body = api.get(f"/api/v1/jobs/{job_id}/events/", params={"page_size": 1000}).json()
    rows: list[dict[str, Any]] = body["results"]
    return rows


def row_of(store: Store, job_id: int) -> tuple[Any, ...]:
    """Everything the database holds of a scan job: its row and how many log entries."""
    with store.transaction() as s:
        row = s.get_one(ScanJob, job_id)
        columns = tuple(getattr(row, c.key) for c in ScanJob.__table__.columns)
        logged = s.scalar(select(func.count()).where(ScanJobEvent.scan_job_id == job_id))
    return (*columns, logged)


def viewer_qpc(server: RunningServer, config_home: Path) -> Qpc:
    qpc = Qpc(config_home=config_home, secrets=(VIEWER_PASSWORD,))
    qpc.ok("server", "config", "--host", "127.0.0.1", "--port", str(server.port), "--use-http")
    qpc.ok("server", "login", "--username", VIEWER, input=VIEWER_PASSWORD + "\n")
    return qpc


def test_an_admin_approves_a_held_job_and_it_runs_with_the_approver_recorded(
    plain: tuple[RunningServer, Store], lab: Lab, tmp_path: Path
) -> None:
    server, store = plain
    with server.client() as api, viewer_client(server) as viewer:
        scan_id = lab_scan(api, lab, name="guarded", mediated=True)
        job_id = start(api, scan_id)
        time.sleep(1)  # several dispatcher ticks: a held job stays held
        held = job(api, job_id)
        assert held["status"] == "held"
        assert held["status_message"] == (
            'Waiting for an administrator\'s approval (mediated sources: "guarded").'
        )
        assert (held["approved_by"], held["approved_at"], held["hold_expires_at"]) == (
            None,
            None,
            None,
        )

        # A non-admin may read the job but not approve it; nothing changes.
        before = row_of(store, job_id)
        refused = viewer.put(f"/api/v1/jobs/{job_id}/approve/")
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "Only an administrator can approve a held scan job."
        assert row_of(store, job_id) == before
        assert viewer.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "held"

        # The same refusal through qpc.
        as_viewer = viewer_qpc(server, tmp_path / "viewer")
        denied = as_viewer.fails("scan", "approve", "--id", str(job_id))
        assert "Only an administrator can approve a held scan job." in denied.stderr
        assert row_of(store, job_id) == before

        approved = api.put(f"/api/v1/jobs/{job_id}/approve/")
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["status"] == "pending"
        assert body["approved_by"] == "admin"
        approved_at = datetime.fromisoformat(body["approved_at"])
        assert abs(approved_at - datetime.now(UTC)) < timedelta(seconds=30)

        done = wait_for(api, job_id, "completed", "failed")
        assert done["status"] == "completed", done["status_message"]
        assert done["systems_scanned"] == HOSTS
        assert (done["approved_by"], done["approved_at"]) == ("admin", body["approved_at"])

        log = events(api, job_id)
        moves = [
            (e["action"], e["from_status"], e["to_status"]) for e in log if e["kind"] == "scan_job"
        ]
        assert moves[:3] == [
            ("create", None, "created"),
            ("hold", "created", "held"),
            ("approve", "held", "pending"),
        ]
        assert moves[-1] == ("complete", "running", "completed")
        approval = next(e for e in log if e["action"] == "approve")
        assert approval["actor"] == "user:admin"
        assert datetime.fromisoformat(approval["at"]) == approved_at
        assert approval["message"].startswith("Approved by admin at ")

        # Approving it again is refused: it is no longer held.
        before = row_of(store, job_id)
        again = api.put(f"/api/v1/jobs/{job_id}/approve/")
        assert again.status_code == 409
        assert again.json()["detail"] == f"Scan job {job_id} is completed and cannot be approved."
        assert row_of(store, job_id) == before


def test_a_held_job_nobody_approves_in_time_fails_and_cannot_be_approved(
    timed: tuple[RunningServer, TestClock, Store], lab: Lab, tmp_path: Path
) -> None:
    server, clock, store = timed
    with server.client() as api:
        scan_id = lab_scan(api, lab, name="guarded", mediated=True)
        job_id = start(api, scan_id)
        held = wait_for(api, job_id, "held")
        expires = datetime.fromisoformat(held["hold_expires_at"])
        created_at = datetime.fromisoformat(held["created_at"])
        assert expires - created_at == timedelta(seconds=TIMEOUT_S)
        until = f"{expires:%Y-%m-%d %H:%M:%S} UTC"
        assert held["status_message"] == (
            f'Waiting for an administrator\'s approval until {until} (mediated sources: "guarded").'
        )

        clock.advance(TIMEOUT_S - 60)  # a minute left: still held
        time.sleep(1)
        assert job(api, job_id)["status"] == "held"

        clock.advance(61)
        failed = wait_for(api, job_id, "failed", "completed", "pending", "running", timeout=30)
        assert failed["status"] == "failed"
        assert failed["status_message"] == (
            f"Approval timed out: nobody approved the job by {until}."
        )
        assert failed["approved_by"] is None and failed["end_time"] is not None
        assert {t["status"] for t in failed["tasks"]} == {"canceled"}
        last = [e for e in events(api, job_id) if e["kind"] == "scan_job"][-1]
        assert (last["action"], last["from_status"], last["to_status"], last["actor"]) == (
            "expire",
            "held",
            "failed",
            "dispatcher",
        )
        assert last["message"] == failed["status_message"]

        # A late approval is refused, over the API and through qpc; nothing changes.
        before = row_of(store, job_id)
        late = api.put(f"/api/v1/jobs/{job_id}/approve/")
        assert late.status_code == 409, late.text
        refusal = (
            f"Scan job {job_id} was not approved in time (its approval timed out at {until}) "
            "and can no longer be approved."
        )
        assert late.json()["detail"] == refusal
        qpc = logged_in(server, config_home=tmp_path / "qpc")
        assert qpc.fails("scan", "approve", "--id", str(job_id)).stderr.strip() == refusal
        assert row_of(store, job_id) == before
        assert job(api, job_id) == failed


def test_a_held_job_is_approved_in_time_with_qpc(
    timed: tuple[RunningServer, TestClock, Store], lab: Lab, tmp_path: Path
) -> None:
    server, clock, _ = timed
    with server.client() as api:
        scan_id = lab_scan(api, lab, name="guarded", mediated=True)
        job_id = start(api, scan_id)
        wait_for(api, job_id, "held")
        clock.advance(TIMEOUT_S - 5)
        qpc = logged_in(server, config_home=tmp_path / "qpc")
        assert qpc.ok("scan", "approve", "--id", str(job_id)).stdout == (
            f'Scan "{job_id}" approved.\n'
        )
        clock.advance(30)  # past the deadline: an approved job no longer expires
        done = wait_for(api, job_id, "completed", "failed")
        assert done["status"] == "completed", done["status_message"]
        assert done["approved_by"] == "admin"


def test_jobs_of_sources_that_are_not_mediated_are_never_held(
    timed: tuple[RunningServer, TestClock, Store], lab: Lab
) -> None:
    server, clock, _ = timed
    with server.client() as api:
        scan_id = lab_scan(api, lab, name="open", mediated=False)
        job_id = start(api, scan_id)
        done = wait_for(api, job_id, "completed", "failed")
        assert done["status"] == "completed", done["status_message"]
        assert done["hold_expires_at"] is None and done["approved_by"] is None
        statuses = {e["to_status"] for e in events(api, job_id) if e["kind"] == "scan_job"}
        assert "held" not in statuses
        # Past any approval deadline nothing happens to it either.
        clock.advance(2 * TIMEOUT_S)
        time.sleep(1)
        assert job(api, job_id) == done
        # Approving a job that was never held is refused.
        refused = api.put(f"/api/v1/jobs/{job_id}/approve/")
        assert refused.status_code == 409
        assert refused.json()["detail"] == f"Scan job {job_id} is completed and cannot be approved."
