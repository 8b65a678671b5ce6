"""Driving scans over the REST API in end-to-end tests: start, wait, read results and reports."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from quipu.lab import Lab
from tests.servers import register_secret


def created(response: httpx.Response) -> dict[str, Any]:
    """The body of a 201 response (or fail with what the server said)."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def network_source(
    api: httpx.Client,
    *,
    name: str,
    hosts: list[str],
    port: int | None = None,
    credential: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A network source of ``hosts`` and a new credential ``c`` for it (``credential``: its
    login fields; default a password login that nothing will accept)."""
    login = credential or {"username": "u", "password": "p"}
    made = created(
        api.post("/api/v2/credentials/", json={"name": "c", "cred_type": "network", **login})
    )
    body = {"name": name, "source_type": "network", "hosts": hosts, "credentials": [made["id"]]}
    if port is not None:
        body["port"] = port
    return created(api.post("/api/v2/sources/", json={**body, **fields}))


def add_api_source(
    api: httpx.Client,
    *,
    name: str,
    source_type: str,
    port: int,
    credential: Mapping[str, Any],
    scanners: list[int] | None = None,
    **options: Any,
) -> int:
    """A credential (``credential``: its fields besides name and type) and a source of an API
    server on 127.0.0.1:``port`` that uses it, without certificate verification; the source's
    id. Its secrets are registered, so the tests that look for leaks look for them."""
    for secret in ("password", "auth_token"):
        if credential.get(secret):
            register_secret(credential[secret])
    cred = created(
        api.post(
            "/api/v2/credentials/",
            json={"name": name, "cred_type": source_type, **credential},
        )
    )
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": name,
                "source_type": source_type,
                "hosts": ["127.0.0.1"],
                "port": port,
                "credentials": [cred["id"]],
                "ssl_cert_verify": False,
                "scanners": scanners or [],
                **options,
            },
        )
    )
    source_id: int = source["id"]
    return source_id


def add_lab_source(
    api: httpx.Client,
    lab: Lab,
    *,
    name: str,
    hosts: list[str],
    port: int,
    scanners: list[int] | None = None,
    credential_name: str | None = None,
    **options: Any,
) -> int:
    """A network credential for the lab's sudo user (its SSH key), named ``credential_name``
    (default: ``name``), and a source of ``hosts`` on ``port`` that uses it; the source's id.
    The key's lines are registered as secrets, so the tests that look for leaks look for them."""
    key = lab.sudo_key_path.read_text()
    register_secret(*(line for line in key.splitlines() if "PRIVATE KEY" not in line))
    cred = created(
        api.post(
            "/api/v2/credentials/",
            json={
                "name": credential_name or name,
                "cred_type": "network",
                "username": lab.sudo_user,
                "ssh_key": key,
            },
        )
    )
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": name,
                "source_type": "network",
                "hosts": hosts,
                "port": port,
                "credentials": [cred["id"]],
                "scanners": scanners or [],
                **options,
            },
        )
    )
    source_id: int = source["id"]
    return source_id


def add_scan(api: httpx.Client, *, name: str, sources: list[int]) -> int:
    scan_id: int = created(api.post("/api/v1/scans/", json={"name": name, "sources": sources}))[
        "id"
    ]
    return scan_id


def start(api: httpx.Client, scan_id: int) -> int:
    job_id: int = created(api.post(f"/api/v1/scans/{scan_id}/jobs/"))["id"]
    return job_id


def wait_status(
    api: httpx.Client, job_id: int, *, statuses: tuple[str, ...], timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}/").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"scan job {job_id} never reached {statuses}: {job}")


def run_scan(api: httpx.Client, scan_id: int, *, timeout: float = 120) -> dict[str, Any]:
    """Start a scan and wait for its job to end; the job as the API shows it."""
    return wait_status(api, start(api, scan_id), statuses=("completed", "failed"), timeout=timeout)


def results(api: httpx.Client, job_id: int, phase: str) -> list[dict[str, Any]]:
    body = api.get(f"/api/v1/jobs/{job_id}/{phase}/", params={"page_size": 1000}).json()
    rows: list[dict[str, Any]] = body["results"]
    return rows


def report(api: httpx.Client, report_id: int, kind: str) -> dict[str, Any]:
    response = api.get(f"/api/v1/reports/{report_id}/{kind}/")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def counters(job: dict[str, Any]) -> tuple[int, int, int, int]:
    """A job's (systems_count, systems_scanned, systems_failed, systems_unreachable)."""
    return (
        job["systems_count"],
        job["systems_scanned"],
        job["systems_failed"],
        job["systems_unreachable"],
    )
