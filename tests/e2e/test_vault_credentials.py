"""Scans whose credential's secret is held in HashiCorp Vault, through a real server and its
built-in scanner: the password read from the fake Vault logs in to the fake Satellite, and a
Vault that refuses fails the connection task with its reason while the scan job finishes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quipu.lab.satellite import RunningSatellite, running_satellite
from quipu.lab.vault import RunningVault, running_vault
from tests.e2e.scans import add_scan, created, results, run_scan
from tests.servers import RunningServer, register_secret

SERVER_ENV = {"QUIPU_DISPATCH_INTERVAL_S": "0.2"}
SATELLITE_HOSTS = 3
SECRET_PATH = "team/satellite"


@pytest.fixture(scope="module")
def satellite() -> Iterator[RunningSatellite]:
    with running_satellite(hosts=SATELLITE_HOSTS) as sat:
        register_secret(sat.password)
        yield sat


@pytest.fixture(scope="module")
def fake_vault(satellite: RunningSatellite) -> Iterator[RunningVault]:
    with running_vault() as running:
        running.vault.put_secret(SECRET_PATH, {"password": satellite.password})
        register_secret(*running.client_key_path.read_text().splitlines()[1:-1])
        yield running


def encoded(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def add_vault_satellite(
    api: httpx.Client, sat: RunningSatellite, *, name: str, key: str = "password"
) -> int:
    """A Satellite source whose credential's password is in Vault at SECRET_PATH."""
    cred = created(
        api.post(
            "/api/v2/credentials/",
            json={
                "name": name,
                "cred_type": "satellite",
                "username": sat.username,
                "vault_secret_path": SECRET_PATH,
                "vault_secret_key": key,
            },
        )
    )
    assert cred["has_password"] is False and cred["vault_mount_point"] == "secret"
    source = created(
        api.post(
            "/api/v2/sources/",
            json={
                "name": name,
                "source_type": "satellite",
                "hosts": [sat.host],
                "port": sat.port,
                "credentials": [cred["id"]],
                "ssl_cert_verify": False,
            },
        )
    )
    source_id: int = source["id"]
    return source_id


def test_a_scan_reads_its_password_from_vault_and_a_refusing_vault_fails_the_connection(
    server: RunningServer, satellite: RunningSatellite, fake_vault: RunningVault
) -> None:
    with server.client() as api:
        response = api.post(
            "/api/v2/auth/hashicorp-vault/",
            json={
                "address": fake_vault.host,
                "port": fake_vault.port,
                "ca_cert": encoded(fake_vault.ca_cert_path),
                "client_cert": encoded(fake_vault.client_cert_path),
                "client_key": encoded(fake_vault.client_key_path),
            },
        )
        assert response.status_code == 201, response.text
        source_id = add_vault_satellite(api, satellite, name="sat")
        scan_id = add_scan(api, name="sat", sources=[source_id])

        job = run_scan(api, scan_id, timeout=60)
        assert job["status"] == "completed", job["status_message"]
        inspected = {r["name"]: r for r in results(api, job["id"], "inspection")}
        assert set(inspected) == set(satellite.expected)
        assert all(r["status"] == "success" for r in inspected.values())

        fake_vault.vault.refuse_login = True
        try:
            refused = run_scan(api, scan_id, timeout=60)
        finally:
            fake_vault.vault.refuse_login = False
        assert refused["status"] == "failed"
        connect = next(t for t in refused["tasks"] if t["scan_type"] == "connect")
        assert connect["status"] == "failed"
        assert connect["status_message"] == (
            "Connection to source 'sat' failed: Credential \"sat\": Vault "
            f"{fake_vault.host}:{fake_vault.port} refused the login (HTTP 403): check that its "
            "cert auth method trusts Quipu's client certificate (`qpc vault show`)."
        )
        assert refused["end_time"] is not None

        missing = add_vault_satellite(api, satellite, name="sat-key", key="token")
        no_key = run_scan(api, add_scan(api, name="sat-key", sources=[missing]), timeout=60)
        assert no_key["status"] == "failed"
        assert "has no key 'token'" in no_key["tasks"][0]["status_message"]
    log = server.log()
    assert satellite.password not in log
    assert "refused the login" in log
