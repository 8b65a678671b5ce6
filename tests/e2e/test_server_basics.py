"""The server starts for real, answers status, and logs users in and out."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx
import pytest

from quipu.store import Store
from tests.servers import ADMIN_PASSWORD, RunningServer, running_server


def test_status_needs_no_login(server: RunningServer) -> None:
    body = httpx.get(f"{server.url}/api/v1/status/").json()
    assert body["database"] == server.database_url.split(":")[0].split("+")[0]
    assert body["server_version"]


def test_login_current_logout(server: RunningServer) -> None:
    token = server.token()
    headers = {"Authorization": f"Token {token}"}
    current = httpx.get(f"{server.url}/api/v1/users/current/", headers=headers)
    assert current.json() == {"username": "admin"}
    assert httpx.put(f"{server.url}/api/v1/users/logout/", headers=headers).status_code == 200
    after = httpx.get(f"{server.url}/api/v1/users/current/", headers=headers)
    assert after.status_code == 401
    assert "Invalid token" in after.json()["detail"]


def test_bad_token_and_bad_password_are_refused(server: RunningServer) -> None:
    bad = httpx.get(f"{server.url}/api/v1/users/current/", headers={"Authorization": "Token nope"})
    assert bad.status_code == 401 and "Invalid token" in bad.json()["detail"]
    wrong = httpx.post(
        f"{server.url}/api/v1/token/", json={"username": "admin", "password": "wrong"}
    )
    assert wrong.status_code == 401
    assert httpx.post(
        f"{server.url}/api/v1/token/", json={"username": "admin", "password": ADMIN_PASSWORD}
    ).json()["token"]


def test_secret_key_and_database_files_are_private(server: RunningServer) -> None:
    server.token()
    key = server.data_dir / "secret.key"
    assert not key.exists() or stat.S_IMODE(key.stat().st_mode) == 0o600
    if server.database_url.startswith("sqlite"):
        database = Path(server.database_url.split("///", 1)[1])
        files = [f for f in database.parent.glob(f"{database.name}*") if f.is_file()]
        assert database in files
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_crash_and_a_wrong_method_answer_in_the_contracts_shape(
    kind: str, tmp_path: Path
) -> None:
    with running_server(
        kind=kind, data_dir=tmp_path / "data", args=("--no-builtin-scanner",)
    ) as server:
        wrong = httpx.delete(f"{server.url}/api/v1/status/")
        assert wrong.status_code == 405
        assert wrong.headers["Allow"] == "GET"
        assert wrong.json() == {"detail": "Method Not Allowed"}
        store = Store.from_url(server.database_url)
        try:
            # A fault the server cannot foresee: a table gone from under it.
            with store.engine.begin() as conn:
                conn.exec_driver_sql("ALTER TABLE scans RENAME TO scans_away")
            try:
                with server.client() as api:
                    crashed = api.get("/api/v1/scans/")
            finally:
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ALTER TABLE scans_away RENAME TO scans")
        finally:
            store.dispose()
        assert crashed.status_code == 500
        assert crashed.headers["Content-Type"] == "application/json"
        assert crashed.json() == {
            "detail": "The server hit an unexpected error; its log says more."
        }
        deadline = time.monotonic() + 10  # the traceback is logged after the answer
        while "Traceback" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
