"""Numbers no column can hold, over real HTTP on both databases: in every path of the OpenAPI
document, in ``page``, in id lists and in a scanner's counts, each is a 4xx that names its
field and changes nothing, never a database error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import RunningServer, running_server

HUGE = (2**63, 10**30)
"""Just past a 64-bit id, and far past it."""


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(
        kind=request.param, data_dir=tmp_path / "data", args=("--no-builtin-scanner",)
    ) as running:
        yield running


def _named(response: httpx.Response, field: str) -> bool:
    body = response.json()
    if "error" in body:
        return str(body["error"].get("field", "")) == field
    return field in body or field in str(body.get("detail", ""))


def _checked(response: httpx.Response, where: str, field: str | None) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if response.status_code in (400, 422) and field is not None:
        assert _named(response, field), f"{where}: {response.text[:300]}"


def test_a_huge_id_in_any_path_is_a_4xx_naming_it(server: RunningServer) -> None:
    with server.client() as api:
        key = api.post("/api/v1/scanners/", json={"name": "s"}).json()["api_key"]
        document = api.get("/api/openapi.json").json()
        before = api.get("/api/v2/credentials/").json()
    tried = 0
    with (
        server.client() as api,
        httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=30) as scanner,
    ):
        for path, operations in document["paths"].items():
            names = re.findall(r"\{(\w+)\}", path)
            if not names:
                continue
            client = scanner if path.startswith("/scanner/") else api
            for method in operations:
                for number in HUGE:
                    target = path
                    for name in names:
                        target = target.replace(f"{{{name}}}", str(number))
                    body: dict[str, Any] | None = {} if method in ("post", "put", "patch") else None
                    response = client.request(method.upper(), target, json=body)
                    _checked(response, f"{method.upper()} {target}", names[0])
                    assert response.status_code in (400, 404, 422), (target, response.text)
                    tried += 1
        assert tried > 50
        assert api.get("/api/v2/credentials/").json() == before


def test_a_huge_page_id_list_or_count_is_a_4xx_naming_it(server: RunningServer) -> None:
    with server.client() as api:
        for path in ("/api/v2/credentials/", "/api/v2/sources/", "/api/v1/scans/", "/api/v1/jobs/"):
            for number in HUGE:
                response = api.get(path, params={"page": number})
                _checked(response, f"{path}?page={number}", "page")
                assert response.status_code == 400, response.text
        response = api.get("/api/v1/jobs/", params={"scan_id": 2**63})
        _checked(response, "jobs?scan_id", "scan_id")
        assert response.status_code == 400
        for path in ("/api/v2/credentials/bulk_delete/", "/api/v2/sources/bulk_delete/"):
            response = api.post(path, json={"ids": [1, 2**63]})
            _checked(response, path, "ids.1")
            assert response.status_code == 400, response.text
        response = api.post("/api/v1/reports/merge/", json={"reports": [1, 2**63]})
        _checked(response, "merge", "reports")
        assert response.status_code == 400, response.text
        key = api.post("/api/v1/scanners/", json={"name": "s"}).json()["api_key"]
    with httpx.Client(base_url=server.url, headers={"X-API-Key": key}) as scanner:
        beat = scanner.post("/scanner/heartbeat", json={"version": "1", "capacity": 2**31})
        _checked(beat, "heartbeat", "capacity")
        assert beat.status_code == 422, beat.text
        claim = scanner.get("/scanner/jobs", params={"limit": 2**63})
        assert claim.status_code == 200 and claim.json() == {"jobs": []}
