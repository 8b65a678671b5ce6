"""What a request may carry, over real HTTP on both databases: a body above its limit is
refused with 413 before it is stored (declared or streamed), fields have bounds that are
named when passed, and a NUL character is refused naming its field, except in a scanner's
results, where it becomes U+FFFD so that no result is lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from quipu.domain.states import ScanJobStatus, TaskStatus
from quipu.store import Store
from quipu.store.tables import Credential, LoginFailure, Report, Scanner, SystemResult
from tests.integration import factories
from tests.servers import RunningServer, running_server

MAX_REQUEST = 1024 * 1024
MAX_UPLOAD = 2 * 1024 * 1024


@dataclass
class Bounded:
    server: RunningServer
    store: Store

    def count(self, table: type) -> int:
        with self.store.transaction() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def bounded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bounded]:
    env = {"QUIPU_MAX_REQUEST_BYTES": str(MAX_REQUEST), "QUIPU_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    with running_server(
        kind=request.param, data_dir=tmp_path / "data", env=env, args=("--no-builtin-scanner",)
    ) as server:
        store = Store.from_url(server.database_url)
        try:
            yield Bounded(server, store)
        finally:
            store.dispose()


def _chunks(size: int) -> Iterator[bytes]:
    """A JSON login body of about ``size`` bytes, sent without a Content-Length."""
    yield b'{"password": "x", "username": "'
    for _ in range(size // 65536):
        yield b"u" * 65536
    yield b'"}'


def test_a_body_above_its_limit_is_refused_and_nothing_is_stored(bounded: Bounded) -> None:
    url = bounded.server.url
    big = "u" * (MAX_REQUEST + 1)
    declared = httpx.post(f"{url}/api/v1/token/", json={"username": big, "password": "x"})
    assert declared.status_code == 413, declared.text
    assert "1,048,576 bytes" in declared.json()["detail"]
    assert "QUIPU_MAX_REQUEST_BYTES" in declared.json()["detail"]
    streamed = httpx.post(f"{url}/api/v1/token/", content=_chunks(2 * MAX_REQUEST))
    assert streamed.status_code == 413, streamed.text
    assert bounded.count(LoginFailure) == 0
    with bounded.server.client() as api:
        refused = api.post(
            "/api/v2/credentials/",
            json={"name": "big", "cred_type": "network", "username": "u", "password": big},
        )
        assert refused.status_code == 413
        report = {"report_type": "details", "sources": [{"facts": ["x" * MAX_UPLOAD]}]}
        upload = api.post("/api/v1/reports/", json=report)
        assert upload.status_code == 413, upload.text
        assert "QUIPU_MAX_UPLOAD_BYTES" in upload.json()["detail"]
        streamed_upload = api.post(
            "/api/v1/reports/", content=(b"x" * 65536 for _ in range(MAX_UPLOAD // 65536 + 2))
        )
        assert streamed_upload.status_code == 413, streamed_upload.text
    assert bounded.count(Credential) == 0
    assert bounded.count(Report) == 0


def test_fields_past_their_bounds_are_refused_naming_them(bounded: Bounded) -> None:
    url = bounded.server.url
    long_name = httpx.post(f"{url}/api/v1/token/", json={"username": "u" * 151, "password": "x"})
    assert long_name.status_code == 400
    assert "username" in long_name.json()
    assert bounded.count(LoginFailure) == 0
    with bounded.server.client() as api:
        secret = api.post(
            "/api/v2/credentials/",
            json={"name": "c", "cred_type": "network", "username": "u", "password": "p" * 65537},
        )
        assert secret.status_code == 400
        assert "password" in secret.json()
    assert bounded.count(Credential) == 0


def test_a_nul_character_is_refused_naming_its_field(bounded: Bounded) -> None:
    url = bounded.server.url
    login = httpx.post(f"{url}/api/v1/token/", json={"username": "ad\x00min", "password": "x"})
    assert login.status_code == 400, login.text
    assert login.json()["username"] == ["username: may not contain a NUL character (\\u0000)."]
    assert bounded.count(LoginFailure) == 0
    with bounded.server.client() as api:
        named = api.post(
            "/api/v2/credentials/",
            json={"name": "c\x00", "cred_type": "network", "username": "u", "password": "p"},
        )
        assert named.status_code == 400 and "name" in named.json(), named.text
        queried = api.get("/api/v2/credentials/", params={"name": "c\x00"})
        assert queried.status_code == 400 and "name" in queried.json(), queried.text
        key = api.post("/api/v1/scanners/", json={"name": "s"}).json()["api_key"]
    with httpx.Client(base_url=url, headers={"X-API-Key": key}) as scanner:
        beat = scanner.post("/scanner/heartbeat", json={"version": "1\x00"})
        assert beat.status_code == 422, beat.text
        assert beat.json()["error"]["field"] == "version"
    assert bounded.count(Credential) == 0
    with bounded.store.transaction() as s:
        assert s.scalars(select(Scanner.version)).all() in ([None], [""])


def test_a_nul_in_a_scanners_results_becomes_a_replacement_character(bounded: Bounded) -> None:
    with bounded.server.client() as api:
        key = api.post("/api/v1/scanners/", json={"name": "s"}).json()["api_key"]
    with bounded.store.transaction() as s:
        job = factories.scan_job(s, status=ScanJobStatus.RUNNING)
        task = factories.task(s, job=job)
        task.status = TaskStatus.RUNNING.value
        row = s.scalars(select(Scanner).where(Scanner.name == "s")).one()
        factories.scanner_jobs(s, task_row=task, scanner_row=row, count=1)
    with httpx.Client(base_url=bounded.server.url, headers={"X-API-Key": key}) as scanner:
        [claimed] = scanner.get("/scanner/jobs").json()["jobs"]
        job_id = claimed["jobId"]
        assert scanner.post(f"/scanner/jobs/{job_id}/start").status_code == 200
        result = {
            "system": "127.0.100.1",
            "status": "success",
            "facts": {"etc_release": "Fedora\x00 41", "odd \\u0000 text": "kept"},
        }
        body = json.dumps({"results": [result]})
        assert "\\u0000" in body
        uploaded = scanner.post(
            f"/scanner/jobs/{job_id}/results",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert uploaded.status_code == 200, uploaded.text
    with bounded.store.transaction() as s:
        facts = s.scalars(select(SystemResult.facts)).one()
    assert facts == {"etc_release": "Fedora\ufffd 41", "odd \\u0000 text": "kept"}
