"""The server starts for real, answers status, and logs users in and out."""

from __future__ import annotations

import stat

import httpx

from tests.servers import ADMIN_PASSWORD, RunningServer


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


def test_secret_key_is_private(server: RunningServer) -> None:
    server.token()
    key = server.data_dir / "secret.key"
    assert not key.exists() or stat.S_IMODE(key.stat().st_mode) == 0o600
