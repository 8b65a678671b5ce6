"""The scanner pull protocol over real HTTP: every status and error code, and nothing changed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quipu.domain.states import ScanJobStatus, TaskStatus
from quipu.store import Store
from quipu.store.tables import ScanJob, Scanner, ScannerJob, SystemResult, Task
from tests.integration import factories
from tests.servers import RunningServer, running_server


@dataclass
class World:
    server: RunningServer
    store: Store
    admin: httpx.Client
    keys: dict[str, str]
    scanner_ids: dict[str, int]
    job_ids: list[int]
    scan_job_id: int

    def scanner(self, name: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url, headers={"X-API-Key": self.keys[name]}, timeout=30
        )

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Everything a bad request could change."""
        with self.store.transaction() as s:
            jobs = s.execute(
                select(
                    ScannerJob.id,
                    ScannerJob.status,
                    ScannerJob.scanner_id,
                    ScannerJob.progress_count,
                    ScannerJob.result_count,
                    ScannerJob.error_message,
                )
                .where(ScannerJob.scan_job_id == self.scan_job_id)
                .order_by(ScannerJob.id)
            ).all()
            results = s.execute(
                select(SystemResult.system, SystemResult.status).where(
                    SystemResult.scan_job_id == self.scan_job_id
                )
            ).all()
        return [tuple(r) for r in jobs] + [tuple(r) for r in results]


@dataclass
class Running:
    server: RunningServer
    store: Store
    admin: httpx.Client


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """One server (without a built-in scanner) per database for the whole module."""
    data_dir = tmp_path_factory.mktemp("protocol") / "data"
    with running_server(
        kind=request.param, data_dir=data_dir, args=("--no-builtin-scanner",)
    ) as server:
        store = Store.from_url(server.database_url)
        with server.client() as admin:
            yield Running(server, store, admin)
        store.dispose()


@pytest.fixture
def world(running: Running) -> World:
    """Three new scanners and 12 pending jobs of a new running scan job, assigned to ``a``."""
    suffix = uuid.uuid4().hex[:8]
    keys, ids = {}, {}
    for name, bind in (("a", []), ("b", []), ("bound", ["10.9.0.0/16"])):
        body = running.admin.post(
            "/api/v1/scanners/", json={"name": f"{name}-{suffix}", "bind": bind}
        ).json()
        keys[name], ids[name] = body["api_key"], body["id"]
    with running.store.transaction() as s:
        job = factories.scan_job(
            s,
            scan_row=factories.scan(s, name=f"scan-{suffix}"),
            status=ScanJobStatus.RUNNING,
        )
        task = factories.task(s, job=job)
        task.status = TaskStatus.RUNNING.value
        scanner_row = s.get_one(Scanner, ids["a"])
        rows = factories.scanner_jobs(s, task_row=task, scanner_row=scanner_row, count=12)
        job_ids = [r.id for r in rows]
        scan_job_id = job.id
    return World(running.server, running.store, running.admin, keys, ids, job_ids, scan_job_id)


ENDPOINTS = [
    ("GET", "/scanner/jobs", None),
    ("POST", "/scanner/jobs/{id}/start", None),
    ("POST", "/scanner/jobs/{id}/progress", {"progressCount": 1, "resultCount": 0}),
    ("POST", "/scanner/jobs/{id}/results", {"results": []}),
    ("POST", "/scanner/jobs/{id}/complete", {"status": "completed"}),
    ("POST", "/scanner/heartbeat", {"version": "1"}),
]


def test_missing_or_invalid_key_is_401_and_changes_nothing(world: World) -> None:
    before = world.snapshot()
    for method, path, body in ENDPOINTS:
        url = world.server.url + path.format(id=world.job_ids[0])
        for headers in ({}, {"X-API-Key": "not-a-key"}):
            response = httpx.request(method, url, json=body, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert world.snapshot() == before


def test_disabled_scanner_gets_403_everywhere(world: World) -> None:
    world.admin.post(f"/api/v1/scanners/{world.scanner_ids['a']}/disable/").raise_for_status()
    before = world.snapshot()
    with world.scanner("a") as client:
        for method, path, body in ENDPOINTS:
            response = client.request(method, path.format(id=world.job_ids[0]), json=body)
            assert response.status_code == 403, (method, path, response.text)
            assert response.json()["error"]["code"] == "FORBIDDEN"
            assert "disabled" in response.json()["error"]["message"]
    assert world.snapshot() == before
    world.admin.post(f"/api/v1/scanners/{world.scanner_ids['a']}/enable/").raise_for_status()
    with world.scanner("a") as client:
        assert client.get("/scanner/jobs").status_code == 200


def test_ip_binding_violation(world: World) -> None:
    before = world.snapshot()
    with world.scanner("bound") as client:
        response = client.get("/scanner/jobs")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "IP_BINDING_VIOLATION"
    assert "10.9.0.0/16" in response.json()["error"]["message"]
    assert world.snapshot() == before


def test_a_forwarded_address_is_not_believed_from_a_proxy_nobody_configured(world: World) -> None:
    before = world.snapshot()
    with world.scanner("bound") as client:
        for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
            value = "for=10.9.0.7" if header == "Forwarded" else "10.9.0.7"
            response = client.get("/scanner/jobs", headers={header: value})
            assert response.status_code == 403, header
            assert response.json()["error"]["code"] == "IP_BINDING_VIOLATION"
            assert "from 127.0.0.1" in response.json()["error"]["message"]
    assert world.snapshot() == before


def test_a_forwarded_address_is_believed_from_a_configured_proxy(tmp_path: Path) -> None:
    with running_server(
        kind="sqlite",
        data_dir=tmp_path / "data",
        args=("--no-builtin-scanner", "--forwarded-allow-ips", "127.0.0.1"),
    ) as server:
        with server.client() as admin:
            key = admin.post(
                "/api/v1/scanners/", json={"name": "behind", "bind": ["10.9.0.0/16"]}
            ).json()["api_key"]
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as client:
            assert client.get("/scanner/jobs").status_code == 403
            forwarded = client.get("/scanner/jobs", headers={"X-Forwarded-For": "10.9.0.7"})
            assert forwarded.status_code == 200, forwarded.text


def test_limit_defaults_to_one_and_caps_at_ten(world: World) -> None:
    with world.scanner("a") as client:
        first = client.get("/scanner/jobs").json()["jobs"]
        assert len(first) == 1
        many = client.get("/scanner/jobs", params={"limit": 50}).json()["jobs"]
        assert len(many) == 10
        assert client.get("/scanner/jobs", params={"limit": 0}).status_code == 422
        job = first[0]
    assert set(job) >= {
        "jobId",
        "scanId",
        "kind",
        "sourceType",
        "targets",
        "maxProbesPerSecond",
        "credentials",
        "options",
    }
    assert job["targets"] == [{"range": "127.0.100.1", "ports": [22]}]
    with world.scanner("b") as client:
        assert client.get("/scanner/jobs").json() == {"jobs": []}


def test_a_claim_asked_again_under_its_id_gets_the_same_jobs(world: World) -> None:
    with world.scanner("a") as client:
        mine = {"limit": 3, "claimId": "lost-answer-1"}
        first = client.get("/scanner/jobs", params=mine).json()["jobs"]
        assert client.get("/scanner/jobs", params=mine).json()["jobs"] == first
        assert len(first) == 3
        fresh = client.get("/scanner/jobs", params={**mine, "claimId": "next"}).json()["jobs"]
        assert not {j["jobId"] for j in fresh} & {j["jobId"] for j in first}
        before = world.snapshot()
        for bad in ("", "x" * 65, "no spaces"):
            response = client.get("/scanner/jobs", params={**mine, "claimId": bad})
            assert response.status_code == 422, response.text
            assert response.json()["error"]["field"] == "claimId"
    assert world.snapshot() == before


def test_another_scanners_job_is_403_and_changes_nothing(world: World) -> None:
    with world.scanner("a") as a:
        job_id = a.get("/scanner/jobs").json()["jobs"][0]["jobId"]
    before = world.snapshot()
    with world.scanner("b") as b:
        for method, path, body in ENDPOINTS[1:5]:
            response = b.request(method, path.format(id=job_id), json=body)
            assert response.status_code == 403, (path, response.text)
            assert response.json()["error"]["code"] == "FORBIDDEN"
    assert world.snapshot() == before


def test_unknown_job_is_404(world: World) -> None:
    with world.scanner("a") as client:
        response = client.post("/scanner/jobs/999999/start")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("progress", {"progressCount": -1, "resultCount": 0}, "progressCount"),
        ("progress", {"resultCount": 0}, "progressCount"),
        ("results", {"results": [{"system": "", "status": "success"}]}, "results.0.system"),
        ("results", {"results": [{"system": "h", "status": "great"}]}, "results.0.status"),
        (
            "results",
            {"results": [{"system": "h", "status": "success", "port": 0}]},
            "results.0.port",
        ),
        ("complete", {"status": "done"}, "status"),
        ("complete", {"status": "completed", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    world: World, path: str, body: dict[str, Any], field: str
) -> None:
    with world.scanner("a") as client:
        job_id = client.get("/scanner/jobs").json()["jobs"][0]["jobId"]
        client.post(f"/scanner/jobs/{job_id}/start").raise_for_status()
        before = world.snapshot()
        response = client.post(f"/scanner/jobs/{job_id}/{path}", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_INPUT"
    assert error["field"] == field
    assert field in error["message"]
    assert world.snapshot() == before


def test_a_job_runs_through_start_progress_results_complete(world: World) -> None:
    with world.scanner("a") as client:
        job_id = client.get("/scanner/jobs").json()["jobs"][0]["jobId"]
        assert client.post(f"/scanner/jobs/{job_id}/start").json() == {"ok": True}
        # Repeated (its answer lost on the way): harmless.
        assert client.post(f"/scanner/jobs/{job_id}/start").json() == {"ok": True}
        progress = client.post(
            f"/scanner/jobs/{job_id}/progress", json={"progressCount": 1, "resultCount": 0}
        ).json()
        assert progress == {"ok": True, "directive": "continue"}
        results = {
            "results": [
                {"system": "127.0.100.1", "port": 22, "status": "success", "credentialId": None},
                {"system": "127.0.100.2", "port": 22, "status": "unreachable", "message": "x"},
            ]
        }
        first = client.post(f"/scanner/jobs/{job_id}/results", json=results).json()
        again = client.post(f"/scanner/jobs/{job_id}/results", json=results).json()
        assert (first, again) == ({"ok": True, "accepted": 2}, {"ok": True, "accepted": 0})
        done = {"status": "completed", "resultCount": 2}
        assert client.post(f"/scanner/jobs/{job_id}/complete", json=done).json() == {"ok": True}
        assert client.post(f"/scanner/jobs/{job_id}/complete", json=done).json() == {"ok": True}
        conflicting = client.post(f"/scanner/jobs/{job_id}/complete", json={"status": "failed"})
        assert conflicting.status_code == 409
        late = client.post(f"/scanner/jobs/{job_id}/results", json=results)
        assert late.status_code == 409
    with world.store.transaction() as s:
        job = s.get_one(ScannerJob, job_id)
        assert (job.status, job.result_count) == ("completed", 2)
        stored = s.scalars(
            select(SystemResult).where(SystemResult.scan_job_id == world.scan_job_id)
        ).all()
        assert len(stored) == 2


def test_a_result_naming_a_credential_deleted_meanwhile_is_kept_without_it(world: World) -> None:
    with world.scanner("a") as client:
        job_id = client.get("/scanner/jobs").json()["jobs"][0]["jobId"]
        client.post(f"/scanner/jobs/{job_id}/start").raise_for_status()
        gone = {"system": "127.0.100.9", "status": "success", "credentialId": 999_999}
        answer = client.post(f"/scanner/jobs/{job_id}/results", json={"results": [gone]})
    assert answer.json() == {"ok": True, "accepted": 1}
    with world.store.transaction() as s:
        row = s.scalars(
            select(SystemResult).where(
                SystemResult.scanner_job_id == job_id, SystemResult.system == "127.0.100.9"
            )
        ).one()
    assert (row.status, row.credential_id) == ("success", None)


def test_pause_turns_progress_into_stop_and_withholds_work(world: World) -> None:
    with world.scanner("a") as client:
        job_id = client.get("/scanner/jobs").json()["jobs"][0]["jobId"]
        client.post(f"/scanner/jobs/{job_id}/start").raise_for_status()
        world.admin.put(f"/api/v1/jobs/{world.scan_job_id}/pause/").raise_for_status()
        progress = client.post(
            f"/scanner/jobs/{job_id}/progress", json={"progressCount": 1, "resultCount": 0}
        ).json()
        assert progress["directive"] == "stop"
        assert client.get("/scanner/jobs", params={"limit": 10}).json() == {"jobs": []}
        client.post(
            f"/scanner/jobs/{job_id}/complete", json={"status": "failed", "errorMessage": "stopped"}
        ).raise_for_status()
    with world.store.transaction() as s:
        assert s.get_one(ScannerJob, job_id).status == "pending"  # released, to resume later
        assert s.get_one(ScanJob, world.scan_job_id).status == "paused"


def test_heartbeat_marks_online_and_rotate_key_invalidates_the_old_one(world: World) -> None:
    with world.scanner("a") as client:
        assert client.post("/scanner/heartbeat", json={"version": "9.9"}).json() == {"ok": True}
    name = world.admin.get(f"/api/v1/scanners/{world.scanner_ids['a']}/").json()["name"]
    listed = world.admin.get("/api/v1/scanners/", params={"name": name}).json()["results"][0]
    assert listed["online"] is True and listed["version"] == "9.9"
    rotated = world.admin.post(f"/api/v1/scanners/{world.scanner_ids['a']}/rotate-key/").json()
    assert rotated["api_key"] != world.keys["a"]
    with world.scanner("a") as old:
        assert old.get("/scanner/jobs").status_code == 401
    world.keys["a"] = rotated["api_key"]
    with world.scanner("a") as new:
        assert new.get("/scanner/jobs").status_code == 200
    assert "api_key" not in world.admin.get(f"/api/v1/scanners/{world.scanner_ids['a']}/").json()


def test_repeated_heartbeats_are_written_within_a_second_and_a_new_version_at_once(
    world: World,
) -> None:
    scanner_id = world.scanner_ids["b"]

    def seen() -> tuple[Any, str | None]:
        with world.store.transaction() as s:
            row = s.get_one(Scanner, scanner_id)
            return row.last_heartbeat, row.version

    beat = {"version": "1.0", "capacity": 2, "agentId": "agent-1"}
    with world.scanner("b") as client:
        assert client.post("/scanner/heartbeat", json=beat).status_code == 200
        first, version = seen()
        assert first is not None and version == "1.0"
        time.sleep(0.2)
        assert client.post("/scanner/heartbeat", json=beat).status_code == 200
        deadline = time.monotonic() + 3
        while seen()[0] == first and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen()[0] > first  # a repeat, taken in memory and written with the others
        assert client.post("/scanner/heartbeat", json={**beat, "version": "1.1"}).json() == {
            "ok": True
        }
        assert seen()[1] == "1.1"  # not a repeat: written before the answer


def test_tasks_of_the_job_are_untouched_by_protocol_errors(world: World) -> None:
    with world.store.transaction() as s:
        before = [(t.id, t.status) for t in s.scalars(select(Task).order_by(Task.id))]
    with world.scanner("b") as b:
        b.post(f"/scanner/jobs/{world.job_ids[0]}/complete", json={"status": "failed"})
    with world.store.transaction() as s:
        assert [(t.id, t.status) for t in s.scalars(select(Task).order_by(Task.id))] == before
