"""The built-in scanner follows a rotation of its own key, over real HTTP on both databases:
it keeps heartbeating and takes the next scan's work, with no restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.scans import created, network_source
from tests.servers import RunningServer, running_server

CLOSED = "127.0.239.1"
"""Nothing listens there: a scan of it ends as soon as a scanner has tried it."""


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    env = {"QUIPU_HEARTBEAT_S": "1", "QUIPU_DISPATCH_INTERVAL_S": "0.2"}
    with running_server(kind=request.param, data_dir=tmp_path / "data", env=env) as running:
        yield running


def local(api: httpx.Client) -> dict[str, Any]:
    scanners = api.get("/api/v1/scanners/", params={"name": "local"}).json()["results"]
    assert len(scanners) == 1
    return dict(scanners[0])


def test_a_rotated_builtin_key_is_taken_up_and_work_goes_on(server: RunningServer) -> None:
    with server.client() as api:
        builtin = local(api)
        rotated = api.post(f"/api/v1/scanners/{builtin['id']}/rotate-key/")
        assert rotated.status_code == 200, rotated.text
        after = datetime.now(UTC)
        deadline = time.monotonic() + 20
        while not (beat := local(api)["last_heartbeat"]) or datetime.fromisoformat(beat) <= after:
            assert time.monotonic() < deadline, "the built-in scanner stopped heartbeating"
            time.sleep(0.2)
        source = network_source(api, name="closed", hosts=[CLOSED])
        scan = created(api.post("/api/v1/scans/", json={"name": "s", "sources": [source["id"]]}))
        job_id = created(api.post(f"/api/v1/scans/{scan['id']}/jobs/"))["id"]
        while (job := api.get(f"/api/v1/jobs/{job_id}/").json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline + 30, job
            time.sleep(0.2)
        assert job["systems_unreachable"] == 1, job
    assert "the API key was refused; asking again with the new one" in server.log()
