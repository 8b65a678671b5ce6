"""What a scan job not yet ended still needs is not deleted under it, over real HTTP on both
databases: its scan (409, naming the job), and the credentials it started with, even after
its source was edited to another one (refused, naming the job); once the job ends, both go."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.scans import created
from tests.servers import RunningServer, running_server


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[httpx.Client]:
    server: RunningServer
    with (
        running_server(
            kind=request.param, data_dir=tmp_path / "data", args=("--no-builtin-scanner",)
        ) as server,
        server.client() as client,
    ):
        yield client


def credential(api: httpx.Client, name: str) -> int:
    body = {"name": name, "cred_type": "network", "username": "u", "password": "p"}
    return int(created(api.post("/api/v2/credentials/", json=body))["id"])


def test_a_job_keeps_its_scan_and_the_credentials_it_started_with(api: httpx.Client) -> None:
    first, second = credential(api, "first"), credential(api, "second")
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": "lab",
                "source_type": "network",
                "hosts": ["127.0.238.1"],
                "credentials": [first],
                "scheduling_mode": "mediated",  # the job waits for approval: it stays open
            },
        )
    )
    scan = created(api.post("/api/v1/scans/", json={"name": "s", "sources": [source["id"]]}))
    job_id = created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"]
    assert api.get(f"/api/v1/jobs/{job_id}/").json()["status"] == "held"

    refused = api.delete(f"/api/v1/scans/{scan['id']}/")
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        f'Scan "s" has scan job {job_id} held; cancel it (qpc scan cancel --id {job_id}) or '
        "let it end, then delete the scan."
    )
    bulk = api.post("/api/v1/scans/bulk_delete/", json={"ids": [scan["id"]]}).json()
    assert bulk["deleted"] == [] and bulk["skipped"][0]["reason"] == f"scan job {job_id} is held"
    assert api.get(f"/api/v1/scans/{scan['id']}/").status_code == 200

    edited = api.patch(f"/api/v2/sources/{source['id']}/", json={"credentials": [second]})
    assert edited.status_code == 200, edited.text
    in_use = api.delete(f"/api/v2/credentials/{first}/")
    assert in_use.status_code == 400, in_use.text
    assert in_use.json()["detail"] == (
        f'Credential "first" is used by scan job {job_id}, which started with it; cancel it '
        "or let it end first."
    )
    bulk = api.post("/api/v2/credentials/bulk_delete/", json={"ids": [first]}).json()
    assert bulk["deleted"] == [] and bulk["skipped"][0]["reason"] == f"used by scan job {job_id}"
    assert api.get(f"/api/v2/credentials/{first}/").status_code == 200

    assert api.put(f"/api/v1/jobs/{job_id}/cancel/").status_code == 200
    assert api.delete(f"/api/v2/credentials/{first}/").status_code == 204
    assert api.delete(f"/api/v1/scans/{scan['id']}/").status_code == 204
